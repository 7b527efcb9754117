/*
 * smtpd_data - the message content: DATA (RFC 5321 4.1.1.4) and BDAT
 * (RFC 3030 CHUNKING), streamed to cleanup (lib/cleanup_client.h).
 *
 * DATA: lines of at most smtpd_max_line_length octets (CRLF not counted)
 * until a line "." that follows a CRLF-ended line; dot-stuffing is undone
 * and CRLF becomes LF.  The message is refused, and never queued, when a
 * line ends in a bare LF, holds a bare CR or a NUL, is too long, or the
 * message passes message_size_limit: the reading goes on to the proper
 * end of the data (CRLF.CRLF), so the session stays in step with the
 * client, and then the reply says why.  A "." after a bare LF does not
 * end the data: a server must not see the end of a message where the
 * previous hop did not (SMTP smuggling).
 *
 * BDAT: exactly the announced octets, binary-clean (no dot-stuffing, no
 * line length limit); CRLF becomes LF, a CR that is not followed by LF
 * is kept as it is, a bare LF or a NUL refuses the message (smtpd does not
 * announce BINARYMIME).  A chunk that cannot be accepted (no MAIL, no
 * valid recipient, too big, a chunk before it failed) is still read in
 * full and answered with an error, as RFC 3030 requires; after BDAT LAST
 * the transaction is over either way.  BDAT and DATA do not mix in one
 * transaction (503 5.5.1).
 *
 * The 250 is sent only after cleanup reported the message safely queued
 * (or held, or discarded by a rule).  A session that ends inside the
 * content leaves nothing queued: cleanup drops the file of a client that
 * goes away without "end".
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "smtpd.h"

#define SMTPD_BDAT_PIECE (64 * 1024)

enum data_problem {
    DATA_OK,
    DATA_TOO_BIG,
    DATA_BARE_LF,
    DATA_BARE_CR,
    DATA_NUL,
    DATA_LINE_TOO_LONG,
    DATA_WRITE_ERROR,
};

/* The state of one message's content on its way to cleanup. */
struct data_sink {
    struct smtpd_session *s;
    long size;
    enum data_problem problem;
    struct buf out;
};

static void sink_init(struct data_sink *k, struct smtpd_session *s,
                      long size)
{
    k->s = s;
    k->size = size;
    k->problem = DATA_OK;
    buf_init(&k->out, SMTPD_BDAT_PIECE * 2 + 16);
}

static void sink_problem(struct data_sink *k, enum data_problem p)
{
    if (k->problem == DATA_OK)
        k->problem = p;
}

/* Sends what sink->out holds to cleanup, unless the message is refused. */
static void sink_flush(struct data_sink *k)
{
    struct smtpd_session *s = k->s;
    long limit = s->smtpd->message_size_limit;
    k->size += (long)k->out.len;
    if (limit > 0 && k->size > limit)
        sink_problem(k, DATA_TOO_BIG);
    if (k->problem == DATA_OK && k->out.len > 0) {
        struct buf error;
        buf_init(&error, 1024);
        if (cleanup_client_write(&s->cleanup, k->out.data, k->out.len,
                                 &error) != 0) {
            log_warn("%s: cleanup: %s", s->queue_id, buf_cstr(&error));
            s->cleanup_open = 0;
            sink_problem(k, DATA_WRITE_ERROR);
        }
        buf_free(&error);
    }
    buf_reset(&k->out);
}

static const char *data_problem_reply(enum data_problem p, long line_limit,
                                      struct buf *text)
{
    buf_reset(text);
    switch (p) {
    case DATA_TOO_BIG:
        return "552 5.3.4 Error: message file too big";
    case DATA_BARE_LF:
        return "550 5.6.0 Error: bare <LF> received";
    case DATA_BARE_CR:
        return "550 5.6.0 Error: bare <CR> received";
    case DATA_NUL:
        return "550 5.6.0 Error: NUL character in message content";
    case DATA_LINE_TOO_LONG:
        (void)buf_printf(text, "554 5.6.0 Error: text line longer than %ld "
                               "octets", line_limit);
        return buf_cstr(text);
    case DATA_WRITE_ERROR:
        return "451 4.3.0 Error: queue file write error";
    default:
        return "250 2.0.0 Ok";
    }
}

