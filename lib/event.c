/*
 * event - a single-threaded epoll event loop with one-shot timers.  See
 * event.h for the contract and a usage example.
 *
 * Descriptors: a table indexed by fd holds the callback, context, events
 * and a serial number of each watched descriptor (level-triggered).  The
 * serial, stored with the fd in the epoll data, is new for every
 * registration, so an event that epoll_wait() returned for a descriptor
 * that a callback then unwatched - or unwatched, closed and watched again
 * as another file under the same number - in the same round is dropped.
 * The dispatcher looks the table up afresh for every event and keeps no
 * pointer into it across a callback, so callbacks may watch new
 * descriptors (growing the table) or unwatch any of them.
 *
 * Timers: a binary min-heap ordered by due time, then by id, so timers due
 * at the same time run in the order they were added.  A timer is removed
 * from the heap before its callback runs, so the callback may add timers or
 * cancel any other; a due timer that a callback cancels does not run.
 * Descriptor callbacks run first, then the timers that are due; a timer
 * added by a timer callback waits for the next round, even with delay 0,
 * so a timer that re-adds itself cannot starve the descriptors.
 *
 * A callback must not call event_loop_free() on its own loop.  Unwatch a
 * descriptor before closing it.
 */
#include "event.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define EVENT_BATCH 64

struct event_watch {
    event_fd_fn fn;
    void *ctx;
    unsigned events;
    uint32_t serial; /* 0: the fd is not watched */
};

struct event_timer {
    long long when; /* CLOCK_MONOTONIC ms */
    long id;
    event_timer_fn fn;
    void *ctx;
};

struct event_loop {
    int epoll_fd;
    struct event_watch *watches; /* indexed by fd */
    size_t watch_slots;
    uint32_t last_serial;
    struct event_timer *timers; /* min-heap */
    size_t timer_count;
    size_t timer_cap;
    long last_id;
};

long long event_now_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct event_loop *event_loop_create(void)
{
    struct event_loop *loop = calloc(1, sizeof(*loop));
    if (loop == NULL)
        return NULL;
    loop->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epoll_fd < 0) {
        int saved = errno;
        free(loop);
        errno = saved;
        return NULL;
    }
    return loop;
}

void event_loop_free(struct event_loop *loop)
{
    if (loop == NULL)
        return;
    if (close(loop->epoll_fd) != 0)
        log_warn("event: close epoll descriptor: %s", strerror(errno));
    free(loop->watches);
    free(loop->timers);
    free(loop);
}

/* Makes the watch table long enough to hold fd. */
static int event_grow_watches(struct event_loop *loop, int fd)
{
    size_t need = (size_t)fd + 1;
    if (need <= loop->watch_slots)
        return 0;
    size_t slots = loop->watch_slots ? loop->watch_slots * 2 : 64;
    if (slots < need)
        slots = need;
    struct event_watch *w = realloc(loop->watches, slots * sizeof(*w));
    if (w == NULL) {
        errno = ENOMEM;
        return -1;
    }
    memset(w + loop->watch_slots, 0,
           (slots - loop->watch_slots) * sizeof(*w));
    loop->watches = w;
    loop->watch_slots = slots;
    return 0;
}

static uint32_t event_epoll_mask(unsigned events)
{
    uint32_t mask = 0;
    if (events & EVENT_READ)
        mask |= EPOLLIN;
    if (events & EVENT_WRITE)
        mask |= EPOLLOUT;
    return mask;
}

/* Registers fd with epoll, or changes its registration. */
static int event_epoll_set(struct event_loop *loop, int fd, unsigned events,
                           uint32_t serial, int known)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = event_epoll_mask(events);
    ev.data.u64 = (uint64_t)serial << 32 | (uint32_t)fd;
    int op = known ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(loop->epoll_fd, op, fd, &ev) == 0)
        return 0;
    /* The kernel forgot a closed fd, or still knows one we dropped. */
    if ((op == EPOLL_CTL_MOD && errno == ENOENT) ||
        (op == EPOLL_CTL_ADD && errno == EEXIST)) {
        op = op == EPOLL_CTL_MOD ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
        return epoll_ctl(loop->epoll_fd, op, fd, &ev);
    }
    return -1;
}

int event_watch(struct event_loop *loop, int fd, unsigned events,
                event_fd_fn fn, void *ctx)
{
    if (fd < 0 || fn == NULL) {
        errno = fd < 0 ? EBADF : EINVAL;
        return -1;
    }
    if (event_grow_watches(loop, fd) != 0)
        return -1;
    struct event_watch *w = &loop->watches[fd];
    int known = w->serial != 0;
    uint32_t serial = w->serial;
    if (!known) {
        serial = loop->last_serial + 1;
        if (serial == 0)
            serial = 1; /* after wrapping around; 0 means "not watched" */
    }
    if (event_epoll_set(loop, fd, events, serial, known) != 0)
        return -1;
    if (!known)
        loop->last_serial = serial;
    w->fn = fn;
    w->ctx = ctx;
    w->events = events;
    w->serial = serial;
    return 0;
}

int event_unwatch(struct event_loop *loop, int fd)
{
    if (fd < 0 || (size_t)fd >= loop->watch_slots ||
        loop->watches[fd].serial == 0)
        return -1;
    memset(&loop->watches[fd], 0, sizeof(loop->watches[fd]));
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_DEL, fd, &ev) != 0 &&
        errno != EBADF && errno != ENOENT)
        log_warn("event: stop watching fd %d: %s", fd, strerror(errno));
    return 0;
}

