/*
 * table_source - the postmap-style text source of a table, read by
 * texthash: and by postino-map.
 *
 * Format of FILE:
 *     # comment
 *     key value text
 *     key2 a value that
 *         continues here       (a line starting with white space continues
 *                               the previous one, joined with one space)
 * The key is the text up to the first white space; the value is the rest,
 * with white space trimmed at both ends.  Blank lines and lines whose first
 * non-space character is '#' are ignored.  A key without a value, a NUL
 * byte, or a logical line longer than TABLE_VALUE_MAX is an error
 * "FILE:LINE: ..." (logged with log_error, counted, the first one appended
 * to error, and the line skipped).
 *
 * Usage:
 *     static int add(void *ctx, const char *key, size_t key_len,
 *                    const char *value, size_t value_len,
 *                    const char *file, int line) { ...; return 0; }
 *     int errors = table_source_read("/etc/postino/virtual", add, ctx, &err);
 *     if (errors < 0) ... cannot read: err.data ...
 *     else if (errors > 0) ... syntax errors, first one in err.data ...
 */
#ifndef POSTINO_TABLE_SOURCE_H
#define POSTINO_TABLE_SOURCE_H

#include <stddef.h>

#include "buf.h"

/* Called for each entry; key and value are not NUL-terminated.  line is
 * the line the entry starts on.  Returns 0 to go on, -1 to stop with an
 * error. */
typedef int table_source_fn(void *ctx, const char *key, size_t key_len,
                            const char *value, size_t value_len,
                            const char *file, int line);

/* Reads FILE and calls fn for each entry.  Returns the number of errors
 * (syntax errors, plus one when fn stopped the read), or -1 when the file
 * cannot be read (reason in error). */
int table_source_read(const char *path, table_source_fn *fn, void *ctx,
                      struct buf *error);

#endif
