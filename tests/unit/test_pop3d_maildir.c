/*
 * test_pop3d_maildir - unit tests of daemons/pop3d/pop3d_maildir.c: the
 * transfer form (a table of inputs with their wire form and size, each
 * also fed one byte at a time), TOP's line limit, UIDLs, and a real
 * Maildir: listing, lock, sizes, and the UPDATE's deletions and moves.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../daemons/pop3d/pop3d_maildir.h"
#include "unit_dir.h"

struct transfer_case {
    const char *name;
    const char *in;
    long body_limit;
    const char *out;     /* the wire form, stuffed, without the final "." */
    long long size;      /* what maildir_transfer counts */
};

static const struct transfer_case transfer_cases[] = {
    { "empty", "", -1, "", 0 },
    { "lf lines", "a\nb\n", -1, "a\r\nb\r\n", 6 },
    { "crlf lines stay", "a\r\nb\r\n", -1, "a\r\nb\r\n", 6 },
    { "mixed", "a\r\nb\nc", -1, "a\r\nb\r\nc\r\n", 9 },
    { "no final newline", "last", -1, "last\r\n", 6 },
    { "dot stuffing", ".a\n..b\n.\nc.\n", -1,
      "..a\r\n...b\r\n..\r\nc.\r\n", 16 },
    { "dot on the first line", ".", -1, "..\r\n", 3 },
    { "bare cr kept", "a\rb\n", -1, "a\rb\r\n", 5 },
    { "top 0", "H: 1\nH: 2\n\nb1\nb2\n", 0, "H: 1\r\nH: 2\r\n\r\n", 14 },
    { "top 1", "H: 1\n\nb1\nb2\n", 1, "H: 1\r\n\r\nb1\r\n", 12 },
    { "top more than there is", "H: 1\n\nb1\n", 5, "H: 1\r\n\r\nb1\r\n",
      12 },
    { "top crlf blank line", "H: 1\r\n\r\nb1\r\nb2\r\n", 1,
      "H: 1\r\n\r\nb1\r\n", 12 },
    { "top without body", "H: 1\nH: 2", 3, "H: 1\r\nH: 2\r\n", 12 },
    { NULL, NULL, 0, NULL, 0 },
};

static void run_transfer(const struct transfer_case *c, size_t step)
{
    struct maildir_transfer t;
    maildir_transfer_init(&t, c->body_limit);
    struct buf out;
    buf_init(&out, 4096);
    long long size = 0;
    size_t len = strlen(c->in);
    for (size_t i = 0; i < len; i += step) {
        size_t n = len - i < step ? len - i : step;
        long long r = maildir_transfer_chunk(&t, c->in + i, n, &out);
        assert_true(r >= 0);
        size += r;
    }
    size += maildir_transfer_end(&t, &out);
    if (strcmp(buf_cstr(&out), c->out) != 0 || size != c->size)
        fail_msg("%s (step %zu): got \"%s\" size %lld", c->name, step,
                 buf_cstr(&out), size);
    buf_free(&out);
}

static void test_transfer_form(void **state)
{
    (void)state;
    for (const struct transfer_case *c = transfer_cases; c->name; c++) {
        run_transfer(c, 4096);
        run_transfer(c, 1);
        run_transfer(c, 2);
    }
}

static void test_uidl(void **state)
{
    (void)state;
    char out[MAILDIR_UIDL_MAX + 1];
    maildir_uidl("1700000000.M1P2.host,S=120", out);
    assert_string_equal(out, "1700000000.M1P2.host");
    maildir_uidl("1700000000.M1P2.host,S=120:2,S", out);
    assert_string_equal(out, "1700000000.M1P2.host");
    maildir_uidl("1700000000.M1P2.host:2,", out);
    assert_string_equal(out, "1700000000.M1P2.host");
    /* Not printable, or too long: a stable hash. */
    char other[MAILDIR_UIDL_MAX + 1];
    maildir_uidl("with space,S=1", out);
    maildir_uidl("with space,S=1:2,S", other);
    assert_int_equal(out[0], 'x');
    assert_int_equal(strlen(out), 17);
    assert_string_equal(out, other);
    char longname[200];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    maildir_uidl(longname, out);
    assert_int_equal(strlen(out), 17);
    longname[0] = 'b';
    maildir_uidl(longname, other);
    assert_string_not_equal(out, other);
}

