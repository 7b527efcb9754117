/*
 * local_expand - what an alias, an :include: file or a .forward file
 * expands to: a list of destinations (struct local_expansion, local.h).
 *
 * Items (tables/alias_source.h splits the list; double quotes around an
 * item are removed):
 *   |command        run by /bin/sh -c (allow_mail_to_commands)
 *   /file           appended in mbox format; /dir/ is a Maildir
 *                   (allow_mail_to_files)
 *   :include:/path  the items of that file, one or more a line, '#'
 *                   comments; nested at most LOCAL_INCLUDE_DEPTH deep
 *   \name, or the alias's (the user's) own name: that user's mailbox,
 *                   without looking at aliases again (no loop)
 *   anything else   an address, sent on through cleanup
 *
 * Who files and commands run as, and whether they may be used at all:
 *   - an alias: only when its table file belongs to root (to the
 *     instance's user when it runs without root) and the class "alias" is
 *     allowed; then as default_privs.  Tables named in main.cf itself
 *     (inline:, static:, unix:) count as root's;
 *   - a .forward: the user's own file (owned by the user, not writable by
 *     group or others, or it is ignored with a warning), as the user,
 *     class "forward";
 *   - an :include: file: never writable by group or others, read with the
 *     privileges of where it was named; owned by root (by the instance's
 *     user without root) its files and commands run as default_privs,
 *     owned by another user as that user; class "include".
 * A refused file or command bounces (5.7.1 "mail to file is restricted").
 * Files are read while acting as the user they run as.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alias_source.h"
#include "delivery_identity.h"
#include "local.h"
#include "log.h"
#include "table.h"
#include "text.h"

void local_expansion_init(struct local_expansion *e)
{
    memset(e, 0, sizeof(*e));
}

void local_expansion_free(struct local_expansion *e)
{
    for (size_t i = 0; i < e->count; i++) {
        free(e->targets[i].value);
        local_user_free(&e->targets[i].as);
    }
    free(e->targets);
    free(e->sender);
    memset(e, 0, sizeof(*e));
}

static void local_fail(struct local_outcome *o, enum delivery_status status,
                       const char *dsn, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void local_fail(struct local_outcome *o, enum delivery_status status,
                       const char *dsn, const char *fmt, ...)
{
    struct buf why;
    buf_init(&why, 8192);
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&why, fmt, ap);
    va_end(ap);
    local_outcome_add(o, status, dsn, buf_cstr(&why));
    buf_free(&why);
}

/* Adds one destination, once.  0, or -1 (o says why). */
static int local_add_target(struct local_expansion *e, enum local_kind kind,
                            const char *value, size_t len,
                            const struct local_user *as,
                            struct local_outcome *o)
{
    for (size_t i = 0; i < e->count; i++)
        if (e->targets[i].kind == kind &&
            strlen(e->targets[i].value) == len &&
            strncasecmp(e->targets[i].value, value, len) == 0)
            return 0;
    if (e->count >= LOCAL_EXPANSION_MAX) {
        local_fail(o, DELIVERY_BOUNCED, "5.3.0", "too many destinations "
                   "in the expansion (more than %d)", LOCAL_EXPANSION_MAX);
        return -1;
    }
    if (e->count == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 8;
        struct local_target *grown = realloc(e->targets, cap * sizeof(*grown));
        if (grown == NULL)
            goto nomem;
        e->targets = grown;
        e->cap = cap;
    }
    struct local_target *t = &e->targets[e->count];
    memset(t, 0, sizeof(*t));
    t->kind = kind;
    t->value = strndup(value, len);
    if (t->value == NULL || local_user_copy(&t->as, as) != 0) {
        free(t->value);
        goto nomem;
    }
    e->count++;
    return 0;
nomem:
    local_outcome_add(o, DELIVERY_DEFERRED, "4.3.0", "out of memory");
    return -1;
}

/* The item names the alias or user itself: "name", "\name" or
 * "name@DOMAIN" with the recipient's domain.  The name goes to *name. */
