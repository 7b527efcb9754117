/*
 * table_memory - the table types held in memory: texthash:FILE (FILE read
 * with table_source_read, no .db) and inline:{ key = value, ... }.  Both
 * fold keys (unless TABLE_FLAG_KEEP_CASE) and can be listed, in the order
 * of their source.
 *
 *     table_open("texthash:/etc/postino/virtual", 0, &error);
 *     table_open("inline:{ a@example.com = b, { c = text, with comma } }",
 *                0, &error);
 *
 * A duplicate key keeps its first value, with a warning, as postmap does.
 * inline: takes Postfix's form: braces around the list, entries separated
 * by commas, white space around keys and values trimmed, and an entry in
 * its own braces may hold commas and white space in its value.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "table_driver.h"
#include "table_source.h"

struct memory_entry {
    char *key; /* key and value in one allocation, each NUL-terminated */
    size_t key_len;
    char *value;
    size_t value_len;
};

struct memory_table {
    struct memory_entry *entries; /* in source order */
    size_t count;
    size_t capacity;
    size_t *slots; /* open addressing: entry index + 1, 0 for empty */
    size_t slot_count; /* a power of two, at least twice count */
    struct buf key; /* scratch for folding */
};

static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* The slot that holds key, or the empty slot where it would go. */
static size_t find_slot(const struct memory_table *m, const char *key,
                        size_t key_len)
{
    size_t mask = m->slot_count - 1;
    size_t i = (size_t)hash_bytes(key, key_len) & mask;
    for (;;) {
        size_t slot = m->slots[i];
        if (slot == 0)
            return i;
        const struct memory_entry *e = &m->entries[slot - 1];
        if (e->key_len == key_len && memcmp(e->key, key, key_len) == 0)
            return i;
        i = (i + 1) & mask;
    }
}

static int grow_slots(struct memory_table *m)
{
    size_t count = m->slot_count ? m->slot_count * 2 : 64;
    size_t *slots = calloc(count, sizeof(*slots));
    if (slots == NULL)
        return -1;
    free(m->slots);
    m->slots = slots;
    m->slot_count = count;
    for (size_t n = 0; n < m->count; n++) {
        const struct memory_entry *e = &m->entries[n];
        m->slots[find_slot(m, e->key, e->key_len)] = n + 1;
    }
    return 0;
}

static int grow_entries(struct memory_table *m)
{
    size_t capacity = m->capacity ? m->capacity * 2 : 32;
    struct memory_entry *entries =
        realloc(m->entries, capacity * sizeof(*entries));
    if (entries == NULL)
        return -1;
    m->entries = entries;
    m->capacity = capacity;
    return 0;
}

static int make_room(struct memory_table *m)
{
    if (m->count == m->capacity && grow_entries(m) != 0)
        return -1;
    if ((m->count + 1) * 2 > m->slot_count && grow_slots(m) != 0)
        return -1;
    return 0;
}

/* Lower-cases the scratch key in place unless the table keeps case. */
static void fold_in_place(const struct table *t, struct buf *key)
{
    if (t->flags & TABLE_FLAG_KEEP_CASE)
        return;
    for (size_t i = 0; i < key->len; i++)
        if (key->data[i] >= 'A' && key->data[i] <= 'Z')
            key->data[i] = (char)(key->data[i] - 'A' + 'a');
}

/* Adds key (folded here) and value.  0 added, 1 duplicate (kept the first
 * one), -1 error (errno). */
static int memory_add(const struct table *t, struct memory_table *m,
                      const char *key, size_t key_len, const char *value,
                      size_t value_len)
{
    if (buf_set(&m->key, key, key_len) != 0)
        return -1;
    fold_in_place(t, &m->key);
    if (make_room(m) != 0) {
        errno = ENOMEM;
        return -1;
    }
    size_t i = find_slot(m, m->key.data, m->key.len);
    if (m->slots[i] != 0)
        return 1;
    char *block = malloc(key_len + value_len + 2);
    if (block == NULL) {
        errno = ENOMEM;
        return -1;
    }
    struct memory_entry *e = &m->entries[m->count];
    e->key = block;
    e->key_len = key_len;
    memcpy(e->key, m->key.data, key_len);
    e->key[key_len] = '\0';
    e->value = block + key_len + 1;
    e->value_len = value_len;
    memcpy(e->value, value, value_len);
    e->value[value_len] = '\0';
    m->slots[i] = ++m->count;
    return 0;
}

static void memory_free(struct memory_table *m)
{
    if (m == NULL)
        return;
    for (size_t n = 0; n < m->count; n++)
        free(m->entries[n].key);
    free(m->entries);
    free(m->slots);
    buf_free(&m->key);
    free(m);
}

static struct memory_table *memory_new(void)
{
    struct memory_table *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    buf_init(&m->key, TABLE_KEY_MAX);
    if (grow_slots(m) != 0) {
        memory_free(m);
        return NULL;
    }
    return m;
}

static int memory_lookup(struct table *t, const char *key, struct buf *value,
                         struct buf *error)
{
    struct memory_table *m = t->state;
    if (table_fold_key(t, key, &m->key) != 0) {
        (void)buf_printf(error, "%s: lookup key: %s", t->spec,
                         strerror(errno));
        return TABLE_ERROR;
    }
    size_t slot = m->slots[find_slot(m, buf_cstr(&m->key), m->key.len)];
    if (slot == 0)
        return TABLE_NOT_FOUND;
    const struct memory_entry *e = &m->entries[slot - 1];
    if (buf_set(value, e->value, e->value_len) != 0) {
        (void)buf_printf(error, "%s: value of \"%.100s\": %s", t->spec, key,
                         strerror(errno));
        return TABLE_ERROR;
    }
    return TABLE_FOUND;
}

