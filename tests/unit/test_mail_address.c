/*
 * Unit tests for lib/mail_address: RFC 5322 address lists as To:, Cc: and
 * Bcc: hold them, table-driven.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "buf.h"
#include "mail_address.h"

struct address_case {
    const char *value;
    const char *addresses; /* joined with '|' */
};

static int collect(void *ctx, const char *address)
{
    struct buf *out = ctx;
    if (out->len > 0)
        buf_append_char(out, '|');
    buf_append_str(out, address);
    return 0;
}

static int stop_after_first(void *ctx, const char *address)
{
    collect(ctx, address);
    return 7;
}

static void test_address_lists(void **state)
{
    (void)state;
    static const struct address_case cases[] = {
        { "a@example.org", "a@example.org" },
        { "a@example.org, b@example.org", "a@example.org|b@example.org" },
        { "a@example.org,,b@example.org", "a@example.org|b@example.org" },
        { "Joe Q. Public <joe@example.com>", "joe@example.com" },
        { "\"Doe, John\" <john@example.org>, x@example.org",
          "john@example.org|x@example.org" },
        { "joe@example.com (Joe Public)", "joe@example.com" },
        { "(a (nested) comment) joe@example.com", "joe@example.com" },
        { "joe @ example . com", "joe@example.com" },
        { "\"odd local\"@example.com", "\"odd local\"@example.com" },
        { "\"quoted \\\" quote\"@example.com",
          "\"quoted \\\" quote\"@example.com" },
        { "user@[192.0.2.1]", "user@[192.0.2.1]" },
        { "<@relay.example,@r2.example:joe@example.org>", "joe@example.org" },
        { "team: a@example.org, B <b@example.org>;, c@example.org",
          "a@example.org|b@example.org|c@example.org" },
        { "undisclosed-recipients:;", "" },
        { "localuser", "localuser" },
        { "", "" },
        { "   ", "" },
        { "<>", "" },
        { "Unclosed \"quote <a@example.org>", "" },
        { "a@example.org (unclosed comment", "a@example.org" },
        { "a@example.org\n\t, b@example.org", "a@example.org|b@example.org" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf out;
        buf_init(&out, 4096);
        assert_int_equal(mail_address_list(cases[i].value,
                                           strlen(cases[i].value), collect,
                                           &out), 0);
        if (strcmp(buf_cstr(&out), cases[i].addresses) != 0)
            fail_msg("case %zu \"%s\": got \"%s\", expected \"%s\"", i,
                     cases[i].value, buf_cstr(&out), cases[i].addresses);
        buf_free(&out);
    }
}

static void test_callback_stops_and_bounds(void **state)
{
    (void)state;
    struct buf out;
    buf_init(&out, 4096);
    const char *v = "a@example.org, b@example.org";
    assert_int_equal(mail_address_list(v, strlen(v), stop_after_first, &out),
                     7);
    assert_string_equal(buf_cstr(&out), "a@example.org");
    buf_reset(&out);
    /* An overlong address is skipped; the next one still comes. */
    struct buf long_list;
    buf_init(&long_list, 8192);
    for (int i = 0; i < MAIL_ADDRESS_MAX + 10; i++)
        buf_append_char(&long_list, 'x');
    buf_append_str(&long_list, "@example.org, ok@example.org");
    assert_int_equal(mail_address_list(long_list.data, long_list.len, collect,
                                       &out), 0);
    assert_string_equal(buf_cstr(&out), "ok@example.org");
    /* A NUL byte in the value is data, not the end. */
    buf_reset(&out);
    assert_int_equal(mail_address_list("a@x\0, b@y", 9, collect, &out), 0);
    buf_free(&long_list);
    buf_free(&out);
}

/* Each address with the text of its span: "address=text". */
static int collect_span(void *ctx, const char *address, size_t start,
                        size_t end)
{
    struct buf *out = ctx;
    if (out->len > 0)
        buf_append_char(out, '|');
    buf_printf(out, "%s=%zu-%zu", address, start, end);
    return 0;
}

static void test_address_spans(void **state)
{
    (void)state;
    static const struct address_case cases[] = {
        { "joe", "joe=0-3" },
        { "  joe  ", "joe=2-5" },
        { "Joe User <joe>", "joe=10-13" },
        { "joe (Joe User), ann@x.org", "joe=0-3|ann@x.org=16-25" },
        { "\"Doe, J\" <j@x> ,bob", "j@x=10-13|bob=16-19" },
        { "<@relay:joe>", "joe=8-11" },
        { "team: a, b;", "a=6-7|b=9-10" },
        { "joe (c) . smith", "joe.smith=0-15" },
        { "\"odd local\"", "\"odd local\"=0-11" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf out;
        buf_init(&out, 4096);
        assert_int_equal(mail_address_spans(cases[i].value,
                                            strlen(cases[i].value),
                                            collect_span, &out), 0);
        if (strcmp(buf_cstr(&out), cases[i].addresses) != 0)
            fail_msg("case %zu \"%s\": got \"%s\", expected \"%s\"", i,
                     cases[i].value, buf_cstr(&out), cases[i].addresses);
        buf_free(&out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_address_lists),
        cmocka_unit_test(test_address_spans),
        cmocka_unit_test(test_callback_stops_and_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
