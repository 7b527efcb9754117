/*
 * table_source - reads the postmap-style text source of a table ("key
 * value" lines, continuation lines, # comments) and calls back once per
 * entry; used by texthash: and by postino-map.  See table_source.h.
 *
 * The whole file is read into one buffer and parsed in place: physical
 * lines are found with memchr, continuation lines are moved up behind the
 * line they continue, and entries are handed out as pointers into the
 * buffer.  Nothing is allocated per line.
 *
 *     int errors = table_source_read(path, add_entry, ctx, &error);
 */
#include "table_source.h"

#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "safe_file.h"
#include "table.h"

/* The logical line being collected: text moved to start..start+len. */
struct logical_line {
    char *start; /* NULL: none */
    size_t len;
    int line; /* where it began */
};

struct source_parser {
    const char *path;
    table_source_fn *fn;
    void *ctx;
    struct buf *error;
    int has_nul; /* the file holds a NUL byte somewhere */
    int errors;
    int stopped; /* fn returned -1 */
};

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static size_t trim_end(const char *s, size_t len)
{
    while (len > 0 && is_blank(s[len - 1]))
        len--;
    return len;
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
static void emit_entry(struct source_parser *p, const struct logical_line *l)
{
    const char *s = l->start;
    size_t len = trim_end(s, l->len);
    if (len > TABLE_VALUE_MAX) {
        syntax_error(p, l->line, "line longer than %d bytes",
                     TABLE_VALUE_MAX);
        return;
    }
    if (p->has_nul && memchr(s, '\0', len) != NULL) {
        syntax_error(p, l->line, "%s", "NUL byte in line");
        return;
    }
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
        syntax_error(p, l->line, "%s",
                     "expected format: key whitespace value");
        return;
    }
    if (key_len > TABLE_KEY_MAX) {
        syntax_error(p, l->line, "key longer than %d bytes", TABLE_KEY_MAX);
        return;
    }
    if (p->fn(p->ctx, s, key_len, value, value_len, p->path, l->line) != 0) {
        p->errors++;
        p->stopped = 1;
    }
}

/* Moves the continuation text behind the logical line, joined with one
 * space.  The text always lies after the line, so memmove is safe. */
static void join_continuation(struct logical_line *l, const char *text,
                              size_t text_len)
{
    l->len = trim_end(l->start, l->len);
    if (l->len > TABLE_VALUE_MAX)
        return; /* already too long: reported when emitted */
    l->start[l->len++] = ' ';
    memmove(l->start + l->len, text, text_len);
    l->len += text_len;
}

static void parse_line(struct source_parser *p, struct logical_line *l,
                       char *s, size_t len, int line)
{
    size_t skip = 0;
    while (skip < len && is_blank(s[skip]))
        skip++;
    if (skip == len || s[skip] == '#')
        return; /* blank or comment */
    if (skip == 0) {
        if (l->start != NULL)
            emit_entry(p, l);
        l->start = s;
        l->len = len;
        l->line = line;
        return;
    }
    if (l->start == NULL) {
        syntax_error(p, line, "%s",
                     "continuation line (starting with white space) "
                     "without a line before it");
        return;
    }
    join_continuation(l, s + skip, trim_end(s + skip, len - skip));
}

static int parse_text(struct source_parser *p, char *text, size_t size)
{
    struct logical_line l = {.start = NULL, .len = 0, .line = 0};
    char *end = text + size;
    int line = 0;
    for (char *s = text; s < end && !p->stopped;) {
        char *newline = memchr(s, '\n', (size_t)(end - s));
        char *line_end = newline ? newline : end;
        parse_line(p, &l, s, (size_t)(line_end - s), ++line);
        s = newline ? newline + 1 : end;
    }
    if (l.start != NULL && !p->stopped)
        emit_entry(p, &l);
    return p->errors;
}

static int read_source(const char *path, struct buf *text, struct buf *error)
{
    struct stat st;
    if (stat(path, &st) != 0 ||
        (st.st_size > 0 && buf_reserve(text, (size_t)st.st_size) != 0) ||
        safe_file_read_all(path, text) != 0) {
        (void)buf_printf(error, "%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int table_source_read(const char *path, table_source_fn *fn, void *ctx,
                      struct buf *error)
{
    struct buf text;
    buf_init(&text, BUF_LIMIT_MAX);
    if (read_source(path, &text, error) != 0) {
        buf_free(&text);
        return -1;
    }
    struct source_parser p = {
        .path = path,
        .fn = fn,
        .ctx = ctx,
        .error = error,
        .has_nul = memchr(buf_cstr(&text), '\0', text.len) != NULL,
        .errors = 0,
        .stopped = 0,
    };
    int errors = text.len > 0 ? parse_text(&p, text.data, text.len) : 0;
    buf_free(&text);
    return errors;
}
