/*
 * qmgr_message - one message in the active queue: moved in and read,
 * its recipients resolved and handed to the scheduler, their results
 * written to the recipient logs and the queue file (docs/protocol.md,
 * "What qmgr does with a result"), and at the end of the pass the
 * notices asked for and the file removed or deferred with its next
 * attempt as mtime.  Interface: qmgr.h.
 *
 * Order of the durable steps, so that a crash repeats work but never
 * loses it: a result is appended to its log (fsynced) before the
 * recipient's R becomes D (fsynced); the notices are queued by bounce
 * before the logs go; the logs go before the queue file.
 *
 * Which of its logs exist is looked up once, when a message is loaded (an
 * earlier pass, or one cut short by a crash, may have left some), and kept
 * as qmgr appends and removes them: the done marks, the notices and the
 * removal at the end ask memory, and only logs that may exist are
 * removed.  What memory cannot tell (an empty file, a failed append) is
 * asked of the file system.
 *
 * Backoff: a deferred message is tried again after its age (now minus
 * arrival) clamped to minimal_backoff_time..maximal_backoff_time, as
 * Postfix does: the wait roughly doubles with each attempt.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "delivery_request.h"
#include "log.h"
#include "qmgr.h"
#include "recipient_log.h"
#include "text.h"

#define QMGR_NOTICE_RECORD_MAX 4096

/* The directories of the logs, by enum qmgr_log. */
static const char *const qmgr_log_dirs[QMGR_LOGS] = {
    "defer", "bounce", "trace",
};

/* The A attributes copied into a delivery request. */
static const char *const qmgr_copied_attrs[] = {
    "dsn_envid", "dsn_ret", "encoding", "smtputf8", "client_name",
    "client_address", "protocol", "sasl_username", "origin", NULL,
};

static void qmgr_message_finish(struct qmgr_message *m);

static char *qmgr_strdup(const char *s)
{
    if (s == NULL)
        return NULL;
    char *copy = strdup(s);
    if (copy == NULL)
        log_fatal("out of memory");
    return copy;
}

