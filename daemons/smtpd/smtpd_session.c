/*
 * smtpd_session - one SMTP session: the greeting, the command loop, the
 * replies and the limits, and the log lines Postfix's tools read.
 *
 * Reading: one command line at a time, at most line_length_limit octets
 * (RFC 5321 4.5.3.1.4 allows 512 with CRLF; ESMTP parameters need more).
 * A longer line is read to its end and answered "500 5.5.2 Error: line too
 * long" (it is never split into two commands).  A line ended by a bare LF,
 * or holding a bare CR or a NUL, is refused with 500 5.5.2 (RFC 5321
 * 2.3.8; the SMTP smuggling class of attacks depends on servers that take
 * such line ends).
 *
 * Pipelining (RFC 2920): replies are queued and sent when the client has
 * nothing more buffered, so a pipelined group gets its replies in one
 * write.  A client must not pipeline past DATA (the 354 decides whether
 * content follows): input after DATA before the 354 ends the session;
 * input after STARTTLS before the handshake is thrown away and logged
 * (lib/tls.h); BDAT chunks may be pipelined, as RFC 3030 allows.  Input
 * that arrives before the greeting, after a command that ends a group
 * (EHLO, HELO, NOOP, VRFY, EXPN) or in a session without EHLO is
 * "improper command pipelining": logged, and with
 * smtpd_forbid_unauth_pipelining = yes (the default, as in Postfix 3.9)
 * answered "554 5.5.0 Error: SMTP protocol synchronization" and the end.
 *
 * Lines that are no SMTP (HTTP and proxy requests, message headers, a
 * line that does not start with a letter) end the session with Postfix's
 * "221 2.7.0 Error: I can break rules, too. Goodbye.".
 *
 * Errors: every 4xx/5xx reply counts; from smtpd_soft_error_limit on, each
 * costs smtpd_error_sleep_time before it is sent; at
 * smtpd_hard_error_limit the session ends with "421 4.7.0 Error: too many
 * errors".  Junk commands (smtpd_command.h) are free up to
 * smtpd_junk_command_limit, then each counts as an error.  A command
 * that is not complete smtpd_timeout after the previous reply was due
 * (however slowly its bytes trickle in), or whose replies the client does
 * not take within that time, gets "421 4.4.2 Error: timeout exceeded"
 * where it can still be sent, and the connection is closed.
 *
 * Enhanced status codes (RFC 2034, RFC 3463) are on every reply after the
 * greeting.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "smtpd.h"
#include "text.h"

#define SMTPD_REPLY_MAX 1024
#define SMTPD_TLS_HANDSHAKE_MS 60000
#define SMTPD_LINGER_MS 1000
#define SMTPD_LINGER_BYTES (1024 * 1024)

/* ---- replies and logs ---------------------------------------------- */

