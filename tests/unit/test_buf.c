/*
 * test_buf - unit tests for lib/buf (the bounded byte buffer).
 *
 * Checks the limit (an append exactly up to it works, one byte more fails
 * with EMSGSIZE and leaves the buffer as it was), the trailing NUL after
 * every operation, embedded NUL bytes, buf_printf on both sides of its
 * internal 256-byte buffer, and consume, truncate, set and reset.
 *
 * Run: build/<cc>/tests/test_buf (no arguments, no files, no privileges).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "log.h"

/* Bytes 'a'..'z' over and over, so that a misplaced byte shows. */
static void fill_pattern(char *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (char)('a' + i % 26);
}

/* Every buffer that holds data is NUL-terminated right after len. */
static void assert_terminated(const struct buf *b)
{
    assert_true(b->len <= b->limit);
    if (b->data == NULL) {
        assert_int_equal(b->len, 0);
        assert_string_equal(buf_cstr(b), "");
        return;
    }
    assert_true(b->len < b->cap);
    assert_int_equal(b->data[b->len], '\0');
}

static void assert_contents(const struct buf *b, const void *data, size_t n)
{
    assert_int_equal(b->len, n);
    if (n > 0)
        assert_memory_equal(b->data, data, n);
    assert_terminated(b);
}

static void test_unused_buffer(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 100);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.limit, 100);
    assert_string_equal(buf_cstr(&b), "");
    buf_reset(&b);
    buf_truncate(&b, 0);
    buf_truncate(&b, 5);
    buf_consume(&b, 0);
    buf_consume(&b, 3);
    assert_string_equal(buf_cstr(&b), "");
    assert_int_equal(b.len, 0);
    buf_free(&b);
    buf_free(&b); /* twice is harmless */
    assert_string_equal(buf_cstr(&b), "");
}

static void test_append_empty(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 0);
    assert_int_equal(buf_append(&b, "", 0), 0);
    assert_contents(&b, "", 0);
    assert_string_equal(buf_cstr(&b), "");
    errno = 0;
    assert_int_equal(buf_append_char(&b, 'x'), -1);
    assert_int_equal(errno, EMSGSIZE);
    assert_contents(&b, "", 0);
    buf_free(&b);
}

/* Appending up to the limit in chunks of chunk bytes, then one more. */
struct limit_case {
    size_t limit;
    size_t chunk;
};

static const struct limit_case limit_cases[] = {
    { 1, 1 },    { 2, 1 },     { 10, 3 },    { 63, 63 },  { 64, 64 },
    { 65, 65 },  { 65, 1 },    { 127, 50 },  { 128, 128 }, { 255, 17 },
    { 256, 256 }, { 1000, 7 }, { 4096, 4096 }, { 5000, 999 },
};

static void check_limit_case(const struct limit_case *c)
{
    char data[5000];
    assert_true(c->limit <= sizeof(data));
    fill_pattern(data, c->limit);
    struct buf b;
    buf_init(&b, c->limit);
    for (size_t done = 0; done < c->limit;) {
        size_t n = c->limit - done < c->chunk ? c->limit - done : c->chunk;
        assert_int_equal(buf_append(&b, data + done, n), 0);
        done += n;
        assert_contents(&b, data, done);
    }
    assert_true(b.cap <= c->limit + 1);

    char *before = b.data;
    errno = 0;
    assert_int_equal(buf_append(&b, "z", 1), -1);
    assert_int_equal(errno, EMSGSIZE);
    errno = 0;
    assert_int_equal(buf_append_char(&b, 'z'), -1);
    assert_int_equal(errno, EMSGSIZE);
    errno = 0;
    assert_int_equal(buf_append_str(&b, "zz"), -1);
    assert_int_equal(errno, EMSGSIZE);
    errno = 0;
    assert_int_equal(buf_printf(&b, "%c", 'z'), -1);
    assert_int_equal(errno, EMSGSIZE);
    errno = 0;
    assert_int_equal(buf_reserve(&b, 1), -1);
    assert_int_equal(errno, EMSGSIZE);
    assert_ptr_equal(b.data, before);
    assert_contents(&b, data, c->limit);

    /* An empty append still works at the limit. */
    assert_int_equal(buf_append(&b, "", 0), 0);
    assert_int_equal(buf_reserve(&b, 0), 0);
    assert_contents(&b, data, c->limit);
    buf_free(&b);
}

static void test_limits(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(limit_cases) / sizeof(limit_cases[0]); i++)
        check_limit_case(&limit_cases[i]);
}

/* One append that passes the limit by itself fails as a whole. */
static void test_append_over_limit_at_once(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 8);
    assert_int_equal(buf_append_str(&b, "abc"), 0);
    errno = 0;
    assert_int_equal(buf_append_str(&b, "defghi"), -1);
    assert_int_equal(errno, EMSGSIZE);
    assert_contents(&b, "abc", 3);
    assert_int_equal(buf_append_str(&b, "defgh"), 0);
    assert_contents(&b, "abcdefgh", 8);
    buf_free(&b);
}

