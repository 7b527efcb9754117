/*
 * test_table - unit tests for the lookup-table library: tables/table.c and
 * the hash, btree, texthash, inline, static and unix drivers, and the
 * Berkeley DB writer that postino-map uses (tables/table_db.h).
 *
 * hash and btree tables are built through the writer API in a mkdtemp()
 * directory and read back through table_open.  Covered: case folding and
 * TABLE_FLAG_KEEP_CASE, a missing FILE.db (with the postino-map hint), a
 * corrupt FILE.db and one with damaged pages (an error, not a crash),
 * duplicate puts, deletes, copy_existing, abort leaving the old FILE.db
 * byte for byte, file modes,
 * texthash (continuations, comments, errors with their line), inline forms
 * and syntax errors, static, unix:passwd.byname, unknown types, over-long
 * keys, and listing.
 *
 * Run: build/<cc>/tests/test_table
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "unit_dir.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "safe_file.h"
#include "table.h"
#include "table_db.h"

struct fixture {
    struct buf dir;
    struct buf path;  /* scratch: FILE or FILE.db */
    struct buf spec;  /* scratch: TYPE:FILE */
    struct buf error;
    struct buf value;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    buf_init(&f->dir, PATH_MAX);
    buf_init(&f->path, PATH_MAX);
    buf_init(&f->spec, PATH_MAX);
    buf_init(&f->error, 4096);
    buf_init(&f->value, TABLE_VALUE_MAX);
    const char *tmp = getenv("TMPDIR");
    if (buf_printf(&f->dir, "%s/test_table.XXXXXX",
                   tmp && tmp[0] ? tmp : "/tmp") != 0 ||
        mkdtemp(f->dir.data) == NULL)
        return -1;
    *state = f;
    return 0;
}

/* Removes every file in the test directory, then the directory. */

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            count++;
    assert_int_equal(closedir(d), 0);
    return count;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    unit_dir_remove(buf_cstr(&f->dir));
    buf_free(&f->dir);
    buf_free(&f->path);
    buf_free(&f->spec);
    buf_free(&f->error);
    buf_free(&f->value);
    free(f);
    return 0;
}

/* f->path = DIR/name + suffix; returns it. */
static const char *file_path(struct fixture *f, const char *name,
                             const char *suffix)
{
    buf_reset(&f->path);
    assert_int_equal(buf_printf(&f->path, "%s/%s%s", f->dir.data, name,
                                suffix), 0);
    return f->path.data;
}

/* f->spec = TYPE:DIR/name; returns it. */
static const char *table_name(struct fixture *f, const char *type,
                              const char *name)
{
    buf_reset(&f->spec);
    assert_int_equal(buf_printf(&f->spec, "%s:%s/%s", type, f->dir.data,
                                name), 0);
    return f->spec.data;
}

static void write_text(struct fixture *f, const char *name, const char *text)
{
    assert_int_equal(safe_file_write_atomic(file_path(f, name, ""), text,
                                            strlen(text), 0644), 0);
}

/* Builds DIR/name.db with "key=value" pairs, through the writer API. */
static void build_db(struct fixture *f, const char *type, const char *name,
                     const char *const *pairs)
{
    struct table_db_writer *w = table_db_writer_create(
        file_path(f, name, ".db"), type, 10, 0, &f->error);
    assert_non_null(w);
    for (const char *const *p = pairs; *p; p++) {
        const char *equals = strchr(*p, '=');
        assert_non_null(equals);
        assert_int_equal(table_db_writer_put(w, *p, (size_t)(equals - *p),
                                             equals + 1, strlen(equals + 1),
                                             0, &f->error), 0);
    }
    assert_int_equal(table_db_writer_commit(w, &f->error), 0);
}

