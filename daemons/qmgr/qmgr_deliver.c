/*
 * qmgr_deliver - the scheduler: transports, destinations, and the
 * delivery requests to the agents (docs/protocol.md, "Delivery agents").
 * Interface: qmgr.h.
 *
 * A destination is (transport, nexthop), or (transport, nexthop,
 * recipient) for a transport whose recipient limit is 1 (local).  Its
 * recipients wait in arrival order; one request takes up to the
 * transport's recipient limit of them, all of one message.  Limits:
 *   - per transport, the number of requests at once: the service's
 *     master.cf maxproc ("-" or 0: default_process_limit);
 *   - per destination, a concurrency window, as Postfix's: it starts at
 *     initial_destination_concurrency, grows by 1/window after each
 *     request that went well, up to TRANSPORT_destination_concurrency_limit,
 *     and shrinks by 1/window (never under 1) after a failure: a lost
 *     connection, a timeout, a malformed reply, or a result with
 *     destination_failure=1.  Failures in a row add 1/window each to a
 *     failed-cohort count; when that reaches
 *     destination_concurrency_failed_cohort_limit the destination is
 *     dead: its recipients are deferred at once ("delivery temporarily
 *     suspended: REASON") for minimal_backoff_time, or until "F".
 * Destinations of a transport are served round-robin, so one slow or dead
 * destination holds at most its own window of the transport's processes.
 *
 * Each connection to an agent is a link.  Its agent says with each
 * status=done whether it takes another request (more=1); once a
 * transport's agents say that, a link gets the destination's next requests
 * (up to QMGR_LINK_QUEUE) queued behind the one in progress, so the agent
 * goes on without waiting for qmgr, and local and virtual make several
 * deliveries durable with one commit.  The window counts links, not
 * requests; a queued request that the link ends without a result of it
 * goes back to the head of the line.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "delivery_request.h"
#include "event.h"
#include "log.h"
#include "qmgr.h"
#include "text.h"

#define QMGR_RETRY_CONNECT_MS 1000

struct qmgr_transport {
    struct qmgr *q;
    struct qmgr_transport *next;
    char *name;
    long process_limit, rcpt_limit, conc_limit;
    long busy;
    struct qmgr_dest **dests;
    size_t count, cap, cursor;
    int retry_pending;
    int agent_pipelines;         /* its agents said more=0 or more=1 */
};

struct qmgr_dest {
    struct qmgr_dest *hash_next;
    struct qmgr_transport *t;
    char *key;
    char *nexthop;
    struct qmgr_rcpt *head, *tail;
    long waiting;
    long busy;                   /* links: deliveries at once */
    struct qmgr_link *links;
    double window;
    double fail_cohorts;
    long long dead_until;        /* CLOCK_MONOTONIC ms, 0: alive */
    struct buf dead_reason;
};

/* The most requests queued behind the one in progress on a link. */
#define QMGR_LINK_QUEUE 3

/* One connection to an agent of d's transport: the request the agent
 * works on (head; NULL while the link waits for the scheduler), and at
 * most QMGR_LINK_QUEUE more for the same destination, sent behind it
 * (queued, oldest first). */
struct qmgr_link {
    struct qmgr *q;
    struct qmgr_dest *dest;
    struct qmgr_link *dest_next;  /* d->links */
    struct qmgr_conn *conn;
    struct qmgr_job *head;
    struct qmgr_job *queued[QMGR_LINK_QUEUE];
    size_t queued_count;
    int last;                    /* the agent said more=0 */
};

struct qmgr_job {
    struct qmgr *q;
    struct qmgr_dest *dest;
    char id[QUEUE_ID_SIZE];
    struct qmgr_rcpt **rcpts;
    char *answered;
    size_t count;
    int dest_failure;
    struct buf failure_text;     /* of the destination_failure result */
    int any_result;
};

static char *qmgr_dup(const char *s)
{
    char *copy = strdup(s);
    if (copy == NULL)
        log_fatal("out of memory");
    return copy;
}

