/*
 * local - the local delivery agent: mail for the users of this machine,
 * into their mailboxes, files and commands, through aliases and .forward.
 *
 * master.cf: local unix - n n - - local.  The service keeps root (unpriv
 * n) only for local itself to drop to mail_owner keeping CAP_SETUID and
 * CAP_SETGID (privilege_drop's keep), before any request is read.  A
 * connection carries qmgr's requests one after another
 * (lib/delivery_request.h, docs/protocol.md "Delivery agents"); every
 * recipient gets one result.  The Maildir files of the requests served
 * in a row are fsynced together (local_commit, lib/sync_group.h) before
 * any of their results is told.
 *
 * One recipient, in order:
 *   1. the local part of the address (the domain is ignored: qmgr routed
 *      the address here), in lower case; with recipient_delimiter, the
 *      extension after the first delimiter ("user+ext");
 *   2. a Delivered-To: field of the message equal to the address: bounce
 *      5.4.6 "mail forwarding loop for ADDR";
 *   3. alias_maps, key "user+ext" then "user" (local_expand.c): the value
 *      lists addresses, /files, |commands and :include:/files; addresses
 *      go on as one new message (local_forward.c), the alias's own name
 *      delivers to the mailbox;
 *   4. the Unix account (getpwnam): none is a bounce 5.1.1 "unknown user:
 *      "x"".  Its .forward (forward_path) is expanded like an alias;
 *   5. else the mailbox (local_mailbox.c): home_mailbox, or
 *      mail_spool_directory/USER.
 * Files and mailboxes are written while acting as the user
 * (lib/delivery_identity.h), commands (local_command.c) run as the user
 * in a child.  With home_mailbox, steps 4 and 5 switch to the user once:
 * the .forward look-up and, when there is no .forward, the mailbox; a
 * .forward found is expanded after the switch back.  A table error, a
 * full disk, a permission problem defer with 4.x.y; nothing is left
 * without a result (delivery_request_finish).
 *
 * Limits (local.h): an expansion has at most LOCAL_EXPANSION_MAX (1000)
 * destinations; :include: files nest at most LOCAL_INCLUDE_DEPTH (10)
 * deep; a .forward or :include: file is at most LOCAL_FILE_MAX (1 MiB); the
 * first LOCAL_DELIVERED_TO_MAX (1000) Delivered-To: fields of at most
 * LOCAL_HEADER_MAX (1 MiB) of header are compared.  Over a limit: defer
 * 4.3.0 (for an expansion: bounce 5.3.0 "too many destinations").
 *
 * Log lines: the results, by lib/delivery_request ("ID: to=<a@b>,
 * relay=local, ..., status=sent (delivered to mailbox)"), and warnings for
 * files that are ignored (an unsafe .forward).
 */
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/stat.h>
#include <unistd.h>

#include "delivery_identity.h"
#include "local.h"
#include "log.h"
#include "mail_header.h"
#include "maildir.h"
#include "privilege.h"
#include "server.h"
#include "text.h"

/* ---- the outcome of one recipient ------------------------------------ */

void local_outcome_init(struct local_outcome *o)
{
    o->status = DELIVERY_SENT;
    o->dsn = "2.0.0";
    buf_init(&o->text, 8192);
    o->any = 0;
    o->expanded = 0;
    o->awaits_commit = 0;
}

static int local_status_rank(enum delivery_status s)
{
    switch (s) {
    case DELIVERY_SENT: return 0;
    case DELIVERY_BOUNCED: return 1;
    case DELIVERY_DEFERRED: return 2;
    }
    return 2;
}

void local_outcome_add(struct local_outcome *o, enum delivery_status status,
                       const char *dsn, const char *text)
{
    int first = !o->any;
    o->any = 1;
    if (!first && local_status_rank(status) < local_status_rank(o->status))
        return;
    if (first || local_status_rank(status) > local_status_rank(o->status)) {
        o->status = status;
        o->dsn = dsn;
        buf_reset(&o->text);
    } else if (status != DELIVERY_SENT) {
        return;                 /* the first reason of its kind stays */
    }
    /* Sent texts are joined; what does not fit the buffer is left out. */
    size_t before = o->text.len;
    if ((before > 0 && buf_append_str(&o->text, "; ") != 0) ||
        buf_append_str(&o->text, text) != 0)
        buf_truncate(&o->text, before);
}