/* A limit of SIZE_MAX (no limit at all) must not overflow the sizes. */
static void test_limit_size_max(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, SIZE_MAX);
    assert_int_equal(buf_append_str(&b, "hello"), 0);
    assert_contents(&b, "hello", 5);
    assert_true(b.cap >= 6);
    errno = 0;
    assert_int_equal(buf_reserve(&b, SIZE_MAX), -1);
    assert_int_equal(errno, EMSGSIZE);
    buf_free(&b);

    buf_init(&b, SIZE_MAX);
    errno = 0;
    assert_int_equal(buf_reserve(&b, SIZE_MAX), -1); /* no room for NUL */
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

static void test_reserve(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 1000);
    assert_int_equal(buf_reserve(&b, 500), 0);
    assert_non_null(b.data);
    assert_true(b.cap >= 501);
    assert_int_equal(b.len, 0);
    assert_string_equal(buf_cstr(&b), "");
    assert_int_equal(buf_reserve(&b, 1000), 0);
    assert_int_equal(b.cap, 1001);
    errno = 0;
    assert_int_equal(buf_reserve(&b, 1001), -1);
    assert_int_equal(errno, EMSGSIZE);
    buf_free(&b);
}

static void test_embedded_nul(void **state)
{
    (void)state;
    static const char data[] = { 'a', '\0', 'b', '\0', '\0', 'c' };
    struct buf b;
    buf_init(&b, 100);
    assert_int_equal(buf_append(&b, data, sizeof(data)), 0);
    assert_contents(&b, data, sizeof(data));
    assert_string_equal(buf_cstr(&b), "a");
    assert_int_equal(buf_append_char(&b, '\0'), 0);
    assert_int_equal(b.len, sizeof(data) + 1);
    assert_int_equal(buf_append_str(&b, "xyz"), 0);
    assert_int_equal(b.len, sizeof(data) + 4);
    assert_memory_equal(b.data + sizeof(data), "\0xyz", 5);
    buf_consume(&b, 0);
    assert_contents(&b, "a\0b\0\0c\0xyz", 10);
    buf_consume(&b, 2);
    assert_contents(&b, "b\0\0c\0xyz", 8);
    assert_int_equal(buf_set(&b, data, sizeof(data)), 0);
    assert_contents(&b, data, sizeof(data));
    buf_free(&b);
}

/* buf_printf against snprintf, for outputs on both sides of 256 bytes. */
static void test_printf_sizes(void **state)
{
    (void)state;
    static const size_t widths[] = { 0, 1, 100, 254, 255, 256, 257, 300,
                                     1000, 4000 };
    for (size_t i = 0; i < sizeof(widths) / sizeof(widths[0]); i++) {
        char expect[4200];
        int n = snprintf(expect, sizeof(expect), "<%0*d>", (int)widths[i], 7);
        assert_true(n > 0 && (size_t)n < sizeof(expect));
        struct buf b;
        buf_init(&b, 5000);
        assert_int_equal(buf_append_str(&b, "pre"), 0);
        assert_int_equal(buf_printf(&b, "<%0*d>", (int)widths[i], 7), 0);
        assert_int_equal(b.len, 3 + (size_t)n);
        assert_memory_equal(b.data, "pre", 3);
        assert_memory_equal(b.data + 3, expect, (size_t)n);
        assert_terminated(&b);
        buf_free(&b);
    }
}

static void test_printf_growth(void **state)
{
    (void)state;
    char big[2000];
    fill_pattern(big, sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    struct buf b;
    buf_init(&b, 10000);
    for (int i = 0; i < 4; i++)
        assert_int_equal(buf_printf(&b, "%d:%s;", i, big), 0);
    assert_int_equal(b.len, 4 * (2 + 1999 + 1));
    assert_memory_equal(b.data + 2, big, 1999);
    assert_memory_equal(b.data + 2002 + 2, big, 1999);
    assert_int_equal(b.data[b.len - 1], ';');
    assert_terminated(&b);
    buf_free(&b);
}

/* Over the limit, through the short path and through the long one. */
struct printf_limit_case {
    size_t limit;
    size_t prefix;
    int width;
    int rc;
};

static const struct printf_limit_case printf_limit_cases[] = {
    { 10, 0, 10, 0 },    { 10, 0, 11, -1 },   { 10, 5, 5, 0 },
    { 10, 5, 6, -1 },    { 300, 0, 300, 0 },  { 300, 0, 301, -1 },
    { 300, 100, 200, 0 }, { 300, 100, 201, -1 }, { 300, 299, 1, 0 },
    { 300, 299, 2, -1 }, { 3000, 10, 2990, 0 }, { 3000, 10, 2991, -1 },
};

static void check_printf_limit(const struct printf_limit_case *c)
{
    char prefix[3000];
    fill_pattern(prefix, c->prefix);
    struct buf b;
    buf_init(&b, c->limit);
    assert_int_equal(buf_append(&b, prefix, c->prefix), 0);
    errno = 0;
    int rc = buf_printf(&b, "%0*d", c->width, 0);
    assert_int_equal(rc, c->rc);
    if (rc == 0) {
        assert_int_equal(b.len, c->prefix + (size_t)c->width);
        assert_int_equal(b.data[b.len - 1], '0');
        assert_terminated(&b);
    } else {
        assert_int_equal(errno, EMSGSIZE);
        assert_contents(&b, prefix, c->prefix);
    }
    buf_free(&b);
}

static void test_printf_limit(void **state)
{
    (void)state;
    size_t n = sizeof(printf_limit_cases) / sizeof(printf_limit_cases[0]);
    for (size_t i = 0; i < n; i++)
        check_printf_limit(&printf_limit_cases[i]);
}

struct consume_case {
    size_t n;
    const char *left;
};

static const struct consume_case consume_cases[] = {
    { 0, "hello world" }, { 1, "ello world" }, { 6, "world" },
    { 10, "d" },          { 11, "" },          { 12, "" },
    { SIZE_MAX, "" },
};

static void test_consume(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(consume_cases) / sizeof(consume_cases[0]);
         i++) {
        struct buf b;
        buf_init(&b, 100);
        assert_int_equal(buf_append_str(&b, "hello world"), 0);
        buf_consume(&b, consume_cases[i].n);
        assert_contents(&b, consume_cases[i].left,
                        strlen(consume_cases[i].left));
        assert_int_equal(buf_append_str(&b, "!"), 0);
        assert_int_equal(b.len, strlen(consume_cases[i].left) + 1);
        buf_free(&b);
    }
}