static int memory_iterate(struct table *t, table_entry_fn *fn, void *ctx,
                          struct buf *error)
{
    (void)error;
    const struct memory_table *m = t->state;
    for (size_t n = 0; n < m->count; n++) {
        const struct memory_entry *e = &m->entries[n];
        if (fn(ctx, e->key, e->key_len, e->value, e->value_len) != 0)
            break;
    }
    return 0;
}

static void memory_close(struct table *t)
{
    memory_free(t->state);
    t->state = NULL;
}

/* -------------------------------------------------------------- texthash */

struct texthash_load {
    struct table *table;
    struct memory_table *memory;
    struct buf *error;
};

static int texthash_add(void *ctx, const char *key, size_t key_len,
                        const char *value, size_t value_len, const char *file,
                        int line)
{
    struct texthash_load *load = ctx;
    int rc = memory_add(load->table, load->memory, key, key_len, value,
                        value_len);
    if (rc < 0) {
        (void)buf_printf(load->error, "%s:%d: %s", file, line,
                         strerror(errno));
        return -1;
    }
    if (rc == 1)
        log_warn("%s:%d: duplicate entry \"%.*s\" (first one kept)",
                 file, line, (int)key_len, key);
    return 0;
}

static int texthash_open(struct table *t, const char *name, struct buf *error)
{
    struct memory_table *m = memory_new();
    if (m == NULL) {
        (void)buf_printf(error, "%s: %s", t->spec, strerror(ENOMEM));
        return -1;
    }
    struct texthash_load load = {.table = t, .memory = m, .error = error};
    int errors = table_source_read(name, texthash_add, &load, error);
    if (errors != 0) {
        memory_free(m);
        return -1;
    }
    t->state = m;
    return 0;
}

const struct table_ops table_texthash_ops = {
    .type = "texthash",
    .open = texthash_open,
    .lookup = memory_lookup,
    .iterate = memory_iterate,
    .close = memory_close,
};

/* ---------------------------------------------------------------- inline */

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
           c == '\f';
}

/* Trims white space at both ends of s..s+*len; returns the new start. */
static const char *trim(const char *s, size_t *len)
{
    while (*len > 0 && is_space(*s)) {
        s++;
        (*len)--;
    }
    while (*len > 0 && is_space(s[*len - 1]))
        (*len)--;
    return s;
}

/* The length of the next list element of s..s+len: up to a comma outside
 * braces.  -1 when a brace is unbalanced. */
static long element_length(const char *s, size_t len)
{
    int depth = 0;
    size_t i = 0;
    for (; i < len; i++) {
        if (s[i] == '{')
            depth++;
        else if (s[i] == '}' && --depth < 0)
            return -1;
        else if (s[i] == ',' && depth == 0)
            break;
    }
    return depth == 0 ? (long)i : -1;
}

/* One "key = value" or "{ key = value }" element. */
static int inline_element(struct table *t, struct memory_table *m,
                          const char *s, size_t len, struct buf *error)
{
    if (len >= 2 && s[0] == '{' && s[len - 1] == '}') {
        s++;
        len -= 2;
        s = trim(s, &len);
    }
    const char *equals = memchr(s, '=', len);
    if (equals == NULL) {
        (void)buf_printf(error, "%s: missing '=' in \"%.*s\"", t->spec,
                         (int)len, s);
        return -1;
    }
    size_t key_len = (size_t)(equals - s);
    const char *key = trim(s, &key_len);
    size_t value_len = len - (size_t)(equals + 1 - s);
    const char *value = trim(equals + 1, &value_len);
    if (key_len == 0 || key_len > TABLE_KEY_MAX) {
        (void)buf_printf(error, "%s: %s key in \"%.*s\"", t->spec,
                         key_len ? "too long a" : "missing", (int)len, s);
        return -1;
    }
    int rc = memory_add(t, m, key, key_len, value, value_len);
    if (rc < 0) {
        (void)buf_printf(error, "%s: %s", t->spec, strerror(errno));
        return -1;
    }
    if (rc == 1)
        log_warn("%s: duplicate entry \"%.*s\" (first one kept)",
                 t->spec, (int)key_len, key);
    return 0;
}

static int inline_parse(struct table *t, struct memory_table *m,
                        const char *name, struct buf *error)
{
    size_t len = strlen(name);
    const char *s = trim(name, &len);
    if (len < 2 || s[0] != '{' || s[len - 1] != '}') {
        (void)buf_printf(error, "%s: expected \"inline:{ key = value, ... }\""
                                " (braces required)", t->spec);
        return -1;
    }
    s++;
    len -= 2;
    while (len > 0) {
        long n = element_length(s, len);
        if (n < 0) {
            (void)buf_printf(error, "%s: unbalanced braces", t->spec);
            return -1;
        }
        size_t element_len = (size_t)n;
        const char *element = trim(s, &element_len);
        if (element_len > 0 &&
            inline_element(t, m, element, element_len, error) != 0)
            return -1;
        size_t used = (size_t)n < len ? (size_t)n + 1 : len; /* the comma */
        s += used;
        len -= used;
    }
    return 0;
}

static int inline_open(struct table *t, const char *name, struct buf *error)
{
    struct memory_table *m = memory_new();
    if (m == NULL) {
        (void)buf_printf(error, "%s: %s", t->spec, strerror(ENOMEM));
        return -1;
    }
    if (inline_parse(t, m, name, error) != 0) {
        memory_free(m);
        return -1;
    }
    t->state = m;
    return 0;
}

const struct table_ops table_inline_ops = {
    .type = "inline",
    .open = inline_open,
    .lookup = memory_lookup,
    .iterate = memory_iterate,
    .close = memory_close,
};
