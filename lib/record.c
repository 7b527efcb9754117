/*
 * record - encode, decode, send and receive the length-prefixed records
 * that Postino daemons exchange.  See record.h for the contract and
 * docs/protocol.md for the wire format.
 *
 * Build a record with record_add*(), send it with record_write() and
 * stream_flush(); receive one with record_read() and look values up with
 * record_find()/record_get_str()/record_get_long().  A record owns copies
 * of its names and values; record_reset() empties it for reuse and
 * record_free() releases it.
 *
 * Decoding trusts nothing: every length is checked against the bytes that
 * are really there before it is used, and duplicate names are found by
 * sorting, so a hostile record costs O(n log n), not O(n^2).  On failure
 * record_decode() and record_read() leave the record empty.  After
 * RECORD_TOO_LARGE, RECORD_TRUNCATED or an I/O status the stream is no
 * longer in step with the peer: close it.
 *
 * Allocation failure is reported as RECORD_IO_ERROR with errno ENOMEM.
 */
#include "record.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

#define RECORD_LENGTH_SIZE 4
#define RECORD_VALUE_MAX UINT32_MAX

void record_init(struct record *r)
{
    r->attrs = NULL;
    r->count = 0;
    r->cap = 0;
}

void record_reset(struct record *r)
{
    for (size_t i = 0; i < r->count; i++)
        buf_free(&r->attrs[i].value);
    r->count = 0;
}

void record_free(struct record *r)
{
    record_reset(r);
    free(r->attrs);
    record_init(r);
}

static int record_name_char_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* 1 when the len bytes at name form a valid attribute name. */
static int record_name_ok(const char *name, size_t len)
{
    if (len == 0 || len > RECORD_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!record_name_char_ok((unsigned char)name[i]))
            return 0;
    return 1;
}

/* Appends an attribute without checking for a duplicate name; the name
 * has been validated.  Returns RECORD_OK or RECORD_IO_ERROR. */
static int record_append(struct record *r, const char *name, size_t name_len,
                         const void *value, size_t len)
{
    if (r->count == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        if (cap > SIZE_MAX / sizeof(*r->attrs)) {
            errno = ENOMEM;
            return RECORD_IO_ERROR;
        }
        struct record_attr *attrs = realloc(r->attrs, cap * sizeof(*attrs));
        if (attrs == NULL) {
            errno = ENOMEM;
            return RECORD_IO_ERROR;
        }
        r->attrs = attrs;
        r->cap = cap;
    }
    struct record_attr *a = &r->attrs[r->count];
    buf_init(&a->value, RECORD_VALUE_MAX);
    if (buf_set(&a->value, value, len) != 0) {
        buf_free(&a->value);
        return RECORD_IO_ERROR;
    }
    memcpy(a->name, name, name_len);
    a->name[name_len] = '\0';
    r->count++;
    return RECORD_OK;
}

int record_add(struct record *r, const char *name, const void *value,
               size_t len)
{
    size_t name_len = strlen(name);
    if (!record_name_ok(name, name_len) || record_find(r, name) != NULL ||
        len > RECORD_VALUE_MAX)
        return RECORD_MALFORMED;
    return record_append(r, name, name_len, value, len);
}

int record_add_str(struct record *r, const char *name, const char *value)
{
    return record_add(r, name, value, strlen(value));
}

int record_add_long(struct record *r, const char *name, long value)
{
    char text[32];
    int n = snprintf(text, sizeof(text), "%ld", value);
    if (n < 0 || (size_t)n >= sizeof(text))
        return RECORD_MALFORMED;
    return record_add(r, name, text, (size_t)n);
}

const struct record_attr *record_find(const struct record *r,
                                      const char *name)
{
    for (size_t i = 0; i < r->count; i++)
        if (strcmp(r->attrs[i].name, name) == 0)
            return &r->attrs[i];
    return NULL;
}

const char *record_get_str(const struct record *r, const char *name)
{
    const struct record_attr *a = record_find(r, name);
    if (a == NULL || memchr(buf_cstr(&a->value), '\0', a->value.len))
        return NULL;
    return buf_cstr(&a->value);
}

