/*
 * table - the one lookup-table interface of Postino.  Every daemon that
 * decides where mail goes (aliases, virtual domains, transports, users)
 * reads its tables through it; docs/TABLES.md describes them for admins.
 *
 * A table is named as Postfix writes it, TYPE:NAME:
 *   hash:FILE       Berkeley DB hash in FILE.db, built from FILE by
 *                   postino-map
 *   btree:FILE      Berkeley DB btree in FILE.db
 *   pcre:FILE       PCRE2 patterns, Postfix's pcre_table syntax
 *   texthash:FILE   FILE ("key value" lines) read into memory; no .db
 *   inline:{ key = value, key2 = value2 }
 *   static:VALUE    every key gives VALUE
 *   unix:passwd.byname   local accounts: key a user name, value the
 *                   passwd(5) line (name:x:uid:gid:gecos:home:shell)
 *
 * Keys of hash, btree, texthash and inline are folded to lower case, when
 * built and when looked up, as Postfix does; pcre matches case-insensitively
 * unless a pattern's flags say otherwise; unix and static keep case.
 *
 * A lookup has three outcomes, and an error is never taken for "not found":
 * a daemon whose table fails defers (4xx), it neither rejects nor bounces.
 *
 * Live tables: a Berkeley DB table is opened read-only; before a lookup,
 * at most once a second, the reader checks whether FILE.db was replaced
 * (postino-map builds a new file and renames it over the old one) and
 * reopens it.  A reader therefore sees a rebuilt table within a second or
 * two, never a half-written one, and keeps using the old one when the new
 * one cannot be opened (logging why).
 *
 * Usage:
 *     struct buf error, value;
 *     buf_init(&error, 1024); buf_init(&value, TABLE_VALUE_MAX);
 *     struct table *t = table_open("hash:/etc/postino/virtual", 0, &error);
 *     if (t == NULL) ... log error.data, defer ...
 *     switch (table_lookup(t, "user@example.com", &value, &error)) {
 *     case TABLE_FOUND:     use(value.data); break;
 *     case TABLE_NOT_FOUND: break;
 *     case TABLE_ERROR:     ... defer, log error.data ...
 *     }
 *     table_close(t);
 */
#ifndef POSTINO_TABLE_H
#define POSTINO_TABLE_H

#include <stddef.h>

#include "buf.h"

#define TABLE_KEY_MAX 4096
#define TABLE_VALUE_MAX (1024 * 1024)

enum table_result {
    TABLE_FOUND = 0,
    TABLE_NOT_FOUND = 1,
    TABLE_ERROR = -1,
};

/* table_open flags. */
enum {
    TABLE_FLAG_KEEP_CASE = 1, /* do not fold keys (postino-map -f) */
    TABLE_FLAG_BULK = 2,      /* many lookups to come (postino-map -q -):
                               * hash and btree keep up to 256 MiB of the
                               * file in memory instead of 4 MiB */
};

struct table;

/* Opens TYPE:NAME.  NULL on failure, with the reason in error (appended):
 * unknown type, missing file, syntax error with FILE:LINE, bad regex with
 * the pattern and position. */
struct table *table_open(const char *spec, unsigned flags, struct buf *error);
/* Looks key up; on TABLE_FOUND the value replaces value's contents. */
int table_lookup(struct table *t, const char *key, struct buf *value,
                 struct buf *error);
/* Calls fn for every entry (not for pcre and static: TABLE_ERROR with a
 * message).  fn returns 0 to go on, non-zero to stop.  Returns 0, or
 * TABLE_ERROR. */
typedef int table_entry_fn(void *ctx, const char *key, size_t key_len,
                           const char *value, size_t value_len);
int table_iterate(struct table *t, table_entry_fn *fn, void *ctx,
                  struct buf *error);
void table_close(struct table *t);
/* "hash:/etc/postino/virtual", as given to table_open. */
const char *table_spec(const struct table *t);

#endif