static int local_is_self(const struct local_rcpt *r, const char *item,
                         size_t len, const char *self, const char **name,
                         size_t *name_len)
{
    int escaped = len > 0 && item[0] == '\\';
    if (escaped) {
        item++;
        len--;
    }
    size_t local_len = len;
    const char *at = memchr(item, '@', len);
    if (at != NULL) {
        local_len = (size_t)(at - item);
        const char *dom = at + 1;
        size_t dom_len = len - local_len - 1;
        if (strlen(r->domain) != dom_len ||
            strncasecmp(dom, r->domain, dom_len) != 0)
            return 0;
    }
    *name = item;
    *name_len = local_len;
    if (escaped)
        return 1;
    return strlen(self) == local_len && strncasecmp(item, self, local_len) == 0;
}

/* Reads a .forward or :include: file while acting as `as`.  Checks: no
 * symlink, a regular file, not writable by group or others, at most
 * LOCAL_FILE_MAX.  1 read (owner in *owner), 0 missing, -1 error with
 * errno (EPERM: unsafe; why says what). */
static int local_read_file(const char *path, const struct local_user *as,
                           struct buf *text, uid_t *owner, struct buf *why)
{
    struct delivery_identity id;
    if (delivery_identity_enter(&id, as->name, as->uid, as->gid, (gid_t)-1,
                                why) != 0) {
        errno = EACCES;
        return -1;
    }
    int rc = -1;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0) {
        int err = errno;
        if (err == ENOENT || err == ENOTDIR)
            rc = 0;
        else
            buf_printf(why, "cannot open %s: %s", path, strerror(err));
        errno = err == ELOOP ? EPERM : err;
    } else if (fstat(fd, &st) != 0) {
        buf_printf(why, "cannot stat %s: %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode) || (st.st_mode & 022) != 0) {
        buf_printf(why, "%s is not a regular file, or is writable by group "
                   "or others", path);
        errno = EPERM;
    } else if (st.st_size > LOCAL_FILE_MAX) {
        buf_printf(why, "%s is larger than %d bytes", path, LOCAL_FILE_MAX);
        errno = EFBIG;
    } else {
        *owner = st.st_uid;
        rc = 1;
        char chunk[8192];
        ssize_t n;
        while ((n = read(fd, chunk, sizeof(chunk))) > 0)
            if (buf_append(text, chunk, (size_t)n) != 0)
                break;
        if (n != 0) {
            buf_printf(why, "cannot read %s: %s", path, strerror(errno));
            rc = -1;
        }
    }
    if (fd >= 0)
        close(fd);
    int err = errno;
    delivery_identity_leave(&id);
    errno = err;
    return rc;
}

/* The lines of an :include: or .forward file as one list value: '#'
 * lines dropped, line ends turned into commas. */
static void local_file_to_list(struct buf *text)
{
    size_t out = 0;
    int line_start = 1, comment = 0;
    for (size_t i = 0; i < text->len; i++) {
        char c = text->data[i];
        if (line_start) {
            size_t j = i;
            while (j < text->len && (text->data[j] == ' ' ||
                                     text->data[j] == '\t'))
                j++;
            comment = j < text->len && text->data[j] == '#';
            line_start = 0;
        }
        if (c == '\n') {
            line_start = 1;
            comment = 0;
            text->data[out++] = ',';
        } else if (!comment) {
            text->data[out++] = c == '\0' ? ' ' : c;
        }
    }
    buf_truncate(text, out);
}

