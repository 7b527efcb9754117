/*
 * map_list - an ordered list of lookup tables from one parameter value.
 * See map_list.h.
 */
#include "map_list.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "address_lookup.h"
#include "table.h"

#define MAP_LIST_SEPARATORS " \t\r\n,"

struct map_entry {
    char *spec;
    struct table *table; /* NULL: broken, reason in why */
    char *why;
};

struct map_list {
    struct map_entry *entries;
    size_t count;
};

static int list_add(struct text_list *out, const char *start, size_t len,
                    size_t *cap)
{
    if (out->count == *cap) {
        size_t grown = *cap ? *cap * 2 : 8;
        char **items = realloc(out->items, grown * sizeof(*items));
        if (items == NULL)
            return -1;
        out->items = items;
        *cap = grown;
    }
    char *item = strndup(start, len);
    if (item == NULL)
        return -1;
    out->items[out->count++] = item;
    return 0;
}

int map_list_split(const char *value, struct text_list *out)
{
    out->items = NULL;
    out->count = 0;
    size_t cap = 0;
    const char *p = value;
    for (;;) {
        p += strspn(p, MAP_LIST_SEPARATORS);
        if (*p == '\0')
            return 0;
        const char *start = p;
        int depth = 0;
        while (*p != '\0' &&
               (depth > 0 || strchr(MAP_LIST_SEPARATORS, *p) == NULL)) {
            if (*p == '{')
                depth++;
            else if (*p == '}' && depth > 0)
                depth--;
            p++;
        }
        if (depth > 0 || list_add(out, start, (size_t)(p - start), &cap)) {
            text_list_free(out);
            return -1;
        }
    }
}

struct map_list *map_list_open(const char *value, unsigned flags,
                               struct buf *error)
{
    struct map_list *maps = calloc(1, sizeof(*maps));
    struct text_list items;
    if (maps == NULL)
        return NULL;
    if (map_list_split(value, &items) != 0) {
        (void)buf_printf(error, "cannot split \"%s\" (unbalanced '{'?)",
                         value);
        items.count = 0;
        items.items = NULL;
        /* One broken entry, so that lookups defer. */
        maps->entries = calloc(1, sizeof(*maps->entries));
        if (maps->entries == NULL) {
            free(maps);
            return NULL;
        }
        maps->entries[0].spec = strdup(value);
        maps->entries[0].why = strdup("unbalanced '{' in the table list");
        maps->count = 1;
        return maps;
    }
    maps->entries = calloc(items.count ? items.count : 1,
                           sizeof(*maps->entries));
    if (maps->entries == NULL) {
        text_list_free(&items);
        free(maps);
        return NULL;
    }
    for (size_t i = 0; i < items.count; i++) {
        struct map_entry *e = &maps->entries[maps->count++];
        struct buf why;
        buf_init(&why, 4096);
        e->spec = strdup(items.items[i]);
        e->table = table_open(items.items[i], flags, &why);
        if (e->table == NULL) {
            e->why = strdup(why.len ? buf_cstr(&why) : "cannot open");
            (void)buf_printf(error, "%s%s", error->len ? "\n" : "",
                             buf_cstr(&why));
        }
        buf_free(&why);
    }
    text_list_free(&items);
    return maps;
}

size_t map_list_count(const struct map_list *maps)
{
    return maps ? maps->count : 0;
}

static int broken(const struct map_entry *e, struct buf *error)
{
    (void)buf_printf(error, "table %s is unavailable: %s",
                     e->spec ? e->spec : "?", e->why ? e->why : "?");
    return TABLE_ERROR;
}

int map_list_lookup(const struct map_list *maps, const char *key,
                    struct buf *value, struct buf *error)
{
    for (size_t i = 0; maps && i < maps->count; i++) {
        const struct map_entry *e = &maps->entries[i];
        if (e->table == NULL)
            return broken(e, error);
        int r = table_lookup(e->table, key, value, error);
        if (r != TABLE_NOT_FOUND)
            return r;
    }
    return TABLE_NOT_FOUND;
}

int map_list_lookup_address(const struct map_list *maps, const char *address,
                            const char *delimiters, int domain_is_local,
                            struct buf *value, struct buf *error)
{
    for (size_t i = 0; maps && i < maps->count; i++) {
        const struct map_entry *e = &maps->entries[i];
        if (e->table == NULL)
            return broken(e, error);
        int r = address_lookup(e->table, address, delimiters,
                               domain_is_local, value, NULL, error);
        if (r != TABLE_NOT_FOUND)
            return r;
    }
    return TABLE_NOT_FOUND;
}

struct table *map_list_table(const struct map_list *maps, size_t i,
                             const char **why)
{
    if (maps == NULL || i >= maps->count)
        return NULL;
    if (why != NULL)
        *why = maps->entries[i].why ? maps->entries[i].why : "";
    return maps->entries[i].table;
}

void map_list_free(struct map_list *maps)
{
    if (maps == NULL)
        return;
    for (size_t i = 0; i < maps->count; i++) {
        table_close(maps->entries[i].table);
        free(maps->entries[i].spec);
        free(maps->entries[i].why);
    }
    free(maps->entries);
    free(maps);
}
