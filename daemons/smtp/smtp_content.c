/*
 * smtp_content - the content on the wire: CRLF, dot-stuffing, long lines
 * broken, and the 8-bit to quoted-printable conversion (interface and the
 * rules: smtp_content.h).
 */
#include "smtp_content.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "mail_header.h"

#define MIME_DEPTH_MAX 20
#define QP_LINE_MAX 76

void smtp_text_init(struct smtp_text *t, size_t limit)
{
    t->limit = limit;
    t->col = 0;
}

int smtp_text_encode(struct smtp_text *t, const char *data, size_t len,
                     struct buf *out)
{
    size_t i = 0;
    while (i < len) {
        if (data[i] == '\n') {
            if (buf_append(out, "\r\n", 2) != 0)
                return -1;
            t->col = 0;
            i++;
            continue;
        }
        if (t->col == 0 && data[i] == '.' && buf_append_char(out, '.') != 0)
            return -1;
        if (t->limit > 0 && t->col >= t->limit) {
            if (buf_append(out, "\r\n ", 3) != 0)
                return -1;
            t->col = 1;
        }
        /* The run of bytes up to the line end or the limit. */
        const char *nl = memchr(data + i, '\n', len - i);
        size_t run = (nl != NULL ? (size_t)(nl - data) : len) - i;
        if (t->limit > 0 && run > t->limit - t->col)
            run = t->limit - t->col;
        if (buf_append(out, data + i, run) != 0)
            return -1;
        t->col += run;
        i += run;
    }
    return 0;
}

int smtp_text_finish(struct smtp_text *t, struct buf *out)
{
    if (t->col > 0 && buf_append(out, "\r\n", 2) != 0)
        return -1;
    t->col = 0;
    return buf_append(out, ".\r\n", 3);
}

int smtp_content_is_8bit(const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)data[i] & 0x80)
            return 1;
    return 0;
}

static int qp_needs_encoding(unsigned char c, int at_line_end)
{
    if (c == '=' || c > 126 || (c < 32 && c != '\t'))
        return 1;
    return (c == ' ' || c == '\t') && at_line_end;
}

int smtp_qp_encode(const char *data, size_t len, struct buf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t col = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)data[i];
        if (c == '\n') {
            if (buf_append_char(out, '\n') != 0)
                return -1;
            col = 0;
            continue;
        }
        int at_end = i + 1 == len || data[i + 1] == '\n';
        int encode = qp_needs_encoding(c, at_end);
        size_t width = encode ? 3 : 1;
        /* Room for a soft break "=" unless this ends the line. */
        size_t room = at_end ? QP_LINE_MAX : QP_LINE_MAX - 1;
        if (col + width > room) {
            if (buf_append(out, "=\n", 2) != 0)
                return -1;
            col = 0;
        }
        char piece[3] = { '=', hex[c >> 4], hex[c & 15] };
        if (encode ? buf_append(out, piece, 3) != 0
                   : buf_append_char(out, (char)c) != 0)
            return -1;
        col += width;
    }
    return 0;
}

/* ---- MIME structure ---------------------------------------------------- */

struct mime_entity {
    const char *header;       /* the header fields, each with its LF */
    size_t header_len;
    const char *body;         /* after the empty line (or the end) */
    size_t body_len;
    int has_separator;        /* there was an empty line */
    int has_type;
    int is_text;
    int is_message;
    int is_multipart;
    int has_mime_version;
    char encoding[32];        /* lower case; "" when absent */
    struct buf boundary;
};

/* The length of the line at p (with its LF, if any). */
static size_t line_length(const char *p, size_t left)
{
    const char *nl = memchr(p, '\n', left);
    return nl != NULL ? (size_t)(nl - p) + 1 : left;
}

/* The length of the field at p, continuation lines included. */
static size_t field_length(const char *p, size_t left)
{
    size_t n = line_length(p, left);
    while (n < left && mail_header_continues(p + n, left - n))
        n += line_length(p + n, left - n);
    return n;
}