static int local_expand_include(struct local_rcpt *r,
                                struct local_expansion *e, const char *path,
                                const char *self, const struct local_user *as,
                                int depth, struct local_outcome *o)
{
    if (depth >= LOCAL_INCLUDE_DEPTH) {
        local_fail(o, DELIVERY_BOUNCED, "5.3.0", ":include: files nested "
                   "more than %d deep at %s", LOCAL_INCLUDE_DEPTH, path);
        return -1;
    }
    if (path[0] != '/') {
        local_fail(o, DELIVERY_BOUNCED, "5.3.0", ":include: path is not "
                   "absolute: %s", path);
        return -1;
    }
    struct buf text, why;
    buf_init(&text, LOCAL_FILE_MAX + 1);
    buf_init(&why, 4096);
    uid_t owner = 0;
    int rc = local_read_file(path, as, &text, &owner, &why);
    if (rc == 0) {
        local_fail(o, DELIVERY_DEFERRED, "4.3.0", "cannot open include "
                   "file %s: No such file or directory", path);
        rc = -1;
    } else if (rc < 0) {
        local_fail(o, DELIVERY_DEFERRED, errno == EPERM ? "4.7.0" : "4.3.0",
                   ":include: %s", buf_cstr(&why));
    } else {
        /* Root's file: default_privs; anybody else's: its owner. */
        struct local_user other = { 0 };
        const struct passwd *pw = &r->lc->default_privs;
        if (owner != 0 && owner != r->lc->trusted_uid)
            pw = getpwuid(owner);
        if (pw == NULL || local_user_from_passwd(&other, pw) != 0) {
            local_fail(o, DELIVERY_DEFERRED, "4.3.0", ":include: file %s: "
                       "unknown owner uid %ld", path, (long)owner);
            rc = -1;
        }
        const struct local_user *runs_as = &other;
        if (rc > 0) {
            local_file_to_list(&text);
            rc = local_expand_value(r, e, text.data, text.len, self,
                                    LOCAL_ALLOW_INCLUDE, runs_as, depth + 1,
                                    o);
        }
        local_user_free(&other);
    }
    buf_free(&text);
    buf_free(&why);
    return rc < 0 ? -1 : 0;
}

/* One item of a list value. */
static int local_expand_item(struct local_rcpt *r, struct local_expansion *e,
                             const char *item, size_t len, const char *self,
                             unsigned class, const struct local_user *as,
                             int depth, struct local_outcome *o)
{
    if (len >= 2 && item[0] == '"' && item[len - 1] == '"') {
        item++;
        len -= 2;
    }
    while (len > 0 && (item[0] == ' ' || item[0] == '\t')) {
        item++;
        len--;
    }
    if (len == 0)
        return 0;
    const struct local *lc = r->lc;
    if (item[0] == '|') {
        if (!(lc->allow_commands & class)) {
            local_fail(o, DELIVERY_BOUNCED, "5.7.1",
                       "mail to command is restricted");
            return -1;
        }
        return local_add_target(e, LOCAL_TO_COMMAND, item + 1, len - 1, as,
                                o);
    }
    if (item[0] == '/') {
        if (!(lc->allow_files & class)) {
            local_fail(o, DELIVERY_BOUNCED, "5.7.1",
                       "mail to file is restricted");
            return -1;
        }
        return local_add_target(e, LOCAL_TO_FILE, item, len, as, o);
    }
    if (len > 9 && strncasecmp(item, ":include:", 9) == 0) {
        char *path = strndup(item + 9, len - 9);
        if (path == NULL) {
            local_outcome_add(o, DELIVERY_DEFERRED, "4.3.0", "out of memory");
            return -1;
        }
        int rc = local_expand_include(r, e, text_trim(path), self, as, depth,
                                      o);
        free(path);
        return rc;
    }
    const char *name;
    size_t name_len;
    if (local_is_self(r, item, len, self, &name, &name_len))
        return local_add_target(e, LOCAL_TO_MAILBOX, name, name_len, as, o);
    return local_add_target(e, LOCAL_TO_ADDRESS, item, len, as, o);
}

int local_expand_value(struct local_rcpt *r, struct local_expansion *e,
                       const char *value, size_t len, const char *self,
                       unsigned class, const struct local_user *as,
                       int depth, struct local_outcome *o)
{
    const char *cursor = value, *item;
    size_t item_len;
    while (alias_list_next(&cursor, value + len, &item, &item_len))
        if (local_expand_item(r, e, item, item_len, self, class, as, depth,
                              o) != 0)
            return -1;
    return 0;
}

/* ---- aliases ----------------------------------------------------------- */

