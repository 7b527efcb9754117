/*
 * test_privilege - unit tests for lib/privilege (dropping root for good).
 *
 * A privilege drop cannot be undone, so every case runs in a child
 * process: the child calls privilege_drop() and checks the result with
 * CHILD_CHECK(), which on failure writes "line N: expression" into a pipe
 * and exits 1; the parent test reads the pipe, waits, and fails with that
 * text unless the child exited 0.  Children that end normally call
 * exit(), so that LeakSanitizer checks them too in sanitizer builds (this
 * is what POSTINO_SANITIZE's PR_SET_DUMPABLE is for); a chrooted child
 * uses _exit(), as LeakSanitizer needs /proc, which the chroot hides.
 *
 * As root: drop to "nobody" (ids, groups, empty capability sets, bounding
 * and ambient sets, NO_NEW_PRIVS, setuid(0) failing), keeping CAP_SETUID
 * and CAP_SETGID, chroot, an unknown user, "root" as the target.  As any
 * user: the unprivileged path (no user switch, no chroot, capabilities
 * cleared, NO_NEW_PRIVS set).  Root-only cases are skipped otherwise.
 *
 * Run: build/<cc>/tests/test_privilege, as root and as an ordinary user.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "privilege.h"

/* What the child is given: where to report, and whom to become. */
struct child_ctx {
    int report_fd;
    uid_t uid;
    gid_t gid;
    const char *dir; /* a directory for the chroot cases */
    struct stat dir_st;
    struct stat root_st;
};

static _Noreturn void child_fail(const struct child_ctx *c, int line,
                                 const char *what)
{
    int saved = errno;
    struct buf msg;
    buf_init(&msg, 1024);
    if (buf_printf(&msg, "line %d: %s (errno: %s)", line, what,
                   strerror(saved)) == 0 &&
        write(c->report_fd, msg.data, msg.len) < 0)
        _exit(2); /* the exit status still tells the parent */
    buf_free(&msg);
    _exit(1);
}

#define CHILD_CHECK(c, expr)                                                  \
    do {                                                                      \
        if (!(expr))                                                          \
            child_fail((c), __LINE__, #expr);                                 \
    } while (0)

static int in_list(cap_value_t cap, const cap_value_t *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] == cap)
            return 1;
    return 0;
}

/* The flag set (permitted, effective, inheritable) holds exactly list. */
static int cap_set_is(cap_flag_t flag, const cap_value_t *list, size_t n)
{
    cap_t caps = cap_get_proc();
    if (caps == NULL)
        return 0;
    int ok = 1;
    cap_value_t max = (cap_value_t)cap_max_bits();
    for (cap_value_t cap = 0; cap < max && ok; cap++) {
        cap_flag_value_t value;
        if (cap_get_flag(caps, cap, flag, &value) != 0)
            ok = 0;
        else if ((value == CAP_SET) != in_list(cap, list, n))
            ok = 0;
    }
    (void)cap_free(caps);
    return ok;
}

static int caps_empty(void)
{
    cap_t caps = cap_get_proc();
    cap_t none = cap_init();
    int empty = caps != NULL && none != NULL && cap_compare(caps, none) == 0;
    (void)cap_free(caps);
    (void)cap_free(none);
    return empty;
}

static int bound_is(const cap_value_t *list, size_t n)
{
    cap_value_t max = (cap_value_t)cap_max_bits();
    for (cap_value_t cap = 0; cap < max; cap++)
        if ((cap_get_bound(cap) == 1) != in_list(cap, list, n))
            return 0;
    return 1;
}

static int ambient_empty(void)
{
    cap_value_t max = (cap_value_t)cap_max_bits();
    for (cap_value_t cap = 0; cap < max; cap++)
        if (cap_get_ambient(cap) > 0)
            return 0;
    return 1;
}

static int ids_are(uid_t uid, gid_t gid)
{
    uid_t ruid, euid, suid;
    gid_t rgid, egid, sgid;
    if (getresuid(&ruid, &euid, &suid) != 0 ||
        getresgid(&rgid, &egid, &sgid) != 0)
        return 0;
    return ruid == uid && euid == uid && suid == uid && rgid == gid &&
           egid == gid && sgid == gid;
}