void local_outcome_free(struct local_outcome *o)
{
    buf_free(&o->text);
}

/* ---- the message's Delivered-To: fields ------------------------------ */

struct local_header_scan {
    struct buf field;           /* the field being read, folded lines */
    struct text_list *found;
    size_t seen;                /* header bytes read */
    int done;
};

static void local_scan_field(struct local_header_scan *s)
{
    const char *f = s->field.data;
    size_t len = s->field.len;
    if (len == 0 || !mail_header_name_is(f, len, "Delivered-To") ||
        s->found->count >= LOCAL_DELIVERED_TO_MAX)
        return;
    struct buf unfolded;
    buf_init(&unfolded, LOCAL_HEADER_MAX);
    size_t vlen;
    if (mail_header_unfold(f, len, &unfolded) == 0) {
        const char *v = mail_header_value(unfolded.data, unfolded.len, &vlen);
        char *copy = strndup(v, vlen);
        char **grown = realloc(s->found->items,
                               (s->found->count + 1) * sizeof(char *));
        if (copy != NULL && grown != NULL) {
            s->found->items = grown;
            s->found->items[s->found->count++] = strdup(text_trim(copy));
        } else if (grown != NULL) {
            s->found->items = grown;
        }
        free(copy);
    }
    buf_free(&unfolded);
}

/* One physical line (with its LF) of the header. */
static void local_scan_line(struct local_header_scan *s, const char *line,
                            size_t len)
{
    if (mail_header_continues(line, len) && s->field.len > 0) {
        if (buf_append(&s->field, line, len) != 0)
            buf_reset(&s->field);   /* too long: not a Delivered-To */
        return;
    }
    local_scan_field(s);
    buf_reset(&s->field);
    if (!mail_header_starts(line, len)) {
        s->done = 1;
        return;
    }
    if (buf_append(&s->field, line, len) != 0)
        buf_reset(&s->field);
}

/* The values of the header's Delivered-To: fields, in found.  0, or -1
 * when the content cannot be read (error). */
static int local_scan_delivered_to(struct delivery_source *src,
                                   struct text_list *found, struct buf *error)
{
    struct local_header_scan s = { .found = found };
    buf_init(&s.field, 64 * 1024);
    struct buf line;
    buf_init(&line, LOCAL_HEADER_MAX);
    int rc = 0;
    while (!s.done && s.seen < LOCAL_HEADER_MAX) {
        const char *data;
        size_t len;
        rc = delivery_source_next(src, &data, &len, error);
        if (rc <= 0)
            break;
        s.seen += len;
        while (len > 0 && !s.done) {
            const char *nl = memchr(data, '\n', len);
            size_t n = nl != NULL ? (size_t)(nl - data) + 1 : len;
            if (buf_append(&line, data, n) != 0) {
                s.done = 1;
                break;
            }
            if (nl != NULL) {
                local_scan_line(&s, line.data, line.len);
                buf_reset(&line);
            }
            data += n;
            len -= n;
        }
    }
    if (!s.done)
        local_scan_field(&s);
    buf_free(&line);
    buf_free(&s.field);
    delivery_source_rewind(src);
    return rc < 0 ? -1 : 0;
}

/* ---- one recipient ---------------------------------------------------- */

