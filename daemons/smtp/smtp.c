/*
 * smtp - the SMTP delivery agent: takes one delivery request at a time
 * from qmgr (docs/protocol.md, "Delivery agents"; lib/delivery_request.h)
 * and hands the message to the next hop over SMTP.
 *
 * The next hop is qmgr's nexthop: a domain (its MX hosts, or its own
 * address when it has no MX), "domain:port", "[host]" or "[host]:port"
 * (no MX lookup).  The addresses are tried in order (smtp_dns.c) until
 * one takes the mail transaction: a connection that fails, a 4xx or 5xx
 * greeting, EHLO/HELO or MAIL reply moves on to the next address; when
 * none is left the last reason is every recipient's result, deferred
 * with destination_failure=1 (qmgr then holds back the whole
 * destination), or bounced when that last reply was a 5xx.  At most
 * smtp_mx_session_limit sessions that got as far as the greeting are
 * tried per request.
 *
 * Connection reuse: after a transaction the session stays open for
 * smtp_connection_cache_time_limit seconds; a request for the same next
 * hop in that time (this process serves requests one after another)
 * starts with RSET on it instead of a new connection.  An alarm closes a
 * session left idle longer, so the peer is not kept waiting.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "delivery_request.h"
#include "log.h"
#include "server.h"
#include "smtp.h"
#include "smtp_content.h"
#include "text.h"

struct smtp_agent {
    struct smtp_config cfg;
    struct smtp_session *cached;
};

/* The cached session's descriptor, for the alarm that ends it. */
static volatile sig_atomic_t cache_fd = -1;
static volatile sig_atomic_t cache_plain;
static volatile sig_atomic_t cache_expired;

static void cache_alarm(int sig)
{
    (void)sig;
    int fd = cache_fd;
    if (fd >= 0) {
        if (cache_plain)
            (void)!write(fd, "QUIT\r\n", 6);
        (void)shutdown(fd, SHUT_RDWR);
    }
    cache_expired = 1;
}

/* ---- results ----------------------------------------------------------- */

void smtp_reply_rest(struct smtp_message *msg, enum delivery_status status,
                     const char *dsn, const char *text,
                     const struct smtp_session *s, const char *diagnostic,
                     int destination_failure)
{
    struct buf remote;
    buf_init(&remote, SMTP_HOST_MAX + 16);
    if (s != NULL)
        buf_printf(&remote, "dns; %s", s->host);
    struct delivery_result res = {
        .status = status, .dsn = dsn, .text = text,
        .relay = s != NULL ? s->relay : "none",
        .remote_mta = s != NULL && diagnostic != NULL ? buf_cstr(&remote)
                                                      : NULL,
        .diagnostic = diagnostic,
        .destination_failure = destination_failure,
    };
    (void)delivery_request_reply_all(msg->req, &res);
    buf_free(&remote);
}

/* ---- the message ------------------------------------------------------- */

static int text_is_8bit(const char *text)
{
    return text != NULL && smtp_content_is_8bit(text, strlen(text));
}

/* Reads the content once: does it have 8-bit bytes? */
static int message_open(struct smtp_message *msg, struct delivery_request *req,
                        struct buf *why)
{
    memset(msg, 0, sizeof(*msg));
    msg->req = req;
    if (delivery_content_open(&msg->content, req, why) != 0)
        return -1;
    const char *data;
    size_t len;
    int rc;
    while ((rc = delivery_content_next(&msg->content, &data, &len, why)) ==
           1)
        if (smtp_content_is_8bit(data, len)) {
            msg->eight_bit = 1;
            break;
        }
    if (rc < 0) {
        delivery_content_close(&msg->content);
        return -1;
    }
    const char *utf8 = delivery_request_attr(req, "smtputf8");
    msg->smtputf8 = utf8 != NULL && strcmp(utf8, "1") == 0;
    msg->envelope_utf8 = text_is_8bit(req->sender);
    for (size_t i = 0; i < req->recipient_count; i++)
        msg->envelope_utf8 |= text_is_8bit(req->recipients[i].address);
    return 0;
}

