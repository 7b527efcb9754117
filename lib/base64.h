/*
 * base64 - RFC 4648 section 4 base64 (the "+/" alphabet, "=" padding), as
 * SMTP AUTH (RFC 4954) and POP3 AUTH (RFC 5034) carry SASL data.
 *
 * Decoding is strict: the text must be a whole number of 4-character
 * groups, padding is required and correct, the bits that padding leaves
 * over are zero (one text per octet string), and nothing but the 64
 * characters and the final "=" may appear: no white space, no line
 * breaks, nothing after the padding.  Empty text decodes to no octets.
 * SASL's "=" for an empty response is sasl.c's business, not this one's.
 *
 * Both functions append to out and respect its limit; on any failure out
 * is left exactly as it was (nothing half-written).  Decoding checks the
 * whole text before it writes, so a caller that reserved room beforehand
 * gets no reallocation (no stray copies of secrets in freed memory).
 *
 * Usage:
 *     struct buf plain;
 *     buf_init(&plain, 1024);
 *     int rc = base64_decode(line, line_len, &plain);
 *     if (rc != BASE64_OK)
 *         ... reply "501 5.5.2", log base64_strerror(rc) ...
 *     struct buf text;
 *     buf_init(&text, 4096);
 *     if (base64_encode("Username:", 9, &text) != BASE64_OK) ...
 */
#ifndef POSTINO_BASE64_H
#define POSTINO_BASE64_H

#include <stddef.h>

#include "buf.h"

enum base64_result {
    BASE64_OK = 0,
    BASE64_BAD_LENGTH = -1,    /* not a whole number of 4-character groups */
    BASE64_BAD_CHARACTER = -2, /* outside the alphabet (white space too) */
    BASE64_BAD_PADDING = -3,   /* "=" misplaced, data after it, or non-zero
                                * bits before it */
    BASE64_TOO_LONG = -4,      /* the result would pass out's limit */
    BASE64_NO_MEMORY = -5,
};

/* The length of the encoding of n octets; SIZE_MAX when it overflows. */
size_t base64_encoded_length(size_t n);

/* Appends the encoding of data[0..len) to out.  BASE64_OK, BASE64_TOO_LONG
 * or BASE64_NO_MEMORY. */
int base64_encode(const void *data, size_t len, struct buf *out);

/* Appends the octets that text[0..len) encodes to out.  BASE64_OK or one
 * of the errors above. */
int base64_decode(const char *text, size_t len, struct buf *out);

/* "invalid base64 character", ... for logs; never NULL. */
const char *base64_strerror(int result);

#endif
