/*
 * test_master_cf - unit tests of lib/master_cf.c: the columns of a
 * service line, the command and its arguments ("{ }" grouping, "-o"
 * overrides), the logical-line rules, and every error with its line.
 *
 * Run: make build/gcc/tests/test_master_cf && build/gcc/tests/test_master_cf
 * Most tests are tables: one row per case, with the expected fields or
 * the exact expected message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "buf.h"
#include "config.h"
#include "log.h"
#include "master_cf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

static int load(const char *text, struct master_cf *cf)
{
    return master_cf_load_text("master.cf", text, strlen(text), cf);
}

static const struct master_service_entry *find(const struct master_cf *cf,
                                               const char *name,
                                               enum master_service_type type)
{
    for (size_t i = 0; i < cf->count; i++)
        if (cf->services[i].type == type &&
            strcmp(cf->services[i].name, name) == 0)
            return &cf->services[i];
    return NULL;
}

/* argv as "a|b|c", to compare in one assertion. */
static void joined_argv(const struct master_service_entry *e, struct buf *out)
{
    buf_reset(out);
    for (size_t i = 0; i < e->argc; i++)
        assert_int_equal(buf_printf(out, "%s%s", i ? "|" : "", e->argv[i]),
                         0);
    assert_null(e->argv[e->argc]);
}

static void joined_overrides(const struct master_service_entry *e,
                             struct buf *out)
{
    buf_reset(out);
    for (size_t i = 0; i < e->override_count; i++)
        assert_int_equal(buf_printf(out, "%s[%s]=[%s]", i ? "," : "",
                                    e->overrides[i].name,
                                    e->overrides[i].value), 0);
}

/* ---------------------------------------------------------------------
 * A whole, typical master.cf.
 */

static const char typical[] =
    "# Postino master process configuration file.\n"
    "#\n"
    "# service type  private unpriv  chroot  wakeup  maxproc command + args\n"
    "smtp      inet  n       -       n       -       -       smtpd\n"
    "pickup    unix  n       -       n       60      1       pickup\n"
    "cleanup   unix  n       -       n       -       0       cleanup\n"
    "qmgr      unix  n       -       n       300?    1       qmgr\n"
    "\n"
    "submission inet n       -       n       -       -       smtpd\n"
    "  -o smtpd_tls_security_level=encrypt\n"
    "  -o { smtpd_banner = hello there world }\n"
    "local     unix  -       n       n       -       -       local\n"
    "127.0.0.1:2525 inet n   -       y       -       10      smtpd -v\r\n"
    "verify    unix  y       y       -       0?      5       verify\n";

