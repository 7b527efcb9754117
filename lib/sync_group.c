/*
 * sync_group - new files made durable together (sync_group.h).
 *
 * The files' fsyncs are what a flush-bound disk divides into: on ext4
 * each fsync that finds nothing left to commit still sends the device a
 * cache flush of its own.  So where the file system commits its metadata
 * in order (jbd2's transactions, XFS's log), the group takes one fsync:
 *   1. every file's data is written out, and waited for
 *      (sync_file_range).  The wait ends only once the writes are done,
 *      with what the file system logs at their end: the blocks' extents
 *      turned from unwritten to written (ext4), the new on-disk size
 *      (XFS).  Every change of metadata for the group is now logged;
 *   2. the last file's size is set again to what it is (ftruncate, which
 *      any writer of the file may do, and changes nothing but its
 *      mtime): a change of its inode logged after all of step 1.
 *      Without it, the last file's own last change might be older than
 *      another file's end of writes, when those ended in the other order
 *      around a commit;
 *   3. the last file's fsync waits for the commit of that change, so of
 *      everything logged before it; the commit begins with a flush of
 *      the device's cache, which makes the data of step 1 stable.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safe_file.h"
#include "sync_group.h"

void sync_group_init(struct sync_group *g)
{
    memset(g, 0, sizeof(*g));
}

int sync_group_add(struct sync_group *g, int fd, int dir_fd,
                   const char *name, const struct sync_group_owner *owner)
{
    if (g->count == g->room) {
        size_t room = g->room > 0 ? g->room * 2 : 4;
        struct sync_group_file *grown =
            realloc(g->files, room * sizeof(*grown));
        if (grown == NULL)
            return -1;
        g->files = grown;
        g->room = room;
    }
    struct sync_group_file *f = &g->files[g->count];
    f->name = strdup(name);
    f->owner = *owner;
    f->owner_name = owner->name != NULL ? strdup(owner->name) : NULL;
    f->owner.name = f->owner_name;
    f->dir_fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
    if (f->name == NULL || (owner->name != NULL && f->owner_name == NULL) ||
        f->dir_fd < 0) {
        int saved = errno;
        free(f->name);
        free(f->owner_name);
        if (f->dir_fd >= 0)
            (void)close(f->dir_fd);
        errno = saved;
        return -1;
    }
    f->fd = fd;
    g->count++;
    return 0;
}

/* 1 when every file is on one file system whose fsync commits all
 * earlier metadata changes with it. */
static int sync_group_ordered(const struct sync_group *g)
{
    struct stat first;
    if (fstat(g->files[0].fd, &first) != 0)
        return 0;
    for (size_t i = 1; i < g->count; i++) {
        struct stat st;
        if (fstat(g->files[i].fd, &st) != 0 || st.st_dev != first.st_dev)
            return 0;
    }
    return safe_file_fsync_covers_names(g->files[0].dir_fd);
}

static void sync_group_note(int *err, int failed)
{
    if (failed && *err == 0)
        *err = errno != 0 ? errno : EIO;
}

/* One fsync, of the last file, after the data of all is written (the
 * steps at the top). */
static void sync_group_commit_ordered(struct sync_group *g, int *err)
{
    if (g->count == 1) {
        sync_group_note(err, fsync(g->files[0].fd) != 0);
        return;
    }
    for (size_t i = 0; i < g->count; i++)
        sync_group_note(err, sync_file_range(g->files[i].fd, 0, 0,
                                             SYNC_FILE_RANGE_WRITE) != 0);
    for (size_t i = 0; i < g->count; i++)
        sync_group_note(err, sync_file_range(g->files[i].fd, 0, 0,
                                             SYNC_FILE_RANGE_WAIT_BEFORE |
                                             SYNC_FILE_RANGE_WRITE |
                                             SYNC_FILE_RANGE_WAIT_AFTER) != 0);
    int last = g->files[g->count - 1].fd;
    struct stat st;
    if (*err == 0)
        sync_group_note(err, fstat(last, &st) != 0);
    if (*err == 0)
        sync_group_note(err, ftruncate(last, st.st_size) != 0);
    if (*err == 0)
        sync_group_note(err, fsync(last) != 0);
}

/* 1 when dir_fd is the same directory as one of the first n files'. */
static int sync_group_dir_seen(const struct sync_group *g, size_t n,
                               const struct stat *dir)
{
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (fstat(g->files[i].dir_fd, &st) == 0 &&
            st.st_dev == dir->st_dev && st.st_ino == dir->st_ino)
            return 1;
    }
    return 0;
}

/* Every file's fsync, then every directory's once. */
static void sync_group_commit_each(struct sync_group *g, int *err)
{
    for (size_t i = 0; i < g->count; i++)
        sync_group_note(err, fsync(g->files[i].fd) != 0);
    for (size_t i = 0; i < g->count && *err == 0; i++) {
        struct stat dir;
        if (fstat(g->files[i].dir_fd, &dir) != 0) {
            sync_group_note(err, 1);
            break;
        }
        if (!sync_group_dir_seen(g, i, &dir))
            sync_group_note(err, fsync(g->files[i].dir_fd) != 0);
    }
}

int sync_group_commit(struct sync_group *g, int *err)
{
    *err = 0;
    if (g->count == 0)
        return 0;
    errno = 0;
    if (sync_group_ordered(g))
        sync_group_commit_ordered(g, err);
    else
        sync_group_commit_each(g, err);
    for (size_t i = 0; i < g->count; i++) {
        sync_group_note(err, close(g->files[i].fd) != 0);
        g->files[i].fd = -1;
    }
    return *err == 0 ? 0 : -1;
}

void sync_group_undo(struct sync_group *g, sync_group_undo_fn *undo,
                     void *ctx)
{
    for (size_t i = 0; i < g->count; i++)
        undo(ctx, &g->files[i]);
}

void sync_group_clear(struct sync_group *g)
{
    for (size_t i = 0; i < g->count; i++) {
        struct sync_group_file *f = &g->files[i];
        if (f->fd >= 0)
            (void)close(f->fd);
        (void)close(f->dir_fd);
        free(f->name);
        free(f->owner_name);
    }
    g->count = 0;
}

void sync_group_free(struct sync_group *g)
{
    sync_group_clear(g);
    free(g->files);
    g->files = NULL;
    g->room = 0;
}