int smtp_message_downgrade(struct smtp_message *msg, struct buf *out)
{
    struct buf whole, error;
    buf_init(&whole, BUF_LIMIT_MAX);
    buf_init(&error, 1024);
    delivery_content_rewind(&msg->content, msg->req->content_offset);
    const char *data;
    size_t len;
    int rc;
    while ((rc = delivery_content_next(&msg->content, &data, &len,
                                       &error)) == 1)
        if (buf_append(&whole, data, len) != 0) {
            rc = -1;
            break;
        }
    int status = rc < 0 ? SMTP_MIME_NO_SPACE
                        : (int)smtp_mime_downgrade(whole.data, whole.len, out);
    buf_free(&whole);
    buf_free(&error);
    return status;
}

/* ---- the next hop ------------------------------------------------------ */

struct smtp_nexthop {
    char host[SMTP_HOST_MAX];
    int port;
    int no_mx;
};

/* "[host]:port", "[host]", "host:port", "host"; an empty nexthop is the
 * domain of the first recipient.  0 or -1. */
static int nexthop_parse(const struct delivery_request *req,
                         struct smtp_nexthop *hop)
{
    const char *text = req->nexthop;
    if (text[0] == '\0') {
        const char *at = strrchr(req->recipients[0].address, '@');
        text = at != NULL ? at + 1 : "";
    }
    hop->port = 25;
    hop->no_mx = text[0] == '[';
    const char *end;
    const char *host = text;
    if (hop->no_mx) {
        host = text + 1;
        end = strchr(host, ']');
        if (end == NULL)
            return -1;
    } else {
        end = strrchr(text, ':');
        if (end == NULL)
            end = text + strlen(text);
    }
    size_t n = (size_t)(end - host);
    if (n == 0 || n >= sizeof(hop->host))
        return -1;
    memcpy(hop->host, host, n);
    hop->host[n] = '\0';
    const char *rest = end + (hop->no_mx ? 1 : 0);
    if (*rest == '\0')
        return 0;
    if (*rest != ':')
        return -1;
    long port;
    if (strcmp(rest + 1, "smtp") == 0)
        port = 25;
    else if (text_parse_long(rest + 1, 1, 65535, &port) != 0)
        return -1;
    hop->port = (int)port;
    return 0;
}

/* ---- delivery ---------------------------------------------------------- */

/* The outcome of the last address that failed, for the final result. */
struct smtp_failure {
    struct buf why;
    char dsn[16];
    int bounce;
    struct buf diagnostic;
    struct smtp_session where;  /* host, addr, relay only */
    int have_session;
};

static void failure_note(struct smtp_failure *f, const struct buf *why,
                         const struct smtp_reply *reply, int bounce,
                         const struct smtp_target *t, int port)
{
    buf_set(&f->why, why->data, why->len);
    buf_reset(&f->diagnostic);
    f->bounce = bounce;
    f->have_session = reply->code != 0;
    if (reply->code != 0) {
        (void)text_copy(f->dsn, sizeof(f->dsn), reply->dsn);
        buf_printf(&f->diagnostic, "smtp; %s", buf_cstr(&reply->text));
    } else {
        /* Not a reply: the session's own status (4.4.1 connect, 4.7.4
         * no TLS...), else a lost or timed-out conversation. */
        (void)text_copy(f->dsn, sizeof(f->dsn),
                        reply->dsn[0] != '\0' ? reply->dsn : "4.4.2");
    }
    if (!bounce && f->dsn[0] != '4')
        f->dsn[0] = '4';
    memset(&f->where, 0, sizeof(f->where));
    (void)text_copy(f->where.host, sizeof(f->where.host), t->host);
    (void)text_copy(f->where.addr, sizeof(f->where.addr), t->addr);
    struct buf relay;
    buf_init(&relay, sizeof(f->where.relay) - 1);
    if (buf_printf(&relay, "%s[%s]:%d", t->host, t->addr, port) == 0)
        (void)text_copy(f->where.relay, sizeof(f->where.relay),
                        buf_cstr(&relay));
    buf_free(&relay);
}

