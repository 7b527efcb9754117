/*
 * buf - bounded, growable byte buffer.  See buf.h for the contract.
 */
#include "buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t limit)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->limit = limit;
}

void buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void buf_truncate(struct buf *b, size_t len)
{
    if (len >= b->len)
        return;
    b->len = len;
    b->data[len] = '\0';
}

/* Make room for extra more bytes plus the NUL, within the limit. */
int buf_reserve(struct buf *b, size_t extra)
{
    if (extra > b->limit || b->len > b->limit - extra) {
        errno = EMSGSIZE;
        return -1;
    }
    if (b->len + extra == SIZE_MAX) { /* no room for the NUL */
        errno = ENOMEM;
        return -1;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap - 1 > b->limit) /* not cap > limit + 1: limit may be SIZE_MAX */
        cap = b->limit + 1;
    char *data = realloc(b->data, cap);
    if (data == NULL) {
        errno = ENOMEM;
        return -1;
    }
    if (b->data == NULL)
        data[0] = '\0';
    b->data = data;
    b->cap = cap;
    return 0;
}

int buf_append(struct buf *b, const void *data, size_t n)
{
    if (buf_reserve(b, n) != 0)
        return -1;
    if (n > 0)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int buf_append_str(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_append_char(struct buf *b, char c)
{
    return buf_append(b, &c, 1);
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    if (n < 0) {
        va_end(again);
        errno = EINVAL;
        return -1;
    }
    if ((size_t)n < sizeof(small)) {
        va_end(again);
        return buf_append(b, small, (size_t)n);
    }
    if (buf_reserve(b, (size_t)n) != 0) {
        va_end(again);
        return -1;
    }
    int m = vsnprintf(b->data + b->len, (size_t)n + 1, fmt, again);
    va_end(again);
    if (m != n) {
        b->data[b->len] = '\0';
        errno = EINVAL;
        return -1;
    }
    b->len += (size_t)n;
    return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

/* data may point into b itself (e.g. to drop a prefix), hence the room is
 * made before anything is changed, and memmove; on failure b is unchanged. */
int buf_set(struct buf *b, const void *data, size_t n)
{
    size_t old_len = b->len;
    b->len = 0;
    if (buf_reserve(b, n) != 0) {
        b->len = old_len;
        return -1;
    }
    if (n > 0)
        memmove(b->data, data, n);
    b->len = n;
    b->data[n] = '\0';
    return 0;
}

int buf_set_str(struct buf *b, const char *s)
{
    return buf_set(b, s, strlen(s));
}

void buf_consume(struct buf *b, size_t n)
{
    if (n == 0)
        return;
    if (n >= b->len) {
        buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

const char *buf_cstr(const struct buf *b)
{
    return b->data ? b->data : "";
}
