/*
 * test_address_lookup - unit tests for tables/address_lookup (the order in
 * which an address's keys are tried).
 *
 * A recording table type, made here through table_driver.h, remembers
 * every key it is asked for and answers from a list of "key=value" pairs;
 * one key can be made to fail.  Covered: the order with and without
 * recipient_delimiter, several delimiter characters, local and non-local
 * domains, addresses without '@', the matched key, and that an error stops
 * the search.  One test runs over a real inline: table.
 *
 * Run: build/<cc>/tests/test_address_lookup
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "address_lookup.h"
#include "buf.h"
#include "table_driver.h"

struct recorder {
    const char *const *pairs; /* "key=value", NULL-terminated */
    const char *failing_key;  /* this lookup answers TABLE_ERROR */
    struct buf asked;         /* "key|key|..." */
};

static int recorder_lookup(struct table *t, const char *key, struct buf *value,
                           struct buf *error)
{
    struct recorder *r = t->state;
    assert_int_equal(buf_printf(&r->asked, "%s|", key), 0);
    if (r->failing_key && strcmp(key, r->failing_key) == 0) {
        (void)buf_append_str(error, "recorder: failed");
        return TABLE_ERROR;
    }
    size_t key_len = strlen(key);
    for (const char *const *p = r->pairs; *p; p++) {
        if (strncmp(*p, key, key_len) == 0 && (*p)[key_len] == '=')
            return buf_set_str(value, *p + key_len + 1) == 0 ? TABLE_FOUND
                                                              : TABLE_ERROR;
    }
    return TABLE_NOT_FOUND;
}

static const struct table_ops recorder_ops = {
    .type = "recorder",
    .open = NULL,
    .lookup = recorder_lookup,
    .iterate = NULL,
    .close = NULL,
};

struct fixture {
    struct recorder recorder;
    struct table table;
    struct buf value;
    struct buf matched;
    struct buf error;
};

static const char *const no_pairs[] = {NULL};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    f->recorder.pairs = no_pairs;
    buf_init(&f->recorder.asked, 65536);
    f->table.ops = &recorder_ops;
    f->table.spec = (char *)"recorder:test";
    f->table.name = (char *)"test";
    f->table.state = &f->recorder;
    buf_init(&f->value, 4096);
    buf_init(&f->matched, 4096);
    buf_init(&f->error, 4096);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    buf_free(&f->recorder.asked);
    buf_free(&f->value);
    buf_free(&f->matched);
    buf_free(&f->error);
    free(f);
    return 0;
}

/* Looks address up and checks the result and the keys asked, in order. */
static void expect_keys(struct fixture *f, const char *address,
                        const char *delimiters, int local, int result,
                        const char *asked)
{
    buf_reset(&f->recorder.asked);
    buf_reset(&f->matched);
    buf_reset(&f->error);
    assert_int_equal(address_lookup(&f->table, address, delimiters, local,
                                    &f->value, &f->matched, &f->error),
                     result);
    assert_string_equal(buf_cstr(&f->recorder.asked), asked);
}

static void test_order_with_delimiter(void **state)
{
    struct fixture *f = *state;
    expect_keys(f, "user+ext@example.com", "+", 0, TABLE_NOT_FOUND,
                "user+ext@example.com|user@example.com|@example.com|");
    expect_keys(f, "user+ext@example.com", "+", 1, TABLE_NOT_FOUND,
                "user+ext@example.com|user@example.com|user+ext|user|"
                "@example.com|");
    /* No extension in the address: each key once. */
    expect_keys(f, "user@example.com", "+", 1, TABLE_NOT_FOUND,
                "user@example.com|user|@example.com|");
    /* Several delimiter characters: the first one found splits. */
    expect_keys(f, "a-b+c@d", "+-", 1, TABLE_NOT_FOUND,
                "a-b+c@d|a@d|a-b+c|a|@d|");
    /* A local part starting with the delimiter is not split. */
    expect_keys(f, "+x@d", "+", 0, TABLE_NOT_FOUND, "+x@d|@d|");
}

static void test_order_without_delimiter(void **state)
{
    struct fixture *f = *state;
    expect_keys(f, "user+ext@example.com", NULL, 0, TABLE_NOT_FOUND,
                "user+ext@example.com|@example.com|");
    expect_keys(f, "user+ext@example.com", "", 1, TABLE_NOT_FOUND,
                "user+ext@example.com|user+ext|@example.com|");
    expect_keys(f, "user@example.com", NULL, 1, TABLE_NOT_FOUND,
                "user@example.com|user|@example.com|");
}

