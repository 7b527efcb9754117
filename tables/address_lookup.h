/*
 * address_lookup - looks an email address up in a table the way Postfix
 * does for virtual, alias, canonical and similar tables, so that every
 * daemon tries the same keys in the same order.
 *
 * With recipient_delimiter set (one or more delimiter characters; the
 * extension starts at the first of them in the local part, and a local
 * part that starts with one is not split):
 *     user+ext@domain, user@domain,
 *     user+ext, user          (only when the domain is local)
 *     @domain
 * Without a delimiter: user@domain, user (local domains only), @domain.
 * An address without '@' is a local part only: user+ext, user.
 * The domain starts after the last '@'.
 *
 * The first key found wins.  A table error at any step stops the search
 * and returns TABLE_ERROR: a weaker key is never tried after an error.
 *
 * Usage:
 *     switch (address_lookup(virtual, "joe+list@example.com", "+", 0,
 *                            &value, &matched, &error)) {
 *     case TABLE_FOUND: log_info("%s: matched %s", id, matched.data); ...
 */
#ifndef POSTINO_ADDRESS_LOOKUP_H
#define POSTINO_ADDRESS_LOOKUP_H

#include "buf.h"
#include "table.h"

/* delimiters: recipient_delimiter, NULL or "" for none.  domain_is_local:
 * non-zero when the domain is one this system delivers to (mydestination),
 * which allows the bare local-part keys.  On TABLE_FOUND value holds the
 * value and matched_key (unless NULL) the key that matched; on TABLE_ERROR
 * the reason is appended to error. */
int address_lookup(struct table *t, const char *address,
                   const char *delimiters, int domain_is_local,
                   struct buf *value, struct buf *matched_key,
                   struct buf *error);

#endif
