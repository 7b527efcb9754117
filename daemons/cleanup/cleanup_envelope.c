/*
 * cleanup_envelope - the envelope of a message: the sender and recipient
 * addresses as the client gave them, rewritten through the canonical maps
 * and expanded through virtual_alias_maps, and written as the queue file's
 * envelope records (docs/queue-format.md).
 *
 * Local submissions first get the canonical form (append_at_myorigin, as
 * Postfix's trivial-rewrite gives it): a sender or recipient without a
 * domain becomes user@$myorigin.  This happens before the canonical maps
 * and counts as the address the client gave (no ORCPT for it alone).
 * Only mail that pickup brings (origin "pickup"); mail from the network
 * keeps its addresses.
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
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "log.h"

/* FNV-1a of the address, folded to lower case. */
static size_t address_hash(const char *address)
{
    uint64_t h = 14695981039346656037ULL;
    for (const unsigned char *p = (const unsigned char *)address; *p; p++) {
        h ^= (uint64_t)tolower(*p);
        h *= 1099511628211ULL;
    }
    return (size_t)h;
}

static void index_put(struct cleanup_recipients *list, size_t item)
{
    size_t mask = list->slot_count - 1;
    size_t i = address_hash(list->items[item].address) & mask;
    while (list->slots[i] != 0)
        i = (i + 1) & mask;
    list->slots[i] = item + 1;
}

/* Keeps the index at most half full; -1 when memory ran out. */
static int index_grow(struct cleanup_recipients *list)
{
    if (list->slot_count >= 2 * (list->count + 1))
        return 0;
    size_t n = list->slot_count ? list->slot_count * 2 : 64;
    size_t *slots = calloc(n, sizeof(*slots));
    if (slots == NULL)
        return -1;
    free(list->slots);
    list->slots = slots;
    list->slot_count = n;
    for (size_t i = 0; i < list->count; i++)
        index_put(list, i);
    return 0;
}

int cleanup_recipients_contains(const struct cleanup_recipients *list,
                                const char *address)
{
    if (list->slot_count == 0)
        return 0;
    size_t mask = list->slot_count - 1;
    for (size_t i = address_hash(address) & mask; list->slots[i] != 0;
         i = (i + 1) & mask)
        if (strcasecmp(list->items[list->slots[i] - 1].address, address) == 0)
            return 1;
    return 0;
}