static void expect_lookup(struct fixture *f, struct table *t, const char *key,
                         const char *value)
{
    buf_reset(&f->error);
    int rc = table_lookup(t, key, &f->value, &f->error);
    if (value == NULL) {
        assert_int_equal(rc, TABLE_NOT_FOUND);
        return;
    }
    if (rc != TABLE_FOUND)
        print_error("lookup of %s: %d %s\n", key, rc, buf_cstr(&f->error));
    assert_int_equal(rc, TABLE_FOUND);
    assert_string_equal(buf_cstr(&f->value), value);
}

static const char *const virtual_pairs[] = {
    "user@example.com=mailbox1",
    "@example.org=catchall",
    "postmaster=root",
    "empty=",
    NULL,
};

static void check_db_type(struct fixture *f, const char *type)
{
    build_db(f, type, "virtual", virtual_pairs);
    struct table *t = table_open(table_name(f, type, "virtual"), 0, &f->error);
    assert_non_null(t);
    assert_string_equal(table_spec(t), f->spec.data);
    expect_lookup(f, t, "user@example.com", "mailbox1");
    expect_lookup(f, t, "User@Example.COM", "mailbox1");
    expect_lookup(f, t, "@EXAMPLE.org", "catchall");
    expect_lookup(f, t, "postmaster", "root");
    expect_lookup(f, t, "empty", "");
    expect_lookup(f, t, "nobody@example.com", NULL);
    expect_lookup(f, t, "", NULL);
    table_close(t);
    t = table_open(f->spec.data, TABLE_FLAG_BULK, &f->error);
    assert_non_null(t);
    expect_lookup(f, t, "USER@example.com", "mailbox1");
    table_close(t);
}

static void test_hash(void **state)
{
    check_db_type(*state, "hash");
}

static void test_btree(void **state)
{
    check_db_type(*state, "btree");
}

static void test_keep_case(void **state)
{
    struct fixture *f = *state;
    const char *const pairs[] = {"MixedCase=upper", "lower=l", NULL};
    build_db(f, "hash", "cased", pairs);
    struct table *t = table_open(table_name(f, "hash", "cased"),
                                 TABLE_FLAG_KEEP_CASE, &f->error);
    assert_non_null(t);
    expect_lookup(f, t, "MixedCase", "upper");
    expect_lookup(f, t, "mixedcase", NULL);
    expect_lookup(f, t, "LOWER", NULL);
    table_close(t);
    t = table_open(table_name(f, "hash", "cased"), 0, &f->error);
    assert_non_null(t);
    expect_lookup(f, t, "MixedCase", NULL); /* folded to mixedcase */
    expect_lookup(f, t, "LOWER", "l");
    table_close(t);
}

static void test_missing_db(void **state)
{
    struct fixture *f = *state;
    assert_null(table_open(table_name(f, "hash", "nothere"), 0, &f->error));
    struct buf expected;
    buf_init(&expected, 4096);
    assert_int_equal(buf_printf(&expected,
                                "%s/nothere.db: No such file or directory "
                                "(run \"postino-map hash:%s/nothere\")",
                                f->dir.data, f->dir.data), 0);
    assert_string_equal(buf_cstr(&f->error), expected.data);
    buf_free(&expected);
}

static void test_corrupt_db(void **state)
{
    struct fixture *f = *state;
    char garbage[16384];
    for (size_t i = 0; i < sizeof(garbage); i++)
        garbage[i] = (char)(i * 131 + 7);
    assert_int_equal(safe_file_write_atomic(file_path(f, "bad", ".db"),
                                            garbage, sizeof(garbage), 0644),
                     0);
    assert_null(table_open(table_name(f, "hash", "bad"), 0, &f->error));
    assert_non_null(strstr(buf_cstr(&f->error), "bad.db"));
    print_message("%s\n", buf_cstr(&f->error));
    buf_reset(&f->error);
    assert_null(table_open(table_name(f, "btree", "bad"), 0, &f->error));
    assert_true(f->error.len > 0);
    /* An empty file and a btree opened as hash are errors too. */
    assert_int_equal(safe_file_write_atomic(file_path(f, "empty", ".db"), "",
                                            0, 0644), 0);
    assert_null(table_open(table_name(f, "hash", "empty"), 0, &f->error));
    build_db(f, "btree", "tree", virtual_pairs);
    assert_null(table_open(table_name(f, "hash", "tree"), 0, &f->error));
}