int record_get_long(const struct record *r, const char *name, long *value)
{
    const char *text = record_get_str(r, name);
    if (text == NULL)
        return -1;
    return text_parse_long(text, LONG_MIN, LONG_MAX, value);
}

static void record_put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t record_get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* The wire size after the length field: 0 and *size, or -1 when it does
 * not fit in the u32 length field. */
static int record_body_size(const struct record *r, size_t *size)
{
    size_t total = 1; /* version */
    for (size_t i = 0; i < r->count; i++) {
        size_t attr = 1 + strlen(r->attrs[i].name) + 4;
        size_t value = r->attrs[i].value.len;
        if (value > UINT32_MAX - attr || total > UINT32_MAX - attr - value)
            return -1;
        total += attr + value;
    }
    *size = total;
    return 0;
}

/* Appends one attribute in wire form. */
static int record_encode_attr(const struct record_attr *a, struct buf *out)
{
    unsigned char name_len = (unsigned char)strlen(a->name);
    unsigned char value_len[4];
    record_put_u32(value_len, (uint32_t)a->value.len);
    if (buf_append(out, &name_len, 1) != 0 ||
        buf_append(out, a->name, name_len) != 0 ||
        buf_append(out, value_len, sizeof(value_len)) != 0 ||
        buf_append(out, buf_cstr(&a->value), a->value.len) != 0)
        return -1;
    return 0;
}

int record_encode(const struct record *r, struct buf *out)
{
    size_t body;
    if (record_body_size(r, &body) != 0)
        return RECORD_TOO_LARGE;
    if (buf_reserve(out, RECORD_LENGTH_SIZE + body) != 0)
        return errno == EMSGSIZE ? RECORD_TOO_LARGE : RECORD_IO_ERROR;
    size_t start = out->len;
    unsigned char head[RECORD_HEADER_SIZE];
    record_put_u32(head, (uint32_t)body);
    head[RECORD_LENGTH_SIZE] = RECORD_VERSION;
    int failed = buf_append(out, head, sizeof(head));
    for (size_t i = 0; i < r->count && failed == 0; i++)
        failed = record_encode_attr(&r->attrs[i], out);
    if (failed == 0)
        return RECORD_OK;
    buf_truncate(out, start); /* cannot happen: the room was reserved */
    return RECORD_IO_ERROR;
}

static int record_name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* RECORD_MALFORMED when two attributes have the same name. */
static int record_check_unique(const struct record *r)
{
    if (r->count < 2)
        return RECORD_OK;
    const char **names = malloc(r->count * sizeof(*names));
    if (names == NULL) {
        errno = ENOMEM;
        return RECORD_IO_ERROR;
    }
    for (size_t i = 0; i < r->count; i++)
        names[i] = r->attrs[i].name;
    qsort(names, r->count, sizeof(*names), record_name_cmp);
    int rc = RECORD_OK;
    for (size_t i = 1; i < r->count && rc == RECORD_OK; i++)
        if (strcmp(names[i - 1], names[i]) == 0)
            rc = RECORD_MALFORMED;
    free(names);
    return rc;
}

/* Decodes the attribute at *pos of the body that ends at end. */
static int record_decode_attr(struct record *r, const unsigned char *body,
                              size_t *pos, size_t end)
{
    size_t p = *pos;
    size_t name_len = body[p++];
    if (name_len == 0 || name_len > RECORD_NAME_MAX)
        return RECORD_MALFORMED;
    if (end - p < name_len + 4)
        return RECORD_TRUNCATED; /* ends inside the attribute's header */
    const char *name = (const char *)body + p;
    if (!record_name_ok(name, name_len))
        return RECORD_MALFORMED;
    p += name_len;
    uint32_t value_len = record_get_u32(body + p);
    p += 4;
    if (value_len > end - p)
        return RECORD_MALFORMED; /* the value runs past the end */
    int rc = record_append(r, name, name_len, body + p, value_len);
    if (rc != RECORD_OK)
        return rc;
    *pos = p + value_len;
    return RECORD_OK;
}