/* ---- transports ---- */

/* TRANSPORT_SUFFIX, else the default: a declared parameter by its getter,
 * another (smtp_destination_concurrency_limit...) by its raw value. */
static long qmgr_transport_param(struct qmgr *q, const char *transport,
                                 const char *suffix, long fallback)
{
    struct buf name;
    buf_init(&name, 4096);
    buf_printf(&name, "%s_%s", transport, suffix);
    long value = fallback;
    if (config_param_lookup(buf_cstr(&name)) != NULL) {
        value = config_get_int(q->cfg, buf_cstr(&name));
    } else {
        const char *raw = config_get_raw(q->cfg, buf_cstr(&name));
        if (raw != NULL && text_parse_long(raw, 1, 100000, &value) != 0) {
            log_warn("bad %s = %s: using %ld", buf_cstr(&name), raw,
                     fallback);
            value = fallback;
        }
    }
    buf_free(&name);
    return value;
}

static long qmgr_process_limit(struct qmgr *q, const char *transport)
{
    if (!q->have_master)
        return q->default_process_limit;
    for (size_t i = 0; i < q->master.count; i++) {
        const struct master_service_entry *e = &q->master.services[i];
        if (e->type == MASTER_SERVICE_UNIX && strcmp(e->name, transport) == 0)
            return e->max_process > 0 ? e->max_process
                                      : q->default_process_limit;
    }
    return q->default_process_limit;
}

static struct qmgr_transport *qmgr_transport_get(struct qmgr *q,
                                                 const char *name)
{
    for (struct qmgr_transport *t = q->transports; t != NULL; t = t->next)
        if (strcmp(t->name, name) == 0)
            return t;
    struct qmgr_transport *t = calloc(1, sizeof(*t));
    if (t == NULL)
        log_fatal("out of memory");
    t->q = q;
    t->name = qmgr_dup(name);
    t->process_limit = qmgr_process_limit(q, name);
    t->rcpt_limit = qmgr_transport_param(q, name, "destination_recipient_limit",
                                         q->default_rcpt_limit);
    t->conc_limit = qmgr_transport_param(
        q, name, "destination_concurrency_limit", q->default_conc_limit);
    t->next = q->transports;
    q->transports = t;
    return t;
}

/* ---- destinations ---- */

static size_t qmgr_hash(const char *key)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % QMGR_DEST_HASH;
}

static void qmgr_dest_revive(struct qmgr *q, struct qmgr_dest *d)
{
    d->dead_until = 0;
    d->window = (double)q->initial_conc;
    if (d->window > (double)d->t->conc_limit)
        d->window = (double)d->t->conc_limit;
    d->fail_cohorts = 0;
}

static struct qmgr_dest *qmgr_dest_get(struct qmgr *q,
                                       struct qmgr_transport *t,
                                       const char *key, const char *nexthop)
{
    size_t h = qmgr_hash(key);
    for (struct qmgr_dest *d = q->dest_hash[h]; d != NULL; d = d->hash_next)
        if (strcmp(d->key, key) == 0)
            return d;
    struct qmgr_dest *d = calloc(1, sizeof(*d));
    if (d == NULL)
        log_fatal("out of memory");
    d->t = t;
    d->key = qmgr_dup(key);
    d->nexthop = qmgr_dup(nexthop);
    buf_init(&d->dead_reason, DELIVERY_RECORD_MAX);
    qmgr_dest_revive(q, d);
    d->hash_next = q->dest_hash[h];
    q->dest_hash[h] = d;
    if (t->count == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct qmgr_dest **grown = realloc(t->dests, cap * sizeof(*grown));
        if (grown == NULL)
            log_fatal("out of memory");
        t->dests = grown;
        t->cap = cap;
    }
    t->dests[t->count++] = d;
    return d;
}

