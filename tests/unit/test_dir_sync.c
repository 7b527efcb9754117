/*
 * test_dir_sync - unit tests for lib/dir_sync (a directory's fsync shared
 * by the processes that make names in it).
 *
 * Whether dir_sync_fsync called fsync(2) itself shows through a
 * descriptor that is not open: it fails with EBADF when it did, and
 * succeeds when another process's fsync covered the name.  A second
 * process (fork, the group in shared memory) plays the other writer.
 *
 * Run: build/<cc>/tests/test_dir_sync (no arguments, no privileges).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dir_sync.h"

static struct dir_sync_group *shared_group(void)
{
    void *mem = mmap(NULL, sizeof(struct dir_sync_group),
                     PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(mem != MAP_FAILED);
    return mem; /* zeroed */
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_no_group_is_a_plain_fsync(void **state)
{
    (void)state;
    assert_int_equal(dir_sync_ticket(NULL), 0);
    int dir = open(".", O_RDONLY | O_DIRECTORY);
    assert_true(dir >= 0);
    assert_int_equal(dir_sync_fsync(NULL, 0, dir), 0);
    close(dir);
    errno = 0;
    assert_int_equal(dir_sync_fsync(NULL, 0, -1), -1);
    assert_int_equal(errno, EBADF);
}

static void test_fsync_covers_earlier_tickets_only(void **state)
{
    (void)state;
    struct dir_sync_group *g = shared_group();
    unsigned long long first = dir_sync_ticket(g);
    unsigned long long second = dir_sync_ticket(g);
    assert_int_equal(first, 1);
    assert_int_equal(second, 2);
    int dir = open(".", O_RDONLY | O_DIRECTORY);
    assert_true(dir >= 0);
    /* The first name's fsync began after both names were made. */
    assert_int_equal(dir_sync_fsync(g, first, dir), 0);
    close(dir);
    assert_int_equal(dir_sync_fsync(g, second, -1), 0);
    /* A name made after that fsync began needs one of its own. */
    unsigned long long third = dir_sync_ticket(g);
    errno = 0;
    assert_int_equal(dir_sync_fsync(g, third, -1), -1);
    assert_int_equal(errno, EBADF);
    munmap(g, sizeof(*g));
}

static void test_waits_for_an_fsync_under_way(void **state)
{
    (void)state;
    struct dir_sync_group *g = shared_group();
    unsigned long long mine = dir_sync_ticket(g);
    /* Another process has begun an fsync that covers it... */
    atomic_store(&g->started, mine);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* ... and finishes it 20 ms later. */
        usleep(20000);
        int dir = open(".", O_RDONLY | O_DIRECTORY);
        unsigned long long t = dir_sync_ticket(g);
        _exit(dir >= 0 && dir_sync_fsync(g, t, dir) == 0 ? 0 : 1);
    }
    long long start = now_ms();
    assert_int_equal(dir_sync_fsync(g, mine, -1), 0);
    assert_true(now_ms() - start >= 15);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    munmap(g, sizeof(*g));
}

static void test_gives_up_on_an_fsync_that_never_ends(void **state)
{
    (void)state;
    struct dir_sync_group *g = shared_group();
    unsigned long long mine = dir_sync_ticket(g);
    atomic_store(&g->started, mine); /* its process died */
    long long start = now_ms();
    errno = 0;
    assert_int_equal(dir_sync_fsync(g, mine, -1), -1);
    assert_int_equal(errno, EBADF);
    assert_true(now_ms() - start >= 150);
    munmap(g, sizeof(*g));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_group_is_a_plain_fsync),
        cmocka_unit_test(test_fsync_covers_earlier_tickets_only),
        cmocka_unit_test(test_waits_for_an_fsync_under_way),
        cmocka_unit_test(test_gives_up_on_an_fsync_that_never_ends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
