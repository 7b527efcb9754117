/*
 * test_smtpd_command - unit tests for smtpd's command-line words
 * (daemons/smtpd/smtpd_command.c, compiled in: it is part of the smtpd
 * daemon, not of the library).
 *
 * Table-driven: the verb and argument split, FROM:/TO: with Postfix's
 * tolerance for spaces, BDAT's count [LAST], and the lines that are no
 * SMTP at all.
 *
 * Run: build/<cc>/tests/test_smtpd_command (no arguments, no files).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "../../daemons/smtpd/smtpd_command.c"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void test_parse(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        enum smtpd_command_id id;
        const char *arg;
    } cases[] = {
        { "EHLO client.example", SMTPD_CMD_EHLO, "client.example" },
        { "ehlo   client.example", SMTPD_CMD_EHLO, "client.example" },
        { "MaIl FrOm:<a@b>", SMTPD_CMD_MAIL, "FrOm:<a@b>" },
        { "QUIT", SMTPD_CMD_QUIT, "" },
        { "QUIT   ", SMTPD_CMD_QUIT, "" },
        { "STARTTLS now", SMTPD_CMD_STARTTLS, "now" },
        { "MAILX FROM:<a@b>", SMTPD_CMD_UNKNOWN, "FROM:<a@b>" },
        { "MAI", SMTPD_CMD_UNKNOWN, "" },
        { "", SMTPD_CMD_UNKNOWN, "" },
        { " NOOP", SMTPD_CMD_UNKNOWN, "NOOP" },
        { "NOOP\tx", SMTPD_CMD_UNKNOWN, "" },
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        const char *arg = NULL;
        enum smtpd_command_id id = smtpd_command_parse(cases[i].line, &arg);
        if (id != cases[i].id || strcmp(arg, cases[i].arg) != 0)
            fail_msg("\"%s\": got %s \"%s\"", cases[i].line,
                     smtpd_command_name(id), arg);
    }
    assert_string_equal(smtpd_command_name(SMTPD_CMD_COUNT), "UNKNOWN");
    assert_string_equal(smtpd_command_counter_name(SMTPD_CMD_RCPT), "rcpt");
}

static void test_path(void **state)
{
    (void)state;
    static const struct {
        const char *arg, *keyword, *path; /* path NULL: refused */
    } cases[] = {
        { "FROM:<a@b>", "FROM:", "<a@b>" },
        { "from:<a@b>", "FROM:", "<a@b>" },
        { "FROM: <a@b>", "FROM:", "<a@b>" },
        { "FROM:    <a@b> SIZE=1", "FROM:", "<a@b> SIZE=1" },
        { "FROM:", "FROM:", "" },
        { "FROM :<a@b>", "FROM:", NULL },
        { "FROM<a@b>", "FROM:", NULL },
        { "TO:<a@b>", "FROM:", NULL },
        { "TO:<a@b>", "TO:", "<a@b>" },
        { "", "TO:", NULL },
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        const char *path = smtpd_command_path(cases[i].arg, cases[i].keyword);
        if (cases[i].path == NULL ? path != NULL
                                  : path == NULL ||
                                        strcmp(path, cases[i].path) != 0)
            fail_msg("\"%s\": got \"%s\"", cases[i].arg,
                     path ? path : "(refused)");
    }
}

static void test_bdat(void **state)
{
    (void)state;
    static const struct {
        const char *arg;
        int ok;
        long size;
        int last;
    } cases[] = {
        { "0", 1, 0, 0 },
        { "10", 1, 10, 0 },
        { "10 LAST", 1, 10, 1 },
        { "10   last", 1, 10, 1 },
        { "10 LAST ", 1, 10, 1 },
        { "999999999999999", 1, 999999999999999L, 0 },
        { "9999999999999999", 0, 0, 0 },
        { "99999999999999999999", 0, 0, 0 },
        { "-1", 0, 0, 0 },
        { "+1", 0, 0, 0 },
        { "", 0, 0, 0 },
        { "LAST", 0, 0, 0 },
        { "10x", 0, 0, 0 },
        { "10 LASTX", 0, 0, 0 },
        { "10 LAST extra", 0, 0, 0 },
        { "10 FIRST", 0, 0, 0 },
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        long size = -5;
        int last = -5;
        int rc = smtpd_command_bdat(cases[i].arg, &size, &last);
        if ((rc == 0) != cases[i].ok ||
            (rc == 0 && (size != cases[i].size || last != cases[i].last)))
            fail_msg("\"%s\": rc %d size %ld last %d", cases[i].arg, rc,
                     size, last);
    }
}

static void test_forbidden_and_flags(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        int forbidden;
    } cases[] = {
        { "GET / HTTP/1.1", 1 },
        { "post /form HTTP/1.0", 1 },
        { "CONNECT host:25 HTTP/1.1", 1 },
        { "Subject: hello", 1 },
        { "From:", 1 },
        { "X-Mailer: something", 1 },
        { " MAIL FROM:<a@b>", 1 },
        { "1234", 1 },
        { "MAIL FROM:<a@b>", 0 },
        { "RCPT TO:<a@b>", 0 },
        { "GETX", 0 },
        { "EHLO GET", 0 },
        { "", 0 },
        { ":", 1 },
    };
    for (size_t i = 0; i < COUNT(cases); i++)
        if (smtpd_command_forbidden(cases[i].line) != cases[i].forbidden)
            fail_msg("\"%s\": expected %d", cases[i].line,
                     cases[i].forbidden);
    assert_true(smtpd_command_is_junk(SMTPD_CMD_NOOP));
    assert_true(smtpd_command_is_junk(SMTPD_CMD_EHLO));
    assert_false(smtpd_command_is_junk(SMTPD_CMD_MAIL));
    assert_true(smtpd_command_ends_group(SMTPD_CMD_EHLO));
    assert_false(smtpd_command_ends_group(SMTPD_CMD_RCPT));
    assert_false(smtpd_command_ends_group(SMTPD_CMD_BDAT));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_path),
        cmocka_unit_test(test_bdat),
        cmocka_unit_test(test_forbidden_and_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
