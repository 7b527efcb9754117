/*
 * test_sync_group - unit tests for lib/sync_group (new files made durable
 * together).
 *
 * The files live in a fresh directory: under the working directory, on
 * tmpfs (/dev/shm, where it exists: every file's fsync and the
 * directory's), and, as root, on a journaled ext4 of the test's own,
 * loop-mounted (one fsync for the group; where that cannot be made, the
 * working directory again).  A failed commit is made
 * with a pipe among the files: neither fsync nor sync_file_range takes
 * one.
 *
 * Run: build/<cc>/tests/test_sync_group (no arguments, no privileges).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sync_group.h"

struct scratch {
    char path[96];
    int dir;
    char mount[32];     /* a file system of the test's own, or "" */
};

static int scratch_setup_in(void **state, const char *where)
{
    struct scratch *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    if (snprintf(s->path, sizeof(s->path), "%ssync_group.XXXXXX", where) >=
        (int)sizeof(s->path))
        return -1;
    assert_non_null(mkdtemp(s->path));
    s->dir = open(s->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(s->dir >= 0);
    *state = s;
    return 0;
}

/* Under the working directory (ext4 or XFS in most places: one fsync). */
static int scratch_setup(void **state)
{
    return scratch_setup_in(state, "");
}

/* On tmpfs where there is one: every file's fsync and the directory's. */
static int scratch_setup_tmpfs(void **state)
{
    struct stat st;
    int shm = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
              access("/dev/shm", W_OK) == 0;
    return scratch_setup_in(state, shm ? "/dev/shm/" : "");
}

/* A journaled ext4 of its own, loop-mounted (as root, where mkfs.ext4
 * and a loop device are there; else the test is skipped), so that the
 * group takes its one-fsync way.  The image and mount point are under
 * the working directory. */
static int scratch_setup_journaled(void **state)
{
    if (geteuid() != 0 || access("/sbin/mkfs.ext4", X_OK) != 0)
        return scratch_setup_in(state, "");
    char mnt[] = "sync_group_fs.XXXXXX";
    if (mkdtemp(mnt) == NULL)
        return -1;
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "truncate -s 16M %s.img && "
             "mkfs.ext4 -q -F %s.img >/dev/null 2>&1 && "
             "mount -o loop %s.img %s 2>/dev/null", mnt, mnt, mnt, mnt);
    if (system(cmd) != 0) {
        snprintf(cmd, sizeof(cmd), "rm -f %s.img; rmdir %s", mnt, mnt);
        (void)system(cmd);
        return scratch_setup_in(state, "");
    }
    char where[64];
    snprintf(where, sizeof(where), "%s/", mnt);
    int rc = scratch_setup_in(state, where);
    struct scratch *s = *state;
    snprintf(s->mount, sizeof(s->mount), "%s", mnt);
    return rc;
}

static int scratch_teardown(void **state)
{
    struct scratch *s = *state;
    char name[16];
    for (int i = 0; i < 8; i++) {
        snprintf(name, sizeof(name), "m%d", i);
        (void)unlinkat(s->dir, name, 0);
    }
    close(s->dir);
    rmdir(s->path);
    if (s->mount[0] != '\0') {
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "umount %s && rm -f %s.img && rmdir %s",
                 s->mount, s->mount, s->mount);
        assert_int_equal(system(cmd), 0);
    }
    free(s);
    return 0;
}

static const struct sync_group_owner owner = {
    .name = "joe", .uid = 1001, .gid = 1002, .extra_gid = (gid_t)-1,
};

/* A file m<i> in the scratch directory holding "message <i>\n". */
static int write_message(struct scratch *s, int i)
{
    char name[16], text[32];
    snprintf(name, sizeof(name), "m%d", i);
    int len = snprintf(text, sizeof(text), "message %d\n", i);
    int fd = openat(s->dir, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                    0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, (size_t)len), len);
    return fd;
}

static void assert_message(struct scratch *s, int i)
{
    char name[16], text[32], want[32];
    snprintf(name, sizeof(name), "m%d", i);
    int len = snprintf(want, sizeof(want), "message %d\n", i);
    int fd = openat(s->dir, name, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, text, sizeof(text)), len);
    assert_memory_equal(text, want, (size_t)len);
    close(fd);
}

static void test_empty_group_commits_nothing(void **state)
{
    (void)state;
    struct sync_group g;
    sync_group_init(&g);
    int err = -1;
    assert_int_equal(sync_group_commit(&g, &err), 0);
    assert_int_equal(err, 0);
    sync_group_free(&g);
}

