/*
 * anvil_table - the counts that the anvil service keeps for each
 * (service, client address): connections open now, and connections,
 * messages and recipients within the current time unit.
 *
 * Rates use Postfix's fixed windows: the first event after a window has
 * run out starts a new window of rate_unit seconds, and the rate is the
 * number of events since that start.  The clock is the caller's: every
 * call takes "now" in seconds (anvil passes time(NULL); tests pass what
 * they like), and a clock that steps back restarts the window.
 *
 * The table holds at most max_entries entries.  An entry with open
 * connections stays; an idle one (no connection open) is dropped by
 * anvil_table_expire() once its windows have run out, or earlier, oldest
 * idle first, when a new client needs room.  When every entry has open
 * connections, anvil_table_connect() fails (errno ENOSPC): anvil answers
 * that it cannot count this client, and smtpd goes on without limits.
 *
 * The table also keeps the largest values it saw since the last
 * anvil_table_stats_reset() (for anvil's "statistics:" log lines).
 *
 * Usage:
 *     struct anvil_table *t = anvil_table_create(20000, 60);
 *     long count, rate;
 *     struct anvil_entry *e =
 *         anvil_table_connect(t, "smtp", "192.0.2.1", now, &count, &rate);
 *     long mrate = anvil_table_message(t, e, now);
 *     anvil_table_disconnect(t, e, now);
 *     anvil_table_expire(t, now);
 *     anvil_table_free(t);
 */
#ifndef POSTINO_ANVIL_TABLE_H
#define POSTINO_ANVIL_TABLE_H

#include <stddef.h>

/* The key is "service:address"; anvil checks the lengths before. */
#define ANVIL_KEY_MAX 256

struct anvil_table;
struct anvil_entry;

/* One "largest value seen": the value, whose it was, and when. */
struct anvil_max {
    long value;              /* 0: nothing seen */
    char key[ANVIL_KEY_MAX];
    long long when;          /* the caller's clock */
};

struct anvil_stats {
    struct anvil_max count;
    struct anvil_max connect_rate;
    struct anvil_max message_rate;
    struct anvil_max recipient_rate;
    struct anvil_max size;   /* key "" */
};

/* NULL when out of memory or max_entries is 0. */
struct anvil_table *anvil_table_create(size_t max_entries, long rate_unit);
void anvil_table_free(struct anvil_table *t);

/* Counts a new connection; *count and *rate include it.  Returns the
 * entry, valid until the matching anvil_table_disconnect(), or NULL with
 * errno ENOSPC (table full of open connections), EINVAL (key too long)
 * or ENOMEM. */
struct anvil_entry *anvil_table_connect(struct anvil_table *t,
                                        const char *service,
                                        const char *address, long long now,
                                        long *count, long *rate);
/* Count one message or recipient of the entry's client; return the rate. */
long anvil_table_message(struct anvil_table *t, struct anvil_entry *e,
                         long long now);
long anvil_table_recipient(struct anvil_table *t, struct anvil_entry *e,
                           long long now);
/* The connection is gone; e must not be used after this. */
void anvil_table_disconnect(struct anvil_table *t, struct anvil_entry *e,
                            long long now);

/* Drops idle entries whose windows ran out; returns how many. */
size_t anvil_table_expire(struct anvil_table *t, long long now);
size_t anvil_table_size(const struct anvil_table *t);
/* The open connections of (service, address); 0 when unknown. */
long anvil_table_count(const struct anvil_table *t, const char *service,
                       const char *address);

void anvil_table_stats(const struct anvil_table *t, struct anvil_stats *out);
void anvil_table_stats_reset(struct anvil_table *t);

#endif
