/*
 * test_maildir - unit tests for lib/maildir (durable Maildir delivery) and
 * the copy of lib/mailbox_output it uses.
 *
 * Each test works in its own directory under /tmp, removed afterwards.
 * Covered: a first delivery creates the Maildir with tmp/, new/, cur/
 * (0700) and leaves one file in new/ named SECONDS.M<usec>P<pid>Q<n>.HOST
 * with ",S=SIZE" equal to its size, holding the header lines then the
 * content; two deliveries get two names; a content split in many chunks
 * arrives whole, and one without a final line end gets one; '/' and ':'
 * in the host name are escaped; a symlinked Maildir or tmp/ is refused; a
 * Maildir of another uid is refused; a source that fails leaves nothing
 * in tmp/ or new/; as root, a full file system (a 64 KiB tmpfs) gives
 * 4.3.1 and leaves nothing behind either.
 *
 * Run: build/<cc>/tests/test_maildir, as root or as any user.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "delivery_source.h"
#include "maildir.h"
#include "safe_file.h"
#include "unit_dir.h"

struct fixture {
    char *dir;
    struct buf path;
    struct buf why;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->dir = unit_dir_make("test-maildir");
    buf_init(&f->path, PATH_MAX);
    buf_init(&f->why, 4096);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    int rc = unit_dir_remove_tree(f->dir);
    free(f->dir);
    buf_free(&f->path);
    buf_free(&f->why);
    free(f);
    return rc;
}

static const char *in_dir(struct fixture *f, const char *name)
{
    buf_reset(&f->path);
    assert_int_equal(buf_printf(&f->path, "%s/%s", f->dir, name), 0);
    return buf_cstr(&f->path);
}

/* The only entry of dir (asserted), in name. */
static size_t list_dir(const char *dir, struct buf *name)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        n++;
        if (name != NULL) {
            buf_reset(name);
            buf_append_str(name, e->d_name);
        }
    }
    closedir(d);
    return n;
}

static int deliver_text(struct fixture *f, const char *maildir,
                        const char *headers, const char *text,
                        struct buf *name, const char **dsn)
{
    struct delivery_source src;
    struct delivery_source_memory mem;
    delivery_source_from_memory(&src, &mem, text, strlen(text));
    struct maildir_request rq = {
        .path = maildir, .uid = geteuid(), .headers = headers,
        .hostname = "mx.example",
    };
    buf_reset(&f->why);
    return maildir_deliver(&rq, &src, name, dsn, &f->why);
}

static void assert_content(const char *path, const char *want)
{
    struct buf got;
    buf_init(&got, 1 << 20);
    assert_int_equal(safe_file_read_all(path, &got), 0);
    assert_int_equal(got.len, strlen(want));
    assert_memory_equal(got.data, want, got.len);
    buf_free(&got);
}

static void assert_mode(const char *path, mode_t mode)
{
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, mode);
}

static void test_first_delivery(void **state)
{
    struct fixture *f = *state;
    struct buf name, maildir;
    buf_init(&name, PATH_MAX);
    buf_init(&maildir, PATH_MAX);
    buf_append_str(&maildir, in_dir(f, "Maildir"));
    const char *dsn = NULL;
    const char *headers = "Return-Path: <a@example.org>\n"
                          "Delivered-To: joe@example\n";
    const char *text = "Subject: hi\n\nFrom here\nbody\n";
    assert_int_equal(deliver_text(f, buf_cstr(&maildir), headers, text, &name,
                                  &dsn), 0);
    assert_mode(buf_cstr(&maildir), 0700);
    const char *subs[] = { "tmp", "new", "cur" };
    for (size_t i = 0; i < 3; i++) {
        buf_reset(&f->path);
        buf_printf(&f->path, "%s/%s", buf_cstr(&maildir), subs[i]);
        assert_mode(buf_cstr(&f->path), 0700);
    }
    /* Only new/ holds something, and name tells where. */
    buf_reset(&f->path);
    buf_printf(&f->path, "%s/tmp", buf_cstr(&maildir));
    assert_int_equal(list_dir(buf_cstr(&f->path), NULL), 0);
    struct buf entry;
    buf_init(&entry, PATH_MAX);
    buf_reset(&f->path);
    buf_printf(&f->path, "%s/new", buf_cstr(&maildir));
    assert_int_equal(list_dir(buf_cstr(&f->path), &entry), 1);
    assert_true(strncmp(buf_cstr(&name), "new/", 4) == 0);
    assert_string_equal(buf_cstr(&name) + 4, buf_cstr(&entry));
    /* SECONDS.M<usec>P<pid>Q<n>.HOST,S=SIZE */
    long long seconds;
    long usec, pid;
    unsigned long q;
    char host[64];
    unsigned long long size;
    assert_int_equal(sscanf(buf_cstr(&entry), "%lld.M%ldP%ldQ%lu.%63[^,],S=%llu",
                            &seconds, &usec, &pid, &q, host, &size), 6);
    assert_int_equal(pid, (long)getpid());
    assert_string_equal(host, "mx.example");
    assert_int_equal(size, strlen(headers) + strlen(text));
    buf_reset(&f->path);
    buf_printf(&f->path, "%s/%s", buf_cstr(&maildir), buf_cstr(&name));
    struct buf want;
    buf_init(&want, 4096);
    buf_printf(&want, "%s%s", headers, text);
    assert_content(buf_cstr(&f->path), buf_cstr(&want));
    assert_mode(buf_cstr(&f->path), 0600);
    buf_free(&want);
    buf_free(&entry);
    buf_free(&name);
    buf_free(&maildir);
}

