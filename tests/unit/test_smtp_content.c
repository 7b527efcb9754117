/*
 * test_smtp_content - unit tests of daemons/smtp/smtp_content.c: tables
 * of inputs and their wire form (CRLF, dot-stuffing, long lines, the
 * chunk boundaries of the queue file falling anywhere), quoted-printable,
 * and the 8-bit to 7-bit conversion of MIME content, with the cases that
 * cannot be converted.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "../../daemons/smtp/smtp_content.h"

struct text_case {
    const char *name;
    size_t limit;
    const char *in;
    const char *want;   /* including the final ".\r\n" */
};

static const struct text_case text_cases[] = {
    { "plain", 999, "a\nb\n", "a\r\nb\r\n.\r\n" },
    { "no final LF", 999, "a\nb", "a\r\nb\r\n.\r\n" },
    { "empty", 999, "", ".\r\n" },
    { "dot stuffing", 999, ".\n..x\nx.\n", "..\r\n...x\r\nx.\r\n.\r\n" },
    { "long line", 4, "abcdefghij\n", "abcd\r\n efg\r\n hij\r\n.\r\n" },
    { "exactly the limit", 4, "abcd\n", "abcd\r\n.\r\n" },
    { "no limit", 0, "abcdefghij\n", "abcdefghij\r\n.\r\n" },
    { "dot after a break is not stuffed", 3, "ab.cd\n",
      "ab.\r\n cd\r\n.\r\n" },
    { "empty lines", 999, "\n\n", "\r\n\r\n.\r\n" },
};

/* Every case, fed whole and then in every split into two chunks. */
static void test_text(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof(text_cases) / sizeof(text_cases[0]); c++) {
        const struct text_case *tc = &text_cases[c];
        size_t len = strlen(tc->in);
        for (size_t split = 0; split <= len; split++) {
            struct smtp_text t;
            struct buf out;
            buf_init(&out, 1 << 20);
            smtp_text_init(&t, tc->limit);
            assert_int_equal(smtp_text_encode(&t, tc->in, split, &out), 0);
            assert_int_equal(smtp_text_encode(&t, tc->in + split,
                                              len - split, &out), 0);
            assert_int_equal(smtp_text_finish(&t, &out), 0);
            if (strcmp(buf_cstr(&out), tc->want) != 0)
                fail_msg("%s (split %zu): got \"%s\"", tc->name, split,
                         buf_cstr(&out));
            buf_free(&out);
        }
    }
}

struct qp_case {
    const char *in;
    const char *want;
};

static void test_qp(void **state)
{
    (void)state;
    static const struct qp_case cases[] = {
        { "plain text\n", "plain text\n" },
        { "caf\xc3\xa9 = 1\n", "caf=C3=A9 =3D 1\n" },
        { "trailing space \n", "trailing space=20\n" },
        { "trailing tab\t", "trailing tab=09" },
        { "a\rb\n", "a=0Db\n" },
        /* 80 'x': a soft break keeps lines at 76 with the '='. */
        { "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
          "xxxxxxxxxxxxxxxx\n",
          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
          "xxxxxxxxxxx=\nxxxxx\n" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf out;
        buf_init(&out, 1 << 20);
        assert_int_equal(smtp_qp_encode(cases[i].in, strlen(cases[i].in),
                                        &out), 0);
        assert_string_equal(buf_cstr(&out), cases[i].want);
        buf_free(&out);
    }
}

struct mime_case {
    const char *name;
    const char *in;
    enum smtp_mime_status status;
    const char *want;   /* when SMTP_MIME_OK */
};

static const struct mime_case mime_cases[] = {
    { "7-bit is left alone", "Subject: x\n\nhello\n", SMTP_MIME_OK,
      "Subject: x\n\nhello\n" },
    { "no MIME header: text/plain, MIME-Version added",
      "Subject: x\n\ncaf\xc3\xa9\n", SMTP_MIME_OK,
      "Subject: x\nMIME-Version: 1.0\n"
      "Content-Transfer-Encoding: quoted-printable\n\ncaf=C3=A9\n" },
    { "8bit text part re-encoded",
      "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
      "Content-Transfer-Encoding: 8bit\n\n\xc3\xa9\n", SMTP_MIME_OK,
      "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
      "Content-Transfer-Encoding: quoted-printable\n\n=C3=A9\n" },
    { "multipart: only the 8-bit part changes",
      "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n"
      "preamble\n--b\nContent-Type: text/plain\n\nascii\n"
      "--b\nContent-Type: text/plain; charset=latin1\n"
      "Content-Transfer-Encoding: 8bit\n\n\xe9t\xe9\n--b--\nepilogue\n",
      SMTP_MIME_OK,
      "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n"
      "preamble\n--b\nContent-Type: text/plain\n\nascii\n"
      "--b\nContent-Type: text/plain; charset=latin1\n"
      "Content-Transfer-Encoding: quoted-printable\n\n=E9t=E9\n--b--\n"
      "epilogue\n" },
    { "attached message converted inside",
      "MIME-Version: 1.0\nContent-Type: message/rfc822\n\n"
      "Subject: inner\n\n\xc3\xa9\n", SMTP_MIME_OK,
      "MIME-Version: 1.0\nContent-Type: message/rfc822\n\n"
      "Subject: inner\nContent-Transfer-Encoding: quoted-printable\n\n"
      "=C3=A9\n" },
    { "8-bit in a non-text part",
      "MIME-Version: 1.0\nContent-Type: application/octet-stream\n\n"
      "\xff\n", SMTP_MIME_UNSAFE, NULL },
    { "binary encoding",
      "MIME-Version: 1.0\nContent-Type: text/plain\n"
      "Content-Transfer-Encoding: binary\n\n\xff\n", SMTP_MIME_UNSAFE, NULL },
    { "8-bit preamble",
      "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
      "\xff\n--b\n\nx\n--b--\n", SMTP_MIME_UNSAFE, NULL },
    { "multipart without a boundary",
      "MIME-Version: 1.0\nContent-Type: multipart/mixed\n\n\xff\n",
      SMTP_MIME_UNSAFE, NULL },
};

static void test_mime(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(mime_cases) / sizeof(mime_cases[0]); i++) {
        const struct mime_case *mc = &mime_cases[i];
        struct buf out;
        buf_init(&out, 1 << 20);
        enum smtp_mime_status st =
            smtp_mime_downgrade(mc->in, strlen(mc->in), &out);
        if (st != mc->status)
            fail_msg("%s: status %d, want %d", mc->name, st, mc->status);
        if (mc->want != NULL && strcmp(buf_cstr(&out), mc->want) != 0)
            fail_msg("%s: got \"%s\"", mc->name, buf_cstr(&out));
        if (st == SMTP_MIME_OK)
            assert_false(smtp_content_is_8bit(out.data, out.len));
        buf_free(&out);
    }
}

/* Deep nesting is refused, not recursed into without bound. */
static void test_mime_depth(void **state)
{
    (void)state;
    struct buf in, out;
    buf_init(&in, 1 << 20);
    buf_init(&out, 1 << 20);
    for (int i = 0; i < 100; i++)
        buf_append_str(&in, "Content-Type: message/rfc822\n\n");
    buf_append_str(&in, "\n\xff\n");
    assert_int_equal(smtp_mime_downgrade(in.data, in.len, &out),
                     SMTP_MIME_UNSAFE);
    buf_free(&in);
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_qp),
        cmocka_unit_test(test_mime),
        cmocka_unit_test(test_mime_depth),
    };
    return cmocka_run_group_tests(tests, 0, NULL);
}
