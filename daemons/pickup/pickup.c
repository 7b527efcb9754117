/*
 * pickup - moves local submissions from maildrop/ to cleanup.  A trigger
 * service (master.cf: pickup unix n - n 60 1 pickup): at each wakeup,
 * from the master every 60 s or from postdrop after a new file, it scans
 * maildrop/ and hands every file whose name is a queue ID to cleanup
 * (cleanup_client.h) with origin "pickup", CLEANUP_FLAG_SUBMISSION (and
 * CLEANUP_FLAG_EXTRACT when the file asks for sendmail -t), and
 * local_user = the owner of the file.  The owner is what postdrop cannot
 * lie about: it created the file with the real uid of the user; a uid
 * written inside the file is never believed.
 *
 * A local user wrote the file, so it is opened without following
 * symlinks, must be a regular file with one link, and every record is
 * checked and bounded (maildrop.h; content at most message_size_limit).
 *
 *   cleanup says ok, hold, discard   the file is removed
 *   cleanup defers, or cannot be reached    the file stays for next time
 *   cleanup rejects, the file is bad        moved to corrupt/, warning
 * The warning is one line that says why: "NAME: REASON: moved to
 * corrupt/NAME", or, once cleanup has given the message a queue ID,
 * "ID: maildrop file NAME rejected by cleanup: 554 5.5.1 No recipient
 * addresses found in message header: moved to corrupt/NAME" (a file that
 * asks for sendmail -t and whose header names nobody: sendmail refuses
 * that case itself, so such a file was made by hand).
 * A temporary file (tmp.*) older than a day, left by a postdrop that
 * died, is removed.
 *
 * Log lines, as Postfix's pickup: "4F2A9C1B3D: uid=1000 from=<user>".
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup_client.h"
#include "log.h"
#include "maildrop.h"
#include "server.h"

#define PICKUP_BATCH 1000
#define PICKUP_PATH_MAX 4096
#define PICKUP_STALE_AGE (24 * 3600)

struct pickup {
    long long max_content;
    int timeout_ms;
};

enum pickup_result { PICKUP_DONE, PICKUP_LEAVE, PICKUP_CORRUPT };

/* Moves maildrop/NAME to corrupt/, never over another file; the warning
 * starts with the queue ID that cleanup gave it, when there is one. */
static void pickup_move_corrupt(const char *name, const char *queue_id,
                                const char *why)
{
    char what[PICKUP_PATH_MAX];
    if (queue_id != NULL && queue_id[0] != '\0')
        snprintf(what, sizeof(what), "%s: maildrop file %s", queue_id,
                 name);
    else
        snprintf(what, sizeof(what), "%s:", name);
    char from[PICKUP_PATH_MAX], to[PICKUP_PATH_MAX];
    snprintf(from, sizeof(from), "maildrop/%s", name);
    for (int attempt = 0; attempt < 100; attempt++) {
        if (attempt == 0)
            snprintf(to, sizeof(to), "corrupt/%s", name);
        else
            snprintf(to, sizeof(to), "corrupt/%s.%d", name, attempt);
        if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0) {
            log_warn("%s %s: moved to %s", what, why, to);
            return;
        }
        if (errno != EEXIST)
            break;
    }
    log_warn("%s %s: cannot move to corrupt/: %s", what, why,
             strerror(errno));
}

static void pickup_local_user(uid_t uid, char *out, size_t size)
{
    struct passwd *pw = getpwuid(uid);
    if (pw != NULL && strlen(pw->pw_name) < size)
        snprintf(out, size, "%s", pw->pw_name);
    else
        snprintf(out, size, "#%ld", (long)uid);
}

/* An attribute that is sent only when it has a value. */
static int add_optional(struct record *out, const char *name,
                        const struct buf *value)
{
    if (value->len == 0)
        return 0;
    return record_add(out, name, value->data, value->len) == RECORD_OK ? 0
                                                                       : -1;
}

/* The open request's attributes.  0, or -1 when one cannot be added. */
static int pickup_envelope_record(const struct maildrop_envelope *env,
                                  const char *local_user, struct record *out)
{
    long flags = CLEANUP_FLAG_SUBMISSION;
    if (env->flags & MAILDROP_FLAG_EXTRACT)
        flags |= CLEANUP_FLAG_EXTRACT;
    if (record_add(out, "sender", env->sender.len ? env->sender.data : "",
                   env->sender.len) != RECORD_OK ||
        record_add_long(out, "flags", flags) != RECORD_OK ||
        record_add_str(out, "origin", "pickup") != RECORD_OK ||
        record_add_str(out, "local_user", local_user) != RECORD_OK)
        return -1;
    return add_optional(out, "full_name", &env->full_name) != 0 ||
                   add_optional(out, "dsn_envid", &env->dsn_envid) != 0 ||
                   add_optional(out, "dsn_ret", &env->dsn_ret) != 0 ||
                   add_optional(out, "encoding", &env->encoding) != 0 ||
                   add_optional(out, "extract_notify",
                                &env->extract_notify) != 0
               ? -1
               : 0;
}