static char *local_lower(const char *s, size_t len)
{
    char *out = strndup(s, len);
    if (out != NULL)
        for (char *p = out; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    return out;
}

/* Splits the address into local part, user, extension.  0 or -1. */
static int local_rcpt_parse(struct local_rcpt *r)
{
    const char *at = strrchr(r->address, '@');
    size_t local_len = at != NULL ? (size_t)(at - r->address)
                                  : strlen(r->address);
    r->domain = at != NULL ? at + 1 : "";
    r->local = local_lower(r->address, local_len);
    if (r->local == NULL)
        return -1;
    size_t user_len = strlen(r->local);
    const char *delims = r->lc->delimiters;
    if (delims[0] != '\0' && r->local[0] != '\0') {
        size_t cut = strcspn(r->local + 1, delims) + 1;
        if (r->local[cut] != '\0') {
            user_len = cut;
            r->extension = strdup(r->local + cut + 1);
            if (r->extension == NULL)
                return -1;
        }
    }
    r->user = strndup(r->local, user_len);
    return r->user != NULL ? 0 : -1;
}

static void local_rcpt_free(struct local_rcpt *r)
{
    free(r->local);
    free(r->user);
    free(r->extension);
}

static int local_is_loop(const struct local_rcpt *r)
{
    for (size_t i = 0; i < r->delivered_to->count; i++)
        if (r->delivered_to->items[i] != NULL &&
            text_equal_nocase(r->delivered_to->items[i], r->address))
            return 1;
    return 0;
}

/* Delivers every destination of an expansion, files and commands and
 * mailboxes first, then the addresses as one new message. */
static void local_deliver_expansion(struct local_rcpt *r,
                                    const struct local_expansion *e,
                                    struct local_outcome *o)
{
    int addresses = 0;
    for (size_t i = 0; i < e->count; i++) {
        const struct local_target *t = &e->targets[i];
        switch (t->kind) {
        case LOCAL_TO_MAILBOX: {
            struct passwd *pw = getpwnam(t->value);
            struct local_user u = { 0 };
            if (pw == NULL) {
                struct buf why;
                buf_init(&why, 1024);
                buf_printf(&why, "unknown user: \"%s\"", t->value);
                local_outcome_add(o, DELIVERY_BOUNCED, "5.1.1",
                                  buf_cstr(&why));
                buf_free(&why);
            } else if (local_user_from_passwd(&u, pw) != 0) {
                local_outcome_add(o, DELIVERY_DEFERRED, "4.3.0",
                                  "out of memory");
            } else {
                local_deliver_mailbox(r, &u, o);
            }
            local_user_free(&u);
            break;
        }
        case LOCAL_TO_FILE:
            local_deliver_file(r, t, o);
            break;
        case LOCAL_TO_COMMAND:
            local_deliver_command(r, t, o);
            break;
        case LOCAL_TO_ADDRESS:
            addresses++;
            break;
        }
    }
    if (addresses > 0)
        local_forward(r, e, o);
}

static void local_deliver_user(struct local_rcpt *r, struct local_outcome *o)
{
    struct passwd *pw = getpwnam(r->user);
    if (pw == NULL) {
        struct buf why;
        buf_init(&why, 1024);
        buf_printf(&why, "unknown user: \"%s\"", r->local);
        local_outcome_add(o, DELIVERY_BOUNCED, "5.1.1", buf_cstr(&why));
        buf_free(&why);
        return;
    }
    struct local_user u;
    if (local_user_from_passwd(&u, pw) != 0) {
        local_outcome_add(o, DELIVERY_DEFERRED, "4.3.0", "out of memory");
        return;
    }
    /* With home_mailbox, the .forward look-up and the mailbox are file
     * work as the same user (no extra group): one switch for both.  It
     * ends before anything else (a .forward's expansion, forwarding). */
    struct delivery_identity held;
    struct buf why;
    buf_init(&why, 1024);
    int holding = r->lc->home_mailbox[0] != '\0' &&
                  delivery_identity_enter(&held, u.name, u.uid, u.gid,
                                          (gid_t)-1, &why) == 0;
    buf_free(&why);
    struct local_expansion e;
    local_expansion_init(&e);
    int found = local_expand_forward(r, &u, holding ? &held : NULL, &e, o);
    if (found > 0)
        local_deliver_expansion(r, &e, o);
    else if (found == 0)
        local_deliver_mailbox(r, &u, o);
    if (holding)
        delivery_identity_leave(&held);
    local_expansion_free(&e);
    local_user_free(&u);
}

static void local_deliver_one(struct local_rcpt *r, struct local_outcome *o)
{
    if (local_rcpt_parse(r) != 0) {
        local_outcome_add(o, DELIVERY_DEFERRED, "4.3.0", "out of memory");
        return;
    }
    if (local_is_loop(r)) {
        struct buf why;
        buf_init(&why, 8192);
        buf_printf(&why, "mail forwarding loop for %s", r->address);
        local_outcome_add(o, DELIVERY_BOUNCED, "5.4.6", buf_cstr(&why));
        buf_free(&why);
        return;
    }
    struct local_expansion e;
    local_expansion_init(&e);
    int found = local_expand_alias(r, &e, o);
    if (found > 0)
        local_deliver_expansion(r, &e, o);
    else if (found == 0)
        local_deliver_user(r, o);
    local_expansion_free(&e);
}

static void local_answer(struct delivery_request *req, size_t i,
                         struct local_outcome *o)
{
    if (!o->any)
        local_outcome_add(o, DELIVERY_DEFERRED, "4.3.0",
                          "delivery agent gave no result");
    /* Texts hold paths, commands and command output: no control
     * characters may reach the log or the notice. */
    for (size_t k = 0; k < o->text.len; k++)
        if ((unsigned char)o->text.data[k] < 0x20 || o->text.data[k] == 0x7f)
            o->text.data[k] = ' ';
    struct delivery_result res = {
        .status = o->status, .dsn = o->dsn, .text = buf_cstr(&o->text),
        .relay = "local",
        .action = o->expanded ? "expanded" : "delivered",
        .awaits_commit = o->awaits_commit,
    };
    delivery_request_reply(req, i, &res);
}

/* ---- the request ------------------------------------------------------ */

static void local_defer_all(struct delivery_request *req, const char *why)
{
    struct delivery_result res = {
        .status = DELIVERY_DEFERRED, .dsn = "4.3.0", .text = why,
        .relay = "local",
    };
    delivery_request_reply_all(req, &res);
}

static void local_serve_request(struct local *lc, struct delivery_request *req)
{
    struct buf error;
    buf_init(&error, 4096);
    struct delivery_content content;
    if (delivery_content_open(&content, req, &error) != 0) {
        log_warn("%s: %s", req->queue_id, buf_cstr(&error));
        local_defer_all(req, "cannot read the queue file");
        buf_free(&error);
        return;
    }
    struct delivery_source_content state;
    struct delivery_source src;
    delivery_source_from_content(&src, &state, &content, req->content_offset);
    struct text_list delivered_to = { NULL, 0 };
    if (local_scan_delivered_to(&src, &delivered_to, &error) != 0) {
        log_warn("%s: %s", req->queue_id, buf_cstr(&error));
        local_defer_all(req, "cannot read the queue file");
    }
    for (size_t i = 0; i < req->recipient_count; i++) {
        if (req->recipients[i].answered)
            continue;
        struct local_rcpt r = {
            .lc = lc, .req = req, .index = i,
            .address = req->recipients[i].address, .src = &src,
            .delivered_to = &delivered_to,
        };
        struct local_outcome o;
        local_outcome_init(&o);
        delivery_source_rewind(&src);
        local_deliver_one(&r, &o);
        local_answer(req, i, &o);
        local_outcome_free(&o);
        local_rcpt_free(&r);
    }
    text_list_free(&delivered_to);
    delivery_content_close(&content);
    buf_free(&error);
}

static void local_serve(void *ctx, struct delivery_request *req)
{
    local_serve_request(ctx, req);
}

/* The commit of the requests served since the last one: the Maildir
 * files they wrote are fsynced together (lib/sync_group.h); when that
 * fails, every one of them is removed again and deferred. */
static int local_commit(void *ctx, const char **dsn, struct buf *why)
{
    struct local *lc = ctx;
    return maildir_group_commit(&lc->pending, dsn, why);
}

static void local_service(struct server *srv, int client_fd)
{
    /* client_fd stays the skeleton's, which closes it afterwards. */
    delivery_request_serve_all(srv, client_fd, "local", local_serve,
                               local_commit, srv->app);
}

/* ---- start-up --------------------------------------------------------- */

/* "alias, forward, include" as LOCAL_ALLOW_* bits. */
static unsigned local_allow_bits(struct config *cfg, const char *name)
{
    struct text_list list = { NULL, 0 };
    config_get_list(cfg, name, &list);
    unsigned bits = 0;
    for (size_t i = 0; i < list.count; i++) {
        if (text_equal_nocase(list.items[i], "alias"))
            bits |= LOCAL_ALLOW_ALIAS;
        else if (text_equal_nocase(list.items[i], "forward"))
            bits |= LOCAL_ALLOW_FORWARD;
        else if (text_equal_nocase(list.items[i], "include"))
            bits |= LOCAL_ALLOW_INCLUDE;
        else
            log_warn("%s: unknown class \"%s\" (alias, forward or include)",
                     name, list.items[i]);
    }
    text_list_free(&list);
    return bits;
}

/* default_privs; an instance without root acts as its own user for it. */
static void local_default_privs(struct local *lc, int privileged)
{
    const char *name = config_get_str(lc->cfg, "default_privs");
    struct passwd *pw = privileged ? getpwnam(name) : getpwuid(geteuid());
    if (pw == NULL)
        log_fatal("default_privs %s: no such user", name);
    if (privileged && pw->pw_uid == 0)
        log_fatal("default_privs %s: must not be root", name);
    lc->default_privs_name = strdup(pw->pw_name);
    lc->default_privs_home = strdup(pw->pw_dir);
    if (lc->default_privs_name == NULL || lc->default_privs_home == NULL)
        log_fatal("out of memory");
    lc->default_privs = *pw;
    lc->default_privs.pw_name = lc->default_privs_name;
    lc->default_privs.pw_dir = lc->default_privs_home;
    lc->default_privs.pw_shell = NULL;
    lc->default_privs.pw_passwd = NULL;
    lc->default_privs.pw_gecos = NULL;
}

/* The daemon's state, for the life of the process. */
static struct local local_state;

/* Drops to mail_owner keeping CAP_SETUID and CAP_SETGID, before the
 * skeleton sets the parent-death signal (a uid change would reset it). */
static void local_pre_drop(struct server *srv)
{
    int privileged = privilege_is_root();
    local_state.trusted_uid = privileged ? 0 : getuid();
    static const cap_value_t keep[] = { CAP_SETUID, CAP_SETGID };
    if (privilege_drop(config_get_str(srv->cfg, "mail_owner"), NULL, keep,
                       privileged ? 2 : 0) != 0)
        log_fatal("cannot drop privileges");
}

static void local_init(struct server *srv)
{
    struct local *lc = &local_state;
    lc->cfg = srv->cfg;
    lc->delimiters = config_get_str(srv->cfg, "recipient_delimiter");
    lc->home_mailbox = config_get_str(srv->cfg, "home_mailbox");
    lc->mail_spool_directory = config_get_str(srv->cfg,
                                              "mail_spool_directory");
    lc->forward_path = config_get_raw(srv->cfg, "forward_path");
    lc->myorigin = config_get_str(srv->cfg, "myorigin");
    lc->allow_commands = local_allow_bits(srv->cfg, "allow_mail_to_commands");
    lc->allow_files = local_allow_bits(srv->cfg, "allow_mail_to_files");
    lc->command_time_limit = config_get_time(srv->cfg, "command_time_limit");
    lc->ipc_timeout_ms = (int)config_get_time(srv->cfg, "ipc_timeout") * 1000;
    local_default_privs(lc, privilege_has_effective(CAP_SETUID));
    lc->pid = getpid();
    sync_group_init(&lc->pending);
    if (gethostname(lc->hostname, sizeof(lc->hostname)) != 0 ||
        lc->hostname[0] == '\0')
        (void)text_copy(lc->hostname, sizeof(lc->hostname), "localhost");
    lc->hostname[sizeof(lc->hostname) - 1] = '\0';
    struct buf error;
    buf_init(&error, 4096);
    lc->aliases = map_list_open(config_get_str(srv->cfg, "alias_maps"), 0,
                                &error);
    if (lc->aliases == NULL)
        log_fatal("alias_maps: out of memory");
    if (error.len > 0)
        log_warn("alias_maps: %s", buf_cstr(&error));
    buf_free(&error);
    srv->app = lc;
}

int main(int argc, char **argv)
{
    static const struct server_spec spec = {
        .mode = SERVER_SINGLE,
        .pre_drop = local_pre_drop,
        .init = local_init,
        .service = local_service,
    };
    return server_main(argc, argv, &spec);
}
