/*
 * bounce - the delivery status notices (docs/protocol.md, "bounce").  A
 * SERVER_SINGLE service on private/bounce, unprivileged.  qmgr sends one
 * record:
 *
 *     request=notify kind=failure|delay|success queue_id=ID
 *     queue_file=active/ID log=bounce/ID
 *
 * bounce reads the queue file and the recipient log, writes the notice
 * (bounce_report.c) as a new message through cleanup and answers
 * status=ok queue_id=NEW once cleanup has committed it (NEW empty when
 * there was nothing to send), or status=defer text=WHY.
 *
 * Who gets the notice:
 *   - the envelope sender of the message, with the null sender as the
 *     notice's envelope sender;
 *   - a failure of a message from the null sender (a notice that could not
 *     be delivered) goes to 2bounce_notice_recipient (@$myorigin added to
 *     a bare name, here and for the other two addresses), from
 *     double_bounce_sender@$myorigin, so that its own failure is known;
 *   - a failure of a message from that double-bounce address is logged and
 *     dropped: no third notice;
 *   - delay and success notices never go to the null sender (nor the
 *     double-bounce address);
 *   - with "bounce" in notify_classes, bounce_notice_recipient gets a copy
 *     of each failure notice (the original's header only), from the
 *     double-bounce address.
 * Recipients whose NOTIFY does not ask for the kind are left out; when no
 * recipient is left, nothing is sent.
 *
 * Log lines (Postfix's): "ID: sender non-delivery notification: NEWID",
 * "ID: sender delay notification: NEWID", "ID: sender delivery status
 * notification: NEWID", "ID: postmaster non-delivery notification:
 * NEWID"; "ID: ... notification suppressed (WHY)" when nothing is sent.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bounce_report.h"
#include "buf.h"
#include "cleanup_client.h"
#include "config.h"
#include "log.h"
#include "queue_file.h"
#include "record.h"
#include "recipient_log.h"
#include "server.h"
#include "stream.h"

#define BOUNCE_REQUEST_MAX (64 * 1024)
#define BOUNCE_READ_TIMEOUT_MS (100 * 1000)
#define BOUNCE_NOTICE_MAX (256L * 1024 * 1024)

struct bounce_config {
    const char *myhostname;
    const char *mail_name;
    struct buf double_bounce;    /* double_bounce_sender@$myorigin */
    struct buf postmaster;       /* 2bounce_notice_recipient */
    struct buf bounce_copy_to;   /* bounce_notice_recipient */
    int copy_failures;           /* notify_classes has "bounce" */
    long size_limit;             /* bounce_size_limit */
    long queue_lifetime;         /* maximal_queue_lifetime */
    int cleanup_timeout_ms;
};

/* One request, checked. */
struct bounce_request {
    enum bounce_kind kind;
    const char *queue_id;
    const char *queue_file;
    char log_dir[8];
};

/* Where a notice goes and how it is logged. */
struct bounce_route {
    const char *to;
    const char *sender;          /* the notice's envelope sender */
    const char *what;            /* "sender non-delivery notification" */
    int postmaster;              /* a double bounce */
    int copy;                    /* the postmaster's copy */
};

static const char *const kind_what[] = {
    "sender non-delivery notification",
    "sender delay notification",
    "sender delivery status notification",
};

/* --- The request -------------------------------------------------------- */

/* "DIR/ID" with DIR one of dirs and ID the message's queue ID. */
static int path_valid(const char *path, const char *queue_id,
                      const char *const *dirs, size_t ndirs,
                      char *dir_out, size_t dir_size)
{
    if (path == NULL || path[0] == '/' || strstr(path, "..") != NULL)
        return 0;
    const char *slash = strchr(path, '/');
    if (slash == NULL || strcmp(slash + 1, queue_id) != 0)
        return 0;
    size_t len = (size_t)(slash - path);
    for (size_t i = 0; i < ndirs; i++)
        if (strlen(dirs[i]) == len && strncmp(path, dirs[i], len) == 0) {
            if (dir_out != NULL && len < dir_size) {
                memcpy(dir_out, path, len);
                dir_out[len] = '\0';
            }
            return 1;
        }
    return 0;
}

