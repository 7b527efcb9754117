/*
 * postino_check - validates an instance's configuration and directories.
 * See postino_check.h.
 */
#include "postino_check.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "listen_socket.h"
#include "log.h"
#include "master_cf.h"
#include "privilege.h"

/* The directories under queue_directory, as the master and the daemons
 * need them.  "owner": 1 = mail_owner, 0 = root (the invoking user when not
 * root); "group": 1 = setgid_group. */
struct queue_dir_spec {
    const char *name;
    mode_t mode;
    int mail_owner;
    int setgid_group;
};

static const struct queue_dir_spec queue_dirs[] = {
    { "pid", 0755, 0, 0 },
    { "private", 0700, 1, 0 },
    { "public", 0710, 1, 1 },
    /* The queue (docs/queue-format.md). */
    { "maildrop", 01730, 1, 1 },
    { "incoming", 0700, 1, 0 },
    { "active", 0700, 1, 0 },
    { "deferred", 0700, 1, 0 },
    { "hold", 0700, 1, 0 },
    { "corrupt", 0700, 1, 0 },
    /* Recipient logs (docs/queue-format.md). */
    { "defer", 0700, 1, 0 },
    { "bounce", 0700, 1, 0 },
    { "trace", 0700, 1, 0 },
};

struct check_ids {
    uid_t owner_uid;  /* mail_owner, or the invoking user when not root */
    gid_t owner_gid;
    gid_t postdrop_gid;
    uid_t root_uid;   /* root, or the invoking user when not root */
    int as_root;
};

static struct config *check_load_main_cf(const char *config_dir, int *errors)
{
    int count;
    struct config *cfg = config_load_dir(config_dir, &count);
    *errors += count;
    return cfg;
}

static int check_ids(struct config *cfg, struct check_ids *ids)
{
    int errors = 0;
    ids->as_root = privilege_is_root();
    ids->root_uid = getuid();
    ids->owner_uid = getuid();
    ids->owner_gid = getgid();
    ids->postdrop_gid = getgid();
    const char *owner = config_get_str(cfg, "mail_owner");
    const char *group = config_get_str(cfg, "setgid_group");
    if (!ids->as_root)
        return 0;
    if (privilege_lookup_user(owner, &ids->owner_uid, &ids->owner_gid) != 0) {
        log_error("mail_owner %s: no such user (create it, or set "
                  "mail_owner in main.cf)", owner);
        errors++;
    } else if (ids->owner_uid == 0) {
        log_error("mail_owner %s: must not be root", owner);
        errors++;
    }
    if (privilege_lookup_group(group, &ids->postdrop_gid) != 0) {
        log_error("setgid_group %s: no such group", group);
        errors++;
    }
    return errors;
}

static int check_directory(const char *path, mode_t mode, uid_t uid,
                           gid_t gid, int check_gid)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno != ENOENT) {
            log_error("%s: %s", path, strerror(errno));
            return 1;
        }
        log_warn("creating missing directory %s", path);
        if (mkdir(path, mode) != 0 || chmod(path, mode) != 0 ||
            ((uid != getuid() || check_gid) && chown(path, uid, gid) != 0)) {
            log_error("create %s: %s", path, strerror(errno));
            return 1;
        }
        return 0;
    }
    if (!S_ISDIR(st.st_mode)) {
        log_error("%s: not a directory", path);
        return 1;
    }
    int errors = 0;
    if (st.st_uid != uid) {
        struct passwd *pw = getpwuid(uid);
        log_error("%s: owned by uid %ld, should be %s (chown %s %s)", path,
                  (long)st.st_uid, pw ? pw->pw_name : "?",
                  pw ? pw->pw_name : "?", path);
        errors++;
    }
    if (check_gid && st.st_gid != gid) {
        struct group *gr = getgrgid(gid);
        log_error("%s: group is gid %ld, should be %s (chgrp %s %s)", path,
                  (long)st.st_gid, gr ? gr->gr_name : "?",
                  gr ? gr->gr_name : "?", path);
        errors++;
    }
    if ((st.st_mode & 07777) != mode) {
        log_error("%s: mode %04o, should be %04o (chmod %04o %s)", path,
                  (unsigned)(st.st_mode & 07777), (unsigned)mode,
                  (unsigned)mode, path);
        errors++;
    }
    return errors;
}

