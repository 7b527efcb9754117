/*
 * smtpd_anvil - per-client limits with the counts that the anvil service
 * keeps (lib/anvil_client.h), with Postfix's parameter names:
 *   smtpd_client_connection_count_limit  sessions open at once
 *   smtpd_client_connection_rate_limit   connects per anvil_rate_time_unit
 *   smtpd_client_message_rate_limit      MAIL commands per time unit
 *   smtpd_client_recipient_rate_limit    RCPT commands per time unit
 * 0 turns a limit off.  Clients that match
 * smtpd_client_event_limit_exceptions (default $mynetworks) are never
 * counted.  When anvil cannot be reached the session goes on without
 * limits, with a warning, as Postfix does: a missing counter must not
 * stop the mail.
 *
 * Replies and logs are Postfix's: "421 4.7.0 HOST Error: too many
 * connections from ADDR" and "warning: Connection concurrency limit
 * exceeded: N from NAME[ADDR] for service S"; "450 4.7.1 Error: too much
 * mail from ADDR"; "450 4.7.1 Error: too many recipients from ADDR".
 */
#include "log.h"
#include "smtpd.h"

#define SMTPD_ANVIL_TIMEOUT_MS 2000

void smtpd_anvil_init(struct smtpd *d)
{
    d->connection_count_limit =
        config_get_int(d->cfg, "smtpd_client_connection_count_limit");
    d->connection_rate_limit =
        config_get_int(d->cfg, "smtpd_client_connection_rate_limit");
    d->message_rate_limit =
        config_get_int(d->cfg, "smtpd_client_message_rate_limit");
    d->recipient_rate_limit =
        config_get_int(d->cfg, "smtpd_client_recipient_rate_limit");
    struct text_list items;
    config_get_list(d->cfg, "smtpd_client_event_limit_exceptions", &items);
    struct buf error;
    buf_init(&error, 1024);
    d->limit_exceptions = network_list_create(items.items, items.count,
                                              &error);
    if (d->limit_exceptions == NULL)
        log_warn("smtpd_client_event_limit_exceptions: %s: no client is "
                 "exempt from the limits", buf_cstr(&error));
    buf_free(&error);
    text_list_free(&items);
}

static int smtpd_anvil_wanted(const struct smtpd *d)
{
    return d->connection_count_limit > 0 || d->connection_rate_limit > 0 ||
           d->message_rate_limit > 0 || d->recipient_rate_limit > 0;
}

int smtpd_anvil_connect(struct smtpd_session *s)
{
    const struct smtpd *d = s->smtpd;
    if (!smtpd_anvil_wanted(d) ||
        (d->limit_exceptions != NULL &&
         network_list_match(d->limit_exceptions, s->client_addr,
                            s->client_name)))
        return 0;
    long count = 0, rate = 0;
    struct buf error;
    buf_init(&error, 1024);
    if (anvil_client_connect(&s->anvil, ANVIL_SOCKET, d->service,
                             s->client_addr, SMTPD_ANVIL_TIMEOUT_MS, &count,
                             &rate, &error) != 0) {
        log_warn("anvil: %s; connection limits are not enforced",
                 buf_cstr(&error));
        buf_free(&error);
        return 0;
    }
    buf_free(&error);
    s->anvil_limited = 1;
    const char *what = NULL;
    long seen = 0;
    if (d->connection_count_limit > 0 && count > d->connection_count_limit) {
        what = "Connection concurrency";
        seen = count;
    } else if (d->connection_rate_limit > 0 &&
               rate > d->connection_rate_limit) {
        what = "Connection rate";
        seen = rate;
    }
    if (what == NULL)
        return 0;
    log_warn("%s limit exceeded: %ld from %s for service %s", what, seen,
             s->client_id, d->service);
    smtpd_reply(s, "421 4.7.0 %s Error: too many connections from %s",
                d->myhostname, s->client_addr);
    return -1;
}

/* One event; -1 after the 450 when the rate is over limit. */
static int smtpd_anvil_event(struct smtpd_session *s, long limit,
                             int (*count)(struct anvil_client *, long *,
                                          struct buf *),
                             const char *what, const char *reply)
{
    if (!s->anvil_limited || limit <= 0)
        return 0;
    long rate = 0;
    struct buf error;
    buf_init(&error, 1024);
    int rc = count(&s->anvil, &rate, &error);
    if (rc != 0)
        log_warn("anvil: %s; rate limits are not enforced", buf_cstr(&error));
    buf_free(&error);
    if (rc != 0 || rate <= limit)
        return 0;
    log_warn("%s rate limit exceeded: %ld from %s for service %s", what, rate,
             s->client_id, s->smtpd->service);
    smtpd_reply(s, "%s %s", reply, s->client_addr);
    return -1;
}

int smtpd_anvil_message(struct smtpd_session *s)
{
    return smtpd_anvil_event(s, s->smtpd->message_rate_limit,
                             anvil_client_message,
                             "Message delivery request",
                             "450 4.7.1 Error: too much mail from");
}

int smtpd_anvil_recipient(struct smtpd_session *s)
{
    return smtpd_anvil_event(s, s->smtpd->recipient_rate_limit,
                             anvil_client_recipient, "Recipient address",
                             "450 4.7.1 Error: too many recipients from");
}

void smtpd_anvil_disconnect(struct smtpd_session *s)
{
    anvil_client_disconnect(&s->anvil);
    s->anvil_limited = 0;
}
