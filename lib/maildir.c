/*
 * maildir - durable delivery into a Maildir (interface and usage:
 * maildir.h).
 */
#include "maildir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "delivery_identity.h"
#include "log.h"
#include "mailbox_output.h"
#include "safe_file.h"
#include "sync_group.h"

/* The Q<n> of the unique names.  Process-wide on purpose: two deliveries
 * of one process in the same microsecond must get different names. */
static unsigned long maildir_counter;

struct maildir_dirs {
    int top, tmp, new, cur;
};

static void maildir_dirs_close(struct maildir_dirs *d)
{
    int *fds[] = { &d->top, &d->tmp, &d->new, &d->cur };
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
}

/* Opens name (relative to dirfd, or a path when dirfd is AT_FDCWD) as a
 * directory without following a final symlink, with create making it
 * (0700) when it is missing, and checks its owner.  fd; -1 with why set;
 * -2 (nothing set) when it is missing and create is 0. */
static int maildir_open_dir(int dirfd, const char *name, uid_t uid,
                            int create, const char **dsn, struct buf *why)
{
    const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    int fd = openat(dirfd, name, flags);
    if (fd < 0 && errno == ENOENT && !create)
        return -2;
    if (fd < 0 && errno == ENOENT) {
        if (mkdirat(dirfd, name, 0700) != 0 && errno != EEXIST) {
            *dsn = mailbox_error_dsn(errno, "create maildir directory", why);
            buf_printf(why, " (%s)", name);
            return -1;
        }
        fd = openat(dirfd, name, flags);
    }
    if (fd < 0) {
        int err = errno;
        if (err == ELOOP || err == ENOTDIR) {
            *dsn = "4.2.0";
            buf_printf(why, "maildir %s is not a directory or is a "
                       "symbolic link", name);
        } else {
            *dsn = mailbox_error_dsn(err, "open maildir directory", why);
            buf_printf(why, " (%s)", name);
        }
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        *dsn = mailbox_error_dsn(errno, "stat maildir directory", why);
        close(fd);
        return -1;
    }
    if (uid != (uid_t)-1 && st.st_uid != uid) {
        *dsn = "4.2.0";
        buf_printf(why, "maildir directory %s is owned by uid %ld, not by "
                   "the recipient (uid %ld)", name, (long)st.st_uid,
                   (long)uid);
        close(fd);
        return -1;
    }
    return fd;
}

/* A Maildir without new/ (its first delivery): tmp/, new/ and cur/, in
 * that order, each created when missing and checked.  0, or -1 with why
 * set (the descriptors opened stay in d, for maildir_dirs_close). */
static int maildir_make_subdirs(const struct maildir_request *rq,
                                struct maildir_dirs *d, const char **dsn,
                                struct buf *why)
{
    d->new = -1;
    d->tmp = maildir_open_dir(d->top, "tmp", rq->uid, 1, dsn, why);
    if (d->tmp >= 0)
        d->new = maildir_open_dir(d->top, "new", rq->uid, 1, dsn, why);
    if (d->new >= 0)
        d->cur = maildir_open_dir(d->top, "cur", rq->uid, 1, dsn, why);
    return d->cur < 0 ? -1 : 0;
}

static int maildir_open_all(const struct maildir_request *rq,
                            struct maildir_dirs *d, const char **dsn,
                            struct buf *why)
{
    d->top = d->tmp = d->new = d->cur = -1;
    /* "Maildir/" would follow a symlink named Maildir: the slash goes. */
    struct buf path;
    buf_init(&path, PATH_MAX);
    size_t len = strlen(rq->path);
    while (len > 1 && rq->path[len - 1] == '/')
        len--;
    if (buf_append(&path, rq->path, len) != 0) {
        *dsn = "4.3.0";
        buf_set_str(why, "maildir path too long");
        buf_free(&path);
        return -1;
    }
    d->top = maildir_open_dir(AT_FDCWD, buf_cstr(&path), rq->uid, 1, dsn,
                              why);
    buf_free(&path);
    if (d->top < 0)
        return -1;
    d->new = maildir_open_dir(d->top, "new", rq->uid, 0, dsn, why);
    if (d->new == -2 && maildir_make_subdirs(rq, d, dsn, why) != 0)
        d->new = -1;
    if (d->new < 0) {
        maildir_dirs_close(d);
        return -1;
    }
    return 0;
}

/* tmp/, for the classic way only.  0, or -1 with why set. */
static int maildir_open_tmp(const struct maildir_request *rq,
                            struct maildir_dirs *d, const char **dsn,
                            struct buf *why)
{
    if (d->tmp < 0)
        d->tmp = maildir_open_dir(d->top, "tmp", rq->uid, 1, dsn, why);
    return d->tmp < 0 ? -1 : 0;
}

/* The host part of the name: '/' and ':' escaped as the convention says. */
static void maildir_host(const char *hostname, struct buf *out)
{
    char local[HOST_NAME_MAX + 1];
    if (hostname == NULL) {
        if (gethostname(local, sizeof(local)) != 0)
            local[0] = '\0';
        local[sizeof(local) - 1] = '\0';
        hostname = local[0] != '\0' ? local : "localhost";
    }
    for (const char *p = hostname; *p; p++) {
        if (*p == '/')
            buf_append_str(out, "\\057");
        else if (*p == ':')
            buf_append_str(out, "\\072");
        else
            buf_append_char(out, *p);
    }
}

