/*
 * test_pop3d_io - unit tests of daemons/pop3d/pop3d_io.c: the split of a
 * command line, the user-name rule, and command reading over a socketpair
 * (overlong lines, NUL bytes, bare LF, end of file, pipelined replies).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../daemons/pop3d/pop3d.h"
#include "log.h"

static void test_split_command(void **state)
{
    (void)state;
    static const struct {
        const char *line, *verb, *args;
    } cases[] = {
        { "retr 12", "RETR", "12" },
        { "STAT", "STAT", "" },
        { "PASS with spaces  inside", "PASS", "with spaces  inside" },
        { "TOP 1 10", "TOP", "1 10" },
        { "", "", "" },
        { " NOOP", "", "NOOP" },
        { "VERYLONGVERB x", "", "x" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char verb[8];
        const char *args = pop3d_split_command(cases[i].line, verb,
                                               sizeof(verb));
        assert_string_equal(verb, cases[i].verb);
        assert_string_equal(args, cases[i].args);
    }
}

static void test_user_names(void **state)
{
    (void)state;
    char longname[POP3D_NAME_MAX + 2];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_true(pop3d_valid_user_name("demo@example.test"));
    assert_true(pop3d_valid_user_name("j\xc3\xb6rg"));
    assert_false(pop3d_valid_user_name(""));
    assert_false(pop3d_valid_user_name("a\tb"));
    assert_false(pop3d_valid_user_name("a\x7f"));
    assert_false(pop3d_valid_user_name(longname));
    longname[POP3D_NAME_MAX] = '\0';
    assert_true(pop3d_valid_user_name(longname));
}

/* Sends input on one end; reads commands on the other. */
static void test_read_command(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    static const char input[] =
        "STAT\r\n"
        "LIST\n"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        "\r\n"
        "NO\0OP\r\n"
        "QUIT\r\n"
        "UNFINISHED";
    assert_int_equal(write(sv[0], input, sizeof(input) - 1),
                     (ssize_t)(sizeof(input) - 1));
    assert_int_equal(shutdown(sv[0], SHUT_WR), 0);
    struct pop3d_conn c;
    pop3d_conn_init(&c, sv[1], 5000);
    struct buf line;
    buf_init(&line, 101);
    const char *test = "TEST";
    assert_int_equal(pop3d_read_command(&c, &line, 100, test), POP3D_LINE);
    assert_string_equal(buf_cstr(&line), "STAT");
    pop3d_ok(&c, "1 2");  /* queued: more input is buffered */
    assert_int_equal(pop3d_read_command(&c, &line, 100, test), POP3D_LINE);
    assert_string_equal(buf_cstr(&line), "LIST");
    assert_int_equal(pop3d_read_command(&c, &line, 100, test),
                     POP3D_BAD_LINE);
    assert_int_equal(pop3d_read_command(&c, &line, 100, test),
                     POP3D_BAD_LINE);
    assert_int_equal(c.errors, 2);
    assert_int_equal(pop3d_read_command(&c, &line, 100, test), POP3D_LINE);
    assert_string_equal(buf_cstr(&line), "QUIT");
    /* An unterminated last line is the end, not a command. */
    assert_int_equal(pop3d_read_command(&c, &line, 100, test), POP3D_GONE);
    assert_int_equal(stream_flush(&c.stream), STREAM_OK);
    char replies[256];
    ssize_t n = read(sv[0], replies, sizeof(replies) - 1);
    assert_true(n > 0);
    replies[n] = '\0';
    assert_string_equal(replies, "+OK 1 2\r\n-ERR line too long\r\n"
                                 "-ERR NUL byte in command\r\n");
    stream_free(&c.stream);
    buf_free(&line);
    (void)close(sv[0]);
    (void)close(sv[1]);
}

static void test_capa(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct pop3d_conn c;
    pop3d_conn_init(&c, sv[1], 5000);
    pop3d_capa(&c, 1, 1, 1);
    pop3d_capa(&c, 0, 1, 1);
    assert_int_equal(stream_flush(&c.stream), STREAM_OK);
    char text[1024];
    ssize_t n = read(sv[0], text, sizeof(text) - 1);
    assert_true(n > 0);
    text[n] = '\0';
    assert_string_equal(text,
        "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\n"
        "AUTH-RESP-CODE\r\nPIPELINING\r\nUSER\r\nSASL PLAIN LOGIN\r\n"
        "STLS\r\nIMPLEMENTATION Postino\r\n.\r\n"
        "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\n"
        "AUTH-RESP-CODE\r\nPIPELINING\r\nIMPLEMENTATION Postino\r\n.\r\n");
    stream_free(&c.stream);
    (void)close(sv[0]);
    (void)close(sv[1]);
}

int main(void)
{
    log_init("test_pop3d_io", LOG_TO_STDERR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_command),
        cmocka_unit_test(test_user_names),
        cmocka_unit_test(test_read_command),
        cmocka_unit_test(test_capa),
    };
    return cmocka_run_group_tests(tests, 0, NULL);
}
