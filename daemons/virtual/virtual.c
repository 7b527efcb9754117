/*
 * virtual - the delivery agent of virtual mailbox domains (Postfix's
 * virtual(8)): mail for addresses in virtual_mailbox_maps goes into a
 * Maildir or an mbox file under virtual_mailbox_base, owned by the uid and
 * gid that virtual_uid_maps and virtual_gid_maps give, no system account
 * needed.
 *
 * master.cf `virtual unix - n n - - virtual`: the service keeps root
 * until init, which opens nothing more and drops to mail_owner keeping
 * CAP_SETUID and CAP_SETGID only, for lib/delivery_identity's file system
 * identity switch.  The tables are opened before that, as root
 * (pre_drop).
 *
 * qmgr's delivery requests (docs/protocol.md, "Delivery agents") one
 * after another on a connection; each recipient in turn:
 *   1. its domain must be in virtual_mailbox_domains (else deferred 4.3.5:
 *      qmgr should not have sent it here);
 *   2. virtual_mailbox_maps (keys user+ext@domain, user@domain, @domain)
 *      gives the mailbox, a path relative to virtual_mailbox_base; ending
 *      in "/" it is a Maildir, else an mbox file.  Not found: bounced
 *      5.1.1 "unknown user".  A value with a ".." component or an
 *      absolute path is refused (deferred 4.3.5);
 *   3. virtual_uid_maps and virtual_gid_maps (same keys; "static:N" for
 *      all) give the owner; a uid below virtual_minimum_uid is refused
 *      (deferred 4.3.5 with the reason);
 *   4. as that uid and gid: the quota (virtual_mailbox_limit_maps, bytes,
 *      for either kind; else virtual_mailbox_limit for mbox files, 0 no
 *      limit), over it deferred 4.2.2 "mailbox full" (qmgr bounces the
 *      message when it has been in the queue too long), then lib/maildir
 *      or lib/mbox with Return-Path: and Delivered-To: put first.  A
 *      symlink where the mailbox should be is refused by both (deferred).
 * A recipient already named in a Delivered-To: field of the message is a
 * loop: bounced 5.4.6 "mail forwarding loop for ADDR".
 * Results: sent 2.0.0 "delivered to maildir" / "delivered to mailbox",
 * relay=virtual.  The Maildir files of the requests served in a row are
 * fsynced together before any of their results is told (virtual_commit,
 * lib/sync_group.h).
 */
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/capability.h>

#include "buf.h"
#include "config.h"
#include "delivery_identity.h"
#include "delivery_request.h"
#include "delivery_source.h"
#include "domain_list.h"
#include "log.h"
#include "mail_header.h"
#include "maildir.h"
#include "map_list.h"
#include "mbox.h"
#include "privilege.h"
#include "server.h"
#include "text.h"
#include "virtual_quota.h"

#define VIRTUAL_PATH_MAX 4096
/* The most of a message header read for the Delivered-To: loop check. */
#define VIRTUAL_HEADER_MAX (1024 * 1024)

struct virtual_config {
    struct domain_list *domains;      /* virtual_mailbox_domains */
    struct map_list *mailboxes;       /* virtual_mailbox_maps */
    struct map_list *uids;            /* virtual_uid_maps */
    struct map_list *gids;            /* virtual_gid_maps */
    struct map_list *limits;          /* virtual_mailbox_limit_maps */
    const char *base;                 /* virtual_mailbox_base */
    const char *delimiter;            /* recipient_delimiter */
    long minimum_uid;                 /* virtual_minimum_uid */
    long mbox_limit;                  /* virtual_mailbox_limit */
    struct sync_group *pending;       /* Maildir files not yet fsynced */
};

/* The daemon's settings, filled before the privilege drop and closed after
 * server_main returns (open Berkeley DB handles at exit would show as
 * leaks under the sanitizers). */
static struct virtual_config virtual_settings;
/* The Maildir files written since the last commit (virtual_commit). */
static struct sync_group virtual_pending;

/* A recipient's mailbox, once looked up. */
struct virtual_mailbox {
    struct buf path;                  /* base/value */
    int maildir;                      /* the value ended in "/" */
    uid_t uid;
    gid_t gid;
    unsigned long long limit;         /* 0: none */
};

/* A result being made: status, code and text. */
struct virtual_outcome {
    enum delivery_status status;
    const char *dsn;
    struct buf text;
    int awaits_commit;                /* its Maildir file is pending */
};

