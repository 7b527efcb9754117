/*
 * cleanup_envelope - the envelope of a message: the sender and recipient
 * addresses as the client gave them, rewritten through the canonical maps
 * and expanded through virtual_alias_maps, and written as the queue file's
 * envelope records (docs/queue-format.md).
 *
 * Canonical rewriting: the sender through sender_canonical_maps, then
 * canonical_maps; each recipient through recipient_canonical_maps, then
 * canonical_maps.  A value replaces the address.  The null sender is never
 * rewritten.
 *
 * Virtual alias expansion: a recipient found in virtual_alias_maps is
 * replaced by the addresses of the value (commas and/or white space
 * between them), each of which is looked up again, down to
 * virtual_alias_recursion_limit levels; an address that appears in its
 * own value stays as it is there (a list that includes its own name) and
 * is not looked up again, and the whole
 * expansion of one recipient may give at most
 * virtual_alias_expansion_limit addresses.  Beyond either limit the
 * message is deferred with a warning, as Postfix does: a loop in the
 * tables is the admin's to fix, and nothing is lost meanwhile.
 *
 * Duplicates among the final recipients are removed (the first keeps its
 * ORCPT and NOTIFY).  A recipient that was rewritten and has no ORCPT
 * gets "rfc822;ORIGINAL", so that DSNs name the address the client gave.
 * Table errors defer (451 4.3.0).  CLEANUP_FLAG_NO_REWRITE skips all of
 * it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "log.h"

int cleanup_recipients_add(struct cleanup_recipients *list,
                           const char *address, const char *orcpt,
                           const char *notify)
{
    if (list->count >= CLEANUP_RECIPIENT_MAX) {
        errno = EMSGSIZE;
        return -1;
    }
    if (list->count == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 16;
        struct cleanup_recipient *items =
            realloc(list->items, cap * sizeof(*items));
        if (items == NULL)
            return -1;
        list->items = items;
        list->cap = cap;
    }
    struct cleanup_recipient *r = &list->items[list->count];
    r->address = strdup(address);
    r->orcpt = orcpt != NULL ? strdup(orcpt) : NULL;
    r->notify = notify != NULL ? strdup(notify) : NULL;
    if (r->address == NULL || (orcpt != NULL && r->orcpt == NULL) ||
        (notify != NULL && r->notify == NULL)) {
        free(r->address);
        free(r->orcpt);
        free(r->notify);
        errno = ENOMEM;
        return -1;
    }
    list->count++;
    return 0;
}

void cleanup_recipients_free(struct cleanup_recipients *list)
{
    for (size_t i = 0; i < list->count; i++) {
        free(list->items[i].address);
        free(list->items[i].orcpt);
        free(list->items[i].notify);
    }
    free(list->items);
    memset(list, 0, sizeof(*list));
}

static int lookup_failed(struct cleanup_state *st, const char *param,
                         const char *address, const struct buf *error)
{
    log_warn("%s: %s lookup of %s: %s", st->id, param, address,
             buf_cstr(error));
    cleanup_fail(st, CLEANUP_DEFER, 451, "4.3.0",
                 "Error: address lookup table unavailable");
    return -1;
}

/* One canonical list: the value replaces address. */
static int rewrite_one(struct cleanup_state *st, const char *param,
                       const struct cleanup_tables *list, struct buf *address)
{
    if (list->count == 0)
        return 0;
    struct buf value, error;
    buf_init(&value, CLEANUP_ADDRESS_MAX);
    buf_init(&error, 4096);
    int rc = cleanup_tables_lookup_address(st, list, buf_cstr(address),
                                           &value, &error);
    int result = 0;
    if (rc == TABLE_ERROR)
        result = lookup_failed(st, param, buf_cstr(address), &error);
    else if (rc == TABLE_FOUND && value.len > 0 &&
             buf_set(address, value.data, value.len) != 0)
        result = -1;
    buf_free(&value);
    buf_free(&error);
    return result;
}

int cleanup_rewrite_address(struct cleanup_state *st, int sender,
                            struct buf *address)
{
    if (address->len == 0 || (st->flags & CLEANUP_FLAG_NO_REWRITE))
        return 0;
    const struct cleanup_config *cfg = st->cfg;
    if (sender)
        return rewrite_one(st, "sender_canonical_maps",
                           &cfg->sender_canonical, address) != 0 ||
               rewrite_one(st, "canonical_maps", &cfg->canonical,
                           address) != 0 ? -1 : 0;
    return rewrite_one(st, "recipient_canonical_maps",
                       &cfg->recipient_canonical, address) != 0 ||
           rewrite_one(st, "canonical_maps", &cfg->canonical,
                       address) != 0 ? -1 : 0;
}

