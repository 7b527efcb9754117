/*
 * alias_source - parses aliases(5) text (see alias_source.h for the
 * format) into (name, "item, item, item") pairs handed to a callback, and
 * splits such a value into its items again.
 *
 *     int errors = alias_source_read("/etc/aliases", add, ctx, &error);
 *
 * The file is read whole, split into physical lines, and the physical lines
 * into logical entries (a line starting with white space continues the
 * entry above it).  Each entry is then taken apart into its name and its
 * list of items.  Buffers are reused from entry to entry.
 */
#include "alias_source.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "log.h"
#include "safe_file.h"
#include "table.h"

enum entry_state {
    ENTRY_NONE, /* no entry started yet */
    ENTRY_OK,   /* logical holds the entry so far */
    ENTRY_BAD,  /* the entry had an error: its continuations are skipped */
};

struct alias_parser {
    const char *file;
    alias_source_fn *fn;
    void *ctx;
    struct buf *error;
    struct buf logical; /* the entry, continuation lines joined */
    struct buf name;    /* the name, unquoted */
    struct buf value;   /* the items joined with ", " */
    enum entry_state state;
    int entry_line;
    int errors;
    int stopped;
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

/* Takes the finished entry in p->logical apart and hands it over. */
static void finish_entry(struct alias_parser *p)
{
    enum entry_state state = p->state;
    p->state = ENTRY_NONE;
    if (state != ENTRY_OK || p->stopped)
        return;
    const char *s = p->logical.data, *end = s + p->logical.len;
    int bad = *s == '"' ? parse_quoted_name(p, &s, end)
                        : parse_plain_name(p, &s, end);
    if (bad || parse_items(p, s, end) != 0)
        return;
    if (p->fn(p->ctx, p->name.data, p->name.len, p->value.data, p->value.len,
              p->file, p->entry_line) != 0) {
        p->errors++;
        p->stopped = 1;
    }
}

static void start_entry(struct alias_parser *p, const char *start,
                        const char *end, int line)
{
    finish_entry(p);
    p->entry_line = line;
    p->state = ENTRY_OK;
    if (buf_set(&p->logical, start, (size_t)(end - start)) != 0) {
        parser_error(p, line, "entry longer than %d bytes", TABLE_VALUE_MAX);
        p->state = ENTRY_BAD;
    }
}

static void continue_entry(struct alias_parser *p, const char *start,
                           const char *end, int line)
{
    if (p->state == ENTRY_NONE) {
        parser_error(p, line,
                     "continuation line (starting with white space) "
                     "without an entry above it");
        p->state = ENTRY_BAD;
        p->entry_line = line;
        return;
    }
    if (p->state == ENTRY_BAD)
        return;
    if (buf_append_char(&p->logical, ' ') != 0 ||
        buf_append(&p->logical, start, (size_t)(end - start)) != 0) {
        parser_error(p, p->entry_line, "entry longer than %d bytes",
                     TABLE_VALUE_MAX);
        p->state = ENTRY_BAD;
    }
}

/* One physical line, without its newline. */
static void parse_line(struct alias_parser *p, const char *line,
                       const char *end, int line_no)
{
    const char *start = line, *stop = end;
    trim(&start, &stop);
    if (start == stop || *start == '#')
        return;
    if (memchr(line, '\0', (size_t)(end - line)) != NULL) {
        if (!is_blank(*line))
            finish_entry(p);
        parser_error(p, line_no, "NUL byte in line");
        p->state = ENTRY_BAD;
        return;
    }
    if (is_blank(*line))
        continue_entry(p, start, stop, line_no);
    else
        start_entry(p, start, stop, line_no);
}

int alias_source_parse(const char *text, size_t len, const char *file,
                       alias_source_fn *fn, void *ctx, struct buf *error)
{
    struct alias_parser p = { .file = file, .fn = fn, .ctx = ctx,
                              .error = error, .state = ENTRY_NONE };
    buf_init(&p.logical, TABLE_VALUE_MAX);
    buf_init(&p.name, TABLE_KEY_MAX);
    buf_init(&p.value, TABLE_VALUE_MAX);
    const char *s = text, *end = text + len;
    int line_no = 0;
    while (s < end && !p.stopped) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *stop = nl != NULL ? nl : end;
        parse_line(&p, s, stop, ++line_no);
        s = nl != NULL ? nl + 1 : end;
    }
    finish_entry(&p);
    buf_free(&p.logical);
    buf_free(&p.name);
    buf_free(&p.value);
    return p.errors;
}

int alias_source_read(const char *path, alias_source_fn *fn, void *ctx,
                      struct buf *error)
{
    struct buf text;
    buf_init(&text, BUF_LIMIT_MAX);
    if (safe_file_read_all(path, &text) != 0) {
        int saved = errno;
        (void)buf_printf(error, "cannot read %s: %s", path, strerror(saved));
        buf_free(&text);
        errno = saved;
        return -1;
    }
    int errors = alias_source_parse(text.data != NULL ? text.data : "",
                                    text.len, path, fn, ctx, error);
    buf_free(&text);
    return errors;
}