static void test_typical(void **state)
{
    (void)state;
    struct master_cf cf;
    assert_int_equal(load(typical, &cf), 0);
    assert_int_equal(cf.count, 8);
    assert_string_equal(master_cf_last_error(&cf), "");

    static const struct {
        const char *name;
        enum master_service_type type;
        int private_socket, unprivileged, chroot;
        long wakeup;
        int if_used;
        long maxproc;
        const char *argv;
        const char *overrides;
        int line;
    } expected[] = {
        { "smtp", MASTER_SERVICE_INET, 0, 1, 0, 0, 0, MASTER_MAXPROC_DEFAULT,
          "smtpd", "", 4 },
        { "pickup", MASTER_SERVICE_UNIX, 0, 1, 0, 60, 0, 1, "pickup", "", 5 },
        { "cleanup", MASTER_SERVICE_UNIX, 0, 1, 0, 0, 0, 0, "cleanup", "",
          6 },
        { "qmgr", MASTER_SERVICE_UNIX, 0, 1, 0, 300, 1, 1, "qmgr", "", 7 },
        { "submission", MASTER_SERVICE_INET, 0, 1, 0, 0, 0,
          MASTER_MAXPROC_DEFAULT,
          "smtpd|-o|smtpd_tls_security_level=encrypt|-o|"
          "smtpd_banner=hello there world",
          "[smtpd_tls_security_level]=[encrypt],"
          "[smtpd_banner]=[hello there world]", 9 },
        { "local", MASTER_SERVICE_UNIX, 1, 0, 0, 0, 0, MASTER_MAXPROC_DEFAULT,
          "local", "", 12 },
        { "127.0.0.1:2525", MASTER_SERVICE_INET, 0, 1, 1, 0, 0, 10,
          "smtpd|-v", "", 13 },
        { "verify", MASTER_SERVICE_UNIX, 1, 1, 0, 0, 0, 5, "verify", "", 14 },
    };
    struct buf got;
    buf_init(&got, 4096);
    for (size_t i = 0; i < COUNT(expected); i++) {
        const struct master_service_entry *e = &cf.services[i];
        assert_string_equal(e->name, expected[i].name);
        assert_int_equal(e->type, expected[i].type);
        assert_int_equal(e->private_socket, expected[i].private_socket);
        assert_int_equal(e->unprivileged, expected[i].unprivileged);
        assert_int_equal(e->chroot, expected[i].chroot);
        assert_int_equal(e->wakeup_seconds, expected[i].wakeup);
        assert_int_equal(e->wakeup_if_used, expected[i].if_used);
        assert_int_equal(e->max_process, expected[i].maxproc);
        joined_argv(e, &got);
        assert_string_equal(buf_cstr(&got), expected[i].argv);
        joined_overrides(e, &got);
        assert_string_equal(buf_cstr(&got), expected[i].overrides);
        assert_string_equal(e->file, "master.cf");
        assert_int_equal(e->line, expected[i].line);
    }
    buf_free(&got);
    master_cf_free(&cf);
    assert_int_equal(cf.count, 0);
    assert_null(cf.services);
}

/* ---------------------------------------------------------------------
 * Columns, one line at a time.
 */

struct column_case {
    const char *line;
    int private_socket, unprivileged, chroot;
    long wakeup;
    int if_used;
    long maxproc;
};

static void test_columns(void **state)
{
    (void)state;
    static const struct column_case cases[] = {
        { "a unix - - - - - x", 1, 1, 0, 0, 0, MASTER_MAXPROC_DEFAULT },
        { "a unix y y y 0 0 x", 1, 1, 1, 0, 0, 0 },
        { "a unix n n n 1 1 x", 0, 0, 0, 1, 0, 1 },
        { "a unix - - - 60? 100000 x", 1, 1, 0, 60, 1, 100000 },
        { "a unix - - - 0? 7 x", 1, 1, 0, 0, 0, 7 },
        { "a unix - - - 31536000 - x", 1, 1, 0, 31536000, 0,
          MASTER_MAXPROC_DEFAULT },
        { "a inet - - - - - x", 0, 1, 0, 0, 0, MASTER_MAXPROC_DEFAULT },
        { "a inet n - y 0 2 x", 0, 1, 1, 0, 0, 2 },
        { "a inet - n - - - x", 0, 0, 0, 0, 0, MASTER_MAXPROC_DEFAULT },
        { "a\tunix\t-\t-\t-\t-\t-\tx", 1, 1, 0, 0, 0,
          MASTER_MAXPROC_DEFAULT },
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        struct master_cf cf;
        if (load(cases[i].line, &cf) != 0)
            fail_msg("\"%s\": %s", cases[i].line, master_cf_last_error(&cf));
        assert_int_equal(cf.count, 1);
        const struct master_service_entry *e = &cf.services[0];
        assert_int_equal(e->private_socket, cases[i].private_socket);
        assert_int_equal(e->unprivileged, cases[i].unprivileged);
        assert_int_equal(e->chroot, cases[i].chroot);
        assert_int_equal(e->wakeup_seconds, cases[i].wakeup);
        assert_int_equal(e->wakeup_if_used, cases[i].if_used);
        assert_int_equal(e->max_process, cases[i].maxproc);
        master_cf_free(&cf);
    }
}

/* ---------------------------------------------------------------------
 * Errors: each with its message and line; the line is left out.
 */

