/*
 * stream - buffered socket and pipe I/O with timeouts, a deadline, and a
 * line reader that reports overlong lines.  See stream.h for the contract.
 *
 * How it works:
 *   - Input is read in chunks of STREAM_READ_CHUNK bytes into s->in; the
 *     bytes s->in.data[s->in_pos .. s->in.len) are read ahead and not yet
 *     returned.  When they are all used, the buffer is simply emptied, so
 *     bytes are never moved around while lines are taken out of it.
 *   - The line reader scans each byte once with memchr() and copies at most
 *     max_len bytes of a line to the caller; the rest of an overlong line is
 *     scanned and dropped as it arrives, so memory stays bounded whatever
 *     the peer sends.
 *   - Every wait is a poll() bounded by timeout_ms and by the deadline; a
 *     poll() interrupted by a signal resumes with the time that remains.
 *     All times come from CLOCK_MONOTONIC.
 *   - Sockets: recv(2) and send(2) with MSG_DONTWAIT (and MSG_NOSIGNAL,
 *     so that a write to a closed socket gives EPIPE instead of SIGPIPE),
 *     which never block whatever the descriptor's mode; poll() only when
 *     they say EAGAIN.  Most reads and writes then cost one system call
 *     instead of two.  The exception is the first read after output went
 *     out: the peer is then most likely still working on its answer, and
 *     poll() first saves a read that would fail.  A deadline that has
 *     passed still ends the exchange before any I/O, as the wait would.
 *   - Other descriptors (pipes; the stream learns it from ENOTSOCK):
 *     poll() first, then read(2), or write(2) in pieces of at most
 *     PIPE_BUF bytes, which a writable pipe takes without blocking; a
 *     program that writes to pipes must ignore SIGPIPE (the daemon
 *     skeleton does).
 *   - read_fn/write_fn (TLS): the function is called first and the stream
 *     polls only when it fails with EAGAIN, because a TLS layer may hold
 *     decrypted bytes that poll() cannot see.  Such a function must
 *     therefore not block: use it on a non-blocking descriptor.
 *
 * Results: STREAM_OK (0) or a negative enum stream_status; read functions
 * append to the caller's buffer and return STREAM_OK, not a byte count.
 * A timeout or I/O error is remembered in s->error and returned by every
 * later call; errno is left as the failing call set it (ETIMEDOUT for a
 * timeout) for the caller to log.
 */
#include "stream.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define STREAM_READ_CHUNK (16 * 1024)
/* A large read_exact() reads straight into the caller's buffer, this much
 * at a time, so that a declared size alone does not allocate memory. */
#define STREAM_DIRECT_STEP (256 * 1024)

long long stream_now_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void stream_init(struct stream *s, int fd, int timeout_ms)
{
    s->fd = fd;
    s->timeout_ms = timeout_ms;
    s->deadline_ms = 0;
    buf_init(&s->in, STREAM_BUFFER_LIMIT);
    buf_init(&s->out, STREAM_BUFFER_LIMIT);
    s->error = 0;
    s->read_fn = NULL;
    s->write_fn = NULL;
    s->io_ctx = NULL;
    s->in_pos = 0;
    s->not_socket = 0;
    s->awaits_reply = 0;
}

void stream_free(struct stream *s)
{
    buf_free(&s->in);
    buf_free(&s->out);
    s->in_pos = 0;
}

void stream_set_timeout(struct stream *s, int timeout_ms)
{
    s->timeout_ms = timeout_ms;
}

void stream_set_deadline(struct stream *s, long seconds)
{
    if (seconds == 0) {
        s->deadline_ms = 0;
        return;
    }
    long long deadline = stream_now_ms() + (long long)seconds * 1000;
    s->deadline_ms = deadline > 0 ? deadline : 1; /* 0 would mean "none" */
}

/* Records a timeout or I/O error so that later calls return it too. */
static int stream_fail(struct stream *s, int status)
{
    s->error = status;
    return status;
}

/* How long the next poll() may take: 0 and *ms set (-1: forever), or -1
 * when the per-wait timeout or the deadline has passed. */