/* Whether a table's file belongs to root (or the instance's user). */
static int local_table_trusted(const struct local *lc, struct table *t)
{
    const char *spec = table_spec(t);
    const char *colon = strchr(spec, ':');
    if (colon == NULL)
        return 0;
    size_t type_len = (size_t)(colon - spec);
    const char *name = colon + 1;
    if (name[0] != '/')
        return 1;   /* inline:, static:, unix: are main.cf's own */
    struct buf path;
    buf_init(&path, 8192);
    if ((type_len == 4 && strncmp(spec, "hash", 4) == 0) ||
        (type_len == 5 && strncmp(spec, "btree", 5) == 0))
        buf_printf(&path, "%s.db", name);
    else
        buf_append_str(&path, name);
    struct stat st;
    int trusted = stat(buf_cstr(&path), &st) == 0 &&
                  (st.st_uid == 0 || st.st_uid == lc->trusted_uid);
    buf_free(&path);
    return trusted;
}

/* Looks key up table by table: TABLE_FOUND with the table in *found. */
static int local_alias_lookup(const struct local *lc, const char *key,
                              struct buf *value, struct table **found,
                              struct buf *error)
{
    for (size_t i = 0; i < map_list_count(lc->aliases); i++) {
        const char *why = NULL;
        struct table *t = map_list_table(lc->aliases, i, &why);
        if (t == NULL) {
            buf_printf(error, "%s", why != NULL ? why : "table not open");
            return TABLE_ERROR;
        }
        int rc = table_lookup(t, key, value, error);
        if (rc != TABLE_NOT_FOUND) {
            *found = t;
            return rc;
        }
    }
    return TABLE_NOT_FOUND;
}

/* owner-KEY, when the tables have it, becomes the expansion's sender. */
static int local_alias_owner(struct local_rcpt *r, struct local_expansion *e,
                             const char *key, struct local_outcome *o)
{
    struct buf owner, value, error;
    buf_init(&owner, TABLE_KEY_MAX);
    buf_init(&value, TABLE_VALUE_MAX);
    buf_init(&error, 4096);
    int rc = -1;
    if (buf_printf(&owner, "owner-%s", key) != 0) {
        rc = 0;     /* no such key can exist */
    } else {
        struct table *t;
        switch (local_alias_lookup(r->lc, buf_cstr(&owner), &value, &t,
                                   &error)) {
        case TABLE_FOUND:
            buf_printf(&owner, "@%s", r->lc->myorigin);
            e->sender = strdup(buf_cstr(&owner));
            rc = e->sender != NULL ? 0 : -1;
            if (rc != 0)
                local_outcome_add(o, DELIVERY_DEFERRED, "4.3.0",
                                  "out of memory");
            break;
        case TABLE_NOT_FOUND:
            rc = 0;
            break;
        default:
            local_fail(o, DELIVERY_DEFERRED, "4.3.0", "alias_maps lookup "
                       "error for %s: %s", buf_cstr(&owner),
                       buf_cstr(&error));
            break;
        }
    }
    buf_free(&owner);
    buf_free(&value);
    buf_free(&error);
    return rc;
}

int local_expand_alias(struct local_rcpt *r, struct local_expansion *e,
                       struct local_outcome *o)
{
    const char *keys[2] = { r->local, r->extension != NULL ? r->user : NULL };
    struct buf value, error;
    buf_init(&value, TABLE_VALUE_MAX);
    buf_init(&error, 4096);
    int found = 0;
    for (size_t k = 0; k < 2 && keys[k] != NULL && found == 0; k++) {
        struct table *t = NULL;
        switch (local_alias_lookup(r->lc, keys[k], &value, &t, &error)) {
        case TABLE_NOT_FOUND:
            continue;
        case TABLE_ERROR:
            local_fail(o, DELIVERY_DEFERRED, "4.3.0", "alias_maps lookup "
                       "error for %s: %s", keys[k], buf_cstr(&error));
            found = -1;
            continue;
        default:
            break;
        }
        struct local_user privs;
        if (local_user_from_passwd(&privs, &r->lc->default_privs) != 0) {
            local_outcome_add(o, DELIVERY_DEFERRED, "4.3.0", "out of memory");
            found = -1;
            break;
        }
        unsigned class = local_table_trusted(r->lc, t) ? LOCAL_ALLOW_ALIAS : 0;
        found = 1;
        if (local_alias_owner(r, e, keys[k], o) != 0 ||
            local_expand_value(r, e, value.data, value.len, keys[k], class,
                               &privs, 0, o) != 0)
            found = -1;
        local_user_free(&privs);
    }
    buf_free(&value);
    buf_free(&error);
    return found;
}