struct error_case {
    const char *name;
    const char *text;
    int errors;
    const char *message;
    size_t services; /* how many lines were kept */
};

static const struct error_case error_cases[] = {
    { "too few fields", "a unix - - - x\n", 1,
      "master.cf:1: too few fields (6; a service line needs 8: service, "
      "type, private, unpriv, chroot, wakeup, maxproc and command)", 0 },
    { "no command", "ok unix - - - - - x\n\na unix - - - - -\n", 1,
      "master.cf:3: too few fields (7; a service line needs 8: service, "
      "type, private, unpriv, chroot, wakeup, maxproc and command)", 1 },
    { "a name alone", "smtp\n", 1,
      "master.cf:1: too few fields (1; a service line needs 8: service, "
      "type, private, unpriv, chroot, wakeup, maxproc and command)", 0 },
    { "unknown type", "smtp fifo n - n - - smtpd\n", 1,
      "master.cf:1: unknown service type \"fifo\" (must be inet or unix)",
      0 },
    { "type is case sensitive", "smtp INET n - n - - smtpd\n", 1,
      "master.cf:1: unknown service type \"INET\" (must be inet or unix)",
      0 },
    { "private inet", "smtp inet y - n - - smtpd\n", 1,
      "master.cf:1: inet service \"smtp\" cannot be private (private field "
      "must be n or -)", 0 },
    { "bad private", "a unix q - n - - x\n", 1,
      "master.cf:1: bad private field \"q\" (must be y, n or -)", 0 },
    { "bad unpriv", "a unix - yes n - - x\n", 1,
      "master.cf:1: bad unpriv field \"yes\" (must be y, n or -)", 0 },
    { "bad chroot", "a unix - - 1 - - x\n", 1,
      "master.cf:1: bad chroot field \"1\" (must be y, n or -)", 0 },
    { "bad wakeup word", "a unix - - - abc - x\n", 1,
      "master.cf:1: bad wakeup field \"abc\" (must be -, a number of "
      "seconds, or a number followed by ?)", 0 },
    { "negative wakeup", "a unix - - - -5 - x\n", 1,
      "master.cf:1: bad wakeup field \"-5\" (must be -, a number of "
      "seconds, or a number followed by ?)", 0 },
    { "wakeup ??", "a unix - - - 5?? - x\n", 1,
      "master.cf:1: bad wakeup field \"5??\" (must be -, a number of "
      "seconds, or a number followed by ?)", 0 },
    { "wakeup ? alone", "a unix - - - ? - x\n", 1,
      "master.cf:1: bad wakeup field \"?\" (must be -, a number of "
      "seconds, or a number followed by ?)", 0 },
    { "wakeup with unit", "a unix - - - 5s - x\n", 1,
      "master.cf:1: bad wakeup field \"5s\" (must be -, a number of "
      "seconds, or a number followed by ?)", 0 },
    { "wakeup too large", "a unix - - - 99999999999999999999 - x\n", 1,
      "master.cf:1: bad wakeup field \"99999999999999999999\" (must be -, a "
      "number of seconds, or a number followed by ?)", 0 },
    { "wakeup on inet", "smtp inet n - n 60 - smtpd\n", 1,
      "master.cf:1: inet service \"smtp\" cannot have a wakeup time (only "
      "unix services can)", 0 },
    { "wakeup? on inet", "smtp inet n - n 60? - smtpd\n", 1,
      "master.cf:1: inet service \"smtp\" cannot have a wakeup time (only "
      "unix services can)", 0 },
    { "bad maxproc", "a unix - - - - x x\n", 1,
      "master.cf:1: bad maxproc field \"x\" (must be -, 0 for no limit, or "
      "a number up to 100000)", 0 },
    { "negative maxproc", "a unix - - - - -1 x\n", 1,
      "master.cf:1: bad maxproc field \"-1\" (must be -, 0 for no limit, or "
      "a number up to 100000)", 0 },
    { "maxproc too large", "a unix - - - - 100001 x\n", 1,
      "master.cf:1: bad maxproc field \"100001\" (must be -, 0 for no "
      "limit, or a number up to 100000)", 0 },
    { "slash in a unix name", "../x unix - - - - - x\n", 1,
      "master.cf:1: bad unix service name \"../x\" (must not contain '/')",
      0 },
    { "duplicate", "a unix - - - - - x\nb unix - - - - - x\n"
      "# c\na unix - - - - - y\n", 1,
      "master.cf:4: duplicate service \"a\" type unix (first defined at "
      "line 1)", 2 },
    { "duplicate inet", "smtp inet n - - - - smtpd\n"
      "smtp inet n - - - - other\n", 1,
      "master.cf:2: duplicate service \"smtp\" type inet (first defined at "
      "line 1)", 1 },
    { "-o at the end", "a unix - - - - - x -o\n", 1,
      "master.cf:1: -o option without name=value at the end of the line", 0 },
    { "-o without =", "a unix - - - - - x -o foo\n", 1,
      "master.cf:1: -o option without name=value: \"foo\"", 0 },
    { "-o before another option", "a unix - - - - - x -o -v\n", 1,
      "master.cf:1: -o option without name=value: \"-v\"", 0 },
    { "-o without a name", "a unix - - - - - x -o =y\n", 1,
      "master.cf:1: -o option with a bad parameter name: \"\" (letters, "
      "digits and _ only)", 0 },
    { "-o with a bad name", "a unix - - - - - x -o bad-name=y\n", 1,
      "master.cf:1: -o option with a bad parameter name: \"bad-name\" "
      "(letters, digits and _ only)", 0 },
    { "-o braces without =", "a unix - - - - - x -o { a b }\n", 1,
      "master.cf:1: -o option without name=value: \"a b\"", 0 },
    { "missing }", "a unix - - - - - x { a b\n", 1,
      "master.cf:1: missing '}' in \"{ a b\"", 0 },
    { "missing } nested", "a unix - - - - - x {a {b}\n", 1,
      "master.cf:1: missing '}' in \"{a {b}\"", 0 },
    { "text after }", "a unix - - - - - x {a}b\n", 1,
      "master.cf:1: text after '}' in \"{a}b\"", 0 },
    { "two groups in one word", "a unix - - - - - x {a}{b}\n", 1,
      "master.cf:1: text after '}' in \"{a}{b}\"", 0 },
    { "empty command", "a unix - - - - - { }\n", 1,
      "master.cf:1: empty command name", 0 },
    { "continuation of nothing", "  a unix - - - - - x\n"
      "b unix - - - - - x\n", 1,
      "master.cf:1: line starts with white space, but there is no line "
      "before it to continue", 1 },
    { "errors counted, good lines kept",
      "a fifo - - - - - x\nb unix - - - - - x\nc unix - - - - z x\n"
      "d unix - - - - - x\n", 2,
      "master.cf:3: bad maxproc field \"z\" (must be -, 0 for no limit, or "
      "a number up to 100000)", 2 },
    { "error on a continued line uses the first line",
      "a unix - - - - - x\nb unix - -\n  - - - x\n  -o nothing\n", 1,
      "master.cf:2: -o option without name=value: \"nothing\"", 1 },
};

