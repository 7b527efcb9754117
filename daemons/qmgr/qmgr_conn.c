/*
 * qmgr_conn - one record conversation of the queue manager with a
 * delivery agent or the bounce service, without ever blocking: connect
 * with a non-blocking Unix socket, write the queued records as the socket
 * takes them, decode the replies as they arrive, and end on the peer's
 * last word, on end of file, on a malformed record, or after ipc_timeout
 * without a byte from the peer.  Interface: qmgr.h.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "event.h"
#include "log.h"
#include "qmgr.h"

#define QMGR_CONN_READ_CHUNK 16384

struct qmgr_conn {
    struct qmgr *q;
    struct qmgr_conn *prev, *next;  /* q->conns */
    int fd;
    struct buf out;
    struct buf in;
    size_t max_record;
    long timer;
    qmgr_conn_record_fn *on_record;
    qmgr_conn_end_fn *on_end;
    qmgr_conn_free_fn *free_ctx;
    void *ctx;
    int started;
};

static void qmgr_conn_release(struct qmgr_conn *c)
{
    struct event_loop *loop = c->q->srv->loop;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        c->q->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    if (c->timer > 0)
        (void)event_timer_cancel(loop, c->timer);
    (void)event_unwatch(loop, c->fd);
    (void)close(c->fd);
    buf_free(&c->in);
    buf_free(&c->out);
    free(c);
}

static void qmgr_conn_end(struct qmgr_conn *c, const char *failure)
{
    qmgr_conn_end_fn *fn = c->on_end;
    void *ctx = c->ctx;
    qmgr_conn_release(c);
    fn(ctx, failure);
}

void qmgr_conn_abort(struct qmgr_conn *c)
{
    qmgr_conn_release(c);
}

void qmgr_conn_abort_all(struct qmgr *q)
{
    while (q->conns != NULL) {
        struct qmgr_conn *c = q->conns;
        qmgr_conn_free_fn *fn = c->free_ctx;
        void *ctx = c->ctx;
        qmgr_conn_release(c);
        fn(ctx);
    }
}

static void qmgr_conn_on_timeout(struct event_loop *loop, void *ctx)
{
    (void)loop;
    struct qmgr_conn *c = ctx;
    c->timer = 0;
    qmgr_conn_end(c, "timeout");
}

static void qmgr_conn_arm(struct qmgr_conn *c)
{
    struct event_loop *loop = c->q->srv->loop;
    if (c->timer > 0)
        (void)event_timer_cancel(loop, c->timer);
    c->timer = event_timer_add(loop, c->q->ipc_timeout_ms,
                               qmgr_conn_on_timeout, c);
    if (c->timer < 0)
        log_fatal("event_timer_add: %s", strerror(errno));
}

struct qmgr_conn *qmgr_conn_open(struct qmgr *q, const char *path,
                                 size_t max_record, qmgr_conn_record_fn *rec,
                                 qmgr_conn_end_fn *end,
                                 qmgr_conn_free_fn *free_ctx, void *ctx,
                                 int *again)
{
    *again = 0;
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 &&
        errno != EINPROGRESS) {
        int saved = errno;
        (void)close(fd);
        if (saved == EAGAIN || saved == EINTR)
            *again = QMGR_CONN_AGAIN;
        errno = saved;
        return NULL;
    }
    struct qmgr_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        (void)close(fd);
        errno = ENOMEM;
        return NULL;
    }
    c->q = q;
    c->fd = fd;
    c->max_record = max_record;
    buf_init(&c->out, BUF_LIMIT_MAX);
    buf_init(&c->in, max_record + 4 + QMGR_CONN_READ_CHUNK);
    c->on_record = rec;
    c->on_end = end;
    c->free_ctx = free_ctx;
    c->ctx = ctx;
    c->next = q->conns;
    if (q->conns != NULL)
        q->conns->prev = c;
    q->conns = c;
    return c;
}

