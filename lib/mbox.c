/*
 * mbox - append a message to an mbox file under a dot-lock and an fcntl
 * lock, rolled back on failure (interface and usage: mbox.h).
 */
#include "mbox.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mailbox_output.h"

static void mbox_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int mbox_attempts(const struct mbox_request *rq)
{
    return rq->lock_attempts > 0 ? rq->lock_attempts : MBOX_LOCK_ATTEMPTS;
}

static int mbox_delay(const struct mbox_request *rq)
{
    return rq->lock_delay_ms > 0 ? rq->lock_delay_ms : MBOX_LOCK_DELAY_MS;
}

/* Removes lock when it is older than the stale time.  1 when removed. */
static int mbox_remove_stale(const char *lock)
{
    struct stat st;
    if (lstat(lock, &st) != 0)
        return errno == ENOENT;
    if (time(NULL) - st.st_mtime < MBOX_STALE_LOCK_SECONDS)
        return 0;
    return unlink(lock) == 0 || errno == ENOENT;
}

/* Takes the dot-lock.  1 taken, 0 skipped (the directory is not writable
 * for us), -1 failure (dsn, why). */
static int mbox_dotlock(const struct mbox_request *rq, const char *lock,
                        const char **dsn, struct buf *why)
{
    for (int attempt = 0; attempt < mbox_attempts(rq); attempt++) {
        int fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
                      O_CLOEXEC, 0600);
        if (fd >= 0) {
            struct buf pid;
            buf_init(&pid, 32);
            buf_printf(&pid, "%ld\n", (long)getpid());
            int rc = write(fd, pid.data, pid.len) == (ssize_t)pid.len;
            buf_free(&pid);
            if (close(fd) != 0 || !rc) {
                (void)unlink(lock);
                *dsn = mailbox_error_dsn(errno, "write lock file", why);
                return -1;
            }
            return 1;
        }
        if (errno == EACCES || errno == EPERM || errno == EROFS)
            return 0;
        if (errno != EEXIST) {
            *dsn = mailbox_error_dsn(errno, "create lock file", why);
            buf_printf(why, " (%s)", lock);
            return -1;
        }
        if (mbox_remove_stale(lock))
            continue;
        if (attempt + 1 < mbox_attempts(rq))
            mbox_sleep_ms(mbox_delay(rq));
    }
    *dsn = "4.2.0";
    buf_printf(why, "unable to lock %s: %s exists", rq->path, lock);
    return -1;
}

/* Opens the mailbox for appending, creating it when missing.  fd or -1. */
static int mbox_open(const char *path, const char **dsn, struct buf *why)
{
    const int flags = O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC |
                      O_NOCTTY | O_NONBLOCK;
    for (int attempt = 0; attempt < 3; attempt++) {
        int fd = open(path, flags);
        if (fd >= 0 || errno != ENOENT) {
            if (fd < 0 && errno == ELOOP) {
                *dsn = "4.2.0";
                buf_printf(why, "mailbox %s is a symbolic link", path);
            } else if (fd < 0 && errno == ENXIO) {
                /* a FIFO without a reader, or a socket */
                *dsn = "4.2.0";
                buf_printf(why, "mailbox %s is not a regular file", path);
            } else if (fd < 0) {
                *dsn = mailbox_error_dsn(errno, "open mailbox", why);
                buf_printf(why, " (%s)", path);
            }
            return fd;
        }
        fd = open(path, flags | O_CREAT | O_EXCL, 0600);
        if (fd >= 0 || errno != EEXIST) {
            if (fd < 0) {
                *dsn = mailbox_error_dsn(errno, "create mailbox", why);
                buf_printf(why, " (%s)", path);
            }
            return fd;
        }
    }
    *dsn = "4.2.0";
    buf_printf(why, "mailbox %s keeps changing", path);
    return -1;
}

/* The file must be a plain file of ours: no device, FIFO, hard link. */
static int mbox_check(int fd, const struct mbox_request *rq, off_t *size,
                      const char **dsn, struct buf *why)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        *dsn = mailbox_error_dsn(errno, "stat mailbox", why);
        return -1;
    }
    *dsn = "4.2.0";
    if (!S_ISREG(st.st_mode)) {
        buf_printf(why, "mailbox %s is not a regular file", rq->path);
        return -1;
    }
    if (st.st_nlink != 1) {
        buf_printf(why, "mailbox %s has %ld hard links", rq->path,
                   (long)st.st_nlink);
        return -1;
    }
    if (rq->uid != (uid_t)-1 && st.st_uid != rq->uid) {
        buf_printf(why, "mailbox %s is owned by uid %ld, not by the "
                   "recipient (uid %ld)", rq->path, (long)st.st_uid,
                   (long)rq->uid);
        return -1;
    }
    *size = st.st_size;
    return 0;
}