static void test_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(error_cases); i++) {
        const struct error_case *c = &error_cases[i];
        struct master_cf cf;
        int errors = load(c->text, &cf);
        if (errors != c->errors ||
            strcmp(master_cf_last_error(&cf), c->message) != 0)
            fail_msg("%s: %d errors, \"%s\"", c->name, errors,
                     master_cf_last_error(&cf));
        if (cf.count != c->services)
            fail_msg("%s: %zu services kept, expected %zu", c->name,
                     cf.count, c->services);
        master_cf_free(&cf);
    }
}

/* The same name with another type is another service. */
static void test_same_name_other_type(void **state)
{
    (void)state;
    struct master_cf cf;
    assert_int_equal(load("smtp inet n - - - - smtpd\n"
                          "smtp unix - - - - - smtp\n", &cf), 0);
    assert_int_equal(cf.count, 2);
    assert_non_null(find(&cf, "smtp", MASTER_SERVICE_INET));
    assert_non_null(find(&cf, "smtp", MASTER_SERVICE_UNIX));
    master_cf_free(&cf);
}

/* ---------------------------------------------------------------------
 * The command and its arguments.
 */

struct args_case {
    const char *name;
    const char *args; /* after "svc unix - - - - - " */
    const char *argv;
    const char *overrides;
};

