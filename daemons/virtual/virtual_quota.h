/*
 * virtual_quota - how full a mailbox of the virtual agent is, for
 * virtual_mailbox_limit (mbox files) and virtual_mailbox_limit_maps
 * (Maildirs).
 *
 * A Maildir's size is the sum of the sizes of the messages in new/ and
 * cur/: the ",S=SIZE" in a file name when it has one (what lib/maildir
 * writes, and what other Maildir writers write for quota tools), else the
 * file's size from fstatat (without following symlinks).  Entries that
 * are not regular files are not counted; a missing Maildir, or a missing
 * new/ or cur/, counts as empty.  Bounded: at most VIRTUAL_QUOTA_FILES_MAX
 * names are looked at; past that the Maildir counts as full.
 *
 * An mbox file's size is its st_size (lstat: a symlink counts 0; the
 * writer refuses it anyway).
 *
 * Run as the recipient (lib/delivery_identity.h): the directories are
 * normally the recipient's own, mode 0700.
 *
 * Usage:
 *     unsigned long long used;
 *     if (virtual_quota_maildir("/var/vmail/ex.net/bob/", &used, &why) != 0)
 *         ... defer 4.3.0 with why ...
 *     if (used + message_size > limit) ... defer 4.2.2 "mailbox full" ...
 */
#ifndef POSTINO_VIRTUAL_QUOTA_H
#define POSTINO_VIRTUAL_QUOTA_H

#include "buf.h"

#define VIRTUAL_QUOTA_FILES_MAX 1000000

/* 0 and *used set, or -1 with why (a directory that cannot be read). */
int virtual_quota_maildir(const char *path, unsigned long long *used,
                          struct buf *why);
int virtual_quota_mbox(const char *path, unsigned long long *used,
                       struct buf *why);
/* The SIZE of a name with ",S=SIZE" (up to the next ',' or ':'); -1 when
 * the name has none. */
long long virtual_quota_name_size(const char *name);

#endif
