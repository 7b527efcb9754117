/*
 * test_trigger - unit tests for lib/trigger (best-effort wakeups).
 *
 * A listening Unix socket in a temporary directory gets the bytes; a
 * missing socket fails with ENOENT, and for TRIGGER_ABSENT_RETRY_MS after
 * that no connection is tried (a socket that appears meanwhile gets
 * nothing), then the next wakeup reaches it.
 *
 * Run: build/<cc>/tests/test_trigger (no arguments, no privileges).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "stream.h"
#include "trigger.h"

struct fixture {
    char dir[64];
    char path[128];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_trigger.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/qmgr", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    (void)unlink(f->path);
    assert_int_equal(rmdir(f->dir), 0);
    free(f);
    return 0;
}

static int listen_at(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    assert_true(strlen(path) < sizeof(addr.sun_path));
    memcpy(addr.sun_path, path, strlen(path) + 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(fd, 8), 0);
    return fd;
}

/* The bytes of the next wakeup on listener, or "" when none waits. */
static void next_wakeup(int listener, char *out, size_t size)
{
    out[0] = '\0';
    struct pollfd p = { listener, POLLIN, 0 };
    if (poll(&p, 1, 0) != 1)
        return;
    int fd = accept(listener, NULL, NULL);
    assert_true(fd >= 0);
    ssize_t n = read(fd, out, size - 1);
    assert_true(n >= 0);
    out[n] = '\0';
    assert_int_equal(close(fd), 0);
}

static void test_delivers_the_bytes(void **state)
{
    struct fixture *f = *state;
    int listener = listen_at(f->path);
    struct trigger t;
    trigger_init(&t, f->path);
    assert_int_equal(trigger_send(&t, "I", 1), 0);
    char got[16];
    next_wakeup(listener, got, sizeof(got));
    assert_string_equal(got, "I");
    assert_int_equal(trigger_send(&t, "W", 1), 0);
    next_wakeup(listener, got, sizeof(got));
    assert_string_equal(got, "W");
    assert_int_equal(close(listener), 0);
}

static void test_absent_service_is_not_retried_at_once(void **state)
{
    struct fixture *f = *state;
    struct trigger t;
    trigger_init(&t, f->path);
    errno = 0;
    assert_int_equal(trigger_send(&t, "I", 1), -1);
    assert_int_equal(errno, ENOENT);
    long long failed_at = stream_now_ms();

    /* The service appears: within the pause it is not tried. */
    int listener = listen_at(f->path);
    assert_int_equal(trigger_send(&t, "I", 1), -1);
    char got[16];
    next_wakeup(listener, got, sizeof(got));
    if (stream_now_ms() - failed_at < TRIGGER_ABSENT_RETRY_MS)
        assert_string_equal(got, "");

    /* After the pause it is. */
    long ms = TRIGGER_ABSENT_RETRY_MS + 50;
    struct timespec pause = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR)
        ;
    assert_int_equal(trigger_send(&t, "I", 1), 0);
    next_wakeup(listener, got, sizeof(got));
    assert_string_equal(got, "I");
    assert_int_equal(close(listener), 0);
}

static void test_nobody_listening_pauses_too(void **state)
{
    struct fixture *f = *state;
    int listener = listen_at(f->path);
    assert_int_equal(close(listener), 0); /* the socket file stays */
    struct trigger t;
    trigger_init(&t, f->path);
    errno = 0;
    assert_int_equal(trigger_send(&t, "I", 1), -1);
    assert_int_equal(errno, ECONNREFUSED);
    assert_true(t.absent_until > stream_now_ms());
}

static void test_path_too_long(void **state)
{
    (void)state;
    char path[200];
    memset(path, 'a', sizeof(path) - 1);
    path[sizeof(path) - 1] = '\0';
    struct trigger t;
    trigger_init(&t, path);
    assert_int_equal(trigger_send(&t, "I", 1), -1);
    assert_int_equal(errno, ENAMETOOLONG);
    assert_int_equal(t.absent_until, 0); /* a mistake, not an absence */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_delivers_the_bytes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_absent_service_is_not_retried_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nobody_listening_pauses_too,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_path_too_long, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
