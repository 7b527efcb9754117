/*
 * table - opens a lookup table by its Postfix-style name "TYPE:NAME" and
 * hands lookups to the driver of that type (table_TYPE.c, see
 * table_driver.h).  Callers use table.h only:
 *
 *     struct table *t = table_open("hash:/etc/postino/virtual", 0, &error);
 *     int r = table_lookup(t, key, &value, &error);
 *     table_close(t);
 *
 * This file checks what every driver would otherwise check: the key
 * length, and that a type can be listed before table_iterate.
 */
#include "table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "table_driver.h"

/* Every type, in the order the "unsupported type" message lists them. */
static const struct table_ops *const table_types[] = {
    &table_hash_ops,   &table_btree_ops,  &table_pcre_ops,
    &table_texthash_ops, &table_inline_ops, &table_static_ops,
    &table_unix_ops,
};

#define TABLE_TYPE_COUNT (sizeof(table_types) / sizeof(table_types[0]))

static const struct table_ops *find_type(const char *type, size_t type_len)
{
    for (size_t i = 0; i < TABLE_TYPE_COUNT; i++) {
        const char *known = table_types[i]->type;
        if (strlen(known) == type_len && memcmp(known, type, type_len) == 0)
            return table_types[i];
    }
    return NULL;
}

static void report_unknown_type(const char *spec, size_t type_len,
                                struct buf *error)
{
    (void)buf_printf(error, "unsupported table type \"%.*s\" in \"%s\" (",
                     (int)type_len, spec, spec);
    for (size_t i = 0; i < TABLE_TYPE_COUNT; i++)
        (void)buf_printf(error, "%s%s", i ? ", " : "", table_types[i]->type);
    (void)buf_append_str(error, ")");
}

static char *copy_string(const char *s, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return NULL;
    memcpy(copy, s, len);
    copy[len] = '\0';
    return copy;
}

static void free_table(struct table *t)
{
    free(t->spec);
    free(t->name);
    free(t);
}

static struct table *new_table(const struct table_ops *ops, const char *spec,
                               const char *name, unsigned flags)
{
    struct table *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->ops = ops;
    t->flags = flags;
    t->spec = copy_string(spec, strlen(spec));
    t->name = copy_string(name, strlen(name));
    if (t->spec == NULL || t->name == NULL) {
        free_table(t);
        return NULL;
    }
    return t;
}

struct table *table_open(const char *spec, unsigned flags, struct buf *error)
{
    const char *colon = strchr(spec, ':');
    if (colon == NULL || colon == spec) {
        (void)buf_printf(error,
                         "table \"%s\": expected TYPE:NAME, e.g. hash:%s",
                         spec, colon == NULL ? spec : colon + 1);
        return NULL;
    }
    size_t type_len = (size_t)(colon - spec);
    const struct table_ops *ops = find_type(spec, type_len);
    if (ops == NULL) {
        report_unknown_type(spec, type_len, error);
        return NULL;
    }
    struct table *t = new_table(ops, spec, colon + 1, flags);
    if (t == NULL) {
        (void)buf_printf(error, "table %s: %s", spec, strerror(ENOMEM));
        return NULL;
    }
    if (ops->open(t, t->name, error) != 0) {
        free_table(t);
        return NULL;
    }
    return t;
}

int table_lookup(struct table *t, const char *key, struct buf *value,
                 struct buf *error)
{
    size_t key_len = strlen(key);
    if (key_len > TABLE_KEY_MAX) {
        (void)buf_printf(error, "%s: lookup key longer than %d bytes",
                         t->spec, TABLE_KEY_MAX);
        return TABLE_ERROR;
    }
    return t->ops->lookup(t, key, value, error);
}

int table_iterate(struct table *t, table_entry_fn *fn, void *ctx,
                  struct buf *error)
{
    if (t->ops->iterate == NULL) {
        (void)buf_printf(error, "%s: a %s table cannot be listed", t->spec,
                         t->ops->type);
        return TABLE_ERROR;
    }
    return t->ops->iterate(t, fn, ctx, error);
}

void table_close(struct table *t)
{
    if (t == NULL)
        return;
    if (t->ops->close != NULL)
        t->ops->close(t);
    free_table(t);
}

const char *table_spec(const struct table *t)
{
    return t->spec;
}

int table_fold_key(const struct table *t, const char *key, struct buf *out)
{
    size_t len = strlen(key);
    if (len > TABLE_KEY_MAX)
        return -1;
    if (buf_set(out, key, len) != 0)
        return -1;
    if (t->flags & TABLE_FLAG_KEEP_CASE)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = out->data[i];
        if (c >= 'A' && c <= 'Z')
            out->data[i] = (char)(c - 'A' + 'a');
    }
    return 0;
}
