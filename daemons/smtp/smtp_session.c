/*
 * smtp_session - one SMTP client connection (RFC 5321): connect within
 * smtp_connect_timeout, the greeting, EHLO (HELO when EHLO is refused),
 * STARTTLS (RFC 3207) as smtp_tls_security_level asks, the replies, RSET
 * for a cached session and QUIT (interface: smtp.h).
 *
 * Each wait for the server is bounded by the timeout of its stage, with
 * Postfix's parameter names.  Failures are described in Postfix's words,
 * for the log and the notices: "connect to H[A]:P: Connection refused",
 * "host H[A] refused to talk to me: 421 ...", "host H[A] said: 550 ...
 * (in reply to EHLO command)", "lost connection with H[A] while ...",
 * "conversation with H[A] timed out while ...".
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "smtp.h"
#include "text.h"

void smtp_reply_init(struct smtp_reply *r)
{
    r->code = 0;
    r->dsn[0] = '\0';
    buf_init(&r->text, SMTP_REPLY_MAX);
}

void smtp_reply_free(struct smtp_reply *r)
{
    buf_free(&r->text);
}

/* "d.d.d" at the start of text, class matching the reply; else made up
 * from the reply code (Postfix: X.0.0). */
static void reply_dsn(struct smtp_reply *r, const char *text)
{
    const char *p = text;
    size_t n = 0;
    int dots = 0;
    while (p[n] != '\0' && p[n] != ' ' && n < sizeof(r->dsn) - 1) {
        if (p[n] == '.')
            dots++;
        else if (p[n] < '0' || p[n] > '9')
            break;
        n++;
    }
    if (dots == 2 && n >= 5 && (p[n] == ' ' || p[n] == '\0') &&
        p[0] == '0' + r->code / 100 && p[1] == '.' && p[n - 1] != '.') {
        memcpy(r->dsn, p, n);
        r->dsn[n] = '\0';
        return;
    }
    snprintf(r->dsn, sizeof(r->dsn), "%d.0.0", r->code / 100);
}

void smtp_session_io_error(const struct smtp_session *s, int rc,
                           const char *stage, struct buf *why)
{
    buf_reset(why);
    if (rc == STREAM_TIMEOUT)
        buf_printf(why, "conversation with %s[%s] timed out while %s",
                   s->host, s->addr, stage);
    else
        buf_printf(why, "lost connection with %s[%s] while %s", s->host,
                   s->addr, stage);
}

int smtp_session_send(struct smtp_session *s, const char *fmt, ...)
{
    struct buf line;
    buf_init(&line, SMTP_REPLY_LINE_MAX);
    va_list ap;
    va_start(ap, fmt);
    int rc = buf_vprintf(&line, fmt, ap);
    va_end(ap);
    if (rc == 0)
        rc = buf_append_str(&line, "\r\n");
    if (rc == 0)
        rc = stream_write(&s->stream, line.data, line.len);
    else
        rc = STREAM_ERROR;
    buf_free(&line);
    if (rc != STREAM_OK)
        s->broken = 1;
    return rc;
}

/* Replies have "ddd-text" lines and one "ddd text" (or "ddd") last. */
int smtp_session_reply(struct smtp_session *s, long timeout,
                       struct smtp_reply *reply)
{
    reply->code = 0;
    reply->dsn[0] = '\0';
    buf_reset(&reply->text);
    stream_set_timeout(&s->stream, (int)(timeout * 1000));
    int rc = stream_flush(&s->stream);
    struct buf line;
    buf_init(&line, SMTP_REPLY_LINE_MAX + 1);
    for (int lines = 0; rc == STREAM_OK; lines++) {
        enum stream_line_ending ending;
        rc = stream_read_line(&s->stream, &line, SMTP_REPLY_LINE_MAX,
                              &ending);
        if (rc == STREAM_TOO_LONG)
            rc = STREAM_OK;  /* keep what fits: the reply is still read */
        if (rc != STREAM_OK)
            break;
        const char *t = buf_cstr(&line);
        int code = 0;
        if (line.len >= 3 && t[0] >= '2' && t[0] <= '5' && t[1] >= '0' &&
            t[1] <= '9' && t[2] >= '0' && t[2] <= '9')
            code = (t[0] - '0') * 100 + (t[1] - '0') * 10 + (t[2] - '0');
        if (code == 0 || (line.len > 3 && t[3] != ' ' && t[3] != '-')) {
            rc = STREAM_ERROR;   /* not a reply: treat as a lost session */
            break;
        }
        for (size_t i = 0; i < line.len; i++)
            if ((unsigned char)line.data[i] < 0x20 ||
                line.data[i] == 0x7f)
                line.data[i] = ' ';
        if (reply->text.len > 0)
            (void)buf_append_char(&reply->text, ' ');
        (void)buf_append(&reply->text, line.data, line.len);
        if (lines == 0) {
            reply->code = code;
            reply_dsn(reply, line.len > 4 ? t + 4 : "");
        }
        if (line.len == 3 || t[3] == ' ')
            break;
        if (lines > 1000) {
            rc = STREAM_TOO_LONG;
            break;
        }
    }
    buf_free(&line);
    if (rc != STREAM_OK) {
        reply->code = 0;
        s->broken = 1;
    }
    return rc;
}

