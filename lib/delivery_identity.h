/*
 * delivery_identity - a delivery agent acting as the recipient.
 *
 * local and virtual run as mail_owner with CAP_SETUID and CAP_SETGID only
 * (privilege_drop's keep argument).  For file work (a Maildir, an mbox, a
 * .forward or :include: file) delivery_identity_enter() switches the file
 * system identity of the process: setgroups to the user's primary group
 * (plus one extra group, e.g. the mail spool directory's: no lookup in the
 * group database, as Postfix's local does), setfsgid, setfsuid.  Files
 * it creates belong to the recipient; the kernel checks its permissions,
 * not the agent's.  delivery_identity_leave() switches back.  Only the file
 * system identity moves, so no signal or ptrace from the recipient's
 * processes can reach the agent meanwhile.  The agent's own euid, egid and
 * groups (what leave goes back to) are read once per process, as are its
 * capabilities (lib/privilege.h): both are fixed once privilege_drop() is
 * done, so a switch costs only setgroups, setfsgid and setfsuid, each way.
 *
 * An enter inside another (before its leave) for the same uid, gid and
 * extra group changes nothing and its leave changes nothing either: a
 * caller that does several file operations as one recipient (local: the
 * .forward look-up, then the mailbox) may enter once around them.  An
 * inner enter as anybody else is refused (why says so), and the outer
 * identity must be left last.
 *
 * For a command, delivery_identity_become() in the child between fork and
 * exec sets the real, effective and saved uid and gid for good and clears
 * every capability.
 *
 * Without CAP_SETUID (an instance run by an ordinary user, the tests as
 * nobody) switching is impossible: the process's own uid "switches"
 * without doing anything, any other uid fails with a clear reason, which
 * the agent reports as a deferral (delivery_identity_enter's why).
 *
 * Usage:
 *     struct delivery_identity id;
 *     if (delivery_identity_enter(&id, pw->pw_name, pw->pw_uid, pw->pw_gid,
 *                                 (gid_t)-1, &why) != 0)
 *         ... defer 4.3.0 with why ...
 *     ... maildir_deliver(...) ...
 *     delivery_identity_leave(&id);     (fatal when it cannot switch back)
 *
 *     child: if (delivery_identity_become(name, uid, gid, &why) != 0) _exit
 */
#ifndef POSTINO_DELIVERY_IDENTITY_H
#define POSTINO_DELIVERY_IDENTITY_H

#include <sys/types.h>

#include "buf.h"

/* The most supplementary groups taken from the group database. */
#define DELIVERY_IDENTITY_GROUPS_MAX 1024

struct delivery_identity {
    int switched;          /* 1 when the file system identity changed */
    int inner;             /* 1 when it was in effect already */
};

/* 1 when this process can act as uid (its own, or it has CAP_SETUID). */
int delivery_identity_possible(uid_t uid);
/* Acts as uid/gid (and extra_gid when it is not (gid_t)-1; user is for
 * the messages only).  0, or -1 with why. */
int delivery_identity_enter(struct delivery_identity *id, const char *user,
                            uid_t uid, gid_t gid, gid_t extra_gid,
                            struct buf *why);
/* Back to the identity before enter.  A failure here is fatal (log_fatal):
 * the process must not go on as somebody else. */
void delivery_identity_leave(struct delivery_identity *id);
/* In a child before exec: become uid/gid (groups as for enter) for good,
 * every capability cleared.  0, or -1 with why. */
int delivery_identity_become(const char *user, uid_t uid, gid_t gid,
                             struct buf *why);

#endif
