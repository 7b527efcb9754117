/*
 * alias_source - parses aliases(5) text (see alias_source.h for the
 * format) into (name, "item, item, item") pairs handed to a callback, and
 * splits such a value into its items again.
 *
 *     int errors = alias_source_read("/etc/aliases", add, ctx, &error);
 *
 * The file is read whole and split into logical entries by line_source (a
 * line starting with white space continues the entry above it; every line
 * with a NUL byte is reported, and continuation lines before any entry
 * make one bad entry).  Each entry is then taken apart into its name and
 * its list of items.  Buffers are reused from entry to entry.
 */
#include "alias_source.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "line_source.h"
#include "log.h"
#include "table.h"

struct alias_parser {
    const char *file;
    alias_source_fn *fn;
    void *ctx;
    struct buf *error;
    struct buf name;  /* the name, unquoted */
    struct buf value; /* the items joined with ", " */
    int entry_line;
    int errors;
};

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' ||
           c == '\v';
}

static void trim(const char **start, const char **end)
{
    while (*start < *end && is_blank(**start))
        (*start)++;
    while (*end > *start && is_blank((*end)[-1]))
        (*end)--;
}

static void parser_error(struct alias_parser *p, int line, const char *fmt,
                         ...) __attribute__((format(printf, 3, 4)));

static void parser_error(struct alias_parser *p, int line, const char *fmt,
                         ...)
{
    struct buf text;
    buf_init(&text, 4096);
    va_list ap;
    va_start(ap, fmt);
    int failed = buf_vprintf(&text, fmt, ap);
    va_end(ap);
    const char *message = failed ? "error (message too long)" : buf_cstr(&text);
    log_error("%s:%d: %s", p->file, line, message);
    if (p->errors == 0)
        (void)buf_printf(p->error, "%s:%d: %s", p->file, line, message);
    p->errors++;
    buf_free(&text);
}

/*
 * Scans one list item or name from *cursor up to a separator (',' for
 * items, ':' for names) outside double quotes, or end.  Returns 0, or -1
 * when a quote is not closed (the item then runs to end).
 */
static int scan_item(const char **cursor, const char *end, char separator)
{
    const char *s = *cursor;
    int quoted = 0;
    while (s < end) {
        if (quoted && *s == '\\' && s + 1 < end) {
            s += 2;
            continue;
        }
        if (*s == '"')
            quoted = !quoted;
        else if (!quoted && *s == separator)
            break;
        s++;
    }
    *cursor = s;
    return quoted ? -1 : 0;
}

int alias_list_next(const char **cursor, const char *end, const char **item,
                    size_t *item_len)
{
    while (*cursor < end) {
        const char *start = *cursor;
        const char *stop = start;
        (void)scan_item(&stop, end, ',');
        *cursor = stop < end ? stop + 1 : stop;
        trim(&start, &stop);
        if (stop > start) {
            *item = start;
            *item_len = (size_t)(stop - start);
            return 1;
        }
    }
    return 0;
}

/* A quoted name "..." starting at *s: its unquoted text into p->name;
 * *s moves past the closing quote.  0, -1 (unterminated) or -2 (too
 * long). */
static int unquote_name(struct alias_parser *p, const char **s,
                        const char *end)
{
    const char *c = *s + 1;
    buf_reset(&p->name);
    while (c < end && *c != '"') {
        if (*c == '\\' && c + 1 < end)
            c++;
        if (buf_append_char(&p->name, *c) != 0)
            return -2;
        c++;
    }
    if (c >= end)
        return -1;
    *s = c + 1;
    return 0;
}

/* The name of the entry into p->name; *s moves past the ':'.  0 or -1
 * (error reported). */
static int parse_quoted_name(struct alias_parser *p, const char **s,
                             const char *end)
{
    int bad = unquote_name(p, s, end);
    if (bad != 0) {
        parser_error(p, p->entry_line, "%s",
                     bad == -2 ? "alias name too long"
                               : "unterminated quote in alias name");
        return -1;
    }
    while (*s < end && is_blank(**s))
        (*s)++;
    if (*s >= end || **s != ':') {
        parser_error(p, p->entry_line,
                     "expected ':' after the quoted alias name");
        return -1;
    }
    (*s)++;
    if (p->name.len == 0) {
        parser_error(p, p->entry_line, "empty alias name");
        return -1;
    }
    return 0;
}

static int parse_plain_name(struct alias_parser *p, const char **s,
                            const char *end)
{
    const char *colon = memchr(*s, ':', (size_t)(end - *s));
    if (colon == NULL) {
        parser_error(p, p->entry_line,
                     "missing ':' after the alias name "
                     "(expected \"name: value, value\")");
        return -1;
    }
    const char *start = *s, *stop = colon;
    trim(&start, &stop);
    if (stop == start) {
        parser_error(p, p->entry_line, "empty alias name");
        return -1;
    }
    for (const char *c = start; c < stop; c++) {
        if (is_blank(*c)) {
            parser_error(p, p->entry_line,
                         "white space in alias name \"%.*s\" "
                         "(put the name in double quotes)",
                         (int)(stop - start), start);
            return -1;
        }
    }
    if (buf_set(&p->name, start, (size_t)(stop - start)) != 0) {
        parser_error(p, p->entry_line, "alias name too long");
        return -1;
    }
    *s = colon + 1;
    return 0;
}

