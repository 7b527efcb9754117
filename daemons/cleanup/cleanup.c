/*
 * cleanup - the only writer of new queue files.  smtpd, pickup and the
 * other producers of mail stream each message to it over the record
 * protocol (lib/cleanup_client.h; docs/protocol.md, "cleanup"); cleanup
 * rewrites the envelope, checks and completes the header, writes the queue
 * file (lib/queue_file.h), makes it durable in incoming/ (or hold/), wakes
 * the queue manager, and only then says "ok".
 *
 * One connection is one message:
 *   open  -> the queue file is created and its ID sent back at once, so
 *            that smtpd can log "ID: client=..." before the first byte;
 *   rcpt  -> recipients, before any content;
 *   data  -> content chunks;
 *   end   -> the verdict: ok, hold, discard, reject or defer.
 * A client that goes away, times out (ipc_timeout for each wait,
 * daemon_timeout for the whole message) or breaks the protocol before end
 * leaves nothing in the queue, and a line in the log.
 *
 * At start cleanup removes the temporary files tmp.* that a killed cleanup
 * left in incoming/ when unnamed files were not available (older than
 * daemon_timeout, so that no live cleanup can own them).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "server.h"
#include "status_board.h"
#include "stream.h"
#include "text.h"
#include "trigger.h"

#define QMGR_SOCKET "public/qmgr"
#define INCOMING_DIR "incoming"
#define HOLD_DIR "hold"

/* --- The verdict -------------------------------------------------------- */

void cleanup_fail(struct cleanup_state *st, enum cleanup_status status,
                  int code, const char *dsn, const char *text)
{
    if (cleanup_failed(st))
        return;
    st->status = status;
    st->code = code;
    (void)text_copy(st->dsn, sizeof(st->dsn), dsn);
    buf_reset(&st->text);
    if (buf_set_str(&st->text, text) != 0)
        buf_reset(&st->text);
}

int cleanup_failed(const struct cleanup_state *st)
{
    return st->status == CLEANUP_REJECT || st->status == CLEANUP_DISCARD ||
           st->status == CLEANUP_DEFER;
}

void cleanup_fail_write(struct cleanup_state *st, int error)
{
    if (cleanup_failed(st))
        return;
    log_warn("%s: write queue file: %s", st->id, strerror(error));
    if (error == ENOSPC || error == EDQUOT)
        cleanup_fail(st, CLEANUP_DEFER, 452, "4.3.1",
                     "Insufficient system storage");
    else
        cleanup_fail(st, CLEANUP_DEFER, 451, "4.3.0",
                     "Error: queue file write error");
}

const char *cleanup_attr(const struct cleanup_state *st, const char *name)
{
    /* These values go into header fields and log lines: a line break in
     * one would let the client write a header of its own. */
    const char *v = record_get_str(&st->envelope, name);
    if (v == NULL || strpbrk(v, "\r\n") != NULL ||
        strlen(v) > CLEANUP_ATTR_TEXT_MAX)
        return NULL;
    return v;
}

void cleanup_log_context(const struct cleanup_state *st, struct buf *out)
{
    const char *name = cleanup_attr(st, "client_name");
    const char *addr = cleanup_attr(st, "client_address");
    if (addr != NULL && addr[0] != '\0')
        (void)buf_printf(out, "from %s[%s];", name && name[0] ? name
                                                             : "unknown",
                         addr);
    else
        (void)buf_append_str(out, "from local;");
    (void)buf_printf(out, " from=<%s> to=<%s>", buf_cstr(&st->sender),
                     st->rcpts.count > 0 ? st->rcpts.items[0].address : "");
    const char *proto = cleanup_attr(st, "protocol");
    if (proto != NULL && proto[0] != '\0')
        (void)buf_printf(out, " proto=%s", proto);
    const char *helo = cleanup_attr(st, "helo_name");
    if (helo != NULL && helo[0] != '\0')
        (void)buf_printf(out, " helo=<%s>", helo);
}

/* --- Replies ------------------------------------------------------------ */

