/*
 * privilege - giving up what a process does not need, for good.
 *
 * privilege_drop() is called once by each daemon after it opened what needs
 * root (listening sockets come from the master; log files, keys) and before
 * it reads any input.  When the process runs as root it:
 *   1. looks the user up (before any chroot, where /etc/passwd is gone);
 *   2. chroots to chroot_dir when one is given, and chdirs to "/";
 *   3. sets the supplementary groups to the user's primary group only,
 *      then the gid, then the uid (real, effective and saved);
 *   4. keeps in the permitted and effective sets only the capabilities in
 *      keep (none for every process that parses network input), removes
 *      every other one from the bounding set, and clears the ambient set;
 *   5. checks that setuid(0) now fails.
 * In every case it then sets PR_SET_NO_NEW_PRIVS, so no exec can gain
 * privileges again.
 *
 * Not running as root, the process cannot change user or chroot: the user
 * switch and chroot are skipped (the master logs this once), the capability
 * sets are cleared all the same and NO_NEW_PRIVS is set.
 *
 * Sanitizer builds (POSTINO_SANITIZE) mark the process dumpable again after
 * the uid change, because LeakSanitizer must attach to the process to scan
 * it; production builds never do.
 *
 * Every failure is logged and returns -1; a daemon treats that as fatal.
 *
 * After privilege_drop() the process changes its capabilities only through
 * privilege_clear_capabilities() (never cap_set_proc() itself):
 * privilege_has_effective() answers from the sets read at the end of the
 * drop (those that the file system uid changes it reads each time).
 *
 * Usage:
 *     const cap_value_t keep[] = { CAP_SETUID, CAP_SETGID };
 *     if (privilege_drop("postino", NULL, keep, 2) != 0)
 *         log_fatal("cannot drop privileges");
 *     if (privilege_drop("postino", "/var/spool/postino", NULL, 0) != 0) ...
 */
#ifndef POSTINO_PRIVILEGE_H
#define POSTINO_PRIVILEGE_H

#include <stddef.h>
#include <sys/capability.h>
#include <sys/types.h>

int privilege_drop(const char *user, const char *chroot_dir,
                   const cap_value_t *keep, size_t keep_count);
/* Looks a user up: uid and primary gid.  Returns 0, or -1 if unknown. */
int privilege_lookup_user(const char *user, uid_t *uid, gid_t *gid);
/* Looks a group up by name.  Returns 0, or -1 if unknown. */
int privilege_lookup_group(const char *group, gid_t *gid);
int privilege_is_root(void);
/* 1 when cap is in the effective set of this process. */
int privilege_has_effective(cap_value_t cap);
/* 1 once privilege_drop() succeeded in this process: its uids, gids and
 * groups are then the ones it keeps (but in a child that becomes a
 * recipient for good before exec, lib/delivery_identity.h). */
int privilege_dropped(void);
/* Empties every capability set of the process (a child before exec).  0,
 * or -1 with errno. */
int privilege_clear_capabilities(void);

#endif