/* Runs the callback of one epoll event; returns 1 if it ran. */
static int event_dispatch_fd(struct event_loop *loop,
                             const struct epoll_event *ev)
{
    int fd = (int)(uint32_t)(ev->data.u64 & 0xffffffffu);
    uint32_t serial = (uint32_t)(ev->data.u64 >> 32);
    if ((size_t)fd >= loop->watch_slots ||
        loop->watches[fd].serial != serial)
        return 0; /* unwatched (and maybe reused) earlier in this round */
    const struct event_watch *w = &loop->watches[fd];
    unsigned events = 0;
    if (ev->events & EPOLLIN)
        events |= EVENT_READ;
    if (ev->events & EPOLLOUT)
        events |= EVENT_WRITE;
    if (ev->events & (EPOLLHUP | EPOLLERR))
        events |= EVENT_ERROR | (w->events & (EVENT_READ | EVENT_WRITE));
    events &= w->events | EVENT_ERROR; /* the events may have changed */
    if (events == 0)
        return 0;
    event_fd_fn fn = w->fn;
    void *ctx = w->ctx;
    fn(loop, fd, events, ctx);
    return 1;
}

/* 1 when timer a is due before timer b. */
static int event_timer_before(const struct event_timer *a,
                              const struct event_timer *b)
{
    return a->when < b->when || (a->when == b->when && a->id < b->id);
}

static void event_timer_swap(struct event_timer *t, size_t i, size_t j)
{
    struct event_timer tmp = t[i];
    t[i] = t[j];
    t[j] = tmp;
}

static void event_heap_up(struct event_timer *t, size_t i)
{
    while (i > 0 && event_timer_before(&t[i], &t[(i - 1) / 2])) {
        event_timer_swap(t, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void event_heap_down(struct event_timer *t, size_t count, size_t i)
{
    for (;;) {
        size_t first = i;
        size_t left = 2 * i + 1;
        size_t right = left + 1;
        if (left < count && event_timer_before(&t[left], &t[first]))
            first = left;
        if (right < count && event_timer_before(&t[right], &t[first]))
            first = right;
        if (first == i)
            return;
        event_timer_swap(t, i, first);
        i = first;
    }
}

/* Removes the timer at heap index i. */
static void event_heap_remove(struct event_loop *loop, size_t i)
{
    struct event_timer *t = loop->timers;
    loop->timer_count--;
    if (i == loop->timer_count)
        return;
    t[i] = t[loop->timer_count];
    event_heap_up(t, i);
    event_heap_down(t, loop->timer_count, i);
}

long event_timer_add(struct event_loop *loop, long delay_ms,
                     event_timer_fn fn, void *ctx)
{
    if (fn == NULL || loop->last_id == LONG_MAX) {
        errno = EINVAL;
        return -1;
    }
    if (loop->timer_count == loop->timer_cap) {
        size_t cap = loop->timer_cap ? loop->timer_cap * 2 : 16;
        struct event_timer *t = realloc(loop->timers, cap * sizeof(*t));
        if (t == NULL) {
            errno = ENOMEM;
            return -1;
        }
        loop->timers = t;
        loop->timer_cap = cap;
    }
    long long now = event_now_ms();
    long long delay = delay_ms > 0 ? delay_ms : 0;
    struct event_timer *t = &loop->timers[loop->timer_count];
    t->when = delay > LLONG_MAX - now ? LLONG_MAX : now + delay;
    t->id = ++loop->last_id;
    t->fn = fn;
    t->ctx = ctx;
    event_heap_up(loop->timers, loop->timer_count++);
    return loop->last_id;
}

int event_timer_cancel(struct event_loop *loop, long id)
{
    for (size_t i = 0; i < loop->timer_count; i++) {
        if (loop->timers[i].id == id) {
            event_heap_remove(loop, i);
            return 0;
        }
    }
    return -1;
}

/* Runs the timers that are due and were added before this round. */
static int event_run_timers(struct event_loop *loop)
{
    long long now = event_now_ms();
    long last_id = loop->last_id;
    int ran = 0;
    while (loop->timer_count > 0 && loop->timers[0].when <= now &&
           loop->timers[0].id <= last_id) {
        struct event_timer t = loop->timers[0];
        event_heap_remove(loop, 0);
        t.fn(loop, t.ctx);
        ran++;
    }
    return ran;
}

/* The epoll_wait() timeout: max_wait_ms, shortened to the next timer. */
static int event_wait_ms(const struct event_loop *loop, long max_wait_ms)
{
    long long wait = max_wait_ms < 0 ? -1 : max_wait_ms;
    if (loop->timer_count > 0) {
        long long due = loop->timers[0].when - event_now_ms();
        if (due < 0)
            due = 0;
        if (wait < 0 || due < wait)
            wait = due;
    }
    return wait > INT_MAX ? INT_MAX : (int)wait;
}

int event_loop_run_once(struct event_loop *loop, long max_wait_ms)
{
    struct epoll_event events[EVENT_BATCH];
    int n = epoll_wait(loop->epoll_fd, events, EVENT_BATCH,
                       event_wait_ms(loop, max_wait_ms));
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    int ran = 0;
    for (int i = 0; i < n; i++)
        ran += event_dispatch_fd(loop, &events[i]);
    return ran + event_run_timers(loop);
}