static void field_token(const char *field, size_t len, char *out,
                        size_t size)
{
    size_t vlen;
    const char *v = mail_header_value(field, len, &vlen);
    size_t n = 0;
    while (n < vlen && n + 1 < size && v[n] != ';' && v[n] != '(' &&
           !isspace((unsigned char)v[n])) {
        out[n] = (char)tolower((unsigned char)v[n]);
        n++;
    }
    out[n] = '\0';
}

static void entity_parse(struct mime_entity *e, const char *p, size_t len,
                         int default_message)
{
    memset(e, 0, sizeof(*e));
    buf_init(&e->boundary, MAIL_BOUNDARY_MAX + 1);
    size_t pos = 0;
    while (pos < len) {
        if (p[pos] == '\n') {
            e->has_separator = 1;
            break;
        }
        size_t n = field_length(p + pos, len - pos);
        const char *f = p + pos;
        if (mail_header_name_is(f, n, "Content-Type")) {
            char type[64];
            field_token(f, n, type, sizeof(type));
            e->has_type = 1;
            e->is_text = strncmp(type, "text/", 5) == 0;
            e->is_message = mail_header_is_message(f, n);
            e->is_multipart = mail_header_boundary(f, n, &e->boundary);
            if (strncmp(type, "multipart/", 10) == 0 && !e->is_multipart)
                e->is_multipart = -1;  /* no usable boundary */
        } else if (mail_header_name_is(f, n, "Content-Transfer-Encoding")) {
            field_token(f, n, e->encoding, sizeof(e->encoding));
        } else if (mail_header_name_is(f, n, "MIME-Version")) {
            e->has_mime_version = 1;
        }
        pos += n;
    }
    e->header = p;
    e->header_len = pos;
    size_t body_start = pos + (e->has_separator ? 1 : 0);
    e->body = p + body_start;
    e->body_len = len - body_start;
    if (!e->has_type) {
        e->is_message = default_message;
        e->is_text = !default_message;
    }
}

/* The header without its Content-Transfer-Encoding fields, then one
 * saying encoding (and MIME-Version when add_version). */
static int header_rewrite(const struct mime_entity *e, const char *encoding,
                          int add_version, struct buf *out)
{
    size_t pos = 0;
    while (pos < e->header_len) {
        size_t n = field_length(e->header + pos, e->header_len - pos);
        const char *f = e->header + pos;
        if (!mail_header_name_is(f, n, "Content-Transfer-Encoding") &&
            buf_append(out, f, n) != 0)
            return -1;
        pos += n;
    }
    if (e->header_len > 0 && e->header[e->header_len - 1] != '\n' &&
        buf_append_char(out, '\n') != 0)
        return -1;
    if (add_version && buf_append_str(out, "MIME-Version: 1.0\n") != 0)
        return -1;
    if (buf_printf(out, "Content-Transfer-Encoding: %s\n", encoding) != 0)
        return -1;
    return buf_append_char(out, '\n');
}

static int header_copy(const struct mime_entity *e, struct buf *out)
{
    if (buf_append(out, e->header, e->header_len) != 0)
        return -1;
    return e->has_separator ? buf_append_char(out, '\n') : 0;
}

static enum smtp_mime_status entity_convert(const char *p, size_t len,
                                            int top, int default_message,
                                            int depth, struct buf *out);

/* A delimiter line "--boundary" or the close "--boundary--": 1 or 2. */
static int delimiter_kind(const char *line, size_t n, const struct buf *b)
{
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' ||
                     line[n - 1] == ' ' || line[n - 1] == '\t'))
        n--;
    if (n < b->len + 2 || line[0] != '-' || line[1] != '-' ||
        memcmp(line + 2, b->data, b->len) != 0)
        return 0;
    size_t rest = n - 2 - b->len;
    if (rest == 0)
        return 1;
    if (rest == 2 && line[n - 2] == '-' && line[n - 1] == '-')
        return 2;
    return 0;
}

