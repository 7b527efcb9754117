/*
 * config - reads main.cf into a struct config and hands out typed,
 * $expanded parameter values.  config.h has the syntax and the contract;
 * config_params.c has the table of known parameters.
 *
 * Usage: config_create(), config_load_file(), config_set_override() for
 * each master.cf "-o", config_check(), then the config_get_*() getters;
 * config_free() at the end.
 *
 * Inside, every parameter that was set or looked at has a struct
 * config_entry: its value from a file, its override, and caches of its
 * computed default and its expansion.  The caches belong to a
 * "generation" of the configuration; setting any value starts a new one.
 * An expansion string that a caller may still hold is never freed before
 * config_free() unless its own parameter is set again (it is "retired").
 * While a value is expanded its entry is "busy", so $a -> $b -> $a is
 * found as a loop, and the nesting is limited to CONFIG_EXPAND_DEPTH.
 */
#include "config.h"

#include "buf.h"
#include "line_source.h"
#include "log.h"
#include "text.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_FILE_MAX ((size_t)64 << 20)
#define CONFIG_VALUE_MAX ((size_t)CONFIG_LINE_MAX * 16) /* once expanded */
#define CONFIG_MESSAGE_MAX 4096
#define CONFIG_QUOTE_MAX 100 /* bytes of a value shown in a message */
#define CONFIG_LIST_SEPARATORS ", \t\r\n"
#define CONFIG_STRINGIFY_(x) #x
#define CONFIG_STRINGIFY(x) CONFIG_STRINGIFY_(x)

struct config_value {
    char *text; /* NULL: not set */
    char *file;
    int line;
};

struct config_entry {
    char *name;
    const struct config_param_def *def; /* NULL: not a known parameter */
    struct config_value set;            /* main.cf, config_set() */
    struct config_value override;       /* master.cf -o */
    int ever_set;
    int busy;       /* being expanded right now */
    int referenced; /* named in a $expansion of some value */
    char *computed; /* default_fn's result */
    unsigned long computed_generation;
    char *expanded;
    unsigned long expanded_generation;
};

struct config {
    struct config_entry **entries;
    size_t entry_count;
    size_t entry_cap;
    struct config_entry **entry_slots; /* entries by name (name_slot()) */
    size_t entry_slot_count;           /* a power of two, or 0 */
    const struct config_param_def **param_slots; /* the table by name */
    size_t param_slot_count;
    struct config_entry **set_order;
    size_t set_count;
    size_t set_cap;
    char **retired;
    size_t retired_count;
    size_t retired_cap;
    unsigned long generation;
    const char *expand_stack[CONFIG_EXPAND_DEPTH];
    size_t stack_len;
    int depth;
    struct buf expand_error;
    struct buf last_error;
    char *source_name; /* the file last loaded, for defaults' messages */
    int quiet_unused;  /* config_check does not warn about unused names */
};

/* ---------------------------------------------------------------------
 * Small helpers.
 */

static int is_name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

static int valid_name(const char *name, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!is_name_char(name[i]))
            return 0;
    return 1;
}

static int name_equals(const char *name, const char *s, size_t len)
{
    return strncmp(name, s, len) == 0 && name[len] == '\0';
}

/* The first slot to try for a name in a table of slot_count slots (a
 * power of two); the next ones follow it, wrapping (open addressing).
 * FNV-1a: a daemon looks names up thousands of times as it starts. */
static size_t name_slot(const char *name, size_t len, size_t slot_count)
{
    uint32_t hash = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        hash ^= (unsigned char)name[i];
        hash *= 16777619u;
    }
    return hash & (slot_count - 1);
}

/* Slot tables are kept at most half full. */
static size_t slots_for(size_t count)
{
    size_t slots = 64;
    while (slots < count * 2)
        slots *= 2;
    return slots;
}

/* Makes room for one more element in a growable array; returns the
 * array (perhaps moved), or NULL when out of memory (array unchanged). */
static void *grow(void *array, size_t *cap, size_t count, size_t size)
{
    if (count < *cap)
        return array;
    size_t new_cap = *cap ? *cap * 2 : 16;
    if (new_cap > SIZE_MAX / size)
        return NULL;
    void *grown = realloc(array, new_cap * size);
    if (grown == NULL)
        return NULL;
    *cap = new_cap;
    return grown;
}

/* Appends text in double quotes, cut to CONFIG_QUOTE_MAX bytes. */
static void quote(struct buf *out, const char *text)
{
    size_t len = strlen(text);
    int shown = len > CONFIG_QUOTE_MAX ? CONFIG_QUOTE_MAX : (int)len;
    if (buf_printf(out, "\"%.*s%s\"", shown, text,
                   len > CONFIG_QUOTE_MAX ? "..." : "") != 0)
        buf_reset(out);
}

static const char *type_name(enum config_type type)
{
    switch (type) {
    case CONFIG_STRING: return "string";
    case CONFIG_INT: return "integer";
    case CONFIG_TIME: return "time";
    case CONFIG_SIZE: return "size";
    case CONFIG_BOOL: return "boolean";
    case CONFIG_LIST: return "list";
    }
    return "unknown";
}

/* ---------------------------------------------------------------------
 * Messages: "FILE:LINE: text", kept in last_error and logged.
 */

static void vnote(struct config *cfg, const char *file, int line,
                  const char *fmt, va_list ap)
{
    struct buf *msg = &cfg->last_error;
    buf_reset(msg);
    int rc = file == NULL ? 0
        : line > 0        ? buf_printf(msg, "%s:%d: ", file, line)
                          : buf_printf(msg, "%s: ", file);
    if (rc == 0)
        rc = buf_vprintf(msg, fmt, ap);
    if (rc != 0 && buf_set_str(msg, "(message too long to show)") != 0)
        buf_reset(msg);
}

