/*
 * smtp_transaction - one mail transaction on an open session: the checks
 * that need the server's EHLO keywords (SIZE, SMTPUTF8, 8BITMIME), MAIL
 * FROM with SIZE=, BODY=, SMTPUTF8 and the DSN parameters RET and ENVID,
 * one RCPT TO per recipient with NOTIFY and ORCPT (RFC 3461, when the
 * server offers DSN), DATA and the content (interface: smtp.h).
 *
 * With PIPELINING (RFC 2920) MAIL, every RCPT and DATA go out in one
 * write and the replies are read in order; without it each command waits
 * for its reply.  Every recipient gets its result here, except when MAIL
 * itself is refused or the session breaks before a recipient's fate is
 * known: the caller then tries the next address or defers the rest.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "smtp.h"
#include "smtp_address.h"
#include "smtp_content.h"

#define SMTP_WIRE_CHUNK (64 * 1024)

/* The result of recipient i from a reply (2xx sent, 4xx deferred, 5xx
 * bounced). */
static void reply_recipient(struct smtp_message *msg, size_t i,
                            const struct smtp_session *s,
                            const struct smtp_reply *r, const char *command)
{
    struct buf why, diagnostic, remote;
    buf_init(&why, SMTP_REPLY_MAX + 1024);
    buf_init(&diagnostic, SMTP_REPLY_MAX + 16);
    buf_init(&remote, SMTP_HOST_MAX + 16);
    buf_printf(&diagnostic, "smtp; %s", buf_cstr(&r->text));
    buf_printf(&remote, "dns; %s", s->host);
    struct delivery_result res = {
        .dsn = r->dsn, .relay = s->relay,
        .remote_mta = buf_cstr(&remote),
        .diagnostic = buf_cstr(&diagnostic),
    };
    if (r->code / 100 == 2) {
        res.status = DELIVERY_SENT;
        res.text = buf_cstr(&r->text);
        /* Handed to another MTA: "relayed" (RFC 3464), as Postfix says.
         * A server that does DSN got NOTIFY and reports success itself
         * (RFC 3461 section 4.3); otherwise a recipient that asked for
         * SUCCESS gets a "relayed" notice from here. */
        res.action = "relayed";
        res.dsn_passed = (s->features & SMTP_FEATURE_DSN) != 0;
    } else {
        smtp_session_said(s, r, command, &why);
        res.status = r->code / 100 == 5 ? DELIVERY_BOUNCED
                                        : DELIVERY_DEFERRED;
        res.text = buf_cstr(&why);
    }
    (void)delivery_request_reply(msg->req, i, &res);
    buf_free(&why);
    buf_free(&diagnostic);
    buf_free(&remote);
}

/* A failure found here, before anything was sent: every recipient. */
static void local_failure(struct smtp_message *msg,
                          const struct smtp_session *s, const char *dsn,
                          const char *text)
{
    smtp_reply_rest(msg, dsn[0] == '5' ? DELIVERY_BOUNCED : DELIVERY_DEFERRED,
                    dsn, text, s, NULL, 0);
}

static int mail_command(struct smtp_session *s, struct smtp_message *msg,
                        long size)
{
    struct delivery_request *req = msg->req;
    struct buf cmd;
    buf_init(&cmd, SMTP_REPLY_LINE_MAX);
    int rc = buf_printf(&cmd, "MAIL FROM:<%s>", req->sender);
    if (s->features & SMTP_FEATURE_SIZE)
        rc |= buf_printf(&cmd, " SIZE=%ld", size);
    if ((s->features & SMTP_FEATURE_8BITMIME) && msg->eight_bit)
        rc |= buf_append_str(&cmd, " BODY=8BITMIME");
    if ((s->features & SMTP_FEATURE_SMTPUTF8) && msg->smtputf8)
        rc |= buf_append_str(&cmd, " SMTPUTF8");
    if (s->features & SMTP_FEATURE_DSN) {
        const char *ret = delivery_request_attr(req, "dsn_ret");
        const char *envid = delivery_request_attr(req, "dsn_envid");
        if (ret != NULL && (strcmp(ret, "FULL") == 0 ||
                            strcmp(ret, "HDRS") == 0))
            rc |= buf_printf(&cmd, " RET=%s", ret);
        if (envid != NULL && envid[0] != '\0') {
            rc |= buf_append_str(&cmd, " ENVID=");
            rc |= smtp_xtext_encode(&cmd, envid, strlen(envid));
        }
    }
    if (rc == 0)
        rc = smtp_session_send(s, "%s", buf_cstr(&cmd));
    buf_free(&cmd);
    return rc == 0 ? 0 : -1;
}

