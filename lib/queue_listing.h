/*
 * queue_listing - the queue as mailq shows it (Postfix's format), written
 * to a stream: showq serves it to mailq through postdrop, postino-queue
 * prints it to an admin.
 *
 *   -Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------
 *   4F2A9C1B3D*    1234 Tue Dec  1 20:40:11  sender@example.com
 *   (connect to mx.example.org[192.0.2.1]:25: Connection refused)
 *                                            rcpt@example.org
 *
 *   -- 2 Kbytes in 1 Request.
 *
 * or "Mail queue is empty".  Queues in this order: maildrop, incoming,
 * active (marked "*"), deferred, hold (marked "!").  The size is the
 * message content; the null sender shows as MAILER-DAEMON; recipients
 * already done are left out; a deferred recipient is preceded by the
 * reason of its last attempt (from defer/ID, docs/queue-format.md), in
 * parentheses, once for each run of recipients with the same reason.  A
 * file that cannot be read (gone since the directory was read, or corrupt)
 * is skipped.  Bytes that are not printable are shown as '?', so that a
 * sender cannot put escape sequences on an admin's terminal.  The
 * current directory must be the queue directory.
 *
 * Usage:
 *     struct stream out;
 *     stream_init(&out, fd, 60000);
 *     queue_listing_write(&out);
 *     stream_flush(&out);
 */
#ifndef POSTINO_QUEUE_LISTING_H
#define POSTINO_QUEUE_LISTING_H

#include "stream.h"

/* Writes the whole listing (not flushed).  Returns the number of
 * messages listed. */
long queue_listing_write(struct stream *out);

#endif