/* ---- .forward ---------------------------------------------------------- */

/* forward_path with $home, $user, $extension, $recipient_delimiter,
 * $local, $domain, $recipient (also as ${name}); others are empty.  The
 * values from the address may not hold '/' (no "../" into other files):
 * such a path is left empty, so it is skipped. */
static void local_expand_path(const struct local_rcpt *r,
                              const struct local_user *u, const char *path,
                              struct buf *out)
{
    for (const char *p = path; *p; p++) {
        if (*p != '$') {
            buf_append_char(out, *p);
            continue;
        }
        const char *name = p + 1;
        size_t len;
        if (*name == '{') {
            const char *close = strchr(name, '}');
            if (close == NULL)
                return;
            name++;
            len = (size_t)(close - name);
            p = close;
        } else {
            len = strspn(name, "abcdefghijklmnopqrstuvwxyz_");
            p = name + len - 1;
        }
        const struct { const char *name; const char *value; } vars[] = {
            { "home", u->home }, { "user", u->name },
            { "extension", r->extension },
            { "recipient_delimiter", r->lc->delimiters },
            { "local", r->local }, { "domain", r->domain },
            { "recipient", r->address },
        };
        for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
            if (strlen(vars[i].name) != len ||
                strncmp(vars[i].name, name, len) != 0 || !vars[i].value)
                continue;
            if (i >= 2 && strchr(vars[i].value, '/') != NULL) {
                buf_reset(out);
                return;
            }
            buf_append_str(out, vars[i].value);
        }
    }
}

int local_expand_forward(struct local_rcpt *r, const struct local_user *u,
                         struct delivery_identity *held,
                         struct local_expansion *e, struct local_outcome *o)
{
    struct text_list paths = { NULL, 0 };
    if (map_list_split(r->lc->forward_path, &paths) != 0) {
        local_outcome_add(o, DELIVERY_DEFERRED, "4.3.0", "out of memory");
        return -1;
    }
    struct buf path, text, why;
    buf_init(&path, 8192);
    buf_init(&text, LOCAL_FILE_MAX + 1);
    buf_init(&why, 4096);
    int found = 0;
    for (size_t i = 0; i < paths.count && found == 0; i++) {
        buf_reset(&path);
        buf_reset(&text);
        buf_reset(&why);
        local_expand_path(r, u, paths.items[i], &path);
        if (path.len == 0 || path.data[0] != '/')
            continue;
        uid_t owner = 0;
        int rc = local_read_file(buf_cstr(&path), u, &text, &owner, &why);
        if (rc < 0 && (errno == EPERM || errno == EACCES) &&
            delivery_identity_possible(u->uid)) {
            log_warn("%s: ignoring %s", r->req->queue_id, buf_cstr(&why));
            continue;
        }
        if (rc < 0) {
            local_fail(o, DELIVERY_DEFERRED, "4.3.0", "%s", buf_cstr(&why));
            found = -1;
        } else if (rc > 0 && owner != u->uid) {
            log_warn("%s: ignoring %s: owned by uid %ld, not by %s",
                     r->req->queue_id, buf_cstr(&path), (long)owner, u->name);
        } else if (rc > 0) {
            if (held != NULL)
                delivery_identity_leave(held);
            local_file_to_list(&text);
            found = local_expand_value(r, e, text.data, text.len, u->name,
                                       LOCAL_ALLOW_FORWARD, u, 0, o) == 0
                        ? 1 : -1;
            if (found > 0 && e->count == 0)
                found = 0;      /* an empty .forward: the mailbox */
        }
    }
    text_list_free(&paths);
    buf_free(&path);
    buf_free(&text);
    buf_free(&why);
    return found;
}
