/*
 * test_status_board - unit tests for lib/status_board (who of a service's
 * children is busy, in memory the master and the children share).
 *
 * The "master" board and a second mapping of the same descriptor (as a
 * child gets it after exec) must agree; a child learns that it took the
 * last idle slot, and that the master waits for an idle one; slots are
 * claimed lowest first, released, and run out at the capacity.  A forked
 * child marking its slot is seen by the parent.
 *
 * Run: build/<cc>/tests/test_status_board (no arguments, no privileges).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "status_board.h"

static struct status_board *child_view(struct status_board *master)
{
    int fd = dup(status_board_fd(master));
    assert_true(fd >= 0);
    struct status_board *child = status_board_attach(fd);
    assert_non_null(child);
    return child;
}

static void test_claim_lowest_first_until_full(void **state)
{
    (void)state;
    struct status_board *b = status_board_create(3);
    assert_non_null(b);
    assert_int_equal(status_board_claim(b), 0);
    assert_int_equal(status_board_claim(b), 1);
    assert_int_equal(status_board_claim(b), 2);
    assert_int_equal(status_board_claim(b), -1);
    status_board_release(b, 1);
    assert_false(status_board_is_idle(b, 1));
    assert_int_equal(status_board_claim(b), 1);
    assert_true(status_board_is_idle(b, 1));
    assert_false(status_board_has_slot(b, 3));
    assert_false(status_board_has_slot(b, -1));
    status_board_free(b);
}

static void test_last_busy_child_tells(void **state)
{
    (void)state;
    struct status_board *master = status_board_create(8);
    assert_non_null(master);
    long a = status_board_claim(master);
    long b = status_board_claim(master);
    struct status_board *child = child_view(master);
    /* One idle left after a: nothing to say; after b none is idle. */
    assert_false(status_board_mark_busy(child, a));
    assert_false(status_board_is_idle(master, a));
    assert_true(status_board_is_idle(master, b));
    assert_true(status_board_mark_busy(child, b));
    /* A new child claimed by the master is idle: a busy again finds it. */
    long c = status_board_claim(master);
    assert_true(status_board_is_idle(master, c));
    assert_false(status_board_mark_busy(child, a));
    /* A released slot is not idle, so it does not hide the others. */
    status_board_release(master, c);
    assert_true(status_board_mark_busy(child, a));
    status_board_free(child);
    status_board_free(master);
}

static void test_idle_child_tells_a_watching_master(void **state)
{
    (void)state;
    struct status_board *master = status_board_create(2);
    assert_non_null(master);
    long a = status_board_claim(master);
    struct status_board *child = child_view(master);
    assert_true(status_board_mark_busy(child, a));
    assert_false(status_board_mark_idle(child, a));
    assert_true(status_board_mark_busy(child, a));
    status_board_set_watching(master, 1);
    assert_true(status_board_mark_idle(child, a));
    assert_true(status_board_is_idle(master, a));
    status_board_set_watching(master, 0);
    assert_false(status_board_mark_idle(child, a));
    status_board_free(child);
    status_board_free(master);
}

static void test_forked_child_is_seen(void **state)
{
    (void)state;
    struct status_board *master = status_board_create(4);
    assert_non_null(master);
    long slot = status_board_claim(master);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct status_board *child = status_board_attach(
            status_board_fd(master));
        _exit(child != NULL && status_board_mark_busy(child, slot) ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_false(status_board_is_idle(master, slot));
    status_board_free(master);
}

static void test_bad_sizes_refused(void **state)
{
    (void)state;
    errno = 0;
    assert_null(status_board_create(0));
    assert_int_equal(errno, EINVAL);
    /* A descriptor that is not a board (too small) is refused. */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_null(status_board_attach(fds[0]));
    close(fds[0]);
    close(fds[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claim_lowest_first_until_full),
        cmocka_unit_test(test_last_busy_child_tells),
        cmocka_unit_test(test_idle_child_tells_a_watching_master),
        cmocka_unit_test(test_forked_child_is_seen),
        cmocka_unit_test(test_bad_sizes_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