/* Keeps a message for config_last_error() without logging it. */
static void note(struct config *cfg, const char *file, int line,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void note(struct config *cfg, const char *file, int line,
                 const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vnote(cfg, file, line, fmt, ap);
    va_end(ap);
}

static void report_error(struct config *cfg, const char *file, int line,
                         const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void report_error(struct config *cfg, const char *file, int line,
                         const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vnote(cfg, file, line, fmt, ap);
    va_end(ap);
    log_error("%s", buf_cstr(&cfg->last_error));
}

/* The message of an expansion problem, before it is known for which
 * parameter it will be reported. */
static int expand_fail(struct config *cfg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int expand_fail(struct config *cfg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_reset(&cfg->expand_error);
    if (buf_vprintf(&cfg->expand_error, fmt, ap) != 0 &&
        buf_set_str(&cfg->expand_error, "(message too long to show)") != 0)
        buf_reset(&cfg->expand_error);
    va_end(ap);
    return -1;
}

const char *config_last_error(const struct config *cfg)
{
    return buf_cstr(&cfg->last_error);
}

/* ---------------------------------------------------------------------
 * Creating and freeing.
 */

/* The index of config_param_table by name, made once per config. */
static int param_index_build(struct config *cfg)
{
    size_t count = 0;
    while (config_param_table[count].name)
        count++;
    size_t slots = slots_for(count);
    cfg->param_slots = calloc(slots, sizeof(*cfg->param_slots));
    if (cfg->param_slots == NULL)
        return -1;
    cfg->param_slot_count = slots;
    for (const struct config_param_def *p = config_param_table; p->name; p++) {
        size_t i = name_slot(p->name, strlen(p->name), slots);
        while (cfg->param_slots[i] != NULL)
            i = (i + 1) & (slots - 1);
        cfg->param_slots[i] = p;
    }
    return 0;
}

struct config *config_create(void)
{
    struct config *cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL)
        return NULL;
    if (param_index_build(cfg) != 0) {
        free(cfg);
        return NULL;
    }
    cfg->generation = 1;
    buf_init(&cfg->expand_error, CONFIG_MESSAGE_MAX);
    buf_init(&cfg->last_error, CONFIG_MESSAGE_MAX);
    return cfg;
}

static void value_free(struct config_value *value)
{
    free(value->text);
    free(value->file);
    value->text = NULL;
    value->file = NULL;
}

static void entry_free(struct config_entry *e)
{
    free(e->name);
    value_free(&e->set);
    value_free(&e->override);
    free(e->computed);
    free(e->expanded);
    free(e);
}

void config_free(struct config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->entry_count; i++)
        entry_free(cfg->entries[i]);
    for (size_t i = 0; i < cfg->retired_count; i++)
        free(cfg->retired[i]);
    free(cfg->entries);
    free(cfg->entry_slots);
    free(cfg->param_slots);
    free(cfg->set_order);
    free(cfg->retired);
    buf_free(&cfg->expand_error);
    buf_free(&cfg->last_error);
    free(cfg->source_name);
    free(cfg);
}

void text_list_free(struct text_list *list)
{
    for (size_t i = 0; i < list->count; i++)
        free(list->items[i]);
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

/* Keeps a string that a caller may still hold until config_free().  When
 * memory runs out it is leaked rather than freed under the caller. */
static void retire(struct config *cfg, char *text)
{
    char **grown = grow(cfg->retired, &cfg->retired_cap, cfg->retired_count,
                        sizeof(char *));
    if (grown == NULL)
        return;
    cfg->retired = grown;
    cfg->retired[cfg->retired_count++] = text;
}

/* ---------------------------------------------------------------------
 * Entries.
 */

static const struct config_param_def *param_lookup_n(const struct config *cfg,
                                                     const char *name,
                                                     size_t len)
{
    size_t mask = cfg->param_slot_count - 1;
    for (size_t i = name_slot(name, len, cfg->param_slot_count);
         cfg->param_slots[i] != NULL; i = (i + 1) & mask)
        if (name_equals(cfg->param_slots[i]->name, name, len))
            return cfg->param_slots[i];
    return NULL;
}

static struct config_entry *find_entry(const struct config *cfg,
                                       const char *name, size_t len)
{
    if (cfg->entry_slot_count == 0)
        return NULL;
    size_t mask = cfg->entry_slot_count - 1;
    for (size_t i = name_slot(name, len, cfg->entry_slot_count);
         cfg->entry_slots[i] != NULL; i = (i + 1) & mask)
        if (name_equals(cfg->entry_slots[i]->name, name, len))
            return cfg->entry_slots[i];
    return NULL;
}

static void entry_slot_put(struct config_entry **slots, size_t slot_count,
                           struct config_entry *e)
{
    size_t i = name_slot(e->name, strlen(e->name), slot_count);
    while (slots[i] != NULL)
        i = (i + 1) & (slot_count - 1);
    slots[i] = e;
}

/* Room in the index for one entry more: a bigger table, all entries
 * placed again, when it would be more than half full.  -1: no memory. */
static int entry_index_reserve(struct config *cfg)
{
    size_t need = slots_for(cfg->entry_count + 1);
    if (need <= cfg->entry_slot_count)
        return 0;
    struct config_entry **slots = calloc(need, sizeof(*slots));
    if (slots == NULL)
        return -1;
    for (size_t i = 0; i < cfg->entry_count; i++)
        entry_slot_put(slots, need, cfg->entries[i]);
    free(cfg->entry_slots);
    cfg->entry_slots = slots;
    cfg->entry_slot_count = need;
    return 0;
}

static struct config_entry *new_entry(struct config *cfg, const char *name,
                                      size_t len,
                                      const struct config_param_def *def)
{
    struct config_entry **grown = grow(cfg->entries, &cfg->entry_cap,
                                       cfg->entry_count, sizeof(*grown));
    if (grown == NULL)
        return NULL;
    cfg->entries = grown;
    if (entry_index_reserve(cfg) != 0)
        return NULL;
    struct config_entry *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->name = strndup(name, len);
    if (e->name == NULL) {
        free(e);
        return NULL;
    }
    e->def = def;
    cfg->entries[cfg->entry_count++] = e;
    entry_slot_put(cfg->entry_slots, cfg->entry_slot_count, e);
    return e;
}

/* The entry of a parameter that is set or known (made on first use);
 * *out is NULL for a name that is neither.  -1: out of memory. */
static int entry_for(struct config *cfg, const char *name, size_t len,
                     struct config_entry **out)
{
    *out = find_entry(cfg, name, len);
    if (*out != NULL)
        return 0;
    const struct config_param_def *def = param_lookup_n(cfg, name, len);
    if (def == NULL)
        return 0;
    *out = new_entry(cfg, name, len, def);
    return *out ? 0 : -1;
}

/* Like entry_for() for callers that cannot go on without memory. */
static struct config_entry *entry_or_exit(struct config *cfg,
                                          const char *name)
{
    struct config_entry *e;
    if (entry_for(cfg, name, strlen(name), &e) != 0)
        log_fatal("out of memory");
    return e;
}

static const struct config_value *effective(const struct config_entry *e)
{
    if (e->override.text)
        return &e->override;
    if (e->set.text)
        return &e->set;
    return NULL;
}

static void origin(const struct config *cfg, const struct config_entry *e,
                   const char **file, int *line)
{
    const struct config_value *v = effective(e);
    *file = v ? v->file : cfg->source_name ? cfg->source_name : "main.cf";
    *line = v ? v->line : 0;
}

void config_get_origin(struct config *cfg, const char *name,
                       const char **file, int *line)
{
    struct config_entry *e = find_entry(cfg, name, strlen(name));
    const struct config_value *v = e ? effective(e) : NULL;
    *file = v ? v->file : "default";
    *line = v ? v->line : 0;
}

/* ---------------------------------------------------------------------
 * Setting values.
 */

static int value_assign(struct config_value *v, const char *text,
                        const char *file, int line)
{
    char *text_dup = strdup(text);
    char *file_dup = strdup(file);
    if (text_dup == NULL || file_dup == NULL) {
        free(text_dup);
        free(file_dup);
        return -1;
    }
    value_free(v);
    v->text = text_dup;
    v->file = file_dup;
    v->line = line;
    return 0;
}

static int remember_set_order(struct config *cfg, struct config_entry *e)
{
    if (e->ever_set)
        return 0;
    struct config_entry **grown = grow(cfg->set_order, &cfg->set_cap,
                                       cfg->set_count, sizeof(*grown));
    if (grown == NULL)
        return -1;
    cfg->set_order = grown;
    cfg->set_order[cfg->set_count++] = e;
    e->ever_set = 1;
    return 0;
}

static int set_value(struct config *cfg, const char *name, const char *value,
                     const char *file, int line, int is_override)
{
    if (file == NULL)
        file = "unknown";
    size_t len = strlen(name);
    if (!valid_name(name, len)) {
        struct buf shown;
        buf_init(&shown, CONFIG_MESSAGE_MAX);
        quote(&shown, name);
        report_error(cfg, file, line,
                     "bad parameter name: %s (letters, digits and _ only)",
                     buf_cstr(&shown));
        buf_free(&shown);
        return 1;
    }
    struct config_entry *e;
    if (entry_for(cfg, name, len, &e) != 0 ||
        (e == NULL && (e = new_entry(cfg, name, len, NULL)) == NULL) ||
        value_assign(is_override ? &e->override : &e->set, value, file,
                     line) != 0 ||
        remember_set_order(cfg, e) != 0) {
        report_error(cfg, file, line, "out of memory");
        return 1;
    }
    cfg->generation++;
    free(e->expanded); /* allowed: this very parameter was set again */
    e->expanded = NULL;
    return 0;
}

int config_set(struct config *cfg, const char *name, const char *value,
               const char *file, int line)
{
    return set_value(cfg, name, value, file, line, 0);
}

int config_set_override(struct config *cfg, const char *name,
                        const char *value, const char *file, int line)
{
    return set_value(cfg, name, value, file, line, 1);
}

/* ---------------------------------------------------------------------
 * $expansion syntax.
 */

enum ref_kind {
    REF_LITERAL,  /* text is copied as is ("$$", a lone "$") */
    REF_NAME,     /* $name ${name} $(name) */
    REF_IF_SET,   /* ${name?text} */
    REF_IF_EMPTY, /* ${name:text} */
};

struct ref {
    enum ref_kind kind;
    const char *name;
    size_t name_len;
    const char *text;
    size_t text_len;
    size_t length; /* bytes from the '$' to the end of the reference */
};

/* The end of the text of ${name?text}: the matching close character. */
static const char *matching_close(const char *p, const char *end, char open,
                                  char close)
{
    int depth = 1;
    for (; p < end; p++) {
        if (*p == open)
            depth++;
        else if (*p == close && --depth == 0)
            return p;
    }
    return NULL;
}

/* "$name": q points just after the '$'. */
static void parse_bare_name(const char *p, const char *q, const char *end,
                            struct ref *ref)
{
    ref->kind = REF_NAME;
    ref->name = q;
    while (q < end && is_name_char(*q))
        q++;
    ref->name_len = (size_t)(q - ref->name);
    ref->length = (size_t)(q - p);
}

/* "${name}", "${name?text}", "${name:text}" and the same with ( ): q
 * points at the opening brace.  Returns NULL or a problem. */
static const char *parse_braced(const char *p, const char *q, const char *end,
                                struct ref *ref)
{
    char open = *q, close = open == '{' ? '}' : ')';
    const char *missing_close = open == '{' ? "missing '}'" : "missing ')'";
    ref->name = ++q;
    while (q < end && is_name_char(*q))
        q++;
    ref->name_len = (size_t)(q - ref->name);
    if (q >= end)
        return missing_close;
    if (ref->name_len == 0)
        return "missing parameter name";
    if (*q == close) {
        ref->kind = REF_NAME;
        ref->length = (size_t)(q + 1 - p);
        return NULL;
    }
    if (*q != '?' && *q != ':')
        return "bad character in parameter name";
    ref->kind = *q == '?' ? REF_IF_SET : REF_IF_EMPTY;
    ref->text = q + 1;
    const char *stop = matching_close(ref->text, end, open, close);
    if (stop == NULL)
        return missing_close;
    ref->text_len = (size_t)(stop - ref->text);
    ref->length = (size_t)(stop + 1 - p);
    return NULL;
}

/* Parses the reference at p (which points at '$').  Returns NULL or a
 * problem for a message. */
static const char *parse_ref(const char *p, const char *end, struct ref *ref)
{
    memset(ref, 0, sizeof(*ref));
    const char *q = p + 1;
    if (q < end && is_name_char(*q)) {
        parse_bare_name(p, q, end, ref);
        return NULL;
    }
    if (q < end && (*q == '{' || *q == '('))
        return parse_braced(p, q, end, ref);
    ref->kind = REF_LITERAL; /* "$$" is one "$", and so is a lone "$" */
    ref->text = p;
    ref->text_len = 1;
    ref->length = q < end && *q == '$' ? 2 : 1;
    return NULL;
}

/* ---------------------------------------------------------------------
 * Expansion.
 */

static int expand_text(struct config *cfg, const char *text, size_t len,
                       struct buf *out);
static int expand_entry(struct config *cfg, struct config_entry *e,
                        const char **value);

static int append(struct config *cfg, struct buf *out, const char *data,
                  size_t len)
{
    if (buf_append(out, data, len) == 0)
        return 0;
    if (errno == EMSGSIZE)
        return expand_fail(cfg, "value is longer than %zu bytes once "
                           "expanded", (size_t)CONFIG_VALUE_MAX);
    return expand_fail(cfg, "out of memory");
}

static int note_loop(struct config *cfg, const struct config_entry *e)
{
    size_t first = 0;
    while (first < cfg->stack_len && strcmp(cfg->expand_stack[first], e->name))
        first++;
    struct buf chain;
    buf_init(&chain, CONFIG_MESSAGE_MAX / 2);
    int rc = 0;
    for (size_t i = first; i < cfg->stack_len && rc == 0; i++)
        rc = buf_printf(&chain, "$%s -> ", cfg->expand_stack[i]);
    if (rc == 0)
        rc = buf_printf(&chain, "$%s", e->name);
    expand_fail(cfg, "loop in $expansion: %s",
                rc == 0 ? buf_cstr(&chain) : "(too long to show)");
    buf_free(&chain);
    return -1;
}

static int enter(struct config *cfg)
{
    if (cfg->depth >= CONFIG_EXPAND_DEPTH)
        return expand_fail(cfg, "$expansion nested more than %d deep "
                           "(a loop?)", CONFIG_EXPAND_DEPTH);
    cfg->depth++;
    return 0;
}

/* The expanded value of a parameter named in a $expansion; a name that is
 * neither set nor known expands to nothing, as in Postfix. */
static int value_of(struct config *cfg, const char *name, size_t len,
                    const char **value)
{
    struct config_entry *e;
    if (entry_for(cfg, name, len, &e) != 0)
        return expand_fail(cfg, "out of memory");
    if (e == NULL) {
        *value = "";
        return 0;
    }
    return expand_entry(cfg, e, value);
}

static int expand_conditional(struct config *cfg, const struct ref *ref,
                              struct buf *out)
{
    const char *value;
    if (value_of(cfg, ref->name, ref->name_len, &value) != 0)
        return -1;
    int is_set = value[0] != '\0';
    if (is_set != (ref->kind == REF_IF_SET))
        return 0;
    if (enter(cfg) != 0)
        return -1;
    int rc = expand_text(cfg, ref->text, ref->text_len, out);
    cfg->depth--;
    return rc;
}

static int expand_ref(struct config *cfg, const struct ref *ref,
                      struct buf *out)
{
    const char *value;
    switch (ref->kind) {
    case REF_LITERAL:
        return append(cfg, out, ref->text, ref->text_len);
    case REF_NAME:
        if (value_of(cfg, ref->name, ref->name_len, &value) != 0)
            return -1;
        return append(cfg, out, value, strlen(value));
    case REF_IF_SET:
    case REF_IF_EMPTY:
        return expand_conditional(cfg, ref, out);
    }
    return -1;
}

static int bad_syntax(struct config *cfg, const char *problem,
                      const char *at, const char *end)
{
    size_t len = (size_t)(end - at);
    int shown = len > 40 ? 40 : (int)len;
    return expand_fail(cfg, "bad $expansion: %s in \"%.*s%s\"", problem,
                       shown, at, len > 40 ? "..." : "");
}

static int expand_text(struct config *cfg, const char *text, size_t len,
                       struct buf *out)
{
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *dollar = memchr(p, '$', (size_t)(end - p));
        const char *plain_end = dollar ? dollar : end;
        if (append(cfg, out, p, (size_t)(plain_end - p)) != 0)
            return -1;
        if (dollar == NULL)
            return 0;
        struct ref ref;
        const char *problem = parse_ref(dollar, end, &ref);
        if (problem != NULL)
            return bad_syntax(cfg, problem, dollar, end);
        if (expand_ref(cfg, &ref, out) != 0)
            return -1;
        p = dollar + ref.length;
    }
    return 0;
}

/* Keeps s (malloc'ed) in *slot, retiring what was there unless equal. */
static void keep_string(struct config *cfg, char **slot, char *s)
{
    if (*slot != NULL && strcmp(*slot, s) == 0) {
        free(s);
        return;
    }
    if (*slot != NULL)
        retire(cfg, *slot);
    *slot = s;
}

static int compute_default(struct config *cfg, struct config_entry *e)
{
    if (e->computed && e->computed_generation == cfg->generation)
        return 0;
    size_t size = CONFIG_LINE_MAX + 1;
    char *out = calloc(1, size);
    if (out == NULL)
        return expand_fail(cfg, "out of memory");
    if (e->def->default_fn(cfg, out, size) != 0) {
        free(out);
        if (cfg->expand_error.len > 0) /* a nested lookup said why */
            return -1;
        return expand_fail(cfg, "cannot compute the default value of %s",
                           e->name);
    }
    out[size - 1] = '\0';
    keep_string(cfg, &e->computed, out);
    e->computed_generation = cfg->generation;
    return 0;
}

/* The value before expansion, or a computed default taken literally. */
static int expand_raw(struct config *cfg, struct config_entry *e,
                      struct buf *out)
{
    const struct config_value *v = effective(e);
    if (v != NULL)
        return expand_text(cfg, v->text, strlen(v->text), out);
    if (e->def && e->def->default_value)
        return expand_text(cfg, e->def->default_value,
                           strlen(e->def->default_value), out);
    if (e->def && e->def->default_fn) {
        if (compute_default(cfg, e) != 0)
            return -1;
        return append(cfg, out, e->computed, strlen(e->computed));
    }
    return 0;
}

static int store_expansion(struct config *cfg, struct config_entry *e,
                           const struct buf *out)
{
    char *s = strdup(buf_cstr(out));
    if (s == NULL)
        return expand_fail(cfg, "out of memory");
    keep_string(cfg, &e->expanded, s);
    e->expanded_generation = cfg->generation;
    return 0;
}

static int expand_entry(struct config *cfg, struct config_entry *e,
                        const char **value)
{
    if (e->expanded && e->expanded_generation == cfg->generation) {
        *value = e->expanded;
        return 0;
    }
    if (e->busy)
        return note_loop(cfg, e);
    if (enter(cfg) != 0)
        return -1;
    e->busy = 1;
    cfg->expand_stack[cfg->stack_len++] = e->name;
    struct buf out;
    buf_init(&out, CONFIG_VALUE_MAX);
    int rc = expand_raw(cfg, e, &out);
    cfg->stack_len--;
    e->busy = 0;
    cfg->depth--;
    if (rc == 0)
        rc = store_expansion(cfg, e, &out);
    buf_free(&out);
    if (rc == 0)
        *value = e->expanded;
    return rc;
}

/* Expands e's value; on failure last_error says so with e's origin. */
static int expand_top(struct config *cfg, struct config_entry *e,
                      const char **value)
{
    if (cfg->depth == 0)
        buf_reset(&cfg->expand_error);
    if (expand_entry(cfg, e, value) == 0)
        return 0;
    if (cfg->depth > 0) /* an outer expansion reports it */
        return -1;
    const char *file;
    int line;
    origin(cfg, e, &file, &line);
    note(cfg, file, line, "cannot expand %s: %s", e->name,
         buf_cstr(&cfg->expand_error));
    return -1;
}

/* ---------------------------------------------------------------------
 * Value parsers.
 */

enum parse_result {
    PARSE_OK,
    PARSE_SYNTAX,
    PARSE_UNIT,
    PARSE_TOO_LARGE,
};

static size_t count_digits(const char *s)
{
    size_t n = 0;
    while (isdigit((unsigned char)s[n]))
        n++;
    return n;
}

static int all_letters(const char *s)
{
    for (; *s; s++)
        if (!isalpha((unsigned char)*s))
            return 0;
    return 1;
}

static enum parse_result parse_digits(const char *s, size_t n, long *value)
{
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        int digit = s[i] - '0';
        if (v > (LONG_MAX - digit) / 10)
            return PARSE_TOO_LARGE;
        v = v * 10 + digit;
    }
    *value = v;
    return PARSE_OK;
}

