/*
 * smtp_content - the message as the SMTP client sends it after DATA.
 *
 * The queue holds the content with LF line ends and no dot-stuffing.  On
 * the wire (RFC 5321 section 4.5.2) every line ends in CRLF, a line that
 * starts with "." gets another one, and the data ends with ".".  A line
 * longer than smtp_line_length_limit is broken by inserting CRLF and a
 * space, as Postfix does, to limit the damage to MIME content.
 *
 *     struct smtp_text t;
 *     smtp_text_init(&t, 999);
 *     while (... chunk ...) smtp_text_encode(&t, data, len, &out);
 *     smtp_text_finish(&t, &out);         "\r\n" if needed, then ".\r\n"
 *
 * 8BITMIME (RFC 6152 section 3): a message with 8-bit bytes for a server
 * that does not announce 8BITMIME is converted: the body of every text
 * part (a message without a Content-Type is text/plain) that has 8-bit
 * bytes and no encoding or 7bit/8bit is encoded quoted-printable (RFC
 * 2045 section 6.7) and its Content-Transfer-Encoding says so; multipart
 * and message/rfc822 parts are converted part by part.  Anything else
 * (8-bit data in a non-text part, "binary", 8-bit preambles) cannot be
 * converted: smtp_mime_downgrade() returns SMTP_MIME_UNSAFE and the agent
 * bounces the message 5.6.3, as Postfix does.  Header fields are left as
 * they are.
 */
#ifndef POSTINO_SMTP_CONTENT_H
#define POSTINO_SMTP_CONTENT_H

#include <stddef.h>

#include "buf.h"

struct smtp_text {
    size_t limit;    /* bytes a line may have on the wire; 0: no limit */
    size_t col;      /* bytes of the current line written so far */
};

void smtp_text_init(struct smtp_text *t, size_t limit);
/* Appends the wire form of data to out.  0, or -1 (out is full). */
int smtp_text_encode(struct smtp_text *t, const char *data, size_t len,
                     struct buf *out);
int smtp_text_finish(struct smtp_text *t, struct buf *out);

/* True when data holds a byte with the high bit set. */
int smtp_content_is_8bit(const char *data, size_t len);

enum smtp_mime_status {
    SMTP_MIME_OK = 0,
    SMTP_MIME_UNSAFE = -1,   /* cannot be converted: bounce 5.6.3 */
    SMTP_MIME_NO_SPACE = -2, /* out of memory or over out's limit */
};
/* The whole content in, the 7-bit content appended to out. */
enum smtp_mime_status smtp_mime_downgrade(const char *in, size_t len,
                                          struct buf *out);
/* Quoted-printable of data (LF line ends kept), lines at most 76. */
int smtp_qp_encode(const char *data, size_t len, struct buf *out);

#endif