static void test_commit_closes_every_file_and_keeps_them(void **state)
{
    struct scratch *s = *state;
    struct sync_group g;
    sync_group_init(&g);
    int fds[5];
    for (int i = 0; i < 5; i++) {
        fds[i] = write_message(s, i);
        char name[16];
        snprintf(name, sizeof(name), "m%d", i);
        assert_int_equal(sync_group_add(&g, fds[i], s->dir, name, &owner), 0);
    }
    assert_int_equal(g.count, 5);
    int err = -1;
    assert_int_equal(sync_group_commit(&g, &err), 0);
    assert_int_equal(err, 0);
    for (int i = 0; i < 5; i++) {
        errno = 0;
        assert_int_equal(fcntl(fds[i], F_GETFD), -1);
        assert_int_equal(errno, EBADF);
        assert_message(s, i);
    }
    sync_group_clear(&g);
    assert_int_equal(g.count, 0);
    /* The group takes files again after a clear. */
    int fd = write_message(s, 5);
    assert_int_equal(sync_group_add(&g, fd, s->dir, "m5", &owner), 0);
    assert_int_equal(sync_group_commit(&g, &err), 0);
    assert_message(s, 5);
    sync_group_free(&g);
}

struct undone {
    char names[8][16];
    int count;
};

static void record_undo(void *ctx, const struct sync_group_file *f)
{
    struct undone *u = ctx;
    assert_true(u->count < 8);
    assert_string_equal(f->owner.name, "joe");
    assert_true(f->owner.name != owner.name);
    assert_int_equal(f->owner.uid, 1001);
    assert_int_equal(f->owner.gid, 1002);
    assert_int_equal(f->owner.extra_gid, (gid_t)-1);
    snprintf(u->names[u->count++], sizeof(u->names[0]), "%s", f->name);
    assert_int_equal(unlinkat(f->dir_fd, f->name, 0), 0);
}

static void test_failed_commit_undoes_every_file(void **state)
{
    struct scratch *s = *state;
    struct sync_group g;
    sync_group_init(&g);
    int fd0 = write_message(s, 0);
    assert_int_equal(sync_group_add(&g, fd0, s->dir, "m0", &owner), 0);
    close(write_message(s, 1));     /* m1's name, with a pipe for file */
    int pipe_fds[2];
    assert_int_equal(pipe(pipe_fds), 0);
    assert_int_equal(sync_group_add(&g, pipe_fds[1], s->dir, "m1", &owner),
                     0);
    int fd2 = write_message(s, 2);
    assert_int_equal(sync_group_add(&g, fd2, s->dir, "m2", &owner), 0);
    int err = 0;
    assert_int_equal(sync_group_commit(&g, &err), -1);
    assert_true(err == EINVAL || err == ESPIPE);
    /* The directory's descriptor is the group's own: the undo works
     * with the caller's closed. */
    int dir = s->dir;
    s->dir = -1;
    close(dir);
    struct undone u = { .count = 0 };
    sync_group_undo(&g, record_undo, &u);
    assert_int_equal(u.count, 3);
    assert_string_equal(u.names[0], "m0");
    assert_string_equal(u.names[1], "m1");
    assert_string_equal(u.names[2], "m2");
    sync_group_free(&g);
    close(pipe_fds[0]);
    s->dir = open(s->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(s->dir >= 0);
    struct stat st;
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof(name), "m%d", i);
        errno = 0;
        assert_int_equal(fstatat(s->dir, name, &st, 0), -1);
        assert_int_equal(errno, ENOENT);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_group_commits_nothing),
        cmocka_unit_test_setup_teardown(
            test_commit_closes_every_file_and_keeps_them, scratch_setup,
            scratch_teardown),
        cmocka_unit_test_setup_teardown(
            test_commit_closes_every_file_and_keeps_them,
            scratch_setup_tmpfs, scratch_teardown),
        cmocka_unit_test_setup_teardown(
            test_commit_closes_every_file_and_keeps_them,
            scratch_setup_journaled, scratch_teardown),
        cmocka_unit_test_setup_teardown(
            test_failed_commit_undoes_every_file, scratch_setup_journaled,
            scratch_teardown),
        cmocka_unit_test_setup_teardown(
            test_failed_commit_undoes_every_file, scratch_setup,
            scratch_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
