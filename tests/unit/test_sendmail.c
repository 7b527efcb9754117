/*
 * Unit tests for sendmail's command line (lib/sendmail_options) and its
 * reading of the message (lib/sendmail_input): one table of cases each.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "sendmail_input.h"
#include "sendmail_options.h"

#define ARGS_MAX 12

struct option_case {
    const char *name;
    const char *argv[ARGS_MAX];
    int ok;
    enum sendmail_mode mode;
    int extract, ignore_dots;
    const char *sender, *full_name, *config_dir;
    int recipients;
    const char *first_recipient;
};

static const struct option_case option_cases[] = {
    { "plain", { "sendmail", "bob@example.org", NULL }, 1, SENDMAIL_DELIVER,
      0, 0, NULL, NULL, NULL, 1, "bob@example.org" },
    { "-t -i", { "sendmail", "-t", "-i", NULL }, 1, SENDMAIL_DELIVER, 1, 1,
      NULL, NULL, NULL, 0, NULL },
    { "-ti bundled", { "sendmail", "-ti", "x", NULL }, 1, SENDMAIL_DELIVER, 1,
      1, NULL, NULL, NULL, 1, "x" },
    { "-oi", { "sendmail", "-oi", "x", NULL }, 1, SENDMAIL_DELIVER, 0, 1,
      NULL, NULL, NULL, 1, "x" },
    { "-f separate", { "sendmail", "-f", "a@b", "x", NULL }, 1,
      SENDMAIL_DELIVER, 0, 0, "a@b", NULL, NULL, 1, "x" },
    { "-f joined", { "sendmail", "-fa@b", "x", NULL }, 1, SENDMAIL_DELIVER,
      0, 0, "a@b", NULL, NULL, 1, "x" },
    { "-r", { "sendmail", "-r", "<>", "x", NULL }, 1, SENDMAIL_DELIVER, 0, 0,
      "<>", NULL, NULL, 1, "x" },
    { "-F", { "sendmail", "-F", "Alice Example", "x", NULL }, 1,
      SENDMAIL_DELIVER, 0, 0, NULL, "Alice Example", NULL, 1, "x" },
    { "-C", { "sendmail", "-C", "/etc/other", "-bp", NULL }, 1, SENDMAIL_LIST,
      0, 0, NULL, NULL, "/etc/other", 0, NULL },
    { "ignored", { "sendmail", "-oem", "-odb", "-om", "-v", "-U", "-oee",
                   "-h", "5", "x", NULL }, 1, SENDMAIL_DELIVER, 0, 0, NULL,
      NULL, NULL, 1, "x" },
    { "-bs", { "sendmail", "-bs", NULL }, 1, SENDMAIL_SMTP, 0, 0, NULL, NULL,
      NULL, 0, NULL },
    { "-bi", { "sendmail", "-bi", NULL }, 1, SENDMAIL_NEWALIASES, 0, 0, NULL,
      NULL, NULL, 0, NULL },
    { "-I", { "sendmail", "-I", NULL }, 1, SENDMAIL_NEWALIASES, 0, 0, NULL,
      NULL, NULL, 0, NULL },
    { "-q", { "sendmail", "-q", NULL }, 1, SENDMAIL_FLUSH, 0, 0, NULL, NULL,
      NULL, 0, NULL },
    { "mailq", { "/usr/bin/mailq", NULL }, 1, SENDMAIL_LIST, 0, 0, NULL,
      NULL, NULL, 0, NULL },
    { "--", { "sendmail", "--", "-odd@example.org", NULL }, 1,
      SENDMAIL_DELIVER, 0, 0, NULL, NULL, NULL, 1, "-odd@example.org" },
    { "missing value", { "sendmail", "-f", NULL }, 0, SENDMAIL_DELIVER, 0,
      0, NULL, NULL, NULL, 0, NULL },
    { "unknown option", { "sendmail", "-Z", NULL }, 0, SENDMAIL_DELIVER, 0,
      0, NULL, NULL, NULL, 0, NULL },
    { "-bd unsupported", { "sendmail", "-bd", NULL }, 0, SENDMAIL_DELIVER, 0,
      0, NULL, NULL, NULL, 0, NULL },
    { "bad -R", { "sendmail", "-R", "some", "x", NULL }, 0, SENDMAIL_DELIVER,
      0, 0, NULL, NULL, NULL, 0, NULL },
};

static void check_str(const char *name, const char *what, const char *got,
                      const char *want)
{
    if ((got == NULL) != (want == NULL) ||
        (got != NULL && strcmp(got, want) != 0))
        fail_msg("%s: %s is \"%s\", wanted \"%s\"", name, what,
                 got ? got : "(null)", want ? want : "(null)");
}

static void test_options(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(option_cases) / sizeof(option_cases[0]);
         i++) {
        const struct option_case *c = &option_cases[i];
        char *argv[ARGS_MAX];
        int argc = 0;
        while (c->argv[argc] != NULL) {
            argv[argc] = (char *)c->argv[argc];
            argc++;
        }
        argv[argc] = NULL;
        struct sendmail_options opt;
        char error[256];
        int rc = sendmail_options_parse(&opt, argc, argv, error,
                                        sizeof(error));
        if ((rc == 0) != c->ok)
            fail_msg("%s: rc %d (%s)", c->name, rc, error);
        if (!c->ok) {
            assert_true(error[0] != '\0');
            continue;
        }
        if (opt.mode != c->mode || opt.extract != c->extract ||
            opt.ignore_dots != c->ignore_dots ||
            opt.recipient_count != c->recipients)
            fail_msg("%s: mode %d extract %d dots %d rcpts %d", c->name,
                     opt.mode, opt.extract, opt.ignore_dots,
                     opt.recipient_count);
        check_str(c->name, "sender", opt.sender, c->sender);
        check_str(c->name, "full name", opt.full_name, c->full_name);
        check_str(c->name, "config", opt.config_dir, c->config_dir);
        if (c->recipients > 0)
            check_str(c->name, "recipient", opt.recipients[0],
                      c->first_recipient);
    }
}

struct input_case {
    const char *name;
    const char *input;
    int ignore_dots;
    const char *output;
    size_t piece; /* feed in pieces of this size; 0: all at once */
};

