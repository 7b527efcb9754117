/*
 * anvil - counts, per service and client address, the connections open
 * now and the connection, message and recipient rates, for smtpd's
 * smtpd_client_*_limit checks.  The protocol is in lib/anvil_client.h and
 * docs/protocol.md ("anvil"); anvil enforces nothing itself.
 *
 * One process serves every smtpd at once (SERVER_MULTI, master.cf maxproc
 * 1).  Each smtpd session holds one connection for its lifetime, and the
 * count it took is given back when the session says disconnect or when the
 * connection closes, whichever comes first, so a smtpd that dies leaves
 * nothing behind.  anvil never waits for a client: it reads and writes
 * what the socket allows, and drops a client whose replies pile up unread
 * or that sends a malformed or oversized record.
 *
 * Every anvil_status_update_time, and when it exits, anvil logs the
 * largest values it saw in that time, as Postfix's anvil does:
 *     statistics: max connection count 3 for (smtp:192.0.2.1) at Dec  1 ...
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "anvil_client.h"
#include "anvil_table.h"
#include "buf.h"
#include "config.h"
#include "event.h"
#include "log.h"
#include "record.h"
#include "server.h"

/* Clients tracked at once; idle ones make room for new ones. */
#define ANVIL_TABLE_MAX 20000
/* Replies a client may leave unread before anvil drops it. */
#define ANVIL_OUTPUT_MAX (64 * 1024)
#define ANVIL_READ_CHUNK 4096
/* Reads per wakeup, so that one busy client cannot keep the others out;
 * the event loop calls again while input is waiting. */
#define ANVIL_READS_PER_EVENT 16

struct anvil_session;

struct anvil {
    struct server *srv;
    struct anvil_table *table;
    long rate_unit;        /* seconds */
    long status_interval;  /* seconds */
    struct anvil_session *sessions; /* all open, for the exit */
};

struct anvil_session {
    struct anvil *anvil;
    struct anvil_session *prev;
    struct anvil_session *next;
    int fd;
    struct buf in;
    struct buf out;
    struct anvil_entry *entry; /* after connect */
    unsigned watching;         /* EVENT_* bits now watched */
};

static long long anvil_now(void)
{
    return (long long)time(NULL);
}

/* ---- statistics ---- */

static void anvil_format_time(long long when, char *out, size_t size)
{
    time_t t = (time_t)when;
    struct tm tm;
    if (localtime_r(&t, &tm) == NULL ||
        strftime(out, size, "%b %e %H:%M:%S", &tm) == 0) {
        out[0] = '\0';
    }
}

static void anvil_log_rate(const char *what, const struct anvil_max *m,
                           long unit)
{
    if (m->value == 0)
        return;
    char when[64];
    anvil_format_time(m->when, when, sizeof(when));
    log_info("statistics: max %s rate %ld/%lds for (%s) at %s", what,
             m->value, unit, m->key, when);
}

static void anvil_log_stats(struct anvil *a)
{
    struct anvil_stats st;
    anvil_table_stats(a->table, &st);
    char when[64];
    anvil_log_rate("connection", &st.connect_rate, a->rate_unit);
    if (st.count.value > 0) {
        anvil_format_time(st.count.when, when, sizeof(when));
        log_info("statistics: max connection count %ld for (%s) at %s",
                 st.count.value, st.count.key, when);
    }
    anvil_log_rate("message", &st.message_rate, a->rate_unit);
    anvil_log_rate("recipient", &st.recipient_rate, a->rate_unit);
    if (st.size.value > 0) {
        anvil_format_time(st.size.when, when, sizeof(when));
        log_info("statistics: max cache size %ld at %s", st.size.value, when);
    }
    anvil_table_stats_reset(a->table);
}

static void anvil_on_status_timer(struct event_loop *loop, void *ctx)
{
    struct anvil *a = ctx;
    anvil_log_stats(a);
    if (event_timer_add(loop, a->status_interval * 1000,
                        anvil_on_status_timer, a) < 0)
        log_fatal("event_timer_add: %s", strerror(errno));
}

static void anvil_on_expire_timer(struct event_loop *loop, void *ctx)
{
    struct anvil *a = ctx;
    size_t dropped = anvil_table_expire(a->table, anvil_now());
    if (dropped > 0)
        log_debug("expired %zu idle clients, %zu left", dropped,
                  anvil_table_size(a->table));
    if (event_timer_add(loop, a->rate_unit * 1000, anvil_on_expire_timer,
                        a) < 0)
        log_fatal("event_timer_add: %s", strerror(errno));
}

/* ---- sessions ---- */

static void anvil_session_close(struct anvil_session *s)
{
    struct anvil *a = s->anvil;
    if (s->entry != NULL)
        anvil_table_disconnect(a->table, s->entry, anvil_now());
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        a->sessions = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    server_multi_close(a->srv, s->fd);
    buf_free(&s->in);
    buf_free(&s->out);
    free(s);
}