int qmgr_conn_send(struct qmgr_conn *c, const struct record *r)
{
    return record_encode(r, &c->out) == RECORD_OK ? 0 : -1;
}

static void qmgr_conn_on_io(struct event_loop *loop, int fd, unsigned events,
                            void *ctx);

static int qmgr_conn_watch(struct qmgr_conn *c)
{
    unsigned want = EVENT_READ | (c->out.len > 0 ? EVENT_WRITE : 0);
    return event_watch(c->q->srv->loop, c->fd, want, qmgr_conn_on_io, c);
}

/* 0: all written or the socket is full; -1: the peer is gone. */
static int qmgr_conn_flush(struct qmgr_conn *c)
{
    while (c->out.len > 0) {
        ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0)
            return -1;
        buf_consume(&c->out, (size_t)n);
    }
    return 0;
}

/* Writes what the socket takes now, rather than one turn of the loop
 * later; a peer already gone is found by the read side. */
static void qmgr_conn_push(struct qmgr_conn *c)
{
    if (qmgr_conn_flush(c) != 0)
        buf_reset(&c->out);
    if (qmgr_conn_watch(c) != 0)
        log_fatal("event_watch: %s", strerror(errno));
}

void qmgr_conn_start(struct qmgr_conn *c)
{
    qmgr_conn_arm(c);
    c->started = 1;
    qmgr_conn_push(c);
}

int qmgr_conn_send_encoded(struct qmgr_conn *c, const struct buf *data)
{
    if (buf_append(&c->out, data->data, data->len) != 0)
        return -1;
    if (c->started)
        qmgr_conn_push(c);
    return 0;
}

/* Decodes the whole records in c->in.  1: over (ended), 0: go on. */
static int qmgr_conn_decode(struct qmgr_conn *c)
{
    struct record r;
    record_init(&r);
    int rc = 0;
    while (rc == 0 && c->in.len >= 4) {
        const unsigned char *p = (const unsigned char *)c->in.data;
        uint32_t length = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
                          ((uint32_t)p[2] << 8) | p[3];
        if (length > c->max_record) {
            rc = -1;
            break;
        }
        if (c->in.len - 4 < length)
            break;
        if (record_decode(&r, p, 4 + (size_t)length, c->max_record) !=
            RECORD_OK) {
            rc = -1;
            break;
        }
        buf_consume(&c->in, 4 + (size_t)length);
        rc = c->on_record(c->ctx, &r);
    }
    record_free(&r);
    if (rc == 0)
        return 0;
    qmgr_conn_end(c, rc > 0 ? NULL : "malformed");
    return 1;
}

static void qmgr_conn_on_io(struct event_loop *loop, int fd, unsigned events,
                            void *ctx)
{
    (void)loop;
    (void)fd;
    struct qmgr_conn *c = ctx;
    if ((events & EVENT_WRITE) && qmgr_conn_flush(c) != 0) {
        /* The peer is gone; the results it sent before count. */
        buf_reset(&c->out);
        events |= EVENT_READ;
    }
    if (events & (EVENT_READ | EVENT_ERROR)) {
        for (;;) {
            if (buf_reserve(&c->in, QMGR_CONN_READ_CHUNK) != 0) {
                qmgr_conn_end(c, "malformed");
                return;
            }
            ssize_t n = recv(c->fd, c->in.data + c->in.len,
                             QMGR_CONN_READ_CHUNK, MSG_DONTWAIT);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                break;
            if (n <= 0) {
                /* Records already complete count before the end. */
                if (qmgr_conn_decode(c) == 0)
                    qmgr_conn_end(c, "lost");
                return;
            }
            c->in.len += (size_t)n;
            c->in.data[c->in.len] = '\0';
            qmgr_conn_arm(c);
            if (qmgr_conn_decode(c) != 0)
                return;
        }
    }
    if (qmgr_conn_watch(c) != 0)
        log_fatal("event_watch: %s", strerror(errno));
}
