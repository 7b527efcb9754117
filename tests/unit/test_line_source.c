/*
 * test_line_source - unit tests for lib/line_source (logical lines with
 * FILE:LINE numbers, shared by main.cf, master.cf and the table sources).
 *
 * Table-driven: each case is a text, the flags and length limit, and what
 * the callback must see, written "LINE[text];" for a logical line and
 * "LINE!problem@WHERE;" for a problem.  Also: a callback that stops, text
 * that must stay unchanged, and files (read, missing, too large) in a
 * mkdtemp() directory.
 *
 * Run: build/<cc>/tests/test_line_source
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "line_source.h"
#include "safe_file.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define NO_LIMIT 100000

struct record {
    struct buf out;
    const char *stop_at; /* the callback stops after this text */
};

static const char *problem_name(enum line_source_problem problem)
{
    switch (problem) {
    case LINE_SOURCE_OK: return "ok";
    case LINE_SOURCE_NUL: return "nul";
    case LINE_SOURCE_ORPHAN: return "orphan";
    case LINE_SOURCE_TOO_LONG: return "long";
    }
    return "?";
}

static int record_line(void *ctx, const struct line_source_line *l)
{
    struct record *r = ctx;
    if (l->problem != LINE_SOURCE_OK) {
        assert_null(l->text);
        assert_int_equal(buf_printf(&r->out, "%d!%s@%d;", l->line,
                                    problem_name(l->problem), l->where), 0);
        return 0;
    }
    assert_non_null(l->text);
    assert_int_equal(strlen(l->text), l->len); /* NUL-terminated */
    assert_int_equal(l->where, l->line);
    assert_int_equal(buf_printf(&r->out, "%d[%s];", l->line, l->text), 0);
    return r->stop_at != NULL && strcmp(l->text, r->stop_at) == 0;
}

/* Parses text (a copy, in place) and returns what the callback saw. */
static void parse(const char *text, size_t len, unsigned flags,
                  size_t max_len, struct record *r)
{
    struct buf copy;
    buf_init(&copy, len);
    assert_int_equal(buf_set(&copy, text, len), 0);
    const struct line_source src = {
        .max_len = max_len, .flags = flags, .fn = record_line, .ctx = r,
    };
    (void)line_source_parse(&src, copy.data, copy.len);
    buf_free(&copy);
}

#define TEXT(s) s, sizeof(s) - 1

