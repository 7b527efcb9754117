/*
 * status_board - which children of a service are busy, in memory that the
 * master and the children share, so that a child writes on the status pipe
 * only when the master needs to hear from it (docs/protocol.md, "Master
 * and child").
 *
 * The master makes one board per service (status_board_create), claims a
 * slot for each child before it forks it (status_board_claim: the slot is
 * "idle" from then on), passes the board's descriptor and the slot number
 * to the child, and releases the slot when it reaps the child
 * (status_board_release).  It counts the idle children itself
 * (status_board_is_idle on each child's slot), and while it waits for a
 * child to become idle it says so with status_board_set_watching().
 *
 * A child maps the board (status_board_attach) and marks its slot busy
 * when it takes a connection and idle when it is done.  The two calls say
 * whether the master must be told:
 *     if (status_board_mark_busy(board, slot))   -- no slot is idle now
 *         write "busy" on the status pipe;
 *     if (status_board_mark_idle(board, slot))   -- the master is waiting
 *         write "available" on the status pipe;
 * Stores and loads are sequentially consistent, so of two children that
 * take the last two idle slots at once at least one sees no slot idle, and
 * of a child going idle and the master starting to wait at least one sees
 * the other: the master never waits for a child that is idle, and never
 * misses that all are busy.
 */
#ifndef POSTINO_STATUS_BOARD_H
#define POSTINO_STATUS_BOARD_H

#include <stddef.h>

#include "dir_sync.h"

struct status_board;

/* Master: a board of capacity slots, all free; NULL with errno set. */
struct status_board *status_board_create(size_t capacity);
/* The descriptor to pass to a child (close-on-exec in the master). */
int status_board_fd(const struct status_board *board);
/* A free slot, now idle; -1 when all capacity slots are taken. */
long status_board_claim(struct status_board *board);
void status_board_release(struct status_board *board, long slot);
int status_board_is_idle(const struct status_board *board, long slot);
void status_board_set_watching(struct status_board *board, int watching);
/* Unmaps and closes; children keep their own mapping. */
void status_board_free(struct status_board *board);

/* Child: maps the board on fd; NULL with errno set. */
struct status_board *status_board_attach(int fd);
/* The slot is busy; returns 1 when no slot of the board is idle. */
int status_board_mark_busy(struct status_board *board, long slot);
/* The slot is idle; returns 1 when the master is waiting for that. */
int status_board_mark_idle(struct status_board *board, long slot);
/* True when slot is a slot of this board. */
int status_board_has_slot(const struct status_board *board, long slot);
/* The children's shared group for the fsyncs of one directory (the one
 * the service makes its files in: cleanup's incoming/), zero at first. */
struct dir_sync_group *status_board_dir_sync(struct status_board *board);

#endif