/* The end of the content: cleanup's verdict, or the refusal. */
static void data_finish(struct smtpd_session *s, struct data_sink *k,
                        const char *command)
{
    struct buf text;
    buf_init(&text, 256);
    if (k->problem != DATA_OK) {
        const char *reply = data_problem_reply(k->problem,
                                               s->smtpd->data_line_limit,
                                               &text);
        smtpd_reply(s, "%s", reply);
        if (k->problem != DATA_WRITE_ERROR)
            smtpd_log_reject(s, command, reply, NULL);
        smtpd_transaction_reset(s);
        buf_free(&text);
        return;
    }
    struct cleanup_result res;
    struct buf error;
    cleanup_result_init(&res);
    buf_init(&error, 1024);
    s->cleanup_open = 0;
    if (cleanup_client_finish(&s->cleanup, &res, &error) != 0) {
        log_warn("%s: cleanup: %s", s->queue_id, buf_cstr(&error));
        smtpd_reply(s, "451 4.3.0 Error: queue file write error");
    } else if (res.status == CLEANUP_OK || res.status == CLEANUP_HOLD ||
               res.status == CLEANUP_DISCARD) {
        smtpd_reply(s, "250 2.0.0 Ok: queued as %s", s->queue_id);
        s->junk_commands = 0; /* as Postfix: mail was delivered */
    } else {
        int code = res.code;
        if (code < 400 || code > 599)
            code = res.status == CLEANUP_REJECT ? 550 : 451;
        const char *dsn = res.dsn[0] ? res.dsn
                          : code >= 500 ? "5.0.0" : "4.0.0";
        buf_reset(&text);
        (void)buf_printf(&text, "%d %s %s", code, dsn,
                         res.text.len ? buf_cstr(&res.text) : "Error");
        smtpd_reply(s, "%s", buf_cstr(&text));
        smtpd_log_reject(s, command, buf_cstr(&text), NULL);
    }
    cleanup_result_free(&res);
    buf_free(&error);
    buf_free(&text);
    smtpd_transaction_reset(s);
}

/* A read of the content failed: timeout or lost connection.  The cleanup
 * stream is aborted, so nothing is queued. */
static void data_read_failed(struct smtpd_session *s, int rc, long size)
{
    if (rc == STREAM_TIMEOUT) {
        smtpd_timeout_reply(s);
    } else {
        log_info("lost connection after %s (%ld bytes) from %s",
                 s->last_command, size, s->client_id);
    }
    smtpd_transaction_reset(s);
    s->quit = 1;
    s->last_code = 0; /* the 354 was no success: "data=0/1" */
}

/* One DATA line: judged, unstuffed, added to the sink. */
static void data_line(struct data_sink *k, const struct buf *line)
{
    const char *text = line->data ? line->data : "";
    size_t len = line->len;
    if (memchr(text, '\0', len))
        sink_problem(k, DATA_NUL);
    if (memchr(text, '\r', len))
        sink_problem(k, DATA_BARE_CR);
    if (len > 0 && text[0] == '.') {
        text++;
        len--;
    }
    if (k->problem == DATA_OK) {
        (void)buf_append(&k->out, text, len);
        (void)buf_append_char(&k->out, '\n');
    } else {
        k->size += (long)len + 1;
    }
    if (k->out.len >= SMTPD_BDAT_PIECE)
        sink_flush(k);
}

/* Reads to the end of the data; 0 at CRLF.CRLF, or a stream status. */
static int data_read(struct smtpd_session *s, struct data_sink *k)
{
    struct buf line;
    buf_init(&line, (size_t)s->smtpd->data_line_limit + 1);
    int after_crlf = 1, rc;
    for (;;) {
        enum stream_line_ending ending;
        rc = stream_read_line(&s->stream, &line,
                              (size_t)s->smtpd->data_line_limit, &ending);
        if (rc == STREAM_TOO_LONG) {
            sink_problem(k, DATA_LINE_TOO_LONG);
            after_crlf = ending == STREAM_LINE_CRLF;
            continue;
        }
        if (rc != STREAM_OK)
            break;
        if (ending == STREAM_LINE_EOF) {
            rc = STREAM_EOF;
            break;
        }
        if (ending == STREAM_LINE_LF) {
            sink_problem(k, DATA_BARE_LF);
            after_crlf = 0;
            continue;
        }
        if (after_crlf && line.len == 1 && line.data[0] == '.')
            break;
        data_line(k, &line);
        after_crlf = 1;
    }
    buf_free(&line);
    sink_flush(k);
    return rc;
}