static void session_free(struct smtp_session *s)
{
    if (s == NULL)
        return;
    if (s->tls != NULL) {
        tls_session_detach(&s->stream);
        tls_session_free(s->tls);
    }
    stream_free(&s->stream);
    if (s->fd >= 0)
        close(s->fd);
    free(s);
}

void smtp_session_close(const struct smtp_config *cfg, struct smtp_session *s)
{
    if (s == NULL)
        return;
    if (!s->broken) {
        struct smtp_reply reply;
        smtp_reply_init(&reply);
        long timeout = s->quick_quit && cfg->quit_timeout > 1
                           ? 1 : cfg->quit_timeout;
        if (smtp_session_send(s, "QUIT") == STREAM_OK)
            (void)smtp_session_reply(s, timeout, &reply);
        smtp_reply_free(&reply);
        if (s->tls != NULL && !s->broken)
            (void)tls_session_shutdown(s->tls, 1000, NULL);
    }
    session_free(s);
}

int smtp_session_rset(const struct smtp_config *cfg, struct smtp_session *s)
{
    struct smtp_reply reply;
    smtp_reply_init(&reply);
    int ok = smtp_session_send(s, "RSET") == STREAM_OK &&
             smtp_session_reply(s, cfg->rset_timeout, &reply) == STREAM_OK &&
             reply.code / 100 == 2;
    smtp_reply_free(&reply);
    if (!ok)
        s->broken = 1;
    return ok ? 0 : -1;
}

/* Waits for a non-blocking connect on fd to finish, within
 * smtp_connect_timeout; 0 or its errno. */
static int connect_wait(const struct smtp_config *cfg, int fd)
{
    struct pollfd pfd = { .fd = fd, .events = POLLOUT };
    long long deadline = stream_now_ms() + cfg->connect_timeout * 1000;
    int n;
    do {
        long long left = deadline - stream_now_ms();
        n = left > 0 ? poll(&pfd, 1, (int)left) : 0;
    } while (n < 0 && errno == EINTR);
    if (n == 0)
        return ETIMEDOUT;
    if (n < 0)
        return errno;
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        return errno;
    return err;
}

/* A non-blocking connect bounded by smtp_connect_timeout, from the local
 * address smtp_bind_address(6) gives.  The fd, or -1 with why set. */
static int session_connect(const struct smtp_config *cfg,
                           const struct smtp_target *t, int port,
                           struct buf *why)
{
    int fd = socket(t->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC |
                                         SOCK_NONBLOCK, 0);
    int err = 0;
    const char *bind_failed = NULL;
    if (fd < 0) {
        err = errno;
    } else if ((bind_failed = smtp_bind_socket(cfg, fd,
                                               t->sa.ss_family)) != NULL) {
        err = errno;
    } else if (connect(fd, (const struct sockaddr *)&t->sa, t->salen) != 0) {
        err = errno;
        if (err == EINPROGRESS)
            err = connect_wait(cfg, fd);
    }
    if (err == 0)
        return fd;
    buf_reset(why);
    if (bind_failed != NULL)
        buf_printf(why, "connect to %s[%s]:%d: bind to %s: %s", t->host,
                   t->addr, port, bind_failed, strerror(err));
    else
        buf_printf(why, "connect to %s[%s]:%d: %s", t->host, t->addr, port,
                   strerror(err));
    if (fd >= 0)
        close(fd);
    return -1;
}

/* A failure that is not the server's reply: no code, our own status. */
static void reply_none(struct smtp_reply *reply, const char *dsn)
{
    reply->code = 0;
    buf_reset(&reply->text);
    (void)text_copy(reply->dsn, sizeof(reply->dsn), dsn);
}