/* Removes t->dests[i] (idle, alive) from t and the hash. */
static void qmgr_dest_drop(struct qmgr *q, struct qmgr_transport *t, size_t i)
{
    struct qmgr_dest *d = t->dests[i];
    struct qmgr_dest **p = &q->dest_hash[qmgr_hash(d->key)];
    while (*p != d)
        p = &(*p)->hash_next;
    *p = d->hash_next;
    t->dests[i] = t->dests[--t->count];
    if (t->cursor >= t->count)
        t->cursor = 0;
    free(d->key);
    free(d->nexthop);
    buf_free(&d->dead_reason);
    free(d);
}

static void qmgr_dest_append(struct qmgr_dest *d, struct qmgr_rcpt *r)
{
    r->dest = d;
    r->state = QMGR_RCPT_WAITING;
    r->dest_next = NULL;
    r->dest_prev = d->tail;
    if (d->tail != NULL)
        d->tail->dest_next = r;
    else
        d->head = r;
    d->tail = r;
    d->waiting++;
}

static void qmgr_dest_prepend(struct qmgr_dest *d, struct qmgr_rcpt *r)
{
    r->state = QMGR_RCPT_WAITING;
    r->dest_prev = NULL;
    r->dest_next = d->head;
    if (d->head != NULL)
        d->head->dest_prev = r;
    else
        d->tail = r;
    d->head = r;
    d->waiting++;
}

static void qmgr_dest_unlink(struct qmgr_dest *d, struct qmgr_rcpt *r)
{
    if (r->dest_prev != NULL)
        r->dest_prev->dest_next = r->dest_next;
    else
        d->head = r->dest_next;
    if (r->dest_next != NULL)
        r->dest_next->dest_prev = r->dest_prev;
    else
        d->tail = r->dest_prev;
    r->dest_prev = r->dest_next = NULL;
    d->waiting--;
}

static int qmgr_dest_dead(struct qmgr *q, struct qmgr_dest *d)
{
    if (d->dead_until == 0)
        return 0;
    if (event_now_ms() >= d->dead_until) {
        qmgr_dest_revive(q, d);
        return 0;
    }
    return 1;
}

static void qmgr_defer_suspended(struct qmgr_dest *d, struct qmgr_rcpt *r)
{
    struct buf text;
    buf_init(&text, DELIVERY_RECORD_MAX);
    buf_printf(&text, "delivery temporarily suspended: %s",
               buf_cstr(&d->dead_reason));
    qmgr_rcpt_defer(r, "4.3.0", buf_cstr(&text));
    buf_free(&text);
}

/* A transport is a master.cf service name: it must stay under private/. */
static int qmgr_transport_name_ok(const char *name)
{
    if (name[0] == '\0' || name[0] == '.' || strlen(name) > 100)
        return 0;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' &&
            *p != '.')
            return 0;
    return 1;
}

void qmgr_deliver_enqueue(struct qmgr *q, struct qmgr_rcpt *r,
                          const char *transport, const char *nexthop)
{
    if (!qmgr_transport_name_ok(transport)) {
        log_warn("%s: to=<%s>: bad transport name \"%s\" (transport_maps "
                 "or *_transport)", r->msg->id, r->address, transport);
        qmgr_rcpt_defer(r, "4.3.5", "mail transport unavailable");
        return;
    }
    struct qmgr_transport *t = qmgr_transport_get(q, transport);
    struct buf key;
    buf_init(&key, BUF_LIMIT_MAX);
    buf_printf(&key, "%s\n%s", transport, nexthop);
    if (t->rcpt_limit == 1)
        buf_printf(&key, "\n%s", r->address);
    struct qmgr_dest *d = qmgr_dest_get(q, t, buf_cstr(&key), nexthop);
    buf_free(&key);
    r->dest = d;
    if (qmgr_dest_dead(q, d)) {
        qmgr_defer_suspended(d, r);
        return;
    }
    qmgr_dest_append(d, r);
    qmgr_kick(q);
}