/* The supplementary groups are the primary group only. */
static int groups_are(gid_t gid)
{
    gid_t list[2];
    int n = getgroups(2, list);
    return n == 1 && list[0] == gid;
}

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Reads what the child reported, waits for it, fails the test if it did. */
static void collect_child(pid_t pid, int report_fd)
{
    struct buf msg;
    buf_init(&msg, 4096);
    char chunk[512];
    for (;;) {
        ssize_t n = read(report_fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (buf_append(&msg, chunk, (size_t)n) != 0)
            break;
    }
    assert_int_equal(close(report_fd), 0);
    int status;
    pid_t waited;
    do
        waited = waitpid(pid, &status, 0);
    while (waited < 0 && errno == EINTR);
    assert_int_equal(waited, pid);
    if (msg.len > 0)
        fail_msg("child: %s", buf_cstr(&msg));
    buf_free(&msg);
    if (!WIFEXITED(status))
        fail_msg("child killed by signal %d", WTERMSIG(status));
    if (WEXITSTATUS(status) != 0)
        fail_msg("child exited %d", WEXITSTATUS(status));
}

/* Runs fn in a child process.  fn returns when all its checks passed. */
static void run_in_child(void (*fn)(struct child_ctx *), struct child_ctx *c)
{
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    assert_int_equal(fflush(NULL), 0); /* or the child prints it again */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        (void)close(fds[0]);
        c->report_fd = fds[1];
        fn(c);
        exit(0); /* exit, not _exit: LeakSanitizer checks the child too */
    }
    assert_int_equal(close(fds[1]), 0);
    collect_child(pid, fds[0]);
}

static void nobody_ids(struct child_ctx *c)
{
    memset(c, 0, sizeof(*c));
    c->report_fd = -1;
    struct passwd *pw = getpwnam("nobody");
    if (pw == NULL)
        skip();
    c->uid = pw->pw_uid;
    c->gid = pw->pw_gid;
}

static void skip_unless_root(void)
{
    if (!privilege_is_root())
        skip();
}

static void test_is_root(void **state)
{
    (void)state;
    assert_int_equal(privilege_is_root(), geteuid() == 0);
}