static void anvil_on_io(struct event_loop *loop, int fd, unsigned events,
                        void *ctx);

/* Watches for input always, and for output while replies wait. */
static int anvil_session_update_watch(struct anvil_session *s)
{
    unsigned want = EVENT_READ | (s->out.len > 0 ? EVENT_WRITE : 0);
    if (want == s->watching)
        return 0;
    if (event_watch(s->anvil->srv->loop, s->fd, want, anvil_on_io, s) != 0) {
        log_warn("watch client: %s", strerror(errno));
        return -1;
    }
    s->watching = want;
    return 0;
}

/* Writes what the socket takes now; returns -1 when the client is gone. */
static int anvil_session_flush(struct anvil_session *s)
{
    while (s->out.len > 0) {
        ssize_t n = write(s->fd, s->out.data, s->out.len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            log_debug("write to client: %s",
                      n < 0 ? strerror(errno) : "short write");
            return -1;
        }
        buf_consume(&s->out, (size_t)n);
    }
    return anvil_session_update_watch(s);
}

static int anvil_session_reply(struct anvil_session *s,
                               const struct record *reply)
{
    if (record_encode(reply, &s->out) != RECORD_OK) {
        log_warn("client does not read its replies; dropping it");
        return -1;
    }
    return 0;
}

static int anvil_reply_fail(struct anvil_session *s, struct record *reply,
                            const char *reason)
{
    record_reset(reply);
    if (record_add_str(reply, "status", "fail") != RECORD_OK ||
        record_add_str(reply, "reason", reason) != RECORD_OK)
        return -1;
    return anvil_session_reply(s, reply);
}

/* A service name or client address: printable ASCII, no space, bounded. */
static const char *anvil_get_word(const struct record *r, const char *name,
                                  size_t max)
{
    const char *value = record_get_str(r, name);
    if (value == NULL)
        return NULL;
    size_t len = strlen(value);
    if (len == 0 || len > max)
        return NULL;
    for (size_t i = 0; i < len; i++)
        if (value[i] <= ' ' || value[i] > '~')
            return NULL;
    return value;
}

static int anvil_handle_connect(struct anvil_session *s,
                                const struct record *req,
                                struct record *reply)
{
    if (s->entry != NULL)
        return anvil_reply_fail(s, reply, "already connected");
    const char *service = anvil_get_word(req, "service", ANVIL_SERVICE_MAX);
    const char *address =
        anvil_get_word(req, "client_address", ANVIL_ADDRESS_MAX);
    if (service == NULL || address == NULL)
        return anvil_reply_fail(s, reply,
                                "missing or bad service or client_address");
    long count, rate;
    s->entry = anvil_table_connect(s->anvil->table, service, address,
                                   anvil_now(), &count, &rate);
    if (s->entry == NULL) {
        log_warn("cannot count (%s:%s): %s", service, address,
                 errno == ENOSPC ? "table full of open connections"
                                 : strerror(errno));
        return anvil_reply_fail(s, reply, "table full");
    }
    log_debug("connect (%s:%s) count=%ld rate=%ld", service, address, count,
              rate);
    if (record_add_str(reply, "status", "ok") != RECORD_OK ||
        record_add_long(reply, "count", count) != RECORD_OK ||
        record_add_long(reply, "rate", rate) != RECORD_OK)
        return -1;
    return anvil_session_reply(s, reply);
}

static int anvil_handle_event(struct anvil_session *s, int recipient,
                              struct record *reply)
{
    if (s->entry == NULL)
        return anvil_reply_fail(s, reply, "not connected");
    long long now = anvil_now();
    long rate = recipient
        ? anvil_table_recipient(s->anvil->table, s->entry, now)
        : anvil_table_message(s->anvil->table, s->entry, now);
    if (record_add_str(reply, "status", "ok") != RECORD_OK ||
        record_add_long(reply, "rate", rate) != RECORD_OK)
        return -1;
    return anvil_session_reply(s, reply);
}

enum anvil_verdict { ANVIL_GO_ON, ANVIL_CLOSE };

static enum anvil_verdict anvil_handle(struct anvil_session *s,
                                       const struct record *req)
{
    const char *request = record_get_str(req, "request");
    if (request != NULL && strcmp(request, "disconnect") == 0)
        return ANVIL_CLOSE;
    struct record reply;
    record_init(&reply);
    int rc;
    if (request == NULL)
        rc = anvil_reply_fail(s, &reply, "missing request");
    else if (strcmp(request, "connect") == 0)
        rc = anvil_handle_connect(s, req, &reply);
    else if (strcmp(request, "message") == 0)
        rc = anvil_handle_event(s, 0, &reply);
    else if (strcmp(request, "recipient") == 0)
        rc = anvil_handle_event(s, 1, &reply);
    else
        rc = anvil_reply_fail(s, &reply, "unknown request");
    record_free(&reply);
    return rc == 0 ? ANVIL_GO_ON : ANVIL_CLOSE;
}