/* A number, then a one-letter unit from units (or none: default_factor).
 * factor_of() gives a unit's factor, 0 when it is not a unit. */
static enum parse_result parse_scaled(const char *text, long default_factor,
                                      long (*factor_of)(char), long *value)
{
    size_t n = count_digits(text);
    if (n == 0)
        return PARSE_SYNTAX;
    const char *suffix = text + n;
    long factor = default_factor;
    if (*suffix != '\0') {
        factor = suffix[1] == '\0' ? factor_of(*suffix) : 0;
        if (factor == 0)
            return all_letters(suffix) ? PARSE_UNIT : PARSE_SYNTAX;
    }
    if (factor <= 0)
        return PARSE_SYNTAX;
    long number;
    enum parse_result r = parse_digits(text, n, &number);
    if (r != PARSE_OK)
        return r;
    if (number > LONG_MAX / factor)
        return PARSE_TOO_LARGE;
    *value = number * factor;
    return PARSE_OK;
}

static long time_factor(char unit)
{
    switch (unit) {
    case 's': return 1;
    case 'm': return 60;
    case 'h': return 3600;
    case 'd': return 86400;
    case 'w': return 604800;
    }
    return 0;
}

static long size_factor(char unit)
{
    switch (unit) {
    case 'k': case 'K': return 1024L;
    case 'm': case 'M': return 1024L * 1024;
    case 'g': case 'G': return 1024L * 1024 * 1024;
    }
    return 0;
}

