/*
 * test_mbox - unit tests for lib/mbox (appending to an mbox file).
 *
 * Each test works in its own directory under /tmp, removed afterwards.
 * Covered: a missing mailbox is created 0600 with the From_ line, the
 * header lines, the content and an empty line; a second message is
 * appended after the first; /^>*From / lines get one more '>', also when
 * a chunk boundary cuts the line start, and other lines stay as they are;
 * the null sender is MAILER-DAEMON; a symlinked mailbox, one with two
 * links, one of another uid and a FIFO are refused with 4.2.0 and left
 * alone; a source that fails in the middle leaves the file at its old
 * size; a fresh dot-lock held by somebody makes the delivery give up
 * (bounded), a stale one is removed; the dot-lock is gone afterwards; an
 * fcntl lock held by another process makes it give up too.
 *
 * Run: build/<cc>/tests/test_mbox, as root or as any user.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#include "buf.h"
#include "delivery_source.h"
#include "mbox.h"
#include "safe_file.h"
#include "unit_dir.h"

/* Thu Jan  2 03:04:05 2020 UTC, for a From_ line that the test knows. */
#define TEST_DATE 1577934245

struct fixture {
    char *dir;
    char *mbox;
    struct buf why;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    setenv("TZ", "UTC", 1);
    tzset();
    f->dir = unit_dir_make("test-mbox");
    struct buf path;
    buf_init(&path, PATH_MAX);
    buf_printf(&path, "%s/joe", f->dir);
    f->mbox = strdup(buf_cstr(&path));
    buf_free(&path);
    buf_init(&f->why, 4096);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    int rc = unit_dir_remove_tree(f->dir);
    free(f->dir);
    free(f->mbox);
    buf_free(&f->why);
    free(f);
    return rc;
}

/* A source that hands out its text in pieces of step bytes, and fails
 * when fail_at bytes were given (0: never). */
struct piece_source {
    const char *text;
    size_t at;
    size_t step;
    size_t fail_at;
};

static int piece_next(void *ctx, const char **data, size_t *len,
                      struct buf *error)
{
    struct piece_source *s = ctx;
    if (s->fail_at != 0 && s->at >= s->fail_at) {
        buf_set_str(error, "queue file damaged");
        return -1;
    }
    size_t left = strlen(s->text + s->at);
    if (left == 0)
        return 0;
    size_t n = s->step != 0 && s->step < left ? s->step : left;
    *data = s->text + s->at;
    *len = n;
    s->at += n;
    return 1;
}

static int deliver(struct fixture *f, const char *sender, const char *text,
                   size_t step, size_t fail_at, const char **dsn)
{
    struct piece_source ps = { .text = text, .step = step,
                               .fail_at = fail_at };
    struct delivery_source src = { .next = piece_next, .ctx = &ps };
    struct mbox_request rq = {
        .path = f->mbox, .uid = geteuid(), .sender = sender,
        .date = TEST_DATE, .headers = "Delivered-To: joe@example\n",
        .lock_attempts = 2, .lock_delay_ms = 10,
    };
    buf_reset(&f->why);
    return mbox_deliver(&rq, &src, dsn, &f->why);
}

static void assert_file(const char *path, const char *want)
{
    struct buf got;
    buf_init(&got, 1 << 20);
    assert_int_equal(safe_file_read_all(path, &got), 0);
    if (got.len != strlen(want) || memcmp(got.data, want, got.len) != 0)
        fail_msg("mailbox holds:\n%s\nwanted:\n%s", buf_cstr(&got), want);
    buf_free(&got);
}

static void assert_no_lock(struct fixture *f)
{
    struct buf lock;
    buf_init(&lock, PATH_MAX);
    buf_printf(&lock, "%s.lock", f->mbox);
    assert_int_equal(access(buf_cstr(&lock), F_OK), -1);
    buf_free(&lock);
}