static void test_local_part_only(void **state)
{
    struct fixture *f = *state;
    expect_keys(f, "user+ext", "+", 0, TABLE_NOT_FOUND, "user+ext|user|");
    expect_keys(f, "user", "+", 1, TABLE_NOT_FOUND, "user|");
    expect_keys(f, "user+ext", NULL, 0, TABLE_NOT_FOUND, "user+ext|");
    expect_keys(f, "", "+", 1, TABLE_NOT_FOUND, "");
    /* The domain starts after the last '@'. */
    expect_keys(f, "a@b@c", NULL, 0, TABLE_NOT_FOUND, "a@b@c|@c|");
}

static void test_first_match_wins(void **state)
{
    struct fixture *f = *state;
    static const char *const pairs[] = {
        "user@example.com=exact",
        "user=local",
        "@example.com=catchall",
        NULL,
    };
    f->recorder.pairs = pairs;
    expect_keys(f, "user+ext@example.com", "+", 1, TABLE_FOUND,
                "user+ext@example.com|user@example.com|");
    assert_string_equal(buf_cstr(&f->value), "exact");
    assert_string_equal(buf_cstr(&f->matched), "user@example.com");

    expect_keys(f, "user+ext@other.example", "+", 1, TABLE_FOUND,
                "user+ext@other.example|user@other.example|user+ext|user|");
    assert_string_equal(buf_cstr(&f->value), "local");
    assert_string_equal(buf_cstr(&f->matched), "user");

    expect_keys(f, "else@example.com", "+", 0, TABLE_FOUND,
                "else@example.com|@example.com|");
    assert_string_equal(buf_cstr(&f->value), "catchall");
    assert_string_equal(buf_cstr(&f->matched), "@example.com");

    /* matched_key may be NULL. */
    assert_int_equal(address_lookup(&f->table, "user@example.com", "+", 0,
                                    &f->value, NULL, &f->error),
                     TABLE_FOUND);
}

static void test_error_stops(void **state)
{
    struct fixture *f = *state;
    static const char *const pairs[] = {"@example.com=catchall", NULL};
    f->recorder.pairs = pairs;
    f->recorder.failing_key = "user@example.com";
    expect_keys(f, "user+ext@example.com", "+", 1, TABLE_ERROR,
                "user+ext@example.com|user@example.com|");
    assert_string_equal(buf_cstr(&f->error), "recorder: failed");
    f->recorder.failing_key = "user+ext@example.com";
    expect_keys(f, "user+ext@example.com", "+", 1, TABLE_ERROR,
                "user+ext@example.com|");
    f->recorder.failing_key = "user";
    expect_keys(f, "user+ext@example.com", "+", 1, TABLE_ERROR,
                "user+ext@example.com|user@example.com|user+ext|user|");
}

static void test_too_long(void **state)
{
    struct fixture *f = *state;
    char address[TABLE_KEY_MAX + 20];
    memset(address, 'a', sizeof(address) - 1);
    address[sizeof(address) - 1] = '\0';
    address[TABLE_KEY_MAX + 5] = '@';
    expect_keys(f, address, "+", 0, TABLE_ERROR, "");
    assert_true(f->error.len > 0);
}

static void test_real_table(void **state)
{
    struct fixture *f = *state;
    struct table *t = table_open(
        "inline:{ Joe@Example.com = joe, @example.com = catchall }", 0,
        &f->error);
    assert_non_null(t);
    assert_int_equal(address_lookup(t, "JOE+news@EXAMPLE.COM", "+", 0,
                                    &f->value, &f->matched, &f->error),
                     TABLE_FOUND);
    assert_string_equal(buf_cstr(&f->value), "joe");
    assert_string_equal(buf_cstr(&f->matched), "JOE@EXAMPLE.COM");
    assert_int_equal(address_lookup(t, "ann@example.com", "+", 0, &f->value,
                                    &f->matched, &f->error),
                     TABLE_FOUND);
    assert_string_equal(buf_cstr(&f->value), "catchall");
    assert_int_equal(address_lookup(t, "ann@example.net", "+", 0, &f->value,
                                    &f->matched, &f->error),
                     TABLE_NOT_FOUND);
    table_close(t);
}

int main(void)
{
#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        TEST(test_order_with_delimiter),
        TEST(test_order_without_delimiter),
        TEST(test_local_part_only),
        TEST(test_first_match_wins),
        TEST(test_error_stops),
        TEST(test_too_long),
        TEST(test_real_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