static void test_two_deliveries_two_names(void **state)
{
    struct fixture *f = *state;
    struct buf a, b;
    buf_init(&a, PATH_MAX);
    buf_init(&b, PATH_MAX);
    const char *dsn;
    char *maildir = strdup(in_dir(f, "Maildir"));
    assert_int_equal(deliver_text(f, maildir, NULL, "one\n", &a, &dsn), 0);
    assert_int_equal(deliver_text(f, maildir, NULL, "two\n", &b, &dsn), 0);
    assert_string_not_equal(buf_cstr(&a), buf_cstr(&b));
    buf_reset(&f->path);
    buf_printf(&f->path, "%s/new", maildir);
    assert_int_equal(list_dir(buf_cstr(&f->path), NULL), 2);
    free(maildir);
    buf_free(&a);
    buf_free(&b);
}

/* A source that hands out its text one byte at a time. */
struct byte_source {
    const char *text;
    size_t at;
    size_t fail_at;   /* fail when this many bytes were given (0: never) */
};

static int byte_next(void *ctx, const char **data, size_t *len,
                     struct buf *error)
{
    struct byte_source *s = ctx;
    if (s->fail_at != 0 && s->at == s->fail_at) {
        buf_set_str(error, "queue file damaged");
        return -1;
    }
    if (s->text[s->at] == '\0')
        return 0;
    *data = s->text + s->at++;
    *len = 1;
    return 1;
}

static void test_chunks_and_final_newline(void **state)
{
    struct fixture *f = *state;
    struct byte_source bs = { .text = "Subject: x\n\nno final line end" };
    struct delivery_source src = { .next = byte_next, .ctx = &bs };
    char *maildir = strdup(in_dir(f, "Maildir"));
    struct maildir_request rq = { .path = maildir, .uid = geteuid(),
                                  .hostname = "a/b:c" };
    struct buf name;
    buf_init(&name, PATH_MAX);
    const char *dsn;
    assert_int_equal(maildir_deliver(&rq, &src, &name, &dsn, &f->why), 0);
    assert_non_null(strstr(buf_cstr(&name), ".a\\057b\\072c,S=30"));
    buf_reset(&f->path);
    buf_printf(&f->path, "%s/%s", maildir, buf_cstr(&name));
    assert_content(buf_cstr(&f->path), "Subject: x\n\nno final line end\n");
    free(maildir);
    buf_free(&name);
}

