/*
 * table_source - reads the postmap-style text source of a table ("key
 * value" lines, continuation lines, # comments) and calls back once per
 * entry; used by texthash: and by postino-map.  See table_source.h.
 *
 * The whole file is read into one buffer and split into logical lines in
 * place by line_source (no allocation per line); each logical line is cut
 * into its key and value, handed out as pointers into the buffer.
 *
 *     int errors = table_source_read(path, add_entry, ctx, &error);
 */
#include "table_source.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "line_source.h"
#include "log.h"
#include "table.h"

struct source_parser {
    const char *path;
    table_source_fn *fn;
    void *ctx;
    struct buf *error;
    int errors;
};

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static void syntax_error(struct source_parser *p, int line, const char *fmt,
                         ...) __attribute__((format(printf, 3, 4)));

static void syntax_error(struct source_parser *p, int line, const char *fmt,
                         ...)
{
    struct buf what;
    buf_init(&what, 1024);
    va_list ap;
    va_start(ap, fmt);
    (void)buf_vprintf(&what, fmt, ap);
    va_end(ap);
    log_error("%s:%d: %s", p->path, line, buf_cstr(&what));
    if (p->errors == 0)
        (void)buf_printf(p->error, "%s:%d: %s", p->path, line,
                         buf_cstr(&what));
    buf_free(&what);
    p->errors++;
}

/* Checks one logical line and hands its entry to fn. */
static int emit_entry(struct source_parser *p, const char *s, size_t len,
                      int line)
{
    size_t key_len = 0;
    while (key_len < len && !is_blank(s[key_len]))
        key_len++;
    const char *value = s + key_len;
    size_t value_len = len - key_len;
    while (value_len > 0 && is_blank(*value)) {
        value++;
        value_len--;
    }
    if (value_len == 0) {
        syntax_error(p, line, "%s", "expected format: key whitespace value");
        return 0;
    }
    if (key_len > TABLE_KEY_MAX) {
        syntax_error(p, line, "key longer than %d bytes", TABLE_KEY_MAX);
        return 0;
    }
    if (p->fn(p->ctx, s, key_len, value, value_len, p->path, line) != 0) {
        p->errors++;
        return -1;
    }
    return 0;
}

/* One logical line from line_source, or its problem. */
static int source_line(void *ctx, const struct line_source_line *l)
{
    struct source_parser *p = ctx;
    switch (l->problem) {
    case LINE_SOURCE_OK:
        return emit_entry(p, l->text, l->len, l->line);
    case LINE_SOURCE_NUL:
        syntax_error(p, l->line, "%s", "NUL byte in line");
        break;
    case LINE_SOURCE_ORPHAN:
        syntax_error(p, l->where, "%s",
                     "continuation line (starting with white space) "
                     "without a line before it");
        break;
    case LINE_SOURCE_TOO_LONG:
        syntax_error(p, l->line, "line longer than %d bytes",
                     TABLE_VALUE_MAX);
        break;
    }
    return 0;
}

int table_source_read(const char *path, table_source_fn *fn, void *ctx,
                      struct buf *error)
{
    struct buf text;
    if (line_source_read_file(path, BUF_LIMIT_MAX, &text) != 0) {
        (void)buf_printf(error, "%s: %s", path, strerror(errno));
        buf_free(&text);
        return -1;
    }
    struct source_parser p = {
        .path = path, .fn = fn, .ctx = ctx, .error = error, .errors = 0,
    };
    const struct line_source src = {
        .max_len = TABLE_VALUE_MAX,
        .flags = LINE_SOURCE_LENGTH_FIRST,
        .fn = source_line,
        .ctx = &p,
    };
    (void)line_source_parse(&src, text.data, text.len);
    buf_free(&text);
    return p.errors;
}