int cleanup_recipients_add(struct cleanup_recipients *list,
                           const char *address, const char *orcpt,
                           const char *notify)
{
    if (index_grow(list) != 0)
        return -1;
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
    r->depth = 0;
    if (r->address == NULL || (orcpt != NULL && r->orcpt == NULL) ||
        (notify != NULL && r->notify == NULL)) {
        free(r->address);
        free(r->orcpt);
        free(r->notify);
        errno = ENOMEM;
        return -1;
    }
    index_put(list, list->count);
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
    free(list->slots);
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

int cleanup_appends_origin(const struct cleanup_state *st)
{
    if (!st->cfg->append_at_myorigin || (st->flags & CLEANUP_FLAG_NO_REWRITE))
        return 0;
    const char *origin = cleanup_attr(st, "origin");
    return origin != NULL && strcmp(origin, "pickup") == 0;
}

int cleanup_address_has_domain(const char *address, size_t len)
{
    int quoted = 0;
    for (size_t i = 0; i < len; i++) {
        if (quoted && address[i] == '\\' && i + 1 < len)
            i++;
        else if (address[i] == '"')
            quoted = !quoted;
        else if (!quoted && address[i] == '@')
            return 1;
    }
    return 0;
}

int cleanup_append_origin(const struct cleanup_state *st,
                          struct buf *address)
{
    if (address->len == 0 || !cleanup_appends_origin(st) ||
        cleanup_address_has_domain(address->data, address->len) ||
        st->cfg->myorigin[0] == '\0')
        return 0;
    return buf_printf(address, "@%s", st->cfg->myorigin);
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

/* Adds a final recipient unless it is already there. */
static int add_final(struct cleanup_state *st, const char *address,
                     const struct cleanup_recipient *original)
{
    if (cleanup_recipients_contains(&st->final, address))
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

/* One recipient's virtual alias expansion in progress: a work list of
 * addresses, each with its depth, processed in order. */
struct expansion {
    struct cleanup_state *st;
    const struct cleanup_recipient *original;
    struct cleanup_recipients todo;
    long produced;         /* final addresses so far */
    int too_large;         /* over virtual_alias_expansion_limit */
};

static int expansion_final(struct expansion *x, const char *address)
{
    if (++x->produced > x->st->cfg->expansion_limit) {
        x->too_large = 1;
        return -1;
    }
    return add_final(x->st, address, x->original);
}

static int expansion_push(struct expansion *x, const char *address,
                          long depth)
{
    if ((long)x->todo.count > x->st->cfg->expansion_limit) {
        x->too_large = 1;
        return -1;
    }
    if (cleanup_recipients_add(&x->todo, address, NULL, NULL) != 0) {
        cleanup_fail(x->st, CLEANUP_DEFER, 451, "4.3.0",
                     "Error: out of memory");
        return -1;
    }
    x->todo.items[x->todo.count - 1].depth = depth;
    return 0;
}

/* The addresses of one table value; a member that is the address itself
 * stays final instead of being looked up again. */
static int expansion_value(struct expansion *x, const char *address,
                           long depth, char *value)
{
    char *cursor = value;
    for (char *w = strtok_r(cursor, ", \t\r\n", &cursor); w != NULL;
         w = strtok_r(NULL, ", \t\r\n", &cursor)) {
        int rc = strcasecmp(w, address) == 0 ? expansion_final(x, w)
                                             : expansion_push(x, w, depth + 1);
        if (rc != 0)
            return -1;
    }
    return 0;
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
    struct expansion x = { .st = st, .original = original };
    struct buf value, error;
    buf_init(&value, TABLE_VALUE_MAX);
    buf_init(&error, 4096);
    (void)expansion_push(&x, address, 0);
    for (size_t i = 0; i < x.todo.count && !cleanup_failed(st); i++) {
        /* Copied: the work list may move while the value is read. */
        char *a = strdup(x.todo.items[i].address);
        long depth = x.todo.items[i].depth;
        if (a == NULL) {
            cleanup_fail(st, CLEANUP_DEFER, 451, "4.3.0",
                         "Error: out of memory");
            break;
        }
        int rc = cleanup_tables_lookup_address(st, &cfg->virtual_alias, a,
                                               &value, &error);
        int stop = 0;
        if (rc == TABLE_ERROR) {
            (void)lookup_failed(st, "virtual_alias_maps", a, &error);
            stop = 1;
        } else if (rc == TABLE_NOT_FOUND || value.len == 0) {
            stop = expansion_final(&x, a) != 0;
        } else if (depth + 1 > cfg->recursion_limit) {
            log_warn("%s: unreasonable virtual_alias_maps map nesting for "
                     "%s -- message not accepted", st->id, address);
            cleanup_fail(st, CLEANUP_DEFER, 451, "4.3.0",
                         "Error: virtual alias expansion loop");
            stop = 1;
        } else {
            stop = expansion_value(&x, a, depth, value.data) != 0;
        }
        free(a);
        if (stop)
            break;
    }
    if (x.too_large) {
        log_warn("%s: unreasonable virtual_alias_maps map expansion size for "
                 "%s -- message not accepted", st->id, address);
        cleanup_fail(st, CLEANUP_DEFER, 451, "4.3.0",
                     "Error: virtual alias expansion too large");
    }
    cleanup_recipients_free(&x.todo);
    buf_free(&value);
    buf_free(&error);
}

void cleanup_envelope_rewrite(struct cleanup_state *st,
                              const struct cleanup_recipients *list)
{
    struct buf address;
    struct buf qualified;
    buf_init(&address, CLEANUP_ADDRESS_MAX);
    buf_init(&qualified, CLEANUP_ADDRESS_MAX);
    for (size_t i = 0; i < list->count && !cleanup_failed(st); i++) {
        /* The qualified form is what the client gave, for the ORCPT. */
        struct cleanup_recipient r = list->items[i];
        if (buf_set_str(&qualified, r.address) != 0 ||
            cleanup_append_origin(st, &qualified) != 0) {
            log_warn("%s: recipient address too long: %.100s", st->id,
                     r.address);
            cleanup_fail(st, CLEANUP_REJECT, 553, "5.1.3",
                         "Error: recipient address too long");
            break;
        }
        r.address = (char *)buf_cstr(&qualified); /* read only */
        if (buf_set_str(&address, r.address) != 0 ||
            cleanup_rewrite_address(st, 0, &address) != 0)
            break;
        if (strcmp(buf_cstr(&address), r.address) != 0)
            log_debug("%s: %s: canonical %s", st->id, r.address,
                      buf_cstr(&address));
        expand_virtual(st, buf_cstr(&address), &r);
    }
    buf_free(&address);
    buf_free(&qualified);
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
           strcmp(name, "flags") == 0 || strcmp(name, "extract_notify") == 0;
}

void cleanup_envelope_open(struct cleanup_state *st)
{
    const char *sender = record_get_str(&st->envelope, "sender");
    if (buf_set_str(&st->sender, sender) != 0 ||
        cleanup_append_origin(st, &st->sender) != 0 ||
        buf_set_str(&st->sender_original, buf_cstr(&st->sender)) != 0) {
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
