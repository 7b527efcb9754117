/*
 * dir_sync - the fsync of a directory after a new name, shared by the
 * processes that make names in it: a process whose name is already covered
 * by another's directory fsync, begun after the name was made and since
 * finished, has nothing left to wait for and skips its own.
 *
 * A group is two counters in memory the processes share (the service's
 * status board, status_board.h): tickets handed out, and the highest
 * ticket made durable.  Usage, for a file linked into dir_fd:
 *     linkat(..., dir_fd, name, ...)          the name exists
 *     ticket = dir_sync_ticket(group);
 *     fsync(file_fd);                          the data, as ever
 *     dir_sync_fsync(group, ticket, dir_fd);   the name
 * dir_sync_fsync reads the count of tickets handed out before it calls
 * fsync(2) on the directory, and publishes it once that returns: every
 * name whose ticket is at most that count existed when the fsync began,
 * and POSIX makes every entry of the directory durable at its return.
 * So a ticket at or below the published count needs no fsync of its own,
 * and one at or below the count of an fsync still under way waits for
 * that one rather than start another (dir_sync.c).  With group NULL it is
 * a plain fsync of dir_fd.  One group is for one directory.
 */
#ifndef POSTINO_DIR_SYNC_H
#define POSTINO_DIR_SYNC_H

#include <stdatomic.h>

struct dir_sync_group {
    atomic_ullong tickets;  /* names made so far */
    atomic_ullong started;  /* an fsync under way covers 1..started */
    atomic_ullong durable;  /* names 1..durable are durable */
    atomic_uint finished;   /* fsyncs ended: the futex waiters sleep on */
};

/* After the name is made; 0 when group is NULL. */
unsigned long long dir_sync_ticket(struct dir_sync_group *group);
/* 0 when the name of ticket is durable; -1 with errno (fsync's). */
int dir_sync_fsync(struct dir_sync_group *group, unsigned long long ticket,
                   int dir_fd);

#endif