static int stream_wait_ms(const struct stream *s, long long start,
                          long long now, int *ms)
{
    long long left = -1;
    if (s->timeout_ms >= 0) {
        left = start + s->timeout_ms - now;
        if (left < 0)
            return -1;
    }
    if (s->deadline_ms != 0) {
        long long to_deadline = s->deadline_ms - now;
        if (to_deadline <= 0)
            return -1;
        if (left < 0 || to_deadline < left)
            left = to_deadline;
    }
    *ms = left > INT_MAX ? INT_MAX : (int)left;
    return 0;
}

/* Waits until the descriptor is ready for events (POLLIN or POLLOUT). */
static int stream_wait(struct stream *s, short events)
{
    long long start = stream_now_ms();
    for (;;) {
        int ms;
        if (stream_wait_ms(s, start, stream_now_ms(), &ms) != 0)
            break;
        struct pollfd p = { .fd = s->fd, .events = events, .revents = 0 };
        int rc = poll(&p, 1, ms);
        if (rc > 0 && (p.revents & POLLNVAL)) {
            errno = EBADF;
            return stream_fail(s, STREAM_ERROR);
        }
        if (rc > 0)
            return STREAM_OK; /* ready, or POLLHUP/POLLERR: I/O will say */
        if (rc == 0)
            break;
        if (errno != EINTR)
            return stream_fail(s, STREAM_ERROR);
    }
    errno = ETIMEDOUT;
    return stream_fail(s, STREAM_TIMEOUT);
}

/* Whether the deadline has passed: a wait would time out at once, so I/O
 * that skips the wait must too, even when the peer's bytes are there. */
static int stream_deadline_passed(const struct stream *s)
{
    return s->deadline_ms != 0 && stream_now_ms() >= s->deadline_ms;
}

/* One read attempt without waiting, or a read(2) after poll() for a
 * descriptor that is not a socket: the byte count, or -1 with errno. */
static ssize_t stream_read_once(struct stream *s, char *dst, size_t max)
{
    if (s->read_fn)
        return s->read_fn(s->io_ctx, dst, max);
    if (s->not_socket)
        return read(s->fd, dst, max);
    ssize_t n = recv(s->fd, dst, max, MSG_DONTWAIT);
    if (n >= 0 || errno != ENOTSOCK)
        return n;
    s->not_socket = 1;
    errno = EAGAIN; /* poll, then read(2) */
    return -1;
}

/* Reads at most max bytes into dst: the byte count (> 0), STREAM_EOF, or
 * a sticky STREAM_TIMEOUT / STREAM_ERROR. */
static ssize_t stream_read_into(struct stream *s, char *dst, size_t max)
{
    /* read_fn is called before any wait, and so is recv(2) on a socket
     * unless an answer to our output is awaited (see the top of file). */
    int call_first = s->read_fn != NULL ||
                     (!s->not_socket && !s->awaits_reply);
    s->awaits_reply = 0;
    for (;;) {
        if (!call_first) {
            int rc = stream_wait(s, POLLIN);
            if (rc != STREAM_OK)
                return rc;
        } else if (s->read_fn == NULL && stream_deadline_passed(s)) {
            errno = ETIMEDOUT;
            return stream_fail(s, STREAM_TIMEOUT);
        }
        ssize_t n = stream_read_once(s, dst, max);
        if (n > 0)
            return n;
        if (n == 0)
            return STREAM_EOF;
        if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
            return stream_fail(s, STREAM_ERROR);
        call_first = errno == EINTR && (s->read_fn != NULL || !s->not_socket);
    }
}

/* Reads the next chunk into s->in, after the bytes still pending (the
 * callers fill only when none are).  Returns STREAM_OK, STREAM_EOF or an
 * error. */
static int stream_fill(struct stream *s)
{
    if (s->error)
        return s->error;
    if (s->in_pos > 0) {
        buf_consume(&s->in, s->in_pos);
        s->in_pos = 0;
    }
    if (buf_reserve(&s->in, STREAM_READ_CHUNK) != 0)
        return STREAM_ERROR;
    size_t room = s->in.cap - s->in.len - 1;
    ssize_t n = stream_read_into(s, s->in.data + s->in.len, room);
    if (n < 0)
        return (int)n;
    s->in.len += (size_t)n;
    s->in.data[s->in.len] = '\0';
    return STREAM_OK;
}

size_t stream_pending(const struct stream *s)
{
    return s->in.len - s->in_pos;
}

