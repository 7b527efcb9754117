/*
 * table_driver - what a table type provides to table.c.  Only the drivers
 * and table.c include this; everyone else uses table.h.
 *
 * Each driver fills one struct table_ops.  table.c parses "TYPE:NAME",
 * finds the driver by type, allocates struct table, and calls open with the
 * NAME part; the driver keeps its state in t->state.  Key folding for the
 * types that fold is the driver's job (table_fold_key helps).
 */
#ifndef POSTINO_TABLE_DRIVER_H
#define POSTINO_TABLE_DRIVER_H

#include "table.h"

struct table_ops {
    const char *type;
    /* 0, or -1 with the reason appended to error; on failure the driver
     * has released whatever it allocated: close is not called. */
    int (*open)(struct table *t, const char *name, struct buf *error);
    /* TABLE_FOUND (value replaced), TABLE_NOT_FOUND, or TABLE_ERROR with
     * the reason appended to error.  table.c has checked the key length. */
    int (*lookup)(struct table *t, const char *key, struct buf *value,
                  struct buf *error);
    /* NULL: the type cannot be listed. */
    int (*iterate)(struct table *t, table_entry_fn *fn, void *ctx,
                   struct buf *error);
    void (*close)(struct table *t);
};

struct table {
    const struct table_ops *ops;
    char *spec;     /* TYPE:NAME */
    char *name;     /* NAME */
    unsigned flags; /* TABLE_FLAG_* */
    void *state;    /* the driver's */
};

/* The drivers, each defined in its own table_TYPE.c. */
extern const struct table_ops table_hash_ops;
extern const struct table_ops table_btree_ops;
extern const struct table_ops table_pcre_ops;
extern const struct table_ops table_texthash_ops;
extern const struct table_ops table_inline_ops;
extern const struct table_ops table_static_ops;
extern const struct table_ops table_unix_ops;

/* ASCII lower-casing of key into out (replacing its contents), unless the
 * table keeps case.  0, or -1 when the key is longer than TABLE_KEY_MAX. */
int table_fold_key(const struct table *t, const char *key, struct buf *out);

#endif