static enum parse_result parse_time(const char *text, char default_unit,
                                    long *seconds)
{
    return parse_scaled(text, time_factor(default_unit), time_factor,
                        seconds);
}

static enum parse_result parse_size(const char *text, long *bytes)
{
    return parse_scaled(text, 1, size_factor, bytes);
}

int config_parse_time(const char *text, char default_unit, long *seconds)
{
    return parse_time(text, default_unit, seconds) == PARSE_OK ? 0 : -1;
}

int config_parse_size(const char *text, long *bytes)
{
    return parse_size(text, bytes) == PARSE_OK ? 0 : -1;
}

int config_parse_bool(const char *text, int *value)
{
    static const char *const words[][2] = {
        { "yes", "no" }, { "true", "false" }, { "on", "off" }, { "1", "0" },
    };
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        for (int no = 0; no < 2; no++) {
            if (text_equal_nocase(text, words[i][no])) {
                *value = !no;
                return 0;
            }
        }
    }
    return -1;
}

/* ---------------------------------------------------------------------
 * Typed checks.
 */

/* "90m" -> "90m", 86400 -> "1d": the largest unit that divides exactly. */
static void show_time(struct buf *out, long seconds)
{
    static const char units[] = "wdhm";
    for (const char *u = units; *u; u++) {
        long f = time_factor(*u);
        if (seconds != 0 && seconds % f == 0) {
            if (buf_printf(out, "%ld%c", seconds / f, *u) != 0)
                buf_reset(out);
            return;
        }
    }
    if (buf_printf(out, "%lds", seconds) != 0)
        buf_reset(out);
}

