/*
 * qmgr.h - the queue manager's shared state and the interfaces between
 * its modules:
 *   qmgr.c          main, triggers, queue scans, timers
 *   qmgr_message.c  a message in memory: load, results, notices, the end
 *   qmgr_deliver.c  transports, destinations, concurrency, delivery jobs
 *   qmgr_conn.c     one non-blocking record conversation (agents, bounce)
 * Everything runs on the one event loop of the server skeleton; nothing
 * blocks on a peer.  Code deep in a callback never schedules directly: it
 * calls qmgr_kick(), which runs the scheduler from a fresh timer.
 */
#ifndef POSTINO_QMGR_H
#define POSTINO_QMGR_H

#include <stddef.h>

#include "address_resolve.h"
#include "buf.h"
#include "config.h"
#include "master_cf.h"
#include "queue_file.h"
#include "record.h"
#include "server.h"

struct qmgr_message;
struct qmgr_conn;
struct qmgr_trigger;
struct qmgr_dest;
struct qmgr_transport;

struct qmgr {
    struct server *srv;
    struct config *cfg;
    struct address_resolver *resolver;
    struct master_cf master;
    int have_master;
    /* Parameters. */
    long ipc_timeout_ms;
    long queue_run_delay;
    long min_backoff, max_backoff;
    long max_lifetime, bounce_lifetime;
    long delay_warning;
    long active_limit, recipient_limit;
    long default_rcpt_limit, default_conc_limit, initial_conc;
    long cohort_limit, default_process_limit;
    /* State. */
    struct qmgr_message *messages;  /* in active/ */
    long message_count;
    long recipient_count;
    struct qmgr_transport *transports;
    struct qmgr_dest **dest_hash;   /* QMGR_DEST_HASH buckets */
    int incoming_more;              /* a scan stopped at a limit */
    int want_incoming, want_deferred, want_deferred_all, want_forget;
    long kick_timer;
    long long last_deferred_scan;   /* CLOCK_MONOTONIC ms */
    struct qmgr_conn *conns;        /* open conversations, for the exit */
    struct qmgr_trigger *triggers;  /* open trigger clients */
};

#define QMGR_DEST_HASH 4096

/* qmgr.c */
void qmgr_kick(struct qmgr *q);

/* ---- qmgr_message.c ---- */

enum qmgr_rcpt_state {
    QMGR_RCPT_WAITING,   /* queued at a destination */
    QMGR_RCPT_BUSY,      /* in a delivery request */
    QMGR_RCPT_DEFERRED,  /* deferred in this pass */
    QMGR_RCPT_FINISHED,  /* sent or bounced, marked done */
};

/* The recipient logs of a message (lib/recipient_log.h), by index. */
enum qmgr_log { QMGR_LOG_DEFER, QMGR_LOG_BOUNCE, QMGR_LOG_TRACE, QMGR_LOGS };

enum qmgr_log_state {
    QMGR_LOG_NONE,       /* no file */
    QMGR_LOG_ENTRIES,    /* a file with entries */
    QMGR_LOG_UNSURE,     /* ask the file system (an empty file, an error) */
};

struct qmgr_rcpt {
    struct qmgr_message *msg;
    char *address;
    char *orcpt;
    char *notify;
    long offset;
    enum qmgr_rcpt_state state;
    char *last_dsn;              /* of the deferral, for expiry */
    char *last_text;
    struct qmgr_dest *dest;
    struct qmgr_rcpt *dest_prev, *dest_next;
};

struct qmgr_message {
    struct qmgr *q;
    struct qmgr_message *prev, *next;
    char id[QUEUE_ID_SIZE];
    struct buf path;             /* "active/ID" */
    int fd;                      /* O_RDWR, for the done marks */
    char *sender;
    char arrival_text[40];
    double arrival;
    char active_text[40];
    double active;
    long content_offset, content_size;
    struct record attrs;         /* the A records */
    struct qmgr_rcpt *rcpts;
    size_t rcpt_count;           /* pending when loaded */
    size_t total_rcpts;          /* R and D records */
    size_t unfinished;           /* pending without a result yet */
    int deferred;                /* a recipient was deferred */
    int notices;                 /* notice requests in flight */
    int notice_failed;
    /* What is known of defer/ID, bounce/ID and trace/ID (enum
     * qmgr_log_state), from the look-up at the load on. */
    unsigned char logs[QMGR_LOGS];
};