/* The items after the ':' joined with ", " into p->value.  0 or -1. */
static int parse_items(struct alias_parser *p, const char *s, const char *end)
{
    buf_reset(&p->value);
    while (s < end) {
        const char *start = s, *stop = s;
        if (scan_item(&stop, end, ',') != 0) {
            parser_error(p, p->entry_line,
                         "unterminated quote in the value of \"%s\"",
                         buf_cstr(&p->name));
            return -1;
        }
        s = stop < end ? stop + 1 : stop;
        trim(&start, &stop);
        if (stop == start)
            continue;
        if ((p->value.len > 0 && buf_append(&p->value, ", ", 2) != 0) ||
            buf_append(&p->value, start, (size_t)(stop - start)) != 0) {
            parser_error(p, p->entry_line, "value of \"%s\" too long",
                         buf_cstr(&p->name));
            return -1;
        }
    }
    if (p->value.len == 0) {
        parser_error(p, p->entry_line, "no value for alias \"%s\"",
                     buf_cstr(&p->name));
        return -1;
    }
    return 0;
}

/* Takes one entry (a logical line) apart and hands it over.  0, or -1
 * when fn stopped the read. */
static int take_entry(struct alias_parser *p, const char *s, size_t len)
{
    const char *end = s + len;
    int bad = *s == '"' ? parse_quoted_name(p, &s, end)
                        : parse_plain_name(p, &s, end);
    if (bad || parse_items(p, s, end) != 0)
        return 0;
    if (p->fn(p->ctx, p->name.data, p->name.len, p->value.data, p->value.len,
              p->file, p->entry_line) != 0) {
        p->errors++;
        return -1;
    }
    return 0;
}

/* One logical line from line_source, or a problem in it. */
static int source_line(void *ctx, const struct line_source_line *l)
{
    struct alias_parser *p = ctx;
    switch (l->problem) {
    case LINE_SOURCE_OK:
        p->entry_line = l->line;
        return take_entry(p, l->text, l->len);
    case LINE_SOURCE_NUL:
        parser_error(p, l->where, "NUL byte in line");
        break;
    case LINE_SOURCE_ORPHAN:
        parser_error(p, l->where,
                     "continuation line (starting with white space) "
                     "without an entry above it");
        break;
    case LINE_SOURCE_TOO_LONG:
        parser_error(p, l->line, "entry longer than %d bytes",
                     TABLE_VALUE_MAX);
        break;
    }
    return 0;
}

/* A parser and the line source that feeds it. */
static void parser_init(struct alias_parser *p, struct line_source *src,
                        const char *file, alias_source_fn *fn, void *ctx,
                        struct buf *error)
{
    *p = (struct alias_parser){ .file = file, .fn = fn, .ctx = ctx,
                                .error = error };
    buf_init(&p->name, TABLE_KEY_MAX);
    buf_init(&p->value, TABLE_VALUE_MAX);
    *src = (struct line_source){
        .max_len = TABLE_VALUE_MAX,
        .flags = LINE_SOURCE_EACH_NUL | LINE_SOURCE_ORPHAN_GROUP,
        .fn = source_line,
        .ctx = p,
    };
}

/* Frees the parser; returns its error count. */
static int parser_done(struct alias_parser *p)
{
    buf_free(&p->name);
    buf_free(&p->value);
    return p->errors;
}

int alias_source_parse(const char *text, size_t len, const char *file,
                       alias_source_fn *fn, void *ctx, struct buf *error)
{
    struct alias_parser p;
    struct line_source src;
    parser_init(&p, &src, file, fn, ctx, error);
    if (line_source_parse_copy(&src, text, len) < 0)
        parser_error(&p, 1, "%s", strerror(ENOMEM));
    return parser_done(&p);
}

int alias_source_read(const char *path, alias_source_fn *fn, void *ctx,
                      struct buf *error)
{
    struct buf text;
    if (line_source_read_file(path, BUF_LIMIT_MAX, &text) != 0) {
        int saved = errno;
        (void)buf_printf(error, "cannot read %s: %s", path, strerror(saved));
        buf_free(&text);
        errno = saved;
        return -1;
    }
    struct alias_parser p;
    struct line_source src;
    parser_init(&p, &src, path, fn, ctx, error);
    (void)line_source_parse(&src, text.data, text.len); /* p counts a stop */
    buf_free(&text);
    return parser_done(&p);
}
