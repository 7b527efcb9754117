/*
 * recipient_log - the per-message logs of recipient results next to the
 * queue: defer/ID, bounce/ID and trace/ID (docs/queue-format.md,
 * "Recipient logs").  qmgr appends; bounce and showq read.
 *
 * Each entry is one record of the record protocol, appended with O_APPEND
 * and fsynced before the append returns, so an entry that was reported
 * written survives a crash.  A reader reads the whole file and stops at a
 * record cut short by a crash.
 *
 * Usage:
 *     struct recipient_log_entry e = { .recipient = "a@b", .status = "5.1.1",
 *         .action = "failed", .text = "unknown user", .time = now };
 *     if (recipient_log_append("bounce", queue_id, &e, &error) != 0) ...
 *
 *     struct recipient_log log;
 *     if (recipient_log_read(&log, "bounce", queue_id, &error) != 0) ...
 *     for (size_t i = 0; i < log.count; i++) use(&log.entries[i]);
 *     recipient_log_free(&log);
 *
 *     recipient_log_remove("bounce", queue_id);   (ENOENT is fine)
 */
#ifndef POSTINO_RECIPIENT_LOG_H
#define POSTINO_RECIPIENT_LOG_H

#include <stddef.h>

#include "buf.h"

#define RECIPIENT_LOG_MAX (64 * 1024 * 1024) /* bytes read of one log */
#define RECIPIENT_LOG_ENTRY_MAX (64 * 1024)

/* One entry; every string may be NULL (absent) except as noted.  Entries
 * returned by recipient_log_read own their strings. */
struct recipient_log_entry {
    char *recipient;   /* required; "" for the action=warned marker */
    char *orcpt;
    char *notify;
    long offset;       /* of the R record; -1 unknown */
    char *status;      /* "5.1.1" */
    char *action;      /* failed, delayed, delivered, expanded, relayed,
                          warned */
    char *text;
    char *remote_mta;
    char *diagnostic;
    long time;         /* seconds since the epoch */
};

struct recipient_log {
    struct recipient_log_entry *entries;
    size_t count;
    int truncated;     /* the last record was cut short */
};

/* log_dir is "defer", "bounce" or "trace" (relative to the queue
 * directory, the current directory of every daemon).  0, or -1 with errno
 * and the reason in error. */
int recipient_log_append(const char *log_dir, const char *queue_id,
                         const struct recipient_log_entry *entry,
                         struct buf *error);
/* Reads the whole log.  A missing file is an empty log (0).  -1 with the
 * reason in error on a read error or a malformed entry. */
int recipient_log_read(struct recipient_log *log, const char *log_dir,
                       const char *queue_id, struct buf *error);
void recipient_log_free(struct recipient_log *log);
/* The last entry of recipient (defer logs: the one that counts), or NULL. */
const struct recipient_log_entry *
recipient_log_last(const struct recipient_log *log, const char *recipient);
/* True when the log has an entry with action=warned. */
int recipient_log_has_warning(const struct recipient_log *log);
/* Removes the log; 0 also when there was none, -1 with errno otherwise. */
int recipient_log_remove(const char *log_dir, const char *queue_id);
/* True when the log exists and is not empty. */
int recipient_log_exists(const char *log_dir, const char *queue_id);
/* 0 when there is no log, 1 when it has entries, -1 when that cannot be
 * told: an empty file (no entry yet, or a crash in the first append), or
 * an error of stat (errno). */
int recipient_log_probe(const char *log_dir, const char *queue_id);

#endif