static const struct input_case input_cases[] = {
    { "LF", "a\nb\n", 0, "a\nb\n", 0 },
    { "CRLF", "a\r\nb\r\n", 0, "a\nb\n", 0 },
    { "CRLF split", "a\r\nb\r\n", 0, "a\nb\n", 1 },
    { "bare CR kept", "a\rb\n", 0, "a\rb\n", 0 },
    { "last line ended", "a\nb", 0, "a\nb\n", 0 },
    { "dot ends", "a\n.\nafter\n", 0, "a\n", 0 },
    { "dot CRLF ends", "a\r\n.\r\nafter\r\n", 0, "a\n", 1 },
    { "dot ignored with -i", "a\n.\nafter\n", 1, "a\n.\nafter\n", 0 },
    { "dot then text", "a\n.b\n", 0, "a\n.b\n", 0 },
    { "two dots kept", "..\n", 0, "..\n", 1 },
    { "dot at end of input", "a\n.", 0, "a\n", 0 },
    { "dot at start", ".\nrest\n", 0, "", 0 },
    { "empty", "", 0, "", 0 },
};

static void test_input(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(input_cases) / sizeof(input_cases[0]);
         i++) {
        const struct input_case *c = &input_cases[i];
        struct sendmail_input in;
        sendmail_input_init(&in, c->ignore_dots);
        struct buf out;
        buf_init(&out, 1000);
        size_t len = strlen(c->input);
        size_t piece = c->piece ? c->piece : (len ? len : 1);
        for (size_t pos = 0; pos < len && !in.ended; pos += piece) {
            size_t n = len - pos < piece ? len - pos : piece;
            assert_true(sendmail_input_feed(&in, c->input + pos, n, &out) <=
                        n);
        }
        assert_int_equal(sendmail_input_finish(&in, &out), 0);
        if (strcmp(buf_cstr(&out), c->output) != 0)
            fail_msg("%s: got \"%s\"", c->name, buf_cstr(&out));
        buf_free(&out);
    }
}

static const struct {
    const char *name;
    const char *message;
    int found;
} scan_cases[] = {
    { "to", "Subject: x\nTo: bob@example.org\n\nbody\n", 1 },
    { "case and bcc", "BCC:carol\n\n", 1 },
    { "cc folded", "Cc:\n  dave@example.org\n\n", 1 },
    { "empty to", "To:   \nSubject: x\n\nTo: in the body\n", 0 },
    { "none", "Subject: x\nFrom: a@b\n\n", 0 },
    { "in body only", "Subject: x\n\nTo: bob\n", 0 },
    { "not a header", "hello world\nTo: bob\n", 0 },
    { "similar name", "Tox: bob\nReply-To: bob\n\n", 0 },
};

static void test_rcpt_scan(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(scan_cases) / sizeof(scan_cases[0]); i++) {
        for (size_t piece = 1; piece <= 64; piece *= 4) {
            struct sendmail_rcpt_scan scan;
            sendmail_rcpt_scan_init(&scan);
            const char *m = scan_cases[i].message;
            size_t len = strlen(m);
            for (size_t pos = 0; pos < len; pos += piece)
                sendmail_rcpt_scan_feed(&scan, m + pos,
                                        len - pos < piece ? len - pos
                                                          : piece);
            if (scan.found != scan_cases[i].found)
                fail_msg("%s (pieces of %zu): found %d", scan_cases[i].name,
                         piece, scan.found);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_input),
        cmocka_unit_test(test_rcpt_scan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
