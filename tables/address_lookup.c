/*
 * address_lookup - tries the keys of an address in Postfix's order
 * (user+ext@domain, user@domain, user+ext, user, @domain) until one is
 * found, stopping at the first table error.  See address_lookup.h.
 *
 *     int r = address_lookup(t, rcpt, "+", is_local, &value, &key, &error);
 */
#include "address_lookup.h"

#include <string.h>

/* The parts of an address that the keys are made of. */
struct address_parts {
    const char *local; /* local part, with its extension */
    size_t local_len;
    size_t user_len;  /* local part without the extension */
    const char *domain; /* after the last '@'; NULL when there is none */
};

static void split_address(const char *address, const char *delimiters,
                          struct address_parts *parts)
{
    const char *at = strrchr(address, '@');
    parts->local = address;
    parts->local_len = at ? (size_t)(at - address) : strlen(address);
    parts->domain = at ? at + 1 : NULL;
    parts->user_len = parts->local_len;
    if (delimiters == NULL || delimiters[0] == '\0')
        return;
    for (size_t i = 1; i < parts->local_len; i++) { /* not at position 0 */
        if (strchr(delimiters, parts->local[i]) != NULL) {
            parts->user_len = i;
            return;
        }
    }
}

/* Looks key (local_len bytes of the local part, then "@domain" if domain)
 * up.  The key is left in key for the caller to report. */
static int try_key(struct table *t, const struct address_parts *parts,
                   size_t local_len, const char *domain, struct buf *key,
                   struct buf *value, struct buf *error)
{
    buf_reset(key);
    if (buf_append(key, parts->local, local_len) != 0 ||
        (domain != NULL && buf_printf(key, "@%s", domain) != 0)) {
        (void)buf_printf(error, "%s: lookup key for \"%.100s\" longer than "
                         "%d bytes", table_spec(t), parts->local,
                         TABLE_KEY_MAX);
        return TABLE_ERROR;
    }
    return table_lookup(t, buf_cstr(key), value, error);
}

/* One key to try: the first local_len bytes of the local part, then
 * "@domain" unless domain is NULL. */
struct key_step {
    size_t local_len;
    const char *domain;
};

/* The keys of the address in the order they are tried; returns how many
 * (at most 5). */
static int plan_keys(const struct address_parts *parts, int domain_is_local,
                     struct key_step steps[5])
{
    int n = 0;
    int has_extension = parts->user_len < parts->local_len;
    int bare_local = parts->domain == NULL || domain_is_local;
    if (parts->domain != NULL && parts->local_len > 0) {
        if (has_extension)
            steps[n++] = (struct key_step){parts->local_len, parts->domain};
        steps[n++] = (struct key_step){parts->user_len, parts->domain};
    }
    if (bare_local && parts->local_len > 0) {
        if (has_extension)
            steps[n++] = (struct key_step){parts->local_len, NULL};
        steps[n++] = (struct key_step){parts->user_len, NULL};
    }
    if (parts->domain != NULL && parts->domain[0] != '\0')
        steps[n++] = (struct key_step){0, parts->domain};
    return n;
}

int address_lookup(struct table *t, const char *address,
                   const char *delimiters, int domain_is_local,
                   struct buf *value, struct buf *matched_key,
                   struct buf *error)
{
    struct address_parts parts;
    split_address(address, delimiters, &parts);
    struct key_step steps[5];
    int count = plan_keys(&parts, domain_is_local, steps);
    struct buf key;
    buf_init(&key, TABLE_KEY_MAX);
    int result = TABLE_NOT_FOUND;
    for (int i = 0; i < count && result == TABLE_NOT_FOUND; i++)
        result = try_key(t, &parts, steps[i].local_len, steps[i].domain, &key,
                         value, error);
    if (result == TABLE_FOUND && matched_key != NULL &&
        buf_set(matched_key, buf_cstr(&key), key.len) != 0) {
        (void)buf_printf(error, "%s: matched key too long for the caller",
                         table_spec(t));
        result = TABLE_ERROR;
    }
    buf_free(&key);
    return result;
}