static void test_create_and_append(void **state)
{
    struct fixture *f = *state;
    const char *dsn = NULL;
    assert_int_equal(deliver(f, "a@example.org", "Subject: one\n\nbody\n", 0,
                             0, &dsn), 0);
    struct stat st;
    assert_int_equal(stat(f->mbox, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(deliver(f, "", "Subject: two\n\nno line end", 0, 0,
                             &dsn), 0);
    assert_file(f->mbox,
                "From a@example.org  Thu Jan  2 03:04:05 2020\n"
                "Delivered-To: joe@example\n"
                "Subject: one\n\nbody\n\n"
                "From MAILER-DAEMON  Thu Jan  2 03:04:05 2020\n"
                "Delivered-To: joe@example\n"
                "Subject: two\n\nno line end\n\n");
    assert_no_lock(f);
}

static void test_from_quoting(void **state)
{
    struct fixture *f = *state;
    static const char text[] =
        "Subject: q\n\nFrom me\n>From you\n>>From them\nFrom\n"
        " From x\nFromage\n>>>\n>Fro\n"
        ">>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>From deep\nFrom ";
    static const char quoted[] =
        "Subject: q\n\n>From me\n>>From you\n>>>From them\nFrom\n"
        " From x\nFromage\n>>>\n>Fro\n"
        ">>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>From deep\n"
        ">From \n\n";
    /* Whole, then one byte at a time, then in pieces of 3. */
    static const size_t steps[] = { 0, 1, 3 };
    for (size_t i = 0; i < 3; i++) {
        const char *dsn;
        assert_int_equal(unlink(f->mbox) == 0 || errno == ENOENT, 1);
        assert_int_equal(deliver(f, "a@b", text, steps[i], 0, &dsn), 0);
        struct buf want;
        buf_init(&want, 4096);
        buf_printf(&want, "From a@b  Thu Jan  2 03:04:05 2020\n"
                   "Delivered-To: joe@example\n%s", quoted);
        assert_file(f->mbox, buf_cstr(&want));
        buf_free(&want);
    }
}

static void test_failure_truncates(void **state)
{
    struct fixture *f = *state;
    const char *dsn = NULL;
    assert_int_equal(deliver(f, "a@b", "Subject: one\n\nbody\n", 0, 0, &dsn),
                     0);
    struct stat before, after;
    assert_int_equal(stat(f->mbox, &before), 0);
    assert_int_equal(deliver(f, "a@b", "Subject: two\n\nlong body\nmore\n",
                             4, 8, &dsn), -1);
    assert_string_equal(dsn, "4.3.0");
    assert_non_null(strstr(buf_cstr(&f->why), "queue file damaged"));
    assert_int_equal(stat(f->mbox, &after), 0);
    assert_int_equal(after.st_size, before.st_size);
    assert_no_lock(f);
}

static void write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(safe_file_write_all(fd, text, strlen(text)), 0);
    assert_int_equal(close(fd), 0);
}

static void test_unsafe_mailboxes_refused(void **state)
{
    struct fixture *f = *state;
    const char *dsn = NULL;
    struct buf other;
    buf_init(&other, PATH_MAX);
    buf_printf(&other, "%s/other", f->dir);
    write_file(buf_cstr(&other), "");

    assert_int_equal(symlink(buf_cstr(&other), f->mbox), 0);
    assert_int_equal(deliver(f, "a@b", "x\n", 0, 0, &dsn), -1);
    assert_string_equal(dsn, "4.2.0");
    assert_non_null(strstr(buf_cstr(&f->why), "symbolic link"));
    assert_int_equal(unlink(f->mbox), 0);

    assert_int_equal(link(buf_cstr(&other), f->mbox), 0);
    assert_int_equal(deliver(f, "a@b", "x\n", 0, 0, &dsn), -1);
    assert_non_null(strstr(buf_cstr(&f->why), "hard links"));
    assert_int_equal(unlink(f->mbox), 0);

    assert_int_equal(mkfifo(f->mbox, 0600), 0);
    assert_int_equal(deliver(f, "a@b", "x\n", 0, 0, &dsn), -1);
    assert_non_null(strstr(buf_cstr(&f->why), "not a regular file"));
    assert_int_equal(unlink(f->mbox), 0);

    write_file(f->mbox, "");
    struct delivery_source src;
    struct delivery_source_memory mem;
    delivery_source_from_memory(&src, &mem, "x\n", 2);
    struct mbox_request rq = { .path = f->mbox, .uid = geteuid() + 1,
                               .sender = "a@b" };
    assert_int_equal(mbox_deliver(&rq, &src, &dsn, &f->why), -1);
    assert_non_null(strstr(buf_cstr(&f->why), "not by the recipient"));

    struct stat st;
    assert_int_equal(stat(buf_cstr(&other), &st), 0);
    assert_int_equal(st.st_size, 0);
    assert_int_equal(stat(f->mbox, &st), 0);
    assert_int_equal(st.st_size, 0);
    buf_free(&other);
}

static void test_dot_lock(void **state)
{
    struct fixture *f = *state;
    struct buf lock;
    buf_init(&lock, PATH_MAX);
    buf_printf(&lock, "%s.lock", f->mbox);
    write_file(buf_cstr(&lock), "12345\n");
    const char *dsn = NULL;
    assert_int_equal(deliver(f, "a@b", "x\n", 0, 0, &dsn), -1);
    assert_string_equal(dsn, "4.2.0");
    assert_non_null(strstr(buf_cstr(&f->why), "unable to lock"));
    assert_int_equal(access(buf_cstr(&lock), F_OK), 0);
    /* Made old: stale, removed, and the delivery goes through. */
    struct utimbuf old = { .actime = time(NULL) - 1000,
                           .modtime = time(NULL) - 1000 };
    assert_int_equal(utime(buf_cstr(&lock), &old), 0);
    assert_int_equal(deliver(f, "a@b", "x\n", 0, 0, &dsn), 0);
    assert_no_lock(f);
    buf_free(&lock);
}

static void test_fcntl_lock_held(void **state)
{
    struct fixture *f = *state;
    write_file(f->mbox, "");
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        int fd = open(f->mbox, O_WRONLY);
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
        if (fd < 0 || fcntl(fd, F_SETLK, &fl) != 0)
            _exit(1);
        (void)!write(ready[1], "x", 1);
        sleep(10);
        _exit(0);
    }
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    const char *dsn = NULL;
    int rc = deliver(f, "a@b", "x\n", 0, 0, &dsn);
    kill(child, SIGKILL);
    int status;
    waitpid(child, &status, 0);
    close(ready[0]);
    close(ready[1]);
    assert_int_equal(rc, -1);
    assert_string_equal(dsn, "4.2.0");
    assert_non_null(strstr(buf_cstr(&f->why), "stays locked"));
    struct stat st;
    assert_int_equal(stat(f->mbox, &st), 0);
    assert_int_equal(st.st_size, 0);
    assert_no_lock(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_and_append, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_from_quoting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_truncates, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unsafe_mailboxes_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dot_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fcntl_lock_held, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