static void outcome_set(struct virtual_outcome *o, enum delivery_status s,
                        const char *dsn, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void outcome_set(struct virtual_outcome *o, enum delivery_status s,
                        const char *dsn, const char *fmt, ...)
{
    o->status = s;
    o->dsn = dsn;
    o->awaits_commit = 0;
    buf_reset(&o->text);
    va_list ap;
    va_start(ap, fmt);
    (void)buf_vprintf(&o->text, fmt, ap);
    va_end(ap);
}

/* --- Looking the recipient up ------------------------------------------- */

/* A table value without white space at either end ("" when empty). */
static const char *trimmed(struct buf *value)
{
    return value->len > 0 ? text_trim(value->data) : "";
}

/* 1 found (value set), 0 not found, -1 table error (outcome set). */
static int lookup(const struct virtual_config *cfg, const struct map_list *maps,
                  const char *param, const char *address, struct buf *value,
                  struct virtual_outcome *out)
{
    struct buf error;
    buf_init(&error, 4096);
    int rc = map_list_lookup_address(maps, address, cfg->delimiter, 0, value,
                                     &error);
    if (rc == TABLE_ERROR)
        outcome_set(out, DELIVERY_DEFERRED, "4.3.0",
                    "%s lookup failed: %s", param, buf_cstr(&error));
    buf_free(&error);
    return rc == TABLE_FOUND ? 1 : rc == TABLE_NOT_FOUND ? 0 : -1;
}

/* A number from a table: 0 and *n, or -1 (outcome set). */
static int lookup_number(const struct virtual_config *cfg,
                         const struct map_list *maps, const char *param,
                         const char *address, long max, long *n,
                         struct virtual_outcome *out)
{
    struct buf value;
    buf_init(&value, 4096);
    int rc = lookup(cfg, maps, param, address, &value, out);
    if (rc == 0)
        outcome_set(out, DELIVERY_DEFERRED, "4.3.5",
                    "mail system configuration error: no %s entry for %s",
                    param, address);
    else if (rc == 1 &&
             text_parse_long(trimmed(&value), 0, max, n) != 0) {
        outcome_set(out, DELIVERY_DEFERRED, "4.3.5",
                    "mail system configuration error: bad %s value for %s",
                    param, address);
        rc = -1;
    }
    buf_free(&value);
    return rc == 1 ? 0 : -1;
}

/* True when path is relative and has no "." or ".." component. */
static int mailbox_value_safe(const char *value)
{
    if (value[0] == '\0' || value[0] == '/')
        return 0;
    for (const char *p = value; *p != '\0';) {
        size_t len = strcspn(p, "/");
        if ((len == 1 && p[0] == '.') ||
            (len == 2 && p[0] == '.' && p[1] == '.'))
            return 0;
        p += len;
        p += *p == '/';
    }
    return 1;
}

static int domain_is_ours(const struct virtual_config *cfg,
                          const char *address, struct virtual_outcome *out)
{
    const char *at = strrchr(address, '@');
    struct buf error;
    buf_init(&error, 4096);
    int m = at != NULL ? domain_list_match(cfg->domains, at + 1, &error)
                       : DOMAIN_LIST_NO_MATCH;
    if (m == DOMAIN_LIST_ERROR)
        outcome_set(out, DELIVERY_DEFERRED, "4.3.0",
                    "virtual_mailbox_domains lookup failed: %s",
                    buf_cstr(&error));
    else if (m == DOMAIN_LIST_NO_MATCH)
        outcome_set(out, DELIVERY_DEFERRED, "4.3.5",
                    "mail system configuration error: the domain of %s is "
                    "not in virtual_mailbox_domains", address);
    buf_free(&error);
    return m == DOMAIN_LIST_MATCH;
}

/* 0 with mb filled, or -1 with the outcome set. */
static int mailbox_find(const struct virtual_config *cfg, const char *address,
                        struct virtual_mailbox *mb,
                        struct virtual_outcome *out)
{
    if (!domain_is_ours(cfg, address, out))
        return -1;
    struct buf value;
    buf_init(&value, VIRTUAL_PATH_MAX);
    int rc = lookup(cfg, cfg->mailboxes, "virtual_mailbox_maps", address,
                    &value, out);
    if (rc == 0)
        outcome_set(out, DELIVERY_BOUNCED, "5.1.1", "unknown user: \"%s\"",
                    address);
    if (rc == 1 && !mailbox_value_safe(trimmed(&value))) {
        outcome_set(out, DELIVERY_DEFERRED, "4.3.5",
                    "mail system configuration error: unsafe mailbox "
                    "path for %s", address);
        rc = -1;
    }
    if (rc == 1 && (cfg->base[0] != '/' ||
                    buf_printf(&mb->path, "%s/%s", cfg->base,
                               trimmed(&value)) != 0)) {
        outcome_set(out, DELIVERY_DEFERRED, "4.3.5",
                    "mail system configuration error: virtual_mailbox_base "
                    "must be an absolute path");
        rc = -1;
    }
    buf_free(&value);
    if (rc != 1)
        return -1;
    mb->maildir = mb->path.data[mb->path.len - 1] == '/';
    long uid, gid;
    if (lookup_number(cfg, cfg->uids, "virtual_uid_maps", address,
                      (long)(uid_t)-2, &uid, out) != 0 ||
        lookup_number(cfg, cfg->gids, "virtual_gid_maps", address,
                      (long)(gid_t)-2, &gid, out) != 0)
        return -1;
    if (uid < cfg->minimum_uid) {
        outcome_set(out, DELIVERY_DEFERRED, "4.3.5",
                    "mail system configuration error: uid %ld of %s is "
                    "below virtual_minimum_uid %ld", uid, address,
                    cfg->minimum_uid);
        return -1;
    }
    mb->uid = (uid_t)uid;
    mb->gid = (gid_t)gid;
    mb->limit = mb->maildir ? 0 : (unsigned long long)cfg->mbox_limit;
    if (map_list_count(cfg->limits) == 0)
        return 0;
    buf_init(&value, 4096);
    rc = lookup(cfg, cfg->limits, "virtual_mailbox_limit_maps", address,
                &value, out);
    long limit;
    if (rc == 1 && text_parse_long(trimmed(&value), 0, LONG_MAX,
                                   &limit) != 0) {
        outcome_set(out, DELIVERY_DEFERRED, "4.3.5",
                    "mail system configuration error: bad "
                    "virtual_mailbox_limit_maps value for %s", address);
        rc = -1;
    }
    if (rc == 1)
        mb->limit = (unsigned long long)limit;
    buf_free(&value);
    return rc < 0 ? -1 : 0;
}

/* --- Delivering --------------------------------------------------------- */

/* 0 when the message fits, -1 with the outcome set. */
static int quota_check(const struct virtual_mailbox *mb,
                       unsigned long long message_size,
                       struct virtual_outcome *out)
{
    if (mb->limit == 0)
        return 0;
    struct buf why;
    buf_init(&why, 4096);
    unsigned long long used;
    int rc = mb->maildir ? virtual_quota_maildir(buf_cstr(&mb->path), &used,
                                                 &why)
                         : virtual_quota_mbox(buf_cstr(&mb->path), &used,
                                              &why);
    if (rc != 0)
        outcome_set(out, DELIVERY_DEFERRED, "4.3.0", "cannot size the "
                    "mailbox: %s", buf_cstr(&why));
    else if (used > mb->limit || message_size > mb->limit - used) {
        outcome_set(out, DELIVERY_DEFERRED, "4.2.2", "mailbox full");
        rc = -1;
    }
    buf_free(&why);
    return rc;
}

/* A Maildir file goes into pending, fsynced with the request's commit. */
static void mailbox_write(struct delivery_request *req,
                          const struct virtual_mailbox *mb,
                          const char *headers, struct delivery_source *src,
                          struct sync_group *pending,
                          struct virtual_outcome *out)
{
    struct buf why;
    buf_init(&why, 4096);
    const char *dsn = "4.3.0";
    size_t pending_before = pending->count;
    int rc;
    if (mb->maildir) {
        struct sync_group_owner owner = {
            .name = NULL, .uid = mb->uid, .gid = mb->gid,
            .extra_gid = (gid_t)-1,
        };
        struct maildir_request rq = {
            .path = buf_cstr(&mb->path), .uid = mb->uid, .headers = headers,
            .group = pending, .owner = &owner,
        };
        rc = maildir_deliver(&rq, src, NULL, &dsn, &why);
    } else {
        struct mbox_request rq = {
            .path = buf_cstr(&mb->path), .uid = mb->uid,
            .sender = req->sender, .date = (time_t)req->arrival_time,
            .headers = headers,
        };
        rc = mbox_deliver(&rq, src, &dsn, &why);
    }
    if (rc == 0) {
        outcome_set(out, DELIVERY_SENT, "2.0.0", "delivered to %s",
                    mb->maildir ? "maildir" : "mailbox");
        out->awaits_commit = pending->count > pending_before;
    } else
        outcome_set(out, DELIVERY_DEFERRED, dsn, "%s", buf_cstr(&why));
    buf_free(&why);
}

/* The message header (up to its empty line, at most VIRTUAL_HEADER_MAX),
 * for the loop check.  0, or -1 with error. */
static int header_read(struct delivery_content *content, off_t offset,
                       struct buf *header, struct buf *error)
{
    const char *data;
    size_t len;
    int rc;
    delivery_content_rewind(content, offset);
    while ((rc = delivery_content_next(content, &data, &len, error)) == 1) {
        size_t room = VIRTUAL_HEADER_MAX - header->len;
        if (buf_append(header, data, len < room ? len : room) != 0)
            return -1;
        if (header->len == 0)
            continue;
        const char *end = memmem(header->data, header->len, "\n\n", 2);
        if (header->data[0] == '\n' || end != NULL) {
            buf_truncate(header, end != NULL
                                     ? (size_t)(end - header->data) + 1
                                     : 0);
            return 0;
        }
        if (header->len >= VIRTUAL_HEADER_MAX)
            return 0;
    }
    return rc;
}

/* True when the header has "Delivered-To: address" (RFC 5321 section
 * 6.3's loop detection, as every Postfix delivery agent does it). */
static int delivered_before(const struct buf *header, const char *address)
{
    size_t addr_len = strlen(address);
    for (size_t pos = 0; pos < header->len;) {
        const char *line = header->data + pos;
        const char *nl = memchr(line, '\n', header->len - pos);
        size_t len = nl != NULL ? (size_t)(nl - line) : header->len - pos;
        pos += len + 1;
        if (!mail_header_name_is(line, len, "Delivered-To"))
            continue;
        size_t vlen;
        const char *value = mail_header_value(line, len, &vlen);
        while (vlen > 0 && (value[vlen - 1] == ' ' ||
                            value[vlen - 1] == '\t' ||
                            value[vlen - 1] == '\r'))
            vlen--;
        if (vlen == addr_len && strncasecmp(value, address, vlen) == 0)
            return 1;
    }
    return 0;
}

static void deliver_one(const struct virtual_config *cfg,
                        struct delivery_request *req,
                        struct delivery_content *content,
                        const struct buf *header,
                        const struct delivery_recipient *rcpt,
                        struct virtual_outcome *out)
{
    if (delivered_before(header, rcpt->address)) {
        outcome_set(out, DELIVERY_BOUNCED, "5.4.6",
                    "mail forwarding loop for %s", rcpt->address);
        return;
    }
    struct virtual_mailbox mb;
    buf_init(&mb.path, VIRTUAL_PATH_MAX);
    struct buf headers;
    buf_init(&headers, 3 * VIRTUAL_PATH_MAX);
    if (mailbox_find(cfg, rcpt->address, &mb, out) != 0)
        goto done;
    if (buf_printf(&headers, "Return-Path: <%s>\nDelivered-To: %s\n",
                   req->sender, rcpt->address) != 0) {
        outcome_set(out, DELIVERY_DEFERRED, "4.3.0", "address too long");
        goto done;
    }
    struct delivery_identity id;
    struct buf why;
    buf_init(&why, 4096);
    if (delivery_identity_enter(&id, NULL, mb.uid, mb.gid, (gid_t)-1,
                                &why) != 0) {
        outcome_set(out, DELIVERY_DEFERRED, "4.3.0", "%s", buf_cstr(&why));
        buf_free(&why);
        goto done;
    }
    buf_free(&why);
    unsigned long long size =
        (unsigned long long)req->content_size + headers.len;
    if (quota_check(&mb, size, out) == 0) {
        struct delivery_source_content state;
        struct delivery_source src;
        delivery_content_rewind(content, req->content_offset);
        delivery_source_from_content(&src, &state, content,
                                     req->content_offset);
        mailbox_write(req, &mb, buf_cstr(&headers), &src, cfg->pending,
                      out);
    }
    delivery_identity_leave(&id);
done:
    buf_free(&headers);
    buf_free(&mb.path);
}

static void virtual_serve(void *ctx, struct delivery_request *req)
{
    const struct virtual_config *cfg = ctx;
    struct delivery_content content;
    struct buf header, error;
    buf_init(&header, VIRTUAL_HEADER_MAX);
    buf_init(&error, 4096);
    int opened = delivery_content_open(&content, req, &error) == 0;
    if (opened && header_read(&content, req->content_offset, &header,
                              &error) != 0) {
        delivery_content_close(&content);
        opened = 0;
    }
    if (!opened) {
        log_warn("%s: %s", req->queue_id, buf_cstr(&error));
        struct delivery_result res = {
            .status = DELIVERY_DEFERRED, .dsn = "4.3.0",
            .text = "cannot read the queue file", .relay = "virtual",
        };
        (void)delivery_request_reply_all(req, &res);
    } else {
        struct virtual_outcome out;
        buf_init(&out.text, 8192);
        for (size_t i = 0; i < req->recipient_count; i++) {
            deliver_one(cfg, req, &content, &header, &req->recipients[i],
                        &out);
            struct delivery_result res = {
                .status = out.status, .dsn = out.dsn,
                .text = buf_cstr(&out.text), .relay = "virtual",
                .awaits_commit = out.awaits_commit,
            };
            if (delivery_request_reply(req, i, &res) != 0)
                break;
        }
        buf_free(&out.text);
        delivery_content_close(&content);
    }
    buf_free(&header);
    buf_free(&error);
}

/* The Maildir files of the requests served since the last commit are
 * fsynced together (lib/sync_group.h); when that fails, every one of
 * them is removed again and deferred. */
static int virtual_commit(void *ctx, const char **dsn, struct buf *why)
{
    const struct virtual_config *cfg = ctx;
    return maildir_group_commit(cfg->pending, dsn, why);
}

static void virtual_service(struct server *srv, int fd)
{
    delivery_request_serve_all(srv, fd, "virtual", virtual_serve,
                               virtual_commit, srv->app);
}

/* --- Start-up ----------------------------------------------------------- */

static struct map_list *open_maps(struct config *c, const char *param)
{
    struct buf error;
    buf_init(&error, 8192);
    struct map_list *maps = map_list_open(config_get_str(c, param), 0,
                                          &error);
    if (maps == NULL)
        log_fatal("%s: out of memory", param);
    if (error.len > 0)
        log_warn("%s: %s", param, buf_cstr(&error));
    buf_free(&error);
    return maps;
}

/* As root: the tables, which may be readable by root only. */
static void virtual_pre_drop(struct server *srv)
{
    struct virtual_config *cfg = &virtual_settings;
    struct config *c = srv->cfg;
    struct buf error;
    buf_init(&error, 8192);
    cfg->domains = domain_list_create(
        config_get_str(c, "virtual_mailbox_domains"), 0, &error);
    if (cfg->domains == NULL)
        log_fatal("virtual_mailbox_domains: out of memory");
    if (error.len > 0)
        log_warn("virtual_mailbox_domains: %s", buf_cstr(&error));
    buf_free(&error);
    cfg->mailboxes = open_maps(c, "virtual_mailbox_maps");
    cfg->uids = open_maps(c, "virtual_uid_maps");
    cfg->gids = open_maps(c, "virtual_gid_maps");
    cfg->limits = open_maps(c, "virtual_mailbox_limit_maps");
    cfg->base = config_get_str(c, "virtual_mailbox_base");
    cfg->delimiter = config_get_str(c, "recipient_delimiter");
    cfg->minimum_uid = config_get_int(c, "virtual_minimum_uid");
    cfg->mbox_limit = config_get_size(c, "virtual_mailbox_limit");
    sync_group_init(&virtual_pending);
    cfg->pending = &virtual_pending;
    srv->app = cfg;
}

/* mail_owner, with only what the identity switch needs. */
static void virtual_init(struct server *srv)
{
    static const cap_value_t keep[] = { CAP_SETUID, CAP_SETGID };
    if (privilege_drop(config_get_str(srv->cfg, "mail_owner"), NULL, keep,
                       2) != 0)
        log_fatal("cannot drop privileges");
}

int main(int argc, char **argv)
{
    static const struct server_spec spec = {
        .mode = SERVER_SINGLE,
        .pre_drop = virtual_pre_drop,
        .init = virtual_init,
        .service = virtual_service,
    };
    int rc = server_main(argc, argv, &spec);
    map_list_free(virtual_settings.mailboxes);
    map_list_free(virtual_settings.uids);
    map_list_free(virtual_settings.gids);
    map_list_free(virtual_settings.limits);
    domain_list_free(virtual_settings.domains);
    sync_group_free(&virtual_pending);
    return rc;
}
