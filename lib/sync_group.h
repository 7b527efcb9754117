/*
 * sync_group - new files made durable together, with as few journal
 * commits as the file system allows.
 *
 * A delivery agent that writes several messages in a row (local, with the
 * requests qmgr has queued on its connection) adds each file, written
 * whole and linked to its final name, to a group instead of fsyncing it.
 * It fsyncs the group once (sync_group_commit), and says that any of the
 * messages is delivered only after that:
 *   - Where an fsync commits every change to the file system's metadata
 *     made before it, in order, one fsync is enough: XFS and ext4 with its
 *     journal (safe_file_fsync_covers_names), all files on one file
 *     system.  The data of every file is written out and waited for
 *     first (sync_file_range), then the last file's inode is changed
 *     (its size set again to what it is: its mtime moves) and fsynced.
 *     That fsync commits the inodes and names of them all, and the cache
 *     flush that comes before its commit record makes their data stable
 *     too (sync_group.c says why, step by step).  That is one commit for
 *     the group where one fsync each would cost a commit, or a cache
 *     flush, for every file.
 *   - Elsewhere every file is fsynced, then every directory once.
 * On failure nothing in the group may count as delivered: the caller
 * removes every name (sync_group_undo, which calls back for each file,
 * so that the caller can act as the file's owner), then says so.
 *
 * Usage:
 *     struct sync_group g;
 *     sync_group_init(&g);
 *     ... write fd, linkat it to dir_fd/name ...
 *     struct sync_group_owner owner = { name, uid, gid, (gid_t)-1 };
 *     if (sync_group_add(&g, fd, dir_fd, name, &owner) != 0)
 *         ... fsync fd yourself (out of memory) ...
 *     (fd now belongs to the group)
 *     if (sync_group_commit(&g, &err) != 0) {
 *         sync_group_undo(&g, remove_as_owner, ctx);
 *         ... defer every message of the group with err ...
 *     }
 *     sync_group_clear(&g);       (closes the files; the group is empty)
 *     sync_group_free(&g);
 */
#ifndef POSTINO_SYNC_GROUP_H
#define POSTINO_SYNC_GROUP_H

#include <stddef.h>
#include <sys/types.h>

/* Whom to act as when a file of the group is removed again. */
struct sync_group_owner {
    const char *name;       /* for delivery_identity_enter; may be NULL */
    uid_t uid;
    gid_t gid;
    gid_t extra_gid;        /* (gid_t)-1: none */
};

struct sync_group_file {
    int fd;                 /* the file, open for writing */
    int dir_fd;             /* the directory its name is in */
    char *name;             /* in dir_fd */
    struct sync_group_owner owner;  /* owner.name is owner_name */
    char *owner_name;       /* the group's copy of the name, or NULL */
};

struct sync_group {
    struct sync_group_file *files;
    size_t count;
    size_t room;
};

void sync_group_init(struct sync_group *g);
/* Adds the file fd, whose name in dir_fd is name; the group owns fd from
 * now on, and keeps a duplicate of dir_fd.  0, or -1 (out of memory, no
 * descriptor left) with the group and fd unchanged. */
int sync_group_add(struct sync_group *g, int fd, int dir_fd,
                   const char *name, const struct sync_group_owner *owner);
/* Makes every file of the group durable, with its name.  0; or -1 with
 * *err set to the errno of the first failure (fsync's, sync_file_range's
 * or close's): then none of them may count as durable. */
int sync_group_commit(struct sync_group *g, int *err);
typedef void sync_group_undo_fn(void *ctx, const struct sync_group_file *f);
/* Calls undo for every file of the group (to remove its name). */
void sync_group_undo(struct sync_group *g, sync_group_undo_fn *undo,
                     void *ctx);
/* Closes and forgets every file of the group. */
void sync_group_clear(struct sync_group *g);
void sync_group_free(struct sync_group *g);

#endif