/* Streams the content after the envelope to cleanup. */
static enum pickup_result pickup_send(struct cleanup_client *c,
                                      struct maildrop_reader *r,
                                      const struct maildrop_envelope *env,
                                      struct buf *error)
{
    for (size_t i = 0; i < env->rcpt_count; i++)
        if (cleanup_client_add_recipient(c, env->rcpt[i].address, NULL,
                                         env->rcpt[i].notify, error) != 0)
            return PICKUP_LEAVE;
    const char *data;
    size_t len;
    int rc;
    while ((rc = maildrop_reader_content(r, &data, &len, error)) == 1)
        if (cleanup_client_write(c, data, len, error) != 0)
            return PICKUP_LEAVE;
    if (rc < 0) {
        cleanup_client_abort(c);
        return PICKUP_CORRUPT;
    }
    struct cleanup_result res;
    cleanup_result_init(&res);
    if (cleanup_client_finish(c, &res, error) != 0) {
        cleanup_result_free(&res);
        return PICKUP_LEAVE;
    }
    enum pickup_result result = PICKUP_DONE;
    switch (res.status) {
    case CLEANUP_OK:
    case CLEANUP_HOLD:
    case CLEANUP_DISCARD:
        break;
    case CLEANUP_DEFER:
        buf_printf(error, "cleanup deferred: %d %s %s", res.code, res.dsn,
                   buf_cstr(&res.text));
        result = PICKUP_LEAVE;
        break;
    case CLEANUP_REJECT:
        buf_printf(error, "rejected by cleanup: %d %s %s", res.code, res.dsn,
                   buf_cstr(&res.text));
        result = PICKUP_CORRUPT;
        break;
    }
    cleanup_result_free(&res);
    return result;
}

/* A first pass over the whole file, so that a bad or oversized file is
 * found before cleanup is bothered with it.  0, or -1 with error. */
static int pickup_check(struct pickup *p, int fd, const char *name,
                        const struct stat *st, struct buf *error)
{
    struct maildrop_reader r;
    maildrop_reader_attach(&r, fd, MAILDROP_FILE, p->max_content);
    struct maildrop_envelope env;
    maildrop_envelope_init(&env);
    int rc = maildrop_reader_envelope(&r, &env, error);
    const char *data;
    size_t len;
    if (rc == 0) {
        while ((rc = maildrop_reader_content(&r, &data, &len, error)) == 1)
            ;
    }
    if (r.too_large)
        log_warn("%s: uid=%ld: message file too big", name,
                 (long)st->st_uid);
    maildrop_envelope_free(&env);
    maildrop_reader_free(&r);
    if (rc == 0 && lseek(fd, 0, SEEK_SET) != 0) {
        buf_printf(error, "seek: %s", strerror(errno));
        return -1;
    }
    return rc;
}

/* One opened maildrop file: check, read the envelope, hand over;
 * queue_id receives cleanup's queue ID once there is one. */
static enum pickup_result pickup_fd(struct pickup *p, int fd,
                                    const struct stat *st, const char *name,
                                    char queue_id[QUEUE_ID_SIZE],
                                    struct buf *error)
{
    if (pickup_check(p, fd, name, st, error) != 0)
        return PICKUP_CORRUPT;
    struct maildrop_reader r;
    maildrop_reader_attach(&r, fd, MAILDROP_FILE, p->max_content);
    struct maildrop_envelope env;
    maildrop_envelope_init(&env);
    enum pickup_result result = PICKUP_CORRUPT;
    if (maildrop_reader_envelope(&r, &env, error) != 0)
        goto out;
    if (env.uid != (long)st->st_uid)
        log_warn("%s: file of uid %ld says uid %ld: using %ld", name,
                 (long)st->st_uid, env.uid, (long)st->st_uid);
    char local_user[256];
    pickup_local_user(st->st_uid, local_user, sizeof(local_user));
    struct record envelope;
    record_init(&envelope);
    struct cleanup_client c;
    int opened = -1;
    if (pickup_envelope_record(&env, local_user, &envelope) != 0)
        buf_printf(error, "out of memory");
    else
        opened = cleanup_client_open(&c, CLEANUP_SOCKET, p->timeout_ms,
                                     &envelope, error);
    record_free(&envelope);
    if (opened != 0) {
        result = PICKUP_LEAVE;
        goto out;
    }
    log_info("%s: uid=%ld from=<%s>", c.queue_id, (long)st->st_uid,
             buf_cstr(&env.sender));
    memcpy(queue_id, c.queue_id, QUEUE_ID_SIZE);
    result = pickup_send(&c, &r, &env, error);
out:
    maildrop_envelope_free(&env);
    maildrop_reader_free(&r);
    return result;
}

