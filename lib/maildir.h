/*
 * maildir - deliver one message into a Maildir, durably, without following
 * symbolic links.
 *
 * The steps (the Maildir convention, with the fsyncs that make the result
 * survive a crash):
 *   1. open the Maildir directory (created, mode 0700, when missing; not its
 *      parents) and its new/, each with O_NOFOLLOW (new/ with openat on
 *      the Maildir's descriptor), and check that each belongs to the
 *      expected uid.  Without new/ (a first delivery) tmp/, new/ and cur/
 *      are created (0700) when missing, in that order, and checked the
 *      same way; else tmp/ is opened and checked only for the classic way
 *      below, and cur/, where nothing is written, is not looked at;
 *   2. create a file without a name in new/ (O_TMPFILE), write the given
 *      header lines, then the content from the source;
 *   3. link it (never over anything) to new/UNIQUE,S=SIZE, fsync it,
 *      fsync new/.  Nobody ever sees a partial file, as with tmp/: the
 *      file has no name until it is complete.  On a journaling file
 *      system the file's fsync makes data, inode and name durable in one
 *      commit (the tmp/ way needs two: the file, then link and unlink).
 *      With a sync group (lib/sync_group.h) the linked file goes into the
 *      group instead, to be fsynced with the others of its group; the
 *      classic way below always fsyncs at once.
 *   Where O_TMPFILE or /proc is missing, the classic way instead: create
 *   tmp/UNIQUE with O_EXCL, write, fsync, close; link it to
 *   new/UNIQUE,S=SIZE, remove the tmp name, fsync new/.
 * Only then is the message delivered.  On any failure the new name (and
 * the tmp file) is removed and nothing is left in new/.
 *
 * UNIQUE is SECONDS.M<usec>P<pid>Q<n>.<host>: the time, the pid and a
 * per-process counter; in <host> '/' is written \057 and ':' \072.
 * SIZE is the size of the file as written (LF line ends), for quota tools.
 *
 * The caller switches to the recipient's identity first (lib/
 * delivery_identity.h): the files are created with the process's file
 * system uid and gid.
 *
 * Usage:
 *     struct maildir_request rq = {
 *         .path = "/home/joe/Maildir", .uid = pw->pw_uid,
 *         .headers = "Return-Path: <a@b>\nDelivered-To: joe@example\n",
 *     };
 *     const char *dsn;
 *     if (maildir_deliver(&rq, &src, NULL, &dsn, &why) != 0)
 *         ... defer with dsn (4.x.y) and why ...
 */
#ifndef POSTINO_MAILDIR_H
#define POSTINO_MAILDIR_H

#include <sys/types.h>

#include "buf.h"
#include "delivery_source.h"
#include "sync_group.h"

/* The unique names take at most this many attempts (a name taken by
 * another process of the same pid after a restart, in the same
 * microsecond). */
#define MAILDIR_NAME_ATTEMPTS 10

struct maildir_request {
    const char *path;       /* the Maildir directory */
    uid_t uid;              /* the owner its directories must have;
                             * (uid_t)-1: not checked */
    const char *headers;    /* lines (each ending in LF) put first; NULL */
    const char *hostname;   /* for the name; NULL: gethostname() */
    pid_t pid;              /* for the name; 0: getpid() */
    struct sync_group *group;   /* NULL: durable on return; else see below */
    const struct sync_group_owner *owner;   /* with group: to undo as */
};

/* 0 when the message is durably in new/ (its path, relative to the
 * Maildir, goes to name when not NULL: "new/UNIQUE,S=SIZE").  With
 * rq->group, a 0 that leaves the group one file larger means the message
 * is in new/ but durable only once sync_group_commit returns 0 (else the
 * caller removes it with sync_group_undo).  -1 on failure: *dsn is a
 * temporary RFC 3463 code (4.2.2 quota, 4.3.1 disk full, 4.2.0 a bad
 * Maildir, 4.3.0 other errors) and why says what. */
int maildir_deliver(const struct maildir_request *rq,
                    struct delivery_source *src, struct buf *name,
                    const char **dsn, struct buf *why);
/* Makes the files that maildir_deliver left in group durable
 * (sync_group_commit), then empties the group.  0; or -1 with *dsn and
 * why as for maildir_deliver, every one of the files removed again, each
 * while acting as its owner (lib/delivery_identity.h; the caller has left
 * every identity it entered). */
int maildir_group_commit(struct sync_group *group, const char **dsn,
                         struct buf *why);

#endif