static void test_symlinks_refused(void **state)
{
    struct fixture *f = *state;
    char *real = strdup(in_dir(f, "real"));
    assert_int_equal(mkdir(real, 0700), 0);
    assert_int_equal(symlink(real, in_dir(f, "Maildir")), 0);
    const char *dsn = NULL;
    char *maildir = strdup(in_dir(f, "Maildir"));
    assert_int_equal(deliver_text(f, maildir, NULL, "x\n", NULL, &dsn), -1);
    assert_string_equal(dsn, "4.2.0");
    assert_non_null(strstr(buf_cstr(&f->why), "symbolic link"));
    /* Also when named with a trailing slash, as home_mailbox = Maildir/. */
    buf_reset(&f->path);
    buf_printf(&f->path, "%s/", maildir);
    char *slashed = strdup(buf_cstr(&f->path));
    assert_int_equal(deliver_text(f, slashed, NULL, "x\n", NULL, &dsn), -1);
    assert_string_equal(dsn, "4.2.0");
    free(slashed);
    assert_int_equal(list_dir(real, NULL), 0);
    /* A Maildir whose tmp/ is a symlink to elsewhere. */
    char *other = strdup(in_dir(f, "other"));
    assert_int_equal(mkdir(other, 0700), 0);
    char *md2 = strdup(in_dir(f, "md2"));
    assert_int_equal(mkdir(md2, 0700), 0);
    buf_reset(&f->path);
    buf_printf(&f->path, "%s/tmp", md2);
    assert_int_equal(symlink(other, buf_cstr(&f->path)), 0);
    assert_int_equal(deliver_text(f, md2, NULL, "x\n", NULL, &dsn), -1);
    assert_string_equal(dsn, "4.2.0");
    assert_int_equal(list_dir(other, NULL), 0);
    free(real);
    free(maildir);
    free(other);
    free(md2);
}

static void test_other_owner_refused(void **state)
{
    struct fixture *f = *state;
    char *maildir = strdup(in_dir(f, "Maildir"));
    assert_int_equal(mkdir(maildir, 0700), 0);
    struct delivery_source src;
    struct delivery_source_memory mem;
    delivery_source_from_memory(&src, &mem, "x\n", 2);
    struct maildir_request rq = { .path = maildir, .uid = geteuid() + 1 };
    const char *dsn = NULL;
    assert_int_equal(maildir_deliver(&rq, &src, NULL, &dsn, &f->why), -1);
    assert_string_equal(dsn, "4.2.0");
    assert_non_null(strstr(buf_cstr(&f->why), "not by the recipient"));
    free(maildir);
}

static void test_source_failure_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    struct byte_source bs = { .text = "Subject: x\n\nbody\n", .fail_at = 5 };
    struct delivery_source src = { .next = byte_next, .ctx = &bs };
    char *maildir = strdup(in_dir(f, "Maildir"));
    struct maildir_request rq = { .path = maildir, .uid = geteuid() };
    const char *dsn = NULL;
    assert_int_equal(maildir_deliver(&rq, &src, NULL, &dsn, &f->why), -1);
    assert_string_equal(dsn, "4.3.0");
    assert_non_null(strstr(buf_cstr(&f->why), "queue file damaged"));
    const char *subs[] = { "tmp", "new", "cur" };
    for (size_t i = 0; i < 3; i++) {
        buf_reset(&f->path);
        buf_printf(&f->path, "%s/%s", maildir, subs[i]);
        assert_int_equal(list_dir(buf_cstr(&f->path), NULL), 0);
    }
    free(maildir);
}

static void test_full_file_system(void **state)
{
    struct fixture *f = *state;
    if (geteuid() != 0)
        skip();
    char *mnt = strdup(in_dir(f, "small"));
    assert_int_equal(mkdir(mnt, 0700), 0);
    if (mount("postino-test", mnt, "tmpfs", 0, "size=64k") != 0) {
        free(mnt);
        skip(); /* no CAP_SYS_ADMIN here (a container) */
    }
    enum { BIG = 256 * 1024 };
    char *big = malloc(BIG + 1);
    assert_non_null(big);
    memset(big, 'x', BIG);
    big[BIG] = '\0';
    buf_reset(&f->path);
    buf_printf(&f->path, "%s/Maildir", mnt);
    char *maildir = strdup(buf_cstr(&f->path));
    const char *dsn = NULL;
    int rc = deliver_text(f, maildir, NULL, big, NULL, &dsn);
    size_t in_tmp = 0, in_new = 0;
    buf_reset(&f->path);
    buf_printf(&f->path, "%s/tmp", maildir);
    in_tmp = list_dir(buf_cstr(&f->path), NULL);
    buf_reset(&f->path);
    buf_printf(&f->path, "%s/new", maildir);
    in_new = list_dir(buf_cstr(&f->path), NULL);
    assert_int_equal(umount(mnt), 0);
    assert_int_equal(rc, -1);
    assert_string_equal(dsn, "4.3.1");
    assert_non_null(strstr(buf_cstr(&f->why), "insufficient system storage"));
    assert_int_equal(in_tmp, 0);
    assert_int_equal(in_new, 0);
    free(maildir);
    free(big);
    free(mnt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_delivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_deliveries_two_names, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_chunks_and_final_newline, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_symlinks_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_other_owner_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_source_failure_leaves_nothing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_file_system, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