static int mbox_lock_fd(const struct mbox_request *rq, int fd,
                        const char **dsn, struct buf *why)
{
    for (int attempt = 0; attempt < mbox_attempts(rq); attempt++) {
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
        if (fcntl(fd, F_SETLK, &fl) == 0)
            return 0;
        if (errno != EAGAIN && errno != EACCES && errno != EINTR) {
            *dsn = mailbox_error_dsn(errno, "lock mailbox", why);
            return -1;
        }
        if (attempt + 1 < mbox_attempts(rq))
            mbox_sleep_ms(mbox_delay(rq));
    }
    *dsn = "4.2.0";
    buf_printf(why, "unable to lock %s: it stays locked by another process",
               rq->path);
    return -1;
}

/* "From SENDER DATE\n", DATE as asctime() writes it, in local time. */
static void mbox_from_line(const struct mbox_request *rq,
                           struct mailbox_output *out)
{
    time_t when = rq->date != 0 ? rq->date : time(NULL);
    struct tm tm;
    char date[64];
    if (localtime_r(&when, &tm) == NULL ||
        strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", &tm) == 0)
        date[0] = '\0';
    struct buf line;
    buf_init(&line, 8192);
    const char *sender = rq->sender != NULL && rq->sender[0] != '\0'
                             ? rq->sender : "MAILER-DAEMON";
    buf_printf(&line, "From %s  %s\n", sender, date);
    mailbox_output_write(out, line.data, line.len);
    buf_free(&line);
}

/* Writes the message and fsyncs.  0, or -1 with dsn and why. */
static int mbox_write(const struct mbox_request *rq, int fd,
                      struct delivery_source *src, const char **dsn,
                      struct buf *why)
{
    struct mailbox_output out;
    mailbox_output_init(&out, fd);
    mbox_from_line(rq, &out);
    if (rq->headers != NULL)
        mailbox_output_write(&out, rq->headers, strlen(rq->headers));
    int rc = mailbox_output_copy(&out, src, MAILBOX_QUOTE_FROM, why);
    if (rc == 0)
        mailbox_output_write(&out, "\n", 1);
    if (rc == 0)
        rc = mailbox_output_flush(&out);
    if (rc == 0 && fsync(fd) != 0) {
        out.error = errno;
        rc = -1;
    }
    if (rc == -2) {
        *dsn = "4.3.0";
        buf_append_str(why, " (reading the queue file)");
    } else if (rc != 0) {
        *dsn = mailbox_error_dsn(out.error, "write mailbox", why);
        buf_printf(why, " (%s)", rq->path);
    }
    mailbox_output_free(&out);
    return rc == 0 ? 0 : -1;
}

/* Under both locks: write, or roll back to the size before. */
static int mbox_append(const struct mbox_request *rq, int fd,
                       struct delivery_source *src, const char **dsn,
                       struct buf *why)
{
    off_t size;
    if (mbox_check(fd, rq, &size, dsn, why) != 0 ||
        mbox_lock_fd(rq, fd, dsn, why) != 0)
        return -1;
    /* The size again now that the lock is ours: another writer may have
     * appended between the check and the lock. */
    struct stat st;
    if (fstat(fd, &st) == 0)
        size = st.st_size;
    if (mbox_write(rq, fd, src, dsn, why) == 0)
        return 0;
    if (ftruncate(fd, size) != 0 || fsync(fd) != 0)
        buf_printf(why, "; cannot truncate the mailbox back: %s",
                   strerror(errno));
    return -1;
}

int mbox_deliver(const struct mbox_request *rq, struct delivery_source *src,
                 const char **dsn, struct buf *why)
{
    struct buf lock;
    buf_init(&lock, PATH_MAX);
    if (buf_printf(&lock, "%s.lock", rq->path) != 0) {
        *dsn = "4.3.0";
        buf_set_str(why, "mailbox path too long");
        buf_free(&lock);
        return -1;
    }
    int locked = 0;
    if (!rq->no_dotlock) {
        locked = mbox_dotlock(rq, buf_cstr(&lock), dsn, why);
        if (locked < 0) {
            buf_free(&lock);
            return -1;
        }
    }
    int rc = -1;
    int fd = mbox_open(rq->path, dsn, why);
    if (fd >= 0) {
        rc = mbox_append(rq, fd, src, dsn, why);
        if (close(fd) != 0 && rc == 0) {
            *dsn = mailbox_error_dsn(errno, "close mailbox", why);
            rc = -1;
        }
    }
    if (locked > 0)
        (void)unlink(buf_cstr(&lock));
    buf_free(&lock);
    return rc;
}