size_t stream_discard_pending(struct stream *s)
{
    size_t n = stream_pending(s);
    buf_reset(&s->in);
    s->in_pos = 0;
    return n;
}

/* Moves up to max pending bytes to out; returns how many. */
static size_t stream_take_pending(struct stream *s, struct buf *out,
                                  size_t max)
{
    size_t n = stream_pending(s);
    if (n > max)
        n = max;
    if (n == 0 || buf_append(out, s->in.data + s->in_pos, n) != 0)
        return 0;
    s->in_pos += n;
    if (s->in_pos == s->in.len) {
        buf_reset(&s->in);
        s->in_pos = 0;
    }
    return n;
}

/* What the line reader knows about the line so far. */
struct line_scan {
    size_t keep;  /* the most content bytes to give the caller */
    size_t total; /* bytes of the line seen so far, without the LF */
    char last;    /* the last of them */
};

/* Adds n more bytes of the current line: copies what fits in keep. */
static int line_add(struct line_scan *scan, struct buf *line,
                    const char *data, size_t n)
{
    if (n == 0)
        return 0;
    scan->total += n;
    scan->last = data[n - 1];
    if (line->len >= scan->keep)
        return 0;
    size_t room = scan->keep - line->len;
    return buf_append(line, data, n < room ? n : room);
}

/* Ends a line whose content is content bytes long. */
static int line_end(const struct line_scan *scan, struct buf *line,
                    size_t content, enum stream_line_ending how,
                    enum stream_line_ending *ending)
{
    if (ending)
        *ending = how;
    if (content > scan->keep)
        return STREAM_TOO_LONG; /* line holds the first keep bytes */
    buf_truncate(line, content);
    return STREAM_OK;
}

int stream_read_line(struct stream *s, struct buf *line, size_t max_len,
                     enum stream_line_ending *ending)
{
    buf_reset(line);
    if (s->error)
        return s->error;
    struct line_scan scan = { max_len < line->limit ? max_len : line->limit,
                              0, '\0' };
    for (;;) {
        size_t avail = stream_pending(s);
        if (avail == 0) {
            int rc = stream_fill(s);
            if (rc == STREAM_EOF && scan.total > 0)
                return line_end(&scan, line, scan.total, STREAM_LINE_EOF,
                                ending);
            if (rc != STREAM_OK)
                return rc;
            continue;
        }
        const char *start = s->in.data + s->in_pos;
        const char *lf = memchr(start, '\n', avail);
        size_t n = lf ? (size_t)(lf - start) : avail;
        if (line_add(&scan, line, start, n) != 0)
            return STREAM_ERROR;
        s->in_pos += n + (lf != NULL);
        if (lf == NULL)
            continue;
        int cr = scan.total > 0 && scan.last == '\r';
        return line_end(&scan, line, scan.total - (size_t)cr,
                        cr ? STREAM_LINE_CRLF : STREAM_LINE_LF, ending);
    }
}

/* Reads the next step of a large read_exact() straight into out. */
static int stream_read_direct(struct stream *s, struct buf *out, size_t want)
{
    size_t step = want < STREAM_DIRECT_STEP ? want : STREAM_DIRECT_STEP;
    if (buf_reserve(out, step) != 0)
        return STREAM_ERROR;
    ssize_t n = stream_read_into(s, out->data + out->len, step);
    if (n < 0)
        return (int)n;
    out->len += (size_t)n;
    out->data[out->len] = '\0';
    return STREAM_OK;
}

int stream_read_exact(struct stream *s, struct buf *out, size_t len)
{
    if (s->error)
        return s->error;
    if (len > out->limit - out->len)
        return STREAM_TOO_LONG;
    size_t want = len - stream_take_pending(s, out, len);
    while (want > 0) {
        size_t before = out->len;
        int rc;
        if (want >= STREAM_READ_CHUNK) {
            rc = stream_read_direct(s, out, want);
        } else {
            rc = stream_fill(s);
            if (rc == STREAM_OK && stream_take_pending(s, out, want) == 0)
                rc = STREAM_ERROR;
        }
        if (rc != STREAM_OK)
            return rc; /* the bytes read so far stay appended to out */
        want -= out->len - before;
    }
    return STREAM_OK;
}