/* ---- a real Maildir ----------------------------------------------- */

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void write_message(const char *dir, const char *sub, const char *name,
                          const char *text)
{
    struct buf path;
    buf_init(&path, 4096);
    assert_int_equal(buf_printf(&path, "%s/%s/%s", dir, sub, name), 0);
    int fd = open(buf_cstr(&path), O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(close(fd), 0);
    buf_free(&path);
}

static int exists(const char *dir, const char *sub, const char *name)
{
    struct buf path;
    buf_init(&path, 4096);
    assert_int_equal(buf_printf(&path, "%s/%s/%s", dir, sub, name), 0);
    int ok = access(buf_cstr(&path), F_OK) == 0;
    buf_free(&path);
    return ok;
}

static char *make_maildir(void)
{
    char *dir = unit_dir_make("pop3d-maildir-test");
    const char *subs[] = { "tmp", "new", "cur" };
    struct buf path;
    buf_init(&path, 4096);
    for (size_t i = 0; i < 3; i++) {
        buf_reset(&path);
        assert_int_equal(buf_printf(&path, "%s/%s", dir, subs[i]), 0);
        assert_int_equal(mkdir(buf_cstr(&path), 0700), 0);
    }
    buf_free(&path);
    return dir;
}

static void test_maildir_session(void **state)
{
    (void)state;
    char *dir = make_maildir();
    write_message(dir, "new", "1700000002.b,S=9", "b\n.dot\n");
    write_message(dir, "cur", "1700000001.a,S=2:2,F", "a\n");
    write_message(dir, "new", "1700000003.c,S=2", "c\n");
    write_message(dir, "cur", "1700000004.d,S=9,W=42:2,", "not read\n");
    write_message(dir, "new", ".hidden", "x\n");
    struct maildir m, second;
    struct buf error;
    buf_init(&error, 4096);
    assert_int_equal(maildir_open(&m, dir, geteuid(), 100, &error),
                     MAILDIR_OK);
    assert_int_equal(m.count, 4);
    assert_string_equal(m.msgs[0].uidl, "1700000001.a");
    assert_string_equal(m.msgs[1].uidl, "1700000002.b");
    assert_int_equal(maildir_open(&second, dir, geteuid(), 100, &error),
                     MAILDIR_IN_USE);
    maildir_close(&second);
    long long size;
    assert_int_equal(maildir_size(&m, 1, &size), 0);
    assert_int_equal(size, 9);
    assert_int_equal(maildir_size(&m, 3, &size), 0);
    assert_int_equal(size, 42);  /* from ",W=" */
    /* RETR of message 1 (cur), DELE of 2 (new); 3 stays unread in new. */
    m.msgs[0].retrieved = 1;
    m.msgs[1].deleted = 1;
    assert_int_equal(maildir_update(&m, &error), 0);
    maildir_close(&m);
    assert_true(exists(dir, "cur", "1700000001.a,S=2:2,FS"));
    assert_false(exists(dir, "new", "1700000002.b,S=9"));
    assert_true(exists(dir, "cur", "1700000003.c,S=2:2,"));
    assert_true(exists(dir, "cur", "1700000004.d,S=9,W=42:2,"));
    /* The lock went with the session; the UIDLs stayed. */
    assert_int_equal(maildir_open(&m, dir, geteuid(), 2, &error),
                     MAILDIR_OK);
    assert_int_equal(m.count, 2);  /* max_messages: the oldest two */
    assert_string_equal(m.msgs[0].uidl, "1700000001.a");
    assert_string_equal(m.msgs[1].uidl, "1700000003.c");
    maildir_close(&m);
    /* Not the owner. */
    assert_int_equal(maildir_open(&m, dir, geteuid() + 1, 100, &error),
                     MAILDIR_ERROR);
    maildir_close(&m);
    buf_free(&error);
    assert_int_equal(nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS), 0);
    free(dir);
}

static void test_missing_maildir_is_empty(void **state)
{
    (void)state;
    struct maildir m;
    struct buf error;
    buf_init(&error, 4096);
    assert_int_equal(maildir_open(&m, "/nonexistent/Maildir/", geteuid(),
                                  100, &error), MAILDIR_OK);
    assert_int_equal(m.count, 0);
    assert_int_equal(maildir_update(&m, &error), 0);
    maildir_close(&m);
    buf_free(&error);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transfer_form),
        cmocka_unit_test(test_uidl),
        cmocka_unit_test(test_maildir_session),
        cmocka_unit_test(test_missing_maildir_is_empty),
    };
    return cmocka_run_group_tests(tests, 0, NULL);
}