static void test_lookup(void **state)
{
    (void)state;
    uid_t uid = 1;
    gid_t gid = 1;
    assert_int_equal(privilege_lookup_user("root", &uid, &gid), 0);
    assert_int_equal(uid, 0);
    assert_int_equal(gid, 0);

    struct passwd *pw = getpwnam("nobody");
    if (pw != NULL) {
        uid_t want_uid = pw->pw_uid;
        gid_t want_gid = pw->pw_gid;
        assert_int_equal(privilege_lookup_user("nobody", &uid, &gid), 0);
        assert_int_equal(uid, want_uid);
        assert_int_equal(gid, want_gid);
    }

    uid = 7;
    gid = 7;
    errno = 0;
    assert_int_equal(privilege_lookup_user("postino-no-such-user", &uid, &gid),
                     -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(uid, 7);
    assert_int_equal(gid, 7);
    assert_int_equal(privilege_lookup_user("", &uid, &gid), -1);

    assert_int_equal(privilege_lookup_group("root", &gid), 0);
    assert_int_equal(gid, 0);
    gid = 7;
    errno = 0;
    assert_int_equal(privilege_lookup_group("postino-no-such-group", &gid),
                     -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(gid, 7);
    assert_int_equal(privilege_lookup_group("", &gid), -1);
}

/* The state every drop to an ordinary user must leave behind. */
static void check_dropped(struct child_ctx *c)
{
    CHILD_CHECK(c, ids_are(c->uid, c->gid));
    CHILD_CHECK(c, prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1);
    CHILD_CHECK(c, prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0) == 0);
    CHILD_CHECK(c, ambient_empty());
    errno = 0;
    CHILD_CHECK(c, setuid(0) == -1 && errno == EPERM);
    CHILD_CHECK(c, seteuid(0) == -1);
    CHILD_CHECK(c, ids_are(c->uid, c->gid));
}

static void child_drop_to_nobody(struct child_ctx *c)
{
    CHILD_CHECK(c, privilege_drop("nobody", NULL, NULL, 0) == 0);
    check_dropped(c);
    CHILD_CHECK(c, getuid() == c->uid && geteuid() == c->uid);
    CHILD_CHECK(c, getgid() == c->gid && getegid() == c->gid);
    CHILD_CHECK(c, groups_are(c->gid));
    CHILD_CHECK(c, caps_empty());
    CHILD_CHECK(c, bound_is(NULL, 0));
#ifdef POSTINO_SANITIZE
    CHILD_CHECK(c, prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 1);
#endif
    if (c->gid != 0)
        CHILD_CHECK(c, setgid(0) == -1);
    /* Root's files are now out of reach. */
    CHILD_CHECK(c, open("/etc/shadow", O_RDONLY | O_CLOEXEC) == -1);
}

static void test_root_drop_to_nobody(void **state)
{
    (void)state;
    skip_unless_root();
    struct child_ctx c;
    nobody_ids(&c);
    run_in_child(child_drop_to_nobody, &c);
}

static const cap_value_t keep_ids[] = { CAP_SETUID, CAP_SETGID };

static void child_keep_caps(struct child_ctx *c)
{
    CHILD_CHECK(c, privilege_drop("nobody", NULL, keep_ids, 2) == 0);
    CHILD_CHECK(c, ids_are(c->uid, c->gid));
    CHILD_CHECK(c, groups_are(c->gid));
    CHILD_CHECK(c, cap_set_is(CAP_PERMITTED, keep_ids, 2));
    CHILD_CHECK(c, cap_set_is(CAP_EFFECTIVE, keep_ids, 2));
    CHILD_CHECK(c, cap_set_is(CAP_INHERITABLE, NULL, 0));
    CHILD_CHECK(c, bound_is(keep_ids, 2));
    CHILD_CHECK(c, ambient_empty());
    CHILD_CHECK(c, prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1);
    CHILD_CHECK(c, prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0) == 0);
    /* What the two are kept for: changing groups still works. */
    CHILD_CHECK(c, setgroups(1, &c->gid) == 0);
}

static void test_root_keep_setuid_setgid(void **state)
{
    (void)state;
    skip_unless_root();
    struct child_ctx c;
    nobody_ids(&c);
    run_in_child(child_keep_caps, &c);
}

static void child_chroot(struct child_ctx *c)
{
    CHILD_CHECK(c, privilege_drop("nobody", c->dir, NULL, 0) == 0);
    check_dropped(c);
    struct stat root;
    CHILD_CHECK(c, stat("/", &root) == 0);
    CHILD_CHECK(c, same_file(&root, &c->dir_st));
    struct stat cwd;
    CHILD_CHECK(c, stat(".", &cwd) == 0);
    CHILD_CHECK(c, same_file(&cwd, &c->dir_st));
    CHILD_CHECK(c, access("/marker", F_OK) == 0);
    CHILD_CHECK(c, caps_empty());
    /* LeakSanitizer cannot read /proc/self/maps in here. */
    _exit(0);
}

/* A directory under $TMPDIR or /tmp, with a file "marker" in it. */
static void make_chroot_dir(struct buf *dir, struct buf *marker)
{
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || tmp[0] == '\0')
        tmp = "/tmp";
    assert_int_equal(buf_printf(dir, "%s/test_privilege.XXXXXX", tmp), 0);
    assert_non_null(mkdtemp(dir->data));
    assert_int_equal(chmod(buf_cstr(dir), 0755), 0);
    assert_int_equal(buf_printf(marker, "%s/marker", buf_cstr(dir)), 0);
    int fd = open(buf_cstr(marker), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                  0644);
    assert_true(fd >= 0);
    assert_int_equal(close(fd), 0);
}

