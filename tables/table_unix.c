/*
 * table_unix - the unix: table type, the system's account databases
 * through getpwnam_r/getgrnam_r (so NSS: files, LDAP, ...):
 *   unix:passwd.byname  key a user name (case kept), value the passwd(5)
 *                       line "name:x:uid:gid:gecos:home:shell"
 *   unix:group.byname   key a group name, value "name:x:gid:member,member"
 * Listing walks getpwent/getgrent.  Any other unix: map is an open error.
 *
 *     table_open("unix:passwd.byname", 0, &error);
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "table_driver.h"

enum unix_map {
    UNIX_PASSWD,
    UNIX_GROUP,
};

/* Room for getpwnam_r's strings; doubled while it answers ERANGE. */
#define UNIX_BUFFER_START 1024
#define UNIX_BUFFER_MAX (1024 * 1024)

static int unix_open(struct table *t, const char *name, struct buf *error)
{
    enum unix_map kind;
    if (strcmp(name, "passwd.byname") == 0)
        kind = UNIX_PASSWD;
    else if (strcmp(name, "group.byname") == 0)
        kind = UNIX_GROUP;
    else {
        (void)buf_printf(error, "%s: unknown unix: map \"%s\" "
                                "(passwd.byname, group.byname)",
                         t->spec, name);
        return -1;
    }
    enum unix_map *map = malloc(sizeof(*map));
    if (map == NULL) {
        (void)buf_printf(error, "%s: %s", t->spec, strerror(ENOMEM));
        return -1;
    }
    *map = kind;
    t->state = map;
    return 0;
}

static int format_passwd(const struct passwd *pw, struct buf *value)
{
    buf_reset(value);
    return buf_printf(value, "%s:%s:%lu:%lu:%s:%s:%s", pw->pw_name,
                      pw->pw_passwd ? pw->pw_passwd : "x",
                      (unsigned long)pw->pw_uid, (unsigned long)pw->pw_gid,
                      pw->pw_gecos ? pw->pw_gecos : "",
                      pw->pw_dir ? pw->pw_dir : "",
                      pw->pw_shell ? pw->pw_shell : "");
}

static int format_group(const struct group *gr, struct buf *value)
{
    buf_reset(value);
    if (buf_printf(value, "%s:%s:%lu:", gr->gr_name,
                   gr->gr_passwd ? gr->gr_passwd : "x",
                   (unsigned long)gr->gr_gid) != 0)
        return -1;
    for (char **member = gr->gr_mem; member && *member; member++)
        if (buf_printf(value, "%s%s", member == gr->gr_mem ? "" : ",",
                       *member) != 0)
            return -1;
    return 0;
}

/* One getpwnam_r or getgrnam_r call into scratch; 0 found, 1 not found,
 * or an errno value. */
static int get_entry(enum unix_map map, const char *key, char *scratch,
                     size_t size, struct buf *value)
{
    if (map == UNIX_PASSWD) {
        struct passwd pw, *found = NULL;
        int err = getpwnam_r(key, &pw, scratch, size, &found);
        if (err != 0)
            return err;
        if (found == NULL)
            return 1;
        return format_passwd(found, value) == 0 ? 0 : errno;
    }
    struct group gr, *found = NULL;
    int err = getgrnam_r(key, &gr, scratch, size, &found);
    if (err != 0)
        return err;
    if (found == NULL)
        return 1;
    return format_group(found, value) == 0 ? 0 : errno;
}

static int unix_lookup(struct table *t, const char *key, struct buf *value,
                       struct buf *error)
{
    const enum unix_map *map = t->state;
    if (key[0] == '\0')
        return TABLE_NOT_FOUND;
    int result = ENOMEM;
    for (size_t size = UNIX_BUFFER_START; size <= UNIX_BUFFER_MAX;
         size *= 2) {
        char *scratch = malloc(size);
        if (scratch == NULL)
            break;
        result = get_entry(*map, key, scratch, size, value);
        free(scratch);
        if (result != ERANGE)
            break;
    }
    if (result == 0)
        return TABLE_FOUND;
    /* Not found: glibc may also answer ENOENT (or ESRCH, EBADF, EPERM, as
     * getpwnam(3) lists) when the name simply does not exist. */
    if (result == 1 || result == ENOENT || result == ESRCH)
        return TABLE_NOT_FOUND;
    (void)buf_printf(error, "%s: lookup of \"%.100s\": %s", t->spec, key,
                     strerror(result));
    return TABLE_ERROR;
}

static int iterate_passwd(table_entry_fn *fn, void *ctx, struct buf *line)
{
    setpwent();
    const struct passwd *pw;
    int rc = 0;
    while (rc == 0 && (pw = getpwent()) != NULL) {
        if (format_passwd(pw, line) != 0) {
            rc = -1;
            break;
        }
        if (fn(ctx, pw->pw_name, strlen(pw->pw_name), line->data,
               line->len) != 0)
            break;
    }
    endpwent();
    return rc;
}

static int iterate_group(table_entry_fn *fn, void *ctx, struct buf *line)
{
    setgrent();
    const struct group *gr;
    int rc = 0;
    while (rc == 0 && (gr = getgrent()) != NULL) {
        if (format_group(gr, line) != 0) {
            rc = -1;
            break;
        }
        if (fn(ctx, gr->gr_name, strlen(gr->gr_name), line->data,
               line->len) != 0)
            break;
    }
    endgrent();
    return rc;
}

static int unix_iterate(struct table *t, table_entry_fn *fn, void *ctx,
                        struct buf *error)
{
    const enum unix_map *map = t->state;
    struct buf line;
    buf_init(&line, TABLE_VALUE_MAX);
    int rc = *map == UNIX_PASSWD ? iterate_passwd(fn, ctx, &line)
                                 : iterate_group(fn, ctx, &line);
    if (rc != 0)
        (void)buf_printf(error, "%s: listing: %s", t->spec, strerror(errno));
    buf_free(&line);
    return rc == 0 ? 0 : TABLE_ERROR;
}

static void unix_close(struct table *t)
{
    free(t->state);
    t->state = NULL;
}

const struct table_ops table_unix_ops = {
    .type = "unix",
    .open = unix_open,
    .lookup = unix_lookup,
    .iterate = unix_iterate,
    .close = unix_close,
};
