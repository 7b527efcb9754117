/*
 * sendmail_input - line-end and lone-dot rules for sendmail's standard
 * input.  See sendmail_input.h.
 */
#include "sendmail_input.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

void sendmail_rcpt_scan_init(struct sendmail_rcpt_scan *scan)
{
    scan->in_header = 1;
    scan->at_line_start = 1;
    scan->in_name = 0;
    scan->in_rcpt_field = 0;
    scan->name_len = 0;
    scan->found = 0;
}

static int is_rcpt_field(const struct sendmail_rcpt_scan *scan)
{
    static const char *const names[] = { "to", "cc", "bcc" };
    for (size_t i = 0; i < 3; i++)
        if (scan->name_len == strlen(names[i]) &&
            strncasecmp(scan->name, names[i], scan->name_len) == 0)
            return 1;
    return 0;
}

/* One byte of a header line (not its first byte's decision). */
static void scan_byte(struct sendmail_rcpt_scan *scan, char c)
{
    if (scan->in_name) {
        if (c == ':') {
            scan->in_name = 0;
            scan->in_rcpt_field = is_rcpt_field(scan);
        } else if (c == '\n') {
            scan->in_header = 0; /* not a header field: the body */
        } else if (scan->name_len < sizeof(scan->name)) {
            scan->name[scan->name_len++] = c;
        } else {
            scan->name_len = sizeof(scan->name) + 1; /* too long to match */
        }
        return;
    }
    if (scan->in_rcpt_field && c != ' ' && c != '\t' && c != '\n' &&
        c != '\r')
        scan->found = 1;
}

void sendmail_rcpt_scan_feed(struct sendmail_rcpt_scan *scan,
                             const char *data, size_t len)
{
    for (size_t i = 0; i < len && scan->in_header && !scan->found; i++) {
        char c = data[i];
        if (scan->at_line_start) {
            if (c == '\n') {
                scan->in_header = 0;
                break;
            }
            if (c != ' ' && c != '\t') {
                scan->in_name = 1;
                scan->in_rcpt_field = 0;
                scan->name_len = 0;
            }
        }
        scan->at_line_start = c == '\n';
        scan_byte(scan, c);
    }
}

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