static void test_root_chroot(void **state)
{
    (void)state;
    skip_unless_root();
    struct child_ctx c;
    nobody_ids(&c);
    struct buf dir, marker;
    buf_init(&dir, PATH_MAX);
    buf_init(&marker, PATH_MAX);
    make_chroot_dir(&dir, &marker);
    c.dir = buf_cstr(&dir);
    assert_int_equal(stat(c.dir, &c.dir_st), 0);
    run_in_child(child_chroot, &c);
    assert_int_equal(unlink(buf_cstr(&marker)), 0);
    assert_int_equal(rmdir(buf_cstr(&dir)), 0);
    buf_free(&dir);
    buf_free(&marker);
}

/* Nothing at all is changed when the user is unknown. */
static void child_unknown_user(struct child_ctx *c)
{
    CHILD_CHECK(c, privilege_drop("postino-no-such-user", NULL, NULL, 0) ==
                       -1);
    CHILD_CHECK(c, ids_are(0, 0));
    CHILD_CHECK(c, !caps_empty());
    CHILD_CHECK(c, cap_get_bound(CAP_SETUID) == 1);
    CHILD_CHECK(c, prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 0);
    CHILD_CHECK(c, privilege_drop(NULL, NULL, NULL, 0) == -1);
    CHILD_CHECK(c, privilege_drop("", NULL, NULL, 0) == -1);
    CHILD_CHECK(c, ids_are(0, 0));
}

static void test_root_unknown_user(void **state)
{
    (void)state;
    skip_unless_root();
    struct child_ctx c;
    memset(&c, 0, sizeof(c));
    run_in_child(child_unknown_user, &c);
}

/* "root" as the user: still uid 0, but without a single capability. */
static void child_target_root(struct child_ctx *c)
{
    CHILD_CHECK(c, privilege_drop("root", NULL, NULL, 0) == 0);
    CHILD_CHECK(c, ids_are(0, 0));
    CHILD_CHECK(c, groups_are(0));
    CHILD_CHECK(c, caps_empty());
    CHILD_CHECK(c, bound_is(NULL, 0));
    CHILD_CHECK(c, ambient_empty());
    CHILD_CHECK(c, prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1);
    /* Without CAP_SETUID, uid 0 cannot become anyone else. */
    CHILD_CHECK(c, setuid(1) == -1 && errno == EPERM);
}

static void test_root_target_root(void **state)
{
    (void)state;
    skip_unless_root();
    struct child_ctx c;
    memset(&c, 0, sizeof(c));
    run_in_child(child_target_root, &c);
}

/* As root, become the ordinary user first, as a daemon started by an
 * unprivileged master is. */
static void child_become_user(struct child_ctx *c)
{
    if (!privilege_is_root()) {
        c->uid = getuid();
        c->gid = getgid();
        return;
    }
    CHILD_CHECK(c, setgroups(1, &c->gid) == 0);
    CHILD_CHECK(c, setresgid(c->gid, c->gid, c->gid) == 0);
    CHILD_CHECK(c, setresuid(c->uid, c->uid, c->uid) == 0);
    CHILD_CHECK(c, !privilege_is_root());
}

static void child_unprivileged(struct child_ctx *c)
{
    child_become_user(c);
    /* A user switch and a chroot are asked for; both are skipped. */
    CHILD_CHECK(c, privilege_drop("root", c->dir, NULL, 0) == 0);
    CHILD_CHECK(c, ids_are(c->uid, c->gid));
    struct stat root;
    CHILD_CHECK(c, stat("/", &root) == 0);
    CHILD_CHECK(c, same_file(&root, &c->root_st));
    CHILD_CHECK(c, caps_empty());
    CHILD_CHECK(c, ambient_empty());
    CHILD_CHECK(c, prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1);
    if (c->uid != 0)
        CHILD_CHECK(c, setuid(0) == -1);
    /* Not root, an unknown user is not even looked up; calling again is
     * harmless. */
    CHILD_CHECK(c, privilege_drop("postino-no-such-user", NULL, NULL, 0) ==
                       0);
    CHILD_CHECK(c, prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1);
}