/* Why a value is bad, for "bad TYPE value for NAME: "VALUE" (WHY)". */
static void explain(struct buf *why, const struct config_param_def *def,
                    enum parse_result r)
{
    int rc = 0;
    if (r == PARSE_TOO_LARGE)
        rc = buf_set_str(why, "number too large");
    else if (def->type == CONFIG_TIME && r == PARSE_UNIT)
        rc = buf_set_str(why, "unit must be s, m, h, d or w");
    else if (def->type == CONFIG_TIME)
        rc = buf_set_str(why, "must be a number with an optional unit s, m, "
                         "h, d or w");
    else if (def->type == CONFIG_SIZE && r == PARSE_UNIT)
        rc = buf_set_str(why, "suffix must be k, m or g");
    else if (def->type == CONFIG_SIZE)
        rc = buf_set_str(why, "must be a number of bytes with an optional "
                         "k, m or g suffix");
    else if (def->type == CONFIG_BOOL)
        rc = buf_set_str(why, "must be yes or no");
    else
        rc = buf_printf(why, "must be a whole number from %ld to %ld",
                        def->min, def->max);
    if (rc != 0)
        buf_reset(why);
}

static void explain_range(struct buf *why, const struct config_param_def *def)
{
    struct buf low, high;
    buf_init(&low, 64);
    buf_init(&high, 64);
    int rc = 0;
    if (def->type == CONFIG_TIME) {
        show_time(&low, def->min);
        show_time(&high, def->max);
        rc = buf_printf(why, "must be from %s to %s", buf_cstr(&low),
                        buf_cstr(&high));
    } else if (def->type == CONFIG_SIZE) {
        rc = buf_printf(why, "must be from %ld to %ld bytes", def->min,
                        def->max);
    } else {
        explain(why, def, PARSE_SYNTAX);
    }
    if (rc != 0)
        buf_reset(why);
    buf_free(&low);
    buf_free(&high);
}