/* 0, or -1 with the reason in why. */
static int request_parse(const struct record *rec, struct bounce_request *req,
                         struct buf *why)
{
    static const char *const queues[] = { "incoming", "active", "deferred",
                                          "hold" };
    static const char *const logs[] = { "defer", "bounce", "trace" };
    const char *request = record_get_str(rec, "request");
    if (request == NULL || strcmp(request, "notify") != 0)
        return buf_printf(why, "unknown request"), -1;
    if (bounce_kind_parse(record_get_str(rec, "kind"), &req->kind) != 0)
        return buf_printf(why, "bad kind"), -1;
    req->queue_id = record_get_str(rec, "queue_id");
    if (req->queue_id == NULL || !queue_id_valid(req->queue_id))
        return buf_printf(why, "bad queue_id"), -1;
    req->queue_file = record_get_str(rec, "queue_file");
    if (!path_valid(req->queue_file, req->queue_id, queues, 4, NULL, 0))
        return buf_printf(why, "bad queue_file"), -1;
    if (!path_valid(record_get_str(rec, "log"), req->queue_id, logs, 3,
                    req->log_dir, sizeof(req->log_dir)))
        return buf_printf(why, "bad log"), -1;
    return 0;
}

static void reply(struct stream *s, const char *status, const char *name,
                  const char *value)
{
    struct record r;
    record_init(&r);
    if (record_add_str(&r, "status", status) != RECORD_OK ||
        record_add_str(&r, name, value) != RECORD_OK ||
        record_write(s, &r) != RECORD_OK || stream_flush(s) != STREAM_OK)
        log_warn("reply to the queue manager: connection lost");
    record_free(&r);
}

/* --- Who gets the notice ------------------------------------------------ */

/* 0 with route filled, or 1: nothing is to be sent (logged). */
static int route_choose(const struct bounce_config *cfg,
                        const struct bounce_request *req,
                        const struct bounce_original *orig,
                        struct bounce_route *route)
{
    const char *sender = buf_cstr(&orig->sender);
    int double_bounce =
        strcasecmp(sender, buf_cstr(&cfg->double_bounce)) == 0;
    route->what = kind_what[req->kind];
    route->to = sender;
    route->sender = "";
    route->postmaster = 0;
    route->copy = 0;
    if (req->kind == BOUNCE_FAILURE && double_bounce) {
        log_warn("%s: undeliverable postmaster notification discarded",
                 req->queue_id);
        return 1;
    }
    if (req->kind == BOUNCE_FAILURE && sender[0] == '\0') {
        route->to = buf_cstr(&cfg->postmaster);
        route->sender = buf_cstr(&cfg->double_bounce);
        route->what = "postmaster non-delivery notification";
        route->postmaster = 1;
        return 0;
    }
    if (sender[0] == '\0' || double_bounce) {
        log_info("%s: %s suppressed (null sender)", req->queue_id,
                 route->what);
        return 1;
    }
    return 0;
}

/* --- Sending it --------------------------------------------------------- */

static int notice_open(const struct bounce_config *cfg,
                       const struct bounce_route *route,
                       const struct bounce_original *orig, int eightbit,
                       struct cleanup_client *c, struct buf *error)
{
    struct record env;
    record_init(&env);
    int rc = record_add_str(&env, "sender", route->sender);
    if (rc == RECORD_OK)
        rc = record_add_long(&env, "flags", CLEANUP_FLAG_NO_CHECKS);
    if (rc == RECORD_OK)
        rc = record_add_str(&env, "origin", "bounce");
    if (rc == RECORD_OK && eightbit)
        rc = record_add_str(&env, "encoding", "8bitmime");
    if (rc == RECORD_OK && orig->smtputf8)
        rc = record_add_str(&env, "smtputf8", "1");
    if (rc != RECORD_OK) {
        record_free(&env);
        return buf_printf(error, "cannot make the cleanup request"), -1;
    }
    rc = cleanup_client_open(c, CLEANUP_SOCKET, cfg->cleanup_timeout_ms,
                             &env, error);
    record_free(&env);
    if (rc != 0)
        return -1;
    if (cleanup_client_add_recipient(c, route->to, NULL, NULL, error) != 0)
        return -1;
    return 0;
}