static int rcpt_command(struct smtp_session *s,
                        const struct delivery_recipient *rcpt)
{
    struct buf cmd;
    buf_init(&cmd, SMTP_REPLY_LINE_MAX);
    int rc = buf_printf(&cmd, "RCPT TO:<%s>", rcpt->address);
    if (s->features & SMTP_FEATURE_DSN) {
        if (rcpt->notify != NULL && rcpt->notify[0] != '\0')
            rc |= buf_printf(&cmd, " NOTIFY=%s", rcpt->notify);
        const char *semi = rcpt->orcpt != NULL ? strchr(rcpt->orcpt, ';')
                                               : NULL;
        if (semi != NULL && semi > rcpt->orcpt && semi[1] != '\0') {
            rc |= buf_printf(&cmd, " ORCPT=%.*s;",
                             (int)(semi - rcpt->orcpt), rcpt->orcpt);
            rc |= smtp_xtext_encode(&cmd, semi + 1, strlen(semi + 1));
        }
    }
    if (rc == 0)
        rc = smtp_session_send(s, "%s", buf_cstr(&cmd));
    buf_free(&cmd);
    return rc == 0 ? 0 : -1;
}

/* The content after 354, then "." and its reply.  The converted content
 * when there is one, else the queue file's. */
static int send_content(const struct smtp_config *cfg, struct smtp_session *s,
                        struct smtp_message *msg, const struct buf *converted,
                        struct buf *why)
{
    struct smtp_text text;
    smtp_text_init(&text, (size_t)cfg->line_length_limit);
    struct buf wire;
    buf_init(&wire, 4 * SMTP_WIRE_CHUNK);
    stream_set_timeout(&s->stream, (int)(cfg->data_xfer_timeout * 1000));
    int rc = 0;
    if (converted != NULL) {
        for (size_t off = 0; rc == 0 && off < converted->len;
             off += SMTP_WIRE_CHUNK) {
            size_t n = converted->len - off;
            if (n > SMTP_WIRE_CHUNK)
                n = SMTP_WIRE_CHUNK;
            buf_reset(&wire);
            rc = smtp_text_encode(&text, converted->data + off, n, &wire);
            if (rc == 0 && stream_write(&s->stream, wire.data, wire.len) !=
                               STREAM_OK)
                rc = -1;
        }
    } else {
        delivery_content_rewind(&msg->content, msg->req->content_offset);
        const char *data;
        size_t len;
        int more;
        struct buf error;
        buf_init(&error, 1024);
        while (rc == 0 &&
               (more = delivery_content_next(&msg->content, &data, &len,
                                             &error)) != 0) {
            if (more < 0) {
                log_warn("%s: %s", msg->req->queue_id, buf_cstr(&error));
                rc = -2;
                break;
            }
            buf_reset(&wire);
            rc = smtp_text_encode(&text, data, len, &wire);
            if (rc == 0 && stream_write(&s->stream, wire.data, wire.len) !=
                               STREAM_OK)
                rc = -1;
        }
        buf_free(&error);
    }
    buf_reset(&wire);
    if (rc == 0 && (smtp_text_finish(&text, &wire) != 0 ||
                    stream_write(&s->stream, wire.data, wire.len) !=
                        STREAM_OK))
        rc = -1;
    buf_free(&wire);
    if (rc == -2) {
        buf_set_str(why, "error reading the queue file");
        s->broken = 1;
    } else if (rc != 0) {
        smtp_session_io_error(s, s->stream.error ? s->stream.error
                                                 : STREAM_ERROR,
                              "sending message body", why);
        s->broken = 1;
    }
    return rc;
}

/* The checks that may fail the message before MAIL; 0 to go on. */
static int precheck(const struct smtp_session *s, struct smtp_message *msg,
                    struct buf *converted, int *use_converted)
{
    struct buf text;
    buf_init(&text, 2048);
    long size = msg->req->content_size;
    int rc = 0;
    if ((s->features & SMTP_FEATURE_SIZE) && s->size_limit > 0 &&
        size > s->size_limit) {
        buf_printf(&text, "message size %ld exceeds size limit %ld of server "
                   "%s[%s]", size, s->size_limit, s->host, s->addr);
        local_failure(msg, s, "5.3.4", buf_cstr(&text));
        rc = -1;
    } else if (msg->smtputf8 && msg->envelope_utf8 &&
               !(s->features & SMTP_FEATURE_SMTPUTF8)) {
        buf_printf(&text, "SMTPUTF8 is required, but was not offered by "
                   "host %s[%s]", s->host, s->addr);
        local_failure(msg, s, "5.6.7", buf_cstr(&text));
        rc = -1;
    } else if (msg->eight_bit && !(s->features & SMTP_FEATURE_8BITMIME)) {
        rc = smtp_message_downgrade(msg, converted);
        if (rc == SMTP_MIME_UNSAFE) {
            buf_printf(&text, "host %s[%s] does not support 8BITMIME and "
                       "the message content is not MIME-safe to convert to "
                       "7-bit", s->host, s->addr);
            local_failure(msg, s, "5.6.3", buf_cstr(&text));
        } else if (rc != 0) {
            local_failure(msg, s, "4.3.0", "cannot convert the message to "
                          "7-bit: out of memory");
        }
        *use_converted = rc == 0;
    }
    buf_free(&text);
    return rc;
}

