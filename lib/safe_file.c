/*
 * safe_file - files that survive a crash: write to a temporary name in
 * the same directory, fsync, rename, fsync the directory.  See
 * safe_file.h for the contract and a usage example.
 *
 * Nothing here logs: every function returns -1 with errno as the failing
 * system call left it (ENOSPC, EDQUOT, EIO...), so that the caller can
 * both log with its own context and choose its reply.  Cleanup after a
 * failure (close, unlink of the temporary file) never changes that errno.
 */
#include "safe_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

/* Temporary names tried before giving up with EEXIST. */
#define TEMP_ATTEMPTS 100
/* Bytes read at a time by safe_file_read_all(). */
#define READ_CHUNK 8192

/* Removes a temporary file after a failure, keeping the failure's errno. */
static void discard_temp(const char *temp_path)
{
    int saved = errno;
    (void)unlink(temp_path); /* nothing better to do if this fails too */
    errno = saved;
}

/* Closes fd after a failure, keeping the failure's errno. */
static void close_quietly(int fd)
{
    int saved = errno;
    (void)close(fd);
    errno = saved;
}

int safe_file_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0) { /* no progress and no error: do not spin */
            errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int read_fd(int fd, struct buf *out)
{
    char chunk[READ_CHUNK];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        if (buf_append(out, chunk, (size_t)n) != 0)
            return -1;
    }
}

int safe_file_read_all(const char *path, struct buf *out)
{
    size_t start = out->len;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -1;
    if (read_fd(fd, out) != 0) {
        close_quietly(fd);
        buf_truncate(out, start);
        return -1;
    }
    if (close(fd) != 0) {
        buf_truncate(out, start);
        return -1;
    }
    return 0;
}

int safe_file_link_unnamed(int fd, int dir_fd, const char *name)
{
    if (linkat(fd, "", dir_fd, name, AT_EMPTY_PATH) == 0)
        return 0;
    /* Older kernels refuse AT_EMPTY_PATH without CAP_DAC_READ_SEARCH
     * (ENOENT), or know nothing of it (EINVAL); the /proc way then says
     * what a real failure is. */
    if (errno != ENOENT && errno != EINVAL && errno != EPERM)
        return -1;
    char self[64];
    snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
    return linkat(AT_FDCWD, self, dir_fd, name, AT_SYMLINK_FOLLOW);
}

#define SAFE_FILE_XFS_MAGIC 0x58465342
#define SAFE_FILE_EXT4_MAGIC 0xEF53 /* ext2, ext3 and ext4 alike */

/* 1 when the ext4 file system of device dev runs with a journal of its
 * own: jbd2 names it after the block device and the journal inode (8). */
static int safe_file_ext4_journaled(dev_t dev)
{
    char sys_path[64], target[PATH_MAX], proc_path[PATH_MAX];
    snprintf(sys_path, sizeof(sys_path), "/sys/dev/block/%u:%u",
             major(dev), minor(dev));
    ssize_t n = readlink(sys_path, target, sizeof(target) - 1);
    if (n <= 0)
        return 0;
    target[n] = '\0';
    const char *slash = strrchr(target, '/');
    const char *device = slash != NULL ? slash + 1 : target;
    if (device[0] == '\0' ||
        snprintf(proc_path, sizeof(proc_path), "/proc/fs/jbd2/%s-8",
                 device) >= (int)sizeof(proc_path))
        return 0;
    return access(proc_path, F_OK) == 0;
}

int safe_file_fsync_covers_names(int dir_fd)
{
    struct statfs fs;
    if (fstatfs(dir_fd, &fs) != 0)
        return 0;
    if (fs.f_type == SAFE_FILE_XFS_MAGIC)
        return 1;
    if (fs.f_type != SAFE_FILE_EXT4_MAGIC)
        return 0;
    struct stat st;
    if (fstat(dir_fd, &st) != 0)
        return 0;
    return safe_file_ext4_journaled(st.st_dev);
}

int safe_file_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fsync(fd) != 0) {
        close_quietly(fd);
        return -1;
    }
    return close(fd);
}

/* The directory part of path: "a/b/c" -> "a/b", "c" -> ".", "/c" -> "/". */
static int parent_dir(const char *path, struct buf *out)
{
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--; /* "a/b/" names b */
    while (len > 0 && path[len - 1] != '/')
        len--;
    while (len > 1 && path[len - 1] == '/')
        len--; /* "a//b" */
    if (len == 0)
        return buf_set_str(out, ".");
    return buf_set(out, path, len);
}

int safe_file_fsync_parent(const char *path)
{
    struct buf dir;
    buf_init(&dir, PATH_MAX);
    int rc = parent_dir(path, &dir);
    if (rc == 0)
        rc = safe_file_fsync_dir(buf_cstr(&dir));
    int saved = errno;
    buf_free(&dir);
    errno = saved;
    return rc;
}