static void reply(struct stream *s, const char *status, const char *id,
                  int code, const char *dsn, const char *text)
{
    struct record r;
    record_init(&r);
    if (record_add_str(&r, "status", status) != RECORD_OK ||
        (id != NULL && id[0] != '\0' &&
         record_add_str(&r, "queue_id", id) != RECORD_OK) ||
        (code > 0 && record_add_long(&r, "code", code) != RECORD_OK) ||
        (dsn != NULL && record_add_str(&r, "dsn", dsn) != RECORD_OK) ||
        (text != NULL && record_add_str(&r, "text", text) != RECORD_OK) ||
        record_write(s, &r) != RECORD_OK || stream_flush(s) != STREAM_OK)
        log_warn("%s: cannot send the reply \"%s\" to the client",
                 id != NULL && id[0] ? id : "cleanup", status);
    record_free(&r);
}

static void reply_protocol_error(struct stream *s, const char *id,
                                 const char *what)
{
    log_warn("%s: protocol error: %s; message not queued",
             id != NULL && id[0] ? id : "cleanup", what);
    reply(s, "defer", id, 451, "4.3.0", "Error: internal protocol error");
}

/* --- One message -------------------------------------------------------- */

static void state_init(struct cleanup_state *st,
                       const struct cleanup_config *cfg)
{
    memset(st, 0, sizeof(*st));
    st->cfg = cfg;
    st->status = CLEANUP_OK;
    record_init(&st->envelope);
    buf_init(&st->sender, CLEANUP_ADDRESS_MAX);
    buf_init(&st->sender_original, CLEANUP_ADDRESS_MAX);
    buf_init(&st->text, 1024);
    gettimeofday(&st->arrival, NULL);
    cleanup_message_init(st);
}

static void state_free(struct cleanup_state *st)
{
    if (st->writer_open)
        queue_writer_abort(&st->writer);
    st->writer_open = 0;
    record_free(&st->envelope);
    buf_free(&st->sender);
    buf_free(&st->sender_original);
    buf_free(&st->text);
    cleanup_recipients_free(&st->rcpts);
    cleanup_recipients_free(&st->final);
    cleanup_message_free(st);
}

/* A value that is text: no NUL byte, no line break, bounded. */
static const char *text_value(const struct record *r, const char *name)
{
    const char *v = record_get_str(r, name);
    if (v == NULL || strlen(v) > CLEANUP_ADDRESS_MAX || strchr(v, '\n') ||
        strchr(v, '\r'))
        return NULL;
    return v;
}

/* The rcpt request; 0, or -1 for a protocol error. */
static int take_recipient(struct cleanup_state *st, const struct record *req)
{
    const char *address = text_value(req, "address");
    if (address == NULL || address[0] == '\0' || st->envelope_written)
        return -1;
    const char *orcpt = record_find(req, "orcpt") ? text_value(req, "orcpt")
                                                  : NULL;
    const char *notify = record_find(req, "notify")
        ? text_value(req, "notify") : NULL;
    if ((record_find(req, "orcpt") && orcpt == NULL) ||
        (record_find(req, "notify") && notify == NULL))
        return -1;
    if (cleanup_recipients_add(&st->rcpts, address, orcpt, notify) != 0) {
        log_warn("%s: too many recipients", st->id);
        cleanup_fail(st, CLEANUP_REJECT, 552, "5.5.3",
                     "Error: too many recipients");
    }
    return 0;
}

/* Commits or drops the file according to the verdict, and replies. */
static void finish_message(struct cleanup_state *st, struct stream *s)
{
    if (cleanup_failed(st)) {
        if (st->writer_open)
            queue_writer_abort(&st->writer);
        st->writer_open = 0;
        if (st->status == CLEANUP_DISCARD) {
            char text[64];
            snprintf(text, sizeof(text), "Ok: queued as %s", st->id);
            reply(s, "discard", st->id, 250, "2.0.0", text);
            return;
        }
        reply(s, cleanup_status_name(st->status), st->id, st->code, st->dsn,
              buf_cstr(&st->text));
        return;
    }
    const char *dir = st->hold ? HOLD_DIR : INCOMING_DIR;
    char id[QUEUE_ID_SIZE];
    struct buf error;
    buf_init(&error, 4096);
    st->writer_open = 0;
    if (queue_writer_commit_in(&st->writer, dir, id, &error) != 0) {
        int saved = errno;
        log_warn("%s: %s", st->id, buf_cstr(&error));
        buf_free(&error);
        if (saved == ENOSPC || saved == EDQUOT)
            reply(s, "defer", st->id, 452, "4.3.1",
                  "Insufficient system storage");
        else
            reply(s, "defer", st->id, 451, "4.3.0",
                  "Error: queue file write error");
        return;
    }
    buf_free(&error);
    if (strcmp(id, st->id) != 0)
        log_info("%s: queue file name clash: queued as %s", st->id, id);
    if (!st->hold) /* best effort, without a log line: qmgr may not run */
        (void)trigger_send(st->cfg->qmgr_wakeup, "I", 1);
    char text[64];
    snprintf(text, sizeof(text), "Ok: queued as %s", id);
    reply(s, st->hold ? "hold" : "ok", id, 250, "2.0.0", text);
}

