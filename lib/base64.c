/*
 * base64 - RFC 4648 base64 encoding and strict decoding into a struct buf.
 * See base64.h for the rules and the error codes.
 *
 *     base64_encode(data, len, &out);          appends "...=="
 *     rc = base64_decode(text, text_len, &out); appends the octets, or
 *                                              leaves out untouched
 *
 * Decoding first checks the whole text (alphabet, padding, leftover bits,
 * length), then reserves the exact room, then writes: a failure never
 * leaves half a result behind.
 */
#include "base64.h"

#include <errno.h>
#include <stdint.h>

static const char alphabet[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The 6-bit value of c, or -1 when c is not in the alphabet. */
static int sextet(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

size_t base64_encoded_length(size_t n)
{
    size_t groups = n / 3 + (n % 3 != 0);
    if (groups > SIZE_MAX / 4)
        return SIZE_MAX;
    return groups * 4;
}

static int reserve(struct buf *out, size_t n)
{
    if (buf_reserve(out, n) == 0)
        return BASE64_OK;
    return errno == EMSGSIZE ? BASE64_TOO_LONG : BASE64_NO_MEMORY;
}

/* Encodes 1 to 3 octets into 4 characters at dst. */
static void encode_group(const unsigned char *in, size_t n, char *dst)
{
    uint32_t bits = (uint32_t)in[0] << 16;
    if (n > 1)
        bits |= (uint32_t)in[1] << 8;
    if (n > 2)
        bits |= in[2];
    dst[0] = alphabet[(bits >> 18) & 63];
    dst[1] = alphabet[(bits >> 12) & 63];
    dst[2] = n > 1 ? alphabet[(bits >> 6) & 63] : '=';
    dst[3] = n > 2 ? alphabet[bits & 63] : '=';
}

int base64_encode(const void *data, size_t len, struct buf *out)
{
    size_t need = base64_encoded_length(len);
    if (need == SIZE_MAX)
        return BASE64_TOO_LONG;
    int rc = reserve(out, need);
    if (rc != BASE64_OK)
        return rc;
    const unsigned char *in = data;
    char *dst = out->data + out->len;
    for (size_t i = 0; i < len; i += 3, dst += 4)
        encode_group(in + i, len - i < 3 ? len - i : 3, dst);
    out->len += need;
    out->data[out->len] = '\0';
    return BASE64_OK;
}

/* How many "=" end text: 0, 1 or 2 (a third one is caught as misplaced). */
static size_t padding_count(const char *text, size_t len)
{
    size_t pad = 0;
    while (pad < 2 && pad < len && text[len - 1 - pad] == '=')
        pad++;
    return pad;
}

/* Checks everything but the length against the limit. */
static int check_text(const char *text, size_t len, size_t pad)
{
    for (size_t i = 0; i < len - pad; i++) {
        if (text[i] == '=')
            return BASE64_BAD_PADDING;
        if (sextet((unsigned char)text[i]) < 0)
            return BASE64_BAD_CHARACTER;
    }
    if (len % 4 != 0)
        return BASE64_BAD_LENGTH;
    if (pad == 0)
        return BASE64_OK;
    /* The last character before the padding may only carry the bits that
     * end an octet: 4 of its 6 for "xx==", 2 for "xxx=". */
    int last = sextet((unsigned char)text[len - pad - 1]);
    int unused_mask = pad == 2 ? 0x0f : 0x03;
    return (last & unused_mask) == 0 ? BASE64_OK : BASE64_BAD_PADDING;
}

/* Decodes one checked group of 4 characters, pad of them "=", to dst. */
static void decode_group(const char *in, size_t pad, unsigned char *dst)
{
    uint32_t bits = 0;
    for (size_t i = 0; i < 4; i++) {
        int v = i < 4 - pad ? sextet((unsigned char)in[i]) : 0;
        bits = (bits << 6) | (uint32_t)v;
    }
    dst[0] = (unsigned char)(bits >> 16);
    if (pad < 2)
        dst[1] = (unsigned char)(bits >> 8);
    if (pad < 1)
        dst[2] = (unsigned char)bits;
}

int base64_decode(const char *text, size_t len, struct buf *out)
{
    size_t pad = padding_count(text, len);
    int rc = check_text(text, len, pad);
    if (rc != BASE64_OK)
        return rc;
    size_t n = len / 4 * 3 - pad;
    rc = reserve(out, n);
    if (rc != BASE64_OK)
        return rc;
    unsigned char *dst = (unsigned char *)out->data + out->len;
    for (size_t i = 0; i < len; i += 4, dst += 3)
        decode_group(text + i, i + 4 == len ? pad : 0, dst);
    out->len += n;
    out->data[out->len] = '\0';
    return BASE64_OK;
}

const char *base64_strerror(int result)
{
    switch (result) {
    case BASE64_OK:
        return "no error";
    case BASE64_BAD_LENGTH:
        return "base64 text is not a whole number of 4-character groups";
    case BASE64_BAD_CHARACTER:
        return "invalid base64 character";
    case BASE64_BAD_PADDING:
        return "invalid base64 padding";
    case BASE64_TOO_LONG:
        return "decoded data too long";
    case BASE64_NO_MEMORY:
        return "out of memory";
    }
    return "unknown base64 error";
}
