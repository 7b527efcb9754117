/*
 * anvil_table - per-client connection counts and rates for anvil.
 * See anvil_table.h for the contract.
 *
 * Entries live in a chained hash table keyed by "service:address".  Idle
 * entries (no connection open) are also on a list in the order they went
 * idle, so that the oldest idle entry can be found at once when the table
 * is full.  Entries with open connections are never dropped: an anvil
 * session holds a pointer to its entry.
 */
#include "anvil_table.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>


struct anvil_window {
    long long start;
    long count;
};

struct anvil_entry {
    struct anvil_entry *next;       /* hash chain */
    struct anvil_entry *idle_prev;  /* idle list, when connections == 0 */
    struct anvil_entry *idle_next;
    size_t bucket;
    long connections;
    struct anvil_window connects;
    struct anvil_window messages;
    struct anvil_window recipients;
    char key[ANVIL_KEY_MAX];
};

struct anvil_table {
    struct anvil_entry **buckets;
    size_t bucket_count;            /* a power of two */
    size_t size;
    size_t max_entries;
    long rate_unit;
    struct anvil_entry *idle_head;  /* went idle first */
    struct anvil_entry *idle_tail;
    struct anvil_stats stats;
};

/* FNV-1a: short keys, no need for more. */
static size_t anvil_hash(const char *key)
{
    uint64_t h = 14695981039346656037ULL;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return (size_t)h;
}

struct anvil_table *anvil_table_create(size_t max_entries, long rate_unit)
{
    if (max_entries == 0 || rate_unit <= 0) {
        errno = EINVAL;
        return NULL;
    }
    struct anvil_table *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    size_t buckets = 16;
    while (buckets < max_entries && buckets < ((size_t)1 << 24))
        buckets *= 2;
    t->buckets = calloc(buckets, sizeof(*t->buckets));
    if (t->buckets == NULL) {
        free(t);
        return NULL;
    }
    t->bucket_count = buckets;
    t->max_entries = max_entries;
    t->rate_unit = rate_unit;
    return t;
}