/* After a refused MAIL, the replies to the pipelined RCPTs and DATA
 * are still due: read them, so that QUIT is understood.  A session
 * that does not give them all is not spoken to again. */
static void drain_replies(const struct smtp_config *cfg,
                          struct smtp_session *s,
                          const struct smtp_message *msg)
{
    struct smtp_reply r;
    smtp_reply_init(&r);
    size_t due = 1;   /* DATA */
    for (size_t i = 0; i < msg->req->recipient_count; i++)
        due += !msg->req->recipients[i].answered;
    for (size_t i = 0; i < due && !s->broken; i++)
        if (smtp_session_reply(s, i + 1 < due ? cfg->rcpt_timeout
                                              : cfg->data_init_timeout,
                               &r) != STREAM_OK || r.code == 354)
            s->broken = 1;
    smtp_reply_free(&r);
}

enum smtp_tx_status smtp_transaction(const struct smtp_config *cfg,
                                     struct smtp_session *s,
                                     struct smtp_message *msg,
                                     struct smtp_reply *reply,
                                     struct buf *why)
{
    struct delivery_request *req = msg->req;
    struct buf converted;
    buf_init(&converted, BUF_LIMIT_MAX);
    int use_converted = 0;
    if (precheck(s, msg, &converted, &use_converted) != 0) {
        buf_free(&converted);
        return SMTP_TX_DONE;
    }
    long size = use_converted ? (long)converted.len : req->content_size;
    int pipelined = (s->features & SMTP_FEATURE_PIPELINING) != 0;
    size_t n = req->recipient_count;
    char *accepted = calloc(n + 1, 1);
    enum smtp_tx_status status = SMTP_TX_DONE;
    size_t naccepted = 0;
    int rc = accepted != NULL ? mail_command(s, msg, size) : -1;
    if (rc == 0 && pipelined) {
        for (size_t i = 0; rc == 0 && i < n; i++)
            if (!req->recipients[i].answered)
                rc = rcpt_command(s, &req->recipients[i]);
        if (rc == 0)
            rc = smtp_session_send(s, "DATA");
    }
    const char *stage = "sending MAIL FROM";
    if (rc == 0 && (rc = smtp_session_reply(s, cfg->mail_timeout, reply)) ==
                       STREAM_OK && reply->code / 100 != 2) {
        smtp_session_said(s, reply, "MAIL FROM", why);
        status = reply->code / 100 == 5 ? SMTP_TX_FAIL_5XX : SMTP_TX_RETRY;
        if (pipelined)
            drain_replies(cfg, s, msg);
        goto done;
    }
    stage = "sending RCPT TO";
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (req->recipients[i].answered)
            continue;
        if (!pipelined && (rc = rcpt_command(s, &req->recipients[i])) != 0)
            break;
        if ((rc = smtp_session_reply(s, cfg->rcpt_timeout, reply)) !=
            STREAM_OK)
            break;
        if (reply->code / 100 == 2) {
            accepted[i] = 1;
            naccepted++;
        } else {
            reply_recipient(msg, i, s, reply, "RCPT TO");
        }
    }
    stage = "sending DATA command";
    if (rc == 0 && !pipelined && naccepted > 0)
        rc = smtp_session_send(s, "DATA");
    if (rc == 0 && (pipelined || naccepted > 0))
        rc = smtp_session_reply(s, cfg->data_init_timeout, reply);
    if (rc == 0 && naccepted == 0 && reply->code == 354)
        s->broken = 1;   /* DATA without recipients: not for reuse */
    if (rc != 0 || naccepted == 0)
        goto done;
    const char *command = "DATA";
    if (reply->code == 354) {
        if (send_content(cfg, s, msg, use_converted ? &converted : NULL,
                         why) != 0) {
            status = SMTP_TX_BROKEN;
            goto done;
        }
        stage = "sending end of data -- message may be sent more than once";
        rc = smtp_session_reply(s, cfg->data_done_timeout, reply);
        command = "end of DATA";
    }
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (accepted[i])
            reply_recipient(msg, i, s, reply, command);
done:
    if (rc != 0 && status == SMTP_TX_DONE) {
        smtp_session_io_error(s, rc, stage, why);
        status = SMTP_TX_BROKEN;
    }
    free(accepted);
    buf_free(&converted);
    return status;
}
