/*
 * master_cf - reads master.cf into a table of services.  master_cf.h has
 * the columns and the rules.
 *
 * Usage:
 *     struct master_cf cf;
 *     int errors = master_cf_load(path, &cf);   // -1: cannot read
 *     for (size_t i = 0; i < cf.count; i++) ... cf.services[i] ...
 *     master_cf_free(&cf);
 *
 * Logical lines come from config_read_lines() (the same rules as main.cf).
 * The first seven columns are plain words; the command and its arguments
 * may group text with white space in "{ ... }" (Postfix 3 syntax), which
 * becomes one argument without the braces and the white space just inside
 * them.  "-o name=value" options (among the options before the first
 * argument that does not start with '-', as Postfix's postconf reads
 * them) are parsed into overrides and kept in argv as "-o" "name=value",
 * because the master passes argv to the child as it is.  A line in error
 * is left out; the functions return the number of errors.
 */
#include "master_cf.h"

#include "buf.h"
#include "config.h"
#include "log.h"
#include "text.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MASTER_CF_FIELDS 7 /* before the command */
#define MASTER_CF_BLANKS " \t\r\n\f\v"
#define MASTER_CF_WAKEUP_MAX (365L * 86400)
#define MASTER_CF_MAXPROC_MAX 100000L
#define MASTER_CF_MESSAGE_MAX 4096
#define MASTER_CF_QUOTE_MAX 60

struct parse_context {
    struct master_cf *cf;
    const char *file;
    int line;
    int errors;
};

/* The argument words of one line, before they go into an entry. */
struct word_list {
    char **words;
    size_t count;
    size_t cap;
};

/* ---------------------------------------------------------------------
 * Messages.
 */

