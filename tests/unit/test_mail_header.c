/*
 * Unit tests for lib/mail_header: which lines start and continue header
 * fields, names, values, unfolding, the date format and the Received:
 * field, table-driven.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "mail_header.h"

struct line_case {
    const char *line;
    int starts;
    int continues;
    size_t name_len;
};

static void test_line_kinds(void **state)
{
    (void)state;
    static const struct line_case cases[] = {
        { "Subject: hi\n", 1, 0, 7 },
        { "Subject:hi\n", 1, 0, 7 },
        { "Subject :hi\n", 1, 0, 7 },      /* obsolete: space before colon */
        { "X-A.b_c/d: v\n", 1, 0, 9 },
        { "From a@b Tue Dec 1\n", 0, 0, 0 }, /* mbox From_ line: no colon */
        { ": no name\n", 0, 0, 0 },
        { " continued\n", 0, 1, 0 },
        { "\tcontinued\n", 0, 1, 0 },
        { "\n", 0, 0, 0 },
        { "body text\n", 0, 0, 0 },
        { "Na\x7fme: x\n", 0, 0, 0 },      /* DEL is not ftext */
        { "Name", 0, 0, 0 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct line_case *c = &cases[i];
        size_t len = strlen(c->line);
        assert_int_equal(mail_header_starts(c->line, len), c->starts);
        assert_int_equal(mail_header_continues(c->line, len), c->continues);
        assert_int_equal(mail_header_name_len(c->line, len), c->name_len);
    }
}

static void test_names_and_values(void **state)
{
    (void)state;
    const char *f = "message-id:   <a@b>\n";
    assert_true(mail_header_name_is(f, strlen(f), "Message-ID"));
    assert_false(mail_header_name_is(f, strlen(f), "Message"));
    assert_false(mail_header_name_is(f, strlen(f), "Message-IDs"));
    size_t n;
    const char *v = mail_header_value(f, strlen(f), &n);
    assert_int_equal(n, 5);
    assert_memory_equal(v, "<a@b>", 5);
    const char *folded = "To:\n a@b,\n\tc@d\n";
    v = mail_header_value(folded, strlen(folded), &n);
    assert_int_equal(n, strlen("a@b,\n\tc@d"));
    const char *empty = "Subject:\n";
    v = mail_header_value(empty, strlen(empty), &n);
    assert_int_equal(n, 0);
}

struct unfold_case {
    const char *in;
    const char *out;
};

