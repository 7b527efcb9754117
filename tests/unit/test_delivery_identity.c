/*
 * test_delivery_identity - unit tests for lib/delivery_identity.
 *
 * Covered, as any user: acting as the process's own uid works and changes
 * nothing; acting as another uid without CAP_SETUID fails with a reason
 * that says so.  As root (skipped otherwise): a file created while acting
 * as nobody belongs to nobody, a directory only root may enter is refused
 * meanwhile, and after leave the process is itself again; become() in a
 * child gives up root for good; an enter inside another as the same user
 * changes nothing, as another user is refused, and the outer leave goes
 * back to the process itself.
 *
 * Run: build/<cc>/tests/test_delivery_identity, as root or as any user.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "delivery_identity.h"
#include "unit_dir.h"

static void test_own_uid(void **state)
{
    (void)state;
    struct buf why;
    buf_init(&why, 1024);
    struct delivery_identity id;
    assert_true(delivery_identity_possible(geteuid()));
    assert_int_equal(delivery_identity_enter(&id, NULL, geteuid(), getegid(),
                                             (gid_t)-1, &why), 0);
    assert_int_equal((uid_t)setfsuid((uid_t)-1), geteuid());
    delivery_identity_leave(&id);
    assert_int_equal((uid_t)setfsuid((uid_t)-1), geteuid());
    buf_free(&why);
}

static void test_other_uid_without_privilege(void **state)
{
    (void)state;
    if (geteuid() == 0)
        skip();
    struct buf why;
    buf_init(&why, 1024);
    struct delivery_identity id;
    uid_t other = geteuid() + 1;
    assert_false(delivery_identity_possible(other));
    assert_int_equal(delivery_identity_enter(&id, NULL, other, getegid(),
                                             (gid_t)-1, &why), -1);
    assert_non_null(strstr(buf_cstr(&why), "does not run as root"));
    buf_reset(&why);
    assert_int_equal(delivery_identity_become(NULL, other, getegid(), &why),
                     -1);
    buf_free(&why);
}

/* The ids of nobody; the test is skipped unless it runs as root and
 * nobody exists. */
static void nobody_or_skip(uid_t *uid, gid_t *gid)
{
    struct passwd *pw = getpwnam("nobody");
    if (geteuid() != 0 || pw == NULL)
        skip();
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
}

static void test_as_nobody(void **state)
{
    (void)state;
    uid_t uid;
    gid_t gid;
    nobody_or_skip(&uid, &gid);
    char *dir = unit_dir_make("test-identity");
    assert_int_equal(chmod(dir, 0777), 0);
    struct buf path, closed, why;
    buf_init(&path, 4096);
    buf_init(&closed, 4096);
    buf_init(&why, 1024);
    buf_printf(&path, "%s/file", dir);
    buf_printf(&closed, "%s/closed", dir);
    assert_int_equal(mkdir(buf_cstr(&closed), 0700), 0);

    struct delivery_identity id;
    assert_int_equal(delivery_identity_enter(&id, "nobody", uid, gid,
                                             (gid_t)-1, &why), 0);
    int fd = open(buf_cstr(&path), O_WRONLY | O_CREAT | O_EXCL, 0600);
    int closed_rc = open(buf_cstr(&closed), O_RDONLY | O_DIRECTORY);
    int closed_errno = errno;
    delivery_identity_leave(&id);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(closed_rc, -1);
    assert_int_equal(closed_errno, EACCES);
    struct stat st;
    assert_int_equal(stat(buf_cstr(&path), &st), 0);
    assert_int_equal(st.st_uid, uid);
    assert_int_equal(st.st_gid, gid);
    assert_int_equal((uid_t)setfsuid((uid_t)-1), geteuid());

    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        if (delivery_identity_become("nobody", uid, gid, &why) != 0)
            _exit(1);
        _exit(getuid() == uid && geteuid() == uid && getgid() == gid &&
              setuid(0) != 0 ? 0 : 2);
    }
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    unlink(buf_cstr(&path));
    rmdir(buf_cstr(&closed));
    unit_dir_remove(dir);
    free(dir);
    buf_free(&path);
    buf_free(&closed);
    buf_free(&why);
}

static void test_inner_enter(void **state)
{
    (void)state;
    uid_t uid;
    gid_t gid;
    nobody_or_skip(&uid, &gid);
    struct buf why;
    buf_init(&why, 1024);
    struct delivery_identity outer, same, other;
    assert_int_equal(delivery_identity_enter(&outer, "nobody", uid, gid,
                                             (gid_t)-1, &why), 0);
    assert_int_equal(delivery_identity_enter(&same, "nobody", uid, gid,
                                             (gid_t)-1, &why), 0);
    assert_int_equal((uid_t)setfsuid((uid_t)-1), uid);
    delivery_identity_leave(&same);
    /* Still the user after the inner leave. */
    assert_int_equal((uid_t)setfsuid((uid_t)-1), uid);
    assert_int_equal((gid_t)setfsgid((gid_t)-1), gid);
    assert_int_equal(delivery_identity_enter(&other, "root", 0, 0, (gid_t)-1,
                                             &why), -1);
    assert_non_null(strstr(buf_cstr(&why), "already acting as"));
    delivery_identity_leave(&other);
    assert_int_equal((uid_t)setfsuid((uid_t)-1), uid);
    delivery_identity_leave(&outer);
    assert_int_equal((uid_t)setfsuid((uid_t)-1), geteuid());
    assert_int_equal((gid_t)setfsgid((gid_t)-1), getegid());
    buf_free(&why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_own_uid),
        cmocka_unit_test(test_other_uid_without_privilege),
        cmocka_unit_test(test_as_nobody),
        cmocka_unit_test(test_inner_enter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
