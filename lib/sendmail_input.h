/*
 * sendmail_input - turns the message that sendmail reads on its standard
 * input into stored content: lines ended by LF (a CRLF becomes LF), and,
 * unless dots are ignored (-i, -oi), a line that holds a single dot ends
 * the message, as in Sendmail and Postfix.  A last line without an end
 * gets one.  Bytes are fed in pieces of any size; the converted bytes go
 * to out, which the caller empties as it likes.  A second, separate
 * watcher (struct sendmail_rcpt_scan, below) looks for recipients in the
 * header for sendmail -t.
 *
 *     struct sendmail_input in;
 *     sendmail_input_init(&in, ignore_dots);
 *     while (!in.ended && (n = read(0, chunk, sizeof(chunk))) > 0) {
 *         size_t used = sendmail_input_feed(&in, chunk, n, &out);
 *         ... write out, buf_reset(&out) ...
 *     }
 *     sendmail_input_finish(&in, &out);
 *
 * feed() returns how many bytes it used: fewer than n only when the
 * message ended at a lone dot (in.ended is then set and the rest is not
 * part of the message).  out must have room for n + 2 bytes more; -1
 * (errno from buf) is returned as (size_t)-1.
 */
#ifndef POSTINO_SENDMAIL_INPUT_H
#define POSTINO_SENDMAIL_INPUT_H

#include <stddef.h>

#include "buf.h"

struct sendmail_input {
    int ignore_dots;
    int at_line_start;
    int pending_cr;   /* a CR was read; the next byte decides */
    int pending_dot;  /* a dot at the start of a line was held back */
    int ended;        /* the lone-dot line was seen */
    int any;          /* any byte was stored */
};

/* sendmail -t without recipients on the command line must find one in
 * the header: this watches the converted bytes for a To:, Cc: or Bcc:
 * field with a non-empty value, up to the end of the header (an empty
 * line, or a line that is not a header field).
 *
 *     struct sendmail_rcpt_scan scan;
 *     sendmail_rcpt_scan_init(&scan);
 *     sendmail_rcpt_scan_feed(&scan, out.data, out.len);   each piece
 *     if (!scan.found) ... "No recipient addresses found in message header"
 */
struct sendmail_rcpt_scan {
    int in_header;
    int at_line_start;
    int in_name;
    int in_rcpt_field;
    size_t name_len;
    char name[8];
    int found;
};

void sendmail_rcpt_scan_init(struct sendmail_rcpt_scan *scan);
void sendmail_rcpt_scan_feed(struct sendmail_rcpt_scan *scan,
                             const char *data, size_t len);

void sendmail_input_init(struct sendmail_input *in, int ignore_dots);
size_t sendmail_input_feed(struct sendmail_input *in, const char *data,
                           size_t len, struct buf *out);
/* End of input: held bytes, and the LF a last line lacks.  0 or -1. */
int sendmail_input_finish(struct sendmail_input *in, struct buf *out);

#endif