/* ---- concurrency feedback ---- */

static void qmgr_dest_success(struct qmgr_dest *d)
{
    d->fail_cohorts = 0;
    d->window += 1.0 / d->window;
    if (d->window > (double)d->t->conc_limit)
        d->window = (double)d->t->conc_limit;
}

static void qmgr_dest_failure(struct qmgr *q, struct qmgr_dest *d,
                              const char *reason)
{
    d->fail_cohorts += 1.0 / d->window;
    d->window -= 1.0 / d->window;
    if (d->window < 1)
        d->window = 1;
    if (q->cohort_limit == 0 || d->fail_cohorts < (double)q->cohort_limit)
        return;
    d->dead_until = event_now_ms() + q->min_backoff * 1000;
    buf_set_str(&d->dead_reason, reason);
    log_info("%s: destination %s is dead for %lds: %s", d->t->name,
             d->nexthop, q->min_backoff, reason);
    while (d->head != NULL) {
        struct qmgr_rcpt *r = d->head;
        qmgr_dest_unlink(d, r);
        qmgr_defer_suspended(d, r);
    }
}

void qmgr_deliver_forget_dead(struct qmgr *q)
{
    for (struct qmgr_transport *t = q->transports; t != NULL; t = t->next)
        for (size_t i = 0; i < t->count; i++)
            if (t->dests[i]->dead_until != 0)
                qmgr_dest_revive(q, t->dests[i]);
}

/* ---- one delivery request ---- */

static void qmgr_job_free(struct qmgr_job *job)
{
    if (job == NULL)
        return;
    free(job->rcpts);
    free(job->answered);
    buf_free(&job->failure_text);
    free(job);
}

/* Takes the first waiting recipients of d (one message) into a request. */
static struct qmgr_job *qmgr_job_take(struct qmgr *q, struct qmgr_dest *d)
{
    size_t limit = (size_t)d->t->rcpt_limit;
    if (limit > (size_t)d->waiting)
        limit = (size_t)d->waiting;
    struct qmgr_job *job = calloc(1, sizeof(*job));
    if (job == NULL ||
        (job->rcpts = calloc(limit, sizeof(*job->rcpts))) == NULL ||
        (job->answered = calloc(limit, 1)) == NULL)
        log_fatal("out of memory");
    job->q = q;
    job->dest = d;
    buf_init(&job->failure_text, DELIVERY_RECORD_MAX);
    struct qmgr_message *m = d->head->msg;
    (void)text_copy(job->id, sizeof(job->id), m->id);
    for (struct qmgr_rcpt *r = d->head; r != NULL && job->count < limit;) {
        struct qmgr_rcpt *next = r->dest_next;
        if (r->msg == m) {
            qmgr_dest_unlink(d, r);
            r->state = QMGR_RCPT_BUSY;
            job->rcpts[job->count++] = r;
        }
        r = next;
    }
    return job;
}

/* A request no agent began: its recipients wait again, first in line. */
static void qmgr_job_return(struct qmgr_job *job)
{
    struct qmgr *q = job->q;
    for (size_t i = job->count; i > 0; i--)
        qmgr_dest_prepend(job->dest, job->rcpts[i - 1]);
    qmgr_job_free(job);
    qmgr_kick(q);
}

/* The request is over: recipients without a result are deferred with
 * text, and the destination learns how it went. */
static void qmgr_job_end(struct qmgr_job *job, const char *failure,
                         const char *text)
{
    struct qmgr *q = job->q;
    struct qmgr_dest *d = job->dest;
    size_t unanswered = 0;
    for (size_t i = 0; i < job->count; i++)
        unanswered += !job->answered[i];
    if (unanswered > 0 && failure != NULL)
        log_warn("%s: %s", job->id, failure);
    for (size_t i = 0; i < job->count; i++) {
        if (job->answered[i])
            continue;
        job->answered[i] = 1;
        qmgr_rcpt_defer(job->rcpts[i], "4.3.0", text);
    }
    if (unanswered > 0)
        qmgr_dest_failure(q, d, text);
    else if (job->dest_failure)
        qmgr_dest_failure(q, d, buf_cstr(&job->failure_text));
    else if (job->any_result)
        qmgr_dest_success(d);
    qmgr_job_free(job);
    qmgr_kick(q);
}