void smtpd_data_command(struct smtpd_session *s)
{
    if (!s->in_mail) {
        smtpd_reply(s, "503 5.5.1 Error: need MAIL command");
        return;
    }
    if (s->bdat != SMTPD_BDAT_NONE) {
        smtpd_reply(s, "503 5.5.1 Error: DATA after BDAT");
        return;
    }
    if (s->rcpt_count == 0 || !s->cleanup_open) {
        smtpd_reply(s, "554 5.5.1 Error: no valid recipients");
        return;
    }
    struct buf peek;
    buf_init(&peek, 100);
    size_t unread = smtpd_unread_input(s, &peek);
    buf_free(&peek);
    if (unread > 0) {
        /* RFC 2920 3.1: DATA ends a pipelined group; what follows before
         * the 354 could be taken for content the client did not mean. */
        log_warn("%s: improper command pipelining after DATA from %s",
                 s->queue_id, s->client_id);
        smtpd_reply(s, "554 5.5.0 Error: SMTP protocol synchronization");
        smtpd_transaction_reset(s);
        s->quit = 1;
        return;
    }
    smtpd_reply(s, "354 End data with <CR><LF>.<CR><LF>");
    if (stream_flush(&s->stream) != STREAM_OK) {
        data_read_failed(s, STREAM_ERROR, 0);
        return;
    }
    struct data_sink k;
    sink_init(&k, s, 0);
    stream_set_deadline(&s->stream, s->smtpd->data_timeout);
    int rc = data_read(s, &k);
    stream_set_deadline(&s->stream, 0);
    if (rc != STREAM_OK)
        data_read_failed(s, rc, k.size);
    else
        data_finish(s, &k, "END-OF-MESSAGE");
    buf_free(&k.out);
}

/* ---- BDAT ----------------------------------------------------------- */

/* Adds one piece of a chunk to the sink: CRLF to LF (across pieces). */
static void bdat_convert(struct smtpd_session *s, struct data_sink *k,
                         const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = data[i];
        if (s->bdat_cr) {
            s->bdat_cr = 0;
            if (c == '\n') {
                (void)buf_append_char(&k->out, '\n');
                continue;
            }
            (void)buf_append_char(&k->out, '\r');
        }
        if (c == '\r') {
            s->bdat_cr = 1;
            continue;
        }
        if (c == '\n')
            sink_problem(k, DATA_BARE_LF);
        else if (c == '\0')
            sink_problem(k, DATA_NUL);
        (void)buf_append_char(&k->out, c);
    }
}

/* Reads the chunk; with accept, into the sink.  0 or a stream status. */
static int bdat_read(struct smtpd_session *s, struct data_sink *k,
                     long size, int accept)
{
    struct buf piece;
    buf_init(&piece, SMTPD_BDAT_PIECE);
    int rc = STREAM_OK;
    long left = size;
    while (left > 0 && rc == STREAM_OK) {
        size_t n = left > SMTPD_BDAT_PIECE ? SMTPD_BDAT_PIECE : (size_t)left;
        buf_reset(&piece);
        rc = stream_read_exact(&s->stream, &piece, n);
        if (rc != STREAM_OK)
            break;
        left -= (long)n;
        if (accept) {
            bdat_convert(s, k, piece.data, piece.len);
            sink_flush(k);
        }
    }
    buf_free(&piece);
    return rc;
}

/* Why this chunk cannot be taken, or NULL. */
static const char *bdat_refusal(struct smtpd_session *s, long size)
{
    long limit = s->smtpd->message_size_limit;
    if (!s->in_mail)
        return "503 5.5.1 Error: need MAIL command";
    if (s->rcpt_count == 0 || !s->cleanup_open)
        return "554 5.5.1 Error: no valid recipients";
    if (s->bdat == SMTPD_BDAT_FAILED)
        return buf_cstr(&s->bdat_reply);
    if (limit > 0 && size > limit - s->bdat_size)
        return "552 5.3.4 Error: message file too big";
    return NULL;
}

static void bdat_refuse(struct smtpd_session *s, const char *reply, int last)
{
    if (s->in_mail && s->bdat != SMTPD_BDAT_FAILED) {
        (void)buf_set_str(&s->bdat_reply, reply);
        s->bdat = SMTPD_BDAT_FAILED;
        if (s->cleanup_open) {
            cleanup_client_abort(&s->cleanup);
            s->cleanup_open = 0;
        }
    }
    smtpd_reply(s, "%s", reply);
    if (last)
        smtpd_transaction_reset(s);
}