static enum parse_result parse_typed(const struct config_param_def *def,
                                     const char *value, long *number)
{
    int flag;
    switch (def->type) {
    case CONFIG_INT:
        return text_parse_long(value, LONG_MIN, LONG_MAX, number) == 0
            ? PARSE_OK : PARSE_SYNTAX;
    case CONFIG_TIME:
        return parse_time(value, def->time_unit ? def->time_unit : 's',
                          number);
    case CONFIG_SIZE:
        return parse_size(value, number);
    case CONFIG_BOOL:
        if (config_parse_bool(value, &flag) != 0)
            return PARSE_SYNTAX;
        *number = flag;
        return PARSE_OK;
    case CONFIG_STRING:
    case CONFIG_LIST:
        break;
    }
    *number = 0;
    return PARSE_OK;
}

static int has_range(const struct config_param_def *def)
{
    return def->type == CONFIG_INT || def->type == CONFIG_TIME ||
           def->type == CONFIG_SIZE;
}

static void note_bad_value(struct config *cfg, const struct config_entry *e,
                           const char *value, const struct buf *why)
{
    const char *file;
    int line;
    origin(cfg, e, &file, &line);
    const struct config_value *v = effective(e);
    const char *raw = v ? v->text : e->def->default_value;
    struct buf shown, from;
    buf_init(&shown, CONFIG_MESSAGE_MAX);
    buf_init(&from, CONFIG_MESSAGE_MAX);
    quote(&shown, value);
    if (raw && strcmp(raw, value) != 0) {
        if (buf_append_str(&from, " from ") == 0)
            quote(&from, raw);
        else
            buf_reset(&from);
    }
    note(cfg, file, line, "bad %s value for %s: %s%s (%s)",
         type_name(e->def->type), e->name, buf_cstr(&shown), buf_cstr(&from),
         buf_cstr(why));
    buf_free(&shown);
    buf_free(&from);
}

/* Expands e and checks it against its type; the number (or 0/1 for a
 * boolean) goes to *number.  -1 with last_error set (not logged). */
static int check_entry(struct config *cfg, struct config_entry *e,
                       long *number)
{
    const char *value;
    *number = 0;
    if (expand_top(cfg, e, &value) != 0)
        return -1;
    if (e->def == NULL)
        return 0;
    struct buf why;
    buf_init(&why, CONFIG_MESSAGE_MAX);
    enum parse_result r = parse_typed(e->def, value, number);
    if (r != PARSE_OK)
        explain(&why, e->def, r);
    else if (has_range(e->def) &&
             (*number < e->def->min || *number > e->def->max))
        explain_range(&why, e->def);
    int bad = why.len > 0;
    if (bad)
        note_bad_value(cfg, e, value, &why);
    buf_free(&why);
    return bad ? -1 : 0;
}

/* ---------------------------------------------------------------------
 * config_check and the "unused parameter" warning.
 */

static void mark_references(struct config *cfg, const char *text, size_t len,
                            int depth)
{
    const char *p = text, *end = text + len;
    while (depth < CONFIG_EXPAND_DEPTH &&
           (p = memchr(p, '$', (size_t)(end - p))) != NULL) {
        struct ref ref;
        if (parse_ref(p, end, &ref) != NULL) {
            p++;
            continue;
        }
        if (ref.kind != REF_LITERAL) {
            struct config_entry *e = find_entry(cfg, ref.name, ref.name_len);
            if (e != NULL)
                e->referenced = 1;
        }
        if (ref.kind == REF_IF_SET || ref.kind == REF_IF_EMPTY)
            mark_references(cfg, ref.text, ref.text_len, depth + 1);
        p += ref.length;
    }
}