/* One result of the request.  0 or -1 (malformed). */
static int qmgr_job_on_result(struct qmgr_job *job, const char *status,
                              const struct record *r)
{
    long index, failure = 0, dsn_passed = 0;
    const char *dsn = record_get_str(r, "dsn");
    const char *text = record_get_str(r, "text");
    if (record_get_long(r, "index", &index) != 0 || index < 0 ||
        (size_t)index >= job->count || job->answered[index] ||
        dsn == NULL || (dsn[0] != '2' && dsn[0] != '4' && dsn[0] != '5') ||
        (strcmp(status, "sent") != 0 && strcmp(status, "deferred") != 0 &&
         strcmp(status, "bounced") != 0))
        return -1;
    if (record_find(r, "destination_failure") != NULL &&
        record_get_long(r, "destination_failure", &failure) != 0)
        return -1;
    if (record_find(r, "dsn_passed") != NULL &&
        record_get_long(r, "dsn_passed", &dsn_passed) != 0)
        return -1;
    struct qmgr_result res = {
        .status = status, .dsn = dsn, .text = text != NULL ? text : "",
        .action = record_get_str(r, "action"),
        .remote_mta = record_get_str(r, "remote_mta"),
        .diagnostic = record_get_str(r, "diagnostic"),
        .dsn_passed = dsn_passed != 0,
    };
    if (failure) {
        job->dest_failure = 1;
        buf_set_str(&job->failure_text, res.text);
    }
    job->any_result = 1;
    job->answered[index] = 1;
    /* The last result may end the message: job->rcpts are not used after
     * the last one. */
    qmgr_rcpt_result(job->rcpts[index], &res, 0);
    return 0;
}

static int qmgr_job_envelope(struct qmgr_job *job, struct qmgr_message *m,
                             struct record *r)
{
    char dispatch[40];
    double now = delivery_time_now();
    struct buf t;
    buf_init(&t, sizeof(dispatch) - 1);
    buf_printf(&t, "%.6f", now);
    (void)text_copy(dispatch, sizeof(dispatch), buf_cstr(&t));
    buf_free(&t);
    int rc = record_add_str(r, "request", "deliver");
    if (rc == RECORD_OK) rc = record_add_str(r, "queue_id", m->id);
    if (rc == RECORD_OK) rc = record_add_str(r, "queue_file",
                                             buf_cstr(&m->path));
    if (rc == RECORD_OK) rc = record_add_long(r, "content_offset",
                                              m->content_offset);
    if (rc == RECORD_OK) rc = record_add_long(r, "content_size",
                                              m->content_size);
    if (rc == RECORD_OK) rc = record_add_str(r, "sender", m->sender);
    if (rc == RECORD_OK) rc = record_add_str(r, "nexthop",
                                             job->dest->nexthop);
    if (rc == RECORD_OK) rc = record_add_str(r, "arrival_time",
                                             m->arrival_text);
    if (rc == RECORD_OK) rc = record_add_str(r, "active_time",
                                             m->active_text);
    if (rc == RECORD_OK) rc = record_add_str(r, "dispatch_time", dispatch);
    if (rc == RECORD_OK && qmgr_message_add_attrs(m, r) != 0)
        rc = RECORD_MALFORMED;
    if (rc == RECORD_OK) rc = record_add_long(r, "recipient_count",
                                              (long)job->count);
    return rc;
}

