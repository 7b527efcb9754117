/*
 * sendmail_input - line-end and lone-dot rules for sendmail's standard
 * input.  See sendmail_input.h.
 */
#include "sendmail_input.h"

#include <stdint.h>

void sendmail_input_init(struct sendmail_input *in, int ignore_dots)
{
    in->ignore_dots = ignore_dots;
    in->at_line_start = 1;
    in->pending_cr = 0;
    in->pending_dot = 0;
    in->ended = 0;
    in->any = 0;
}

static int put(struct sendmail_input *in, struct buf *out, char c)
{
    in->any = 1;
    in->at_line_start = c == '\n';
    return buf_append_char(out, c);
}

/* A line ended (LF, or CRLF).  1 when it was the lone dot. */
static int end_line(struct sendmail_input *in, struct buf *out, int *rc)
{
    if (in->pending_dot) {
        in->pending_dot = 0;
        in->ended = 1;
        return 1;
    }
    *rc = put(in, out, '\n');
    return 0;
}

size_t sendmail_input_feed(struct sendmail_input *in, const char *data,
                           size_t len, struct buf *out)
{
    for (size_t i = 0; i < len && !in->ended; i++) {
        char c = data[i];
        int rc = 0;
        if (in->pending_cr) {
            in->pending_cr = 0;
            if (c == '\n') {
                if (end_line(in, out, &rc))
                    return i + 1;
                if (rc != 0)
                    return SIZE_MAX;
                continue;
            }
            if (in->pending_dot) {
                in->pending_dot = 0;
                rc |= put(in, out, '.');
            }
            rc |= put(in, out, '\r');
        }
        if (c == '\r') {
            in->pending_cr = 1;
        } else if (c == '\n') {
            if (end_line(in, out, &rc))
                return i + 1;
        } else if (c == '.' && in->at_line_start && !in->pending_dot &&
                   !in->ignore_dots) {
            in->pending_dot = 1;
            in->at_line_start = 0;
        } else {
            if (in->pending_dot) {
                in->pending_dot = 0;
                rc |= put(in, out, '.');
            }
            rc |= put(in, out, c);
        }
        if (rc != 0)
            return SIZE_MAX;
    }
    return len;
}

int sendmail_input_finish(struct sendmail_input *in, struct buf *out)
{
    if (in->ended)
        return 0;
    int rc = 0;
    if (in->pending_dot) {
        /* "." then end of input: Sendmail ends the message there too. */
        in->pending_dot = 0;
        in->ended = 1;
        if (in->pending_cr)
            in->pending_cr = 0;
        return 0;
    }
    if (in->pending_cr) {
        in->pending_cr = 0;
        rc |= put(in, out, '\r');
    }
    if (in->any && !in->at_line_start)
        rc |= put(in, out, '\n');
    return rc != 0 ? -1 : 0;
}