void anvil_table_free(struct anvil_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->bucket_count; i++) {
        struct anvil_entry *e = t->buckets[i];
        while (e != NULL) {
            struct anvil_entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(t->buckets);
    free(t);
}

/* key = "service:address", in ANVIL_KEY_MAX bytes with the NUL. */
static int anvil_make_key(char *key, const char *service,
                          const char *address)
{
    size_t slen = strlen(service);
    size_t alen = strlen(address);
    if (slen >= ANVIL_KEY_MAX || alen >= ANVIL_KEY_MAX - slen - 1) {
        errno = EINVAL;
        return -1;
    }
    memcpy(key, service, slen);
    key[slen] = ':';
    memcpy(key + slen + 1, address, alen + 1);
    return 0;
}

static struct anvil_entry *anvil_find(const struct anvil_table *t,
                                      const char *key, size_t bucket)
{
    for (struct anvil_entry *e = t->buckets[bucket]; e != NULL; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static void anvil_idle_push(struct anvil_table *t, struct anvil_entry *e)
{
    e->idle_next = NULL;
    e->idle_prev = t->idle_tail;
    if (t->idle_tail != NULL)
        t->idle_tail->idle_next = e;
    else
        t->idle_head = e;
    t->idle_tail = e;
}

static void anvil_idle_remove(struct anvil_table *t, struct anvil_entry *e)
{
    if (e->idle_prev != NULL)
        e->idle_prev->idle_next = e->idle_next;
    else
        t->idle_head = e->idle_next;
    if (e->idle_next != NULL)
        e->idle_next->idle_prev = e->idle_prev;
    else
        t->idle_tail = e->idle_prev;
    e->idle_prev = e->idle_next = NULL;
}

/* Removes an idle entry from the table and frees it. */
static void anvil_drop(struct anvil_table *t, struct anvil_entry *e)
{
    anvil_idle_remove(t, e);
    struct anvil_entry **link = &t->buckets[e->bucket];
    while (*link != e)
        link = &(*link)->next;
    *link = e->next;
    t->size--;
    free(e);
}

static void anvil_note_max(struct anvil_max *m, long value, const char *key,
                           long long now)
{
    if (value <= m->value)
        return;
    m->value = value;
    size_t len = strlen(key);
    if (len >= sizeof(m->key))
        len = sizeof(m->key) - 1;
    memcpy(m->key, key, len);
    m->key[len] = '\0';
    m->when = now;
}

static int anvil_window_live(const struct anvil_window *w, long long now,
                             long unit)
{
    return w->count > 0 && now >= w->start && now < w->start + unit;
}

static long anvil_window_add(struct anvil_window *w, long long now,
                             long unit)
{
    if (!anvil_window_live(w, now, unit)) {
        w->start = now;
        w->count = 0;
    }
    w->count++;
    return w->count;
}

static struct anvil_entry *anvil_new_entry(struct anvil_table *t,
                                           const char *key, size_t bucket,
                                           long long now)
{
    if (t->size >= t->max_entries) {
        if (t->idle_head == NULL) {
            errno = ENOSPC;
            return NULL;
        }
        anvil_drop(t, t->idle_head);
    }
    struct anvil_entry *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    memcpy(e->key, key, strlen(key) + 1);
    e->bucket = bucket;
    e->next = t->buckets[bucket];
    t->buckets[bucket] = e;
    t->size++;
    anvil_note_max(&t->stats.size, (long)t->size, "", now);
    return e;
}

struct anvil_entry *anvil_table_connect(struct anvil_table *t,
                                        const char *service,
                                        const char *address, long long now,
                                        long *count, long *rate)
{
    char key[ANVIL_KEY_MAX];
    if (anvil_make_key(key, service, address) != 0)
        return NULL;
    size_t bucket = anvil_hash(key) & (t->bucket_count - 1);
    struct anvil_entry *e = anvil_find(t, key, bucket);
    if (e == NULL) {
        e = anvil_new_entry(t, key, bucket, now);
        if (e == NULL)
            return NULL;
    } else if (e->connections == 0) {
        anvil_idle_remove(t, e);
    }
    e->connections++;
    *count = e->connections;
    *rate = anvil_window_add(&e->connects, now, t->rate_unit);
    anvil_note_max(&t->stats.count, *count, key, now);
    anvil_note_max(&t->stats.connect_rate, *rate, key, now);
    return e;
}

long anvil_table_message(struct anvil_table *t, struct anvil_entry *e,
                         long long now)
{
    long rate = anvil_window_add(&e->messages, now, t->rate_unit);
    anvil_note_max(&t->stats.message_rate, rate, e->key, now);
    return rate;
}

long anvil_table_recipient(struct anvil_table *t, struct anvil_entry *e,
                           long long now)
{
    long rate = anvil_window_add(&e->recipients, now, t->rate_unit);
    anvil_note_max(&t->stats.recipient_rate, rate, e->key, now);
    return rate;
}

void anvil_table_disconnect(struct anvil_table *t, struct anvil_entry *e,
                            long long now)
{
    (void)now;
    if (e->connections <= 0)
        return;
    e->connections--;
    if (e->connections == 0)
        anvil_idle_push(t, e);
}

static int anvil_entry_live(const struct anvil_entry *e, long long now,
                            long unit)
{
    return anvil_window_live(&e->connects, now, unit) ||
           anvil_window_live(&e->messages, now, unit) ||
           anvil_window_live(&e->recipients, now, unit);
}

size_t anvil_table_expire(struct anvil_table *t, long long now)
{
    size_t dropped = 0;
    struct anvil_entry *e = t->idle_head;
    while (e != NULL) {
        struct anvil_entry *next = e->idle_next;
        if (!anvil_entry_live(e, now, t->rate_unit)) {
            anvil_drop(t, e);
            dropped++;
        }
        e = next;
    }
    return dropped;
}

size_t anvil_table_size(const struct anvil_table *t)
{
    return t->size;
}

long anvil_table_count(const struct anvil_table *t, const char *service,
                       const char *address)
{
    char key[ANVIL_KEY_MAX];
    if (anvil_make_key(key, service, address) != 0)
        return 0;
    size_t bucket = anvil_hash(key) & (t->bucket_count - 1);
    const struct anvil_entry *e = anvil_find(t, key, bucket);
    return e != NULL ? e->connections : 0;
}

void anvil_table_stats(const struct anvil_table *t, struct anvil_stats *out)
{
    *out = t->stats;
}

void anvil_table_stats_reset(struct anvil_table *t)
{
    memset(&t->stats, 0, sizeof(t->stats));
}