static int check_queue_dirs(struct config *cfg, const struct check_ids *ids)
{
    const char *queue = config_get_str(cfg, "queue_directory");
    struct stat st;
    errno = 0;
    if (stat(queue, &st) != 0 || !S_ISDIR(st.st_mode)) {
        log_error("queue_directory %s: %s", queue,
                  errno ? strerror(errno) : "not a directory");
        return 1;
    }
    int errors = 0;
    struct buf path;
    buf_init(&path, PATH_MAX);
    for (size_t i = 0; i < sizeof(queue_dirs) / sizeof(queue_dirs[0]); i++) {
        const struct queue_dir_spec *d = &queue_dirs[i];
        buf_reset(&path);
        buf_printf(&path, "%s/%s", queue, d->name);
        uid_t uid = d->mail_owner ? ids->owner_uid : ids->root_uid;
        gid_t gid = d->setgid_group ? ids->postdrop_gid
                    : d->mail_owner ? ids->owner_gid : getgid();
        errors += check_directory(buf_cstr(&path), d->mode, uid, gid,
                                  d->setgid_group && ids->as_root);
    }
    buf_free(&path);
    return errors;
}

static int check_executable(const char *path, const char *what)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        log_error("%s%s: %s", what, path, strerror(errno));
        return 1;
    }
    if (!S_ISREG(st.st_mode) || access(path, X_OK) != 0) {
        log_error("%s%s: not an executable file", what, path);
        return 1;
    }
    return 0;
}

/* The service's -o overrides, applied to main.cf and checked by type. */
static int check_overrides(const char *config_dir,
                           const struct master_service_entry *e)
{
    if (e->override_count == 0)
        return 0;
    struct config *cfg =
        config_load_dir_flags(config_dir, CONFIG_QUIET_UNUSED, NULL);
    if (cfg == NULL)
        return 0; /* main.cf's own errors were counted already */
    for (size_t i = 0; i < e->override_count; i++)
        config_set_override(cfg, e->overrides[i].name, e->overrides[i].value,
                            e->file, e->line);
    int errors = config_check(cfg);
    config_free(cfg);
    return errors;
}

static int check_service(struct config *cfg, const char *config_dir,
                         const struct master_service_entry *e)
{
    int errors = 0;
    struct buf text;
    buf_init(&text, PATH_MAX);
    master_cf_command_path(e, config_get_str(cfg, "daemon_directory"), &text);
    struct buf what;
    buf_init(&what, PATH_MAX);
    buf_printf(&what, "%s:%d: service %s: command ", e->file, e->line,
               e->name);
    errors += check_executable(buf_cstr(&text), buf_cstr(&what));
    buf_free(&what);
    if (e->type == MASTER_SERVICE_INET) {
        struct text_list interfaces, protocols;
        config_get_list(cfg, "inet_interfaces", &interfaces);
        config_get_list(cfg, "inet_protocols", &protocols);
        struct listen_addr addrs[LISTEN_ADDR_MAX];
        size_t count;
        buf_reset(&text);
        if (listen_resolve_inet(e->name, &interfaces, &protocols, addrs,
                                &count, &text) != 0) {
            log_error("%s:%d: service %s: %s", e->file, e->line, e->name,
                      buf_cstr(&text));
            errors++;
        }
        text_list_free(&interfaces);
        text_list_free(&protocols);
    } else if (strchr(e->name, '/') != NULL || e->name[0] == '.') {
        log_error("%s:%d: bad unix service name \"%s\"", e->file, e->line,
                  e->name);
        errors++;
    }
    buf_free(&text);
    return errors + check_overrides(config_dir, e);
}

static int check_master_cf(struct config *cfg, const char *config_dir)
{
    struct buf path;
    buf_init(&path, PATH_MAX);
    buf_printf(&path, "%s/master.cf", config_dir);
    struct master_cf cf;
    int errors = master_cf_load(buf_cstr(&path), &cf);
    if (errors < 0) {
        log_error("%s: %s", buf_cstr(&path), strerror(errno));
        errors = 1;
    }
    buf_free(&path);
    for (size_t i = 0; cfg != NULL && i < cf.count; i++)
        errors += check_service(cfg, config_dir, &cf.services[i]);
    master_cf_free(&cf);
    return errors;
}

int postino_check(const char *config_dir, struct config **cfg_out)
{
    int errors = 0;
    *cfg_out = NULL;
    struct config *cfg = check_load_main_cf(config_dir, &errors);
    errors += check_master_cf(cfg, config_dir);
    if (cfg == NULL)
        return errors;
    struct check_ids ids;
    errors += check_ids(cfg, &ids);
    struct stat st;
    const char *daemon_dir = config_get_str(cfg, "daemon_directory");
    errno = 0;
    if (stat(daemon_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        log_error("daemon_directory %s: %s", daemon_dir,
                  errno ? strerror(errno) : "not a directory");
        errors++;
    }
    errors += check_queue_dirs(cfg, &ids);
    if (errors == 0)
        *cfg_out = cfg;
    else
        config_free(cfg);
    return errors;
}
