/*
 * delivery_request - read qmgr's delivery requests, read the content of the
 * queue file, answer each recipient and log it (interface and usage:
 * delivery_request.h; the protocol: docs/protocol.md, "Delivery agents").
 */
#include "delivery_request.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "log.h"
#include "queue_file.h"
#include "server.h"

double delivery_time_now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* "SECONDS.MICROSECONDS" as the protocol sends it; 0 when absent or bad. */
static double delivery_parse_time(const struct record *r, const char *name)
{
    const char *text = record_get_str(r, name);
    if (text == NULL || text[0] == '\0')
        return 0;
    char *end;
    errno = 0;
    double value = strtod(text, &end);
    if (errno != 0 || *end != '\0' || value < 0)
        return 0;
    return value;
}

/* A text value that may go into a log line: no control characters. */
static int delivery_text_ok(const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

static char *delivery_strdup_or_null(const char *text)
{
    return text != NULL ? strdup(text) : NULL;
}

/* 0, 1 at a clean end of the connection when eof_ok, or -1. */
static int delivery_read_envelope(struct delivery_request *req, int eof_ok,
                                  struct buf *error)
{
    int rc = record_read(req->stream, &req->envelope, DELIVERY_RECORD_MAX);
    if (rc == RECORD_EOF && eof_ok)
        return 1;
    if (rc != RECORD_OK) {
        buf_printf(error, "reading the delivery request: %s",
                   record_status_text(rc));
        return -1;
    }
    const struct record *r = &req->envelope;
    const char *request = record_get_str(r, "request");
    if (request == NULL || strcmp(request, "deliver") != 0) {
        buf_set_str(error, "protocol error: the first record is not "
                    "request=deliver");
        return -1;
    }
    req->queue_id = record_get_str(r, "queue_id");
    req->queue_file = record_get_str(r, "queue_file");
    req->sender = record_get_str(r, "sender");
    req->nexthop = record_get_str(r, "nexthop");
    if (req->queue_id == NULL || !queue_id_valid(req->queue_id) ||
        req->queue_file == NULL || req->queue_file[0] == '/' ||
        strstr(req->queue_file, "..") != NULL || req->sender == NULL ||
        !delivery_text_ok(req->sender)) {
        buf_set_str(error, "protocol error: missing or bad queue_id, "
                    "queue_file or sender");
        return -1;
    }
    if (req->nexthop == NULL)
        req->nexthop = "";
    long offset, size, count;
    if (record_get_long(r, "content_offset", &offset) != 0 || offset < 0 ||
        record_get_long(r, "content_size", &size) != 0 || size < 0 ||
        record_get_long(r, "recipient_count", &count) != 0 || count < 1 ||
        count > DELIVERY_RECIPIENT_MAX) {
        buf_printf(error, "%s: protocol error: bad content_offset, "
                   "content_size or recipient_count", req->queue_id);
        return -1;
    }
    req->content_offset = (off_t)offset;
    req->content_size = size;
    req->arrival_time = delivery_parse_time(r, "arrival_time");
    req->active_time = delivery_parse_time(r, "active_time");
    req->dispatch_time = delivery_parse_time(r, "dispatch_time");
    req->recipients = calloc((size_t)count, sizeof(*req->recipients));
    if (req->recipients == NULL) {
        buf_set_str(error, "out of memory");
        return -1;
    }
    req->recipient_count = (size_t)count;
    return 0;
}

static int delivery_read_recipient(struct delivery_request *req, size_t i,
                                   struct record *r, struct buf *error)
{
    int rc = record_read(req->stream, r, DELIVERY_RECORD_MAX);
    if (rc != RECORD_OK) {
        buf_printf(error, "%s: reading recipient %zu: %s", req->queue_id, i,
                   record_status_text(rc));
        return -1;
    }
    const char *request = record_get_str(r, "request");
    const char *address = record_get_str(r, "address");
    long index, offset = 0;
    if (request == NULL || strcmp(request, "recipient") != 0 ||
        address == NULL || address[0] == '\0' || !delivery_text_ok(address) ||
        record_get_long(r, "index", &index) != 0 || index != (long)i) {
        buf_printf(error, "%s: protocol error: bad recipient record %zu",
                   req->queue_id, i);
        return -1;
    }
    if (record_find(r, "offset") != NULL &&
        record_get_long(r, "offset", &offset) != 0) {
        buf_printf(error, "%s: protocol error: bad offset of recipient %zu",
                   req->queue_id, i);
        return -1;
    }
    const char *orcpt = record_get_str(r, "orcpt");
    const char *notify = record_get_str(r, "notify");
    if ((orcpt != NULL && !delivery_text_ok(orcpt)) ||
        (notify != NULL && !delivery_text_ok(notify))) {
        buf_printf(error, "%s: protocol error: bad orcpt or notify of "
                   "recipient %zu", req->queue_id, i);
        return -1;
    }
    struct delivery_recipient *rcpt = &req->recipients[i];
    rcpt->index = index;
    rcpt->offset = offset;
    rcpt->address = strdup(address);
    rcpt->orcpt = delivery_strdup_or_null(orcpt);
    rcpt->notify = delivery_strdup_or_null(notify);
    if (rcpt->address == NULL || (orcpt && !rcpt->orcpt) ||
        (notify && !rcpt->notify)) {
        buf_set_str(error, "out of memory");
        return -1;
    }
    return 0;
}

/* Reads one request from req->stream.  0, 1 (eof_ok: the connection
 * ended before a request), or -1 with the reason in error. */
static int delivery_read_request(struct delivery_request *req, int eof_ok,
                                 struct buf *error)
{
    int rc = delivery_read_envelope(req, eof_ok, error);
    if (rc != 0)
        return rc;
    struct record r;
    record_init(&r);
    for (size_t i = 0; i < req->recipient_count; i++) {
        if (delivery_read_recipient(req, i, &r, error) != 0) {
            record_free(&r);
            return -1;
        }
    }
    rc = record_read(req->stream, &r, DELIVERY_RECORD_MAX);
    const char *request = rc == RECORD_OK ? record_get_str(&r, "request")
                                          : NULL;
    int ok = request != NULL && strcmp(request, "end") == 0;
    record_free(&r);
    if (!ok) {
        buf_printf(error, "%s: protocol error: no request=end after the "
                   "recipients", req->queue_id);
        return -1;
    }
    req->received_time = delivery_time_now();
    return 0;
}

static void delivery_request_init(struct delivery_request *req,
                                  struct stream *stream,
                                  const char *transport)
{
    memset(req, 0, sizeof(*req));
    record_init(&req->envelope);
    req->stream = stream;
    req->transport = transport;
    req->more = -1;
}

int delivery_request_read(struct delivery_request *req, int fd,
                          const char *transport, struct buf *error)
{
    delivery_request_init(req, &req->own_stream, transport);
    stream_init(&req->own_stream, fd, DELIVERY_READ_TIMEOUT_MS);
    req->owns_stream = 1;
    return delivery_read_request(req, 0, error);
}

/* True when qmgr closed its end: it is gone, and what it asked for will
 * be asked again by the qmgr that takes up the queue. */
static int delivery_qmgr_gone(int fd)
{
    struct pollfd pfd = { .fd = fd, .events = POLLRDHUP };
    for (;;) {
        int n = poll(&pfd, 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        return n > 0 && (pfd.revents & (POLLRDHUP | POLLHUP)) != 0;
    }
}

const char *delivery_request_attr(const struct delivery_request *req,
                                  const char *name)
{
    return record_get_str(&req->envelope, name);
}

void delivery_format_delay(struct buf *out, double seconds)
{
    if (seconds < 0.005) {
        buf_append_str(out, "0");
        return;
    }
    size_t start = out->len;
    if (buf_printf(out, "%.2f", seconds) != 0)
        return;
    size_t end = out->len;
    while (end > start && out->data[end - 1] == '0')
        end--;
    if (end > start && out->data[end - 1] == '.')
        end--;
    buf_truncate(out, end);
}

static const char *delivery_status_word(enum delivery_status status)
{
    switch (status) {
    case DELIVERY_SENT: return "sent";
    case DELIVERY_DEFERRED: return "deferred";
    case DELIVERY_BOUNCED: return "bounced";
    }
    return "deferred";
}

/* "rfc822;a@b" gives "a@b"; NULL when there is no ORCPT or it is the
 * address itself. */
static const char *delivery_original(const struct delivery_recipient *rcpt)
{
    if (rcpt->orcpt == NULL)
        return NULL;
    const char *semi = strchr(rcpt->orcpt, ';');
    const char *orig = semi != NULL ? semi + 1 : rcpt->orcpt;
    while (*orig == ' ')
        orig++;
    if (strcasecmp(orig, rcpt->address) == 0)
        return NULL;
    return orig;
}

static void delivery_log_result(const struct delivery_request *req,
                                const struct delivery_recipient *rcpt,
                                const struct delivery_result *res)
{
    double now = delivery_time_now();
    double arrival = req->arrival_time > 0 ? req->arrival_time : now;
    double active = req->active_time > 0 ? req->active_time : arrival;
    double dispatch = req->dispatch_time > 0 ? req->dispatch_time : active;
    struct buf line;
    buf_init(&line, 16 * 1024);
    buf_printf(&line, "%s: to=<%s>, ", req->queue_id, rcpt->address);
    const char *orig = delivery_original(rcpt);
    if (orig != NULL)
        buf_printf(&line, "orig_to=<%s>, ", orig);
    buf_printf(&line, "relay=%s, delay=",
               res->relay != NULL ? res->relay : req->transport);
    delivery_format_delay(&line, now - arrival);
    buf_append_str(&line, ", delays=");
    delivery_format_delay(&line, active - arrival);
    buf_append_char(&line, '/');
    delivery_format_delay(&line, dispatch - active);
    buf_append_char(&line, '/');
    delivery_format_delay(&line, req->received_time - dispatch);
    buf_append_char(&line, '/');
    delivery_format_delay(&line, now - req->received_time);
    buf_printf(&line, ", dsn=%s, status=%s (%s)", res->dsn,
               delivery_status_word(res->status),
               res->text != NULL ? res->text : "");
    log_info("%s", buf_cstr(&line));
    buf_free(&line);
}

static int delivery_add_optional(struct record *r, const char *name,
                                 const char *value)
{
    if (value == NULL)
        return RECORD_OK;
    return record_add_str(r, name, value);
}

/* Logs and sends the result of recipient rcpt.  0, or -1 (qmgr gone). */
static int delivery_send_result(struct delivery_request *req,
                                const struct delivery_recipient *rcpt,
                                const struct delivery_result *res)
{
    delivery_log_result(req, rcpt, res);
    struct record r;
    record_init(&r);
    int rc = record_add_str(&r, "status", delivery_status_word(res->status));
    if (rc == RECORD_OK)
        rc = record_add_long(&r, "index", rcpt->index);
    if (rc == RECORD_OK)
        rc = record_add_str(&r, "dsn", res->dsn);
    if (rc == RECORD_OK)
        rc = record_add_str(&r, "text", res->text != NULL ? res->text : "");
    if (rc == RECORD_OK && res->status == DELIVERY_SENT)
        rc = record_add_str(&r, "action",
                            res->action != NULL ? res->action : "delivered");
    if (rc == RECORD_OK)
        rc = record_add_str(&r, "relay", res->relay != NULL ? res->relay
                                                            : req->transport);
    if (rc == RECORD_OK)
        rc = delivery_add_optional(&r, "remote_mta", res->remote_mta);
    if (rc == RECORD_OK)
        rc = delivery_add_optional(&r, "diagnostic", res->diagnostic);
    if (rc == RECORD_OK && res->destination_failure)
        rc = record_add_str(&r, "destination_failure", "1");
    if (rc == RECORD_OK && res->dsn_passed)
        rc = record_add_str(&r, "dsn_passed", "1");
    if (rc == RECORD_OK)
        rc = record_write(req->stream, &r);
    record_free(&r);
    if (rc != RECORD_OK) {
        log_warn("%s: cannot send the result to the queue manager: %s",
                 req->queue_id, record_status_text(rc));
        return -1;
    }
    return 0;
}

/* ---- results held for a commit --------------------------------------- */

/* A result kept until the agent's commit, with its own copies of the
 * texts. */
struct delivery_held {
    struct delivery_result res;
    char *dsn, *text, *action, *relay, *remote_mta, *diagnostic;
};

static void delivery_held_free(struct delivery_held *h)
{
    if (h == NULL)
        return;
    free(h->dsn);
    free(h->text);
    free(h->action);
    free(h->relay);
    free(h->remote_mta);
    free(h->diagnostic);
    free(h);
}

/* A copy of s in *copy (NULL stays NULL).  0, or -1 out of memory. */
static int delivery_held_copy(char **copy, const char *s)
{
    *copy = s != NULL ? strdup(s) : NULL;
    return s != NULL && *copy == NULL ? -1 : 0;
}

static struct delivery_held *delivery_held_new(
    const struct delivery_result *res)
{
    struct delivery_held *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->res = *res;
    if (delivery_held_copy(&h->dsn, res->dsn) != 0 ||
        delivery_held_copy(&h->text, res->text) != 0 ||
        delivery_held_copy(&h->action, res->action) != 0 ||
        delivery_held_copy(&h->relay, res->relay) != 0 ||
        delivery_held_copy(&h->remote_mta, res->remote_mta) != 0 ||
        delivery_held_copy(&h->diagnostic, res->diagnostic) != 0) {
        delivery_held_free(h);
        return NULL;
    }
    h->res.dsn = h->dsn;
    h->res.text = h->text;
    h->res.action = h->action;
    h->res.relay = h->relay;
    h->res.remote_mta = h->remote_mta;
    h->res.diagnostic = h->diagnostic;
    return h;
}

/* Sends every result of req held so far; after a failed commit (failed)
 * each one that awaited it goes as a deferral with dsn and why.  0, or
 * -1 when qmgr is gone. */
static int delivery_release_held(struct delivery_request *req, int failed,
                                 const char *dsn, const char *why)
{
    int rc = 0;
    for (size_t i = 0; i < req->recipient_count; i++) {
        struct delivery_recipient *rcpt = &req->recipients[i];
        struct delivery_held *h = rcpt->held;
        if (h == NULL)
            continue;
        rcpt->held = NULL;
        struct delivery_result res = h->res;
        if (failed && res.status == DELIVERY_SENT && res.awaits_commit) {
            res.status = DELIVERY_DEFERRED;
            res.dsn = dsn;
            res.text = why;
            res.action = NULL;
        }
        if (delivery_send_result(req, rcpt, &res) != 0)
            rc = -1;
        delivery_held_free(h);
    }
    return rc;
}

/* The requests served since the last commit, and the one being served. */
struct delivery_batch {
    delivery_commit_fn *commit;
    void *ctx;
    struct delivery_request *served[DELIVERY_BATCH_MAX];
    size_t count;
    struct delivery_request *current;   /* in serve, or NULL */
};

/* Commits, then sends the held results: each served request's, with its
 * status=done, then the current one's.  0, or -1 when something could
 * not be sent (qmgr is gone). */
static int delivery_batch_commit(struct delivery_batch *b)
{
    const char *dsn = "4.3.0";
    struct buf why;
    buf_init(&why, 4096);
    int failed = b->commit(b->ctx, &dsn, &why) != 0;
    if (failed && why.len == 0)
        buf_set_str(&why, "cannot make the delivery durable");
    int rc = 0;
    for (size_t k = 0; k < b->count; k++) {
        struct delivery_request *req = b->served[k];
        if (delivery_release_held(req, failed, dsn, buf_cstr(&why)) != 0)
            rc = -1;
        req->holding = 0;
        if (delivery_request_finish(req) != 0)
            rc = -1;
        delivery_request_free(req);
        free(req);
    }
    b->count = 0;
    if (b->current != NULL &&
        delivery_release_held(b->current, failed, dsn, buf_cstr(&why)) != 0)
        rc = -1;
    buf_free(&why);
    return rc;
}

void delivery_request_commit(struct delivery_request *req)
{
    if (req->holding && req->batch != NULL)
        (void)delivery_batch_commit(req->batch);
}

int delivery_request_reply(struct delivery_request *req, size_t i,
                           const struct delivery_result *res)
{
    if (i >= req->recipient_count)
        log_panic("delivery_request_reply: recipient %zu of %zu", i,
                  req->recipient_count);
    struct delivery_recipient *rcpt = &req->recipients[i];
    if (rcpt->answered)
        log_panic("%s: recipient %zu answered twice", req->queue_id, i);
    rcpt->answered = 1;
    if (!req->holding)
        return delivery_send_result(req, rcpt, res);
    rcpt->held = delivery_held_new(res);
    if (rcpt->held != NULL)
        return 0;
    /* Out of memory: what must wait for the commit cannot go now. */
    struct delivery_result deferred = {
        .status = DELIVERY_DEFERRED, .dsn = "4.3.0", .text = "out of memory",
        .relay = res->relay,
    };
    return delivery_send_result(req, rcpt,
                                res->status == DELIVERY_SENT &&
                                        res->awaits_commit
                                    ? &deferred
                                    : res);
}

int delivery_request_reply_all(struct delivery_request *req,
                               const struct delivery_result *res)
{
    int rc = 0;
    for (size_t i = 0; i < req->recipient_count; i++)
        if (!req->recipients[i].answered &&
            delivery_request_reply(req, i, res) != 0)
            rc = -1;
    return rc;
}

int delivery_request_finish(struct delivery_request *req)
{
    static const struct delivery_result no_result = {
        .status = DELIVERY_DEFERRED, .dsn = "4.3.0",
        .text = "delivery agent gave no result",
    };
    int rc = delivery_request_reply_all(req, &no_result);
    struct record r;
    record_init(&r);
    if (record_add_str(&r, "status", "done") != RECORD_OK ||
        (req->more >= 0 &&
         record_add_long(&r, "more", req->more) != RECORD_OK) ||
        record_write(req->stream, &r) != RECORD_OK ||
        stream_flush(req->stream) != STREAM_OK)
        rc = -1;
    record_free(&r);
    return rc;
}

/* True when the next request is already there to read, wholly or in
 * part: the agent would not wait for it. */
static int delivery_next_waiting(struct stream *stream, int fd)
{
    if (stream_pending(stream) > 0)
        return 1;
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    for (;;) {
        int n = poll(&pfd, 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        return n > 0 && (pfd.revents & POLLIN) != 0;
    }
}

/* Reads the next request of the connection into a new struct.  NULL at
 * its end (or on an error, logged). */
static struct delivery_request *delivery_next_request(
    struct stream *stream, const char *transport, int first)
{
    struct delivery_request *req = malloc(sizeof(*req));
    if (req == NULL) {
        log_warn("%s: out of memory for a request", transport);
        return NULL;
    }
    delivery_request_init(req, stream, transport);
    struct buf error;
    buf_init(&error, 4096);
    double ready = delivery_time_now();
    int rc = delivery_read_request(req, !first, &error);
    /* A request that waited behind the last one waited for an agent,
     * which the log's delays show in the queue manager's part (as
     * Postfix's b), not as connection set-up. */
    if (rc == 0 && !first && req->dispatch_time < ready)
        req->dispatch_time = ready;
    if (rc < 0)
        log_warn("%s", buf_cstr(&error));
    buf_free(&error);
    if (rc != 0) {
        delivery_request_free(req);
        free(req);
        return NULL;
    }
    return req;
}

void delivery_request_serve_all(struct server *srv, int fd,
                                const char *transport,
                                delivery_serve_fn *serve,
                                delivery_commit_fn *commit, void *ctx)
{
    struct stream stream;
    stream_init(&stream, fd, DELIVERY_READ_TIMEOUT_MS);
    struct delivery_batch batch = { .commit = commit, .ctx = ctx };
    for (int first = 1, more = 1; more; first = 0) {
        struct delivery_request *req =
            delivery_next_request(&stream, transport, first);
        if (req == NULL)
            break;
        if (!first)
            server_single_took_more(srv);
        if (delivery_qmgr_gone(fd)) {
            log_warn("%s: the queue manager closed the connection; the "
                     "request is left for its next run", req->queue_id);
            delivery_request_free(req);
            free(req);
            break;
        }
        req->holding = commit != NULL;
        req->batch = &batch;
        batch.current = req;
        serve(ctx, req);
        batch.current = NULL;
        req->more = server_single_can_take_more(srv) ? 1 : 0;
        more = req->more == 1;
        if (commit == NULL) {
            more = delivery_request_finish(req) == 0 && more;
            delivery_request_free(req);
            free(req);
            continue;
        }
        batch.served[batch.count++] = req;
        if (more && batch.count < DELIVERY_BATCH_MAX &&
            delivery_next_waiting(&stream, fd))
            continue;
        more = delivery_batch_commit(&batch) == 0 && more;
    }
    if (batch.count > 0)
        (void)delivery_batch_commit(&batch);
    stream_free(&stream);
}

void delivery_request_free(struct delivery_request *req)
{
    for (size_t i = 0; i < req->recipient_count; i++) {
        delivery_held_free(req->recipients[i].held);
        free(req->recipients[i].address);
        free(req->recipients[i].orcpt);
        free(req->recipients[i].notify);
    }
    free(req->recipients);
    record_free(&req->envelope);
    if (req->owns_stream)
        stream_free(&req->own_stream);
    memset(req, 0, sizeof(*req));
}

/* ---- the content ----------------------------------------------------- */

void delivery_content_attach(struct delivery_content *c, int fd,
                             off_t content_offset)
{
    memset(c, 0, sizeof(*c));
    c->fd = fd;
    c->owns_fd = 0;
    c->offset = content_offset;
    buf_init(&c->window, QUEUE_RECORD_MAX + DELIVERY_CONTENT_WINDOW);
}

int delivery_content_open(struct delivery_content *c,
                          const struct delivery_request *req,
                          struct buf *error)
{
    int fd = open(req->queue_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        buf_printf(error, "open %s: %s", req->queue_file, strerror(errno));
        return -1;
    }
    delivery_content_attach(c, fd, req->content_offset);
    c->owns_fd = 1;
    return 0;
}

void delivery_content_rewind(struct delivery_content *c, off_t content_offset)
{
    c->offset = content_offset;
    c->done = 0;
}

/* The len bytes of the file at offset, from the window of the file that
 * was read last, or read anew: from offset on, as much as the window
 * holds.  A message of up to a window's size is so read once, however
 * often it is gone through.  *data stays valid until the next call.  0,
 * or -1 (error says why). */
static int delivery_content_bytes(struct delivery_content *c, off_t offset,
                                  size_t len, const char **data,
                                  struct buf *error)
{
    if (offset >= c->window_start &&
        (size_t)(offset - c->window_start) + len <= c->window.len) {
        *data = c->window.data + (offset - c->window_start);
        return 0;
    }
    size_t want = len > DELIVERY_CONTENT_WINDOW ? len
                                                : DELIVERY_CONTENT_WINDOW;
    buf_reset(&c->window);
    c->window_start = offset;
    if (buf_reserve(&c->window, want) != 0) {
        buf_set_str(error, "out of memory");
        return -1;
    }
    while (c->window.len < len) {
        ssize_t n = pread(c->fd, c->window.data + c->window.len,
                          want - c->window.len,
                          offset + (off_t)c->window.len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            buf_printf(error, "read queue file: %s", strerror(errno));
            return -1;
        }
        if (n == 0) {
            buf_set_str(error, "queue file ends inside the content");
            return -1;
        }
        c->window.len += (size_t)n;
    }
    *data = c->window.data;
    return 0;
}

int delivery_content_next(struct delivery_content *c, const char **data,
                          size_t *len, struct buf *error)
{
    while (!c->done) {
        const char *bytes;
        if (delivery_content_bytes(c, c->offset, QUEUE_RECORD_HEADER, &bytes,
                                   error) != 0)
            return -1;
        const unsigned char *header = (const unsigned char *)bytes;
        uint32_t length = ((uint32_t)header[1] << 24) |
                          ((uint32_t)header[2] << 16) |
                          ((uint32_t)header[3] << 8) | header[4];
        if (length > QUEUE_RECORD_MAX) {
            buf_set_str(error, "queue file record too long");
            return -1;
        }
        off_t data_offset = c->offset + QUEUE_RECORD_HEADER;
        c->offset = data_offset + (off_t)length;
        switch (header[0]) {
        case QUEUE_REC_CONTENT:
            continue;
        case QUEUE_REC_END_CONTENT:
            c->done = 1;
            return 0;
        case QUEUE_REC_BLOCK:
            break;
        default:
            buf_printf(error, "unexpected record '%c' in the content",
                       header[0] >= 0x20 && header[0] < 0x7f ? header[0]
                                                             : '?');
            return -1;
        }
        if (delivery_content_bytes(c, data_offset, length, &bytes,
                                   error) != 0)
            return -1;
        *data = bytes;
        *len = length;
        return 1;
    }
    return 0;
}

void delivery_content_close(struct delivery_content *c)
{
    if (c->owns_fd && c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    buf_free(&c->window);
}
