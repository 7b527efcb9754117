/*
 * test_table_source - unit tests for tables/table_source (the postmap-style
 * "key value" text parser).
 *
 * Table-driven: each case is a source text, the entries it must give
 * ("key=value@line;" each), the number of errors, and the first error
 * without the file name (":LINE: message").  Also: a callback that stops,
 * a missing file, an over-long line, and 1,000,000 lines parsed (the time
 * is printed).  Each test writes into its own mkdtemp() directory.
 *
 * Run: build/<cc>/tests/test_table_source
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "safe_file.h"
#include "table.h"
#include "table_source.h"

struct fixture {
    struct buf dir;
    struct buf path;    /* the source file */
    struct buf entries; /* what the callback saw */
    struct buf error;
    int calls;
    int stop_at; /* the callback returns -1 on this call (0: never) */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    buf_init(&f->dir, PATH_MAX);
    buf_init(&f->path, PATH_MAX);
    buf_init(&f->entries, BUF_LIMIT_MAX);
    buf_init(&f->error, 4096);
    const char *tmp = getenv("TMPDIR");
    if (buf_printf(&f->dir, "%s/test_table_source.XXXXXX",
                   tmp && tmp[0] ? tmp : "/tmp") != 0 ||
        mkdtemp(f->dir.data) == NULL ||
        buf_printf(&f->path, "%s/source", f->dir.data) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    (void)unlink(buf_cstr(&f->path));
    (void)rmdir(buf_cstr(&f->dir));
    buf_free(&f->dir);
    buf_free(&f->path);
    buf_free(&f->entries);
    buf_free(&f->error);
    free(f);
    return 0;
}

static int record_entry(void *ctx, const char *key, size_t key_len,
                        const char *value, size_t value_len, const char *file,
                        int line)
{
    struct fixture *f = ctx;
    f->calls++;
    if (strcmp(file, buf_cstr(&f->path)) != 0)
        return -1;
    if (f->stop_at != 0 && f->calls == f->stop_at)
        return -1;
    return buf_printf(&f->entries, "%.*s=%.*s@%d;", (int)key_len, key,
                      (int)value_len, value, line);
}

static void write_source(struct fixture *f, const char *text, size_t len)
{
    assert_int_equal(
        safe_file_write_atomic(buf_cstr(&f->path), text, len, 0644), 0);
}

static int parse(struct fixture *f)
{
    buf_reset(&f->entries);
    buf_reset(&f->error);
    f->calls = 0;
    return table_source_read(buf_cstr(&f->path), record_entry, f, &f->error);
}

struct source_case {
    const char *name;
    const char *text;
    size_t len; /* 0: strlen(text) */
    const char *entries;
    int errors;
    const char *first_error; /* after the file name; NULL when none */
};

static const struct source_case cases[] = {
    {"simple", "a b\nc d\n", 0, "a=b@1;c=d@2;", 0, NULL},
    {"no final newline", "a b\nc d", 0, "a=b@1;c=d@2;", 0, NULL},
    {"empty file", "", 0, "", 0, NULL},
    {"only comments", "# one\n  # two\n\n", 0, "", 0, NULL},
    {"value trimmed, inner space kept", "key   value with  spaces \t\n", 0,
     "key=value with  spaces@1;", 0, NULL},
    {"tab separator", "k\tv\n", 0, "k=v@1;", 0, NULL},
    {"crlf", "a b\r\nc d\r\n", 0, "a=b@1;c=d@2;", 0, NULL},
    {"continuation joined with one space", "a b  \n   c\n\td  \ne f\n", 0,
     "a=b c d@1;e=f@4;", 0, NULL},
    {"comments and blank lines", "# c\n\na b\n   # indented\n  \nc d\n", 0,
     "a=b@3;c=d@6;", 0, NULL},
    {"continuation across a comment", "a b\n# x\n c\n", 0, "a=b c@1;", 0,
     NULL},
    {"value only on the continuation", "a\n b\n", 0, "a=b@1;", 0, NULL},
    {"hash inside a value", "a b # not a comment\n", 0,
     "a=b # not a comment@1;", 0, NULL},
    {"key without value", "a b\nlonely\nc d\n", 0, "a=b@1;c=d@3;", 1,
     ":2: expected format: key whitespace value"},
    {"key with only spaces after it", "a b\nlonely   \nc d\n", 0,
     "a=b@1;c=d@3;", 1, ":2: expected format: key whitespace value"},
    {"NUL byte", "a b\nc d\0e\nf g\n", 14, "a=b@1;f=g@3;", 1,
     ":2: NUL byte in line"},
    {"NUL byte in a continuation", "a b\n  x\0y\nf g\n", 14, "f=g@3;", 1,
     ":1: NUL byte in line"},
    {"continuation without a line", "  x y\na b\n", 0, "a=b@2;", 1,
     ":1: continuation line (starting with white space) without a line "
     "before it"},
    {"error after a continued line", "a b\n c\nbad\nd e\n", 0,
     "a=b c@1;d=e@4;", 1, ":3: expected format: key whitespace value"},
    {"several errors, the first reported", "a b\nx\ny\nc d\n", 0,
     "a=b@1;c=d@4;", 2, ":2: expected format: key whitespace value"},
};

