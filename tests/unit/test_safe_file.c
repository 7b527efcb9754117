/*
 * test_safe_file - unit tests for lib/safe_file (crash-safe file writes).
 *
 * Each test works in its own directory made with mkdtemp() under $TMPDIR
 * (or /tmp) and removes it afterwards.  Covered: temp + commit gives the
 * final file with its content and mode and leaves no temporary file; a
 * commit over an existing file replaces it atomically (a reader of the old
 * file keeps the old content); failures remove the temporary file and keep
 * errno; write_atomic; read_all and its limit; ensure_dir.  As root, a
 * 64 KiB tmpfs shows ENOSPC reaching the caller (skipped otherwise).
 *
 * Run: build/<cc>/tests/test_safe_file, as root or as any user.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "safe_file.h"

struct fixture {
    struct buf dir;  /* the test's own directory */
    struct buf path; /* scratch for paths inside it */
};

static int make_test_dir(struct buf *dir)
{
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || tmp[0] == '\0')
        tmp = "/tmp";
    if (buf_printf(dir, "%s/test_safe_file.XXXXXX", tmp) != 0)
        return -1;
    return mkdtemp(dir->data) == NULL ? -1 : 0;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    buf_init(&f->dir, PATH_MAX);
    buf_init(&f->path, PATH_MAX);
    if (make_test_dir(&f->dir) != 0) {
        buf_free(&f->dir);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type,
                        struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    int rc = nftw(buf_cstr(&f->dir), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    buf_free(&f->dir);
    buf_free(&f->path);
    free(f);
    return rc == 0 ? 0 : -1;
}

/* "<test dir>/name", in f->path. */
static const char *in_dir(struct fixture *f, const char *name)
{
    buf_reset(&f->path);
    assert_int_equal(buf_printf(&f->path, "%s/%s", buf_cstr(&f->dir), name),
                     0);
    return buf_cstr(&f->path);
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    assert_int_equal(closedir(d), 0);
    return n;
}

static void assert_file(const char *path, const char *content, mode_t mode)
{
    struct buf got;
    buf_init(&got, 1 << 20);
    assert_int_equal(safe_file_read_all(path, &got), 0);
    assert_int_equal(got.len, strlen(content));
    assert_memory_equal(buf_cstr(&got), content, got.len);
    buf_free(&got);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, mode);
}

static void write_plain(const char *path, const char *content)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(safe_file_write_all(fd, content, strlen(content)), 0);
    assert_int_equal(close(fd), 0);
}

static void test_temp_and_commit(void **state)
{
    struct fixture *f = *state;
    static const mode_t modes[] = { 0600, 0640, 0644, 0700 };
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        struct buf temp;
        buf_init(&temp, PATH_MAX);
        int fd = safe_file_create_temp(buf_cstr(&f->dir), "tmp.", modes[i],
                                       &temp);
        assert_true(fd >= 0);
        /* Named in dir, with the prefix, close-on-exec. */
        size_t dir_len = f->dir.len;
        assert_memory_equal(buf_cstr(&temp), buf_cstr(&f->dir), dir_len);
        assert_memory_equal(buf_cstr(&temp) + dir_len, "/tmp.", 5);
        assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        assert_int_equal(safe_file_write_all(fd, "queue file\n", 11), 0);
        const char *final = in_dir(f, "4F2A9C");
        assert_int_equal(safe_file_commit(fd, buf_cstr(&temp), final), 0);
        assert_file(final, "queue file\n", modes[i]);
        assert_int_equal(access(buf_cstr(&temp), F_OK), -1);
        assert_int_equal(count_entries(buf_cstr(&f->dir)), 1);
        assert_int_equal(unlink(final), 0);
        buf_free(&temp);
    }
}

/* The mode asked for, not what the umask leaves of it. */
static void test_temp_mode_ignores_umask(void **state)
{
    struct fixture *f = *state;
    mode_t old = umask(077);
    struct buf temp;
    buf_init(&temp, PATH_MAX);
    int fd = safe_file_create_temp(buf_cstr(&f->dir), "t", 0644, &temp);
    umask(old);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_int_equal(close(fd), 0);
    buf_free(&temp);
}

