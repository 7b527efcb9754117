/*
 * mail_header - header field syntax, unfolding, dates and the Received:
 * field.  See mail_header.h.
 */
#include "mail_header.h"

#include <string.h>
#include <strings.h>

static int is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* RFC 5322 ftext: printable US-ASCII except ':'. */
static int is_ftext(char c)
{
    unsigned char u = (unsigned char)c;
    return u >= 33 && u <= 126 && u != ':';
}

size_t mail_header_name_len(const char *field, size_t len)
{
    size_t n = 0;
    while (n < len && is_ftext(field[n]))
        n++;
    if (n == 0)
        return 0;
    size_t colon = n;
    while (colon < len && is_wsp(field[colon]))
        colon++;
    return colon < len && field[colon] == ':' ? n : 0;
}

int mail_header_starts(const char *line, size_t len)
{
    return mail_header_name_len(line, len) > 0;
}

int mail_header_continues(const char *line, size_t len)
{
    return len > 0 && is_wsp(line[0]);
}

int mail_header_name_is(const char *field, size_t len, const char *name)
{
    size_t n = mail_header_name_len(field, len);
    return n > 0 && n == strlen(name) && strncasecmp(field, name, n) == 0;
}

const char *mail_header_value(const char *field, size_t len,
                              size_t *value_len)
{
    const char *colon = memchr(field, ':', len);
    if (colon == NULL) {
        *value_len = 0;
        return field + len;
    }
    const char *p = colon + 1;
    const char *end = field + len;
    while (end > p && (end[-1] == '\n' || end[-1] == '\r'))
        end--;
    while (p < end && (is_wsp(*p) || *p == '\n' || *p == '\r'))
        p++;
    *value_len = (size_t)(end - p);
    return p;
}

int mail_header_unfold(const char *field, size_t len, struct buf *out)
{
    size_t end = len;
    while (end > 0 && (field[end - 1] == '\n' || field[end - 1] == '\r'))
        end--;
    size_t start = 0;
    for (size_t i = 0; i < end; i++) {
        if (field[i] != '\r' && field[i] != '\n')
            continue;
        /* A line break inside a field: dropped, with a CR before an LF. */
        if (buf_append(out, field + start, i - start) != 0)
            return -1;
        if (field[i] == '\r' && i + 1 < end && field[i + 1] == '\n')
            i++;
        start = i + 1;
    }
    return buf_append(out, field + start, end - start);
}

int mail_date_format(time_t t, struct buf *out)
{
    static const char days[7][4] = {
        "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat",
    };
    static const char months[12][4] = {
        "Jan", "Feb", "Mar", "Apr", "May", "Jun",
        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    };
    struct tm tm;
    if (localtime_r(&t, &tm) == NULL)
        return -1;
    long offset = tm.tm_gmtoff / 60;
    char sign = offset < 0 ? '-' : '+';
    if (offset < 0)
        offset = -offset;
    return buf_printf(out, "%s, %d %s %d %02d:%02d:%02d %c%02ld%02ld",
                      days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
                      tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
                      sign, offset / 60, offset % 60);
}

static int present(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static const char *or_default(const char *s, const char *fallback)
{
    return present(s) ? s : fallback;
}

/* "\n\tfor <RCPT>; DATE\n", else ";\n\tDATE\n". */
static int received_tail(const struct mail_received *r, struct buf *out)
{
    if (present(r->recipient) &&
        buf_printf(out, "\n\tfor <%s>", r->recipient) != 0)
        return -1;
    if (buf_append_str(out, present(r->recipient) ? "; " : ";\n\t") != 0 ||
        mail_date_format(r->date, out) != 0)
        return -1;
    return buf_append_char(out, '\n');
}

static int received_local(const struct mail_received *r, struct buf *out)
{
    if (buf_printf(out, "Received: by %s (%s", or_default(r->by_host,
                                                         "localhost"),
                   or_default(r->mail_name, "Postino")) != 0)
        return -1;
    if (present(r->local_user) &&
        buf_printf(out, ", from userid %s", r->local_user) != 0)
        return -1;
    if (buf_printf(out, ")\n\tid %s; ", or_default(r->queue_id, "")) != 0 ||
        mail_date_format(r->date, out) != 0)
        return -1;
    return buf_append_char(out, '\n');
}

int mail_received_format(const struct mail_received *r, struct buf *out)
{
    if (!present(r->client_address))
        return received_local(r, out);
    const char *name = or_default(r->client_name, "unknown");
    if (buf_printf(out, "Received: from %s (%s [%s])",
                   or_default(r->helo_name, name), name,
                   r->client_address) != 0)
        return -1;
    if (present(r->tls) && buf_printf(out, "\n\t(using %s)", r->tls) != 0)
        return -1;
    if (present(r->sasl_username) &&
        buf_printf(out, "\n\t(Authenticated sender: %s)", r->sasl_username) !=
            0)
        return -1;
    if (buf_printf(out, "\n\tby %s (%s) with %s id %s",
                   or_default(r->by_host, "localhost"),
                   or_default(r->mail_name, "Postino"),
                   or_default(r->protocol, "SMTP"),
                   or_default(r->queue_id, "")) != 0)
        return -1;
    return received_tail(r, out);
}