static int temp_name(struct buf *out, const char *dir, const char *prefix)
{
    /* The one piece of mutable state of this module: a counter that makes
     * names made in the same nanosecond by the same process differ (the
     * pid tells processes apart, O_EXCL settles whatever collides still). */
    static atomic_ulong counter;
    struct timespec now;
    if (clock_gettime(CLOCK_REALTIME, &now) != 0)
        return -1;
    buf_reset(out);
    return buf_printf(out, "%s/%s%ld.%lld%09ld.%lu", dir, prefix,
                      (long)getpid(), (long long)now.tv_sec, now.tv_nsec,
                      atomic_fetch_add(&counter, 1));
}

int safe_file_create_temp(const char *dir, const char *prefix, mode_t mode,
                          struct buf *path_out)
{
    for (int attempt = 0; attempt < TEMP_ATTEMPTS; attempt++) {
        if (temp_name(path_out, dir, prefix) != 0)
            return -1;
        int fd = open(buf_cstr(path_out),
                      O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY,
                      mode);
        if (fd < 0 && errno == EEXIST)
            continue;
        if (fd < 0)
            return -1;
        /* The mode asked for, whatever the umask. */
        if (fchmod(fd, mode) != 0) {
            close_quietly(fd);
            discard_temp(buf_cstr(path_out));
            return -1;
        }
        return fd;
    }
    errno = EEXIST;
    return -1;
}

int safe_file_commit(int fd, const char *temp_path, const char *final_path)
{
    if (fsync(fd) != 0) {
        close_quietly(fd);
        discard_temp(temp_path);
        return -1;
    }
    /* close() reports late write errors (NFS, quota); on Linux the
     * descriptor is gone even when it fails, so it is never retried. */
    if (close(fd) != 0) {
        discard_temp(temp_path);
        return -1;
    }
    if (rename(temp_path, final_path) != 0) {
        discard_temp(temp_path);
        return -1;
    }
    /* If this fails the file is in place but perhaps not durable: the
     * caller reports failure (a sender retries, at worst a duplicate), and
     * the file is left, since it may have replaced an older one. */
    return safe_file_fsync_parent(final_path);
}

/* Writes data to a new temporary file next to path and commits it. */
static int write_atomic_in(const char *dir, const char *path,
                           const void *data, size_t len, mode_t mode,
                           struct buf *temp)
{
    int fd = safe_file_create_temp(dir, ".tmp.", mode, temp);
    if (fd < 0)
        return -1;
    if (safe_file_write_all(fd, data, len) != 0) {
        close_quietly(fd);
        discard_temp(buf_cstr(temp));
        return -1;
    }
    return safe_file_commit(fd, buf_cstr(temp), path);
}

int safe_file_write_atomic(const char *path, const void *data, size_t len,
                           mode_t mode)
{
    struct buf dir, temp;
    buf_init(&dir, PATH_MAX);
    buf_init(&temp, PATH_MAX);
    int rc = parent_dir(path, &dir);
    if (rc == 0)
        rc = write_atomic_in(buf_cstr(&dir), path, data, len, mode, &temp);
    int saved = errno;
    buf_free(&dir);
    buf_free(&temp);
    errno = saved;
    return rc;
}

/* Gives the open directory the owner (when asked and allowed) and mode. */
static int fix_dir(int fd, mode_t mode, uid_t uid, gid_t gid)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -1;
    uid_t want_uid = uid == (uid_t)-1 ? st.st_uid : uid;
    gid_t want_gid = gid == (gid_t)-1 ? st.st_gid : gid;
    if ((want_uid != st.st_uid || want_gid != st.st_gid) &&
        fchown(fd, want_uid, want_gid) != 0) {
        if (errno != EPERM || geteuid() == 0)
            return -1;
        /* An ordinary user may not give files away: leave the owner. */
    }
    /* After fchown, which may clear the set-group-ID bit. */
    if (fstat(fd, &st) != 0)
        return -1;
    if ((st.st_mode & 07777) != (mode & 07777) && fchmod(fd, mode) != 0)
        return -1;
    return 0;
}

int safe_file_ensure_dir(const char *dir, mode_t mode, uid_t uid, gid_t gid)
{
    int created = mkdir(dir, mode) == 0;
    if (!created && errno != EEXIST)
        return -1;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1; /* ENOTDIR: something else has that name */
    if (fix_dir(fd, mode, uid, gid) != 0) {
        close_quietly(fd);
        return -1;
    }
    if (close(fd) != 0)
        return -1;
    if (created)
        return safe_file_fsync_parent(dir);
    return 0;
}