static void test_temp_names_unique(void **state)
{
    struct fixture *f = *state;
    enum { N = 200 };
    struct buf temp;
    buf_init(&temp, PATH_MAX);
    for (int i = 0; i < N; i++) {
        int fd = safe_file_create_temp(buf_cstr(&f->dir), "u.", 0600, &temp);
        assert_true(fd >= 0);
        assert_int_equal(close(fd), 0);
    }
    assert_int_equal(count_entries(buf_cstr(&f->dir)), N);
    buf_free(&temp);
}

static void test_temp_failures(void **state)
{
    struct fixture *f = *state;
    struct buf temp;
    buf_init(&temp, PATH_MAX);
    errno = 0;
    assert_int_equal(safe_file_create_temp(in_dir(f, "missing"), "t.", 0600,
                                           &temp), -1);
    assert_int_equal(errno, ENOENT);
    buf_free(&temp);

    buf_init(&temp, 10); /* too small for the name */
    errno = 0;
    assert_int_equal(safe_file_create_temp(buf_cstr(&f->dir), "t.", 0600,
                                           &temp), -1);
    assert_int_equal(errno, EMSGSIZE);
    buf_free(&temp);
    assert_int_equal(count_entries(buf_cstr(&f->dir)), 0);
}

static void test_commit_replaces(void **state)
{
    struct fixture *f = *state;
    struct buf final;
    buf_init(&final, PATH_MAX);
    assert_int_equal(buf_set_str(&final, in_dir(f, "state")), 0);
    write_plain(buf_cstr(&final), "old content");
    struct stat before;
    assert_int_equal(stat(buf_cstr(&final), &before), 0);
    int reader = open(buf_cstr(&final), O_RDONLY | O_CLOEXEC);
    assert_true(reader >= 0);

    struct buf temp;
    buf_init(&temp, PATH_MAX);
    int fd = safe_file_create_temp(buf_cstr(&f->dir), "tmp.", 0600, &temp);
    assert_true(fd >= 0);
    assert_int_equal(safe_file_write_all(fd, "new", 3), 0);
    /* Until the commit, the old file is untouched. */
    assert_file(buf_cstr(&final), "old content", 0644);
    assert_int_equal(safe_file_commit(fd, buf_cstr(&temp), buf_cstr(&final)),
                     0);
    assert_file(buf_cstr(&final), "new", 0600);
    assert_int_equal(count_entries(buf_cstr(&f->dir)), 1);

    /* A new inode took the name: the old file was never rewritten. */
    struct stat after;
    assert_int_equal(stat(buf_cstr(&final), &after), 0);
    assert_true(after.st_ino != before.st_ino);
    char old[32];
    ssize_t n = pread(reader, old, sizeof(old), 0);
    assert_int_equal(n, 11);
    assert_memory_equal(old, "old content", 11);
    assert_int_equal(close(reader), 0);
    buf_free(&temp);
    buf_free(&final);
}