/* Damages one byte in every page but the first (the meta page). */
static void damage_pages(const char *path)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    off_t size = lseek(fd, 0, SEEK_END);
    assert_true(size > 8192);
    for (off_t page = 4096; page + 200 < size; page += 4096) {
        char byte = 0;
        assert_int_equal(pread(fd, &byte, 1, page + 200), 1);
        byte = (char)(byte ^ 0x5a);
        assert_int_equal(pwrite(fd, &byte, 1, page + 200), 1);
    }
    assert_int_equal(close(fd), 0);
}

/* Lookups in a table with damaged pages, in a child: it must answer (an
 * error is expected: the writer stores page checksums), never crash.  The
 * child leaves with _exit, because Berkeley DB cannot free a handle that
 * saw a damaged page, which leak checkers would report. */
static int lookups_survive(const char *spec)
{
    log_set_destinations(0); /* Berkeley DB's complaints, many per page */
    struct buf error, value;
    buf_init(&error, 4096);
    buf_init(&value, TABLE_VALUE_MAX);
    struct table *t = table_open(spec, 0, &error);
    if (t == NULL)
        return 0; /* refusing the file is fine too */
    int errors = 0;
    char key[32];
    for (int i = 0; i < 2000; i++) {
        (void)snprintf(key, sizeof(key), "key%d", i);
        buf_reset(&error);
        int rc = table_lookup(t, key, &value, &error);
        if (rc == TABLE_ERROR && error.len == 0)
            return 3; /* an error without a reason */
        errors += rc == TABLE_ERROR;
    }
    return errors > 0 ? 0 : 4;
}

static void check_damaged_pages(struct fixture *f, const char *type)
{
    struct table_db_writer *w = table_db_writer_create(
        file_path(f, "damaged", ".db"), type, 2000, 0, &f->error);
    assert_non_null(w);
    char key[32];
    for (int i = 0; i < 2000; i++) {
        int len = snprintf(key, sizeof(key), "key%d", i);
        assert_int_equal(table_db_writer_put(w, key, (size_t)len,
                                             "some value", 10, 0, &f->error),
                         0);
    }
    assert_int_equal(table_db_writer_commit(w, &f->error), 0);
    damage_pages(file_path(f, "damaged", ".db"));
    const char *spec = table_name(f, type, "damaged");
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0)
        _exit(lookups_survive(spec));
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_damaged_pages(void **state)
{
    check_damaged_pages(*state, "hash");
    check_damaged_pages(*state, "btree");
}

static void test_duplicate_put(void **state)
{
    struct fixture *f = *state;
    struct table_db_writer *w = table_db_writer_create(
        file_path(f, "dup", ".db"), "hash", 0, 0, &f->error);
    assert_non_null(w);
    assert_int_equal(table_db_writer_put(w, "k", 1, "v1", 2, 0, &f->error),
                     0);
    assert_int_equal(table_db_writer_put(w, "k", 1, "v2", 2, 0, &f->error),
                     1);
    assert_int_equal(table_db_writer_put(w, "j", 1, "j1", 2, 0, &f->error),
                     0);
    assert_int_equal(table_db_writer_put(w, "j", 1, "j2", 2, 1, &f->error),
                     0);
    assert_int_equal(table_db_writer_delete(w, "gone", 4, &f->error), 1);
    assert_int_equal(table_db_writer_commit(w, &f->error), 0);
    struct table *t = table_open(table_name(f, "hash", "dup"), 0, &f->error);
    assert_non_null(t);
    expect_lookup(f, t, "k", "v1");
    expect_lookup(f, t, "j", "j2");
    table_close(t);
}