static void mark_all_references(struct config *cfg)
{
    for (size_t i = 0; i < cfg->entry_count; i++)
        cfg->entries[i]->referenced = 0;
    for (size_t i = 0; i < cfg->set_count; i++) {
        const char *raw = effective(cfg->set_order[i])->text;
        mark_references(cfg, raw, strlen(raw), 0);
    }
    for (const struct config_param_def *p = config_param_table; p->name;
         p++) {
        struct config_entry *e = find_entry(cfg, p->name, strlen(p->name));
        if ((e == NULL || effective(e) == NULL) && p->default_value)
            mark_references(cfg, p->default_value, strlen(p->default_value),
                            0);
    }
}

/* TRANSPORT_destination_concurrency_limit and
 * TRANSPORT_destination_recipient_limit exist for any transport name
 * (qmgr reads them by name), so they are never "unused". */
static int per_transport_name(const char *name)
{
    static const char *const suffixes[] = {
        "_destination_concurrency_limit", "_destination_recipient_limit",
    };
    size_t len = strlen(name);
    for (size_t i = 0; i < 2; i++) {
        size_t n = strlen(suffixes[i]);
        if (len > n && strcmp(name + len - n, suffixes[i]) == 0)
            return 1;
    }
    return 0;
}

static void warn_unused(struct config *cfg, const struct config_entry *e)
{
    if (per_transport_name(e->name))
        return;
    const struct config_value *v = effective(e);
    struct buf shown;
    buf_init(&shown, CONFIG_MESSAGE_MAX);
    quote(&shown, v->text);
    note(cfg, v->file, v->line, "unused parameter: %s=%s", e->name,
         buf_cstr(&shown));
    log_warn("%s", buf_cstr(&cfg->last_error));
    buf_free(&shown);
}

static int check_one(struct config *cfg, struct config_entry *e)
{
    long number;
    if (check_entry(cfg, e, &number) == 0)
        return 0;
    log_error("%s", buf_cstr(&cfg->last_error));
    return 1;
}

int config_check(struct config *cfg)
{
    int errors = 0;
    mark_all_references(cfg);
    for (size_t i = 0; i < cfg->set_count; i++) {
        struct config_entry *e = cfg->set_order[i];
        if (check_one(cfg, e) != 0)
            errors++;
        else if (e->def == NULL && !e->referenced && !cfg->quiet_unused)
            warn_unused(cfg, e);
    }
    for (const struct config_param_def *p = config_param_table; p->name;
         p++) {
        struct config_entry *e;
        if (entry_for(cfg, p->name, strlen(p->name), &e) != 0) {
            report_error(cfg, cfg->source_name ? cfg->source_name : "main.cf",
                         0, "out of memory");
            return errors + 1;
        }
        if (effective(e) == NULL)
            errors += check_one(cfg, e);
    }
    return errors;
}

/* ---------------------------------------------------------------------
 * Getters.
 */

const char *config_get_raw(struct config *cfg, const char *name)
{
    struct config_entry *e = entry_or_exit(cfg, name);
    if (e == NULL)
        return NULL;
    const struct config_value *v = effective(e);
    if (v != NULL)
        return v->text;
    if (e->def == NULL) /* setting it ran out of memory */
        return NULL;
    if (e->def->default_value)
        return e->def->default_value;
    const char *ignored;
    if (e->def->default_fn == NULL || expand_top(cfg, e, &ignored) != 0)
        return NULL;
    return e->computed;
}

const char *config_try_get_str(struct config *cfg, const char *name)
{
    struct config_entry *e;
    if (entry_for(cfg, name, strlen(name), &e) != 0) {
        expand_fail(cfg, "out of memory");
        note(cfg, NULL, 0, "out of memory");
        return NULL;
    }
    if (e == NULL) {
        expand_fail(cfg, "unknown configuration parameter: %s", name);
        note(cfg, NULL, 0, "unknown configuration parameter: %s", name);
        return NULL;
    }
    const char *value;
    return expand_top(cfg, e, &value) == 0 ? value : NULL;
}

const char *config_get_str(struct config *cfg, const char *name)
{
    struct config_entry *e = entry_or_exit(cfg, name);
    if (e == NULL)
        log_fatal("unknown configuration parameter: %s", name);
    const char *value;
    if (expand_top(cfg, e, &value) != 0)
        log_fatal("%s", config_last_error(cfg));
    return value;
}

/* The value of a known parameter of the given type, checked. */
static long typed_value(struct config *cfg, const char *name,
                        enum config_type type)
{
    const struct config_param_def *def =
        param_lookup_n(cfg, name, strlen(name));
    if (def == NULL)
        log_fatal("unknown configuration parameter: %s", name);
    if (def->type != type)
        log_panic("parameter %s is a %s, not a %s", name,
                  type_name(def->type), type_name(type));
    long number;
    if (check_entry(cfg, entry_or_exit(cfg, name), &number) != 0)
        log_fatal("%s", config_last_error(cfg));
    return number;
}

long config_get_int(struct config *cfg, const char *name)
{
    return typed_value(cfg, name, CONFIG_INT);
}

long config_get_time(struct config *cfg, const char *name)
{
    return typed_value(cfg, name, CONFIG_TIME);
}

long config_get_size(struct config *cfg, const char *name)
{
    return typed_value(cfg, name, CONFIG_SIZE);
}

int config_get_bool(struct config *cfg, const char *name)
{
    return typed_value(cfg, name, CONFIG_BOOL) != 0;
}