/* Checks the framing of a whole wire record: its length and version. */
static int record_check_frame(const unsigned char *p, size_t len,
                              size_t max_size)
{
    if (len < RECORD_LENGTH_SIZE)
        return RECORD_TRUNCATED;
    uint32_t body = record_get_u32(p);
    if (body > max_size)
        return RECORD_TOO_LARGE;
    if (len - RECORD_LENGTH_SIZE < body)
        return RECORD_TRUNCATED;
    if (len - RECORD_LENGTH_SIZE > body)
        return RECORD_MALFORMED; /* bytes after the declared end */
    if (body < 1)
        return RECORD_MALFORMED; /* no room for the version byte */
    if (p[RECORD_LENGTH_SIZE] != RECORD_VERSION)
        return RECORD_BAD_VERSION;
    return RECORD_OK;
}

int record_decode(struct record *r, const void *data, size_t len,
                  size_t max_size)
{
    record_reset(r);
    const unsigned char *p = data;
    int rc = record_check_frame(p, len, max_size);
    size_t pos = RECORD_HEADER_SIZE;
    while (rc == RECORD_OK && pos < len)
        rc = record_decode_attr(r, p, &pos, len);
    if (rc == RECORD_OK)
        rc = record_check_unique(r);
    if (rc != RECORD_OK)
        record_reset(r);
    return rc;
}

static int record_stream_status(int stream_rc)
{
    switch (stream_rc) {
    case STREAM_OK:
        return RECORD_OK;
    case STREAM_EOF:
        return RECORD_EOF;
    case STREAM_TIMEOUT:
        return RECORD_TIMEOUT;
    case STREAM_TOO_LONG:
        return RECORD_TOO_LARGE;
    default:
        return RECORD_IO_ERROR;
    }
}

int record_write(struct stream *s, const struct record *r)
{
    size_t body;
    if (record_body_size(r, &body) != 0)
        return RECORD_TOO_LARGE;
    struct buf wire;
    buf_init(&wire, RECORD_LENGTH_SIZE + body);
    int rc = record_encode(r, &wire);
    if (rc == RECORD_OK)
        rc = record_stream_status(stream_write(s, wire.data, wire.len));
    buf_free(&wire);
    return rc;
}

/* Reads the whole wire record into wire; the record is not decoded. */
static int record_read_wire(struct stream *s, struct buf *wire,
                            size_t max_size)
{
    int rc = stream_read_exact(s, wire, RECORD_LENGTH_SIZE);
    if (rc == STREAM_EOF)
        return wire->len == 0 ? RECORD_EOF : RECORD_TRUNCATED;
    if (rc != STREAM_OK)
        return record_stream_status(rc);
    uint32_t body = record_get_u32((const unsigned char *)wire->data);
    if (body > max_size)
        return RECORD_TOO_LARGE; /* the body is left unread */
    rc = stream_read_exact(s, wire, body);
    if (rc == STREAM_EOF)
        return RECORD_TRUNCATED;
    return record_stream_status(rc);
}

int record_read(struct stream *s, struct record *r, size_t max_size)
{
    record_reset(r);
    if (max_size > UINT32_MAX)
        max_size = UINT32_MAX;
    struct buf wire;
    buf_init(&wire, RECORD_LENGTH_SIZE + max_size);
    int rc = record_read_wire(s, &wire, max_size);
    if (rc == RECORD_OK)
        rc = record_decode(r, wire.data, wire.len, max_size);
    buf_free(&wire);
    return rc;
}

const char *record_status_text(int status)
{
    switch (status) {
    case RECORD_OK:
        return "ok";
    case RECORD_EOF:
        return "end of stream";
    case RECORD_TIMEOUT:
        return "timeout";
    case RECORD_IO_ERROR:
        return "I/O error";
    case RECORD_TOO_LARGE:
        return "record too large";
    case RECORD_TRUNCATED:
        return "truncated record";
    case RECORD_BAD_VERSION:
        return "unsupported record version";
    case RECORD_MALFORMED:
        return "malformed record";
    default:
        return "unknown record status";
    }
}