void smtpd_reply(struct smtpd_session *s, const char *fmt, ...)
{
    char text[SMTPD_REPLY_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (n < 0)
        log_panic("reply format error");
    s->last_code = atoi(text);
    if (text[0] == '4' || text[0] == '5') {
        s->errors++;
        if (s->errors >= s->smtpd->soft_error_limit &&
            s->smtpd->error_sleep > 0) {
            (void)stream_flush(&s->stream);
            sleep((unsigned)s->smtpd->error_sleep);
        }
    }
    (void)stream_puts(&s->stream, text);
    (void)stream_puts(&s->stream, "\r\n");
}

const char *smtpd_protocol_name(const struct smtpd_session *s)
{
    if (!s->esmtp)
        return "SMTP";
    if (s->tls && s->sasl_done)
        return "ESMTPSA";
    if (s->tls)
        return "ESMTPS";
    if (s->sasl_done)
        return "ESMTPA";
    return "ESMTP";
}

void smtpd_log_reject(struct smtpd_session *s, const char *command,
                      const char *reply, const char *recipient)
{
    struct buf line;
    buf_init(&line, 4096);
    (void)buf_printf(&line, "%s: reject: %s from %s: %s; from=<%s>",
                     s->queue_id[0] ? s->queue_id : "NOQUEUE", command,
                     s->client_id, reply, buf_cstr(&s->sender));
    if (recipient != NULL)
        (void)buf_printf(&line, " to=<%s>", recipient);
    (void)buf_printf(&line, " proto=%s helo=<%s>", smtpd_protocol_name(s),
                     buf_cstr(&s->helo));
    log_info("%s", buf_cstr(&line));
    buf_free(&line);
}

static void smtpd_log_disconnect(struct smtpd_session *s)
{
    struct buf line;
    buf_init(&line, 2048);
    (void)buf_printf(&line, "disconnect from %s", s->client_id);
    unsigned long total = 0, ok = 0;
    for (int i = 0; i < SMTPD_CMD_COUNT; i++) {
        if (s->count_total[i] == 0)
            continue;
        total += s->count_total[i];
        ok += s->count_ok[i];
        if (s->count_ok[i] == s->count_total[i])
            (void)buf_printf(&line, " %s=%lu",
                             smtpd_command_counter_name(i),
                             s->count_total[i]);
        else
            (void)buf_printf(&line, " %s=%lu/%lu",
                             smtpd_command_counter_name(i),
                             s->count_ok[i], s->count_total[i]);
    }
    if (ok == total)
        (void)buf_printf(&line, " commands=%lu", total);
    else
        (void)buf_printf(&line, " commands=%lu/%lu", ok, total);
    log_info("%s", buf_cstr(&line));
    buf_free(&line);
}

void smtpd_timeout_reply(struct smtpd_session *s)
{
    /* The stream keeps a timeout as a sticky error.  When it was a read
     * that timed out, the client should still learn why we hang up, so
     * the error is cleared for this one bounded write.  When replies are
     * still waiting, the client does not read: writing more would only
     * wait again. */
    if (s->stream.out.len == 0) {
        s->stream.error = STREAM_OK;
        stream_set_timeout(&s->stream, 10 * 1000);
        stream_set_deadline(&s->stream, 0);
        smtpd_reply(s, "421 4.4.2 %s Error: timeout exceeded",
                    s->smtpd->myhostname);
        (void)stream_flush(&s->stream);
    }
    log_info("timeout after %s from %s", s->last_command, s->client_id);
}

/* The end of a plaintext session: our side is shut down, then what the
 * client still sends is read and dropped until it closes too, for at
 * most SMTPD_LINGER_MS and SMTPD_LINGER_BYTES.  Closing a socket with
 * unread input sends a TCP reset, and a reset can destroy our last reply
 * (the 421 or 554 that says why) before the client reads it. */
static void smtpd_linger(struct smtpd_session *s)
{
    (void)stream_discard_pending(&s->stream);
    if (shutdown(s->fd, SHUT_WR) != 0)
        return; /* the client is gone already */
    long long until = stream_now_ms() + SMTPD_LINGER_MS;
    char bytes[4096];
    size_t total = 0;
    while (total < SMTPD_LINGER_BYTES) {
        long long left = until - stream_now_ms();
        struct pollfd p = { .fd = s->fd, .events = POLLIN, .revents = 0 };
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        ssize_t n = recv(s->fd, bytes, sizeof(bytes), MSG_DONTWAIT);
        if (n <= 0)
            break;
        total += (size_t)n;
    }
}

/* ---- transaction ---------------------------------------------------- */

void smtpd_transaction_reset(struct smtpd_session *s)
{
    if (s->cleanup_open) {
        cleanup_client_abort(&s->cleanup);
        s->cleanup_open = 0;
    }
    s->in_mail = 0;
    buf_reset(&s->sender);
    s->mail_flags = 0;
    s->smtputf8 = 0;
    s->body = SMTP_BODY_NONE;
    s->ret = SMTP_RET_NONE;
    buf_reset(&s->envid);
    s->declared_size = -1;
    s->rcpt_count = 0;
    s->queue_id[0] = '\0';
    s->bdat = SMTPD_BDAT_NONE;
    s->bdat_size = 0;
    s->bdat_cr = 0;
    buf_reset(&s->bdat_reply);
}

/* Text from the client made safe for a log line: printable ASCII and
 * UTF-8 kept, anything else '?'. */
static void smtpd_set_printable(struct buf *out, const char *text)
{
    buf_reset(out);
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        (void)buf_append_char(out, (*p < 0x20 || *p == 0x7f) ? '?'
                                                               : (char)*p);
}

/* Client bytes for a log line as Postfix shows them: CR and LF as "\r"
 * and "\n", other controls '?'. */
static void smtpd_set_escaped(struct buf *out, const char *data, size_t len)
{
    buf_reset(out);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)data[i];
        if (c == '\r')
            (void)buf_append_str(out, "\\r");
        else if (c == '\n')
            (void)buf_append_str(out, "\\n");
        else
            (void)buf_append_char(out, (c < 0x20 || c == 0x7f) ? '?'
                                                                 : (char)c);
    }
}

