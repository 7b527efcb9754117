/*
 * domain_list - "is this domain one of ours?" for mydestination,
 * relay_domains, virtual_alias_domains and virtual_mailbox_domains.
 *
 * Items (split as map_list_split does, so inline:{...} stays whole):
 *     example.com        the domain itself; with DOMAIN_LIST_SUBDOMAINS
 *                        also every subdomain (Postfix's
 *                        parent_domain_matches_subdomains for relay_domains)
 *     .example.com       every subdomain of example.com, not itself
 *     type:table         a table whose keys are domains; with
 *                        DOMAIN_LIST_SUBDOMAINS the parent domains are
 *                        looked up too ("example.com" for "a.example.com")
 *     !item              exclusion: a match stops the scan with no match
 * Comparisons ignore ASCII case; the domain is taken as given, minus one
 * trailing dot.  A table that cannot be opened, or fails a lookup, makes
 * the answer DOMAIN_LIST_ERROR, never a silent "no".
 *
 * Usage:
 *     struct domain_list *dests = domain_list_create(value, 0, &error);
 *     switch (domain_list_match(dests, "example.com", &error)) {
 *     case DOMAIN_LIST_MATCH: ... ours ...
 *     case DOMAIN_LIST_NO_MATCH: ...
 *     case DOMAIN_LIST_ERROR: ... 451 4.3.0, log error ...
 *     }
 *     domain_list_free(dests);
 */
#ifndef POSTINO_DOMAIN_LIST_H
#define POSTINO_DOMAIN_LIST_H

#include "buf.h"

enum {
    DOMAIN_LIST_SUBDOMAINS = 1, /* "example.com" matches its subdomains */
};

enum domain_list_result {
    DOMAIN_LIST_MATCH = 1,
    DOMAIN_LIST_NO_MATCH = 0,
    DOMAIN_LIST_ERROR = -1,
};

struct domain_list;

/* NULL only when out of memory.  Tables that fail to open are appended to
 * error and make every later match that reaches them an error. */
struct domain_list *domain_list_create(const char *value, unsigned flags,
                                       struct buf *error);
int domain_list_match(const struct domain_list *list, const char *domain,
                      struct buf *error);
/* 1 when the list has no items. */
int domain_list_empty(const struct domain_list *list);
void domain_list_free(struct domain_list *list);

#endif