static void cache_keep(struct smtp_agent *a, struct smtp_session *s,
                       const char *nexthop)
{
    if (s->broken || a->cfg.cache_time_limit <= 0 ||
        text_copy(s->nexthop, sizeof(s->nexthop), nexthop) != 0) {
        smtp_session_close(&a->cfg, s);
        return;
    }
    a->cached = s;
}

/* Tries the cached session; 1 when it did the transaction. */
static int deliver_cached(struct smtp_agent *a, struct smtp_message *msg,
                          struct smtp_reply *reply, struct buf *why)
{
    struct smtp_session *s = a->cached;
    if (s == NULL)
        return 0;
    a->cached = NULL;
    s->quick_quit = 1;   /* a delivery waits: do not linger on a QUIT */
    double idle = delivery_time_now() - s->idle_since;
    if (cache_expired || idle > (double)a->cfg.cache_time_limit ||
        strcmp(s->nexthop, msg->req->nexthop) != 0) {
        s->broken |= cache_expired;
        smtp_session_close(&a->cfg, s);
        return 0;
    }
    if (smtp_session_rset(&a->cfg, s) != 0) {
        smtp_session_close(&a->cfg, s);
        return 0;
    }
    enum smtp_tx_status st = smtp_transaction(&a->cfg, s, msg, reply, why);
    if (st == SMTP_TX_DONE) {
        cache_keep(a, s, msg->req->nexthop);
        return 1;
    }
    if (st == SMTP_TX_BROKEN)
        smtp_reply_rest(msg, DELIVERY_DEFERRED, "4.4.2", buf_cstr(why), s,
                        NULL, 0);
    smtp_session_close(&a->cfg, s);
    return st == SMTP_TX_BROKEN;
}

static void deliver_route_failure(struct smtp_message *msg,
                                  enum smtp_dns_status st,
                                  const struct buf *why)
{
    const char *text = buf_cstr(why);
    switch (st) {
    case SMTP_DNS_NOTFOUND:
        smtp_reply_rest(msg, DELIVERY_BOUNCED, "5.1.2", text, NULL, NULL, 0);
        break;
    case SMTP_DNS_NULLMX:
        smtp_reply_rest(msg, DELIVERY_BOUNCED, "5.1.10", text, NULL, NULL, 0);
        break;
    case SMTP_DNS_LOOP:
        smtp_reply_rest(msg, DELIVERY_DEFERRED, "4.4.6", text, NULL, NULL, 1);
        break;
    default:
        smtp_reply_rest(msg, DELIVERY_DEFERRED, "4.4.3", text, NULL, NULL, 1);
        break;
    }
}

/* One session to target t; 1 when the transaction was done (or broke,
 * with its recipients answered), 0 to go on to the next address. */
static int deliver_target(struct smtp_agent *a, struct smtp_message *msg,
                          const struct smtp_target *t, int port, int last,
                          struct smtp_failure *fail, int *sessions)
{
    struct smtp_reply reply;
    struct buf why;
    smtp_reply_init(&reply);
    buf_init(&why, SMTP_REPLY_MAX + 1024);
    struct smtp_session *s = NULL;
    enum smtp_stage_status st = smtp_session_open(&a->cfg, t, port, 1, &s,
                                                  &reply, &why);
    if (st == SMTP_STAGE_TLS_PLAIN) {
        log_info("%s: %s; retrying in plaintext", msg->req->queue_id,
                 buf_cstr(&why));
        st = smtp_session_open(&a->cfg, t, port, 0, &s, &reply, &why);
    }
    int done = 0;
    if (st != SMTP_STAGE_OK) {
        *sessions += reply.code != 0;
        if (!last)   /* the last one is in every recipient's result */
            log_info("%s", buf_cstr(&why));
        failure_note(fail, &why, &reply, st == SMTP_STAGE_FAIL_5XX, t, port);
    } else {
        (*sessions)++;
        enum smtp_tx_status tx = smtp_transaction(&a->cfg, s, msg, &reply,
                                                  &why);
        if (tx == SMTP_TX_DONE) {
            cache_keep(a, s, msg->req->nexthop);
            s = NULL;
            done = 1;
        } else if (tx == SMTP_TX_BROKEN) {
            smtp_reply_rest(msg, DELIVERY_DEFERRED, "4.4.2", buf_cstr(&why),
                            s, NULL, 0);
            done = 1;
        } else {
            if (!last)
                log_info("%s: %s", msg->req->queue_id, buf_cstr(&why));
            failure_note(fail, &why, &reply, tx == SMTP_TX_FAIL_5XX, t, port);
        }
        smtp_session_close(&a->cfg, s);
    }
    smtp_reply_free(&reply);
    buf_free(&why);
    return done;
}