static int qmgr_job_recipient(size_t i, const struct qmgr_rcpt *rcpt,
                              struct record *r)
{
    int rc = record_add_str(r, "request", "recipient");
    if (rc == RECORD_OK) rc = record_add_long(r, "index", (long)i);
    if (rc == RECORD_OK) rc = record_add_str(r, "address", rcpt->address);
    if (rc == RECORD_OK && rcpt->orcpt != NULL)
        rc = record_add_str(r, "orcpt", rcpt->orcpt);
    if (rc == RECORD_OK && rcpt->notify != NULL)
        rc = record_add_str(r, "notify", rcpt->notify);
    if (rc == RECORD_OK) rc = record_add_long(r, "offset", rcpt->offset);
    return rc;
}

/* The whole request, encoded.  0 or -1. */
static int qmgr_job_encode(struct qmgr_job *job, struct buf *out)
{
    struct qmgr_message *m = job->rcpts[0]->msg;
    struct record r;
    record_init(&r);
    int rc = qmgr_job_envelope(job, m, &r) == RECORD_OK &&
             record_encode(&r, out) == RECORD_OK ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < job->count; i++) {
        record_reset(&r);
        rc = qmgr_job_recipient(i, job->rcpts[i], &r) == RECORD_OK &&
             record_encode(&r, out) == RECORD_OK ? 0 : -1;
    }
    record_reset(&r);
    if (rc == 0)
        rc = record_add_str(&r, "request", "end") == RECORD_OK &&
             record_encode(&r, out) == RECORD_OK ? 0 : -1;
    record_free(&r);
    return rc;
}

/* ---- links: connections to the agents ---- */

static struct qmgr_link *qmgr_link_new(struct qmgr *q, struct qmgr_dest *d)
{
    struct qmgr_link *link = calloc(1, sizeof(*link));
    if (link == NULL)
        log_fatal("out of memory");
    link->q = q;
    link->dest = d;
    link->dest_next = d->links;
    d->links = link;
    d->busy++;
    d->t->busy++;
    return link;
}

/* Forgets the link (its connection is gone, and no request is in the
 * agent's hands), returning a queued request the agent never told a
 * result of (after more=0 it never began it). */
static void qmgr_link_release(struct qmgr_link *link)
{
    if (link->head != NULL)
        log_panic("%s: link released during a delivery", link->head->id);
    struct qmgr *q = link->q;
    struct qmgr_dest *d = link->dest;
    struct qmgr_link **p = &d->links;
    while (*p != link)
        p = &(*p)->dest_next;
    *p = link->dest_next;
    d->busy--;
    d->t->busy--;
    /* The newest first, so that the oldest ends up at the head. */
    while (link->queued_count > 0)
        qmgr_job_return(link->queued[--link->queued_count]);
    free(link);
    qmgr_kick(q);
}

/* At exit, with the connection open: nothing is written. */
static void qmgr_link_free(void *ctx)
{
    struct qmgr_link *link = ctx;
    qmgr_job_free(link->head);
    for (size_t i = 0; i < link->queued_count; i++)
        qmgr_job_free(link->queued[i]);
    free(link);
}

/* status=done of the head request.  0: the link goes on, 1: it ends. */
static int qmgr_link_on_done(struct qmgr_link *link, const struct record *r)
{
    long more = -1;
    if (record_find(r, "more") != NULL &&
        (record_get_long(r, "more", &more) != 0 || more < 0 || more > 1))
        return -1;
    struct qmgr_job *job = link->head;
    for (size_t i = 0; i < job->count; i++)
        if (!job->answered[i])
            return -1;   /* a result for every recipient comes first */
    link->head = NULL;
    if (more >= 0)
        link->dest->t->agent_pipelines = 1;
    if (more != 1)
        link->last = 1;
    qmgr_job_end(job, NULL, NULL);
    if (link->last)
        return 1;     /* a queued request is returned as the link ends */
    /* The agent reads the queued request now, or waits for the
     * scheduler, which gives it one or closes the link. */
    if (link->queued_count > 0) {
        link->head = link->queued[0];
        link->queued_count--;
        memmove(link->queued, link->queued + 1,
                link->queued_count * sizeof(link->queued[0]));
    }
    return 0;
}

