/*
 * test_log - the lines lib/log writes to a file (LOG_TO_FILE): the prefix
 * "Mon dd hh:mm:ss host postino/PROGRAM[pid]: " with the time of the
 * line, also for several lines in one second (whose time text is reused)
 * and for the first line after the second changed; the severity words;
 * control characters replaced.
 *
 * Run: build/<cc>/tests/test_log, as root or as any user.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "unit_dir.h"

struct fixture {
    char *dir;
    struct buf path;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->dir = unit_dir_make("log-test");
    buf_init(&f->path, PATH_MAX);
    assert_int_equal(buf_printf(&f->path, "%s/maillog", f->dir), 0);
    log_init("test_log", LOG_TO_FILE);
    assert_int_equal(log_open_file(buf_cstr(&f->path)), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    log_set_destinations(LOG_TO_TTY);
    unit_dir_remove(f->dir);
    free(f->dir);
    buf_free(&f->path);
    free(f);
    return 0;
}

/* The whole file. */
static void read_all(const struct fixture *f, struct buf *out)
{
    int fd = open(buf_cstr(&f->path), O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    char chunk[4096];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof(chunk))) > 0)
        assert_int_equal(buf_append(out, chunk, (size_t)n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(close(fd), 0);
}

/* The prefix a line written at second t has. */
static void prefix_at(time_t t, struct buf *out)
{
    struct tm tm;
    char when[32];
    assert_non_null(localtime_r(&t, &tm));
    assert_true(strftime(when, sizeof(when), "%b %e %H:%M:%S", &tm) > 0);
    char host[256];
    assert_int_equal(gethostname(host, sizeof(host)), 0);
    host[sizeof(host) - 1] = '\0';
    char *dot = strchr(host, '.');
    if (dot != NULL)
        *dot = '\0';
    buf_reset(out);
    assert_int_equal(buf_printf(out, "%s %s postino/test_log[%ld]: ", when,
                                host, (long)getpid()), 0);
}

/* line (without its LF) is prefix_at(t) + text for a t in [from, to]. */
static void assert_line(const char *line, size_t len, time_t from, time_t to,
                        const char *text)
{
    struct buf want;
    buf_init(&want, 8192);
    int found = 0;
    for (time_t t = from; t <= to && !found; t++) {
        prefix_at(t, &want);
        assert_int_equal(buf_append_str(&want, text), 0);
        found = want.len == len && memcmp(want.data, line, len) == 0;
    }
    if (!found)
        fail_msg("unexpected log line: %.*s", (int)len, line);
    buf_free(&want);
}

/* The lines of text, in order: each checked against the texts. */
static void assert_lines(const struct buf *text, time_t from, time_t to,
                         const char *const *texts, size_t count)
{
    size_t start = 0, n = 0;
    for (size_t i = 0; i < text->len; i++) {
        if (text->data[i] != '\n')
            continue;
        assert_true(n < count);
        assert_line(text->data + start, i - start, from, to, texts[n]);
        n++;
        start = i + 1;
    }
    assert_int_equal(start, text->len);
    assert_int_equal(n, count);
}

static void test_lines_of_one_second(void **state)
{
    struct fixture *f = *state;
    time_t from = time(NULL);
    log_info("first");
    log_warn("second %d", 2);
    log_error("third");
    log_info("fourth\nnot a new line");
    time_t to = time(NULL);
    struct buf text;
    buf_init(&text, 1 << 16);
    read_all(f, &text);
    const char *const want[] = {
        "first", "warning: second 2", "error: third",
        "fourth?not a new line",
    };
    assert_lines(&text, from, to, want, 4);
    buf_free(&text);
}

static void test_the_next_second_has_its_own_time(void **state)
{
    struct fixture *f = *state;
    time_t from = time(NULL);
    log_info("before");
    time_t mid = time(NULL);
    /* Wait for a later second than the first line's (at most one). */
    time_t later;
    while ((later = time(NULL)) <= mid) {
        struct timespec pause = { 0, 10 * 1000 * 1000 };
        assert_int_equal(nanosleep(&pause, NULL), 0);
    }
    log_info("after");
    time_t to = time(NULL);
    struct buf text;
    buf_init(&text, 1 << 16);
    read_all(f, &text);
    const char *nl = memchr(text.data, '\n', text.len);
    assert_non_null(nl);
    size_t first = (size_t)(nl - text.data);
    assert_line(text.data, first, from, mid, "before");
    assert_int_equal(text.data[text.len - 1], '\n');
    assert_line(nl + 1, text.len - first - 2, later, to, "after");
    buf_free(&text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lines_of_one_second, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_the_next_second_has_its_own_time,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
