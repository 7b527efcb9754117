/*
 * local_mailbox - deliveries that write files: the user's mailbox (an mbox
 * file in mail_spool_directory or under the home, or a Maildir when
 * home_mailbox ends in '/'), and the /file destinations of aliases and
 * .forward files (mbox format; a path ending in '/' is a Maildir).
 *
 * Every write happens while acting as the user (lib/delivery_identity.h),
 * for the mail spool with the spool directory's group added, so that the
 * kernel's permission checks are the user's and new files are the user's.
 * Each message gets "Return-Path: <SENDER>" and "Delivered-To: RECIPIENT"
 * first.  Result texts as Postfix's: "delivered to mailbox", "delivered to
 * maildir", "delivered to file: /path"; failures defer with the writer's
 * code (lib/maildir.h, lib/mbox.h).
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "delivery_identity.h"
#include "local.h"
#include "maildir.h"
#include "mbox.h"

void local_prepend_headers(const struct local_rcpt *r, struct buf *out)
{
    buf_printf(out, "Return-Path: <%s>\nDelivered-To: %s\n", r->req->sender,
               r->address);
}

/* Writes into the Maildir (path ends in '/') or mbox file at path, acting
 * as u with extra_gid.  A Maildir file goes into lc->pending, to be
 * fsynced with the request's commit.  0, or -1 with dsn and why. */
static int local_write(struct local_rcpt *r, const char *path,
                       const struct local_user *u, gid_t extra_gid,
                       const char **dsn, struct buf *why)
{
    struct delivery_identity id;
    if (delivery_identity_enter(&id, u->name, u->uid, u->gid, extra_gid,
                                why) != 0) {
        *dsn = "4.3.0";
        return -1;
    }
    struct buf headers;
    buf_init(&headers, 16 * 1024);
    local_prepend_headers(r, &headers);
    delivery_source_rewind(r->src);
    size_t len = strlen(path);
    int rc;
    if (len > 0 && path[len - 1] == '/') {
        struct sync_group_owner owner = {
            .name = u->name, .uid = u->uid, .gid = u->gid,
            .extra_gid = extra_gid,
        };
        struct maildir_request rq = {
            .path = path, .uid = u->uid, .headers = buf_cstr(&headers),
            .hostname = r->lc->hostname, .pid = r->lc->pid,
            .group = &r->lc->pending, .owner = &owner,
        };
        rc = maildir_deliver(&rq, r->src, NULL, dsn, why);
    } else {
        struct mbox_request rq = {
            .path = path, .uid = u->uid, .sender = r->req->sender,
            .date = (time_t)r->req->arrival_time,
            .headers = buf_cstr(&headers),
        };
        rc = mbox_deliver(&rq, r->src, dsn, why);
    }
    buf_free(&headers);
    delivery_identity_leave(&id);
    return rc;
}

static void local_write_result(struct local_rcpt *r, const char *path,
                               const struct local_user *u, gid_t extra_gid,
                               const char *success, struct local_outcome *o)
{
    const char *dsn = "4.3.0";
    struct buf why;
    buf_init(&why, 8192);
    size_t pending = r->lc->pending.count;
    if (local_write(r, path, u, extra_gid, &dsn, &why) == 0) {
        local_outcome_add(o, DELIVERY_SENT, "2.0.0", success);
        if (r->lc->pending.count > pending)
            o->awaits_commit = 1;
    } else
        local_outcome_add(o, dsn[0] == '5' ? DELIVERY_BOUNCED
                                           : DELIVERY_DEFERRED, dsn,
                          buf_cstr(&why));
    buf_free(&why);
}

void local_deliver_mailbox(struct local_rcpt *r, const struct local_user *u,
                           struct local_outcome *o)
{
    const struct local *lc = r->lc;
    struct buf path;
    buf_init(&path, 8192);
    gid_t extra_gid = (gid_t)-1;
    const char *hm = lc->home_mailbox;
    size_t hm_len = strlen(hm);
    if (hm_len == 0) {
        buf_printf(&path, "%s/%s", lc->mail_spool_directory, u->name);
        /* The spool's group (mail) may create files and dot-locks there;
         * a spool not writable by its group, or of group root, adds none. */
        struct stat st;
        if (stat(lc->mail_spool_directory, &st) == 0 &&
            (st.st_mode & S_IWGRP) && st.st_gid != 0)
            extra_gid = st.st_gid;
    } else {
        /* Always under the home, as Postfix's home_mailbox. */
        while (*hm == '/')
            hm++;
        buf_printf(&path, "%s/%s", u->home, hm);
    }
    int maildir = path.len > 0 && path.data[path.len - 1] == '/';
    local_write_result(r, buf_cstr(&path), u, extra_gid,
                       maildir ? "delivered to maildir"
                               : "delivered to mailbox", o);
    buf_free(&path);
}

void local_deliver_file(struct local_rcpt *r, const struct local_target *t,
                        struct local_outcome *o)
{
    struct buf text;
    buf_init(&text, 8192);
    buf_printf(&text, "delivered to file: %s", t->value);
    local_write_result(r, t->value, &t->as, (gid_t)-1, buf_cstr(&text), o);
    buf_free(&text);
}
