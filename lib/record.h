/*
 * record - the record protocol that Postino daemons speak over Unix-domain
 * stream sockets (documented for admins and developers in
 * docs/protocol.md).
 *
 * A record is an ordered list of named attributes; a value is any bytes.
 * On the wire one record is
 *     u32  length of what follows (big-endian), at most the reader's limit
 *     u8   protocol version (RECORD_VERSION)
 *     then for each attribute:
 *       u8   name length, 1..RECORD_NAME_MAX
 *       name bytes: a-z, 0-9 and '_'
 *       u32  value length (big-endian)
 *       value bytes
 * A decoder rejects: an unknown version, a length over the limit, a name
 * that is empty, too long or has other characters, the same name twice, a
 * value that runs past the end, and a record that ends inside an attribute
 * (truncated).  Integers are sent as decimal text and read back strictly.
 *
 * Usage:
 *     struct record r;
 *     record_init(&r);
 *     record_add_str(&r, "request", "deliver");
 *     record_add_long(&r, "size", 5120);
 *     if (record_write(&stream, &r) != RECORD_OK || stream_flush(...)) ...
 *     record_reset(&r);
 *     int rc = record_read(&stream, &r, 64 * 1024);
 *     const char *status = record_get_str(&r, "status");
 *     record_free(&r);
 */
#ifndef POSTINO_RECORD_H
#define POSTINO_RECORD_H

#include <stddef.h>

#include "buf.h"
#include "stream.h"

#define RECORD_VERSION 1
#define RECORD_NAME_MAX 63
#define RECORD_HEADER_SIZE 5 /* u32 length + u8 version */

enum record_status {
    RECORD_OK = 0,
    RECORD_EOF = -1,         /* clean end of stream before a record */
    RECORD_TIMEOUT = -2,
    RECORD_IO_ERROR = -3,
    RECORD_TOO_LARGE = -4,   /* declared length over the limit */
    RECORD_TRUNCATED = -5,   /* stream or data ended inside a record */
    RECORD_BAD_VERSION = -6,
    RECORD_MALFORMED = -7,   /* bad name, duplicate name, bad lengths */
};

struct record_attr {
    char name[RECORD_NAME_MAX + 1];
    struct buf value; /* NUL-terminated, may hold NUL bytes */
};

struct record {
    struct record_attr *attrs;
    size_t count;
    size_t cap;
};

void record_init(struct record *r);
void record_free(struct record *r);
void record_reset(struct record *r);

/* Return RECORD_OK, or RECORD_MALFORMED for a bad or duplicate name. */
int record_add(struct record *r, const char *name, const void *value,
               size_t len);
int record_add_str(struct record *r, const char *name, const char *value);
int record_add_long(struct record *r, const char *name, long value);

const struct record_attr *record_find(const struct record *r,
                                      const char *name);
/* NULL when missing or when the value holds a NUL byte. */
const char *record_get_str(const struct record *r, const char *name);
/* 0 and *value set, or -1 when missing or not a decimal integer. */
int record_get_long(const struct record *r, const char *name, long *value);

/* Appends the wire form to out. */
int record_encode(const struct record *r, struct buf *out);
/* Decodes one whole wire record (header included) of len bytes. */
int record_decode(struct record *r, const void *data, size_t len,
                  size_t max_size);
int record_write(struct stream *s, const struct record *r);
/* Reads one record of at most max_size bytes (after the length field). */
int record_read(struct stream *s, struct record *r, size_t max_size);
const char *record_status_text(int status);

#endif
