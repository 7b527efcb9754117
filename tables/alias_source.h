/*
 * alias_source - the aliases(5) file: read by postino-map -a (postalias,
 * newaliases) to build the alias database, and by local delivery to take
 * an alias's value apart again.
 *
 * Format (Sendmail's and Postfix's):
 *     # comment
 *     postmaster: root
 *     staff:      alice, bob,
 *                 :include:/etc/postino/staff.list,
 *                 "|/usr/bin/filter -x", /var/mail/archive
 *     "a name with: spaces": carol
 *
 *   - the name is the text before the first ':'; a name in double quotes
 *     may hold white space and ':' (a backslash quotes the next character);
 *     the quotes are not part of the name.  An unquoted name may not hold
 *     white space;
 *   - the value is the list after the ':', items separated by commas; each
 *     item is kept as written, white space trimmed: addresses, local
 *     names, ":include:/path", "|command", "/file", and quoted items with
 *     their quotes (a comma inside double quotes does not separate);
 *   - a line that starts with white space continues the entry above it;
 *   - blank lines and lines whose first non-space character is '#' are
 *     ignored (they do not end an entry, so a continuation may follow).
 *
 * Errors ("FILE:LINE: ...", logged with log_error, counted, the first also
 * appended to error; the entry is skipped): a line without ':', an empty
 * name, white space in an unquoted name, an unterminated quote, no value,
 * a continuation line before any entry, a NUL byte, an entry longer than
 * TABLE_VALUE_MAX.
 *
 * The callback receives the name (unquoted, case as written: folding is
 * the caller's job) and the items joined with ", " - the form stored in the
 * alias database.  alias_list_next() splits such a value again.
 *
 * Usage:
 *     static int add(void *ctx, const char *name, size_t name_len,
 *                    const char *value, size_t value_len,
 *                    const char *file, int line) { ...; return 0; }
 *     int errors = alias_source_read("/etc/aliases", add, ctx, &error);
 *     if (errors < 0) ... cannot read: error.data ...
 *
 *     const char *cursor = value, *item; size_t item_len;
 *     while (alias_list_next(&cursor, value + len, &item, &item_len))
 *         deliver_to(item, item_len);
 */
#ifndef POSTINO_ALIAS_SOURCE_H
#define POSTINO_ALIAS_SOURCE_H

#include <stddef.h>

#include "buf.h"

/* Called once per entry; name and value are not NUL-terminated.  line is
 * the line the entry starts on.  Returns 0 to go on, -1 to stop. */
typedef int alias_source_fn(void *ctx, const char *name, size_t name_len,
                            const char *value, size_t value_len,
                            const char *file, int line);

/* Reads the aliases file at path.  Returns the number of errors (plus one
 * when fn stopped the read), or -1 when the file cannot be read (reason in
 * error, errno set). */
int alias_source_read(const char *path, alias_source_fn *fn, void *ctx,
                      struct buf *error);

/* The same for text in memory; file names it in messages. */
int alias_source_parse(const char *text, size_t len, const char *file,
                       alias_source_fn *fn, void *ctx, struct buf *error);

/* The next item of a list value ("a, b, \"c, d\""): sets item and
 * item_len (white space trimmed) and returns 1, or returns 0 at the end.
 * Commas inside double quotes do not separate; empty items are skipped. */
int alias_list_next(const char **cursor, const char *end, const char **item,
                    size_t *item_len);

#endif