/* Reads requests after open until end; 0 at end, -1 when the message is
 * to be dropped without a reply (already logged and answered). */
static int read_message(struct cleanup_state *st, struct stream *s)
{
    struct record req;
    record_init(&req);
    int result = -1;
    for (;;) {
        record_reset(&req);
        int rc = record_read(s, &req, CLEANUP_RECORD_MAX);
        if (rc != RECORD_OK) {
            log_warn("%s: %s from the client before the end of the "
                     "message; message not queued", st->id,
                     rc == RECORD_EOF ? "lost connection"
                                      : record_status_text(rc));
            break;
        }
        const char *request = record_get_str(&req, "request");
        if (request == NULL) {
            reply_protocol_error(s, st->id, "request without a name");
            break;
        }
        if (strcmp(request, "end") == 0) {
            result = 0;
            break;
        }
        if (strcmp(request, "abort") == 0) {
            log_info("%s: aborted by the client; message not queued",
                     st->id);
            break;
        }
        if (strcmp(request, "rcpt") == 0) {
            if (take_recipient(st, &req) != 0) {
                reply_protocol_error(s, st->id, "bad rcpt request");
                break;
            }
            continue;
        }
        if (strcmp(request, "data") == 0) {
            const struct record_attr *d = record_find(&req, "data");
            if (d == NULL) {
                reply_protocol_error(s, st->id, "data request without data");
                break;
            }
            cleanup_message_start(st);
            cleanup_message_data(st, d->value.data, d->value.len);
            continue;
        }
        reply_protocol_error(s, st->id, "unknown request");
        break;
    }
    record_free(&req);
    return result;
}

/* The open request in st->envelope: the queue file is created and its ID
 * sent.  0, or -1 after a reply that ends the conversation. */
static int open_message(struct cleanup_state *st, struct stream *s)
{
    const char *request = record_get_str(&st->envelope, "request");
    if (request == NULL || strcmp(request, "open") != 0 ||
        text_value(&st->envelope, "sender") == NULL) {
        reply_protocol_error(s, NULL, "expected an open request with a "
                             "sender");
        return -1;
    }
    long flags = 0;
    if (record_find(&st->envelope, "flags") != NULL &&
        (record_get_long(&st->envelope, "flags", &flags) != 0 || flags < 0)) {
        reply_protocol_error(s, NULL, "bad flags");
        return -1;
    }
    st->flags = (unsigned)flags;
    struct buf error;
    buf_init(&error, 4096);
    if (queue_writer_open_in(&st->writer, &st->cfg->incoming, &error) != 0) {
        int saved = errno;
        log_warn("%s", buf_cstr(&error));
        buf_free(&error);
        if (saved == ENOSPC || saved == EDQUOT)
            reply(s, "defer", NULL, 452, "4.3.1",
                  "Insufficient system storage");
        else
            reply(s, "defer", NULL, 451, "4.3.0",
                  "Error: cannot create a queue file");
        return -1;
    }
    buf_free(&error);
    st->writer_open = 1;
    (void)text_copy(st->id, sizeof(st->id), queue_writer_id(&st->writer));
    reply(s, "ok", st->id, 0, NULL, NULL);
    return 0;
}