static void ehlo_features(struct smtp_session *s, const char *text)
{
    /* text is "250-name greeting 250-PIPELINING 250 SIZE 1000" joined;
     * each keyword follows a "250-" or "250 " that starts a line. */
    const char *p = text;
    int first = 1;
    while ((p = strstr(p, "250")) != NULL) {
        if ((p != text && p[-1] != ' ') || (p[3] != '-' && p[3] != ' ')) {
            p += 3;
            continue;
        }
        const char *kw = p + 4;
        p += 4;
        if (first) {   /* the first line is the server's name */
            first = 0;
            continue;
        }
        size_t n = strcspn(kw, " ");
        if (n == 10 && strncasecmp(kw, "PIPELINING", n) == 0)
            s->features |= SMTP_FEATURE_PIPELINING;
        else if (n == 8 && strncasecmp(kw, "8BITMIME", n) == 0)
            s->features |= SMTP_FEATURE_8BITMIME;
        else if (n == 8 && strncasecmp(kw, "SMTPUTF8", n) == 0)
            s->features |= SMTP_FEATURE_SMTPUTF8;
        else if (n == 3 && strncasecmp(kw, "DSN", n) == 0)
            s->features |= SMTP_FEATURE_DSN;
        else if (n == 8 && strncasecmp(kw, "STARTTLS", n) == 0)
            s->features |= SMTP_FEATURE_STARTTLS;
        else if (n == 4 && strncasecmp(kw, "SIZE", n) == 0) {
            s->features |= SMTP_FEATURE_SIZE;
            long v = strtol(kw + 4, NULL, 10);
            s->size_limit = v > 0 ? v : 0;
        }
    }
}

void smtp_session_said(const struct smtp_session *s,
                       const struct smtp_reply *r, const char *command,
                       struct buf *why)
{
    buf_reset(why);
    buf_printf(why, "host %s[%s] said: %s (in reply to %s command)", s->host,
               s->addr, buf_cstr(&r->text), command);
}

static enum smtp_stage_status reply_failure(const struct smtp_reply *r)
{
    return r->code / 100 == 5 ? SMTP_STAGE_FAIL_5XX : SMTP_STAGE_RETRY;
}

/* EHLO, or HELO when the server refuses EHLO. */
static enum smtp_stage_status session_hello(const struct smtp_config *cfg,
                                            struct smtp_session *s,
                                            struct smtp_reply *reply,
                                            struct buf *why)
{
    s->features = 0;
    s->size_limit = 0;
    int rc = smtp_session_send(s, "EHLO %s", cfg->helo_name);
    if (rc == STREAM_OK)
        rc = smtp_session_reply(s, cfg->helo_timeout, reply);
    if (rc != STREAM_OK) {
        smtp_session_io_error(s, rc, "receiving the initial server greeting"
                              " or sending EHLO", why);
        return SMTP_STAGE_RETRY;
    }
    if (reply->code / 100 == 2) {
        s->features = SMTP_FEATURE_ESMTP;
        ehlo_features(s, buf_cstr(&reply->text));
        return SMTP_STAGE_OK;
    }
    if (reply->code / 100 == 4 && reply->code == 421) {
        smtp_session_said(s, reply, "EHLO", why);
        return SMTP_STAGE_RETRY;
    }
    rc = smtp_session_send(s, "HELO %s", cfg->helo_name);
    if (rc == STREAM_OK)
        rc = smtp_session_reply(s, cfg->helo_timeout, reply);
    if (rc != STREAM_OK) {
        smtp_session_io_error(s, rc, "performing the HELO handshake", why);
        return SMTP_STAGE_RETRY;
    }
    if (reply->code / 100 == 2)
        return SMTP_STAGE_OK;
    smtp_session_said(s, reply, "HELO", why);
    return reply_failure(reply);
}

static void log_tls(const struct smtp_session *s)
{
    struct buf text;
    buf_init(&text, 1024);
    (void)tls_session_describe(s->tls, &text);
    log_info("%s TLS connection established to %s: %s",
             tls_trust_name(tls_session_trust(s->tls)), s->relay,
             buf_cstr(&text));
    buf_free(&text);
}

/* STARTTLS and EHLO again.  SMTP_STAGE_TLS_PLAIN: the handshake failed
 * at level may, the caller reconnects without TLS. */