static int qmgr_has_word(const char *list, const char *word)
{
    if (list == NULL)
        return 0;
    size_t len = strlen(word);
    for (const char *p = list; *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (n == len && strncasecmp(p, word, len) == 0)
            return 1;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return 0;
}

/* ---- the list of messages ---- */

static void qmgr_message_link(struct qmgr *q, struct qmgr_message *m)
{
    m->next = q->messages;
    if (q->messages != NULL)
        q->messages->prev = m;
    q->messages = m;
    q->message_count++;
}

static void qmgr_message_free(struct qmgr_message *m)
{
    struct qmgr *q = m->q;
    if (m->prev != NULL)
        m->prev->next = m->next;
    else if (q->messages == m)
        q->messages = m->next;
    if (m->next != NULL)
        m->next->prev = m->prev;
    q->message_count--;
    q->recipient_count -= (long)m->rcpt_count;
    for (size_t i = 0; i < m->rcpt_count; i++) {
        struct qmgr_rcpt *r = &m->rcpts[i];
        free(r->address);
        free(r->orcpt);
        free(r->notify);
        free(r->last_dsn);
        free(r->last_text);
    }
    free(m->rcpts);
    free(m->sender);
    record_free(&m->attrs);
    buf_free(&m->path);
    if (m->fd >= 0)
        (void)close(m->fd);
    free(m);
    if (q->incoming_more) {
        q->want_incoming = 1;
        qmgr_kick(q);
    }
}

void qmgr_message_free_all(struct qmgr *q)
{
    q->incoming_more = 0;
    while (q->messages != NULL)
        qmgr_message_free(q->messages);
}

/* ---- reading the file ---- */

static void qmgr_time_text(char *out, size_t size, double t)
{
    struct timeval tv;
    tv.tv_sec = (time_t)t;
    tv.tv_usec = (suseconds_t)((t - (double)tv.tv_sec) * 1e6);
    struct buf b;
    buf_init(&b, size - 1);
    buf_printf(&b, "%ld.%06ld", (long)tv.tv_sec, (long)tv.tv_usec);
    (void)text_copy(out, size, buf_cstr(&b));
    buf_free(&b);
}

static int qmgr_add_rcpt(struct qmgr_message *m, const char *address,
                         char **orcpt, char **notify, long offset)
{
    if (m->rcpt_count % 64 == 0) {
        struct qmgr_rcpt *grown = realloc(
            m->rcpts, (m->rcpt_count + 64) * sizeof(*grown));
        if (grown == NULL)
            return -1;
        m->rcpts = grown;
    }
    struct qmgr_rcpt *r = &m->rcpts[m->rcpt_count++];
    memset(r, 0, sizeof(*r));
    r->msg = m;
    r->address = qmgr_strdup(address);
    r->orcpt = *orcpt;
    r->notify = *notify;
    *orcpt = *notify = NULL;
    r->offset = offset;
    return 0;
}

static void qmgr_add_attr(struct qmgr_message *m, const char *data)
{
    const char *eq = strchr(data, '=');
    if (eq == NULL || eq == data || (size_t)(eq - data) > RECORD_NAME_MAX)
        return;
    char name[RECORD_NAME_MAX + 1];
    memcpy(name, data, (size_t)(eq - data));
    name[eq - data] = '\0';
    (void)record_add_str(&m->attrs, name, eq + 1); /* bad or twice: left */
}

/* Reads the envelope.  0, or -1 with the reason in error (corrupt). */
static int qmgr_message_read(struct qmgr_message *m, struct buf *error)
{
    struct queue_reader rd;
    queue_reader_attach(&rd, m->fd);
    struct queue_record rec;
    queue_record_init(&rec);
    char *orcpt = NULL, *notify = NULL;
    int rc;
    while ((rc = queue_reader_next(&rd, &rec, error)) == 1) {
        const char *data = buf_cstr(&rec.data);
        switch (rec.type) {
        case QUEUE_REC_SIZE:
            if (sscanf(data, "%ld %ld", &m->content_offset,
                       &m->content_size) != 2)
                m->content_offset = 0;
            break;
        case QUEUE_REC_TIME:
            (void)text_copy(m->arrival_text, sizeof(m->arrival_text), data);
            m->arrival = strtod(data, NULL);
            break;
        case QUEUE_REC_ATTR: qmgr_add_attr(m, data); break;
        case QUEUE_REC_SENDER:
            free(m->sender);
            m->sender = qmgr_strdup(data);
            break;
        case QUEUE_REC_ORCPT:
            free(orcpt);
            orcpt = qmgr_strdup(data);
            break;
        case QUEUE_REC_NOTIFY:
            free(notify);
            notify = qmgr_strdup(data);
            break;
        case QUEUE_REC_RCPT:
            m->total_rcpts++;
            if (qmgr_add_rcpt(m, data, &orcpt, &notify, (long)rec.offset))
                log_fatal("out of memory");
            break;
        case QUEUE_REC_DONE:
            m->total_rcpts++;
            free(orcpt);
            free(notify);
            orcpt = notify = NULL;
            break;
        default:
            break;
        }
    }
    free(orcpt);
    free(notify);
    queue_record_free(&rec);
    queue_reader_close(&rd);
    if (rc == 0 && (m->sender == NULL || m->content_offset <= 0)) {
        buf_set_str(error, "no sender or no size record");
        rc = -1;
    }
    return rc;
}

/* ---- the recipient logs ---- */

/* Which logs an earlier pass (or a pass cut short by a crash) left. */
static void qmgr_logs_find(struct qmgr_message *m)
{
    for (int i = 0; i < QMGR_LOGS; i++) {
        int rc = recipient_log_probe(qmgr_log_dirs[i], m->id);
        m->logs[i] = rc == 0 ? QMGR_LOG_NONE
                   : rc > 0  ? QMGR_LOG_ENTRIES : QMGR_LOG_UNSURE;
    }
}

/* True when the log has entries (recipient_log_exists). */
static int qmgr_log_has_entries(const struct qmgr_message *m, enum qmgr_log i)
{
    switch (m->logs[i]) {
    case QMGR_LOG_NONE: return 0;
    case QMGR_LOG_ENTRIES: return 1;
    default: return recipient_log_exists(qmgr_log_dirs[i], m->id);
    }
}

/* An append to the log returned rc: one that failed may have left part
 * of a record, or an empty file. */
static void qmgr_log_appended(struct qmgr_message *m, enum qmgr_log i, int rc)
{
    m->logs[i] = rc == 0 ? QMGR_LOG_ENTRIES : QMGR_LOG_UNSURE;
}

/* Removes the log unless it is known to be absent.  0, or -1 with errno. */
static int qmgr_log_remove(struct qmgr_message *m, enum qmgr_log i)
{
    if (m->logs[i] == QMGR_LOG_NONE)
        return 0;
    if (recipient_log_remove(qmgr_log_dirs[i], m->id) != 0)
        return -1;
    m->logs[i] = QMGR_LOG_NONE;
    return 0;
}

static void qmgr_move_corrupt(struct qmgr_message *m, const char *why)
{
    struct buf to;
    buf_init(&to, 4096);
    buf_printf(&to, "corrupt/%s", m->id);
    if (rename(buf_cstr(&m->path), buf_cstr(&to)) != 0 && errno != ENOENT)
        log_warn("%s: corrupt queue file (%s); cannot move it to %s: %s",
                 m->id, why, buf_cstr(&to), strerror(errno));
    else
        log_warn("%s: corrupt queue file: %s: moved to %s", m->id, why,
                 buf_cstr(&to));
    buf_free(&to);
}

static void qmgr_message_resolve(struct qmgr_message *m)
{
    struct address_resolution res;
    address_resolution_init(&res);
    struct buf error;
    buf_init(&error, 4096);
    for (size_t i = 0; i < m->rcpt_count; i++) {
        struct qmgr_rcpt *r = &m->rcpts[i];
        buf_reset(&error);
        if (address_resolve(m->q->resolver, r->address, &res, &error) != 0) {
            log_warn("%s: to=<%s>: address resolver failure: %s", m->id,
                     r->address, buf_cstr(&error));
            qmgr_rcpt_defer(r, "4.3.0", "address resolver failure");
            continue;
        }
        qmgr_deliver_enqueue(m->q, r, buf_cstr(&res.transport),
                             buf_cstr(&res.nexthop));
    }
    buf_free(&error);
    address_resolution_free(&res);
}

int qmgr_message_load(struct qmgr *q, const char *from_dir, const char *id)
{
    struct qmgr_message *m = calloc(1, sizeof(*m));
    if (m == NULL)
        log_fatal("out of memory");
    m->q = q;
    m->fd = -1;
    (void)text_copy(m->id, sizeof(m->id), id);
    buf_init(&m->path, 4096);
    buf_printf(&m->path, "active/%s", id);
    record_init(&m->attrs);
    struct buf from, error;
    buf_init(&from, 4096);
    buf_init(&error, 4096);
    buf_printf(&from, "%s/%s", from_dir, id);
    int rc = rename(buf_cstr(&from), buf_cstr(&m->path));
    if (rc != 0 && errno != ENOENT)
        log_warn("%s: rename %s to %s: %s", id, buf_cstr(&from),
                 buf_cstr(&m->path), strerror(errno));
    if (rc == 0) {
        m->fd = open(buf_cstr(&m->path), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (m->fd < 0 && errno != ENOENT)
            log_warn("%s: open %s: %s", id, buf_cstr(&m->path),
                     strerror(errno));
    }
    buf_free(&from);
    if (m->fd < 0) {
        buf_free(&error);
        buf_free(&m->path);
        record_free(&m->attrs);
        free(m);
        return -1;
    }
    qmgr_message_link(q, m);
    int read_rc = qmgr_message_read(m, &error);
    q->recipient_count += (long)m->rcpt_count;
    if (read_rc != 0) {
        qmgr_move_corrupt(m, buf_cstr(&error));
        buf_free(&error);
        qmgr_message_free(m);
        return -1;
    }
    buf_free(&error);
    qmgr_logs_find(m);
    m->active = delivery_time_now();
    if (m->arrival <= 0 || m->arrival > m->active) {
        /* No (or a future) arrival time: count the age from now, so that
         * the message is not expired at once. */
        m->arrival = m->active;
        qmgr_time_text(m->arrival_text, sizeof(m->arrival_text), m->arrival);
    }
    qmgr_time_text(m->active_text, sizeof(m->active_text), m->active);
    log_info("%s: from=<%s>, size=%ld, nrcpt=%zu (queue active)", m->id,
             m->sender, m->content_size, m->total_rcpts);
    /* One extra count while resolving, so that recipients deferred at
     * once cannot end the message under this loop. */
    m->unfinished = m->rcpt_count + 1;
    qmgr_message_resolve(m);
    if (--m->unfinished == 0)
        qmgr_message_finish(m);
    return 0;
}

/* ---- results ---- */

static void qmgr_log_own_result(struct qmgr_rcpt *r,
                                const struct qmgr_result *res)
{
    struct qmgr_message *m = r->msg;
    double now = delivery_time_now();
    double arrival = m->arrival > 0 ? m->arrival : now;
    struct buf line;
    buf_init(&line, 16 * 1024);
    buf_printf(&line, "%s: to=<%s>, relay=none, delay=", m->id, r->address);
    delivery_format_delay(&line, now - arrival);
    buf_append_str(&line, ", delays=");
    delivery_format_delay(&line, m->active - arrival);
    buf_append_char(&line, '/');
    delivery_format_delay(&line, now - m->active);
    buf_printf(&line, "/0/0, dsn=%s, status=%s (%s)", res->dsn, res->status,
               res->text);
    log_info("%s", buf_cstr(&line));
    buf_free(&line);
}

static int qmgr_log_append(struct qmgr_rcpt *r, enum qmgr_log log,
                           const struct qmgr_result *res, const char *action)
{
    struct recipient_log_entry e = {
        .recipient = r->address, .orcpt = r->orcpt, .notify = r->notify,
        .offset = r->offset, .status = (char *)res->dsn,
        .action = (char *)action, .text = (char *)res->text,
        .remote_mta = (char *)res->remote_mta,
        .diagnostic = (char *)res->diagnostic, .time = (long)time(NULL),
    };
    struct buf error;
    buf_init(&error, 4096);
    int rc = recipient_log_append(qmgr_log_dirs[log], r->msg->id, &e,
                                  &error);
    qmgr_log_appended(r->msg, log, rc);
    if (rc != 0)
        log_warn("%s: %s", r->msg->id, buf_cstr(&error));
    buf_free(&error);
    return rc;
}

static void qmgr_mark_done(struct qmgr_rcpt *r)
{
    if (queue_file_mark_done(r->msg->fd, (off_t)r->offset) != 0)
        log_warn("%s: cannot mark recipient <%s> done: %s", r->msg->id,
                 r->address, strerror(errno));
}

static void qmgr_note_deferred(struct qmgr_rcpt *r,
                               const struct qmgr_result *res)
{
    (void)qmgr_log_append(r, QMGR_LOG_DEFER, res, "delayed");
    r->state = QMGR_RCPT_DEFERRED;
    free(r->last_dsn);
    free(r->last_text);
    r->last_dsn = qmgr_strdup(res->dsn);
    r->last_text = qmgr_strdup(res->text);
    r->msg->deferred = 1;
}

/* The done mark of the message's last recipient is not needed when the
 * file is removed right after it: nothing was deferred and no notice is
 * due (no bounce or trace log, of this pass or an earlier one).  A crash
 * before the removal repeats the delivery either way; skipping the mark
 * saves one fdatasync per message. */
static int qmgr_mark_needed(const struct qmgr_rcpt *r, int logged)
{
    const struct qmgr_message *m = r->msg;
    if (logged || m->unfinished != 1 || m->deferred)
        return 1;
    return qmgr_log_has_entries(m, QMGR_LOG_BOUNCE) ||
           qmgr_log_has_entries(m, QMGR_LOG_TRACE);
}

static void qmgr_rcpt_finished(struct qmgr_rcpt *r, int logged)
{
    if (qmgr_mark_needed(r, logged))
        qmgr_mark_done(r);
    r->state = QMGR_RCPT_FINISHED;
}

void qmgr_rcpt_result(struct qmgr_rcpt *r, const struct qmgr_result *res,
                      int log_it)
{
    struct qmgr_message *m = r->msg;
    if (log_it)
        qmgr_log_own_result(r, res);
    int bounced = strcmp(res->status, "bounced") == 0;
    int sent = strcmp(res->status, "sent") == 0;
    if (bounced) {
        /* NOTIFY without FAILURE: nothing to report, just done. */
        int wanted = r->notify == NULL || qmgr_has_word(r->notify, "FAILURE");
        if (wanted && qmgr_log_append(r, QMGR_LOG_BOUNCE, res, "failed") != 0)
            qmgr_note_deferred(r, res);
        else
            qmgr_rcpt_finished(r, wanted);
    } else if (sent) {
        const char *action = res->action != NULL ? res->action : "delivered";
        /* dsn_passed: the next hop took the DSN request and reports
         * success itself (RFC 3461 section 4.3). */
        int traced = qmgr_has_word(r->notify, "SUCCESS") && !res->dsn_passed;
        if (traced && qmgr_log_append(r, QMGR_LOG_TRACE, res, action) != 0)
            qmgr_note_deferred(r, res);
        else
            qmgr_rcpt_finished(r, traced);
    } else {
        qmgr_note_deferred(r, res);
    }
    if (m->unfinished == 0)
        log_panic("%s: result for a finished message", m->id);
    if (--m->unfinished == 0)
        qmgr_message_finish(m);
}

void qmgr_rcpt_defer(struct qmgr_rcpt *r, const char *dsn, const char *text)
{
    struct qmgr_result res = { .status = "deferred", .dsn = dsn,
                               .text = text };
    qmgr_rcpt_result(r, &res, 1);
}

/* ---- the end of a pass ---- */

static long qmgr_message_age(const struct qmgr_message *m)
{
    return (long)(time(NULL) - (time_t)m->arrival);
}

/* Recipients deferred in a message past its lifetime fail, with the
 * status of their last attempt (RFC 3464: Action failed). */
static void qmgr_message_expire(struct qmgr_message *m)
{
    struct qmgr *q = m->q;
    long lifetime = m->sender[0] == '\0' ? q->bounce_lifetime
                                         : q->max_lifetime;
    if (!m->deferred || qmgr_message_age(m) < lifetime)
        return;
    int failed_any = 0;
    for (size_t i = 0; i < m->rcpt_count; i++) {
        struct qmgr_rcpt *r = &m->rcpts[i];
        if (r->state != QMGR_RCPT_DEFERRED)
            continue;
        struct qmgr_result res = {
            .status = "bounced", .dsn = r->last_dsn,
            .text = r->last_text,
        };
        int wanted = r->notify == NULL || qmgr_has_word(r->notify, "FAILURE");
        if (wanted && qmgr_log_append(r, QMGR_LOG_BOUNCE, &res,
                                      "failed") != 0)
            return; /* stays deferred; tried again at the next attempt */
        qmgr_mark_done(r);
        r->state = QMGR_RCPT_FINISHED;
        failed_any = 1;
    }
    m->deferred = 0;
    if (failed_any)
        log_info("%s: from=<%s>, status=expired, returned to sender", m->id,
                 m->sender);
}

struct qmgr_notice {
    struct qmgr_message *m;
    const char *kind;
    enum qmgr_log log;
    int ok;
};

static void qmgr_message_complete(struct qmgr_message *m);

static int qmgr_notice_on_record(void *ctx, const struct record *r)
{
    struct qmgr_notice *n = ctx;
    const char *status = record_get_str(r, "status");
    if (status != NULL && strcmp(status, "ok") == 0) {
        n->ok = 1;
    } else {
        const char *text = record_get_str(r, "text");
        log_warn("%s: %s notice not sent: %s", n->m->id, n->kind,
                 text != NULL ? text : "bounce service refused");
    }
    return 1;
}

static void qmgr_notice_done(struct qmgr_notice *n)
{
    struct qmgr_message *m = n->m;
    if (!n->ok) {
        m->notice_failed = 1;
    } else if (strcmp(n->kind, "delay") == 0) {
        struct recipient_log_entry e = {
            .recipient = "", .offset = -1, .action = "warned",
            .time = (long)time(NULL),
        };
        struct buf error;
        buf_init(&error, 4096);
        int rc = recipient_log_append(qmgr_log_dirs[QMGR_LOG_DEFER], m->id,
                                      &e, &error);
        qmgr_log_appended(m, QMGR_LOG_DEFER, rc);
        if (rc != 0)
            log_warn("%s: %s", m->id, buf_cstr(&error));
        buf_free(&error);
    } else if (qmgr_log_remove(m, n->log) != 0) {
        log_warn("%s: remove %s/%s: %s", m->id, qmgr_log_dirs[n->log],
                 m->id, strerror(errno));
        m->notice_failed = 1;
    }
    free(n);
    if (--m->notices == 0)
        qmgr_message_complete(m);
}

static void qmgr_notice_on_end(void *ctx, const char *failure)
{
    struct qmgr_notice *n = ctx;
    if (failure != NULL && !n->ok)
        log_warn("%s: %s notice not sent: %s with the bounce service",
                 n->m->id, n->kind,
                 strcmp(failure, "timeout") == 0 ? "timeout"
                                                 : "lost connection");
    qmgr_notice_done(n);
}

/* Asks private/bounce for one notice; the message waits for the reply. */
static void qmgr_ask_notice(struct qmgr_message *m, const char *kind,
                            enum qmgr_log log)
{
    struct qmgr_notice *n = calloc(1, sizeof(*n));
    if (n == NULL)
        log_fatal("out of memory");
    n->m = m;
    n->kind = kind;
    n->log = log;
    m->notices++;
    int again;
    struct qmgr_conn *c =
        qmgr_conn_open(m->q, "private/bounce", QMGR_NOTICE_RECORD_MAX,
                       qmgr_notice_on_record, qmgr_notice_on_end, free, n,
                       &again);
    if (c == NULL) {
        log_warn("%s: %s notice not sent: connect to private/bounce: %s",
                 m->id, kind, strerror(errno));
        qmgr_notice_done(n);
        return;
    }
    struct buf log_name;
    buf_init(&log_name, 4096);
    buf_printf(&log_name, "%s/%s", qmgr_log_dirs[log], m->id);
    struct record r;
    record_init(&r);
    int rc = record_add_str(&r, "request", "notify");
    if (rc == RECORD_OK)
        rc = record_add_str(&r, "kind", kind);
    if (rc == RECORD_OK)
        rc = record_add_str(&r, "queue_id", m->id);
    if (rc == RECORD_OK)
        rc = record_add_str(&r, "queue_file", buf_cstr(&m->path));
    if (rc == RECORD_OK)
        rc = record_add_str(&r, "log", buf_cstr(&log_name));
    if (rc == RECORD_OK && qmgr_conn_send(c, &r) != 0)
        rc = RECORD_TOO_LARGE;
    record_free(&r);
    buf_free(&log_name);
    if (rc != RECORD_OK) {
        qmgr_conn_abort(c);
        qmgr_notice_done(n);
        return;
    }
    qmgr_conn_start(c);
}

static int qmgr_delay_warning_due(struct qmgr_message *m)
{
    struct qmgr *q = m->q;
    if (q->delay_warning <= 0 || !m->deferred ||
        qmgr_message_age(m) < q->delay_warning)
        return 0;
    int wanted = 0;
    for (size_t i = 0; i < m->rcpt_count && !wanted; i++) {
        const struct qmgr_rcpt *r = &m->rcpts[i];
        wanted = r->state == QMGR_RCPT_DEFERRED &&
                 (r->notify == NULL || qmgr_has_word(r->notify, "DELAY"));
    }
    if (!wanted)
        return 0;
    struct recipient_log log;
    struct buf error;
    buf_init(&error, 4096);
    int due = 0;
    if (recipient_log_read(&log, "defer", m->id, &error) != 0) {
        log_warn("%s: %s", m->id, buf_cstr(&error));
    } else {
        due = !recipient_log_has_warning(&log);
        recipient_log_free(&log);
    }
    buf_free(&error);
    return due;
}

/* Every recipient has its result for this pass. */
static void qmgr_message_finish(struct qmgr_message *m)
{
    qmgr_message_expire(m);
    /* One extra count, so that notices answered at once (no bounce
     * service) cannot complete the message under this function. */
    m->notices = 1;
    if (qmgr_log_has_entries(m, QMGR_LOG_BOUNCE))
        qmgr_ask_notice(m, "failure", QMGR_LOG_BOUNCE);
    if (qmgr_log_has_entries(m, QMGR_LOG_TRACE))
        qmgr_ask_notice(m, "success", QMGR_LOG_TRACE);
    if (qmgr_delay_warning_due(m))
        qmgr_ask_notice(m, "delay", QMGR_LOG_DEFER);
    if (--m->notices == 0)
        qmgr_message_complete(m);
}

/* 0, or -1 (logged) when a log could not be removed. */
static int qmgr_remove_logs(struct qmgr_message *m)
{
    for (int i = 0; i < QMGR_LOGS; i++)
        if (qmgr_log_remove(m, (enum qmgr_log)i) != 0) {
            log_warn("%s: remove %s/%s: %s", m->id, qmgr_log_dirs[i], m->id,
                     strerror(errno));
            return -1;
        }
    return 0;
}

static void qmgr_message_remove(struct qmgr_message *m)
{
    if (qmgr_remove_logs(m) != 0)
        return;
    if (unlink(buf_cstr(&m->path)) != 0 && errno != ENOENT) {
        log_warn("%s: remove %s: %s", m->id, buf_cstr(&m->path),
                 strerror(errno));
        return;
    }
    log_info("%s: removed", m->id);
}

/* The admin deleted the file under us (or held it: then hold/ID has it,
 * and its logs stay with it). */
static void qmgr_message_vanished(struct qmgr_message *m)
{
    struct buf held;
    buf_init(&held, 4096);
    buf_printf(&held, "hold/%s", m->id);
    struct stat st;
    if (stat(buf_cstr(&held), &st) != 0 && errno == ENOENT)
        (void)qmgr_remove_logs(m);
    buf_free(&held);
}

static void qmgr_message_defer(struct qmgr_message *m)
{
    struct qmgr *q = m->q;
    long wait = qmgr_message_age(m);
    if (wait < q->min_backoff)
        wait = q->min_backoff;
    if (wait > q->max_backoff)
        wait = q->max_backoff;
    struct timespec times[2];
    times[0].tv_sec = time(NULL) + wait;
    times[0].tv_nsec = 0;
    times[1] = times[0];
    if (futimens(m->fd, times) != 0)
        log_warn("%s: set the time of the next attempt: %s", m->id,
                 strerror(errno));
    struct buf to;
    buf_init(&to, 4096);
    buf_printf(&to, "deferred/%s", m->id);
    if (rename(buf_cstr(&m->path), buf_cstr(&to)) != 0) {
        if (errno != ENOENT)
            log_warn("%s: rename %s to %s: %s", m->id, buf_cstr(&m->path),
                     buf_cstr(&to), strerror(errno));
        else
            qmgr_message_vanished(m);
    }
    buf_free(&to);
}

static void qmgr_message_complete(struct qmgr_message *m)
{
    if (m->deferred || m->notice_failed)
        qmgr_message_defer(m);
    else
        qmgr_message_remove(m);
    qmgr_message_free(m);
}

/* ---- the delivery request's envelope ---- */

/* The copied A attributes of m, added to r. */
int qmgr_message_add_attrs(const struct qmgr_message *m, struct record *r)
{
    for (size_t i = 0; qmgr_copied_attrs[i] != NULL; i++) {
        const char *value = record_get_str(&m->attrs, qmgr_copied_attrs[i]);
        if (value != NULL &&
            record_add_str(r, qmgr_copied_attrs[i], value) != RECORD_OK)
            return -1;
    }
    return 0;
}
