/*
 * mbox - append one message to an mbox file, safely and all or nothing.
 *
 * Steps:
 *   1. take the dot-lock FILE.lock (O_EXCL; a lock older than
 *      MBOX_STALE_LOCK_SECONDS is removed as stale; with no write access to
 *      the directory the dot-lock is skipped, as Postfix's /var/mail
 *      delivery does, and the kernel lock alone protects the file);
 *   2. open FILE with O_APPEND|O_NOFOLLOW, or create it with O_EXCL (mode
 *      0600) when it is missing; it must be a regular file with one link,
 *      owned by the expected uid;
 *   3. take an fcntl write lock on the whole file;
 *   4. write "From SENDER DATE" (MAILER-DAEMON for the null sender), the
 *      given header lines, the content with each line that matches
 *      /^>*From / quoted by one more '>' (mboxrd), a line end when the
 *      content lacks one, and an empty line;
 *   5. fsync.
 * On any failure after the open the file is truncated back to its size
 * before the delivery, so a half message never stays in the mailbox.
 * Waiting for either lock is bounded: lock_attempts tries, lock_delay_ms
 * apart.
 *
 * The caller switches to the recipient's identity first (lib/
 * delivery_identity.h).
 *
 * Usage:
 *     struct mbox_request rq = {
 *         .path = "/var/mail/joe", .uid = pw->pw_uid,
 *         .sender = "a@example.org", .headers = "Return-Path: <a@...>\n",
 *     };
 *     if (mbox_deliver(&rq, &src, &dsn, &why) != 0) ... defer ...
 */
#ifndef POSTINO_MBOX_H
#define POSTINO_MBOX_H

#include <time.h>
#include <sys/types.h>

#include "buf.h"
#include "delivery_source.h"

#define MBOX_STALE_LOCK_SECONDS 300
#define MBOX_LOCK_ATTEMPTS 20
#define MBOX_LOCK_DELAY_MS 1000

struct mbox_request {
    const char *path;       /* the mbox file */
    uid_t uid;              /* its owner; (uid_t)-1: not checked */
    const char *sender;     /* envelope sender, "" for the null sender */
    time_t date;            /* for the From_ line; 0: now */
    const char *headers;    /* lines (each ending in LF) put first; NULL */
    int no_dotlock;         /* 1: fcntl lock only */
    int lock_attempts;      /* 0: MBOX_LOCK_ATTEMPTS */
    int lock_delay_ms;      /* 0: MBOX_LOCK_DELAY_MS */
};

/* 0 when the message is appended and fsynced.  -1 on failure: *dsn is a
 * temporary RFC 3463 code (4.2.2 quota, 4.3.1 disk full, 4.2.0 a mailbox
 * that is not a safe regular file or stays locked, 4.3.0 other) and
 * why says what. */
int mbox_deliver(const struct mbox_request *rq, struct delivery_source *src,
                 const char **dsn, struct buf *why);

#endif