static int qmgr_link_on_record(void *ctx, const struct record *r)
{
    struct qmgr_link *link = ctx;
    const char *status = record_get_str(r, "status");
    if (status == NULL || link->head == NULL)
        return -1;
    if (strcmp(status, "done") == 0)
        return qmgr_link_on_done(link, r);
    return qmgr_job_on_result(link->head, status, r);
}

static void qmgr_link_on_end(void *ctx, const char *failure)
{
    struct qmgr_link *link = ctx;
    link->conn = NULL;
    struct qmgr_job *job = link->head;
    link->head = NULL;
    if (job == NULL) {
        qmgr_link_release(link);
        return;
    }
    const char *transport = link->dest->t->name;
    struct buf warning, text;
    buf_init(&warning, 4096);
    buf_init(&text, 4096);
    if (failure != NULL && strcmp(failure, "timeout") == 0) {
        buf_printf(&warning, "delivery agent %s timed out", transport);
        buf_set_str(&text, "delivery agent timed out");
    } else {
        if (failure != NULL && strcmp(failure, "malformed") == 0)
            buf_printf(&warning, "malformed reply from %s", transport);
        else
            buf_printf(&warning, "lost connection with %s", transport);
        buf_printf(&text, "lost connection with %s", transport);
    }
    qmgr_job_end(job, buf_cstr(&warning), buf_cstr(&text));
    buf_free(&warning);
    buf_free(&text);
    qmgr_link_release(link);
}

/* Sends job on the link, as its head or queued behind the head.  A
 * request that cannot be encoded is ended at once. */
static void qmgr_link_send(struct qmgr_link *link, struct qmgr_job *job)
{
    struct buf data;
    buf_init(&data, BUF_LIMIT_MAX);
    if (qmgr_job_encode(job, &data) != 0 ||
        qmgr_conn_send_encoded(link->conn, &data) != 0) {
        qmgr_job_end(job, "delivery request too large",
                     "delivery request too large");
    } else if (link->head == NULL) {
        link->head = job;
    } else {
        link->queued[link->queued_count++] = job;
    }
    buf_free(&data);
}

static void qmgr_on_retry(struct event_loop *loop, void *ctx)
{
    (void)loop;
    struct qmgr_transport *t = ctx;
    t->retry_pending = 0;
    qmgr_kick(t->q);
}

/* Can d have one more request on its links now? */
static int qmgr_dest_wants_more(struct qmgr *q, struct qmgr_dest *d)
{
    return d->waiting > 0 && !qmgr_dest_dead(q, d) &&
           d->busy <= (long)d->window;
}

/* Queues the next requests of the link's destination behind its head,
 * when the agents of the transport take more than one a connection, and
 * the destination cannot have another connection now (its window is
 * full, or the transport's processes are all busy): new connections
 * first, so that a burst is delivered in parallel as far as allowed. */
static void qmgr_link_top_up(struct qmgr_link *link)
{
    struct qmgr_dest *d = link->dest;
    while (link->head != NULL && link->queued_count < QMGR_LINK_QUEUE &&
           !link->last && d->t->agent_pipelines &&
           (d->busy >= (long)d->window ||
            d->t->busy >= d->t->process_limit) &&
           qmgr_dest_wants_more(link->q, d))
        qmgr_link_send(link, qmgr_job_take(link->q, d));
}

/* A request of d on a new connection.  0 started (or failed and
 * handled), 1: try later (backlog full). */