static const struct args_case args_cases[] = {
    { "command alone", "cmd", "cmd", "" },
    { "plain args", "cmd a  b\tc", "cmd|a|b|c", "" },
    { "-o", "cmd -o a=b", "cmd|-o|a=b", "[a]=[b]" },
    { "-o empty value", "cmd -o a=", "cmd|-o|a=", "[a]=[]" },
    { "-o value with =", "cmd -o a=b=c", "cmd|-o|a=b=c", "[a]=[b=c]" },
    { "-o value with $", "cmd -o a=$b", "cmd|-o|a=$b", "[a]=[$b]" },
    { "several -o and other options", "cmd -v -o a=1 -D -o b=2",
      "cmd|-v|-o|a=1|-D|-o|b=2", "[a]=[1],[b]=[2]" },
    { "braced -o", "cmd -o { name = value with spaces }",
      "cmd|-o|name=value with spaces", "[name]=[value with spaces]" },
    { "braced -o without spaces", "cmd -o {a=b}", "cmd|-o|a=b", "[a]=[b]" },
    { "braced -o with tabs", "cmd -o {\ta =\tb c\t}", "cmd|-o|a=b c",
      "[a]=[b c]" },
    { "braced -o with braces inside", "cmd -o { a = {x y} }",
      "cmd|-o|a={x y}", "[a]=[{x y}]" },
    { "braced argument", "cmd { a b  c }", "cmd|a b  c", "" },
    { "braced argument, no inner space", "cmd {a b}", "cmd|a b", "" },
    { "nested braces kept inside", "cmd { a {b c} d }", "cmd|a {b c} d", "" },
    { "empty braces", "cmd {} { }", "cmd||", "" },
    { "braces inside a word", "cmd ${sender} x${a b}y",
      "cmd|${sender}|x${a b}y", "" },
    { "stray } is text", "cmd a} }", "cmd|a}|}", "" },
    { "braced command", "{ my command } x", "my command|x", "" },
    { "options end at the first argument",
      "pipe flags=R argv=/bin/x -o a=b", "pipe|flags=R|argv=/bin/x|-o|a=b",
      "" },
    { "options end at --", "cmd -o a=b -- -o c=d", "cmd|-o|a=b|--|-o|c=d",
      "[a]=[b]" },
};

static void test_args(void **state)
{
    (void)state;
    struct buf text, got;
    buf_init(&text, 4096);
    buf_init(&got, 4096);
    for (size_t i = 0; i < COUNT(args_cases); i++) {
        const struct args_case *c = &args_cases[i];
        buf_reset(&text);
        assert_int_equal(buf_printf(&text, "svc unix - - - - - %s\n",
                                    c->args), 0);
        struct master_cf cf;
        if (load(buf_cstr(&text), &cf) != 0)
            fail_msg("%s: %s", c->name, master_cf_last_error(&cf));
        assert_int_equal(cf.count, 1);
        joined_argv(&cf.services[0], &got);
        if (strcmp(buf_cstr(&got), c->argv) != 0)
            fail_msg("%s: argv \"%s\", expected \"%s\"", c->name,
                     buf_cstr(&got), c->argv);
        joined_overrides(&cf.services[0], &got);
        if (strcmp(buf_cstr(&got), c->overrides) != 0)
            fail_msg("%s: overrides \"%s\", expected \"%s\"", c->name,
                     buf_cstr(&got), c->overrides);
        master_cf_free(&cf);
    }
    buf_free(&text);
    buf_free(&got);
}