static void cleanup_service(struct server *srv, int fd)
{
    const struct cleanup_config *cfg = srv->app;
    struct stream s;
    stream_init(&s, fd, (int)(cfg->ipc_timeout * 1000));
    stream_set_deadline(&s, cfg->daemon_timeout);
    struct cleanup_state st;
    state_init(&st, cfg);
    int rc = record_read(&s, &st.envelope, CLEANUP_RECORD_MAX);
    if (rc == RECORD_EOF) {
        log_debug("connection closed before a request");
    } else if (rc != RECORD_OK) {
        log_warn("cleanup: reading the open request: %s",
                 record_status_text(rc));
    } else if (open_message(&st, &s) == 0) {
        cleanup_envelope_open(&st);
        if (read_message(&st, &s) == 0) {
            cleanup_message_start(&st);
            cleanup_message_end(&st);
            finish_message(&st, &s);
        }
    }
    state_free(&st);
    stream_free(&s);
    /* The skeleton closes fd. */
}

/* --- Start-up ----------------------------------------------------------- */

static void cleanup_init(struct server *srv)
{
    struct config *c = srv->cfg;
    /* The settings, for the life of the process (static: still reachable
     * when the skeleton returns from main after a reload). */
    static struct cleanup_config settings;
    static struct trigger qmgr_wakeup;
    struct cleanup_config *cfg = &settings;
    trigger_init(&qmgr_wakeup, QMGR_SOCKET);
    cfg->qmgr_wakeup = &qmgr_wakeup;
    cfg->myhostname = config_get_str(c, "myhostname");
    cfg->myorigin = config_get_str(c, "myorigin");
    cfg->append_at_myorigin = config_get_bool(c, "append_at_myorigin");
    cfg->mail_name = config_get_str(c, "mail_name");
    cfg->recipient_delimiter = config_get_str(c, "recipient_delimiter");
    config_get_list(c, "mydestination", &cfg->mydestination);
    cfg->header_size_limit = config_get_size(c, "header_size_limit");
    cfg->message_size_limit = config_get_size(c, "message_size_limit");
    cfg->hopcount_limit = config_get_int(c, "hopcount_limit");
    cfg->line_length_limit = config_get_int(c, "line_length_limit");
    cfg->recursion_limit = config_get_int(c, "virtual_alias_recursion_limit");
    cfg->expansion_limit = config_get_int(c, "virtual_alias_expansion_limit");
    cfg->ipc_timeout = config_get_time(c, "ipc_timeout");
    cfg->daemon_timeout = config_get_time(c, "daemon_timeout");
    cleanup_tables_open(c, "header_checks", &cfg->header_checks);
    cleanup_tables_open(c, "mime_header_checks", &cfg->mime_header_checks);
    cleanup_tables_open(c, "nested_header_checks",
                        &cfg->nested_header_checks);
    cleanup_tables_open(c, "body_checks", &cfg->body_checks);
    cleanup_tables_open(c, "canonical_maps", &cfg->canonical);
    cleanup_tables_open(c, "sender_canonical_maps", &cfg->sender_canonical);
    cleanup_tables_open(c, "recipient_canonical_maps",
                        &cfg->recipient_canonical);
    cleanup_tables_open(c, "virtual_alias_maps", &cfg->virtual_alias);
    struct buf error;
    buf_init(&error, 4096);
    if (queue_dir_open(&cfg->incoming, INCOMING_DIR, &error) != 0)
        log_fatal("%s", buf_cstr(&error));
    buf_free(&error);
    /* The cleanup processes of this service share the fsyncs of incoming/:
     * one that began after a file's link makes its name durable. */
    if (srv->board != NULL)
        cfg->incoming.sync_group = status_board_dir_sync(srv->board);
    int stale = queue_remove_stale_temps(INCOMING_DIR, cfg->daemon_timeout);
    if (stale > 0)
        log_info("removed %d stale temporary file%s from %s", stale,
                 stale == 1 ? "" : "s", INCOMING_DIR);
    srv->app = cfg;
}

int main(int argc, char **argv)
{
    static const struct server_spec spec = {
        .mode = SERVER_SINGLE,
        .init = cleanup_init,
        .service = cleanup_service,
    };
    return server_main(argc, argv, &spec);
}
