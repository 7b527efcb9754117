/*
 * qmgr - the queue manager: moves mail from incoming/ (and, when due,
 * deferred/) into active/, resolves each recipient, hands recipients to
 * the delivery agents with the concurrency Postfix's qmgr uses, records
 * the results, asks bounce for notices, and removes or defers each
 * message.  One process (master.cf maxproc 1) on one event loop: it never
 * waits for an agent, for bounce or for a trigger client.
 *
 *     qmgr  unix  n  -  n  300  1  qmgr
 *
 * Triggers on public/qmgr (docs/protocol.md, "Wakeup triggers"): each
 * connection's bytes, up to SERVER_TRIGGER_MAX, until end of file or a
 * few seconds of silence: I scan incoming, D scan deferred with every
 * file due, F forget dead destinations, W the periodic work (incoming,
 * and the due part of deferred when queue_run_delay has passed since the
 * last deferred scan; qmgr's own timer also scans deferred that often).  Unknown bytes are
 * ignored.
 *
 * At start every file in active/ goes back to incoming/ (a qmgr that was
 * killed left it there), then incoming/ and the due part of deferred/
 * are scanned; deferred/ again every queue_run_delay.  A message's next
 * attempt is the mtime of its file in deferred/.  hold/ is never looked
 * at.  The modules: see qmgr.h.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "event.h"
#include "log.h"
#include "qmgr.h"

#define QMGR_TRIGGER_TIMEOUT_MS 5000

void qmgr_kick(struct qmgr *q);

/* ---- scanning the queue ---- */

static int qmgr_room(const struct qmgr *q)
{
    return q->message_count < q->active_limit &&
           q->recipient_count < q->recipient_limit;
}

/* Loads the messages of dir (deferred: only those due, unless all_due).
 * Returns 1 when it stopped at a limit. */
static int qmgr_scan(struct qmgr *q, const char *dir, int due_only)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        log_warn("open %s: %s", dir, strerror(errno));
        return 0;
    }
    time_t now = time(NULL);
    struct text_list names = { NULL, 0 };
    size_t cap = 0;
    long room = q->active_limit - q->message_count;
    int stopped = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!queue_id_valid(e->d_name))
            continue;
        if (due_only) {
            struct stat st;
            if (fstatat(dirfd(d), e->d_name, &st, 0) != 0 ||
                st.st_mtime > now)
                continue;
        }
        if ((long)names.count >= room) {
            stopped = 1;
            break;
        }
        if (names.count == cap) {
            cap = cap ? cap * 2 : 64;
            char **grown = realloc(names.items, cap * sizeof(*grown));
            if (grown == NULL)
                log_fatal("out of memory");
            names.items = grown;
        }
        if ((names.items[names.count] = strdup(e->d_name)) == NULL)
            log_fatal("out of memory");
        names.count++;
    }
    (void)closedir(d);
    for (size_t i = 0; i < names.count; i++) {
        if (!qmgr_room(q)) {
            stopped = 1;
            break;
        }
        (void)qmgr_message_load(q, dir, names.items[i]);
    }
    text_list_free(&names);
    return stopped;
}

/* A killed qmgr left its messages in active/: they start over. */
static void qmgr_recover_active(void)
{
    DIR *d = opendir("active");
    if (d == NULL) {
        log_warn("open active: %s", strerror(errno));
        return;
    }
    struct dirent *e;
    long moved = 0;
    while ((e = readdir(d)) != NULL) {
        if (!queue_id_valid(e->d_name))
            continue;
        struct buf from, to;
        buf_init(&from, 4096);
        buf_init(&to, 4096);
        buf_printf(&from, "active/%s", e->d_name);
        buf_printf(&to, "incoming/%s", e->d_name);
        if (rename(buf_cstr(&from), buf_cstr(&to)) == 0)
            moved++;
        else if (errno != ENOENT)
            log_warn("rename %s to %s: %s", buf_cstr(&from), buf_cstr(&to),
                     strerror(errno));
        buf_free(&from);
        buf_free(&to);
    }
    (void)closedir(d);
    if (moved > 0)
        log_info("moved %ld messages from active back to incoming", moved);
}

/* ---- the work, from a fresh timer ---- */