static void deliver(struct smtp_agent *a, struct delivery_request *req)
{
    struct buf why;
    buf_init(&why, SMTP_REPLY_MAX + 1024);
    struct smtp_message msg;
    if (message_open(&msg, req, &why) != 0) {
        log_warn("%s: %s", req->queue_id, buf_cstr(&why));
        struct delivery_result res = { .status = DELIVERY_DEFERRED,
                                       .dsn = "4.3.0",
                                       .text = "cannot read the queue file",
                                       .relay = "none" };
        (void)delivery_request_reply_all(req, &res);
        buf_free(&why);
        return;
    }
    struct smtp_reply reply;
    smtp_reply_init(&reply);
    struct smtp_nexthop hop;
    if (deliver_cached(a, &msg, &reply, &why)) {
        /* done on the cached session */
    } else if (nexthop_parse(req, &hop) != 0) {
        smtp_reply_rest(&msg, DELIVERY_DEFERRED, "4.3.5",
                        "bad next-hop destination", NULL, NULL, 0);
        log_warn("%s: bad next-hop destination \"%s\"", req->queue_id,
                 req->nexthop);
    } else {
        struct smtp_route route;
        enum smtp_dns_status dns = smtp_dns_route(&a->cfg, hop.host,
                                                  hop.no_mx, hop.port,
                                                  &route, &why);
        if (dns != SMTP_DNS_OK) {
            deliver_route_failure(&msg, dns, &why);
        } else {
            struct smtp_failure fail;
            memset(&fail, 0, sizeof(fail));
            buf_init(&fail.why, SMTP_REPLY_MAX + 1024);
            buf_init(&fail.diagnostic, SMTP_REPLY_MAX + 16);
            int sessions = 0, done = 0;
            for (size_t i = 0; !done && i < route.count; i++) {
                if (a->cfg.mx_session_limit > 0 &&
                    sessions >= a->cfg.mx_session_limit)
                    break;
                done = deliver_target(a, &msg, &route.targets[i], hop.port,
                                      i + 1 == route.count, &fail,
                                      &sessions);
            }
            if (!done)
                smtp_reply_rest(&msg, fail.bounce ? DELIVERY_BOUNCED
                                                  : DELIVERY_DEFERRED,
                                fail.dsn, buf_cstr(&fail.why),
                                fail.have_session ? &fail.where : NULL,
                                fail.diagnostic.len
                                    ? buf_cstr(&fail.diagnostic) : NULL,
                                !fail.bounce);
            buf_free(&fail.why);
            buf_free(&fail.diagnostic);
        }
        smtp_route_free(&route);
    }
    smtp_reply_free(&reply);
    delivery_content_close(&msg.content);
    buf_free(&why);
}

/* ---- the daemon -------------------------------------------------------- */

static void smtp_service(struct server *srv, int client_fd)
{
    struct smtp_agent *a = srv->app;
    alarm(0);
    cache_fd = -1;
    struct delivery_request req;
    struct buf error;
    buf_init(&error, 1024);
    /* client_fd stays the skeleton's, which closes it afterwards. */
    if (delivery_request_read(&req, client_fd, srv->service_name,
                              &error) != 0) {
        log_warn("%s", buf_cstr(&error));
        delivery_request_free(&req);
        buf_free(&error);
        return;
    }
    deliver(a, &req);
    (void)delivery_request_finish(&req);
    delivery_request_free(&req);
    buf_free(&error);
    cache_expired = 0;
    if (a->cached != NULL) {
        a->cached->idle_since = delivery_time_now();
        cache_plain = a->cached->tls == NULL;
        cache_fd = a->cached->fd;
        alarm((unsigned)a->cfg.cache_time_limit);
    }
}