/* ---- commands ------------------------------------------------------- */

static void smtpd_helo(struct smtpd_session *s, const char *arg, int esmtp)
{
    if (arg[0] == '\0') {
        smtpd_reply(s, "501 5.5.4 Syntax: %s hostname",
                    esmtp ? "EHLO" : "HELO");
        return;
    }
    smtpd_transaction_reset(s);
    smtpd_set_printable(&s->helo, arg);
    s->esmtp = esmtp;
    const struct smtpd *d = s->smtpd;
    if (!esmtp) {
        s->extensions = 0;
        smtpd_reply(s, "250 %s", d->myhostname);
        return;
    }
    s->extensions = SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_DSN |
                    SMTP_EXT_SMTPUTF8;
    int auth = d->sasl_enable && !s->sasl_done &&
               (s->tls != NULL || !d->tls_auth_only);
    if (auth)
        s->extensions |= SMTP_EXT_AUTH;
    smtpd_reply(s, "250-%s", d->myhostname);
    smtpd_reply(s, "250-PIPELINING");
    if (d->message_size_limit > 0)
        smtpd_reply(s, "250-SIZE %ld", d->message_size_limit);
    else
        smtpd_reply(s, "250-SIZE");
    if (d->tls != NULL && s->tls == NULL)
        smtpd_reply(s, "250-STARTTLS");
    if (auth)
        smtpd_reply(s, "250-AUTH %s", SASL_MECHANISMS);
    smtpd_reply(s, "250-ENHANCEDSTATUSCODES");
    smtpd_reply(s, "250-8BITMIME");
    smtpd_reply(s, "250-DSN");
    smtpd_reply(s, "250-SMTPUTF8");
    smtpd_reply(s, "250 CHUNKING");
}

/* The path and parameters of MAIL or RCPT into s->addr.  As Postfix does
 * with its default strict_rfc821_envelopes = no, a path without angle
 * brackets ("MAIL FROM:user@example.org", sent by old devices and
 * scripts) is taken as if it had them; everything else about it is judged
 * as strictly. */
static enum smtp_address_result smtpd_parse_path(struct smtpd_session *s,
                                                 enum smtp_address_command cmd,
                                                 const char *path, size_t len,
                                                 unsigned ext)
{
    if (len == 0 || path[0] == '<')
        return smtp_address_parse(&s->addr, cmd, path, len, ext);
    size_t word = strcspn(path, " ");
    struct buf bracketed;
    buf_init(&bracketed, (size_t)s->smtpd->line_limit + 3);
    enum smtp_address_result r;
    if (buf_append_char(&bracketed, '<') != 0 ||
        buf_append(&bracketed, path, word) != 0 ||
        buf_append_char(&bracketed, '>') != 0 ||
        buf_append(&bracketed, path + word, len - word) != 0)
        r = smtp_address_parse(&s->addr, cmd, path, len, ext);
    else
        r = smtp_address_parse(&s->addr, cmd, bracketed.data, bracketed.len,
                               ext);
    buf_free(&bracketed);
    return r;
}

static void smtpd_address_error(struct smtpd_session *s)
{
    const struct smtp_address *a = &s->addr;
    smtpd_reply(s, "%d %s %s", a->reply_code, a->status,
                buf_cstr(&a->reason));
}

