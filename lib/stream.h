/*
 * stream - buffered I/O on a socket or pipe, with deadlines, and a line
 * reader that reports an overlong line instead of cutting it silently.
 *
 * A stream wraps a file descriptor that the caller owns (stream_free does
 * not close it).  Every wait for the peer is bounded: by timeout_ms for each
 * single read or write wait (like Postfix's smtpd_timeout), and by an
 * optional absolute deadline for the whole exchange.  A signal that
 * interrupts a wait (EINTR) does not end it early: the wait resumes with the
 * time that remains.  The descriptor may be blocking or not: a socket is
 * read and written with MSG_DONTWAIT and polled only when that would block
 * (a read that follows a flush polls first, as the peer is then most
 * likely still to answer); any other descriptor is polled before each read
 * and write.
 *
 * Reading and writing go through read_fn/write_fn when set (TLS plugs in
 * there), otherwise through read(2)/write(2).  Such a function returns the
 * byte count, 0 at end of file, or -1 with errno; EAGAIN makes the stream
 * wait for readability (or, for writes, writability) and try again.  It is
 * called before any wait, since a TLS layer may hold bytes that poll()
 * cannot see, so it must not block: give it a non-blocking descriptor.
 *
 * Status codes (negative) are returned by every call that can fail; once a
 * stream has had a timeout or an I/O error, later calls return it again.
 *
 * Lines: stream_read_line() returns the bytes before the next LF, without
 * the LF and without a CR just before it; *ending says how the line ended:
 * STREAM_LINE_CRLF, STREAM_LINE_LF (a bare LF: SMTP must refuse it), or
 * STREAM_LINE_EOF (the peer closed after an unterminated line).  A bare CR
 * inside the line is left in the data for the caller to judge.  A line whose
 * content is longer than max_len bytes gives STREAM_TOO_LONG: the reader
 * has then read and thrown away the whole line, through its LF, so the next
 * call starts with the next line, and line holds the first max_len bytes.
 *
 * Usage:
 *     struct stream s;
 *     stream_init(&s, fd, 300 * 1000);
 *     stream_printf(&s, "220 %s ESMTP\r\n", host);
 *     if (stream_flush(&s) != STREAM_OK) ...
 *     int rc = stream_read_line(&s, &line, 1000, &ending);
 *     if (rc == STREAM_TOO_LONG) ... reply "500 5.5.2 line too long" ...
 *     stream_free(&s);
 */
#ifndef POSTINO_STREAM_H
#define POSTINO_STREAM_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"

enum stream_status {
    STREAM_OK = 0,
    STREAM_EOF = -1,      /* the peer closed, no data */
    STREAM_TIMEOUT = -2,  /* timeout_ms or the deadline passed */
    STREAM_ERROR = -3,    /* I/O error; errno was logged by the caller */
    STREAM_TOO_LONG = -4, /* a line or read passed the caller's limit */
};

enum stream_line_ending {
    STREAM_LINE_CRLF,
    STREAM_LINE_LF,
    STREAM_LINE_EOF,
};

/* Input buffered ahead of the reader, and output not yet flushed. */
#define STREAM_BUFFER_LIMIT (1024 * 1024)

struct stream {
    int fd;
    int timeout_ms;         /* per wait; negative: wait forever */
    long long deadline_ms;  /* CLOCK_MONOTONIC ms; 0: none */
    struct buf in;
    struct buf out;
    int error;              /* sticky STREAM_TIMEOUT or STREAM_ERROR */
    ssize_t (*read_fn)(void *io_ctx, void *data, size_t len);
    ssize_t (*write_fn)(void *io_ctx, const void *data, size_t len);
    void *io_ctx;
    size_t in_pos;          /* in.data[in_pos..in.len) is not yet returned */
    int not_socket;         /* send/recv said ENOTSOCK: poll before I/O */
    int awaits_reply;       /* output was flushed since the last read */
};

void stream_init(struct stream *s, int fd, int timeout_ms);
void stream_free(struct stream *s);
void stream_set_timeout(struct stream *s, int timeout_ms);
/* Bounds the whole exchange: seconds from now; 0 removes the bound. */
void stream_set_deadline(struct stream *s, long seconds);

int stream_read_line(struct stream *s, struct buf *line, size_t max_len,
                     enum stream_line_ending *ending);
/* Reads exactly len bytes (appended to out), or fails. */
int stream_read_exact(struct stream *s, struct buf *out, size_t len);
/* Reads what is available, at least one byte, at most max (appended). */
int stream_read_some(struct stream *s, struct buf *out, size_t max);
/* Bytes already read from the descriptor but not yet returned. */
size_t stream_pending(const struct stream *s);
/* Throws the buffered input away and returns how many bytes that was. */
size_t stream_discard_pending(struct stream *s);

/* Buffered output; flushed when more than STREAM_BUFFER_LIMIT waits. */
int stream_write(struct stream *s, const void *data, size_t len);
int stream_puts(struct stream *s, const char *text);
int stream_printf(struct stream *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int stream_flush(struct stream *s);

/* Milliseconds of CLOCK_MONOTONIC, the clock of every deadline. */
long long stream_now_ms(void);

#endif