static void copy_cut(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void keep_message(struct master_cf *cf, const struct buf *msg)
{
    copy_cut(cf->last_error, sizeof(cf->last_error), buf_cstr(msg));
}

static void parse_error(struct parse_context *ctx, int line, const char *fmt,
                        ...) __attribute__((format(printf, 3, 4)));
static void parse_error(struct parse_context *ctx, int line, const char *fmt,
                        ...)
{
    struct buf msg;
    buf_init(&msg, MASTER_CF_MESSAGE_MAX);
    va_list ap;
    va_start(ap, fmt);
    int rc = line > 0 ? buf_printf(&msg, "%s:%d: ", ctx->file, line)
                      : buf_printf(&msg, "%s: ", ctx->file);
    if (rc == 0)
        rc = buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    if (rc != 0 && buf_set_str(&msg, "(message too long to show)") != 0)
        buf_reset(&msg);
    log_error("%s", buf_cstr(&msg));
    keep_message(ctx->cf, &msg);
    buf_free(&msg);
    ctx->errors++;
}

/* An error about a word of the line, shown in quotes and cut short. */
static int word_error(struct parse_context *ctx, const char *what,
                      const char *word, const char *why)
{
    size_t len = strlen(word);
    int shown = len > MASTER_CF_QUOTE_MAX ? MASTER_CF_QUOTE_MAX : (int)len;
    parse_error(ctx, ctx->line, "%s \"%.*s%s\"%s%s", what, shown, word,
                len > MASTER_CF_QUOTE_MAX ? "..." : "", why[0] ? " " : "",
                why);
    return -1;
}

static int out_of_memory(struct parse_context *ctx)
{
    parse_error(ctx, ctx->line, "out of memory");
    return -1;
}

const char *master_cf_last_error(const struct master_cf *cf)
{
    return cf->last_error;
}

const char *master_cf_type_name(enum master_service_type type)
{
    return type == MASTER_SERVICE_INET ? "inet" : "unix";
}

/* ---------------------------------------------------------------------
 * Freeing.
 */

static void entry_free(struct master_service_entry *e)
{
    for (size_t i = 0; e->argv && i < e->argc; i++)
        free(e->argv[i]);
    free(e->argv);
    for (size_t i = 0; i < e->override_count; i++) {
        free(e->overrides[i].name);
        free(e->overrides[i].value);
    }
    free(e->overrides);
    free(e->name);
    free(e->file);
    memset(e, 0, sizeof(*e));
}

void master_cf_free(struct master_cf *cf)
{
    for (size_t i = 0; i < cf->count; i++)
        entry_free(&cf->services[i]);
    free(cf->services);
    cf->services = NULL;
    cf->count = 0;
}

static void words_free(struct word_list *list)
{
    for (size_t i = 0; i < list->count; i++)
        free(list->words[i]);
    free(list->words);
    memset(list, 0, sizeof(*list));
}

/* Makes room for one more element; returns the array or NULL. */
static void *grow(void *array, size_t *cap, size_t count, size_t size)
{
    if (count < *cap)
        return array;
    size_t new_cap = *cap ? *cap * 2 : 8;
    if (new_cap > SIZE_MAX / size)
        return NULL;
    void *grown = realloc(array, new_cap * size);
    if (grown != NULL)
        *cap = new_cap;
    return grown;
}

/* Takes ownership of word (freed on failure). */
static int words_add(struct word_list *list, char *word)
{
    char **grown = word ? grow(list->words, &list->cap, list->count + 1,
                               sizeof(char *)) : NULL;
    if (grown == NULL) {
        free(word);
        return -1;
    }
    list->words = grown;
    list->words[list->count++] = word;
    list->words[list->count] = NULL;
    return 0;
}

/* ---------------------------------------------------------------------
 * The columns.
 */

static int parse_type(struct parse_context *ctx, const char *text,
                      enum master_service_type *type)
{
    if (strcmp(text, "inet") == 0)
        *type = MASTER_SERVICE_INET;
    else if (strcmp(text, "unix") == 0)
        *type = MASTER_SERVICE_UNIX;
    else
        return word_error(ctx, "unknown service type", text,
                          "(must be inet or unix)");
    return 0;
}

/* y, n, or "-" for if_default. */
static int parse_flag(struct parse_context *ctx, const char *column,
                      const char *text, int if_default, int *value)
{
    if (strcmp(text, "y") == 0)
        *value = 1;
    else if (strcmp(text, "n") == 0)
        *value = 0;
    else if (strcmp(text, "-") == 0)
        *value = if_default;
    else {
        struct buf what;
        buf_init(&what, 64);
        if (buf_printf(&what, "bad %s field", column) != 0)
            buf_reset(&what);
        word_error(ctx, buf_cstr(&what), text, "(must be y, n or -)");
        buf_free(&what);
        return -1;
    }
    return 0;
}

/* Digits only, from 0 to max. */
static int parse_count(const char *text, long max, long *value)
{
    if (text[0] == '\0')
        return -1;
    for (const char *p = text; *p; p++)
        if (!isdigit((unsigned char)*p))
            return -1;
    return text_parse_long(text, 0, max, value);
}

static int parse_wakeup(struct parse_context *ctx, char *text,
                        struct master_service_entry *e)
{
    if (strcmp(text, "-") == 0)
        return 0;
    size_t len = strlen(text);
    int if_used = len > 1 && text[len - 1] == '?';
    if (if_used)
        text[len - 1] = '\0';
    int rc = parse_count(text, MASTER_CF_WAKEUP_MAX, &e->wakeup_seconds);
    if (if_used)
        text[len - 1] = '?';
    if (rc != 0)
        return word_error(ctx, "bad wakeup field", text,
                          "(must be -, a number of seconds, or a number "
                          "followed by ?)");
    e->wakeup_if_used = if_used && e->wakeup_seconds > 0;
    return 0;
}

static int parse_maxproc(struct parse_context *ctx, const char *text,
                         long *value)
{
    if (strcmp(text, "-") == 0) {
        *value = MASTER_MAXPROC_DEFAULT;
        return 0;
    }
    if (parse_count(text, MASTER_CF_MAXPROC_MAX, value) == 0)
        return 0;
    return word_error(ctx, "bad maxproc field", text,
                      "(must be -, 0 for no limit, or a number up to "
                      "100000)");
}

static int parse_name(struct parse_context *ctx, const char *text,
                      struct master_service_entry *e)
{
    if (e->type == MASTER_SERVICE_UNIX && strchr(text, '/') != NULL)
        return word_error(ctx, "bad unix service name", text,
                          "(must not contain '/')");
    e->name = strdup(text);
    return e->name ? 0 : out_of_memory(ctx);
}

/* Columns 1 to 7: service type private unpriv chroot wakeup maxproc. */
static int parse_columns(struct parse_context *ctx, char **field,
                         struct master_service_entry *e)
{
    if (parse_type(ctx, field[1], &e->type) != 0 ||
        parse_name(ctx, field[0], e) != 0)
        return -1;
    int inet = e->type == MASTER_SERVICE_INET;
    if (parse_flag(ctx, "private", field[2], !inet, &e->private_socket) != 0 ||
        parse_flag(ctx, "unpriv", field[3], 1, &e->unprivileged) != 0 ||
        parse_flag(ctx, "chroot", field[4], 0, &e->chroot) != 0 ||
        parse_wakeup(ctx, field[5], e) != 0 ||
        parse_maxproc(ctx, field[6], &e->max_process) != 0)
        return -1;
    if (inet && e->private_socket)
        return word_error(ctx, "inet service", e->name,
                          "cannot be private (private field must be n or -)");
    if (inet && e->wakeup_seconds > 0)
        return word_error(ctx, "inet service", e->name,
                          "cannot have a wakeup time (only unix services "
                          "can)");
    return 0;
}

/* ---------------------------------------------------------------------
 * The command and its arguments.
 */

/* The end of the word at p: white space ends it outside braces. */
static char *word_end(char *p, int *unclosed)
{
    int depth = 0;
    for (; *p && (depth > 0 || !isspace((unsigned char)*p)); p++) {
        if (*p == '{')
            depth++;
        else if (*p == '}' && depth > 0)
            depth--;
    }
    *unclosed = depth > 0;
    return p;
}

/* "{ text }" -> "text".  -1 when text follows the closing brace. */
static int strip_braces(char *word, char **inner)
{
    size_t len = strlen(word);
    int depth = 0;
    size_t close = 0;
    for (size_t i = 0; i < len; i++) {
        if (word[i] == '{')
            depth++;
        else if (word[i] == '}' && --depth == 0) {
            close = i;
            break;
        }
    }
    if (close != len - 1)
        return -1;
    word[close] = '\0';
    *inner = text_trim(word + 1);
    return 0;
}

static int split_args(struct parse_context *ctx, char *p,
                      struct word_list *args)
{
    for (;;) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if (*p == '\0')
            return 0;
        int unclosed;
        char *end = word_end(p, &unclosed);
        int more = *end != '\0';
        *end = '\0';
        if (unclosed)
            return word_error(ctx, "missing '}' in", p, "");
        char *word = p;
        if (*p == '{' && strip_braces(p, &word) != 0)
            return word_error(ctx, "text after '}' in", p, "");
        if (words_add(args, strdup(word)) != 0)
            return out_of_memory(ctx);
        p = more ? end + 1 : end;
    }
}