void smtpd_bdat_command(struct smtpd_session *s, const char *arg)
{
    long size;
    int last;
    if (smtpd_command_bdat(arg, &size, &last) != 0) {
        /* Without a size the chunk cannot be skipped: the session ends. */
        smtpd_reply(s, "501 5.5.4 Syntax: BDAT count [LAST]");
        s->quit = 1;
        return;
    }
    const char *refusal = bdat_refusal(s, size);
    struct data_sink k;
    sink_init(&k, s, s->bdat_size);
    if (refusal == NULL)
        s->bdat = SMTPD_BDAT_ACTIVE;
    stream_set_deadline(&s->stream, s->smtpd->data_timeout);
    int rc = bdat_read(s, &k, size, refusal == NULL);
    stream_set_deadline(&s->stream, 0);
    if (rc != STREAM_OK) {
        data_read_failed(s, rc, s->bdat_size + size);
        buf_free(&k.out);
        return;
    }
    if (refusal != NULL) {
        bdat_refuse(s, refusal, last);
        buf_free(&k.out);
        return;
    }
    if (last && s->bdat_cr) {
        s->bdat_cr = 0;
        (void)buf_append_char(&k.out, '\r');
        sink_flush(&k);
    }
    s->bdat_size = k.size;
    struct buf text;
    buf_init(&text, 256);
    if (k.problem != DATA_OK && !last) {
        bdat_refuse(s, data_problem_reply(k.problem, 0, &text), 0);
    } else if (last) {
        data_finish(s, &k, "BDAT");
    } else {
        smtpd_reply(s, "250 2.0.0 Ok: %ld bytes", size);
        /* An empty chunk that is not the last carries nothing: counted
         * as a junk command, or "BDAT 0" could be repeated for ever. */
        if (size == 0 && s->junk_commands++ >= s->smtpd->junk_command_limit)
            s->errors++;
    }
    buf_free(&text);
    buf_free(&k.out);
}

/* ---- the cleanup stream --------------------------------------------- */

static const char *data_encoding(enum smtp_body body)
{
    switch (body) {
    case SMTP_BODY_7BIT: return "7bit";
    case SMTP_BODY_8BITMIME: return "8bitmime";
    case SMTP_BODY_BINARYMIME: return "binarymime";
    default: return NULL;
    }
}

static int data_envelope(struct smtpd_session *s, struct record *env)
{
    int rc = 0;
    rc |= record_add_str(env, "sender", buf_cstr(&s->sender));
    rc |= record_add_long(env, "flags",
                          s->sasl_done ? CLEANUP_FLAG_SUBMISSION : 0);
    rc |= record_add_str(env, "origin", "smtpd");
    rc |= record_add_str(env, "client_name", s->client_name);
    rc |= record_add_str(env, "client_address", s->client_addr);
    rc |= record_add_str(env, "client_port", s->client_port);
    if (s->helo.len)
        rc |= record_add_str(env, "helo_name", buf_cstr(&s->helo));
    rc |= record_add_str(env, "protocol", smtpd_protocol_name(s));
    if (s->sasl_done) {
        rc |= record_add_str(env, "sasl_method", buf_cstr(&s->sasl_method));
        rc |= record_add_str(env, "sasl_username",
                             buf_cstr(&s->sasl_username));
    }
    if (s->tls != NULL)
        rc |= record_add_str(env, "tls", buf_cstr(&s->tls_info));
    const char *encoding = data_encoding(s->body);
    if (encoding != NULL)
        rc |= record_add_str(env, "encoding", encoding);
    if (s->smtputf8)
        rc |= record_add_str(env, "smtputf8", "1");
    if (s->envid.len)
        rc |= record_add(env, "dsn_envid", s->envid.data, s->envid.len);
    if (s->ret != SMTP_RET_NONE)
        rc |= record_add_str(env, "dsn_ret",
                             s->ret == SMTP_RET_FULL ? "FULL" : "HDRS");
    if (s->declared_size >= 0)
        rc |= record_add_long(env, "size", s->declared_size);
    rc |= record_add_str(env, "received_by", s->smtpd->myhostname);
    return rc == 0 ? 0 : -1;
}

int smtpd_cleanup_open(struct smtpd_session *s)
{
    struct record env;
    struct buf error;
    record_init(&env);
    buf_init(&error, 1024);
    int rc = -1;
    if (data_envelope(s, &env) != 0) {
        log_warn("%s: cannot build the envelope", s->client_id);
    } else if (cleanup_client_open(&s->cleanup, CLEANUP_SOCKET,
                                   s->smtpd->timeout_ms, &env,
                                   &error) != 0) {
        log_warn("%s: cannot hand the message to cleanup: %s", s->client_id,
                 buf_cstr(&error));
    } else {
        s->cleanup_open = 1;
        memcpy(s->queue_id, s->cleanup.queue_id, sizeof(s->queue_id));
        if (s->sasl_done)
            log_info("%s: client=%s, sasl_method=%s, sasl_username=%s",
                     s->queue_id, s->client_id, buf_cstr(&s->sasl_method),
                     buf_cstr(&s->sasl_username));
        else
            log_info("%s: client=%s", s->queue_id, s->client_id);
        rc = 0;
    }
    record_free(&env);
    buf_free(&error);
    return rc;
}
