/*
 * mail_header - header field syntax, unfolding, dates and the Received:
 * field.  See mail_header.h.
 */
#include "mail_header.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "base64.h"

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

int mail_header_is_mime(const char *field, size_t len)
{
    size_t n = mail_header_name_len(field, len);
    return mail_header_name_is(field, len, "MIME-Version") ||
           (n > 8 && strncasecmp(field, "Content-", 8) == 0);
}

/* Skips white space and (nested) comments. */
static const char *skip_cfws(const char *p, const char *end)
{
    while (p < end) {
        if (is_wsp(*p) || *p == '\r' || *p == '\n') {
            p++;
        } else if (*p == '(') {
            int depth = 0;
            while (p < end) {
                if (*p == '\\' && p + 1 < end)
                    p++;
                else if (*p == '(')
                    depth++;
                else if (*p == ')' && --depth == 0) {
                    p++;
                    break;
                }
                p++;
            }
        } else {
            break;
        }
    }
    return p;
}

/* RFC 2045 token characters. */
static int is_token(char c)
{
    unsigned char u = (unsigned char)c;
    return u > 32 && u < 127 && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* A parameter value: a token, or a quoted string without its quotes. */
static const char *param_value(const char *p, const char *end,
                               struct buf *out)
{
    if (p < end && *p == '"') {
        for (p++; p < end && *p != '"'; p++) {
            if (*p == '\\' && p + 1 < end)
                p++;
            if (buf_append_char(out, *p) != 0)
                return NULL;
        }
        return p < end ? p + 1 : p;
    }
    const char *start = p;
    while (p < end && is_token(*p))
        p++;
    return buf_append(out, start, (size_t)(p - start)) == 0 ? p : NULL;
}

int mail_header_is_message(const char *field, size_t len)
{
    if (!mail_header_name_is(field, len, "Content-Type"))
        return 0;
    size_t value_len;
    const char *p = mail_header_value(field, len, &value_len);
    const char *end = p + value_len;
    p = skip_cfws(p, end);
    static const char *const types[] = { "message/rfc822", "message/global" };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        size_t n = strlen(types[i]);
        if ((size_t)(end - p) < n || strncasecmp(p, types[i], n) != 0)
            continue;
        const char *after = skip_cfws(p + n, end);
        if (after == end || *after == ';')
            return 1;
    }
    return 0;
}

int mail_header_boundary(const char *field, size_t len, struct buf *boundary)
{
    if (!mail_header_name_is(field, len, "Content-Type"))
        return 0;
    size_t value_len;
    const char *p = mail_header_value(field, len, &value_len);
    const char *end = p + value_len;
    p = skip_cfws(p, end);
    if ((size_t)(end - p) < 10 || strncasecmp(p, "multipart/", 10) != 0)
        return 0;
    struct buf name, value;
    buf_init(&name, 64);
    buf_init(&value, MAIL_BOUNDARY_MAX);
    int found = 0;
    while (p != NULL && p < end && !found) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        if (semi == NULL)
            break;
        p = skip_cfws(semi + 1, end);
        const char *name_start = p;
        while (p < end && is_token(*p))
            p++;
        buf_reset(&name);
        if (buf_append(&name, name_start, (size_t)(p - name_start)) != 0)
            continue;
        p = skip_cfws(p, end);
        if (p >= end || *p != '=')
            continue;
        p = skip_cfws(p + 1, end);
        buf_reset(&value);
        p = param_value(p, end, &value);
        if (p != NULL && strcasecmp(buf_cstr(&name), "boundary") == 0 &&
            value.len > 0)
            found = buf_set(boundary, value.data, value.len) == 0;
    }
    buf_free(&name);
    buf_free(&value);
    return found;
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

/* --- Display names ------------------------------------------------------ */

/* RFC 5322 section 3.2.3 atext, and the space between atoms of a phrase;
 * 8-bit bytes count as atext only where UTF-8 headers are allowed (RFC
 * 6532). */
static int phrase_char(unsigned char c, int utf8_ok)
{
    if (c >= 0x80)
        return utf8_ok;
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
        (c >= '0' && c <= '9') || c == ' ')
        return 1;
    return strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL && c != '\0';
}

/* The length of the UTF-8 sequence at p (at most len bytes), 0 when none
 * is there (a stray, overlong or cut byte). */
static size_t utf8_sequence(const unsigned char *p, size_t len)
{
    size_t n = p[0] < 0x80 ? 1 : p[0] >= 0xc2 && p[0] <= 0xdf ? 2
             : p[0] >= 0xe0 && p[0] <= 0xef ? 3
             : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : 0;
    if (n == 0 || n > len)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

static int utf8_valid(const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *)text;
    while (len > 0) {
        size_t n = utf8_sequence(p, len);
        if (n == 0)
            return 0;
        p += n;
        len -= n;
    }
    return 1;
}

/* Encoded-words of at most 75 characters (RFC 2047 section 2), folded
 * onto continuation lines, never splitting a UTF-8 character. */
#define ENCODED_WORD_OCTETS 45 /* 60 base64 characters + 12 of framing */
static int phrase_encoded(const char *name, size_t len, struct buf *out)
{
    int utf8 = utf8_valid(name, len);
    const char *charset = utf8 ? "UTF-8" : "UNKNOWN-8BIT";
    size_t done = 0;
    while (done < len) {
        size_t take = 0;
        while (done + take < len) {
            size_t n = utf8 ? utf8_sequence((const unsigned char *)name +
                                                done + take,
                                            len - done - take)
                            : 1;
            if (take + n > ENCODED_WORD_OCTETS)
                break;
            take += n;
        }
        if ((done > 0 && buf_append_str(out, "\n ") != 0) ||
            buf_printf(out, "=?%s?B?", charset) != 0 ||
            base64_encode(name + done, take, out) != BASE64_OK ||
            buf_append_str(out, "?=") != 0)
            return -1;
        done += take;
    }
    return 0;
}

static int phrase_quoted(const char *name, size_t len, struct buf *out)
{
    if (buf_append_char(out, '"') != 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if ((name[i] == '"' || name[i] == '\\') &&
            buf_append_char(out, '\\') != 0)
            return -1;
        if (buf_append_char(out, name[i]) != 0)
            return -1;
    }
    return buf_append_char(out, '"');
}

int mail_header_phrase(const char *name, size_t len, int utf8_ok,
                       struct buf *out)
{
    while (len > 0 && (name[0] == ' ' || name[0] == '\t')) {
        name++;
        len--;
    }
    while (len > 0 && (name[len - 1] == ' ' || name[len - 1] == '\t'))
        len--;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x20 && name[i] != '\t') {
            errno = EINVAL;
            return -1;
        }
    int eight_bit = 0, plain = 1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        eight_bit |= c >= 0x80;
        plain &= phrase_char(c, utf8_ok);
    }
    if (eight_bit && !(utf8_ok && utf8_valid(name, len)))
        return phrase_encoded(name, len, out);
    /* Text that looks like an encoded-word is quoted, so that no reader
     * decodes what the user typed. */
    if (plain && memmem(name, len, "=?", 2) == NULL)
        return buf_append(out, name, len);
    return phrase_quoted(name, len, out);
}