static int valid_param_name(const char *name)
{
    if (*name == '\0')
        return 0;
    for (; *name; name++)
        if (!isalnum((unsigned char)*name) && *name != '_')
            return 0;
    return 1;
}

/* Adds the override, and rewrites its argument as "name=value". */
static int add_override(struct parse_context *ctx,
                        struct master_service_entry *e, const char *name,
                        const char *value, char **arg)
{
    struct buf joined;
    buf_init(&joined, BUF_LIMIT_MAX);
    char *normal = buf_printf(&joined, "%s=%s", name, value) == 0
        ? strdup(buf_cstr(&joined)) : NULL;
    buf_free(&joined);
    struct master_cf_override *grown = normal == NULL ? NULL
        : realloc(e->overrides, (e->override_count + 1) * sizeof(*grown));
    if (grown == NULL) {
        free(normal);
        return out_of_memory(ctx);
    }
    e->overrides = grown;
    struct master_cf_override *o = &e->overrides[e->override_count++];
    o->name = strdup(name);
    o->value = strdup(value);
    if (o->name == NULL || o->value == NULL) {
        free(normal);
        return out_of_memory(ctx);
    }
    free(*arg);
    *arg = normal;
    return 0;
}

/* The argument of "-o": "name=value", white space around both trimmed. */
static int parse_override(struct parse_context *ctx, char **arg,
                          struct master_service_entry *e)
{
    if (strchr(*arg, '=') == NULL)
        return word_error(ctx, "-o option without name=value:", *arg, "");
    char *copy = strdup(*arg);
    if (copy == NULL)
        return out_of_memory(ctx);
    char *eq = strchr(copy, '=');
    *eq = '\0';
    char *name = text_trim(copy), *value = text_trim(eq + 1);
    int rc = valid_param_name(name)
        ? add_override(ctx, e, name, value, arg)
        : word_error(ctx, "-o option with a bad parameter name:", name,
                     "(letters, digits and _ only)");
    free(copy);
    return rc;
}