static enum smtp_mime_status multipart_convert(const struct mime_entity *e,
                                               int depth, struct buf *out)
{
    const char *p = e->body;
    size_t len = e->body_len, pos = 0, part_start = 0;
    int in_part = 0, closed = 0;
    while (pos < len) {
        size_t n = line_length(p + pos, len - pos);
        int kind = closed ? 0 : delimiter_kind(p + pos, n, &e->boundary);
        if (kind != 0) {
            const char *seg = p + part_start;
            size_t seg_len = pos - part_start;
            if (in_part) {
                enum smtp_mime_status st =
                    entity_convert(seg, seg_len, 0, 0, depth + 1, out);
                if (st != SMTP_MIME_OK)
                    return st;
            } else if (smtp_content_is_8bit(seg, seg_len)) {
                return SMTP_MIME_UNSAFE;        /* 8-bit preamble */
            } else if (buf_append(out, seg, seg_len) != 0) {
                return SMTP_MIME_NO_SPACE;
            }
            if (buf_append(out, p + pos, n) != 0)
                return SMTP_MIME_NO_SPACE;
            in_part = kind == 1;
            closed = kind == 2;
            part_start = pos + n;
        }
        pos += n;
    }
    const char *rest = p + part_start;
    size_t rest_len = len - part_start;
    if (in_part)   /* no closing delimiter: the last part runs to the end */
        return entity_convert(rest, rest_len, 0, 0, depth + 1, out);
    if (smtp_content_is_8bit(rest, rest_len))
        return SMTP_MIME_UNSAFE;
    return buf_append(out, rest, rest_len) == 0 ? SMTP_MIME_OK
                                                : SMTP_MIME_NO_SPACE;
}

static int encoding_is_identity(const char *encoding)
{
    return encoding[0] == '\0' || strcmp(encoding, "7bit") == 0 ||
           strcmp(encoding, "8bit") == 0;
}

static enum smtp_mime_status entity_convert(const char *p, size_t len,
                                            int top, int default_message,
                                            int depth, struct buf *out)
{
    if (depth > MIME_DEPTH_MAX)
        return SMTP_MIME_UNSAFE;
    struct mime_entity e;
    entity_parse(&e, p, len, default_message);
    enum smtp_mime_status st = SMTP_MIME_OK;
    if (!smtp_content_is_8bit(e.body, e.body_len)) {
        if (buf_append(out, p, len) != 0)
            st = SMTP_MIME_NO_SPACE;
    } else if (!encoding_is_identity(e.encoding) || e.is_multipart < 0) {
        st = SMTP_MIME_UNSAFE;   /* binary, or 8-bit inside base64... */
    } else if (e.is_multipart > 0 || e.is_message) {
        if (e.encoding[0] != '\0' && strcmp(e.encoding, "7bit") != 0)
            st = header_rewrite(&e, "7bit", 0, out) == 0
                     ? SMTP_MIME_OK : SMTP_MIME_NO_SPACE;
        else if (header_copy(&e, out) != 0)
            st = SMTP_MIME_NO_SPACE;
        if (st == SMTP_MIME_OK)
            st = e.is_message
                     ? entity_convert(e.body, e.body_len, 0, 0, depth + 1,
                                      out)
                     : multipart_convert(&e, depth, out);
    } else if (e.is_text) {
        if (header_rewrite(&e, "quoted-printable",
                           top && !e.has_mime_version, out) != 0 ||
            smtp_qp_encode(e.body, e.body_len, out) != 0)
            st = SMTP_MIME_NO_SPACE;
    } else {
        st = SMTP_MIME_UNSAFE;
    }
    buf_free(&e.boundary);
    return st;
}

enum smtp_mime_status smtp_mime_downgrade(const char *in, size_t len,
                                          struct buf *out)
{
    return entity_convert(in, len, 1, 0, 0, out);
}
