/*
 * domain_list - domain lists such as mydestination.  See domain_list.h.
 */
#include "domain_list.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "map_list.h"
#include "table.h"

struct domain_item {
    int negate;
    char *name;            /* a domain or ".suffix"; NULL for a table */
    struct map_list *maps; /* one table */
};

struct domain_list {
    unsigned flags;
    struct domain_item *items;
    size_t count;
};

static int is_table(const char *item)
{
    const char *colon = strchr(item, ':');
    if (colon == NULL || colon == item)
        return 0;
    for (const char *p = item; p < colon; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
            return 0;
    return 1;
}

struct domain_list *domain_list_create(const char *value, unsigned flags,
                                       struct buf *error)
{
    struct domain_list *list = calloc(1, sizeof(*list));
    if (list == NULL)
        return NULL;
    list->flags = flags;
    struct text_list items;
    if (map_list_split(value, &items) != 0) {
        (void)buf_printf(error, "cannot split \"%s\" (unbalanced '{'?)",
                         value);
        items.count = 0;
        items.items = NULL;
    }
    list->items = calloc(items.count ? items.count : 1, sizeof(*list->items));
    if (list->items == NULL) {
        text_list_free(&items);
        free(list);
        return NULL;
    }
    for (size_t i = 0; i < items.count; i++) {
        struct domain_item *d = &list->items[list->count++];
        const char *text = items.items[i];
        if (text[0] == '!') {
            d->negate = 1;
            text++;
        }
        if (is_table(text))
            d->maps = map_list_open(text, 0, error);
        else
            d->name = strdup(text);
    }
    text_list_free(&items);
    return list;
}

int domain_list_empty(const struct domain_list *list)
{
    return list == NULL || list->count == 0;
}

/* "example.com" against a name or ".suffix" item. */
static int name_matches(const struct domain_item *d, const char *domain,
                        size_t len, unsigned flags)
{
    const char *name = d->name;
    size_t nlen = strlen(name);
    if (name[0] == '.')
        return len > nlen && strncasecmp(domain + len - nlen, name, nlen) == 0;
    if (len == nlen && strncasecmp(domain, name, len) == 0)
        return 1;
    return (flags & DOMAIN_LIST_SUBDOMAINS) && len > nlen + 1 &&
           domain[len - nlen - 1] == '.' &&
           strncasecmp(domain + len - nlen, name, nlen) == 0;
}

/* Looks the domain up, then (subdomains) each parent domain. */
static int table_matches(const struct domain_item *d, const char *domain,
                         unsigned flags, struct buf *error)
{
    struct buf value;
    buf_init(&value, TABLE_VALUE_MAX);
    const char *key = domain;
    int result = DOMAIN_LIST_NO_MATCH;
    while (key != NULL && *key != '\0') {
        int r = map_list_lookup(d->maps, key, &value, error);
        if (r == TABLE_ERROR) {
            result = DOMAIN_LIST_ERROR;
            break;
        }
        if (r == TABLE_FOUND) {
            result = DOMAIN_LIST_MATCH;
            break;
        }
        if (!(flags & DOMAIN_LIST_SUBDOMAINS))
            break;
        key = strchr(key, '.');
        if (key != NULL)
            key++;
    }
    buf_free(&value);
    return result;
}

int domain_list_match(const struct domain_list *list, const char *domain,
                      struct buf *error)
{
    if (list == NULL || domain == NULL)
        return DOMAIN_LIST_NO_MATCH;
    char folded[256];
    size_t len = strlen(domain);
    if (len > 0 && domain[len - 1] == '.')
        len--;
    if (len == 0 || len >= sizeof(folded))
        return DOMAIN_LIST_NO_MATCH;
    for (size_t i = 0; i < len; i++) {
        char c = domain[i];
        folded[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    folded[len] = '\0';
    for (size_t i = 0; i < list->count; i++) {
        const struct domain_item *d = &list->items[i];
        int r;
        if (d->maps != NULL)
            r = table_matches(d, folded, list->flags, error);
        else
            r = d->name != NULL &&
                name_matches(d, folded, len, list->flags);
        if (r == DOMAIN_LIST_ERROR)
            return r;
        if (r == DOMAIN_LIST_MATCH)
            return d->negate ? DOMAIN_LIST_NO_MATCH : DOMAIN_LIST_MATCH;
    }
    return DOMAIN_LIST_NO_MATCH;
}

void domain_list_free(struct domain_list *list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < list->count; i++) {
        free(list->items[i].name);
        map_list_free(list->items[i].maps);
    }
    free(list->items);
    free(list);
}