struct truncate_case {
    size_t len;
    const char *left;
};

static const struct truncate_case truncate_cases[] = {
    { 0, "" },      { 1, "h" },        { 5, "hello" },
    { 11, "hello world" }, { 12, "hello world" }, { SIZE_MAX, "hello world" },
};

static void test_truncate(void **state)
{
    (void)state;
    for (size_t i = 0;
         i < sizeof(truncate_cases) / sizeof(truncate_cases[0]); i++) {
        struct buf b;
        buf_init(&b, 100);
        assert_int_equal(buf_append_str(&b, "hello world"), 0);
        buf_truncate(&b, truncate_cases[i].len);
        assert_contents(&b, truncate_cases[i].left,
                        strlen(truncate_cases[i].left));
        buf_free(&b);
    }
}

static void test_set(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 10);
    assert_int_equal(buf_set_str(&b, "first"), 0);
    assert_contents(&b, "first", 5);
    assert_int_equal(buf_set_str(&b, "2nd"), 0);
    assert_contents(&b, "2nd", 3);
    assert_int_equal(buf_set(&b, "0123456789", 10), 0);
    assert_contents(&b, "0123456789", 10);
    errno = 0;
    assert_int_equal(buf_set_str(&b, "0123456789A"), -1);
    assert_int_equal(errno, EMSGSIZE);
    assert_contents(&b, "0123456789", 10);
    assert_int_equal(buf_set(&b, "", 0), 0);
    assert_contents(&b, "", 0);
    buf_free(&b);

    buf_init(&b, 10); /* on an unused buffer */
    assert_int_equal(buf_set_str(&b, "x"), 0);
    assert_contents(&b, "x", 1);
    buf_free(&b);
}

/* buf_set() from the buffer's own bytes: keeping a suffix, or itself. */
static void test_set_from_itself(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 100);
    assert_int_equal(buf_set_str(&b, "hello world"), 0);
    assert_int_equal(buf_set(&b, b.data, b.len), 0);
    assert_contents(&b, "hello world", 11);
    assert_int_equal(buf_set(&b, b.data + 6, b.len - 6), 0);
    assert_contents(&b, "world", 5);
    assert_int_equal(buf_set(&b, b.data, 3), 0);
    assert_contents(&b, "wor", 3);
    buf_free(&b);
}

static void test_reset(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 100);
    assert_int_equal(buf_append_str(&b, "some text"), 0);
    size_t cap = b.cap;
    buf_reset(&b);
    assert_contents(&b, "", 0);
    assert_string_equal(buf_cstr(&b), "");
    assert_int_equal(b.cap, cap);
    assert_int_equal(b.limit, 100);
    assert_int_equal(buf_append_str(&b, "again"), 0);
    assert_contents(&b, "again", 5);
    buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.limit, 100);
    assert_int_equal(buf_append_str(&b, "after free"), 0);
    assert_contents(&b, "after free", 10);
    buf_free(&b);
}

int main(void)
{
    log_init("test", 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unused_buffer),
        cmocka_unit_test(test_append_empty),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_append_over_limit_at_once),
        cmocka_unit_test(test_limit_size_max),
        cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_embedded_nul),
        cmocka_unit_test(test_printf_sizes),
        cmocka_unit_test(test_printf_growth),
        cmocka_unit_test(test_printf_limit),
        cmocka_unit_test(test_consume),
        cmocka_unit_test(test_truncate),
        cmocka_unit_test(test_set),
        cmocka_unit_test(test_set_from_itself),
        cmocka_unit_test(test_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
