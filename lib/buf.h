/*
 * buf - the one bounded, growable byte buffer of Postino.
 *
 * Every byte that comes from outside (network, files, other processes) is
 * held in a struct buf.  A buffer carries a hard limit on its length, given
 * to buf_init(); an append that would pass the limit fails with errno set to
 * EMSGSIZE and leaves the buffer as it was, so the caller can report "too
 * long" instead of cutting data silently.  Allocation failure gives ENOMEM.
 *
 * The contents are always followed by a NUL byte that len does not count, so
 * buf_cstr() may be handed to C string functions; the data itself may hold
 * NUL bytes, so code that handles external data uses len, never strlen().
 *
 * Usage:
 *     struct buf line;
 *     buf_init(&line, 1000);
 *     if (buf_append(&line, bytes, n) != 0)
 *         ... errno == EMSGSIZE: too long; ENOMEM: out of memory ...
 *     buf_printf(&line, " size=%zu", n);
 *     write(fd, line.data, line.len);
 *     buf_free(&line);
 *
 * All functions that can fail return 0 on success and -1 on failure.
 */
#ifndef POSTINO_BUF_H
#define POSTINO_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *data;   /* NULL until the first append; see buf_cstr() */
    size_t len;   /* bytes in use, not counting the trailing NUL */
    size_t cap;   /* bytes allocated, including room for the NUL */
    size_t limit; /* the most bytes len may ever reach */
};

/* A limit for buffers whose size is bounded elsewhere (e.g. by a file size). */
#define BUF_LIMIT_MAX ((size_t)1 << 40)

void buf_init(struct buf *b, size_t limit);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
void buf_truncate(struct buf *b, size_t len);
int buf_reserve(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *data, size_t n);
int buf_append_str(struct buf *b, const char *s);
int buf_append_char(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
int buf_set(struct buf *b, const void *data, size_t n);
int buf_set_str(struct buf *b, const char *s);
void buf_consume(struct buf *b, size_t n);
const char *buf_cstr(const struct buf *b);

#endif
