/*
 * map_list - a parameter that names lookup tables, such as
 * local_recipient_maps = unix:passwd.byname $alias_maps, opened together and
 * searched in order.
 *
 * The value is split on commas and white space, except inside { }, so that
 * "inline:{ a = b, c = d }" stays one table, as in Postfix.  A table that
 * cannot be opened stays in the list as a broken entry: every lookup that
 * reaches it is a TABLE_ERROR (the caller defers with 4xx), so a typo in
 * main.cf never turns into "user unknown" rejections.
 *
 * Usage:
 *     struct buf error; buf_init(&error, 4096);
 *     struct map_list *maps = map_list_open(value, 0, &error);
 *     if (error.len) log_warn("local_recipient_maps: %s", error.data);
 *     switch (map_list_lookup_address(maps, "joe@example.com", "+", 1,
 *                                     &value, &error)) { ... }
 *     map_list_free(maps);
 */
#ifndef POSTINO_MAP_LIST_H
#define POSTINO_MAP_LIST_H

#include <stddef.h>

#include "buf.h"
#include "config.h"
#include "table.h"

struct map_list;

/* Splits a list value into items, keeping { } groups whole (the braces
 * stay part of the item).  The caller frees out with text_list_free().
 * 0, or -1 out of memory or an unbalanced brace (out then empty). */
int map_list_split(const char *value, struct text_list *out);

/* Opens every table named in value (table_open flags).  NULL only when out
 * of memory; tables that fail to open are broken entries and their
 * reasons are appended to error, one per line. */
struct map_list *map_list_open(const char *value, unsigned flags,
                               struct buf *error);
/* Number of entries (broken ones too); 0 means the parameter was empty. */
size_t map_list_count(const struct map_list *maps);
/* The first table that has key: TABLE_FOUND with value, TABLE_NOT_FOUND,
 * or TABLE_ERROR with the reason in error. */
int map_list_lookup(const struct map_list *maps, const char *key,
                    struct buf *value, struct buf *error);
/* The same with tables/address_lookup.h's keys for an email address. */
int map_list_lookup_address(const struct map_list *maps, const char *address,
                            const char *delimiters, int domain_is_local,
                            struct buf *value, struct buf *error);
/* The table of entry i, NULL when it is broken; *why (may be NULL) then
 * gets the reason.  For callers that need table.h's own functions, such
 * as password_check. */
struct table *map_list_table(const struct map_list *maps, size_t i,
                             const char **why);
void map_list_free(struct map_list *maps);

#endif