/* Continuation lines, comments and blank lines between them. */
static void test_continuation(void **state)
{
    (void)state;
    struct master_cf cf;
    assert_int_equal(load("# head\n"
                          "smtp inet n - n - -\n"
                          "\t smtpd\n"
                          "# between\n"
                          "\n"
                          "   -o a=1\n"
                          "    -o {\n"
                          "      b = 2 }\n"
                          "next unix - - - - - x\n", &cf), 0);
    assert_int_equal(cf.count, 2);
    struct buf got;
    buf_init(&got, 4096);
    joined_argv(&cf.services[0], &got);
    assert_string_equal(buf_cstr(&got), "smtpd|-o|a=1|-o|b=2");
    assert_int_equal(cf.services[0].line, 2);
    assert_int_equal(cf.services[1].line, 9);
    buf_free(&got);
    master_cf_free(&cf);
}

static void test_nul_and_long_lines(void **state)
{
    (void)state;
    struct master_cf cf;
    static const char with_nul[] = "a unix - - - - - x\n"
                                   "b unix - - - - - x\0y\n"
                                   "c unix - - - - - x\n";
    assert_int_equal(master_cf_load_text("master.cf", with_nul,
                                         sizeof(with_nul) - 1, &cf), 1);
    assert_string_equal(master_cf_last_error(&cf),
                        "master.cf:2: line contains a NUL byte");
    assert_int_equal(cf.count, 2);
    assert_null(find(&cf, "b", MASTER_SERVICE_UNIX));
    master_cf_free(&cf);

    /* A logical line one byte over the limit, made of continuations. */
    size_t arg_len = 1000;
    struct buf text;
    buf_init(&text, BUF_LIMIT_MAX);
    assert_int_equal(buf_append_str(&text, "a unix - - - - - x\n"
                                           "\n"
                                           "b unix - - - - - x"), 0);
    size_t logical = strlen("b unix - - - - - x");
    char *arg = malloc(arg_len + 1);
    assert_non_null(arg);
    memset(arg, 'z', arg_len);
    arg[arg_len] = '\0';
    while (logical + 1 + arg_len <= CONFIG_LINE_MAX) {
        assert_int_equal(buf_printf(&text, "\n %s", arg), 0);
        logical += 1 + arg_len;
    }
    size_t last = CONFIG_LINE_MAX - logical - 1; /* exactly the limit */
    assert_int_equal(buf_printf(&text, "\n %.*s", (int)last, arg), 0);
    assert_int_equal(buf_append_str(&text, "\nc unix - - - - - x\n"), 0);
    assert_int_equal(load(buf_cstr(&text), &cf), 0);
    assert_int_equal(cf.count, 3);
    master_cf_free(&cf);

    /* One more byte. */
    char *over = strstr(text.data, "\nc unix");
    assert_non_null(over);
    struct buf longer;
    buf_init(&longer, BUF_LIMIT_MAX);
    assert_int_equal(buf_append(&longer, text.data,
                                (size_t)(over - text.data)), 0);
    assert_int_equal(buf_printf(&longer, "z%s", over), 0);
    assert_int_equal(load(buf_cstr(&longer), &cf), 1);
    assert_string_equal(master_cf_last_error(&cf),
                        "master.cf:3: logical line is longer than 16384 "
                        "bytes");
    assert_int_equal(cf.count, 2);
    assert_null(find(&cf, "b", MASTER_SERVICE_UNIX));
    assert_non_null(find(&cf, "c", MASTER_SERVICE_UNIX));
    master_cf_free(&cf);

    free(arg);
    buf_free(&text);
    buf_free(&longer);
}

static void test_empty_and_comments(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "", "\n", "# only a comment\n", "  # indented comment\n\n\n",
        "\r\n\r\n",
    };
    for (size_t i = 0; i < COUNT(texts); i++) {
        struct master_cf cf;
        assert_int_equal(load(texts[i], &cf), 0);
        assert_int_equal(cf.count, 0);
        assert_string_equal(master_cf_last_error(&cf), "");
        master_cf_free(&cf);
    }
}