static void smtpd_mail(struct smtpd_session *s, const char *arg)
{
    const struct smtpd *d = s->smtpd;
    const char *line = buf_cstr(&s->line);
    /* RFC 3207 4.2: after the TLS handshake the client starts over with
     * EHLO; mail before it would be judged on what it said in the clear. */
    if ((d->helo_required || s->tls != NULL) && s->helo.len == 0) {
        smtpd_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
        return;
    }
    if (s->in_mail) {
        smtpd_reply(s, "503 5.5.1 Error: nested MAIL command");
        return;
    }
    const char *path = smtpd_command_path(arg, "FROM:");
    if (path == NULL) {
        smtpd_reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
        return;
    }
    size_t len = s->line.len - (size_t)(path - line);
    if (smtpd_parse_path(s, SMTP_ADDRESS_MAIL, path, len, s->extensions) !=
        SMTP_ADDRESS_OK) {
        smtpd_address_error(s);
        return;
    }
    const struct smtp_address *a = &s->addr;
    if ((a->seen & SMTP_PARAM_BIT(SMTP_PARAM_SIZE)) &&
        d->message_size_limit > 0 && a->size > d->message_size_limit) {
        smtpd_reply(s, "552 5.3.4 Message size exceeds fixed limit");
        buf_set_str(&s->sender, buf_cstr(&a->address));
        smtpd_log_reject(s, "MAIL", "552 5.3.4 Message size exceeds fixed "
                                    "limit", NULL);
        buf_reset(&s->sender);
        return;
    }
    if (smtpd_anvil_message(s) != 0)
        return;
    smtpd_transaction_reset(s);
    if (buf_set_str(&s->sender, buf_cstr(&a->address)) != 0 ||
        buf_set(&s->envid, a->envid.data, a->envid.len) != 0) {
        smtpd_reply(s, "451 4.3.0 Error: out of memory");
        return;
    }
    if (!s->smtpd->delay_reject) {
        struct buf reply;
        buf_init(&reply, SMTPD_REPLY_MAX);
        int rejected = smtpd_policy_sender(s, &reply) != 0;
        if (rejected) {
            smtpd_reply(s, "%s", buf_cstr(&reply));
            smtpd_log_reject(s, "MAIL", buf_cstr(&reply), NULL);
            buf_reset(&s->sender);
        }
        buf_free(&reply);
        if (rejected)
            return;
    }
    s->in_mail = 1;
    s->mail_flags = a->flags;
    s->smtputf8 = a->smtputf8;
    s->body = a->body;
    s->ret = a->ret;
    s->declared_size = (a->seen & SMTP_PARAM_BIT(SMTP_PARAM_SIZE)) ? a->size
                                                                    : -1;
    smtpd_reply(s, "250 2.1.0 Ok");
}

/* "rfc822;user@example.org" for the cleanup envelope, or NULL. */
static const char *smtpd_orcpt(const struct smtp_address *a, struct buf *out)
{
    if (!(a->seen & SMTP_PARAM_BIT(SMTP_PARAM_ORCPT)))
        return NULL;
    buf_reset(out);
    if (buf_printf(out, "%s;", buf_cstr(&a->orcpt_type)) != 0 ||
        buf_append(out, a->orcpt.data, a->orcpt.len) != 0)
        return NULL;
    return memchr(out->data, '\0', out->len) ? NULL : buf_cstr(out);
}