/* A new unique name (without ",S="). */
static void maildir_unique(const struct maildir_request *rq, struct buf *unique)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    buf_reset(unique);
    buf_printf(unique, "%lld.M%ldP%ldQ%lu.", (long long)tv.tv_sec,
               (long)tv.tv_usec, (long)(rq->pid > 0 ? rq->pid : getpid()),
               ++maildir_counter);
    maildir_host(rq->hostname, unique);
}

/* Creates tmp/UNIQUE; its name goes to unique.  fd or -1. */
static int maildir_create_tmp(const struct maildir_request *rq,
                              const struct maildir_dirs *d,
                              struct buf *unique, const char **dsn,
                              struct buf *why)
{
    for (int attempt = 0; attempt < MAILDIR_NAME_ATTEMPTS; attempt++) {
        maildir_unique(rq, unique);
        int fd = openat(d->tmp, buf_cstr(unique),
                        O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                        0600);
        if (fd >= 0)
            return fd;
        if (errno != EEXIST) {
            *dsn = mailbox_error_dsn(errno, "create maildir file", why);
            return -1;
        }
    }
    *dsn = "4.3.0";
    buf_set_str(why, "create maildir file: no unique name left");
    return -1;
}

/* Writes the headers and the content; with finish, fsyncs and closes fd
 * too (the tmp/ way; the unnamed way links first, see below). */
static int maildir_write(const struct maildir_request *rq, int fd,
                         struct delivery_source *src, int finish,
                         unsigned long long *size, const char **dsn,
                         struct buf *why)
{
    struct mailbox_output out;
    mailbox_output_init(&out, fd);
    if (rq->headers != NULL)
        mailbox_output_write(&out, rq->headers, strlen(rq->headers));
    int rc = mailbox_output_copy(&out, src, MAILBOX_COPY_PLAIN, why);
    if (rc == 0)
        rc = mailbox_output_flush(&out);
    if (finish && rc == 0 && fsync(fd) != 0) {
        out.error = errno;
        rc = -1;
    }
    if (finish && close(fd) != 0 && rc == 0) {
        out.error = errno;
        rc = -1;
    }
    if (rc == -2) {
        *dsn = "4.3.0";
        buf_printf(why, " (reading the queue file)");
    } else if (rc != 0) {
        *dsn = mailbox_error_dsn(out.error, "write maildir file", why);
    }
    *size = out.size;
    mailbox_output_free(&out);
    return rc == 0 ? 0 : -1;
}

/* Links tmp/UNIQUE to new/UNIQUE,S=SIZE (the final name in final). */
static int maildir_commit(const struct maildir_dirs *d, const char *unique,
                          unsigned long long size, struct buf *final,
                          const char **dsn, struct buf *why)
{
    buf_reset(final);
    if (buf_printf(final, "%s,S=%llu", unique, size) != 0) {
        *dsn = "4.3.0";
        buf_set_str(why, "maildir file name too long");
        return -1;
    }
    if (linkat(d->tmp, unique, d->new, buf_cstr(final), 0) != 0) {
        *dsn = mailbox_error_dsn(errno, "link maildir file into new/", why);
        return -1;
    }
    if (unlinkat(d->tmp, unique, 0) != 0 || fsync(d->new) != 0) {
        int err = errno;
        (void)unlinkat(d->new, buf_cstr(final), 0);
        *dsn = mailbox_error_dsn(err, "commit maildir file", why);
        return -1;
    }
    return 0;
}

/* Links the unnamed file fd into new/ under a unique name (in final).
 * 0; 1 when that cannot be done here (an old kernel without /proc: use
 * tmp/); -1 error. */
static int maildir_link_unnamed(const struct maildir_request *rq,
                                const struct maildir_dirs *d, int fd,
                                unsigned long long size, struct buf *final,
                                const char **dsn, struct buf *why)
{
    struct buf unique;
    buf_init(&unique, PATH_MAX);
    int rc = -1;
    for (int attempt = 0; attempt < MAILDIR_NAME_ATTEMPTS; attempt++) {
        maildir_unique(rq, &unique);
        buf_reset(final);
        if (buf_printf(final, "%s,S=%llu", buf_cstr(&unique), size) != 0) {
            *dsn = "4.3.0";
            buf_set_str(why, "maildir file name too long");
            break;
        }
        if (safe_file_link_unnamed(fd, d->new, buf_cstr(final)) == 0) {
            rc = 0;
            break;
        }
        if (errno == EEXIST)
            continue;
        if (errno == ENOENT || errno == EACCES || errno == EPERM) {
            rc = 1;
            break;
        }
        *dsn = mailbox_error_dsn(errno, "link maildir file into new/", why);
        break;
    }
    if (rc == -1 && buf_cstr(why)[0] == '\0') {
        *dsn = "4.3.0";
        buf_set_str(why, "link maildir file into new/: no unique name left");
    }
    buf_free(&unique);
    return rc;
}