static void test_type_name(void **state)
{
    (void)state;
    assert_string_equal(master_cf_type_name(MASTER_SERVICE_INET), "inet");
    assert_string_equal(master_cf_type_name(MASTER_SERVICE_UNIX), "unix");
}

static void test_load_file(void **state)
{
    (void)state;
    const char *base = getenv("TMPDIR");
    struct buf dir, path;
    buf_init(&dir, 4096);
    buf_init(&path, 4096);
    assert_int_equal(buf_printf(&dir, "%s/test_master_cf.XXXXXX",
                                base && *base ? base : "/tmp"), 0);
    assert_non_null(mkdtemp(dir.data));
    assert_int_equal(buf_printf(&path, "%s/master.cf", buf_cstr(&dir)), 0);
    FILE *f = fopen(buf_cstr(&path), "w");
    assert_non_null(f);
    assert_true(fputs("smtp inet n - n - - smtpd\nbad\n", f) >= 0);
    assert_int_equal(fclose(f), 0);

    struct master_cf cf;
    assert_int_equal(master_cf_load(buf_cstr(&path), &cf), 1);
    assert_int_equal(cf.count, 1);
    assert_string_equal(cf.services[0].file, buf_cstr(&path));
    struct buf expected;
    buf_init(&expected, 8192);
    assert_int_equal(buf_printf(&expected, "%s:2: too few fields (1; a "
                                "service line needs 8: service, type, "
                                "private, unpriv, chroot, wakeup, maxproc "
                                "and command)", buf_cstr(&path)), 0);
    assert_string_equal(master_cf_last_error(&cf), buf_cstr(&expected));
    master_cf_free(&cf);

    assert_int_equal(unlink(buf_cstr(&path)), 0);
    errno = 0;
    assert_int_equal(master_cf_load(buf_cstr(&path), &cf), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(cf.count, 0);
    buf_reset(&expected);
    assert_int_equal(buf_printf(&expected, "%s: cannot read: %s",
                                buf_cstr(&path), strerror(ENOENT)), 0);
    assert_string_equal(master_cf_last_error(&cf), buf_cstr(&expected));
    master_cf_free(&cf); /* safe after a failed load */

    assert_int_equal(rmdir(buf_cstr(&dir)), 0);
    buf_free(&expected);
    buf_free(&path);
    buf_free(&dir);
}

/* The overrides are what config_set_override() takes; a type error in one
 * is found by config_check() with the master.cf line. */
static void test_overrides_into_config(void **state)
{
    (void)state;
    struct master_cf cf;
    assert_int_equal(load("smtp inet n - n - - smtpd\n"
                          "  -o { smtpd_timeout = 10x }\n", &cf), 0);
    struct config *cfg = config_create();
    assert_non_null(cfg);
    const struct master_service_entry *e = &cf.services[0];
    for (size_t i = 0; i < e->override_count; i++)
        assert_int_equal(config_set_override(cfg, e->overrides[i].name,
                                             e->overrides[i].value, e->file,
                                             e->line), 0);
    assert_int_equal(config_check(cfg), 1);
    assert_string_equal(config_last_error(cfg),
                        "master.cf:1: bad time value for smtpd_timeout: "
                        "\"10x\" (unit must be s, m, h, d or w)");
    config_free(cfg);
    master_cf_free(&cf);
}

static int setup_quiet_log(void **state)
{
    (void)state;
    log_init("test", 0);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_typical),
        cmocka_unit_test(test_columns),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_same_name_other_type),
        cmocka_unit_test(test_args),
        cmocka_unit_test(test_continuation),
        cmocka_unit_test(test_nul_and_long_lines),
        cmocka_unit_test(test_empty_and_comments),
        cmocka_unit_test(test_type_name),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_overrides_into_config),
    };
    return cmocka_run_group_tests(tests, setup_quiet_log, NULL);
}
