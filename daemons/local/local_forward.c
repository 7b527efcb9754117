/*
 * local_forward - the addresses an alias or .forward expands to, sent on
 * as ONE new message through cleanup (lib/cleanup_client.h): origin
 * "local", the same content with "Delivered-To: RECIPIENT" first (so that
 * a loop comes back and is seen, local.c), each new recipient with the
 * original recipient's ORCPT (or rfc822;RECIPIENT) and NOTIFY.  The sender
 * is the message's, or owner-ALIAS@$myorigin when the alias has an owner
 * (a null sender stays null).  An address without a domain gets
 * @$myorigin.  Header and body checks are not run again
 * (CLEANUP_FLAG_NO_CHECKS); address rewriting is.
 *
 * Result: sent, action "expanded", "forwarded as NEWID"; cleanup's defer
 * or a lost connection defers (4.3.0), a reject bounces with its code.
 */
#include <string.h>

#include "cleanup_client.h"
#include "local.h"
#include "log.h"

static int local_forward_recipients(struct local_rcpt *r,
                                    const struct local_expansion *e,
                                    struct cleanup_client *c,
                                    struct buf *error)
{
    const struct delivery_recipient *orig = &r->req->recipients[r->index];
    struct buf orcpt, address;
    buf_init(&orcpt, 8192);
    buf_init(&address, 8192);
    if (orig->orcpt != NULL)
        buf_append_str(&orcpt, orig->orcpt);
    else
        buf_printf(&orcpt, "rfc822;%s", r->address);
    int rc = 0;
    for (size_t i = 0; i < e->count && rc == 0; i++) {
        const struct local_target *t = &e->targets[i];
        if (t->kind != LOCAL_TO_ADDRESS)
            continue;
        buf_reset(&address);
        buf_append_str(&address, t->value);
        if (strchr(t->value, '@') == NULL)
            buf_printf(&address, "@%s", r->lc->myorigin);
        rc = cleanup_client_add_recipient(c, buf_cstr(&address),
                                          buf_cstr(&orcpt), orig->notify,
                                          error);
    }
    buf_free(&orcpt);
    buf_free(&address);
    return rc;
}

static int local_forward_content(struct local_rcpt *r,
                                 struct cleanup_client *c, struct buf *error)
{
    struct buf header;
    buf_init(&header, 8192);
    buf_printf(&header, "Delivered-To: %s\n", r->address);
    int rc = cleanup_client_write(c, header.data, header.len, error);
    buf_free(&header);
    if (rc != 0)
        return -1;
    delivery_source_rewind(r->src);
    const char *data;
    size_t len;
    struct buf read_error;
    buf_init(&read_error, 1024);
    while ((rc = delivery_source_next(r->src, &data, &len, &read_error)) == 1)
        if (cleanup_client_write(c, data, len, error) != 0)
            break;
    if (rc < 0) {
        buf_printf(error, "cannot read the queue file: %s",
                   buf_cstr(&read_error));
        cleanup_client_abort(c);
    }
    buf_free(&read_error);
    return rc == 0 ? 0 : -1;
}

static void local_forward_verdict(const struct cleanup_result *res,
                                  struct local_outcome *o)
{
    struct buf text;
    buf_init(&text, 8192);
    switch (res->status) {
    case CLEANUP_OK:
    case CLEANUP_HOLD:
    case CLEANUP_DISCARD:
        buf_printf(&text, "forwarded as %s", res->queue_id);
        o->expanded = 1;
        local_outcome_add(o, DELIVERY_SENT, "2.0.0", buf_cstr(&text));
        break;
    case CLEANUP_REJECT:
        buf_printf(&text, "forwarding rejected: %d %s %s", res->code,
                   res->dsn, buf_cstr(&res->text));
        local_outcome_add(o, DELIVERY_BOUNCED,
                          "5.3.0",
                          buf_cstr(&text));
        break;
    case CLEANUP_DEFER:
        buf_printf(&text, "cannot forward: %d %s %s", res->code, res->dsn,
                   buf_cstr(&res->text));
        local_outcome_add(o, DELIVERY_DEFERRED, "4.3.0", buf_cstr(&text));
        break;
    }
    buf_free(&text);
}

void local_forward(struct local_rcpt *r, const struct local_expansion *e,
                   struct local_outcome *o)
{
    /* cleanup may keep it waiting: what is delivered so far is told
     * first. */
    delivery_request_commit(r->req);
    const char *sender = r->req->sender;
    if (e->sender != NULL && sender[0] != '\0')
        sender = e->sender;
    struct record env;
    record_init(&env);
    record_add_str(&env, "sender", sender);
    record_add_long(&env, "flags", CLEANUP_FLAG_NO_CHECKS);
    record_add_str(&env, "origin", "local");
    const char *copied[] = { "dsn_envid", "dsn_ret", "encoding", "smtputf8" };
    for (size_t i = 0; i < sizeof(copied) / sizeof(copied[0]); i++) {
        const char *v = delivery_request_attr(r->req, copied[i]);
        if (v != NULL)
            record_add_str(&env, copied[i], v);
    }
    struct buf error;
    buf_init(&error, 4096);
    struct cleanup_client c;
    int rc = cleanup_client_open(&c, CLEANUP_SOCKET, r->lc->ipc_timeout_ms,
                                 &env, &error);
    record_free(&env);
    if (rc == 0 && local_forward_recipients(r, e, &c, &error) == 0 &&
        local_forward_content(r, &c, &error) == 0) {
        struct cleanup_result res;
        cleanup_result_init(&res);
        if (cleanup_client_finish(&c, &res, &error) == 0) {
            local_forward_verdict(&res, o);
            if (res.status == CLEANUP_OK || res.status == CLEANUP_HOLD)
                log_info("%s: forwarded to cleanup as %s", r->req->queue_id,
                         res.queue_id);
            rc = 1;
        }
        cleanup_result_free(&res);
    }
    if (rc != 1) {
        struct buf text;
        buf_init(&text, 8192);
        buf_printf(&text, "cannot forward: %s", buf_cstr(&error));
        local_outcome_add(o, DELIVERY_DEFERRED, "4.3.0", buf_cstr(&text));
        buf_free(&text);
    }
    buf_free(&error);
}