static long get_time(struct config *cfg, const char *name)
{
    return config_get_time(cfg, name);
}

static void smtp_read_config(struct smtp_agent *a, struct config *conf)
{
    struct smtp_config *c = &a->cfg;
    c->myhostname = config_get_str(conf, "myhostname");
    c->helo_name = config_get_str(conf, "smtp_helo_name");
    const char *lookup = config_get_str(conf, "smtp_host_lookup");
    c->use_dns = strcasecmp(lookup, "native") != 0;
    struct text_list protocols;
    config_get_list(conf, "inet_protocols", &protocols);
    for (size_t i = 0; i < protocols.count; i++) {
        const char *p = protocols.items[i];
        c->want_ipv4 |= strcasecmp(p, "all") == 0 ||
                        strcasecmp(p, "ipv4") == 0;
        c->want_ipv6 |= strcasecmp(p, "all") == 0 ||
                        strcasecmp(p, "ipv6") == 0;
    }
    text_list_free(&protocols);
    if (!c->want_ipv4 && !c->want_ipv6)
        c->want_ipv4 = 1;
    c->connect_timeout = get_time(conf, "smtp_connect_timeout");
    c->helo_timeout = get_time(conf, "smtp_helo_timeout");
    c->starttls_timeout = get_time(conf, "smtp_starttls_timeout");
    c->mail_timeout = get_time(conf, "smtp_mail_timeout");
    c->rcpt_timeout = get_time(conf, "smtp_rcpt_timeout");
    c->data_init_timeout = get_time(conf, "smtp_data_init_timeout");
    c->data_xfer_timeout = get_time(conf, "smtp_data_xfer_timeout");
    c->data_done_timeout = get_time(conf, "smtp_data_done_timeout");
    c->quit_timeout = get_time(conf, "smtp_quit_timeout");
    c->rset_timeout = get_time(conf, "smtp_rset_timeout");
    c->cache_time_limit = get_time(conf, "smtp_connection_cache_time_limit");
    c->line_length_limit = config_get_int(conf, "smtp_line_length_limit");
    c->mx_address_limit = config_get_int(conf, "smtp_mx_address_limit");
    c->mx_session_limit = config_get_int(conf, "smtp_mx_session_limit");
    smtp_dns_own_addresses(c, conf);
    smtp_bind_init(c, conf);
}

/* As root: resolv.conf and the CA file. */
static void smtp_pre_drop(struct server *srv)
{
    static struct smtp_agent agent;
    struct smtp_config *c = &agent.cfg;
    smtp_read_config(&agent, srv->cfg);
    if (smtp_dns_init() != 0)
        log_warn("cannot initialize the resolver");
    const char *level = config_get_str(srv->cfg, "smtp_tls_security_level");
    if (level[0] == '\0')
        level = "none";
    if (tls_level_from_name(level, &c->tls_level) != 0)
        log_fatal("smtp_tls_security_level: unknown level \"%s\"", level);
    if (c->tls_level != TLS_LEVEL_NONE) {
        const char *ca = config_get_str(srv->cfg, "smtp_tls_CAfile");
        struct buf error;
        buf_init(&error, 1024);
        c->tls = tls_client_context_create(ca[0] != '\0' ? ca : NULL,
                                           c->tls_level, &error);
        if (c->tls == NULL)
            log_fatal("cannot set up TLS: %s", buf_cstr(&error));
        buf_free(&error);
    }
    srv->app = &agent;
}

static void smtp_init(struct server *srv)
{
    (void)srv;
    /* Equal MX preferences are shuffled: differently in each process. */
    srandom((unsigned)getpid() ^ (unsigned)time(NULL));
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = cache_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGALRM, &sa, NULL) != 0)
        log_fatal("sigaction SIGALRM: %s", strerror(errno));
}

int main(int argc, char **argv)
{
    static const struct server_spec spec = {
        .mode = SERVER_SINGLE,
        .pre_drop = smtp_pre_drop,
        .init = smtp_init,
        .service = smtp_service,
    };
    return server_main(argc, argv, &spec);
}
