/*
 * event - a single-threaded event loop over epoll, with timers.
 *
 * Callbacks run from event_loop_run_once(), never from a signal handler
 * (a program that handles signals writes a byte to a pipe it watches).
 * A callback may watch or unwatch any descriptor and add or cancel any
 * timer, including its own; an event for a descriptor unwatched earlier in
 * the same round is not delivered.
 *
 * Usage:
 *     struct event_loop *loop = event_loop_create();
 *     event_watch(loop, fd, EVENT_READ, on_readable, ctx);
 *     long id = event_timer_add(loop, 5000, on_timeout, ctx);
 *     while (running)
 *         event_loop_run_once(loop, -1);
 *     event_loop_free(loop);
 */
#ifndef POSTINO_EVENT_H
#define POSTINO_EVENT_H

enum {
    EVENT_READ = 1,
    EVENT_WRITE = 2,
    EVENT_ERROR = 4, /* delivered with READ/WRITE on hangup or error */
};

struct event_loop;
typedef void (*event_fd_fn)(struct event_loop *loop, int fd,
                            unsigned events, void *ctx);
typedef void (*event_timer_fn)(struct event_loop *loop, void *ctx);

struct event_loop *event_loop_create(void);
void event_loop_free(struct event_loop *loop);

/* Adds fd, or changes the events, callback and context of a watched fd.
 * Returns 0 or -1 (errno). */
int event_watch(struct event_loop *loop, int fd, unsigned events,
                event_fd_fn fn, void *ctx);
/* Returns 0, or -1 when fd was not watched. */
int event_unwatch(struct event_loop *loop, int fd);

/* Calls fn once, delay_ms from now.  Returns an id > 0, or -1. */
long event_timer_add(struct event_loop *loop, long delay_ms,
                     event_timer_fn fn, void *ctx);
/* Returns 0, or -1 when the timer had already run or was cancelled. */
int event_timer_cancel(struct event_loop *loop, long id);

/* Waits at most max_wait_ms (negative: until something happens) and runs
 * what is due.  Returns the number of callbacks run, or -1 on error other
 * than EINTR (EINTR returns 0). */
int event_loop_run_once(struct event_loop *loop, long max_wait_ms);

/* Milliseconds of CLOCK_MONOTONIC. */
long long event_now_ms(void);

#endif