/* Result of one recipient (from an agent, or qmgr's own deferral). */
struct qmgr_result {
    const char *status;          /* "sent", "deferred", "bounced" */
    const char *dsn;
    const char *text;
    const char *action;
    const char *remote_mta;
    const char *diagnostic;
    int dsn_passed;              /* sent: the next hop reports success */
};

/* Moves from_dir/ID into active/ and reads it; qmgr_message_load gives
 * -1 when the file vanished or was corrupt (handled and logged), 0 else. */
int qmgr_message_load(struct qmgr *q, const char *from_dir, const char *id);
/* The result of one recipient: logs, done mark, the end of the message
 * once every recipient has one.  log_it: qmgr's own results (the agent
 * logs the others). */
void qmgr_rcpt_result(struct qmgr_rcpt *r, const struct qmgr_result *res,
                      int log_it);
/* Defers a recipient qmgr could not hand over; logs it. */
void qmgr_rcpt_defer(struct qmgr_rcpt *r, const char *dsn, const char *text);
/* Adds the A attributes a delivery request carries.  0 or -1. */
int qmgr_message_add_attrs(const struct qmgr_message *m, struct record *r);
void qmgr_message_free_all(struct qmgr *q);

/* ---- qmgr_deliver.c ---- */

/* Queues r at the destination of (transport, nexthop). */
void qmgr_deliver_enqueue(struct qmgr *q, struct qmgr_rcpt *r,
                          const char *transport, const char *nexthop);
/* Starts what the limits allow. */
void qmgr_deliver_schedule(struct qmgr *q);
/* Forgets every dead destination ("F"). */
void qmgr_deliver_forget_dead(struct qmgr *q);
void qmgr_deliver_free_all(struct qmgr *q);

/* ---- qmgr_conn.c ---- */

struct qmgr_conn;
/* 1: the conversation is over (normal end); 0: go on; -1: malformed. */
typedef int qmgr_conn_record_fn(void *ctx, const struct record *r);
/* failure NULL: normal end; else "lost", "timeout" or "malformed".  The
 * connection is gone after this returns. */
typedef void qmgr_conn_end_fn(void *ctx, const char *failure);
/* Frees ctx when the process exits with the conversation open. */
typedef void qmgr_conn_free_fn(void *ctx);

#define QMGR_CONN_AGAIN 1        /* the listener's backlog is full */

/* Connects to path without blocking.  The conn or NULL: errno, and
 * QMGR_CONN_AGAIN in *again when it is worth trying again shortly. */
struct qmgr_conn *qmgr_conn_open(struct qmgr *q, const char *path,
                                 size_t max_record, qmgr_conn_record_fn *rec,
                                 qmgr_conn_end_fn *end,
                                 qmgr_conn_free_fn *free_ctx, void *ctx,
                                 int *again);
/* Queues a record; -1 when it cannot be encoded. */
int qmgr_conn_send(struct qmgr_conn *c, const struct record *r);
/* Starts the conversation (timer, watch), writing what the socket takes
 * at once. */
void qmgr_conn_start(struct qmgr_conn *c);
/* Queues records encoded beforehand (a whole request at once, or none of
 * it) and, on a started conversation, writes what the socket takes.
 * -1 when it does not fit. */
int qmgr_conn_send_encoded(struct qmgr_conn *c, const struct buf *data);
/* Ends it now without calling end (a request that could not be built). */
void qmgr_conn_abort(struct qmgr_conn *c);
/* At exit: closes every conversation, freeing their contexts; nothing is
 * written (the files in active/ are taken up by the next qmgr). */
void qmgr_conn_abort_all(struct qmgr *q);

#endif