/* Composes and queues the notice; 0 and new_id set, or -1 (error). */
static int notice_send(const struct bounce_config *cfg,
                       const struct bounce_request *req,
                       const struct bounce_route *route,
                       const struct bounce_original *orig,
                       const struct bounce_selection *sel,
                       char new_id[QUEUE_ID_SIZE], struct buf *error)
{
    /* The content decides the encoding, and the queue ID of the notice
     * (known only once cleanup opened it) goes into its Message-ID and
     * boundary: compose once with a placeholder to learn the encoding,
     * then again with the real ID. */
    struct bounce_report r = {
        .kind = req->kind, .myhostname = cfg->myhostname,
        .mail_name = cfg->mail_name, .queue_id = req->queue_id,
        .new_queue_id = req->queue_id, .to = route->to,
        .postmaster = route->postmaster, .postmaster_copy = route->copy,
        .now = time(NULL),
        .queue_lifetime = cfg->queue_lifetime,
    };
    struct buf notice;
    buf_init(&notice, BOUNCE_NOTICE_MAX);
    int eightbit = 0;
    if (bounce_report_compose(&r, orig, sel, &notice) == 0)
        eightbit = bounce_report_8bit(notice.data, notice.len);
    else {
        buf_free(&notice);
        return buf_printf(error, "cannot compose the notice: %s",
                          strerror(errno)), -1;
    }
    struct cleanup_client c;
    if (notice_open(cfg, route, orig, eightbit, &c, error) != 0) {
        buf_free(&notice);
        return -1;
    }
    buf_reset(&notice);
    r.new_queue_id = c.queue_id;
    if (bounce_report_compose(&r, orig, sel, &notice) != 0) {
        cleanup_client_abort(&c);
        buf_free(&notice);
        return buf_printf(error, "cannot compose the notice"), -1;
    }
    int rc = cleanup_client_write(&c, notice.data, notice.len, error);
    buf_free(&notice);
    if (rc != 0)
        return -1;
    struct cleanup_result res;
    cleanup_result_init(&res);
    rc = cleanup_client_finish(&c, &res, error);
    if (rc == 0 && res.status != CLEANUP_OK && res.status != CLEANUP_HOLD) {
        buf_printf(error, "cleanup: %s: %d %s %s",
                   cleanup_status_name(res.status), res.code, res.dsn,
                   buf_cstr(&res.text));
        rc = -1;
    }
    if (rc == 0)
        memcpy(new_id, res.queue_id, QUEUE_ID_SIZE);
    cleanup_result_free(&res);
    return rc;
}

/* notify_classes "bounce": the postmaster gets a copy of each failure
 * notice, with the original's header only.  It is not critical: when it
 * cannot be queued the sender's notice stands, and a warning says so. */
static void postmaster_copy(const struct bounce_config *cfg,
                            const struct bounce_request *req,
                            const struct bounce_original *orig,
                            const struct bounce_selection *sel)
{
    struct bounce_route route = {
        .to = buf_cstr(&cfg->bounce_copy_to), .sender = buf_cstr(&cfg->double_bounce),
        .what = "postmaster non-delivery notification", .copy = 1,
    };
    char new_id[QUEUE_ID_SIZE];
    struct buf error;
    buf_init(&error, 4096);
    if (notice_send(cfg, req, &route, orig, sel, new_id, &error) == 0)
        log_info("%s: %s: %s", req->queue_id, route.what, new_id);
    else
        log_warn("%s: %s not sent: %s", req->queue_id, route.what,
                 buf_cstr(&error));
    buf_free(&error);
}

/* The whole request: 0 and new_id set ("" when nothing was sent), or -1
 * with the reason in error. */