static int recipient_known(const struct cleanup_recipients *list,
                           const char *address)
{
    for (size_t i = 0; i < list->count; i++)
        if (strcasecmp(list->items[i].address, address) == 0)
            return 1;
    return 0;
}

/* Adds a final recipient unless it is already there. */
static int add_final(struct cleanup_state *st, const char *address,
                     const struct cleanup_recipient *original)
{
    if (recipient_known(&st->final, address))
        return 0;
    const char *orcpt = original->orcpt;
    struct buf made;
    buf_init(&made, CLEANUP_ADDRESS_MAX + 16);
    if (orcpt == NULL && strcmp(address, original->address) != 0) {
        if (buf_printf(&made, "rfc822;%s", original->address) == 0)
            orcpt = buf_cstr(&made);
    }
    int rc = cleanup_recipients_add(&st->final, address, orcpt,
                                    original->notify);
    buf_free(&made);
    if (rc != 0) {
        log_warn("%s: too many recipients", st->id);
        cleanup_fail(st, CLEANUP_REJECT, 552, "5.5.3",
                     "Error: too many recipients");
    }
    return rc;
}

/* Expands one rewritten recipient through virtual_alias_maps. */
static void expand_virtual(struct cleanup_state *st, const char *address,
                           const struct cleanup_recipient *original)
{
    const struct cleanup_config *cfg = st->cfg;
    if (cfg->virtual_alias.count == 0 ||
        (st->flags & CLEANUP_FLAG_NO_REWRITE)) {
        (void)add_final(st, address, original);
        return;
    }
    /* A work list of (address, depth), processed in order. */
    struct cleanup_recipients todo = { 0 };
    long depths_cap = 0;
    long *depths = NULL;
    struct buf value, error;
    buf_init(&value, TABLE_VALUE_MAX);
    buf_init(&error, 4096);
    long produced = 0;
    if (cleanup_recipients_add(&todo, address, NULL, NULL) != 0)
        goto oom;
    depths_cap = 16;
    depths = calloc((size_t)depths_cap, sizeof(*depths));
    if (depths == NULL)
        goto oom;
    for (size_t i = 0; i < todo.count && !cleanup_failed(st); i++) {
        const char *a = todo.items[i].address;
        int rc = cleanup_tables_lookup_address(st, &cfg->virtual_alias, a,
                                               &value, &error);
        if (rc == TABLE_ERROR) {
            (void)lookup_failed(st, "virtual_alias_maps", a, &error);
            break;
        }
        if (rc == TABLE_NOT_FOUND) {
            if (++produced > cfg->expansion_limit)
                break;
            if (add_final(st, a, original) != 0)
                break;
            continue;
        }
        if (depths[i] + 1 > cfg->recursion_limit) {
            log_warn("%s: unreasonable virtual_alias_maps map nesting for "
                     "%s -- message not accepted", st->id, address);
            cleanup_fail(st, CLEANUP_DEFER, 451, "4.3.0",
                         "Error: virtual alias expansion loop");
            break;
        }
        char *copy = strdup(buf_cstr(&value));
        if (copy == NULL)
            goto oom;
        char *cursor = copy;
        for (char *w = strtok_r(cursor, ", \t\r\n", &cursor); w != NULL;
             w = strtok_r(NULL, ", \t\r\n", &cursor)) {
            if (strcasecmp(w, a) == 0) {
                /* A list that includes its own name: that one stays. */
                if (++produced > cfg->expansion_limit ||
                    add_final(st, w, original) != 0)
                    break;
                continue;
            }
            if ((long)todo.count >= cfg->expansion_limit + 1) {
                produced = cfg->expansion_limit + 1;
                break;
            }
            if (cleanup_recipients_add(&todo, w, NULL, NULL) != 0) {
                free(copy);
                goto oom;
            }
            if ((long)todo.count > depths_cap) {
                long cap = depths_cap * 2;
                long *d = realloc(depths, (size_t)cap * sizeof(*d));
                if (d == NULL) {
                    free(copy);
                    goto oom;
                }
                depths = d;
                depths_cap = cap;
            }
            depths[todo.count - 1] = depths[i] + 1;
        }
        free(copy);
        if (produced > cfg->expansion_limit)
            break;
    }
    if (produced > cfg->expansion_limit) {
        log_warn("%s: unreasonable virtual_alias_maps map expansion size for "
                 "%s -- message not accepted", st->id, address);
        cleanup_fail(st, CLEANUP_DEFER, 451, "4.3.0",
                     "Error: virtual alias expansion too large");
    }
    goto done;
oom:
    cleanup_fail(st, CLEANUP_DEFER, 451, "4.3.0", "Error: out of memory");
done:
    free(depths);
    cleanup_recipients_free(&todo);
    buf_free(&value);
    buf_free(&error);
}

