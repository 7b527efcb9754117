/*
 * safe_file - file operations whose result survives a crash.
 *
 * The rule of the queue, and of every file Postino replaces: write to a
 * temporary name in the same directory, fsync the file, rename it to its
 * final name, fsync the directory.  Only after the directory fsync is the
 * new file durable; callers reply "250" or report success only then.
 * Every call checks every return value, including close(); on failure the
 * temporary file is removed and -1 is returned with errno set (ENOSPC,
 * EDQUOT and EIO reach the caller unchanged, so it can answer 452 4.3.1).
 *
 * Usage:
 *     struct buf temp;
 *     buf_init(&temp, PATH_MAX);
 *     int fd = safe_file_create_temp("queue/incoming", "tmp.", 0600, &temp);
 *     if (fd < 0 || safe_file_write_all(fd, data, len) != 0 ...)
 *     if (safe_file_commit(fd, buf_cstr(&temp), "queue/incoming/4F2A9C") != 0)
 *         ... 452 4.3.1 ...
 *
 *     safe_file_write_atomic("data/state", text, len, 0644);
 */
#ifndef POSTINO_SAFE_FILE_H
#define POSTINO_SAFE_FILE_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"

/* Writes all of data, retrying short writes and EINTR.  0 or -1. */
int safe_file_write_all(int fd, const void *data, size_t len);
/* Reads a whole file into out (appended), failing with EMSGSIZE when it is
 * larger than out's limit.  0 or -1. */
int safe_file_read_all(const char *path, struct buf *out);
/* fsync of a directory, so that a rename or create in it is durable. */
int safe_file_fsync_dir(const char *dir);
/* fsync of the directory that holds path. */
int safe_file_fsync_parent(const char *path);
/* Creates a new file in dir with a unique name that starts with prefix,
 * O_EXCL, O_CLOEXEC, with mode; its path goes to path_out.  Returns fd. */
int safe_file_create_temp(const char *dir, const char *prefix, mode_t mode,
                          struct buf *path_out);
/* fsync(fd), close(fd), rename(temp_path, final_path), fsync of the final
 * directory.  fd is closed in every case; on failure temp_path is
 * removed.  0 or -1. */
int safe_file_commit(int fd, const char *temp_path, const char *final_path);
/* Replaces path with data by the steps above.  0 or -1. */
int safe_file_write_atomic(const char *path, const void *data, size_t len,
                           mode_t mode);
/* Gives the unnamed file fd (O_TMPFILE) the name name in dir_fd (or in
 * the working directory for AT_FDCWD), never over another file: linkat
 * with AT_EMPTY_PATH where the kernel lets this process do that (Linux
 * 6.10 and later, for a file it opened itself), else through
 * /proc/self/fd.  0, or -1 with linkat's errno (EEXIST: the name is
 * taken). */
int safe_file_link_unnamed(int fd, int dir_fd, const char *name);
/* 1 when, on the file system of the directory dir_fd, an fsync of a file
 * that was linked into the directory before the fsync makes that name
 * durable too, so that the directory's own fsync adds nothing: XFS (the
 * link and the inode's new link count are one logged transaction, and
 * the fsync forces the log up to the inode's last one), and ext4 with its
 * journal (the fsync waits for the commit of the inode's last
 * transaction, and commits are in order).  The journal is known by its
 * jbd2 entry under /proc/fs/jbd2.  0 for every other file system (ext4
 * without a journal, btrfs, ...), or when that cannot be told. */
int safe_file_fsync_covers_names(int dir_fd);
/* Makes sure dir exists as a directory with the given mode, and, when
 * uid/gid are not (uid_t)-1/(gid_t)-1 and the process may, that owner.
 * Creates it (not its parents) if missing.  0 or -1. */
int safe_file_ensure_dir(const char *dir, mode_t mode, uid_t uid, gid_t gid);

#endif