void config_get_list(struct config *cfg, const char *name,
                     struct text_list *list)
{
    list->items = NULL;
    list->count = 0;
    (void)typed_value(cfg, name, CONFIG_LIST);
    char *copy = strdup(config_get_str(cfg, name));
    if (copy == NULL)
        log_fatal("out of memory");
    size_t cap = 0;
    char *cursor = copy, *word;
    while ((word = text_next_word(&cursor, CONFIG_LIST_SEPARATORS)) != NULL) {
        char **grown = grow(list->items, &cap, list->count, sizeof(char *));
        char *item = strdup(word);
        if (grown == NULL || item == NULL)
            log_fatal("out of memory");
        list->items = grown;
        list->items[list->count++] = item;
    }
    free(copy);
}

void config_foreach(struct config *cfg,
                    void (*fn)(void *ctx, const char *name, const char *raw,
                               const char *file, int line),
                    void *ctx)
{
    for (size_t i = 0; i < cfg->set_count; i++) {
        const struct config_entry *e = cfg->set_order[i];
        const struct config_value *v = effective(e);
        fn(ctx, e->name, v->text, v->file, v->line);
    }
}

/* ---------------------------------------------------------------------
 * Files and logical lines (shared with master_cf.c).
 */

int config_read_file(const char *path, struct buf *text)
{
    if (line_source_read_file(path, CONFIG_FILE_MAX, text) == 0)
        return 0;
    int saved = errno;
    buf_free(text);
    errno = saved;
    return -1;
}

struct lines_context {
    config_line_fn *fn;
    void *ctx;
};

/* One logical line, or its problem, in config_line_fn's terms. */
static int read_line(void *ctx_ptr, const struct line_source_line *l)
{
    const struct lines_context *ctx = ctx_ptr;
    switch (l->problem) {
    case LINE_SOURCE_OK:
        ctx->fn(ctx->ctx, l->line, l->text, NULL);
        break;
    case LINE_SOURCE_NUL:
        ctx->fn(ctx->ctx, l->where, NULL, "line contains a NUL byte");
        break;
    case LINE_SOURCE_ORPHAN:
        ctx->fn(ctx->ctx, l->where, NULL, "line starts with white space, "
                "but there is no line before it to continue");
        break;
    case LINE_SOURCE_TOO_LONG:
        ctx->fn(ctx->ctx, l->line, NULL, "logical line is longer than "
                CONFIG_STRINGIFY(CONFIG_LINE_MAX) " bytes");
        break;
    }
    return 0;
}

void config_read_lines(const char *text, size_t len, config_line_fn *fn,
                       void *ctx)
{
    struct lines_context lines = { fn, ctx };
    const struct line_source src = {
        .max_len = CONFIG_LINE_MAX,
        .flags = LINE_SOURCE_COMMENT_NUL,
        .fn = read_line,
        .ctx = &lines,
    };
    if (line_source_parse_copy(&src, text, len) < 0)
        fn(ctx, 0, NULL, "out of memory");
}

/* ---------------------------------------------------------------------
 * Loading main.cf.
 */

struct load_context {
    struct config *cfg;
    const char *file;
    int errors;
};

static void load_missing_equals(struct load_context *ctx, int line_no,
                                const char *line)
{
    struct buf shown;
    buf_init(&shown, CONFIG_MESSAGE_MAX);
    quote(&shown, line);
    report_error(ctx->cfg, ctx->file, line_no,
                 "missing '=' after parameter name: %s", buf_cstr(&shown));
    buf_free(&shown);
    ctx->errors++;
}

/* One logical line: "name = value". */
static void load_line(void *ctx_ptr, int line_no, char *line,
                      const char *problem)
{
    struct load_context *ctx = ctx_ptr;
    if (problem != NULL) {
        report_error(ctx->cfg, ctx->file, line_no, "%s", problem);
        ctx->errors++;
        return;
    }
    char *eq = strchr(line, '=');
    if (eq == NULL) {
        load_missing_equals(ctx, line_no, line);
        return;
    }
    *eq = '\0';
    char *name = text_trim(line);
    if (*name == '\0') {
        report_error(ctx->cfg, ctx->file, line_no,
                     "missing parameter name before '='");
        ctx->errors++;
        return;
    }
    ctx->errors += config_set(ctx->cfg, name, text_trim(eq + 1), ctx->file,
                              line_no);
}

int config_load_text(struct config *cfg, const char *name, const char *text,
                     size_t len)
{
    char *copy = strdup(name);
    if (copy == NULL) {
        report_error(cfg, name, 0, "out of memory");
        return 1;
    }
    free(cfg->source_name);
    cfg->source_name = copy;
    struct load_context ctx = { cfg, name, 0 };
    config_read_lines(text, len, load_line, &ctx);
    return ctx.errors;
}

int config_load_file(struct config *cfg, const char *path)
{
    struct buf text;
    if (config_read_file(path, &text) != 0) {
        int saved = errno;
        note(cfg, path, 0, "cannot read: %s", strerror(saved));
        errno = saved;
        return -1;
    }
    int errors = config_load_text(cfg, path, buf_cstr(&text), text.len);
    buf_free(&text);
    return errors;
}

struct config *config_load_dir(const char *config_dir, int *errors)
{
    return config_load_dir_flags(config_dir, 0, errors);
}

struct config *config_load_dir_flags(const char *config_dir, unsigned flags,
                                     int *errors)
{
    struct config *cfg = config_create();
    if (cfg == NULL)
        log_fatal("out of memory");
    cfg->quiet_unused = (flags & CONFIG_QUIET_UNUSED) != 0;
    struct buf path;
    buf_init(&path, PATH_MAX);
    int count = buf_printf(&path, "%s/main.cf", config_dir) != 0 ? -1
              : config_load_file(cfg, buf_cstr(&path));
    if (count < 0) {
        log_error("cannot read %s: %s", buf_cstr(&path), strerror(errno));
        count = 1;
    }
    buf_free(&path);
    if (count == 0 &&
        config_set(cfg, "config_directory", config_dir, "command line", 0) == 0)
        count = config_check(cfg);
    if (errors != NULL)
        *errors = count;
    if (count != 0) {
        config_free(cfg);
        return NULL;
    }
    return cfg;
}