static void test_cases(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *text;
        size_t len;
        unsigned flags;
        size_t max_len;
        const char *expected;
    } cases[] = {
        { "empty file", TEXT(""), 0, NO_LIMIT, "" },
        { "lines", TEXT("a\nb\n"), 0, NO_LIMIT, "1[a];2[b];" },
        { "no final newline", TEXT("a\nb"), 0, NO_LIMIT, "1[a];2[b];" },
        { "continuation", TEXT("a\n  b\n\tc\nd"), 0, NO_LIMIT,
          "1[a b c];4[d];" },
        { "comments between continuation lines",
          TEXT("a\n# x\n  b\n  # y\n\tc\n"), 0, NO_LIMIT, "1[a b c];" },
        { "blank lines between continuation lines",
          TEXT("a\n\n   \n  b\n"), 0, NO_LIMIT, "1[a b];" },
        { "CRLF", TEXT("a \r\n  b\r\nc\r\n"), 0, NO_LIMIT,
          "1[a b];3[c];" },
        { "white space trimmed, inner kept", TEXT("a  b \t\f\v\n"), 0,
          NO_LIMIT, "1[a  b];" },
        { "only comments and blanks", TEXT("#\n#\n  \n\r\n"), 0, NO_LIMIT,
          "" },
        { "indented comment is no continuation",
          TEXT("a\n # not\n  b\n"), 0, NO_LIMIT, "1[a b];" },
        { "line numbers", TEXT("\n\n# c\nx\n\n  y\nz\n\n"), 0, NO_LIMIT,
          "4[x y];7[z];" },
        { "continuation of nothing", TEXT("  a\n\tb\nc\n  d\n"), 0,
          NO_LIMIT, "1!orphan@1;2!orphan@2;3[c d];" },
        { "continuation of nothing after a comment", TEXT("# x\n\n  a\nb"),
          0, NO_LIMIT, "3!orphan@3;4[b];" },
        { "NUL", TEXT("a\nb\0c\nd\n"), 0, NO_LIMIT, "1[a];2!nul@2;3[d];" },
        { "NUL in a continuation", TEXT("a\n  b\0\n  c\nd"), 0, NO_LIMIT,
          "1!nul@2;4[d];" },
        { "NUL alone", TEXT("\0\n"), 0, NO_LIMIT, "1!nul@1;" },
        { "NUL in a comment", TEXT("a\n#\0\nb"), 0, NO_LIMIT,
          "1[a];3[b];" },
        { "NUL in a comment, reported", TEXT("a\n#\0\n  b\nc"),
          LINE_SOURCE_COMMENT_NUL, NO_LIMIT, "2!nul@2;1[a b];4[c];" },
        { "continuation of nothing with NUL", TEXT("  \0\nb"), 0, NO_LIMIT,
          "1!orphan@1;2[b];" },
        { "at the limit", TEXT("abc\n d\n"), 0, 5, "1[abc d];" },
        { "overlong line", TEXT("abcdef\nb"), 0, 5, "1!long@1;2[b];" },
        { "overlong by a continuation", TEXT("abc\n  de\n#\nx"), 0, 5,
          "1!long@2;4[x];" },
        { "overlong, then NUL", TEXT("abcdef\n \0\n"), 0, 5, "1!long@1;" },
        { "NUL, then overlong", TEXT("ab\n \0\n cdefg\n"), 0, 5,
          "1!nul@2;" },
        { "NUL and overlong on one line", TEXT("ab\n \0cdefg\n"), 0, 5,
          "1!nul@2;" },
        { "length first", TEXT("ab\n \0\n cdefg\nh"),
          LINE_SOURCE_LENGTH_FIRST, 5, "1!long@3;4[h];" },
        { "length first, no overlong", TEXT("ab\n \0\nh"),
          LINE_SOURCE_LENGTH_FIRST, 5, "1!nul@2;3[h];" },
        { "each NUL", TEXT("ab\n \0\n c\n \0\nd"), LINE_SOURCE_EACH_NUL,
          NO_LIMIT, "1!nul@2;1!nul@4;5[d];" },
        { "each NUL after overlong", TEXT("abcdefg\n \0\n x\n"),
          LINE_SOURCE_EACH_NUL, 5, "1!long@1;1!nul@2;" },
        { "each NUL: no overlong after NUL", TEXT("a\n \0\n xxxxxx\n"),
          LINE_SOURCE_EACH_NUL, 5, "1!nul@2;" },
        { "orphan group", TEXT("  a\n  b\n \0\nc\n  d\n"),
          LINE_SOURCE_EACH_NUL | LINE_SOURCE_ORPHAN_GROUP, NO_LIMIT,
          "1!orphan@1;1!nul@3;4[c d];" },
        { "orphan group starting with NUL", TEXT("  \0\n  b\nc"),
          LINE_SOURCE_EACH_NUL | LINE_SOURCE_ORPHAN_GROUP, NO_LIMIT,
          "1!nul@1;3[c];" },
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        struct record r = { .stop_at = NULL };
        buf_init(&r.out, 4096);
        parse(cases[i].text, cases[i].len, cases[i].flags, cases[i].max_len,
              &r);
        if (strcmp(buf_cstr(&r.out), cases[i].expected) != 0)
            fail_msg("%s: \"%s\", expected \"%s\"", cases[i].name,
                     buf_cstr(&r.out), cases[i].expected);
        buf_free(&r.out);
    }
}

/* A callback that returns nonzero ends the read: the logical line still
 * open is not handed out. */
static void test_stop(void **state)
{
    (void)state;
    struct record r = { .stop_at = "b c" };
    buf_init(&r.out, 4096);
    static const char text[] = "a\nb\n  c\nd\ne\n";
    struct buf copy;
    buf_init(&copy, 100);
    assert_int_equal(buf_set_str(&copy, text), 0);
    const struct line_source src = {
        .max_len = NO_LIMIT, .flags = 0, .fn = record_line, .ctx = &r,
    };
    assert_int_equal(line_source_parse(&src, copy.data, copy.len), 1);
    assert_string_equal(buf_cstr(&r.out), "1[a];2[b c];");
    buf_reset(&r.out);
    r.stop_at = "e"; /* the last line: the read ends anyway */
    assert_int_equal(buf_set_str(&copy, text), 0);
    assert_int_equal(line_source_parse(&src, copy.data, copy.len), 1);
    assert_string_equal(buf_cstr(&r.out), "1[a];2[b c];4[d];5[e];");
    buf_free(&copy);
    buf_free(&r.out);
}

/* line_source_parse_copy leaves the caller's text as it was; the
 * callback may change the logical line it is given. */
static int upcase_line(void *ctx, const struct line_source_line *l)
{
    struct record *r = ctx;
    for (size_t i = 0; i < l->len; i++)
        if (l->text[i] >= 'a' && l->text[i] <= 'z')
            l->text[i] = (char)(l->text[i] - 'a' + 'A');
    return buf_printf(&r->out, "%d[%s];", l->line, l->text) != 0;
}

static void test_copy(void **state)
{
    (void)state;
    static const char text[] = "ab\n  cd\n#x\nef";
    char before[sizeof(text)];
    memcpy(before, text, sizeof(text));
    struct record r = { .stop_at = NULL };
    buf_init(&r.out, 4096);
    const struct line_source src = {
        .max_len = NO_LIMIT, .flags = 0, .fn = upcase_line, .ctx = &r,
    };
    assert_int_equal(line_source_parse_copy(&src, text, strlen(text)), 0);
    assert_string_equal(buf_cstr(&r.out), "1[AB CD];4[EF];");
    assert_memory_equal(text, before, sizeof(text));
    assert_int_equal(line_source_parse_copy(&src, NULL, 0), 0);
    buf_free(&r.out);
}