static int qmgr_link_start(struct qmgr *q, struct qmgr_dest *d)
{
    struct qmgr_transport *t = d->t;
    struct buf path;
    buf_init(&path, 4096);
    buf_printf(&path, "private/%s", t->name);
    struct qmgr_link *link = qmgr_link_new(q, d);
    int again;
    link->conn = qmgr_conn_open(q, buf_cstr(&path), DELIVERY_RECORD_MAX,
                                qmgr_link_on_record, qmgr_link_on_end,
                                qmgr_link_free, link, &again);
    if (link->conn == NULL && again) {
        qmgr_link_release(link);
        buf_free(&path);
        return 1;
    }
    struct qmgr_job *job = qmgr_job_take(q, d);
    if (link->conn == NULL) {
        struct buf text;
        buf_init(&text, 4096);
        buf_printf(&text, "connect to %s: %s", buf_cstr(&path),
                   strerror(errno));
        qmgr_job_end(job, buf_cstr(&text), buf_cstr(&text));
        buf_free(&text);
        qmgr_link_release(link);
    } else {
        qmgr_link_send(link, job);
        if (link->head == NULL) {
            qmgr_conn_abort(link->conn);
            qmgr_link_release(link);
        } else {
            qmgr_conn_start(link->conn);
            qmgr_link_top_up(link);
        }
    }
    buf_free(&path);
    return 0;
}

/* The links of d: an idle one gets the next request or is closed; each
 * busy one gets the next requests queued behind its head. */
static void qmgr_dest_feed_links(struct qmgr *q, struct qmgr_dest *d)
{
    struct qmgr_link *link = d->links;
    while (link != NULL) {
        struct qmgr_link *next = link->dest_next;
        if (link->head == NULL && !qmgr_dest_wants_more(q, d)) {
            qmgr_conn_abort(link->conn);
            qmgr_link_release(link);
        } else {
            if (link->head == NULL)
                qmgr_link_send(link, qmgr_job_take(q, d));
            qmgr_link_top_up(link);
        }
        link = next;
    }
}

/* ---- the scheduler ---- */

static struct qmgr_dest *qmgr_next_dest(struct qmgr *q,
                                        struct qmgr_transport *t)
{
    for (size_t n = 0; n < t->count; n++) {
        size_t i = (t->cursor + n) % t->count;
        struct qmgr_dest *d = t->dests[i];
        if (d->waiting == 0 || qmgr_dest_dead(q, d) ||
            d->busy >= (long)d->window)
            continue;
        t->cursor = (i + 1) % t->count;
        return d;
    }
    return NULL;
}

static void qmgr_transport_gc(struct qmgr *q, struct qmgr_transport *t)
{
    for (size_t i = t->count; i > 0; i--) {
        struct qmgr_dest *d = t->dests[i - 1];
        if (d->waiting == 0 && d->busy == 0 && !qmgr_dest_dead(q, d))
            qmgr_dest_drop(q, t, i - 1);
    }
}

void qmgr_deliver_schedule(struct qmgr *q)
{
    for (struct qmgr_transport *t = q->transports; t != NULL; t = t->next) {
        qmgr_transport_gc(q, t);
        for (size_t i = 0; i < t->count; i++)
            if (t->dests[i]->links != NULL)
                qmgr_dest_feed_links(q, t->dests[i]);
        while (t->busy < t->process_limit) {
            struct qmgr_dest *d = qmgr_next_dest(q, t);
            if (d == NULL)
                break;
            if (qmgr_link_start(q, d) != 0) {
                if (!t->retry_pending &&
                    event_timer_add(q->srv->loop, QMGR_RETRY_CONNECT_MS,
                                    qmgr_on_retry, t) > 0)
                    t->retry_pending = 1;
                break;
            }
        }
    }
}

void qmgr_deliver_free_all(struct qmgr *q)
{
    while (q->transports != NULL) {
        struct qmgr_transport *t = q->transports;
        q->transports = t->next;
        while (t->count > 0) {
            struct qmgr_dest *d = t->dests[t->count - 1];
            d->head = d->tail = NULL;
            d->waiting = 0;
            qmgr_dest_drop(q, t, t->count - 1);
        }
        free(t->dests);
        free(t->name);
        free(t);
    }
}