static void test_writer_errors(void **state)
{
    struct fixture *f = *state;
    assert_null(table_db_writer_create(file_path(f, "x", ".db"), "cdb", 0, 0,
                                       &f->error));
    assert_non_null(strstr(buf_cstr(&f->error), "\"cdb\""));
    buf_reset(&f->error);
    assert_null(table_db_writer_create(file_path(f, "no/such/dir", ".db"),
                                       "hash", 0, 0, &f->error));
    assert_true(f->error.len > 0);
    struct table_db_writer *w = table_db_writer_create(
        file_path(f, "x", ".db"), "btree", 0, 0, &f->error);
    assert_non_null(w);
    char *big = calloc(1, TABLE_KEY_MAX + 1);
    assert_non_null(big);
    assert_int_equal(table_db_writer_put(w, big, TABLE_KEY_MAX + 1, "v", 1, 0,
                                         &f->error), -1);
    free(big);
    table_db_writer_abort(w);
    assert_int_equal(count_files(f->dir.data), 0);
    table_db_writer_abort(NULL);
}

static void test_delete_and_copy_existing(void **state)
{
    struct fixture *f = *state;
    const char *const pairs[] = {"a=1", "b=2", "c=3", NULL};
    build_db(f, "hash", "t", pairs);
    struct table_db_writer *w = table_db_writer_create(
        file_path(f, "t", ".db"), "hash", 0, 1, &f->error);
    assert_non_null(w);
    assert_int_equal(table_db_writer_delete(w, "a", 1, &f->error), 0);
    assert_int_equal(table_db_writer_delete(w, "a", 1, &f->error), 1);
    assert_int_equal(table_db_writer_put(w, "b", 1, "x", 1, 0, &f->error), 1);
    assert_int_equal(table_db_writer_put(w, "d", 1, "4", 1, 0, &f->error), 0);
    assert_int_equal(table_db_writer_commit(w, &f->error), 0);
    struct table *t = table_open(table_name(f, "hash", "t"), 0, &f->error);
    assert_non_null(t);
    expect_lookup(f, t, "a", NULL);
    expect_lookup(f, t, "b", "2");
    expect_lookup(f, t, "c", "3");
    expect_lookup(f, t, "d", "4");
    table_close(t);
    assert_int_equal(count_files(f->dir.data), 1); /* no temporary left */

    /* copy_existing with an empty FILE.db (a placeholder) starts empty. */
    assert_int_equal(safe_file_write_atomic(file_path(f, "placeholder", ".db"),
                                            "", 0, 0600), 0);
    w = table_db_writer_create(f->path.data, "hash", 0, 1, &f->error);
    assert_non_null(w);
    assert_int_equal(table_db_writer_put(w, "k", 1, "v", 1, 0, &f->error), 0);
    assert_int_equal(table_db_writer_commit(w, &f->error), 0);
    struct stat st;
    assert_int_equal(stat(file_path(f, "placeholder", ".db"), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    t = table_open(table_name(f, "hash", "placeholder"), 0, &f->error);
    assert_non_null(t);
    expect_lookup(f, t, "k", "v");
    table_close(t);

    /* copy_existing without a FILE.db starts empty. */
    w = table_db_writer_create(file_path(f, "new", ".db"), "btree", 0, 1,
                               &f->error);
    assert_non_null(w);
    assert_int_equal(table_db_writer_commit(w, &f->error), 0);
    t = table_open(table_name(f, "btree", "new"), 0, &f->error);
    assert_non_null(t);
    expect_lookup(f, t, "a", NULL);
    table_close(t);
}

static void test_abort_keeps_old(void **state)
{
    struct fixture *f = *state;
    const char *const pairs[] = {"a=1", "b=2", NULL};
    build_db(f, "hash", "t", pairs);
    struct buf before, after;
    buf_init(&before, BUF_LIMIT_MAX);
    buf_init(&after, BUF_LIMIT_MAX);
    assert_int_equal(safe_file_read_all(file_path(f, "t", ".db"), &before), 0);
    struct table_db_writer *w = table_db_writer_create(
        file_path(f, "t", ".db"), "hash", 100, 1, &f->error);
    assert_non_null(w);
    assert_int_equal(table_db_writer_delete(w, "a", 1, &f->error), 0);
    for (int i = 0; i < 100; i++) {
        char key[32];
        int len = snprintf(key, sizeof(key), "key%d", i);
        assert_int_equal(table_db_writer_put(w, key, (size_t)len, "v", 1, 1,
                                             &f->error), 0);
    }
    assert_int_equal(count_files(f->dir.data), 2);
    table_db_writer_abort(w);
    assert_int_equal(count_files(f->dir.data), 1);
    assert_int_equal(safe_file_read_all(file_path(f, "t", ".db"), &after), 0);
    assert_int_equal(before.len, after.len);
    assert_memory_equal(before.data, after.data, before.len);
    buf_free(&before);
    buf_free(&after);
}

static void test_file_mode(void **state)
{
    struct fixture *f = *state;
    const char *const pairs[] = {"a=1", NULL};
    mode_t old_umask = umask(077);
    build_db(f, "hash", "m", pairs);
    struct stat st;
    assert_int_equal(stat(file_path(f, "m", ".db"), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_int_equal(chmod(f->path.data, 0640), 0);
    build_db(f, "hash", "m", pairs);
    assert_int_equal(stat(file_path(f, "m", ".db"), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    umask(old_umask);
}

static void test_texthash(void **state)
{
    struct fixture *f = *state;
    write_text(f, "aliases",
               "# a comment\n"
               "User@Example.com   box1  \n"
               "\n"
               "list  one,\n"
               "   two,\n"
               "\tthree\n"
               "   # indented comment\n"
               "dup first\n"
               "DUP second\n");
    struct table *t = table_open(table_name(f, "texthash", "aliases"), 0,
                                 &f->error);
    assert_non_null(t);
    expect_lookup(f, t, "user@example.com", "box1");
    expect_lookup(f, t, "USER@EXAMPLE.COM", "box1");
    expect_lookup(f, t, "list", "one, two, three");
    expect_lookup(f, t, "dup", "first");
    expect_lookup(f, t, "nothing", NULL);
    table_close(t);

    t = table_open(table_name(f, "texthash", "aliases"), TABLE_FLAG_KEEP_CASE,
                   &f->error);
    assert_non_null(t);
    expect_lookup(f, t, "User@Example.com", "box1");
    expect_lookup(f, t, "user@example.com", NULL);
    expect_lookup(f, t, "DUP", "second");
    table_close(t);
}

static void test_texthash_errors(void **state)
{
    struct fixture *f = *state;
    write_text(f, "bad", "a b\n  c\n\nnovalue\nd e\n");
    assert_null(table_open(table_name(f, "texthash", "bad"), 0, &f->error));
    struct buf expected;
    buf_init(&expected, 4096);
    assert_int_equal(buf_printf(&expected,
                                "%s/bad:4: expected format: key whitespace "
                                "value", f->dir.data), 0);
    assert_string_equal(buf_cstr(&f->error), expected.data);
    buf_free(&expected);
    buf_reset(&f->error);
    assert_null(table_open(table_name(f, "texthash", "missing"), 0,
                           &f->error));
    assert_non_null(strstr(buf_cstr(&f->error), "No such file or directory"));
}

static void test_inline(void **state)
{
    struct fixture *f = *state;
    struct table *t = table_open(
        "inline:{ a@Example.com = one, B = two words ,c=3, "
        "{ d = with, comma }, e = }", 0, &f->error);
    assert_non_null(t);
    expect_lookup(f, t, "a@example.com", "one");
    expect_lookup(f, t, "b", "two words");
    expect_lookup(f, t, "C", "3");
    expect_lookup(f, t, "d", "with, comma");
    expect_lookup(f, t, "e", "");
    expect_lookup(f, t, "f", NULL);
    assert_string_equal(table_spec(t),
                        "inline:{ a@Example.com = one, B = two words ,c=3, "
                        "{ d = with, comma }, e = }");
    table_close(t);
    t = table_open("inline:{}", 0, &f->error);
    assert_non_null(t);
    expect_lookup(f, t, "a", NULL);
    table_close(t);
    t = table_open("inline:{a=1,}", 0, &f->error);
    assert_non_null(t);
    expect_lookup(f, t, "a", "1");
    table_close(t);
}

static void test_inline_errors(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *spec;
        const char *error;
    } cases[] = {
        {"inline:a=1", "inline:a=1: expected \"inline:{ key = value, ... }\" "
                       "(braces required)"},
        {"inline:{a=1", "inline:{a=1: expected \"inline:{ key = value, ... "
                        "}\" (braces required)"},
        {"inline:{ a, b=1 }", "inline:{ a, b=1 }: missing '=' in \"a\""},
        {"inline:{ = 1 }", "inline:{ = 1 }: missing key in \"= 1\""},
        {"inline:{ {a=1 }", "inline:{ {a=1 }: unbalanced braces"},
        {"inline:{ a=1} }", "inline:{ a=1} }: unbalanced braces"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf_reset(&f->error);
        assert_null(table_open(cases[i].spec, 0, &f->error));
        assert_string_equal(buf_cstr(&f->error), cases[i].error);
    }
}

static void test_static(void **state)
{
    struct fixture *f = *state;
    struct table *t = table_open("static:Local", 0, &f->error);
    assert_non_null(t);
    expect_lookup(f, t, "anything", "Local");
    expect_lookup(f, t, "", "Local");
    assert_int_equal(table_iterate(t, NULL, NULL, &f->error), TABLE_ERROR);
    assert_true(f->error.len > 0);
    table_close(t);
    t = table_open("static:{  text with spaces  }", 0, &f->error);
    assert_non_null(t);
    expect_lookup(f, t, "x", "text with spaces");
    table_close(t);
    assert_null(table_open("static:{ unclosed", 0, &f->error));
}

static void test_unix(void **state)
{
    struct fixture *f = *state;
    struct table *t = table_open("unix:passwd.byname", 0, &f->error);
    assert_non_null(t);
    expect_lookup(f, t, "no-such-user-here", NULL);
    expect_lookup(f, t, "ROOT", NULL);
    assert_int_equal(table_lookup(t, "root", &f->value, &f->error),
                     TABLE_FOUND);
    assert_memory_equal(f->value.data, "root:", 5);
    int colons = 0;
    for (size_t i = 0; i < f->value.len; i++)
        colons += f->value.data[i] == ':';
    assert_int_equal(colons, 6);
    assert_non_null(strstr(f->value.data, ":0:0:"));
    table_close(t);
    t = table_open("unix:group.byname", 0, &f->error);
    assert_non_null(t);
    assert_int_equal(table_lookup(t, "root", &f->value, &f->error),
                     TABLE_FOUND);
    assert_memory_equal(f->value.data, "root:", 5);
    table_close(t);
    assert_null(table_open("unix:shadow.byname", 0, &f->error));
}

static void test_bad_specs(void **state)
{
    struct fixture *f = *state;
    assert_null(table_open("foo:bar", 0, &f->error));
    assert_string_equal(buf_cstr(&f->error),
                        "unsupported table type \"foo\" in \"foo:bar\" "
                        "(hash, btree, pcre, texthash, inline, static, "
                        "unix)");
    buf_reset(&f->error);
    assert_null(table_open("/etc/postino/virtual", 0, &f->error));
    assert_non_null(strstr(buf_cstr(&f->error), "TYPE:NAME"));
    buf_reset(&f->error);
    assert_null(table_open(":x", 0, &f->error));
    assert_true(f->error.len > 0);
}

static void test_key_too_long(void **state)
{
    struct fixture *f = *state;
    struct table *t = table_open("inline:{ a = 1 }", 0, &f->error);
    assert_non_null(t);
    char *key = malloc(TABLE_KEY_MAX + 2);
    assert_non_null(key);
    memset(key, 'a', TABLE_KEY_MAX + 1);
    key[TABLE_KEY_MAX + 1] = '\0';
    assert_int_equal(table_lookup(t, key, &f->value, &f->error), TABLE_ERROR);
    assert_true(f->error.len > 0);
    key[TABLE_KEY_MAX] = '\0'; /* exactly the limit: fine */
    expect_lookup(f, t, key, NULL);
    free(key);
    table_close(t);
}

static int collect(void *ctx, const char *key, size_t key_len,
                   const char *value, size_t value_len)
{
    return buf_printf(ctx, "%.*s=%.*s;", (int)key_len, key, (int)value_len,
                      value);
}

static int stop_after_one(void *ctx, const char *key, size_t key_len,
                          const char *value, size_t value_len)
{
    (void)key, (void)key_len, (void)value, (void)value_len;
    int *calls = ctx;
    ++*calls;
    return 1;
}

static void expect_listing(struct fixture *f, const char *spec,
                           const char *expected, int sorted_by_db)
{
    struct table *t = table_open(spec, 0, &f->error);
    assert_non_null(t);
    struct buf listing;
    buf_init(&listing, 65536);
    assert_int_equal(table_iterate(t, collect, &listing, &f->error), 0);
    if (sorted_by_db)
        assert_int_equal(listing.len, strlen(expected)); /* hash order */
    else
        assert_string_equal(buf_cstr(&listing), expected);
    int calls = 0;
    assert_int_equal(table_iterate(t, stop_after_one, &calls, &f->error), 0);
    assert_int_equal(calls, 1);
    buf_free(&listing);
    table_close(t);
}

static void test_iterate(void **state)
{
    struct fixture *f = *state;
    const char *const pairs[] = {"c=3", "a=1", "b=2", NULL};
    build_db(f, "btree", "bt", pairs);
    build_db(f, "hash", "h", pairs);
    write_text(f, "th", "C 3\na 1\nb 2\n");
    expect_listing(f, table_name(f, "btree", "bt"), "a=1;b=2;c=3;", 0);
    expect_listing(f, table_name(f, "hash", "h"), "a=1;b=2;c=3;", 1);
    expect_listing(f, table_name(f, "texthash", "th"), "c=3;a=1;b=2;", 0);
    expect_listing(f, "inline:{ B = 2, a = 1 }", "b=2;a=1;", 0);
    struct table *t = table_open("unix:passwd.byname", 0, &f->error);
    assert_non_null(t);
    struct buf listing;
    buf_init(&listing, BUF_LIMIT_MAX);
    assert_int_equal(table_iterate(t, collect, &listing, &f->error), 0);
    assert_non_null(strstr(buf_cstr(&listing), "root=root:"));
    buf_free(&listing);
    table_close(t);
}

int main(void)
{
#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        TEST(test_hash),
        TEST(test_btree),
        TEST(test_keep_case),
        TEST(test_missing_db),
        TEST(test_corrupt_db),
        TEST(test_damaged_pages),
        TEST(test_duplicate_put),
        TEST(test_writer_errors),
        TEST(test_delete_and_copy_existing),
        TEST(test_abort_keeps_old),
        TEST(test_file_mode),
        TEST(test_texthash),
        TEST(test_texthash_errors),
        TEST(test_inline),
        TEST(test_inline_errors),
        TEST(test_static),
        TEST(test_unix),
        TEST(test_bad_specs),
        TEST(test_key_too_long),
        TEST(test_iterate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