/* The "-o" options among the leading options after the command. */
static int parse_options(struct parse_context *ctx, struct word_list *args,
                         struct master_service_entry *e)
{
    for (size_t i = 1; i < args->count; i++) {
        char *arg = args->words[i];
        if (arg[0] != '-' || strcmp(arg, "--") == 0)
            return 0;
        if (strcmp(arg, "-o") != 0)
            continue;
        if (i + 1 >= args->count) {
            parse_error(ctx, ctx->line, "-o option without name=value at "
                        "the end of the line");
            return -1;
        }
        if (parse_override(ctx, &args->words[++i], e) != 0)
            return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------
 * One line.
 */

static int count_words(const char *p)
{
    int n = 0;
    while (*p) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if (*p == '\0')
            break;
        n++;
        while (*p && !isspace((unsigned char)*p))
            p++;
    }
    return n;
}

static int too_few_fields(struct parse_context *ctx, int found)
{
    parse_error(ctx, ctx->line, "too few fields (%d; a service line needs "
                "8: service, type, private, unpriv, chroot, wakeup, maxproc "
                "and command)", found);
    return -1;
}

static int parse_service(struct parse_context *ctx, char *line,
                         struct master_service_entry *e)
{
    int found = count_words(line);
    if (found < MASTER_CF_FIELDS + 1)
        return too_few_fields(ctx, found);
    char *field[MASTER_CF_FIELDS];
    char *cursor = line;
    for (int i = 0; i < MASTER_CF_FIELDS; i++)
        field[i] = text_next_word(&cursor, MASTER_CF_BLANKS);
    if (parse_columns(ctx, field, e) != 0)
        return -1;
    struct word_list args = { 0 };
    if (split_args(ctx, cursor, &args) != 0 ||
        parse_options(ctx, &args, e) != 0) {
        words_free(&args);
        return -1;
    }
    e->argv = args.words;
    e->argc = args.count;
    if (e->argc == 0)
        return too_few_fields(ctx, MASTER_CF_FIELDS);
    if (e->argv[0][0] == '\0') {
        parse_error(ctx, ctx->line, "empty command name");
        return -1;
    }
    e->line = ctx->line;
    e->file = strdup(ctx->file);
    return e->file ? 0 : out_of_memory(ctx);
}

static const struct master_service_entry *
find_service(const struct master_cf *cf, const char *name,
             enum master_service_type type)
{
    for (size_t i = 0; i < cf->count; i++)
        if (cf->services[i].type == type &&
            strcmp(cf->services[i].name, name) == 0)
            return &cf->services[i];
    return NULL;
}

static int add_service(struct parse_context *ctx,
                       struct master_service_entry *e)
{
    const struct master_service_entry *first =
        find_service(ctx->cf, e->name, e->type);
    if (first != NULL) {
        parse_error(ctx, ctx->line, "duplicate service \"%s\" type %s "
                    "(first defined at line %d)", e->name,
                    master_cf_type_name(e->type), first->line);
        return -1;
    }
    struct master_service_entry *grown =
        realloc(ctx->cf->services, (ctx->cf->count + 1) * sizeof(*grown));
    if (grown == NULL) {
        parse_error(ctx, ctx->line, "out of memory");
        return -1;
    }
    ctx->cf->services = grown;
    ctx->cf->services[ctx->cf->count++] = *e;
    return 0;
}

static void parse_line(void *ctx_ptr, int line_no, char *line,
                       const char *problem)
{
    struct parse_context *ctx = ctx_ptr;
    ctx->line = line_no;
    if (problem != NULL) {
        parse_error(ctx, line_no, "%s", problem);
        return;
    }
    struct master_service_entry entry;
    memset(&entry, 0, sizeof(entry));
    if (parse_service(ctx, line, &entry) != 0 ||
        add_service(ctx, &entry) != 0)
        entry_free(&entry);
}

/* ---------------------------------------------------------------------
 * Loading.
 */

int master_cf_load_text(const char *name, const char *text, size_t len,
                        struct master_cf *cf)
{
    memset(cf, 0, sizeof(*cf));
    struct parse_context ctx = { cf, name, 0, 0 };
    config_read_lines(text, len, parse_line, &ctx);
    return ctx.errors;
}

int master_cf_load(const char *path, struct master_cf *cf)
{
    memset(cf, 0, sizeof(*cf));
    struct buf text;
    if (config_read_file(path, &text) != 0) {
        int saved = errno;
        struct buf msg;
        buf_init(&msg, MASTER_CF_MESSAGE_MAX);
        if (buf_printf(&msg, "%s: cannot read: %s", path, strerror(saved)))
            buf_reset(&msg);
        keep_message(cf, &msg);
        buf_free(&msg);
        errno = saved;
        return -1;
    }
    int errors = master_cf_load_text(path, buf_cstr(&text), text.len, cf);
    buf_free(&text);
    return errors;
}

int master_cf_command_path(const struct master_service_entry *entry,
                           const char *daemon_directory, struct buf *path)
{
    const char *command = entry->argv[0];
    buf_reset(path);
    if (strchr(command, '/') != NULL)
        return buf_set_str(path, command);
    return buf_printf(path, "%s/%s", daemon_directory, command);
}