static void qmgr_run(struct event_loop *loop, void *ctx)
{
    (void)loop;
    struct qmgr *q = ctx;
    q->kick_timer = 0;
    if (q->want_forget) {
        q->want_forget = 0;
        qmgr_deliver_forget_dead(q);
    }
    /* What is loaded goes out first: a delivery agent that has just
     * answered gets its next request before the queue files that came in
     * meanwhile are read (loading each costs a rename, an open and a
     * read), and those are scheduled after. */
    qmgr_deliver_schedule(q);
    if (q->want_deferred) {
        int due_only = !q->want_deferred_all;
        q->want_deferred = q->want_deferred_all = 0;
        q->last_deferred_scan = event_now_ms();
        (void)qmgr_scan(q, "deferred", due_only);
    }
    if (q->want_incoming) {
        q->want_incoming = 0;
        q->incoming_more = qmgr_scan(q, "incoming", 0);
    }
    qmgr_deliver_schedule(q);
}

void qmgr_kick(struct qmgr *q)
{
    if (q->kick_timer > 0)
        return;
    q->kick_timer = event_timer_add(q->srv->loop, 0, qmgr_run, q);
    if (q->kick_timer < 0)
        log_fatal("event_timer_add: %s", strerror(errno));
}

static void qmgr_on_queue_run(struct event_loop *loop, void *ctx)
{
    struct qmgr *q = ctx;
    q->want_deferred = 1;
    q->want_incoming = 1;
    qmgr_kick(q);
    if (event_timer_add(loop, q->queue_run_delay * 1000, qmgr_on_queue_run,
                        q) < 0)
        log_fatal("event_timer_add: %s", strerror(errno));
}

/* ---- trigger clients ---- */

struct qmgr_trigger {
    struct qmgr *q;
    struct qmgr_trigger *prev, *next;  /* q->triggers */
    int fd;
    long timer;
    size_t total;
};

static void qmgr_trigger_close(struct qmgr_trigger *t)
{
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        t->q->triggers = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    if (t->timer > 0)
        (void)event_timer_cancel(t->q->srv->loop, t->timer);
    server_multi_close(t->q->srv, t->fd);
    free(t);
}

static void qmgr_trigger_byte(struct qmgr *q, char c)
{
    switch (c) {
    case 'I': q->want_incoming = 1; break;
    case 'D': q->want_deferred = q->want_deferred_all = 1; break;
    case 'F': q->want_forget = 1; break;
    case 'W':
        q->want_incoming = 1;
        if (event_now_ms() - q->last_deferred_scan >=
            q->queue_run_delay * 1000)
            q->want_deferred = 1;
        break;
    default: return;
    }
    qmgr_kick(q);
}

static void qmgr_trigger_on_timeout(struct event_loop *loop, void *ctx)
{
    (void)loop;
    struct qmgr_trigger *t = ctx;
    t->timer = 0;
    qmgr_trigger_close(t);
}

static void qmgr_trigger_on_read(struct event_loop *loop, int fd,
                                 unsigned events, void *ctx)
{
    (void)loop;
    (void)events;
    struct qmgr_trigger *t = ctx;
    char data[SERVER_TRIGGER_MAX];
    for (;;) {
        ssize_t n = read(fd, data, sizeof(data));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            qmgr_trigger_close(t);
            return;
        }
        for (ssize_t i = 0; i < n && t->total < SERVER_TRIGGER_MAX; i++) {
            t->total++;
            qmgr_trigger_byte(t->q, data[i]);
        }
        if (t->total >= SERVER_TRIGGER_MAX) {
            qmgr_trigger_close(t);
            return;
        }
    }
}

static void qmgr_accept(struct server *srv, int fd)
{
    struct qmgr *q = srv->app;
    struct qmgr_trigger *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        server_multi_close(srv, fd);
        return;
    }
    t->q = q;
    t->fd = fd;
    t->next = q->triggers;
    if (q->triggers != NULL)
        q->triggers->prev = t;
    q->triggers = t;
    t->timer = event_timer_add(srv->loop, QMGR_TRIGGER_TIMEOUT_MS,
                               qmgr_trigger_on_timeout, t);
    if (t->timer < 0 ||
        event_watch(srv->loop, fd, EVENT_READ, qmgr_trigger_on_read, t) != 0) {
        log_warn("watch trigger client: %s", strerror(errno));
        qmgr_trigger_close(t);
    }
}