static void test_cases(void **state)
{
    struct fixture *f = *state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct source_case *c = &cases[i];
        print_message("case: %s\n", c->name);
        write_source(f, c->text, c->len ? c->len : strlen(c->text));
        assert_int_equal(parse(f), c->errors);
        assert_string_equal(buf_cstr(&f->entries), c->entries);
        if (c->first_error == NULL) {
            assert_int_equal(f->error.len, 0);
            continue;
        }
        size_t path_len = f->path.len;
        assert_true(f->error.len > path_len);
        assert_memory_equal(f->error.data, f->path.data, path_len);
        assert_string_equal(f->error.data + path_len, c->first_error);
    }
}

static void test_callback_stops(void **state)
{
    struct fixture *f = *state;
    const char *text = "a 1\nb 2\nc 3\n";
    write_source(f, text, strlen(text));
    f->stop_at = 2;
    assert_int_equal(parse(f), 1);
    assert_int_equal(f->calls, 2);
    assert_string_equal(buf_cstr(&f->entries), "a=1@1;");
}

static void test_missing_file(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(parse(f), -1);
    assert_non_null(strstr(buf_cstr(&f->error), "No such file or directory"));
    assert_non_null(strstr(buf_cstr(&f->error), buf_cstr(&f->path)));
}

static void test_line_too_long(void **state)
{
    struct fixture *f = *state;
    struct buf text;
    buf_init(&text, BUF_LIMIT_MAX);
    assert_int_equal(buf_append_str(&text, "a b\nlong "), 0);
    for (size_t i = 0; i < TABLE_VALUE_MAX / 2; i++)
        assert_int_equal(buf_append_str(&text, "x"), 0);
    assert_int_equal(buf_append_str(&text, "\n "), 0); /* continued */
    for (size_t i = 0; i < TABLE_VALUE_MAX / 2; i++)
        assert_int_equal(buf_append_str(&text, "y"), 0);
    assert_int_equal(buf_append_str(&text, "\nc d\n"), 0);
    write_source(f, text.data, text.len);
    buf_free(&text);
    assert_int_equal(parse(f), 1);
    assert_string_equal(buf_cstr(&f->entries), "a=b@1;c=d@4;");
    assert_non_null(strstr(buf_cstr(&f->error), ":2: line longer than"));
}

static int count_entry(void *ctx, const char *key, size_t key_len,
                       const char *value, size_t value_len, const char *file,
                       int line)
{
    (void)key, (void)key_len, (void)value, (void)value_len, (void)file;
    int *count = ctx;
    return ++*count == line ? 0 : -1;
}

static void test_million_lines(void **state)
{
    struct fixture *f = *state;
    struct buf text;
    buf_init(&text, BUF_LIMIT_MAX);
    for (int i = 0; i < 1000000; i++)
        assert_int_equal(buf_printf(&text, "user%d@example.com  mailbox%d/\n",
                                    i, i), 0);
    write_source(f, text.data, text.len);
    buf_free(&text);
    struct timespec start, end;
    int count = 0;
    assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &start), 0);
    assert_int_equal(table_source_read(buf_cstr(&f->path), count_entry,
                                       &count, &f->error), 0);
    assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &end), 0);
    assert_int_equal(count, 1000000);
    double seconds = (double)(end.tv_sec - start.tv_sec) +
                     (double)(end.tv_nsec - start.tv_nsec) / 1e9;
    print_message("1,000,000 lines parsed in %.3f s\n", seconds);
    assert_true(seconds < 10.0); /* generous: sanitizer builds are slow */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callback_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_line_too_long, setup, teardown),
        cmocka_unit_test_setup_teardown(test_million_lines, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