/* ---------------------------------------------------------------------
 * Files.
 */

struct fixture {
    struct buf dir;
    struct buf path;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    buf_init(&f->dir, PATH_MAX);
    buf_init(&f->path, PATH_MAX);
    const char *tmp = getenv("TMPDIR");
    if (buf_printf(&f->dir, "%s/test_line_source.XXXXXX",
                   tmp && tmp[0] ? tmp : "/tmp") != 0 ||
        mkdtemp(f->dir.data) == NULL ||
        buf_printf(&f->path, "%s/file", f->dir.data) != 0)
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
    free(f);
    return 0;
}

static void write_file(struct fixture *f, const char *text, size_t len)
{
    int fd = open(buf_cstr(&f->path), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                  0600);
    assert_true(fd >= 0);
    assert_int_equal(safe_file_write_all(fd, text, len), 0);
    assert_int_equal(close(fd), 0);
}

static void test_file(void **state)
{
    struct fixture *f = *state;
    static const char text[] = "# head\nname = a,\n  b\r\n\nother = c";
    write_file(f, text, sizeof(text) - 1);
    struct buf data;
    assert_int_equal(line_source_read_file(buf_cstr(&f->path), 1000, &data),
                     0);
    assert_int_equal(data.len, sizeof(text) - 1);
    assert_memory_equal(data.data, text, data.len);
    struct record r = { .stop_at = NULL };
    buf_init(&r.out, 4096);
    const struct line_source src = {
        .max_len = NO_LIMIT, .flags = 0, .fn = record_line, .ctx = &r,
    };
    assert_int_equal(line_source_parse(&src, data.data, data.len), 0);
    assert_string_equal(buf_cstr(&r.out), "2[name = a, b];5[other = c];");
    buf_free(&r.out);
    buf_free(&data);
}

static void test_file_empty(void **state)
{
    struct fixture *f = *state;
    write_file(f, "", 0);
    struct buf data;
    assert_int_equal(line_source_read_file(buf_cstr(&f->path), 1000, &data),
                     0);
    assert_int_equal(data.len, 0);
    struct record r = { .stop_at = NULL };
    buf_init(&r.out, 4096);
    const struct line_source src = {
        .max_len = NO_LIMIT, .flags = 0, .fn = record_line, .ctx = &r,
    };
    assert_int_equal(line_source_parse(&src, data.data, data.len), 0);
    assert_string_equal(buf_cstr(&r.out), "");
    buf_free(&r.out);
    buf_free(&data);
}

static void test_file_errors(void **state)
{
    struct fixture *f = *state;
    struct buf data;
    assert_int_equal(line_source_read_file(buf_cstr(&f->path), 1000, &data),
                     -1);
    assert_int_equal(errno, ENOENT);
    buf_free(&data);
    write_file(f, "0123456789", 10);
    assert_int_equal(line_source_read_file(buf_cstr(&f->path), 10, &data), 0);
    assert_int_equal(data.len, 10);
    buf_free(&data);
    assert_int_equal(line_source_read_file(buf_cstr(&f->path), 9, &data), -1);
    assert_int_equal(errno, EFBIG);
    buf_free(&data);
    assert_int_equal(line_source_read_file(buf_cstr(&f->dir), 1000, &data),
                     -1);
    assert_int_equal(errno, EISDIR);
    buf_free(&data);
}

/* A larger file, read straight into the buffer: every line comes back
 * with its number. */
static int count_line(void *ctx, const struct line_source_line *l)
{
    int *count = ctx;
    return l->problem != LINE_SOURCE_OK || ++*count != l->line;
}

static void test_file_many_lines(void **state)
{
    struct fixture *f = *state;
    struct buf text;
    buf_init(&text, BUF_LIMIT_MAX);
    for (int i = 0; i < 100000; i++)
        assert_int_equal(buf_printf(&text, "key%d value%d\n", i, i), 0);
    write_file(f, text.data, text.len);
    struct buf data;
    assert_int_equal(line_source_read_file(buf_cstr(&f->path), BUF_LIMIT_MAX,
                                           &data), 0);
    assert_int_equal(data.len, text.len);
    assert_memory_equal(data.data, text.data, text.len);
    int count = 0;
    const struct line_source src = {
        .max_len = NO_LIMIT, .flags = 0, .fn = count_line, .ctx = &count,
    };
    assert_int_equal(line_source_parse(&src, data.data, data.len), 0);
    assert_int_equal(count, 100000);
    buf_free(&data);
    buf_free(&text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_stop),
        cmocka_unit_test(test_copy),
        cmocka_unit_test_setup_teardown(test_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_many_lines, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