/* The fast way where the kernel allows it: an unnamed file (O_TMPFILE) in
 * new/, written whole, linked to its name, then fsynced, then new/
 * fsynced.  Nobody sees a partial file (it has no name until it is
 * complete), as with tmp/; on a journaling file system the file's fsync
 * makes data, inode and name durable in one commit, where the tmp/ way
 * (fsync, then link and unlink, then fsync of new/) needs two.  new/ is
 * fsynced as well except where the file's fsync is known to cover the
 * name (safe_file_fsync_covers_names: XFS, journaled ext4).  There the
 * directory's fsync would add nothing for this message, and on ext4 it
 * even forces a commit of whatever another delivery has begun, an extra
 * commit that every delivery to the file system then waits behind.  A
 * crash before the fsyncs return may leave the message in new/ or not,
 * but "sent" is said only after them.  0 delivered; 1 not possible here
 * (the caller uses tmp/); -1 error (dsn, why). */
static int maildir_deliver_unnamed(const struct maildir_request *rq,
                                   const struct maildir_dirs *d,
                                   struct delivery_source *src,
                                   struct buf *final, const char **dsn,
                                   struct buf *why)
{
    int fd = openat(d->new, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)
            return 1;
        *dsn = mailbox_error_dsn(errno, "create maildir file", why);
        return -1;
    }
    unsigned long long size = 0;
    int rc = maildir_write(rq, fd, src, 0, &size, dsn, why);
    if (rc == 0)
        rc = maildir_link_unnamed(rq, d, fd, size, final, dsn, why);
    if (rc == 0 && rq->group != NULL &&
        sync_group_add(rq->group, fd, d->new, buf_cstr(final),
                       rq->owner) == 0)
        return 0;               /* durable at the group's commit */
    if (rc == 0 &&
        (fsync(fd) != 0 ||
         (!safe_file_fsync_covers_names(d->new) && fsync(d->new) != 0))) {
        int err = errno;
        (void)unlinkat(d->new, buf_cstr(final), 0);
        *dsn = mailbox_error_dsn(err, "commit maildir file", why);
        rc = -1;
    }
    if (close(fd) != 0 && rc == 0) {
        int err = errno;
        (void)unlinkat(d->new, buf_cstr(final), 0);
        *dsn = mailbox_error_dsn(err, "write maildir file", why);
        rc = -1;
    }
    return rc;
}

int maildir_deliver(const struct maildir_request *rq,
                    struct delivery_source *src, struct buf *name,
                    const char **dsn, struct buf *why)
{
    struct maildir_dirs d;
    if (maildir_open_all(rq, &d, dsn, why) != 0)
        return -1;
    struct buf unique, final;
    buf_init(&unique, PATH_MAX);
    buf_init(&final, PATH_MAX);
    unsigned long long size = 0;
    int rc = maildir_deliver_unnamed(rq, &d, src, &final, dsn, why);
    int fd = -1;
    if (rc == 1) {
        rc = -1;
        delivery_source_rewind(src);
        if (maildir_open_tmp(rq, &d, dsn, why) == 0)
            fd = maildir_create_tmp(rq, &d, &unique, dsn, why);
    }
    if (fd >= 0) {
        if (maildir_write(rq, fd, src, 1, &size, dsn, why) == 0 &&
            maildir_commit(&d, buf_cstr(&unique), size, &final, dsn,
                           why) == 0)
            rc = 0;
        else
            (void)unlinkat(d.tmp, buf_cstr(&unique), 0);
    }
    if (rc == 0 && name != NULL) {
        buf_reset(name);
        buf_printf(name, "new/%s", buf_cstr(&final));
    }
    buf_free(&unique);
    buf_free(&final);
    maildir_dirs_close(&d);
    return rc;
}

/* Removes a file of a failed group commit, acting as its owner. */
static void maildir_undo_file(void *ctx, const struct sync_group_file *f)
{
    (void)ctx;
    struct delivery_identity id;
    struct buf why;
    buf_init(&why, 1024);
    if (delivery_identity_enter(&id, f->owner.name, f->owner.uid,
                                f->owner.gid, f->owner.extra_gid,
                                &why) != 0) {
        log_warn("cannot remove maildir file %s after a failed fsync: %s",
                 f->name, buf_cstr(&why));
    } else {
        if (unlinkat(f->dir_fd, f->name, 0) != 0 && errno != ENOENT)
            log_warn("cannot remove maildir file %s after a failed "
                     "fsync: %s", f->name, strerror(errno));
        delivery_identity_leave(&id);
    }
    buf_free(&why);
}

int maildir_group_commit(struct sync_group *group, const char **dsn,
                         struct buf *why)
{
    int err = 0;
    int rc = sync_group_commit(group, &err);
    if (rc != 0) {
        sync_group_undo(group, maildir_undo_file, NULL);
        *dsn = mailbox_error_dsn(err, "commit maildir file", why);
    }
    sync_group_clear(group);
    return rc;
}
