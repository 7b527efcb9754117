/*
 * dir_sync - a directory's fsync shared by the processes that make names
 * in it.  See dir_sync.h.
 *
 * A process that needs its name durable looks, in order: is it durable
 * already (a directory fsync that began after the name was made has
 * returned)?  Is such an fsync under way?  Then it waits for that one, up
 * to DIR_SYNC_WAIT_MS, on a futex in the shared memory (woken by each
 * process that finishes an fsync).  Otherwise, or if the wait ends
 * without its name durable (the other process failed or died), it calls
 * fsync(2) itself.  Waiting for an fsync that is under way instead of
 * starting another saves a journal commit: the kernel would begin a new
 * one for the second fsync, with whatever else was written meanwhile.
 */
#include "dir_sync.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define DIR_SYNC_WAIT_MS 200

unsigned long long dir_sync_ticket(struct dir_sync_group *group)
{
    if (group == NULL)
        return 0;
    return atomic_fetch_add(&group->tickets, 1) + 1;
}

/* *counter = max(*counter, value). */
static void dir_sync_raise(atomic_ullong *counter, unsigned long long value)
{
    unsigned long long seen = atomic_load(counter);
    while (seen < value &&
           !atomic_compare_exchange_weak(counter, &seen, value))
        continue;
}

/* The futex word: an atomic_uint has the size and representation of the
 * 32-bit integer futex(2) works on. */
static uint32_t *dir_sync_futex_word(struct dir_sync_group *group)
{
    return (uint32_t *)(void *)&group->finished;
}

static void dir_sync_wake_all(struct dir_sync_group *group)
{
    atomic_fetch_add(&group->finished, 1);
    (void)syscall(SYS_futex, dir_sync_futex_word(group), FUTEX_WAKE, INT_MAX,
                  NULL, NULL, 0);
}

static long long dir_sync_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits while an fsync that covers ticket is under way; 1 when the name
 * is durable at the end, 0 when this process must fsync itself. */
static int dir_sync_wait(struct dir_sync_group *group,
                         unsigned long long ticket)
{
    long long deadline = dir_sync_now_ms() + DIR_SYNC_WAIT_MS;
    for (;;) {
        unsigned finished = atomic_load(&group->finished);
        if (atomic_load(&group->durable) >= ticket)
            return 1;
        if (atomic_load(&group->started) < ticket)
            return 0;
        long long left = deadline - dir_sync_now_ms();
        if (left <= 0)
            return 0;
        struct timespec timeout = { (time_t)(left / 1000),
                                    (long)(left % 1000) * 1000000 };
        if (syscall(SYS_futex, dir_sync_futex_word(group), FUTEX_WAIT,
                    finished, &timeout, NULL, 0) != 0 &&
            errno != EAGAIN && errno != EINTR && errno != ETIMEDOUT)
            return 0;
    }
}

int dir_sync_fsync(struct dir_sync_group *group, unsigned long long ticket,
                   int dir_fd)
{
    if (group == NULL || ticket == 0)
        return fsync(dir_fd);
    if (dir_sync_wait(group, ticket))
        return 0;
    unsigned long long covered = atomic_load(&group->tickets);
    dir_sync_raise(&group->started, covered);
    int rc = fsync(dir_fd);
    int saved = errno;
    if (rc == 0)
        dir_sync_raise(&group->durable, covered);
    dir_sync_wake_all(group);
    errno = saved;
    return rc;
}