static void test_commit_failures(void **state)
{
    struct fixture *f = *state;
    struct buf temp;
    buf_init(&temp, PATH_MAX);

    /* rename into a directory that does not exist */
    int fd = safe_file_create_temp(buf_cstr(&f->dir), "tmp.", 0600, &temp);
    assert_true(fd >= 0);
    assert_int_equal(safe_file_write_all(fd, "data", 4), 0);
    errno = 0;
    assert_int_equal(safe_file_commit(fd, buf_cstr(&temp),
                                      in_dir(f, "missing/final")), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(access(buf_cstr(&temp), F_OK), -1);
    assert_int_equal(fcntl(fd, F_GETFD), -1); /* fd closed all the same */
    assert_int_equal(count_entries(buf_cstr(&f->dir)), 0);

    /* fsync of a descriptor that is not open */
    fd = safe_file_create_temp(buf_cstr(&f->dir), "tmp.", 0600, &temp);
    assert_true(fd >= 0);
    assert_int_equal(close(fd), 0);
    errno = 0;
    assert_int_equal(safe_file_commit(fd, buf_cstr(&temp), in_dir(f, "x")),
                     -1);
    assert_int_equal(errno, EBADF);
    assert_int_equal(count_entries(buf_cstr(&f->dir)), 0);

    /* rename over a directory */
    assert_int_equal(mkdir(in_dir(f, "adir"), 0700), 0);
    fd = safe_file_create_temp(buf_cstr(&f->dir), "tmp.", 0600, &temp);
    assert_true(fd >= 0);
    errno = 0;
    assert_int_equal(safe_file_commit(fd, buf_cstr(&temp), in_dir(f, "adir")),
                     -1);
    assert_int_equal(errno, EISDIR);
    assert_int_equal(count_entries(buf_cstr(&f->dir)), 1);
    buf_free(&temp);
}

static void test_write_atomic(void **state)
{
    struct fixture *f = *state;
    struct buf path;
    buf_init(&path, PATH_MAX);
    assert_int_equal(buf_set_str(&path, in_dir(f, "data")), 0);
    assert_int_equal(safe_file_write_atomic(buf_cstr(&path), "one", 3, 0644),
                     0);
    assert_file(buf_cstr(&path), "one", 0644);
    assert_int_equal(safe_file_write_atomic(buf_cstr(&path), "two!", 4, 0600),
                     0);
    assert_file(buf_cstr(&path), "two!", 0600);
    assert_int_equal(safe_file_write_atomic(buf_cstr(&path), "", 0, 0640), 0);
    assert_file(buf_cstr(&path), "", 0640);
    assert_int_equal(count_entries(buf_cstr(&f->dir)), 1);

    /* Embedded NUL bytes and more than one write() worth. */
    enum { BIG = 300000 };
    char *big = malloc(BIG);
    assert_non_null(big);
    for (size_t i = 0; i < BIG; i++)
        big[i] = (char)(i % 251);
    assert_int_equal(safe_file_write_atomic(buf_cstr(&path), big, BIG, 0600),
                     0);
    struct buf got;
    buf_init(&got, BIG);
    assert_int_equal(safe_file_read_all(buf_cstr(&path), &got), 0);
    assert_int_equal(got.len, BIG);
    assert_memory_equal(got.data, big, BIG);
    buf_free(&got);
    free(big);

    errno = 0;
    assert_int_equal(safe_file_write_atomic(in_dir(f, "missing/data"), "x",
                                            1, 0644), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(count_entries(buf_cstr(&f->dir)), 1);
    buf_free(&path);
}

/* A name without a directory part goes to the current directory. */
static void test_write_atomic_relative(void **state)
{
    struct fixture *f = *state;
    int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(cwd >= 0);
    assert_int_equal(chdir(buf_cstr(&f->dir)), 0);
    int rc = safe_file_write_atomic("plain", "text", 4, 0644);
    int rc2 = safe_file_fsync_parent("plain");
    assert_int_equal(fchdir(cwd), 0);
    assert_int_equal(close(cwd), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(rc2, 0);
    assert_file(in_dir(f, "plain"), "text", 0644);
}

struct read_case {
    size_t file_size;
    size_t prefix; /* already in the buffer */
    size_t limit;
    int rc;
};

static const struct read_case read_cases[] = {
    { 0, 0, 0, 0 },        { 0, 0, 10, 0 },        { 10, 0, 10, 0 },
    { 10, 0, 11, 0 },      { 10, 0, 9, -1 },       { 10, 5, 15, 0 },
    { 10, 5, 14, -1 },     { 8192, 0, 8192, 0 },   { 8193, 0, 8192, -1 },
    { 100000, 0, 100000, 0 }, { 100000, 0, 99999, -1 },
    { 100000, 10, 100009, -1 },
};

static void check_read_case(struct fixture *f, const struct read_case *c,
                            const char *data)
{
    const char *path = in_dir(f, "read");
    assert_int_equal(safe_file_write_atomic(path, data, c->file_size, 0600),
                     0);
    struct buf out;
    buf_init(&out, c->limit);
    assert_int_equal(buf_append(&out, "0123456789", c->prefix), 0);
    errno = 0;
    int rc = safe_file_read_all(path, &out);
    assert_int_equal(rc, c->rc);
    if (rc == 0) {
        assert_int_equal(out.len, c->prefix + c->file_size);
        if (c->file_size > 0)
            assert_memory_equal(out.data + c->prefix, data, c->file_size);
    } else {
        assert_int_equal(errno, EMSGSIZE);
        assert_int_equal(out.len, c->prefix); /* appended nothing */
    }
    if (c->prefix > 0)
        assert_memory_equal(out.data, "0123456789", c->prefix);
    assert_int_equal(buf_cstr(&out)[out.len], '\0');
    buf_free(&out);
}

static void test_read_all(void **state)
{
    struct fixture *f = *state;
    char *data = malloc(100000);
    assert_non_null(data);
    for (size_t i = 0; i < 100000; i++)
        data[i] = (char)(i * 7);
    for (size_t i = 0; i < sizeof(read_cases) / sizeof(read_cases[0]); i++)
        check_read_case(f, &read_cases[i], data);
    free(data);

    struct buf out;
    buf_init(&out, 100);
    errno = 0;
    assert_int_equal(safe_file_read_all(in_dir(f, "missing"), &out), -1);
    assert_int_equal(errno, ENOENT);
    errno = 0;
    assert_int_equal(safe_file_read_all(buf_cstr(&f->dir), &out), -1);
    assert_int_equal(errno, EISDIR);
    assert_int_equal(out.len, 0);
    buf_free(&out);
}

static void test_write_all(void **state)
{
    (void)state;
    assert_int_equal(safe_file_write_all(-1, "", 0), 0);
    errno = 0;
    assert_int_equal(safe_file_write_all(-1, "x", 1), -1);
    assert_int_equal(errno, EBADF);
}

static void test_fsync_dir(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(safe_file_fsync_dir(buf_cstr(&f->dir)), 0);
    assert_int_equal(safe_file_fsync_parent(in_dir(f, "anything")), 0);
    assert_int_equal(safe_file_fsync_parent(in_dir(f, "sub/")), 0);
    assert_int_equal(safe_file_fsync_parent("/"), 0);
    errno = 0;
    assert_int_equal(safe_file_fsync_dir(in_dir(f, "missing")), -1);
    assert_int_equal(errno, ENOENT);
    errno = 0;
    assert_int_equal(safe_file_fsync_parent(in_dir(f, "missing/file")), -1);
    assert_int_equal(errno, ENOENT);
    write_plain(in_dir(f, "file"), "x");
    errno = 0;
    assert_int_equal(safe_file_fsync_dir(in_dir(f, "file")), -1);
    assert_int_equal(errno, ENOTDIR);
}

static void assert_dir(const char *path, mode_t mode)
{
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, mode);
}

static void test_ensure_dir(void **state)
{
    struct fixture *f = *state;
    struct buf dir;
    buf_init(&dir, PATH_MAX);
    assert_int_equal(buf_set_str(&dir, in_dir(f, "queue")), 0);
    mode_t old = umask(022);
    int created = safe_file_ensure_dir(buf_cstr(&dir), 0770, (uid_t)-1,
                                       (gid_t)-1);
    umask(old);
    assert_int_equal(created, 0);
    assert_dir(buf_cstr(&dir), 0770); /* not 0750: the umask is overridden */

    /* Existing: accepted, and given the mode asked for. */
    assert_int_equal(safe_file_ensure_dir(buf_cstr(&dir), 0770, (uid_t)-1,
                                          (gid_t)-1), 0);
    assert_dir(buf_cstr(&dir), 0770);
    assert_int_equal(safe_file_ensure_dir(buf_cstr(&dir), 0700, (uid_t)-1,
                                          (gid_t)-1), 0);
    assert_dir(buf_cstr(&dir), 0700);

    /* Our own ids are always allowed. */
    assert_int_equal(safe_file_ensure_dir(buf_cstr(&dir), 0700, getuid(),
                                          getgid()), 0);

    write_plain(in_dir(f, "regular"), "x");
    errno = 0;
    assert_int_equal(safe_file_ensure_dir(in_dir(f, "regular"), 0700,
                                          (uid_t)-1, (gid_t)-1), -1);
    assert_int_equal(errno, ENOTDIR);
    errno = 0;
    assert_int_equal(safe_file_ensure_dir(in_dir(f, "no/parent"), 0700,
                                          (uid_t)-1, (gid_t)-1), -1);
    assert_int_equal(errno, ENOENT);
    buf_free(&dir);
}

/* As root the owner is set; as anyone else a give-away is skipped. */
static void test_ensure_dir_owner(void **state)
{
    struct fixture *f = *state;
    struct passwd *pw = getpwnam("nobody");
    if (pw == NULL)
        skip();
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
    const char *dir = in_dir(f, "owned");
    assert_int_equal(safe_file_ensure_dir(dir, 0750, uid, gid), 0);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    if (geteuid() == 0) {
        assert_int_equal(st.st_uid, uid);
        assert_int_equal(st.st_gid, gid);
    } else {
        assert_int_equal(st.st_uid, geteuid());
    }
    assert_int_equal(st.st_mode & 07777, 0750);
}

/* ENOSPC from a full file system reaches the caller, and no temporary
 * file is left behind to fill it further.  Root only: it mounts a tmpfs. */
static void test_enospc(void **state)
{
    struct fixture *f = *state;
    if (geteuid() != 0)
        skip();
    struct buf mnt;
    buf_init(&mnt, PATH_MAX);
    assert_int_equal(buf_set_str(&mnt, in_dir(f, "small")), 0);
    assert_int_equal(mkdir(buf_cstr(&mnt), 0700), 0);
    if (mount("postino-test", buf_cstr(&mnt), "tmpfs", 0, "size=64k") != 0) {
        buf_free(&mnt);
        skip(); /* no CAP_SYS_ADMIN here (a container) */
    }
    enum { BIG = 256 * 1024 };
    char *big = calloc(1, BIG);
    assert_non_null(big);
    struct buf file;
    buf_init(&file, PATH_MAX);
    assert_int_equal(buf_printf(&file, "%s/data", buf_cstr(&mnt)), 0);

    errno = 0;
    int rc = safe_file_write_atomic(buf_cstr(&file), big, BIG, 0600);
    int err = errno;
    size_t left = count_entries(buf_cstr(&mnt));

    /* Through the steps one by one, as the queue does. */
    struct buf temp;
    buf_init(&temp, PATH_MAX);
    int fd = safe_file_create_temp(buf_cstr(&mnt), "tmp.", 0600, &temp);
    int write_rc = fd >= 0 ? safe_file_write_all(fd, big, BIG) : 0;
    int write_err = errno;
    if (fd >= 0)
        (void)close(fd);
    (void)unlink(buf_cstr(&temp));

    int umount_rc = umount(buf_cstr(&mnt));
    free(big);
    buf_free(&temp);
    buf_free(&file);
    buf_free(&mnt);
    assert_int_equal(umount_rc, 0);
    assert_int_equal(rc, -1);
    assert_int_equal(err, ENOSPC);
    assert_int_equal(left, 0);
    assert_true(fd >= 0);
    assert_int_equal(write_rc, -1);
    assert_int_equal(write_err, ENOSPC);
}

/* An unnamed file gets its name, relative to a directory descriptor or
 * to the working directory, with what was written; a taken name stays
 * the other file's (EEXIST). */
static void test_link_unnamed(void **state)
{
    struct fixture *f = *state;
    int dir_fd = open(buf_cstr(&f->dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(dir_fd >= 0);
    int fd = openat(dir_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) {
        assert_int_equal(close(dir_fd), 0);
        skip(); /* a file system without unnamed files */
    }
    assert_int_equal(safe_file_write_all(fd, "one", 3), 0);
    assert_int_equal(safe_file_link_unnamed(fd, dir_fd, "first"), 0);
    assert_file(in_dir(f, "first"), "one", 0600);

    write_plain(in_dir(f, "taken"), "other");
    errno = 0;
    assert_int_equal(safe_file_link_unnamed(fd, dir_fd, "taken"), -1);
    assert_int_equal(errno, EEXIST);
    assert_file(in_dir(f, "taken"), "other", 0644);

    assert_int_equal(safe_file_link_unnamed(fd, AT_FDCWD,
                                            in_dir(f, "second")), 0);
    assert_file(in_dir(f, "second"), "one", 0600);
    assert_int_equal(close(fd), 0);
    assert_int_equal(close(dir_fd), 0);
    assert_int_equal(count_entries(buf_cstr(&f->dir)), 3);
}

/* What safe_file_fsync_covers_names says of a directory on dir. */
static int covers_names(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(fd >= 0);
    int covers = safe_file_fsync_covers_names(fd);
    assert_int_equal(close(fd), 0);
    return covers;
}

/* Makes an ext4 image (mkfs_options: with or without its journal) and
 * mounts it on mnt; 0, or -1 when this machine cannot (not root, no
 * mkfs.ext4, no loop devices). */
static int mount_ext4(const char *image, const char *mkfs_options,
                      const char *mnt)
{
    struct buf cmd;
    buf_init(&cmd, 4 * PATH_MAX);
    assert_int_equal(buf_printf(&cmd,
                                "truncate -s 32M '%s' && "
                                "mkfs.ext4 -q -F %s '%s' >/dev/null 2>&1 && "
                                "mount -o loop '%s' '%s' 2>/dev/null",
                                image, mkfs_options, image, image, mnt),
                     0);
    int rc = system(buf_cstr(&cmd));
    buf_free(&cmd);
    return rc == 0 ? 0 : -1;
}

/* The directory fsync after a linked file's fsync is left out only on
 * file systems whose file fsync covers the name: memory file systems do
 * not count; ext4 counts with its journal, not without. */
static void test_fsync_covers_names(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(covers_names("/proc"), 0);
    struct stat st;
    if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode))
        assert_int_equal(covers_names("/dev/shm"), 0);
    if (geteuid() != 0)
        skip();
    struct buf mnt, image;
    buf_init(&mnt, PATH_MAX);
    buf_init(&image, PATH_MAX);
    assert_int_equal(buf_set_str(&mnt, in_dir(f, "mnt")), 0);
    assert_int_equal(buf_set_str(&image, in_dir(f, "ext4.img")), 0);
    assert_int_equal(mkdir(buf_cstr(&mnt), 0700), 0);
    if (mount_ext4(buf_cstr(&image), "", buf_cstr(&mnt)) != 0) {
        buf_free(&mnt);
        buf_free(&image);
        skip();
    }
    int journaled = covers_names(buf_cstr(&mnt));
    assert_int_equal(umount(buf_cstr(&mnt)), 0);
    assert_int_equal(mount_ext4(buf_cstr(&image), "-O ^has_journal",
                                buf_cstr(&mnt)), 0);
    int plain = covers_names(buf_cstr(&mnt));
    assert_int_equal(umount(buf_cstr(&mnt)), 0);
    assert_int_equal(unlink(buf_cstr(&image)), 0);
    buf_free(&mnt);
    buf_free(&image);
    assert_int_equal(journaled, 1);
    assert_int_equal(plain, 0);
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    log_init("test", 0);
    const struct CMUnitTest tests[] = {
        TEST(test_temp_and_commit),
        TEST(test_temp_mode_ignores_umask),
        TEST(test_temp_names_unique),
        TEST(test_temp_failures),
        TEST(test_commit_replaces),
        TEST(test_commit_failures),
        TEST(test_write_atomic),
        TEST(test_write_atomic_relative),
        TEST(test_read_all),
        TEST(test_write_all),
        TEST(test_fsync_dir),
        TEST(test_ensure_dir),
        TEST(test_ensure_dir_owner),
        TEST(test_enospc),
        TEST(test_link_unnamed),
        TEST(test_fsync_covers_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