static uint32_t anvil_get_u32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 |
           (uint32_t)u[2] << 8 | (uint32_t)u[3];
}

/* Handles every whole record in the input buffer. */
static enum anvil_verdict anvil_session_parse(struct anvil_session *s)
{
    while (s->in.len >= 4) {
        uint32_t len = anvil_get_u32(s->in.data);
        if (len > ANVIL_RECORD_MAX) {
            log_warn("client sent a record of %lu bytes (limit %d); "
                     "dropping it", (unsigned long)len, ANVIL_RECORD_MAX);
            return ANVIL_CLOSE;
        }
        size_t whole = 4 + (size_t)len;
        if (s->in.len < whole)
            return ANVIL_GO_ON;
        struct record req;
        record_init(&req);
        int rc = record_decode(&req, s->in.data, whole, ANVIL_RECORD_MAX);
        enum anvil_verdict v = ANVIL_CLOSE;
        if (rc != RECORD_OK)
            log_warn("client sent a bad record: %s; dropping it",
                     record_status_text(rc));
        else
            v = anvil_handle(s, &req);
        record_free(&req);
        if (v == ANVIL_CLOSE)
            return v;
        buf_consume(&s->in, whole);
    }
    return ANVIL_GO_ON;
}

/* Reads what is there, within ANVIL_READS_PER_EVENT; ANVIL_CLOSE at end
 * of file or on error. */
static enum anvil_verdict anvil_session_read(struct anvil_session *s)
{
    for (int reads = 0; reads < ANVIL_READS_PER_EVENT; reads++) {
        size_t room = s->in.limit - s->in.len;
        if (room > ANVIL_READ_CHUNK)
            room = ANVIL_READ_CHUNK;
        if (room == 0)
            return ANVIL_GO_ON; /* parse makes room */
        if (buf_reserve(&s->in, room) != 0) {
            log_warn("client input: %s", strerror(errno));
            return ANVIL_CLOSE;
        }
        ssize_t n = read(s->fd, s->in.data + s->in.len, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return ANVIL_GO_ON;
        if (n <= 0) {
            if (n < 0)
                log_debug("read from client: %s", strerror(errno));
            return ANVIL_CLOSE;
        }
        s->in.len += (size_t)n;
        s->in.data[s->in.len] = '\0';
        if (anvil_session_parse(s) == ANVIL_CLOSE)
            return ANVIL_CLOSE;
    }
    return ANVIL_GO_ON;
}

static void anvil_on_io(struct event_loop *loop, int fd, unsigned events,
                        void *ctx)
{
    (void)loop;
    (void)fd;
    struct anvil_session *s = ctx;
    if ((events & (EVENT_READ | EVENT_ERROR)) &&
        anvil_session_read(s) == ANVIL_CLOSE) {
        anvil_session_close(s);
        return;
    }
    if (anvil_session_flush(s) != 0)
        anvil_session_close(s);
}

static void anvil_accept(struct server *srv, int fd)
{
    struct anvil *a = srv->app;
    struct anvil_session *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        log_warn("out of memory; dropping a client");
        server_multi_close(srv, fd);
        return;
    }
    s->anvil = a;
    s->fd = fd;
    buf_init(&s->in, 4 + ANVIL_RECORD_MAX);
    buf_init(&s->out, ANVIL_OUTPUT_MAX);
    s->next = a->sessions;
    if (a->sessions != NULL)
        a->sessions->prev = s;
    a->sessions = s;
    if (anvil_session_update_watch(s) != 0)
        anvil_session_close(s);
}

/* ---- the daemon ---- */

static void anvil_init(struct server *srv)
{
    struct anvil *a = calloc(1, sizeof(*a));
    if (a == NULL)
        log_fatal("out of memory");
    a->srv = srv;
    a->rate_unit = config_get_time(srv->cfg, "anvil_rate_time_unit");
    a->status_interval =
        config_get_time(srv->cfg, "anvil_status_update_time");
    a->table = anvil_table_create(ANVIL_TABLE_MAX, a->rate_unit);
    if (a->table == NULL)
        log_fatal("anvil table: %s", strerror(errno));
    srv->app = a;
    if (event_timer_add(srv->loop, a->status_interval * 1000,
                        anvil_on_status_timer, a) < 0 ||
        event_timer_add(srv->loop, a->rate_unit * 1000,
                        anvil_on_expire_timer, a) < 0)
        log_fatal("event_timer_add: %s", strerror(errno));
}

static void anvil_exit(struct server *srv)
{
    struct anvil *a = srv->app;
    anvil_log_stats(a);
    while (a->sessions != NULL)
        anvil_session_close(a->sessions);
    anvil_table_free(a->table);
    free(a);
    srv->app = NULL;
}

int main(int argc, char **argv)
{
    static const struct server_spec spec = {
        .mode = SERVER_MULTI,
        .init = anvil_init,
        .accept = anvil_accept,
        .pre_exit = anvil_exit,
        .no_use_limit = 1,
    };
    return server_main(argc, argv, &spec);
}
