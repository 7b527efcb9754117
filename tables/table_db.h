/*
 * table_db - the hash: and btree: tables over Berkeley DB, and the writer
 * that postino-map uses to build them.
 *
 * Readers (through table.h) open FILE.db read-only and reopen it, at most
 * once a second, when it was replaced by a rename.  Writers never modify
 * FILE.db in place: they build a temporary file in the same directory, under
 * an exclusive flock on that directory, and rename it over FILE.db, so a
 * reader sees either the old table or the new one, never half of one.
 *
 * Keys are stored as given (the caller folds them: postino-map folds unless
 * -f), without a trailing NUL; values likewise without a NUL.
 *
 * Usage (postino-map):
 *     struct table_db_writer *w = table_db_writer_create(
 *         "/etc/postino/virtual.db", "hash", 1000, 0, &error);
 *     if (w == NULL) ... report error.data ...
 *     if (table_db_writer_put(w, key, key_len, value, value_len, 1,
 *                             &error) < 0) {
 *         table_db_writer_abort(w); ...
 *     }
 *     if (table_db_writer_commit(w, &error) != 0) ...
 */
#ifndef POSTINO_TABLE_DB_H
#define POSTINO_TABLE_DB_H

#include <stddef.h>

#include "buf.h"

struct table_db_writer;

/* Starts a new FILE.db (db_path is the full path of FILE.db) for type
 * "hash" or "btree": takes an exclusive flock on the directory that holds
 * it (concurrent builds wait for each other), creates a temporary file in
 * that directory sized for about expected entries.  When copy_existing is
 * 1, the entries of the current FILE.db (if any; an empty file counts as
 * none) are copied in first (for postino-map -i and -d).  The new file
 * gets the mode of the existing FILE.db, or 0644.  NULL on error with the
 * reason in error (appended). */
struct table_db_writer *table_db_writer_create(const char *db_path,
                                               const char *type,
                                               size_t expected,
                                               int copy_existing,
                                               struct buf *error);
/* Adds key/value.  replace=0: an existing key is kept and 1 returned
 * (duplicate); replace=1: overwritten.  0 ok, 1 duplicate kept, -1 error. */
int table_db_writer_put(struct table_db_writer *w, const char *key,
                        size_t key_len, const char *value, size_t value_len,
                        int replace, struct buf *error);
/* 0 deleted, 1 not found, -1 error. */
int table_db_writer_delete(struct table_db_writer *w, const char *key,
                           size_t key_len, struct buf *error);
/* Flushes, fsyncs, closes, renames over db_path, fsyncs the directory,
 * releases the lock, frees w.  0 or -1 (temporary file removed on failure;
 * the old FILE.db untouched).  w is freed in every case. */
int table_db_writer_commit(struct table_db_writer *w, struct buf *error);
/* Removes the temporary file, releases the lock, frees w.  NULL is a
 * no-op. */
void table_db_writer_abort(struct table_db_writer *w);

#endif
