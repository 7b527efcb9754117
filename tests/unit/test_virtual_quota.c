/*
 * test_virtual_quota - the mailbox sizes behind the virtual agent's
 * quotas: ",S=" in Maildir names, stat for the others, what is not
 * counted, and mbox files.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../daemons/virtual/virtual_quota.h"
#include "unit_dir.h"

static int setup(void **state)
{
    char *dir = unit_dir_make("virtual-quota-test");
    assert_int_equal(chdir(dir), 0);
    *state = dir;
    return 0;
}

static int teardown(void **state)
{
    char *dir = *state;
    assert_int_equal(chdir("/"), 0);
    unit_dir_remove_tree(dir);
    free(dir);
    return 0;
}

static void put(const char *path, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    for (size_t i = 0; i < size; i++)
        assert_int_equal(write(fd, "x", 1), 1);
    assert_int_equal(close(fd), 0);
}

static void test_name_size(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        long long size;
    } cases[] = {
        { "1700000000.M1P2Q3.host,S=1234", 1234 },
        { "1700000000.M1P2Q3.host,S=1234:2,S", 1234 },
        { "1700000000.M1P2Q3.host,S=99,W=101:2,", 99 },
        { "1700000000.M1P2Q3.host", -1 },
        { "1700000000.host,S=", -1 },
        { "1700000000.host,S=12x", -1 },
        { "1700000000.host,S=99999999999999999999", -1 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(virtual_quota_name_size(cases[i].name),
                         cases[i].size);
}

static void test_maildir(void **state)
{
    (void)state;
    struct buf why;
    buf_init(&why, 1024);
    unsigned long long used = 1;
    /* Missing: empty. */
    assert_int_equal(virtual_quota_maildir("box/", &used, &why), 0);
    assert_int_equal(used, 0);
    assert_int_equal(mkdir("box", 0700), 0);
    assert_int_equal(mkdir("box/new", 0700), 0);
    assert_int_equal(mkdir("box/cur", 0700), 0);
    assert_int_equal(mkdir("box/tmp", 0700), 0);
    put("box/new/1.a.host,S=100", 3);     /* the name counts: 100 */
    put("box/cur/2.b.host:2,S", 7);       /* no S=: its size, 7 */
    put("box/tmp/3.c.host", 50);          /* tmp/ is not counted */
    put("box/cur/.hidden", 50);           /* dot files neither */
    assert_int_equal(mkdir("box/cur/sub", 0700), 0);
    assert_int_equal(symlink("/etc/passwd", "box/cur/link"), 0);
    assert_int_equal(virtual_quota_maildir("box/", &used, &why), 0);
    assert_int_equal(used, 107);
    assert_int_equal(virtual_quota_maildir("box", &used, &why), 0);
    assert_int_equal(used, 107);
    /* A symlink instead of the Maildir is an error. */
    assert_int_equal(symlink("box", "link"), 0);
    assert_int_equal(virtual_quota_maildir("link/", &used, &why), -1);
    assert_non_null(strstr(buf_cstr(&why), "link"));
    buf_free(&why);
}

static void test_mbox(void **state)
{
    (void)state;
    struct buf why;
    buf_init(&why, 1024);
    unsigned long long used = 1;
    assert_int_equal(virtual_quota_mbox("mbox", &used, &why), 0);
    assert_int_equal(used, 0);
    put("mbox", 42);
    assert_int_equal(virtual_quota_mbox("mbox", &used, &why), 0);
    assert_int_equal(used, 42);
    assert_int_equal(symlink("mbox", "mlink"), 0);
    assert_int_equal(virtual_quota_mbox("mlink", &used, &why), 0);
    assert_int_equal(used, 0);
    buf_free(&why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_size),
        cmocka_unit_test_setup_teardown(test_maildir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mbox, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