static void test_unprivileged(void **state)
{
    (void)state;
    struct child_ctx c;
    nobody_ids(&c);
    if (c.uid == 0)
        skip();
    struct buf dir, marker;
    buf_init(&dir, PATH_MAX);
    buf_init(&marker, PATH_MAX);
    make_chroot_dir(&dir, &marker);
    c.dir = buf_cstr(&dir);
    assert_int_equal(stat("/", &c.root_st), 0);
    run_in_child(child_unprivileged, &c);
    assert_int_equal(unlink(buf_cstr(&marker)), 0);
    assert_int_equal(rmdir(buf_cstr(&dir)), 0);
    buf_free(&dir);
    buf_free(&marker);
}

/* An ordinary user that holds capabilities (file or ambient ones) keeps
 * only those asked for; with CAP_SETPCAP it also cuts the bounding set. */
static const cap_value_t held[] = { CAP_NET_BIND_SERVICE, CAP_SETPCAP,
                                    CAP_CHOWN };
static const cap_value_t keep_bind[] = { CAP_NET_BIND_SERVICE };

static void child_user_with_caps(struct child_ctx *c)
{
    CHILD_CHECK(c, prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) == 0);
    child_become_user(c);
    CHILD_CHECK(c, prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) == 0);
    cap_t caps = cap_init();
    CHILD_CHECK(c, caps != NULL);
    CHILD_CHECK(c, cap_set_flag(caps, CAP_PERMITTED, 3, held, CAP_SET) == 0);
    CHILD_CHECK(c, cap_set_flag(caps, CAP_EFFECTIVE, 3, held, CAP_SET) == 0);
    CHILD_CHECK(c, cap_set_flag(caps, CAP_INHERITABLE, 1, keep_bind,
                                CAP_SET) == 0);
    CHILD_CHECK(c, cap_set_proc(caps) == 0);
    CHILD_CHECK(c, cap_free(caps) == 0);
    CHILD_CHECK(c, cap_set_is(CAP_EFFECTIVE, held, 3));
    CHILD_CHECK(c, cap_set_ambient(CAP_NET_BIND_SERVICE, CAP_SET) == 0);
    CHILD_CHECK(c, cap_get_ambient(CAP_NET_BIND_SERVICE) == 1);

    CHILD_CHECK(c, privilege_drop("nobody", NULL, keep_bind, 1) == 0);
    CHILD_CHECK(c, ids_are(c->uid, c->gid));
    CHILD_CHECK(c, cap_set_is(CAP_PERMITTED, keep_bind, 1));
    CHILD_CHECK(c, cap_set_is(CAP_EFFECTIVE, keep_bind, 1));
    CHILD_CHECK(c, cap_set_is(CAP_INHERITABLE, NULL, 0));
    CHILD_CHECK(c, bound_is(keep_bind, 1));
    CHILD_CHECK(c, ambient_empty());
    CHILD_CHECK(c, prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1);
}

static void test_user_with_capabilities(void **state)
{
    (void)state;
    skip_unless_root(); /* only root can hand out the capabilities */
    struct child_ctx c;
    nobody_ids(&c);
    run_in_child(child_user_with_caps, &c);
}

static void child_bad_arguments(struct child_ctx *c)
{
    CHILD_CHECK(c, privilege_drop("nobody", NULL, NULL, 1) == -1);
    CHILD_CHECK(c, prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 0);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    struct child_ctx c;
    memset(&c, 0, sizeof(c));
    run_in_child(child_bad_arguments, &c);
}

int main(void)
{
    log_init("test", 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_is_root),
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_root_drop_to_nobody),
        cmocka_unit_test(test_root_keep_setuid_setgid),
        cmocka_unit_test(test_root_chroot),
        cmocka_unit_test(test_root_unknown_user),
        cmocka_unit_test(test_root_target_root),
        cmocka_unit_test(test_unprivileged),
        cmocka_unit_test(test_user_with_capabilities),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