/* Returns 1 when the file left maildrop/, 0 when it stays. */
static int pickup_file(struct pickup *p, const char *name)
{
    char path[PICKUP_PATH_MAX];
    snprintf(path, sizeof(path), "maildrop/%s", name);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ELOOP) {
            pickup_move_corrupt(name, NULL, "symbolic link");
            return 1;
        }
        if (errno != ENOENT)
            log_warn("%s: open: %s", path, strerror(errno));
        return errno == ENOENT;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        log_warn("%s: fstat: %s", path, strerror(errno));
        (void)close(fd);
        return 0;
    }
    if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
        (void)close(fd);
        pickup_move_corrupt(name, NULL, S_ISREG(st.st_mode)
                                      ? "more than one link"
                                      : "not a regular file");
        return 1;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        log_warn("%s: fcntl: %s", path, strerror(errno));
        (void)close(fd);
        return 0;
    }
    struct buf error;
    buf_init(&error, 2048);
    char queue_id[QUEUE_ID_SIZE] = "";
    enum pickup_result result = pickup_fd(p, fd, &st, name, queue_id,
                                          &error);
    if (close(fd) != 0)
        log_warn("%s: close: %s", path, strerror(errno));
    switch (result) {
    case PICKUP_DONE:
        if (unlink(path) != 0)
            log_error("%s: remove: %s", path, strerror(errno));
        break;
    case PICKUP_LEAVE:
        log_warn("%s: %s -- left in maildrop for the next run", name,
                 buf_cstr(&error));
        break;
    case PICKUP_CORRUPT:
        pickup_move_corrupt(name, queue_id, buf_cstr(&error));
        break;
    }
    buf_free(&error);
    return result != PICKUP_LEAVE;
}

/* A tmp.* file is a postdrop at work, or one that died (killed, disk
 * full): after PICKUP_STALE_AGE it is removed. */
static void pickup_stale_temp(const char *name, time_t now)
{
    char path[PICKUP_PATH_MAX];
    snprintf(path, sizeof(path), "maildrop/%s", name);
    struct stat st;
    if (lstat(path, &st) != 0 || now - st.st_mtime < PICKUP_STALE_AGE)
        return;
    if (unlink(path) == 0)
        log_warn("%s: removed a stale temporary file", path);
    else
        log_warn("%s: remove stale temporary file: %s", path,
                 strerror(errno));
}

/* The queue IDs in maildrop/, at most PICKUP_BATCH of them. */
static size_t pickup_read_names(char names[][QUEUE_ID_SIZE], size_t max)
{
    DIR *d = opendir("maildrop");
    if (d == NULL) {
        log_warn("open maildrop: %s", strerror(errno));
        return 0;
    }
    size_t count = 0;
    time_t now = time(NULL);
    struct dirent *e;
    while (count < max && (e = readdir(d)) != NULL) {
        if (queue_id_valid(e->d_name))
            memcpy(names[count++], e->d_name, strlen(e->d_name) + 1);
        else if (strncmp(e->d_name, "tmp.", 4) == 0)
            pickup_stale_temp(e->d_name, now);
    }
    (void)closedir(d);
    return count;
}

static void pickup_trigger(struct server *srv, const char *data, size_t len)
{
    (void)data;
    (void)len;
    struct pickup *p = srv->app;
    char (*names)[QUEUE_ID_SIZE] = calloc(PICKUP_BATCH, QUEUE_ID_SIZE);
    if (names == NULL) {
        log_warn("out of memory: maildrop not scanned");
        return;
    }
    /* Batches, so that a huge maildrop does not need huge memory; a
     * batch that moved nothing (every file left for cleanup) ends it. */
    for (int round = 0; round < 100 && !server_should_exit(srv); round++) {
        size_t count = pickup_read_names(names, PICKUP_BATCH);
        size_t gone = 0;
        for (size_t i = 0; i < count && !server_should_exit(srv); i++)
            gone += (size_t)pickup_file(p, names[i]);
        if (count < PICKUP_BATCH || gone == 0)
            break;
    }
    free(names);
}

static void pickup_init(struct server *srv)
{
    /* The daemon's state, for the life of the process. */
    static struct pickup p;
    p.max_content = config_get_size(srv->cfg, "message_size_limit");
    p.timeout_ms = (int)config_get_time(srv->cfg, "ipc_timeout") * 1000;
    srv->app = &p;
}

int main(int argc, char **argv)
{
    static const struct server_spec spec = {
        .mode = SERVER_TRIGGER,
        .init = pickup_init,
        .trigger = pickup_trigger,
    };
    return server_main(argc, argv, &spec);
}