void cleanup_envelope_rewrite(struct cleanup_state *st,
                              const struct cleanup_recipients *list)
{
    struct buf address;
    buf_init(&address, CLEANUP_ADDRESS_MAX);
    for (size_t i = 0; i < list->count && !cleanup_failed(st); i++) {
        const struct cleanup_recipient *r = &list->items[i];
        if (buf_set_str(&address, r->address) != 0 ||
            cleanup_rewrite_address(st, 0, &address) != 0)
            break;
        if (strcmp(buf_cstr(&address), r->address) != 0)
            log_debug("%s: %s: canonical %s", st->id, r->address,
                      buf_cstr(&address));
        expand_virtual(st, buf_cstr(&address), r);
    }
    buf_free(&address);
}

static void write_record(struct cleanup_state *st, int type, const char *data,
                         size_t len)
{
    if (!st->writer_open || cleanup_failed(st))
        return;
    if (queue_writer_add(&st->writer, type, data, len) != 0)
        cleanup_fail_write(st, errno);
}

/* Attributes of the open request that are not written as A records. */
static int attribute_skipped(const char *name)
{
    return strcmp(name, "request") == 0 || strcmp(name, "sender") == 0 ||
           strcmp(name, "flags") == 0;
}

void cleanup_envelope_open(struct cleanup_state *st)
{
    const char *sender = record_get_str(&st->envelope, "sender");
    if (buf_set_str(&st->sender, sender) != 0 ||
        buf_set_str(&st->sender_original, sender) != 0) {
        cleanup_fail(st, CLEANUP_REJECT, 553, "5.1.7",
                     "Error: sender address too long");
        return;
    }
    if (cleanup_rewrite_address(st, 1, &st->sender) != 0)
        return;
    char when[64];
    int n = snprintf(when, sizeof(when), "%lld.%06ld",
                     (long long)st->arrival.tv_sec,
                     (long)st->arrival.tv_usec);
    write_record(st, QUEUE_REC_TIME, when, (size_t)n);
    struct buf attr;
    buf_init(&attr, CLEANUP_RECORD_MAX);
    for (size_t i = 0; i < st->envelope.count; i++) {
        const struct record_attr *a = &st->envelope.attrs[i];
        if (attribute_skipped(a->name))
            continue;
        if (memchr(a->value.data, '\0', a->value.len) != NULL) {
            log_warn("%s: attribute %s holds a NUL byte: ignored", st->id,
                     a->name);
            continue;
        }
        buf_reset(&attr);
        if (buf_printf(&attr, "%s=", a->name) != 0 ||
            buf_append(&attr, a->value.data, a->value.len) != 0)
            continue;
        write_record(st, QUEUE_REC_ATTR, attr.data, attr.len);
    }
    buf_free(&attr);
    write_record(st, QUEUE_REC_SENDER, st->sender.data ? st->sender.data : "",
                 st->sender.len);
}

void cleanup_envelope_write_recipients(struct cleanup_state *st)
{
    for (size_t i = st->final_written; i < st->final.count; i++) {
        const struct cleanup_recipient *r = &st->final.items[i];
        if (r->orcpt != NULL)
            write_record(st, QUEUE_REC_ORCPT, r->orcpt, strlen(r->orcpt));
        if (r->notify != NULL)
            write_record(st, QUEUE_REC_NOTIFY, r->notify, strlen(r->notify));
        write_record(st, QUEUE_REC_RCPT, r->address, strlen(r->address));
    }
    st->final_written = st->final.count;
}