static enum smtp_stage_status session_starttls(const struct smtp_config *cfg,
                                               struct smtp_session *s,
                                               struct smtp_reply *reply,
                                               struct buf *why)
{
    int rc = smtp_session_send(s, "STARTTLS");
    if (rc == STREAM_OK)
        rc = smtp_session_reply(s, cfg->starttls_timeout, reply);
    if (rc != STREAM_OK) {
        smtp_session_io_error(s, rc, "sending STARTTLS", why);
        return SMTP_STAGE_RETRY;
    }
    if (reply->code != 220) {
        buf_reset(why);
        buf_printf(why, "%shost %s[%s] refused to start TLS: %s",
                   cfg->tls_level == TLS_LEVEL_MAY
                       ? "" : "TLS is required, but ",
                   s->host, s->addr, buf_cstr(&reply->text));
        if (cfg->tls_level == TLS_LEVEL_MAY)
            return SMTP_STAGE_TLS_PLAIN;
        return SMTP_STAGE_RETRY;
    }
    struct buf error;
    buf_init(&error, 1024);
    int literal = strchr(s->host, ':') != NULL ||
                  strspn(s->host, "0123456789.") == strlen(s->host);
    rc = tls_session_start_on_stream(cfg->tls, &s->stream,
                                     literal ? NULL : s->host,
                                     (int)cfg->starttls_timeout * 1000,
                                     TLS_PENDING_REFUSE, NULL, &s->tls,
                                     &error);
    if (rc != TLS_OK) {
        log_info("SSL_connect error to %s: %s", s->relay, buf_cstr(&error));
        buf_reset(why);
        buf_printf(why, "Cannot start TLS: handshake failure with %s[%s]",
                   s->host, s->addr);
        buf_free(&error);
        s->broken = 1;
        reply_none(reply, "4.7.5");
        return cfg->tls_level == TLS_LEVEL_MAY ? SMTP_STAGE_TLS_PLAIN
                                               : SMTP_STAGE_RETRY;
    }
    buf_free(&error);
    log_tls(s);
    return session_hello(cfg, s, reply, why);
}

static struct smtp_session *session_new(const struct smtp_target *t,
                                        int port, int fd)
{
    struct smtp_session *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->fd = fd;
    stream_init(&s->stream, fd, 300 * 1000);
    (void)text_copy(s->host, sizeof(s->host), t->host);
    (void)text_copy(s->addr, sizeof(s->addr), t->addr);
    s->port = port;
    struct buf relay;
    buf_init(&relay, sizeof(s->relay) - 1);
    if (buf_printf(&relay, "%s[%s]:%d", t->host, t->addr, port) == 0)
        (void)text_copy(s->relay, sizeof(s->relay), buf_cstr(&relay));
    buf_free(&relay);
    return s;
}

enum smtp_stage_status smtp_session_open(const struct smtp_config *cfg,
                                         const struct smtp_target *t,
                                         int port, int use_tls,
                                         struct smtp_session **session,
                                         struct smtp_reply *reply,
                                         struct buf *why)
{
    *session = NULL;
    reply->code = 0;
    buf_reset(&reply->text);
    int fd = session_connect(cfg, t, port, why);
    if (fd < 0) {
        reply_none(reply, "4.4.1");
        return SMTP_STAGE_RETRY;
    }
    struct smtp_session *s = session_new(t, port, fd);
    if (s == NULL) {
        close(fd);
        buf_set_str(why, "out of memory");
        return SMTP_STAGE_RETRY;
    }
    enum smtp_stage_status st = SMTP_STAGE_OK;
    int rc = smtp_session_reply(s, cfg->helo_timeout, reply);
    if (rc != STREAM_OK) {
        smtp_session_io_error(s, rc, "receiving the initial server greeting",
                              why);
        st = SMTP_STAGE_RETRY;
    } else if (reply->code / 100 != 2) {
        buf_reset(why);
        buf_printf(why, "host %s[%s] refused to talk to me: %s", s->host,
                   s->addr, buf_cstr(&reply->text));
        st = reply_failure(reply);
    }
    if (st == SMTP_STAGE_OK)
        st = session_hello(cfg, s, reply, why);
    int tls_wanted = use_tls && cfg->tls != NULL &&
                     cfg->tls_level != TLS_LEVEL_NONE;
    if (st == SMTP_STAGE_OK && tls_wanted &&
        (s->features & SMTP_FEATURE_STARTTLS))
        st = session_starttls(cfg, s, reply, why);
    else if (st == SMTP_STAGE_OK && use_tls &&
             cfg->tls_level >= TLS_LEVEL_ENCRYPT) {
        buf_reset(why);
        buf_printf(why, "TLS is required, but was not offered by host "
                   "%s[%s]", s->host, s->addr);
        reply_none(reply, "4.7.4");
        st = SMTP_STAGE_RETRY;
    }
    if (st != SMTP_STAGE_OK) {
        smtp_session_close(cfg, s);
        return st;
    }
    *session = s;
    return SMTP_STAGE_OK;
}