static const char *smtpd_notify(const struct smtp_address *a, struct buf *out)
{
    if (!(a->seen & SMTP_PARAM_BIT(SMTP_PARAM_NOTIFY)))
        return NULL;
    buf_reset(out);
    if (a->notify & SMTP_NOTIFY_NEVER)
        return buf_set_str(out, "NEVER") == 0 ? buf_cstr(out) : NULL;
    static const struct { unsigned bit; const char *name; } names[] = {
        { SMTP_NOTIFY_SUCCESS, "SUCCESS" }, { SMTP_NOTIFY_FAILURE, "FAILURE" },
        { SMTP_NOTIFY_DELAY, "DELAY" },
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (a->notify & names[i].bit)
            (void)buf_printf(out, "%s%s", out->len ? "," : "", names[i].name);
    return buf_cstr(out);
}

static void smtpd_rcpt_accept(struct smtpd_session *s)
{
    const struct smtp_address *a = &s->addr;
    if (!s->cleanup_open && smtpd_cleanup_open(s) != 0) {
        smtpd_reply(s, "451 4.3.0 Error: queue file write error");
        return;
    }
    struct buf orcpt, notify, error;
    buf_init(&orcpt, SMTP_ORCPT_MAX + 64);
    buf_init(&notify, 64);
    buf_init(&error, 1024);
    if (cleanup_client_add_recipient(&s->cleanup, buf_cstr(&a->address),
                                     smtpd_orcpt(a, &orcpt),
                                     smtpd_notify(a, &notify),
                                     &error) != 0) {
        log_warn("%s: cleanup: %s", s->queue_id, buf_cstr(&error));
        s->cleanup_open = 0;
        smtpd_transaction_reset(s);
        smtpd_reply(s, "451 4.3.0 Error: queue file write error");
    } else {
        s->rcpt_count++;
        smtpd_reply(s, "250 2.1.5 Ok");
    }
    buf_free(&orcpt);
    buf_free(&notify);
    buf_free(&error);
}

static void smtpd_rcpt(struct smtpd_session *s, const char *arg)
{
    const char *line = buf_cstr(&s->line);
    if (!s->in_mail) {
        smtpd_reply(s, "503 5.5.1 Error: need MAIL command");
        return;
    }
    if (s->bdat != SMTPD_BDAT_NONE) {
        smtpd_reply(s, "503 5.5.1 Error: RCPT after BDAT");
        return;
    }
    if (s->rcpt_count >= (size_t)s->smtpd->recipient_limit) {
        smtpd_reply(s, "452 4.5.3 Error: too many recipients");
        return;
    }
    const char *path = smtpd_command_path(arg, "TO:");
    if (path == NULL) {
        smtpd_reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
        return;
    }
    size_t len = s->line.len - (size_t)(path - line);
    unsigned ext = s->extensions | (s->smtputf8 ? SMTP_UTF8_TRANSACTION : 0);
    if (smtpd_parse_path(s, SMTP_ADDRESS_RCPT, path, len, ext) !=
        SMTP_ADDRESS_OK) {
        smtpd_address_error(s);
        return;
    }
    if (smtpd_anvil_recipient(s) != 0)
        return;
    struct buf reply;
    buf_init(&reply, SMTPD_REPLY_MAX);
    if (smtpd_policy_recipient(s, &s->addr, &reply) != 0) {
        smtpd_reply(s, "%s", buf_cstr(&reply));
        smtpd_log_reject(s, "RCPT", buf_cstr(&reply),
                         buf_cstr(&s->addr.address));
    } else {
        smtpd_rcpt_accept(s);
    }
    buf_free(&reply);
}

/* "Anonymous TLS connection established from ...: TLSv1.3 with cipher
 * ..." always (Postfix logs it from smtpd_tls_loglevel 1; here it is the
 * only record of which sessions were encrypted); from level 1 on also
 * what the client certificate check found. */
static void smtpd_log_tls(struct smtpd_session *s)
{
    log_info("%s TLS connection established from %s: %s",
             tls_trust_name(tls_session_trust(s->tls)), s->client_id,
             buf_cstr(&s->tls_info));
    if (s->smtpd->tls_loglevel >= 1)
        log_info("%s: client certificate verification: %s", s->client_id,
                 tls_session_verify_text(s->tls));
}

static void smtpd_starttls(struct smtpd_session *s, const char *arg)
{
    if (arg[0] != '\0') {
        smtpd_reply(s, "501 5.5.4 Syntax: STARTTLS");
        return;
    }
    if (s->tls != NULL) {
        smtpd_reply(s, "554 5.5.1 Error: TLS already active");
        return;
    }
    if (s->smtpd->tls == NULL) {
        smtpd_reply(s, "502 5.5.1 Error: command not implemented");
        return;
    }
    smtpd_reply(s, "220 2.0.0 Ready to start TLS");
    size_t pending = 0;
    struct buf error;
    buf_init(&error, 1024);
    int rc = tls_session_start_on_stream(s->smtpd->tls, &s->stream, NULL,
                                         SMTPD_TLS_HANDSHAKE_MS,
                                         TLS_PENDING_DISCARD, &pending,
                                         &s->tls, &error);
    if (pending > 0)
        log_warn("%s: discarding %zu bytes of pipelined input after "
                 "STARTTLS", s->client_id, pending);
    if (rc != TLS_OK) {
        log_info("SSL_accept error from %s: %s", s->client_id,
                 buf_cstr(&error));
        log_info("lost connection after STARTTLS from %s", s->client_id);
        s->quit = 1;
        buf_free(&error);
        return;
    }
    buf_free(&error);
    buf_reset(&s->tls_info);
    (void)tls_session_describe(s->tls, &s->tls_info);
    smtpd_log_tls(s);
    /* RFC 3207 4.2: forget everything learned before the handshake. */
    smtpd_transaction_reset(s);
    buf_reset(&s->helo);
    s->esmtp = 0;
    s->extensions = 0;
    s->sasl_done = 0;
    buf_reset(&s->sasl_method);
    buf_reset(&s->sasl_username);
}

static void smtpd_vrfy(struct smtpd_session *s, const char *arg)
{
    if (s->smtpd->disable_vrfy) {
        smtpd_reply(s, "502 5.5.1 VRFY command is disabled");
        return;
    }
    if (arg[0] == '\0') {
        smtpd_reply(s, "501 5.5.4 Syntax: VRFY address");
        return;
    }
    smtpd_reply(s, "252 2.0.0 Cannot VRFY user, but will accept message "
                   "and attempt delivery");
}

/* Commands that a session with mandatory TLS may give before STARTTLS. */
static int smtpd_allowed_before_tls(enum smtpd_command_id id)
{
    return id == SMTPD_CMD_HELO || id == SMTPD_CMD_EHLO ||
           id == SMTPD_CMD_STARTTLS || id == SMTPD_CMD_NOOP ||
           id == SMTPD_CMD_RSET || id == SMTPD_CMD_QUIT ||
           id == SMTPD_CMD_UNKNOWN;
}

/* A line that is no SMTP (smtpd_command.h): the client is not a mail
 * client, so the session ends, with Postfix's words. */
static void smtpd_forbidden(struct smtpd_session *s)
{
    struct buf shown;
    buf_init(&shown, 128);
    smtpd_set_printable(&shown, buf_cstr(&s->line));
    if (shown.len > 100)
        buf_truncate(&shown, 100);
    log_warn("non-SMTP command from %s: %s", s->client_id,
             buf_cstr(&shown));
    buf_free(&shown);
    smtpd_reply(s, "221 2.7.0 Error: I can break rules, too. Goodbye.");
    s->quit = 1;
}

static void smtpd_dispatch(struct smtpd_session *s)
{
    const char *line = buf_cstr(&s->line);
    const char *arg;
    enum smtpd_command_id id = smtpd_command_parse(line, &arg);
    s->count_total[id]++;
    s->last_command = smtpd_command_name(id);
    s->last_code = 0;
    s->previous = id;
    if (smtpd_command_forbidden(line)) {
        smtpd_forbidden(s);
        return;
    }
    if (s->smtpd->tls_level == SMTPD_TLS_ENCRYPT && s->tls == NULL &&
        !smtpd_allowed_before_tls(id)) {
        smtpd_reply(s, "530 5.7.0 Must issue a STARTTLS command first");
        return;
    }
    switch (id) {
    case SMTPD_CMD_HELO: smtpd_helo(s, arg, 0); break;
    case SMTPD_CMD_EHLO: smtpd_helo(s, arg, 1); break;
    case SMTPD_CMD_STARTTLS: smtpd_starttls(s, arg); break;
    case SMTPD_CMD_AUTH: smtpd_auth_command(s, arg); break;
    case SMTPD_CMD_MAIL: smtpd_mail(s, arg); break;
    case SMTPD_CMD_RCPT: smtpd_rcpt(s, arg); break;
    case SMTPD_CMD_DATA:
        if (arg[0] != '\0')
            smtpd_reply(s, "501 5.5.4 Syntax: DATA");
        else
            smtpd_data_command(s);
        break;
    case SMTPD_CMD_BDAT: smtpd_bdat_command(s, arg); break;
    case SMTPD_CMD_RSET:
        if (arg[0] != '\0') {
            smtpd_reply(s, "501 5.5.4 Syntax: RSET");
            break;
        }
        smtpd_transaction_reset(s);
        smtpd_reply(s, "250 2.0.0 Ok");
        break;
    case SMTPD_CMD_NOOP: smtpd_reply(s, "250 2.0.0 Ok"); break;
    case SMTPD_CMD_VRFY: smtpd_vrfy(s, arg); break;
    case SMTPD_CMD_EXPN:
        smtpd_reply(s, "502 5.5.1 Error: command not implemented");
        break;
    case SMTPD_CMD_HELP:
        smtpd_reply(s, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT "
                       "RSET NOOP QUIT HELP VRFY STARTTLS AUTH");
        break;
    case SMTPD_CMD_QUIT:
        smtpd_reply(s, "221 2.0.0 Bye");
        s->quit = 1;
        break;
    default:
        smtpd_reply(s, "500 5.5.2 Error: command not recognized");
        break;
    }
    if (s->last_code > 0 && s->last_code < 400)
        s->count_ok[id]++;
    /* Postfix: junk is free up to the limit, then each costs an error,
     * so a NOOP flood ends at smtpd_hard_error_limit. */
    if (smtpd_command_is_junk(id) &&
        s->junk_commands++ >= s->smtpd->junk_command_limit)
        s->errors++;
}

/* ---- the loop ------------------------------------------------------- */

/* Bytes the client sent that we have not read yet: in the stream's
 * buffer or in the socket (peeked, so nothing is consumed; a half-closed
 * connection shows no bytes). */
size_t smtpd_unread_input(struct smtpd_session *s, struct buf *peek)
{
    size_t pending = stream_pending(&s->stream);
    if (pending > 0) {
        (void)buf_append(peek, s->stream.in.data + s->stream.in_pos,
                         pending < 100 ? pending : 100);
        return pending;
    }
    char bytes[100];
    ssize_t n = recv(s->fd, bytes, sizeof(bytes), MSG_PEEK | MSG_DONTWAIT);
    if (n <= 0)
        return 0;
    (void)buf_append(peek, bytes, (size_t)n);
    return (size_t)n;
}

/* RFC 2920 3.1: after CONNECT, EHLO, HELO, NOOP, VRFY, EXPN and QUIT the
 * client waits for the reply, and without EHLO it may not pipeline at all.
 * Input that is already here while the reply has not even been sent was
 * written blind: a spam engine's shortcut, or a smuggling attempt.  Like
 * Postfix 3.9 (smtpd_forbid_unauth_pipelining = yes): logged once, and
 * the session ends with 554 5.5.0; with the parameter off it is only
 * logged.  After STARTTLS the handshake ran in between; DATA's own check
 * is in smtpd_data.c. */
static int smtpd_improper_pipelining(struct smtpd_session *s)
{
    enum smtpd_command_id prev = s->previous;
    if (s->improper_pipelining || prev == SMTPD_CMD_STARTTLS ||
        prev == SMTPD_CMD_QUIT || prev == SMTPD_CMD_DATA)
        return 0;
    int connect = prev == SMTPD_CMD_COUNT;
    if (!connect && !smtpd_command_ends_group(prev) && s->esmtp)
        return 0;
    if (connect && s->tls != NULL)
        return 0; /* implicit TLS: the handshake came first */
    struct buf peek, shown;
    buf_init(&peek, 100);
    buf_init(&shown, 400);
    size_t unread = smtpd_unread_input(s, &peek);
    /* A lone QUIT behind the command smuggles nothing: scripted clients
     * ("printf 'EHLO x\r\nQUIT\r\n' | openssl s_client") get their
     * replies. */
    int improper = unread > 0 &&
                   !(unread == 6 && peek.len == 6 &&
                     strncasecmp(peek.data, "QUIT\r\n", 6) == 0);
    if (improper) {
        smtpd_set_escaped(&shown, peek.data, peek.len);
        log_info("improper command pipelining after %s from %s: %s",
                 connect ? "CONNECT" : smtpd_command_name(prev),
                 s->client_id, buf_cstr(&shown));
        s->improper_pipelining = 1;
    }
    buf_free(&peek);
    buf_free(&shown);
    if (!improper || !s->smtpd->forbid_unauth_pipelining)
        return 0;
    smtpd_reply(s, "554 5.5.0 Error: SMTP protocol synchronization");
    (void)stream_flush(&s->stream);
    return 1;
}

/* 1 when a whole command line is already buffered: the replies may then
 * wait for it, as a pipelined group gets its replies in one write.  A
 * partial line is no reason to hold them back: the client may be waiting
 * for them before it sends the rest. */
static int smtpd_line_buffered(const struct smtpd_session *s)
{
    size_t pending = stream_pending(&s->stream);
    return pending > 0 &&
           memchr(s->stream.in.data + s->stream.in_pos, '\n', pending) != NULL;
}

/* Reads one command; 0 with s->line set, 1 when it was answered already
 * (bad line), -1 when the session is over.  The replies still queued and
 * the whole next command share one deadline of smtpd_timeout: each wait
 * is bounded by it too, but a client that trickles a byte at a time, or
 * reads our replies a byte at a time, would otherwise hold the process
 * for ever (Postfix's smtpd_per_request_deadline). */
static int smtpd_read_command(struct smtpd_session *s)
{
    if (smtpd_improper_pipelining(s))
        return -1;
    stream_set_deadline(&s->stream, s->smtpd->timeout_ms / 1000);
    if (!smtpd_line_buffered(s) && stream_flush(&s->stream) != STREAM_OK) {
        if (s->stream.error == STREAM_TIMEOUT)
            log_info("timeout after %s from %s", s->last_command,
                     s->client_id);
        else
            log_info("lost connection after %s from %s", s->last_command,
                     s->client_id);
        return -1;
    }
    enum stream_line_ending ending;
    int rc = stream_read_line(&s->stream, &s->line, (size_t)s->smtpd->line_limit,
                              &ending);
    /* The command's own work (lookups, cleanup) is bounded per wait. */
    stream_set_deadline(&s->stream, 0);
    if (rc == STREAM_TIMEOUT) {
        smtpd_timeout_reply(s);
        return -1;
    }
    if (rc == STREAM_TOO_LONG) {
        smtpd_reply(s, "500 5.5.2 Error: line too long");
        return 1;
    }
    if (rc != STREAM_OK || ending == STREAM_LINE_EOF) {
        log_info("lost connection after %s from %s", s->last_command,
                 s->client_id);
        return -1;
    }
    if (ending == STREAM_LINE_LF) {
        smtpd_reply(s, "500 5.5.2 Error: bare <LF> received");
        return 1;
    }
    if (memchr(s->line.data ? s->line.data : "", '\0', s->line.len)) {
        smtpd_reply(s, "500 5.5.2 Error: NUL character received");
        return 1;
    }
    if (memchr(s->line.data ? s->line.data : "", '\r', s->line.len)) {
        smtpd_reply(s, "500 5.5.2 Error: bare <CR> received");
        return 1;
    }
    return 0;
}

static int smtpd_start_wrapped_tls(struct smtpd_session *s)
{
    struct buf error;
    buf_init(&error, 1024);
    int rc = tls_session_start_server(s->smtpd->tls, s->fd,
                                      SMTPD_TLS_HANDSHAKE_MS, &s->tls, &error);
    if (rc != TLS_OK) {
        log_info("SSL_accept error from %s: %s", s->client_id,
                 buf_cstr(&error));
        log_info("lost connection after CONNECT from %s", s->client_id);
        buf_free(&error);
        return -1;
    }
    buf_free(&error);
    tls_session_attach(s->tls, &s->stream);
    (void)tls_session_describe(s->tls, &s->tls_info);
    smtpd_log_tls(s);
    return 0;
}

static void smtpd_session_init(struct smtpd_session *s, struct smtpd *d,
                               int fd)
{
    memset(s, 0, sizeof(*s));
    s->smtpd = d;
    s->fd = fd;
    stream_init(&s->stream, fd, d->timeout_ms);
    buf_init(&s->tls_info, 512);
    buf_init(&s->helo, (size_t)d->line_limit + 1);
    buf_init(&s->sasl_method, 32);
    buf_init(&s->sasl_username, SASL_PART_MAX + 1);
    buf_init(&s->line, (size_t)d->line_limit + 1);
    buf_init(&s->sender, SMTP_PATH_MAX + 1);
    buf_init(&s->envid, SMTP_ENVID_MAX + 1);
    buf_init(&s->bdat_reply, 256);
    smtp_address_init(&s->addr);
    anvil_client_init(&s->anvil);
    s->declared_size = -1;
    s->last_command = "CONNECT";
    s->previous = SMTPD_CMD_COUNT;
}

static void smtpd_session_free(struct smtpd_session *s)
{
    smtpd_transaction_reset(s);
    smtpd_anvil_disconnect(s);
    if (s->tls != NULL) {
        (void)stream_flush(&s->stream);
        (void)tls_session_shutdown(s->tls, 1000, NULL);
        tls_session_detach(&s->stream);
        tls_session_free(s->tls);
        s->tls = NULL;
    }
    stream_free(&s->stream);
    buf_free(&s->tls_info);
    buf_free(&s->helo);
    buf_free(&s->sasl_method);
    buf_free(&s->sasl_username);
    buf_free(&s->line);
    buf_free(&s->sender);
    buf_free(&s->envid);
    buf_free(&s->bdat_reply);
    smtp_address_free(&s->addr);
}

static void smtpd_session_loop(struct smtpd_session *s)
{
    const struct smtpd *d = s->smtpd;
    smtpd_reply(s, "220 %s", d->banner);
    while (!s->quit) {
        if (s->errors >= d->hard_error_limit) {
            smtpd_reply(s, "421 4.7.0 %s Error: too many errors",
                        d->myhostname);
            log_info("too many errors after %s from %s", s->last_command,
                     s->client_id);
            break;
        }
        int rc = smtpd_read_command(s);
        if (rc < 0)
            break;
        if (rc == 0)
            smtpd_dispatch(s);
    }
    (void)stream_flush(&s->stream);
    if (s->tls == NULL)
        smtpd_linger(s);
}

void smtpd_session_run(struct smtpd *d, int fd)
{
    struct smtpd_session s;
    smtpd_session_init(&s, d, fd);
    smtpd_peer_identify(&s);
    log_info("connect from %s", s.client_id);
    if (!d->tls_wrappermode || smtpd_start_wrapped_tls(&s) == 0) {
        if (smtpd_anvil_connect(&s) == 0)
            smtpd_session_loop(&s);
        else
            (void)stream_flush(&s.stream); /* the 421 */
    }
    smtpd_log_disconnect(&s);
    smtpd_session_free(&s);
}