/* ---- start ---- */

static void qmgr_load_params(struct qmgr *q)
{
    struct config *cfg = q->cfg;
    q->ipc_timeout_ms = config_get_time(cfg, "ipc_timeout") * 1000;
    q->queue_run_delay = config_get_time(cfg, "queue_run_delay");
    q->min_backoff = config_get_time(cfg, "minimal_backoff_time");
    q->max_backoff = config_get_time(cfg, "maximal_backoff_time");
    if (q->max_backoff < q->min_backoff)
        q->max_backoff = q->min_backoff;
    q->max_lifetime = config_get_time(cfg, "maximal_queue_lifetime");
    q->bounce_lifetime = config_get_time(cfg, "bounce_queue_lifetime");
    q->delay_warning = config_get_time(cfg, "delay_warning_time");
    q->active_limit = config_get_int(cfg, "qmgr_message_active_limit");
    q->recipient_limit = config_get_int(cfg, "qmgr_message_recipient_limit");
    q->default_rcpt_limit =
        config_get_int(cfg, "default_destination_recipient_limit");
    q->default_conc_limit =
        config_get_int(cfg, "default_destination_concurrency_limit");
    q->initial_conc = config_get_int(cfg, "initial_destination_concurrency");
    q->cohort_limit =
        config_get_int(cfg, "destination_concurrency_failed_cohort_limit");
    q->default_process_limit = config_get_int(cfg, "default_process_limit");
}

static void qmgr_load_master_cf(struct qmgr *q)
{
    struct buf path;
    buf_init(&path, 4096);
    buf_printf(&path, "%s/master.cf", q->srv->config_dir);
    int rc = master_cf_load(buf_cstr(&path), &q->master);
    if (rc < 0)
        log_warn("%s: %s: every transport gets default_process_limit",
                 buf_cstr(&path), strerror(errno));
    q->have_master = rc >= 0;
    buf_free(&path);
}

/* Before the privilege drop: master.cf may be readable by root only. */
static void qmgr_pre_drop(struct server *srv)
{
    struct qmgr *q = calloc(1, sizeof(*q));
    if (q == NULL)
        log_fatal("out of memory");
    srv->app = q;
    q->srv = srv;
    q->cfg = srv->cfg;
    qmgr_load_master_cf(q);
}

static void qmgr_init(struct server *srv)
{
    struct qmgr *q = srv->app;
    qmgr_load_params(q);
    struct buf error;
    buf_init(&error, 64 * 1024);
    q->resolver = address_resolver_create(q->cfg, &error);
    if (q->resolver == NULL)
        log_fatal("out of memory");
    if (error.len > 0)
        log_warn("%s", buf_cstr(&error));
    buf_free(&error);
    q->dest_hash = calloc(QMGR_DEST_HASH, sizeof(*q->dest_hash));
    if (q->dest_hash == NULL)
        log_fatal("out of memory");
    qmgr_recover_active();
    q->want_incoming = q->want_deferred = 1;
    qmgr_kick(q);
    if (event_timer_add(srv->loop, q->queue_run_delay * 1000,
                        qmgr_on_queue_run, q) < 0)
        log_fatal("event_timer_add: %s", strerror(errno));
}

/* SIGHUP (reload) or the end: everything goes, nothing is written; the
 * files in active/ are taken up again by the next qmgr. */
static void qmgr_pre_exit(struct server *srv)
{
    struct qmgr *q = srv->app;
    qmgr_conn_abort_all(q);
    while (q->triggers != NULL)
        qmgr_trigger_close(q->triggers);
    qmgr_deliver_free_all(q);
    qmgr_message_free_all(q);
    address_resolver_free(q->resolver);
    if (q->have_master)
        master_cf_free(&q->master);
    free(q->dest_hash);
    free(q);
    srv->app = NULL;
}

int main(int argc, char **argv)
{
    static const struct server_spec spec = {
        .mode = SERVER_MULTI,
        .pre_drop = qmgr_pre_drop,
        .init = qmgr_init,
        .accept = qmgr_accept,
        .pre_exit = qmgr_pre_exit,
        .no_idle_exit = 1,
        .no_use_limit = 1,
    };
    return server_main(argc, argv, &spec);
}