static int bounce_notify(const struct bounce_config *cfg,
                         const struct bounce_request *req,
                         char new_id[QUEUE_ID_SIZE], struct buf *error)
{
    new_id[0] = '\0';
    struct bounce_original orig;
    bounce_original_init(&orig);
    struct recipient_log log = { 0 };
    struct bounce_selection sel = { 0 };
    int rc = -1;
    if (bounce_original_read(&orig, req->queue_file, cfg->size_limit,
                             error) != 0 ||
        recipient_log_read(&log, req->log_dir, req->queue_id, error) != 0)
        goto out;
    struct bounce_route route;
    if (route_choose(cfg, req, &orig, &route) != 0) {
        rc = 0;
        goto out;
    }
    if (bounce_report_select(&log, req->kind, &sel) != 0) {
        buf_printf(error, "out of memory");
        goto out;
    }
    if (sel.count == 0) {
        log_info("%s: %s suppressed (%s)", req->queue_id, route.what,
                 log.count == 0 ? "no recipient in the log" : "NOTIFY");
        rc = 0;
        goto out;
    }
    rc = notice_send(cfg, req, &route, &orig, &sel, new_id, error);
    if (rc == 0)
        log_info("%s: %s: %s", req->queue_id, route.what, new_id);
    if (rc == 0 && req->kind == BOUNCE_FAILURE && !route.postmaster &&
        cfg->copy_failures)
        postmaster_copy(cfg, req, &orig, &sel);
out:
    bounce_selection_free(&sel);
    recipient_log_free(&log);
    bounce_original_free(&orig);
    return rc;
}

static void bounce_service(struct server *srv, int fd)
{
    const struct bounce_config *cfg = srv->app;
    struct stream s;
    stream_init(&s, fd, BOUNCE_READ_TIMEOUT_MS);
    struct record rec;
    record_init(&rec);
    struct buf error;
    buf_init(&error, 4096);
    int rc = record_read(&s, &rec, BOUNCE_REQUEST_MAX);
    struct bounce_request req;
    if (rc != RECORD_OK) {
        if (rc != RECORD_EOF)
            log_warn("read request: %s", record_status_text(rc));
    } else if (request_parse(&rec, &req, &error) != 0) {
        log_warn("bad request: %s", buf_cstr(&error));
        buf_reset(&error);
        buf_printf(&error, "bad request");
        reply(&s, "defer", "text", buf_cstr(&error));
    } else {
        char new_id[QUEUE_ID_SIZE];
        if (bounce_notify(cfg, &req, new_id, &error) == 0) {
            reply(&s, "ok", "queue_id", new_id);
        } else {
            log_warn("%s: %s not sent: %s", req.queue_id,
                     kind_what[req.kind], buf_cstr(&error));
            reply(&s, "defer", "text", buf_cstr(&error));
        }
    }
    buf_free(&error);
    record_free(&rec);
    stream_free(&s);
}

/* An address of the configuration; a bare local part gets @$myorigin, as
 * cleanup does for local submissions (the notices are local mail). */
static void qualify(struct buf *out, const char *address,
                    const char *myorigin)
{
    buf_init(out, 4096);
    if (buf_append_str(out, address) != 0 ||
        (strchr(address, '@') == NULL && myorigin[0] != '\0' &&
         buf_printf(out, "@%s", myorigin) != 0))
        log_fatal("address too long: %s", address);
}

static void bounce_init(struct server *srv)
{
    static struct bounce_config cfg;
    struct config *c = srv->cfg;
    cfg.myhostname = config_get_str(c, "myhostname");
    cfg.mail_name = config_get_str(c, "mail_name");
    const char *myorigin = config_get_str(c, "myorigin");
    qualify(&cfg.postmaster, config_get_str(c, "2bounce_notice_recipient"),
            myorigin);
    qualify(&cfg.bounce_copy_to, config_get_str(c, "bounce_notice_recipient"),
            myorigin);
    qualify(&cfg.double_bounce, config_get_str(c, "double_bounce_sender"),
            myorigin);
    struct text_list classes;
    config_get_list(c, "notify_classes", &classes);
    for (size_t i = 0; i < classes.count; i++)
        if (strcmp(classes.items[i], "bounce") == 0)
            cfg.copy_failures = 1;
    text_list_free(&classes);
    cfg.size_limit = config_get_size(c, "bounce_size_limit");
    cfg.queue_lifetime = config_get_time(c, "maximal_queue_lifetime");
    long timeout = config_get_time(c, "ipc_timeout");
    cfg.cleanup_timeout_ms =
        timeout > INT_MAX / 1000 ? INT_MAX : (int)(timeout * 1000);
    srv->app = &cfg;
}

int main(int argc, char **argv)
{
    static const struct server_spec spec = {
        .mode = SERVER_SINGLE,
        .init = bounce_init,
        .service = bounce_service,
    };
    return server_main(argc, argv, &spec);
}
