/*
 * mailbox_output - buffered, counted writes into a mailbox file, and the
 * codes of mailbox errors (interface: mailbox_output.h).
 */
#include "mailbox_output.h"

#include <errno.h>
#include <string.h>

#include "safe_file.h"

void mailbox_output_init(struct mailbox_output *out, int fd)
{
    out->fd = fd;
    buf_init(&out->pending, MAILBOX_OUTPUT_BLOCK);
    out->size = 0;
    out->error = 0;
    out->last = '\n';
}

int mailbox_output_flush(struct mailbox_output *out)
{
    if (out->error != 0)
        return -1;
    if (out->pending.len > 0 &&
        safe_file_write_all(out->fd, out->pending.data, out->pending.len) != 0) {
        out->error = errno != 0 ? errno : EIO;
        return -1;
    }
    buf_reset(&out->pending);
    return 0;
}

int mailbox_output_write(struct mailbox_output *out, const void *data,
                         size_t len)
{
    const char *p = data;
    while (len > 0) {
        if (out->error != 0)
            return -1;
        size_t room = MAILBOX_OUTPUT_BLOCK - out->pending.len;
        if (room == 0) {
            if (mailbox_output_flush(out) != 0)
                return -1;
            continue;
        }
        size_t n = len < room ? len : room;
        if (buf_append(&out->pending, p, n) != 0) {
            out->error = errno != 0 ? errno : ENOMEM;
            return -1;
        }
        out->size += n;
        out->last = p[n - 1];
        p += n;
        len -= n;
    }
    return out->error != 0 ? -1 : 0;
}

void mailbox_output_free(struct mailbox_output *out)
{
    buf_free(&out->pending);
}

const char *mailbox_error_dsn(int err, const char *what, struct buf *why)
{
    const char *dsn = "4.3.0";
    if (err == EDQUOT || err == EFBIG)
        dsn = "4.2.2";
    else if (err == ENOSPC)
        dsn = "4.3.1";
    if (err == EDQUOT)
        buf_printf(why, "%s: mailbox full (%s)", what, strerror(err));
    else if (err == ENOSPC)
        buf_printf(why, "%s: insufficient system storage (%s)", what,
                   strerror(err));
    else
        buf_printf(why, "%s: %s", what, strerror(err));
    return dsn;
}

/* ---- copying, with mboxrd quoting ------------------------------------- */

/* Where the line being copied stands: at its start, ">" were seen and
 * then the first from_len bytes of "From ". */
struct mailbox_quote {
    int at_line_start;
    unsigned long long quotes;
    size_t from_len;
};

static const char mailbox_from[] = "From ";

static void mailbox_write_quotes(struct mailbox_output *out,
                                 unsigned long long count)
{
    static const char many[] = ">>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>";
    while (count > 0) {
        size_t n = count < sizeof(many) - 1 ? (size_t)count : sizeof(many) - 1;
        mailbox_output_write(out, many, n);
        count -= n;
    }
}

/* The line start seen so far was not a From_ line: write it as it was. */
static void mailbox_quote_release(struct mailbox_output *out,
                                  struct mailbox_quote *q)
{
    mailbox_write_quotes(out, q->quotes);
    mailbox_output_write(out, mailbox_from, q->from_len);
    q->quotes = 0;
    q->from_len = 0;
    q->at_line_start = 0;
}

static void mailbox_quote_chunk(struct mailbox_output *out,
                                struct mailbox_quote *q, const char *p,
                                size_t n)
{
    size_t i = 0;
    while (i < n && out->error == 0) {
        if (!q->at_line_start) {
            const char *nl = memchr(p + i, '\n', n - i);
            size_t end = nl != NULL ? (size_t)(nl - p) + 1 : n;
            mailbox_output_write(out, p + i, end - i);
            q->at_line_start = nl != NULL;
            i = end;
            continue;
        }
        char c = p[i];
        if (q->from_len == 0 && c == '>') {
            q->quotes++;
            i++;
        } else if (c == mailbox_from[q->from_len]) {
            i++;
            if (++q->from_len == sizeof(mailbox_from) - 1) {
                q->quotes++;
                mailbox_quote_release(out, q);
            }
        } else {
            mailbox_quote_release(out, q);
        }
    }
}

int mailbox_output_copy(struct mailbox_output *out,
                        struct delivery_source *src, int flags,
                        struct buf *error)
{
    struct mailbox_quote q = { .at_line_start = 1 };
    for (;;) {
        const char *data;
        size_t len;
        int rc = delivery_source_next(src, &data, &len, error);
        if (rc < 0)
            return -2;
        if (rc == 0)
            break;
        if (flags & MAILBOX_QUOTE_FROM)
            mailbox_quote_chunk(out, &q, data, len);
        else
            mailbox_output_write(out, data, len);
        if (out->error != 0)
            return -1;
    }
    if (q.quotes > 0 || q.from_len > 0)
        mailbox_quote_release(out, &q);
    if (out->last != '\n')
        mailbox_output_write(out, "\n", 1);
    return out->error != 0 ? -1 : 0;
}