static void test_unfold(void **state)
{
    (void)state;
    static const struct unfold_case cases[] = {
        { "Subject: a\n", "Subject: a" },
        { "Subject: a\n b\n", "Subject: a b" },
        { "Subject: a\n\tb\n  c\n", "Subject: a\tb  c" },
        { "Subject: a\r\n b\r\n", "Subject: a b" },
        { "Subject: no newline", "Subject: no newline" },
        { "X:\n\n", "X:" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf out;
        buf_init(&out, 1000);
        assert_int_equal(mail_header_unfold(cases[i].in, strlen(cases[i].in),
                                            &out), 0);
        assert_string_equal(buf_cstr(&out), cases[i].out);
        buf_free(&out);
    }
    struct buf small;
    buf_init(&small, 4);
    assert_int_equal(mail_header_unfold("Subject: x\n", 11, &small), -1);
    buf_free(&small);
}

struct date_case {
    const char *tz;
    time_t t;
    const char *out;
};

static void test_date_format(void **state)
{
    (void)state;
    static const struct date_case cases[] = {
        { "UTC0", 0, "Thu, 1 Jan 1970 00:00:00 +0000" },
        { "UTC0", 1796157767, "Tue, 1 Dec 2026 20:42:47 +0000" },
        { "XYZ-1", 1796157767, "Tue, 1 Dec 2026 21:42:47 +0100" },
        { "ABC+5:30", 1796157767, "Tue, 1 Dec 2026 15:12:47 -0530" },
        { "UTC0", 951782400, "Tue, 29 Feb 2000 00:00:00 +0000" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        setenv("TZ", cases[i].tz, 1);
        tzset();
        struct buf out;
        buf_init(&out, 100);
        assert_int_equal(mail_date_format(cases[i].t, &out), 0);
        assert_string_equal(buf_cstr(&out), cases[i].out);
        buf_free(&out);
    }
    setenv("TZ", "UTC0", 1);
    tzset();
}

struct received_case {
    struct mail_received in;
    const char *out;
};

static void test_received(void **state)
{
    (void)state;
    setenv("TZ", "UTC0", 1);
    tzset();
    const time_t t = 1796157767;
    static const char date[] = "Tue, 1 Dec 2026 20:42:47 +0000";
    const struct received_case cases[] = {
        { { .helo_name = "helo.example", .client_name = "c.example",
            .client_address = "192.0.2.1", .by_host = "mx.example",
            .mail_name = "Postino", .protocol = "ESMTP", .queue_id = "ABC123",
            .recipient = "r@example.org", .date = t },
          "Received: from helo.example (c.example [192.0.2.1])\n"
          "\tby mx.example (Postino) with ESMTP id ABC123\n"
          "\tfor <r@example.org>; %s\n" },
        { { .client_address = "2001:db8::1", .by_host = "mx.example",
            .mail_name = "Postino", .protocol = "ESMTPSA",
            .queue_id = "ABC123", .sasl_username = "joe",
            .tls = "TLSv1.3 with cipher X (256/256 bits)", .date = t },
          "Received: from unknown (unknown [2001:db8::1])\n"
          "\t(using TLSv1.3 with cipher X (256/256 bits))\n"
          "\t(Authenticated sender: joe)\n"
          "\tby mx.example (Postino) with ESMTPSA id ABC123;\n"
          "\t%s\n" },
        { { .helo_name = "h", .client_name = "n", .client_address = "a",
            .by_host = "b", .mail_name = "M", .queue_id = "Q", .date = t },
          "Received: from h (n [a])\n\tby b (M) with SMTP id Q;\n\t%s\n" },
        { { .by_host = "mx.example", .mail_name = "Postino",
            .local_user = "1000", .queue_id = "ABC123",
            .recipient = "r@example.org", .date = t },
          "Received: by mx.example (Postino, from userid 1000)\n"
          "\tid ABC123; %s\n" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf out, expected;
        buf_init(&out, 4096);
        buf_init(&expected, 4096);
        assert_int_equal(buf_printf(&expected, cases[i].out, date), 0);
        assert_int_equal(mail_received_format(&cases[i].in, &out), 0);
        assert_string_equal(buf_cstr(&out), buf_cstr(&expected));
        buf_free(&out);
        buf_free(&expected);
    }
}

struct boundary_case {
    const char *field;
    int found;
    const char *boundary;
};

static void test_mime_fields_and_boundaries(void **state)
{
    (void)state;
    assert_true(mail_header_is_mime("MIME-Version: 1.0\n", 18));
    assert_true(mail_header_is_mime("content-type: text/plain\n", 25));
    assert_false(mail_header_is_mime("Content-: x\n", 12));
    assert_false(mail_header_is_mime("Subject: Content-Type\n", 22));
    static const struct boundary_case cases[] = {
        { "Content-Type: multipart/mixed; boundary=abc\n", 1, "abc" },
        { "Content-Type: Multipart/Alternative;\n boundary=\"a b;c\"\n", 1,
          "a b;c" },
        { "Content-Type: multipart/mixed; charset=x; BOUNDARY = \"q\\\"x\"\n",
          1, "q\"x" },
        { "Content-Type: (comment) multipart/related; boundary=z (c)\n", 1,
          "z" },
        { "Content-Type: text/plain; boundary=abc\n", 0, NULL },
        { "Content-Type: multipart/mixed\n", 0, NULL },
        { "Content-Type: multipart/mixed; boundary=\n", 0, NULL },
        { "Content-Type: multipart/mixed; boundary=\"\"\n", 0, NULL },
        { "Content-Disposition: multipart/mixed; boundary=abc\n", 0, NULL },
        { "Content-Type: multipart/mixed; name=\"boundary=no\"\n", 0, NULL },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf b;
        buf_init(&b, MAIL_BOUNDARY_MAX);
        int found = mail_header_boundary(cases[i].field,
                                         strlen(cases[i].field), &b);
        if (found != cases[i].found)
            fail_msg("case %zu: found %d", i, found);
        if (found)
            assert_string_equal(buf_cstr(&b), cases[i].boundary);
        buf_free(&b);
    }
    /* A boundary over the limit is none. */
    struct buf field, b;
    buf_init(&field, 4096);
    buf_init(&b, MAIL_BOUNDARY_MAX);
    buf_append_str(&field, "Content-Type: multipart/mixed; boundary=");
    for (int i = 0; i < MAIL_BOUNDARY_MAX + 1; i++)
        buf_append_char(&field, 'x');
    assert_int_equal(mail_header_boundary(field.data, field.len, &b), 0);
    buf_free(&field);
    buf_free(&b);
}

static void test_attached_message_type(void **state)
{
    (void)state;
    static const struct { const char *field; int message; } cases[] = {
        { "Content-Type: message/rfc822\n", 1 },
        { "content-type:MESSAGE/RFC822; x=y\n", 1 },
        { "Content-Type: (comment) message/rfc822 (another)\n", 1 },
        { "Content-Type: message/global\n", 1 },
        { "Content-Type: message/rfc822x\n", 0 },
        { "Content-Type: message/partial; id=1\n", 0 },
        { "Content-Type: text/plain\n", 0 },
        { "X-Type: message/rfc822\n", 0 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (mail_header_is_message(cases[i].field, strlen(cases[i].field)) !=
            cases[i].message)
            fail_msg("case %zu: %s", i, cases[i].field);
}

struct phrase_case {
    const char *name;
    int utf8_ok;
    const char *expected; /* NULL: refused */
};

static void test_display_names(void **state)
{
    (void)state;
    static const struct phrase_case cases[] = {
        { "Alice Example", 0, "Alice Example" },
        { "  Alice  ", 0, "Alice" },
        { "Joe Q. Public", 0, "\"Joe Q. Public\"" },
        { "Doe, John", 0, "\"Doe, John\"" },
        { "say \"hi\" \\o/", 0, "\"say \\\"hi\\\" \\\\o/\"" },
        { "=?UTF-8?B?eA==?=", 0, "\"=?UTF-8?B?eA==?=\"" },
        { "J\xc3\xb6rg", 0, "=?UTF-8?B?SsO2cmc=?=" },
        { "J\xc3\xb6rg", 1, "J\xc3\xb6rg" },
        { "J\xc3\xb6rg (x)", 1, "\"J\xc3\xb6rg (x)\"" },
        { "J\xf6rg", 0, "=?UNKNOWN-8BIT?B?SvZyZw==?=" }, /* Latin-1 */
        { "J\xf6rg", 1, "=?UNKNOWN-8BIT?B?SvZyZw==?=" },
        { "bad\rname", 0, NULL },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct phrase_case *c = &cases[i];
        const char *expected = c->expected;
        struct buf out;
        buf_init(&out, 4096);
        int rc = mail_header_phrase(c->name, strlen(c->name), c->utf8_ok,
                                    &out);
        if (expected == NULL) {
            assert_int_equal(rc, -1);
        } else {
            assert_int_equal(rc, 0);
            if (strcmp(buf_cstr(&out), expected) != 0)
                fail_msg("case %zu: got \"%s\", expected \"%s\"", i,
                         buf_cstr(&out), expected);
        }
        buf_free(&out);
    }
}

static void test_long_names_are_folded_words(void **state)
{
    (void)state;
    /* 40 two-byte characters: 80 octets, two encoded-words, none over 75
     * characters, no character split between them. */
    struct buf name, out;
    buf_init(&name, 4096);
    buf_init(&out, 4096);
    for (int i = 0; i < 40; i++)
        buf_append_str(&name, "\xc3\xa9");
    assert_int_equal(mail_header_phrase(name.data, name.len, 0, &out), 0);
    const char *text = buf_cstr(&out);
    const char *fold = strstr(text, "\n ");
    assert_non_null(fold);
    assert_null(strstr(fold + 2, "\n "));
    assert_true((size_t)(fold - text) <= 75);
    assert_true(strlen(fold + 2) <= 75);
    /* The first word holds 22 whole characters (44 octets: 60 base64
     * characters). */
    assert_int_equal(strncmp(text, "=?UTF-8?B?", 10), 0);
    assert_int_equal(fold - text, 10 + 60 + 2);
    buf_free(&name);
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_kinds),
        cmocka_unit_test(test_names_and_values),
        cmocka_unit_test(test_unfold),
        cmocka_unit_test(test_date_format),
        cmocka_unit_test(test_received),
        cmocka_unit_test(test_mime_fields_and_boundaries),
        cmocka_unit_test(test_attached_message_type),
        cmocka_unit_test(test_display_names),
        cmocka_unit_test(test_long_names_are_folded_words),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
