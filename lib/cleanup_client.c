/*
 * cleanup_client - the producer's side of the cleanup protocol: connect,
 * open a message, stream recipients and content, read the verdict.  See
 * cleanup_client.h for the conversation and docs/protocol.md ("cleanup")
 * for every attribute.
 */
#include "cleanup_client.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "text.h"

/* How long to wait between two connection attempts when the service's
 * backlog is full. */
#define CLEANUP_CONNECT_RETRY_MS 50

void cleanup_result_init(struct cleanup_result *r)
{
    memset(r, 0, sizeof(*r));
    r->status = CLEANUP_DEFER;
    buf_init(&r->text, CLEANUP_RECORD_MAX);
}

void cleanup_result_free(struct cleanup_result *r)
{
    buf_free(&r->text);
}

const char *cleanup_status_name(enum cleanup_status s)
{
    switch (s) {
    case CLEANUP_OK: return "ok";
    case CLEANUP_HOLD: return "hold";
    case CLEANUP_DISCARD: return "discard";
    case CLEANUP_REJECT: return "reject";
    case CLEANUP_DEFER: return "defer";
    }
    return "unknown";
}

static int cleanup_status_parse(const char *name, enum cleanup_status *s)
{
    static const enum cleanup_status all[] = {
        CLEANUP_OK, CLEANUP_HOLD, CLEANUP_DISCARD, CLEANUP_REJECT,
        CLEANUP_DEFER,
    };
    if (name == NULL)
        return -1;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (strcmp(name, cleanup_status_name(all[i])) == 0) {
            *s = all[i];
            return 0;
        }
    return -1;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* A non-blocking connection to the Unix socket path, retried while the
 * listener's backlog is full, for at most timeout_ms. */
static int cleanup_connect(const char *path, int timeout_ms, struct buf *error)
{
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    if (text_copy(addr.sun_path, sizeof(addr.sun_path), path) != 0) {
        buf_printf(error, "socket path too long: %s", path);
        return -1;
    }
    long long deadline = stream_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
                        0);
        if (fd < 0) {
            buf_printf(error, "socket: %s", strerror(errno));
            return -1;
        }
        if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
            return fd;
        int saved = errno;
        (void)close(fd); /* never connected: nothing to report */
        if (saved != EAGAIN || stream_now_ms() >= deadline) {
            buf_printf(error, "connect to %s: %s", path,
                       saved == EAGAIN ? "service busy" : strerror(saved));
            return -1;
        }
        sleep_ms(CLEANUP_CONNECT_RETRY_MS);
    }
}

static void cleanup_client_release(struct cleanup_client *c)
{
    stream_free(&c->stream);
    record_free(&c->record);
    buf_free(&c->pending);
    if (c->fd >= 0)
        (void)close(c->fd); /* a socket: close reports nothing useful */
    c->fd = -1;
}

/* Sends the record in c->record and flushes when flush is set. */
static int cleanup_client_send(struct cleanup_client *c, int flush,
                               struct buf *error)
{
    int rc = record_write(&c->stream, &c->record);
    if (rc != RECORD_OK) {
        buf_printf(error, "write to cleanup: %s", record_status_text(rc));
        cleanup_client_release(c);
        return -1;
    }
    if (flush && stream_flush(&c->stream) != STREAM_OK) {
        buf_printf(error, "write to cleanup: %s",
                   c->stream.error == STREAM_TIMEOUT ? "timeout"
                                                     : strerror(errno));
        cleanup_client_release(c);
        return -1;
    }
    return 0;
}

static int cleanup_client_read(struct cleanup_client *c, struct buf *error)
{
    int rc = record_read(&c->stream, &c->record, CLEANUP_RECORD_MAX);
    if (rc != RECORD_OK) {
        buf_printf(error, "read from cleanup: %s", record_status_text(rc));
        cleanup_client_release(c);
        return -1;
    }
    return 0;
}

/* Copies the reply's code, dsn and text into result. */
static void cleanup_reply_details(const struct record *r,
                                  struct cleanup_result *result)
{
    long code = 0;
    if (record_get_long(r, "code", &code) == 0 && code >= 200 && code <= 599)
        result->code = (int)code;
    const char *dsn = record_get_str(r, "dsn");
    if (dsn == NULL || text_copy(result->dsn, sizeof(result->dsn), dsn) != 0)
        result->dsn[0] = '\0';
    const char *text = record_get_str(r, "text");
    buf_reset(&result->text);
    if (text != NULL && buf_set_str(&result->text, text) != 0)
        buf_reset(&result->text);
    const char *id = record_get_str(r, "queue_id");
    if (id == NULL || text_copy(result->queue_id, sizeof(result->queue_id),
                                id) != 0)
        result->queue_id[0] = '\0';
}

