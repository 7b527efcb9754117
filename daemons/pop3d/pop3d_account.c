/*
 * pop3d_account - the parent's half of a login: the password check against
 * pop3d_password_maps and the account behind the name.
 *
 *   "user@domain"  a virtual user: the Maildir is virtual_mailbox_base/
 *                  plus the value of virtual_mailbox_maps (relative, no
 *                  ".." component), uid and gid from virtual_uid_maps and
 *                  virtual_gid_maps (as Postfix's virtual(8) finds them).
 *   "user"         a local Unix user: ~/Maildir/, uid and gid from the
 *                  passwd entry.
 * uid 0 is never an account, nor any uid below virtual_minimum_uid for a
 * virtual user.  The parent runs this for the name and password that the
 * login child forwards, so a login child taken over by an attacker can
 * still not open a mailbox without its password.
 */
#include <errno.h>
#include <pwd.h>
#include <string.h>

#include "log.h"
#include "password.h"
#include "pop3d.h"
#include "text.h"

/* The first table that knows the user decides (as smtpd_auth.c does). */
static int account_password(const struct pop3d *d, const char *user,
                            const char *password, struct buf *error)
{
    const struct map_list *maps = d->passwords;
    if (maps == NULL || map_list_count(maps) == 0) {
        (void)buf_printf(error, "pop3d_password_maps is empty");
        return PASSWORD_UNKNOWN_USER;
    }
    return password_check_maps(maps, user, password, error);
}

/* A uid or gid from a table: a decimal number, 1..2^31-1. */
static int account_lookup_id(const struct map_list *maps, const char *what,
                             const char *user, long *id, struct buf *error)
{
    struct buf value;
    buf_init(&value, 4096);
    int r = maps ? map_list_lookup(maps, user, &value, error)
                 : TABLE_NOT_FOUND;
    int rc = POP3D_AUTH_OK;
    if (r == TABLE_ERROR) {
        rc = POP3D_AUTH_TEMP;
    } else if (r != TABLE_FOUND) {
        (void)buf_printf(error, "%s has no entry for %s", what, user);
        rc = POP3D_AUTH_NO_MAILBOX;
    } else if (value.data == NULL ||
               text_parse_long(text_trim(value.data), 1, 0x7fffffffL,
                               id) != 0) {
        (void)buf_printf(error, "%s: bad value for %s", what, user);
        rc = POP3D_AUTH_NO_MAILBOX;
    }
    buf_free(&value);
    return rc;
}

/* A relative path without "." or ".." components. */
static int account_safe_path(const char *path)
{
    if (path[0] == '\0' || path[0] == '/')
        return 0;
    const char *p = path;
    while (*p) {
        size_t n = strcspn(p, "/");
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return 0;
        p += n;
        while (*p == '/')
            p++;
    }
    return 1;
}

static int account_virtual(const struct pop3d *d, const char *user,
                           struct pop3d_account *acct, struct buf *error)
{
    struct buf value;
    buf_init(&value, 4096);
    int r = d->mailboxes ? map_list_lookup(d->mailboxes, user, &value, error)
                         : TABLE_NOT_FOUND;
    int rc = POP3D_AUTH_OK;
    char *path = r == TABLE_FOUND && value.data != NULL
        ? text_trim(value.data) : NULL;
    if (r == TABLE_ERROR) {
        rc = POP3D_AUTH_TEMP;
    } else if (path == NULL) {
        (void)buf_printf(error, "virtual_mailbox_maps has no entry for %s",
                         user);
        rc = POP3D_AUTH_NO_MAILBOX;
    } else if (!account_safe_path(path) || d->mailbox_base[0] != '/') {
        (void)buf_printf(error, "mailbox of %s is not a relative path "
                         "under an absolute virtual_mailbox_base", user);
        rc = POP3D_AUTH_NO_MAILBOX;
    }
    long uid = 0, gid = 0;
    if (rc == POP3D_AUTH_OK)
        rc = account_lookup_id(d->uids, "virtual_uid_maps", user, &uid,
                               error);
    if (rc == POP3D_AUTH_OK)
        rc = account_lookup_id(d->gids, "virtual_gid_maps", user, &gid,
                               error);
    if (rc == POP3D_AUTH_OK && uid < d->minimum_uid) {
        (void)buf_printf(error, "uid %ld of %s is below virtual_minimum_uid",
                         uid, user);
        rc = POP3D_AUTH_NO_MAILBOX;
    }
    if (rc == POP3D_AUTH_OK) {
        acct->uid = (uid_t)uid;
        acct->gid = (gid_t)gid;
        size_t n = strlen(path);
        if (buf_printf(&acct->maildir, "%s/%s%s", d->mailbox_base, path,
                       path[n - 1] == '/' ? "" : "/") != 0)
            rc = POP3D_AUTH_TEMP;
    }
    buf_free(&value);
    return rc;
}

static int account_local(const char *user, struct pop3d_account *acct,
                         struct buf *error)
{
    errno = 0;
    struct passwd *pw = getpwnam(user);
    if (pw == NULL) {
        (void)buf_printf(error, "no Unix user %s", user);
        return errno == 0 || errno == ENOENT ? POP3D_AUTH_NO_MAILBOX
                                             : POP3D_AUTH_TEMP;
    }
    if (pw->pw_uid == 0 || pw->pw_dir == NULL || pw->pw_dir[0] != '/') {
        (void)buf_printf(error, "user %s: root or no home directory", user);
        return POP3D_AUTH_NO_MAILBOX;
    }
    acct->uid = pw->pw_uid;
    acct->gid = pw->pw_gid;
    if (buf_printf(&acct->maildir, "%s/Maildir/", pw->pw_dir) != 0)
        return POP3D_AUTH_TEMP;
    return POP3D_AUTH_OK;
}

int pop3d_account_login(const struct pop3d *d, const char *user,
                        const char *password, struct pop3d_account *acct,
                        struct buf *error)
{
    if (!pop3d_valid_user_name(user))
        return POP3D_AUTH_BAD;  /* the login child checked it already */
    switch (account_password(d, user, password, error)) {
    case PASSWORD_OK:
        break;
    case PASSWORD_ERROR:
        return POP3D_AUTH_TEMP;
    default:
        return POP3D_AUTH_BAD;
    }
    if (text_copy(acct->user, sizeof(acct->user), user) != 0)
        return POP3D_AUTH_BAD;
    buf_reset(&acct->maildir);
    if (strchr(user, '@') != NULL)
        return account_virtual(d, user, acct, error);
    return account_local(user, acct, error);
}