int stream_read_some(struct stream *s, struct buf *out, size_t max)
{
    if (s->error)
        return s->error;
    if (max == 0)
        return STREAM_OK;
    size_t room = out->limit - out->len;
    if (room == 0)
        return STREAM_TOO_LONG;
    if (max > room)
        max = room;
    if (stream_pending(s) == 0) {
        int rc = stream_fill(s);
        if (rc != STREAM_OK)
            return rc;
    }
    return stream_take_pending(s, out, max) > 0 ? STREAM_OK : STREAM_ERROR;
}

/* One write attempt, without waiting on a socket, or a write(2) after
 * poll() for a descriptor that is not one: the byte count, or -1 with
 * errno. */
static ssize_t stream_write_once(struct stream *s, const char *data,
                                 size_t len)
{
    if (s->write_fn)
        return s->write_fn(s->io_ctx, data, len);
    if (s->not_socket)
        return write(s->fd, data, len < PIPE_BUF ? len : PIPE_BUF);
    ssize_t n = send(s->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0 || errno != ENOTSOCK)
        return n;
    s->not_socket = 1;
    errno = EAGAIN; /* poll, then write(2) */
    return -1;
}

/* Writes len bytes; *written says how many went out, also on failure. */
static int stream_write_all(struct stream *s, const char *data, size_t len,
                            size_t *written)
{
    /* As in stream_read_into(): write_fn and send(2) go first.  After a
     * partial write the socket buffer is full, so poll() comes first. */
    int call_first = s->write_fn != NULL || !s->not_socket;
    size_t done = 0;
    *written = 0;
    while (done < len) {
        if (!call_first) {
            int rc = stream_wait(s, POLLOUT);
            if (rc != STREAM_OK)
                return rc;
        } else if (s->write_fn == NULL && stream_deadline_passed(s)) {
            errno = ETIMEDOUT;
            return stream_fail(s, STREAM_TIMEOUT);
        }
        ssize_t n = stream_write_once(s, data + done, len - done);
        if (n > 0) {
            done += (size_t)n;
            *written = done;
            s->awaits_reply = 1;
            call_first = s->write_fn != NULL;
            continue;
        }
        if (n == 0)
            errno = EIO; /* no progress: fail rather than spin */
        if (n == 0 || (errno != EINTR && errno != EAGAIN &&
                       errno != EWOULDBLOCK))
            return stream_fail(s, STREAM_ERROR);
        call_first = errno == EINTR &&
                     (s->write_fn != NULL || !s->not_socket);
    }
    return STREAM_OK;
}

int stream_flush(struct stream *s)
{
    if (s->error)
        return s->error;
    size_t written;
    int rc = stream_write_all(s, s->out.data, s->out.len, &written);
    /* What went out is gone from the buffer even when the rest failed: a
     * caller that clears the error to send a last reply (a timeout
     * notice) must not send those bytes twice. */
    if (rc == STREAM_OK)
        buf_reset(&s->out);
    else
        buf_consume(&s->out, written);
    return rc;
}

int stream_write(struct stream *s, const void *data, size_t len)
{
    if (s->error)
        return s->error;
    if (len > s->out.limit - s->out.len) {
        int rc = stream_flush(s);
        if (rc != STREAM_OK)
            return rc;
        size_t written;
        if (len > s->out.limit)
            return stream_write_all(s, data, len, &written);
    }
    return buf_append(&s->out, data, len) == 0 ? STREAM_OK : STREAM_ERROR;
}

int stream_puts(struct stream *s, const char *text)
{
    return stream_write(s, text, strlen(text));
}

int stream_printf(struct stream *s, const char *fmt, ...)
{
    if (s->error)
        return s->error;
    va_list ap;
    va_start(ap, fmt);
    int failed = buf_vprintf(&s->out, fmt, ap);
    va_end(ap);
    if (failed == 0)
        return STREAM_OK;
    if (errno != EMSGSIZE || s->out.len == 0)
        return errno == EMSGSIZE ? STREAM_TOO_LONG : STREAM_ERROR;
    int rc = stream_flush(s); /* the text did not fit after what waits */
    if (rc != STREAM_OK)
        return rc;
    va_start(ap, fmt);
    failed = buf_vprintf(&s->out, fmt, ap);
    va_end(ap);
    if (failed == 0)
        return STREAM_OK;
    return errno == EMSGSIZE ? STREAM_TOO_LONG : STREAM_ERROR;
}