int cleanup_client_open(struct cleanup_client *c, const char *socket_path,
                        int timeout_ms, const struct record *envelope,
                        struct buf *error)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    stream_init(&c->stream, -1, timeout_ms);
    record_init(&c->record);
    buf_init(&c->pending, QUEUE_BLOCK_MAX);
    if (record_find(envelope, "sender") == NULL) {
        buf_printf(error, "cleanup request without a sender");
        cleanup_client_release(c);
        return -1;
    }
    c->fd = cleanup_connect(socket_path, timeout_ms, error);
    if (c->fd < 0) {
        cleanup_client_release(c);
        return -1;
    }
    stream_free(&c->stream);
    stream_init(&c->stream, c->fd, timeout_ms);
    if (record_add_str(&c->record, "request", "open") != RECORD_OK) {
        buf_printf(error, "cleanup request: out of memory");
        cleanup_client_release(c);
        return -1;
    }
    for (size_t i = 0; i < envelope->count; i++) {
        const struct record_attr *a = &envelope->attrs[i];
        if (strcmp(a->name, "request") == 0)
            continue;
        if (record_add(&c->record, a->name, a->value.data, a->value.len) !=
            RECORD_OK) {
            buf_printf(error, "cleanup request: bad attribute %s", a->name);
            cleanup_client_release(c);
            return -1;
        }
    }
    if (cleanup_client_send(c, 1, error) != 0 ||
        cleanup_client_read(c, error) != 0)
        return -1;
    const char *status = record_get_str(&c->record, "status");
    const char *id = record_get_str(&c->record, "queue_id");
    if (status == NULL || strcmp(status, "ok") != 0 || id == NULL ||
        text_copy(c->queue_id, sizeof(c->queue_id), id) != 0) {
        const char *text = record_get_str(&c->record, "text");
        buf_printf(error, "cleanup refused the message: %s",
                   text != NULL ? text : "no reason given");
        cleanup_client_release(c);
        return -1;
    }
    record_reset(&c->record);
    return 0;
}

int cleanup_client_add_recipient(struct cleanup_client *c,
                                 const char *address, const char *orcpt,
                                 const char *notify, struct buf *error)
{
    record_reset(&c->record);
    if (record_add_str(&c->record, "request", "rcpt") != RECORD_OK ||
        record_add_str(&c->record, "address", address) != RECORD_OK ||
        (orcpt != NULL &&
         record_add_str(&c->record, "orcpt", orcpt) != RECORD_OK) ||
        (notify != NULL &&
         record_add_str(&c->record, "notify", notify) != RECORD_OK)) {
        buf_printf(error, "cleanup request: out of memory");
        cleanup_client_release(c);
        return -1;
    }
    return cleanup_client_send(c, 0, error);
}

/* Sends what is pending as one data record. */
static int cleanup_client_send_pending(struct cleanup_client *c,
                                       struct buf *error)
{
    if (c->pending.len == 0)
        return 0;
    record_reset(&c->record);
    if (record_add_str(&c->record, "request", "data") != RECORD_OK ||
        record_add(&c->record, "data", c->pending.data, c->pending.len) !=
            RECORD_OK) {
        buf_printf(error, "cleanup request: out of memory");
        cleanup_client_release(c);
        return -1;
    }
    buf_reset(&c->pending);
    return cleanup_client_send(c, 0, error);
}

int cleanup_client_write(struct cleanup_client *c, const void *data,
                         size_t len, struct buf *error)
{
    const char *p = data;
    while (len > 0) {
        size_t room = QUEUE_BLOCK_MAX - c->pending.len;
        size_t n = len < room ? len : room;
        if (buf_append(&c->pending, p, n) != 0) {
            buf_printf(error, "cleanup request: out of memory");
            cleanup_client_release(c);
            return -1;
        }
        p += n;
        len -= n;
        if (c->pending.len == QUEUE_BLOCK_MAX &&
            cleanup_client_send_pending(c, error) != 0)
            return -1;
    }
    return 0;
}

int cleanup_client_finish(struct cleanup_client *c,
                          struct cleanup_result *result, struct buf *error)
{
    if (cleanup_client_send_pending(c, error) != 0)
        return -1;
    record_reset(&c->record);
    if (record_add_str(&c->record, "request", "end") != RECORD_OK) {
        buf_printf(error, "cleanup request: out of memory");
        cleanup_client_release(c);
        return -1;
    }
    if (cleanup_client_send(c, 1, error) != 0 ||
        cleanup_client_read(c, error) != 0)
        return -1;
    if (cleanup_status_parse(record_get_str(&c->record, "status"),
                             &result->status) != 0) {
        buf_printf(error, "cleanup reply without a valid status");
        cleanup_client_release(c);
        return -1;
    }
    cleanup_reply_details(&c->record, result);
    if (result->code == 0)
        result->code = result->status == CLEANUP_REJECT   ? 550
                       : result->status == CLEANUP_DEFER ? 451
                                                         : 250;
    if (result->dsn[0] == '\0')
        (void)text_copy(result->dsn, sizeof(result->dsn),
                        result->code >= 500   ? "5.0.0"
                        : result->code >= 400 ? "4.0.0"
                                              : "2.0.0");
    if (result->queue_id[0] == '\0')
        (void)text_copy(result->queue_id, sizeof(result->queue_id),
                        c->queue_id);
    cleanup_client_release(c);
    return 0;
}

void cleanup_client_abort(struct cleanup_client *c)
{
    if (c->fd < 0)
        return;
    record_reset(&c->record);
    if (record_add_str(&c->record, "request", "abort") == RECORD_OK &&
        record_write(&c->stream, &c->record) == RECORD_OK)
        (void)stream_flush(&c->stream); /* best effort: we close anyway */
    cleanup_client_release(c);
}
