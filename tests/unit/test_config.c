/*
 * test_config - unit tests of lib/config.c and lib/config_params.c: the
 * value parsers, main.cf syntax and its errors (with their line numbers),
 * $expansion and its loops, typed checks, overrides, the "unused
 * parameter" warning, the getters, and the parameter table.
 *
 * Run: make build/gcc/tests/test_config && build/gcc/tests/test_config
 * Most tests are tables: one row per case, with the expected value or the
 * exact expected message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "buf.h"
#include "config.h"
#include "log.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

/* ---------------------------------------------------------------------
 * Helpers.
 */

static struct config *load(const char *text, int *errors)
{
    struct config *cfg = config_create();
    assert_non_null(cfg);
    *errors = config_load_text(cfg, "main.cf", text, strlen(text));
    return cfg;
}

static struct config *load_ok(const char *text)
{
    int errors;
    struct config *cfg = load(text, &errors);
    assert_int_equal(errors, 0);
    return cfg;
}

/* A string of n copies of c, for long lines. */
static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static char *text_of(struct buf *b)
{
    return (char *)buf_cstr(b);
}

/* ---------------------------------------------------------------------
 * Value parsers.
 */

struct number_case {
    const char *input;
    char unit;
    int rc;
    long value;
};

static void test_parse_time(void **state)
{
    (void)state;
    static const struct number_case cases[] = {
        { "10", 's', 0, 10 },
        { "10s", 's', 0, 10 },
        { "5m", 's', 0, 300 },
        { "2h", 's', 0, 7200 },
        { "1d", 's', 0, 86400 },
        { "1w", 's', 0, 604800 },
        { "0", 's', 0, 0 },
        { "0s", 's', 0, 0 },
        { "007", 's', 0, 7 },
        { "10", 'm', 0, 600 },
        { "10", 'd', 0, 864000 },
        { "10s", 'd', 0, 10 },
        { "10x", 's', -1, 0 },
        { "10sec", 's', -1, 0 },
        { "10S", 's', -1, 0 },
        { "", 's', -1, 0 },
        { "s", 's', -1, 0 },
        { "-1", 's', -1, 0 },
        { "+1", 's', -1, 0 },
        { "1.5h", 's', -1, 0 },
        { "10 s", 's', -1, 0 },
        { " 10", 's', -1, 0 },
        { "10 ", 's', -1, 0 },
        { "10ss", 's', -1, 0 },
        { "99999999999999999999", 's', -1, 0 },
        { "15250284452472w", 's', -1, 0 }, /* overflows after the unit */
        { "10", 'x', -1, 0 },              /* not a default unit */
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        long value = -12345;
        int rc = config_parse_time(cases[i].input, cases[i].unit, &value);
        if (rc != cases[i].rc)
            fail_msg("time \"%s\": rc %d, expected %d", cases[i].input, rc,
                     cases[i].rc);
        if (rc == 0 && value != cases[i].value)
            fail_msg("time \"%s\": %ld, expected %ld", cases[i].input, value,
                     cases[i].value);
        if (rc != 0)
            assert_int_equal(value, -12345); /* untouched on failure */
    }
}

static void test_parse_size(void **state)
{
    (void)state;
    static const struct number_case cases[] = {
        { "0", 0, 0, 0 },
        { "1024", 0, 0, 1024 },
        { "10240000", 0, 0, 10240000 },
        { "10k", 0, 0, 10240 },
        { "10K", 0, 0, 10240 },
        { "2m", 0, 0, 2097152 },
        { "2M", 0, 0, 2097152 },
        { "1g", 0, 0, 1073741824 },
        { "1G", 0, 0, 1073741824 },
        { "10x", 0, -1, 0 },
        { "10kb", 0, -1, 0 },
        { "k", 0, -1, 0 },
        { "", 0, -1, 0 },
        { "-1", 0, -1, 0 },
        { "1.5m", 0, -1, 0 },
        { "10 k", 0, -1, 0 },
        { "99999999999999999999", 0, -1, 0 },
        { "9999999999999999999g", 0, -1, 0 },
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        long value = -1;
        int rc = config_parse_size(cases[i].input, &value);
        if (rc != cases[i].rc)
            fail_msg("size \"%s\": rc %d, expected %d", cases[i].input, rc,
                     cases[i].rc);
        if (rc == 0 && value != cases[i].value)
            fail_msg("size \"%s\": %ld, expected %ld", cases[i].input, value,
                     cases[i].value);
    }
}

static void test_parse_bool(void **state)
{
    (void)state;
    static const struct {
        const char *input;
        int rc;
        int value;
    } cases[] = {
        { "yes", 0, 1 },   { "no", 0, 0 },     { "true", 0, 1 },
        { "false", 0, 0 }, { "on", 0, 1 },     { "off", 0, 0 },
        { "1", 0, 1 },     { "0", 0, 0 },      { "YES", 0, 1 },
        { "No", 0, 0 },    { "TRUE", 0, 1 },   { "", -1, 0 },
        { "y", -1, 0 },    { "n", -1, 0 },     { "2", -1, 0 },
        { "yess", -1, 0 }, { " yes", -1, 0 },  { "nope", -1, 0 },
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        int value = 42;
        int rc = config_parse_bool(cases[i].input, &value);
        if (rc != cases[i].rc)
            fail_msg("bool \"%s\": rc %d", cases[i].input, rc);
        if (rc == 0 && value != cases[i].value)
            fail_msg("bool \"%s\": %d", cases[i].input, value);
    }
}

/* ---------------------------------------------------------------------
 * main.cf syntax.
 */

struct syntax_case {
    const char *name;
    const char *text;
    int errors;
    const char *message; /* exact config_last_error(), "" for none */
    const char *param;   /* then its raw value (NULL: not set) */
    const char *raw;
};

static const struct syntax_case syntax_cases[] = {
    { "simple", "a = b\n", 0, "", "a", "b" },
    { "no spaces", "a=b\n", 0, "", "a", "b" },
    { "tabs and trailing space", "a\t=\tb c  \t\n", 0, "", "a", "b c" },
    { "empty value", "a =\n", 0, "", "a", "" },
    { "equals in value", "a = b=c\n", 0, "", "a", "b=c" },
    { "hash inside value", "a = b # not a comment\n", 0, "", "a",
      "b # not a comment" },
    { "comments", "# one\n   # two\n#\na = 1\n", 0, "", "a", "1" },
    { "blank lines", "\n\n  \n\t\na = 1\n\n", 0, "", "a", "1" },
    { "continuation", "a = b,\n  c,\n\td\n", 0, "", "a", "b, c, d" },
    { "continuation past a comment", "a = b\n# note\n  c\n", 0, "", "a",
      "b c" },
    { "continuation past a blank line", "a = b\n\n  c\n", 0, "", "a",
      "b c" },
    { "continuation ends", "a = b\n  c\nd = e\n", 0, "", "d", "e" },
    { "later line wins", "a = 1\nb = 2\na = 3\n", 0, "", "a", "3" },
    { "CRLF", "a = b\r\nc = d\r\n", 0, "", "a", "b" },
    { "CRLF last line", "a = b\r\nc = d\r\n", 0, "", "c", "d" },
    { "CRLF continuation", "a = b\r\n  c\r\n", 0, "", "a", "b c" },
    { "CRLF blank line", "a = b\r\n\r\n  c\r\n", 0, "", "a", "b c" },
    { "no final newline", "a = 1\nb = 2", 0, "", "b", "2" },
    { "empty file", "", 0, "", "a", NULL },
    { "digits and _ in names", "a_1_B = x\n", 0, "", "a_1_B", "x" },
    { "missing =", "a = 1\nfoo bar\n", 1,
      "main.cf:2: missing '=' after parameter name: \"foo bar\"", "a", "1" },
    { "missing = on a continued line", "a = 1\n\nfoo\n  bar\nb = 2\n", 1,
      "main.cf:3: missing '=' after parameter name: \"foo bar\"", "b", "2" },
    { "bad name", "a = 1\n\nmy-param = x\n", 1,
      "main.cf:3: bad parameter name: \"my-param\" (letters, digits and _ "
      "only)", "my-param", NULL },
    { "bad name with space", "my param = x\n", 1,
      "main.cf:1: bad parameter name: \"my param\" (letters, digits and _ "
      "only)", "my", NULL },
    { "bad name with $", "$a = x\n", 1,
      "main.cf:1: bad parameter name: \"$a\" (letters, digits and _ only)",
      "a", NULL },
    { "missing name", "a = 1\n = x\n", 0, "", "a", "1 = x" },
    { "missing name first", "= x\n", 1,
      "main.cf:1: missing parameter name before '='", NULL, NULL },
    { "continuation of nothing", "  a = b\nc = d\n", 1,
      "main.cf:1: line starts with white space, but there is no line "
      "before it to continue", "c", "d" },
    { "continuation of nothing after comment", "# x\n\n\t a = b\n", 1,
      "main.cf:3: line starts with white space, but there is no line "
      "before it to continue", "a", NULL },
    { "two errors, last reported", "x\ny = 1\nz\n", 2,
      "main.cf:3: missing '=' after parameter name: \"z\"", "y", "1" },
    { "line left out after an error", "a = 1\na b\n", 1,
      "main.cf:2: missing '=' after parameter name: \"a b\"", "a", "1" },
};

static void test_syntax(void **state)
{
    (void)state;
    log_init("test", 0);
    for (size_t i = 0; i < COUNT(syntax_cases); i++) {
        const struct syntax_case *c = &syntax_cases[i];
        int errors;
        struct config *cfg = load(c->text, &errors);
        if (errors != c->errors || strcmp(config_last_error(cfg), c->message))
            fail_msg("%s: %d errors, \"%s\"; expected %d, \"%s\"", c->name,
                     errors, config_last_error(cfg), c->errors, c->message);
        if (c->param) {
            const char *raw = config_get_raw(cfg, c->param);
            if ((raw == NULL) != (c->raw == NULL) ||
                (raw && strcmp(raw, c->raw) != 0))
                fail_msg("%s: %s is \"%s\", expected \"%s\"", c->name,
                         c->param, raw ? raw : "(null)",
                         c->raw ? c->raw : "(null)");
        }
        config_free(cfg);
    }
}

/* The line a value came from: continuations keep the first line. */
static void test_origin_lines(void **state)
{
    (void)state;
    struct config *cfg = load_ok("# c\n\na = 1\nb = x,\n  y\n\n  z\nc = 2\n");
    static const struct {
        const char *name;
        int line;
    } cases[] = { { "a", 3 }, { "b", 4 }, { "c", 8 } };
    for (size_t i = 0; i < COUNT(cases); i++) {
        const char *file;
        int line;
        config_get_origin(cfg, cases[i].name, &file, &line);
        assert_string_equal(file, "main.cf");
        assert_int_equal(line, cases[i].line);
    }
    const char *file;
    int line;
    config_get_origin(cfg, "max_idle", &file, &line);
    assert_string_equal(file, "default");
    assert_int_equal(line, 0);
    config_get_origin(cfg, "no_such_thing", &file, &line);
    assert_string_equal(file, "default");
    assert_int_equal(line, 0);
    config_free(cfg);
}

static void test_nul_bytes(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *text;
        size_t len;
        int errors;
        const char *message;
        const char *set;   /* set despite the error */
        const char *unset; /* left out */
    } cases[] = {
        { "in a value", "a = 1\nb = x\0y\nc = 3\n", 19, 1,
          "main.cf:2: line contains a NUL byte", "c", "b" },
        { "in a continuation", "a = 1\nb = x\n  y\0\nc = 3\n", 22, 1,
          "main.cf:3: line contains a NUL byte", "c", "b" },
        { "in a comment", "# x\0y\na = 1\n", 12, 1,
          "main.cf:1: line contains a NUL byte", "a", "zzz" },
        { "alone on a line", "a = 1\n\0\nb = 2\n", 14, 1,
          "main.cf:2: line contains a NUL byte", "b", "zzz" },
        { "at the end", "a = 1\nb = 2\0", 12, 1,
          "main.cf:2: line contains a NUL byte", "a", "b" },
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        struct config *cfg = config_create();
        assert_non_null(cfg);
        int errors = config_load_text(cfg, "main.cf", cases[i].text,
                                      cases[i].len);
        if (errors != cases[i].errors ||
            strcmp(config_last_error(cfg), cases[i].message) != 0)
            fail_msg("NUL %s: %d, \"%s\"", cases[i].name, errors,
                     config_last_error(cfg));
        assert_non_null(config_get_raw(cfg, cases[i].set));
        assert_null(config_get_raw(cfg, cases[i].unset));
        config_free(cfg);
    }
}

static void test_long_lines(void **state)
{
    (void)state;
    struct buf text;
    buf_init(&text, BUF_LIMIT_MAX);
    char *value_fits = repeat('x', CONFIG_LINE_MAX - 4); /* "a = " */
    char *value_over = repeat('y', CONFIG_LINE_MAX - 3);
    char *piece = repeat('z', CONFIG_LINE_MAX / 3);

    /* Exactly CONFIG_LINE_MAX bytes: fine. */
    assert_int_equal(buf_printf(&text, "a = %s\n", value_fits), 0);
    int errors;
    struct config *cfg = load(text_of(&text), &errors);
    assert_int_equal(errors, 0);
    assert_string_equal(config_get_raw(cfg, "a"), value_fits);
    config_free(cfg);

    /* One byte more, on line 3; lines before and after still count. */
    buf_reset(&text);
    assert_int_equal(buf_printf(&text, "b = 1\n# c\na = %s\nc = 2\n",
                                value_over), 0);
    cfg = load(text_of(&text), &errors);
    assert_int_equal(errors, 1);
    assert_string_equal(config_last_error(cfg),
                        "main.cf:3: logical line is longer than 16384 bytes");
    assert_null(config_get_raw(cfg, "a"));
    assert_string_equal(config_get_raw(cfg, "b"), "1");
    assert_string_equal(config_get_raw(cfg, "c"), "2");
    config_free(cfg);

    /* Too long only once continued: reported at the first line. */
    buf_reset(&text);
    assert_int_equal(buf_printf(&text, "b = 1\na = %s\n %s\n %s\n %s\nc = 2\n",
                                piece, piece, piece, piece), 0);
    cfg = load(text_of(&text), &errors);
    assert_int_equal(errors, 1);
    assert_string_equal(config_last_error(cfg),
                        "main.cf:2: logical line is longer than 16384 bytes");
    assert_null(config_get_raw(cfg, "a"));
    assert_string_equal(config_get_raw(cfg, "c"), "2");
    config_free(cfg);

    free(value_fits);
    free(value_over);
    free(piece);
    buf_free(&text);
}

/* ---------------------------------------------------------------------
 * $expansion.
 */

struct expand_case {
    const char *name;
    const char *text;
    const char *param;
    const char *expected;
};

static const struct expand_case expand_cases[] = {
    { "plain", "a = x\n", "a", "x" },
    { "$name", "a = x\nb = $a\n", "b", "x" },
    { "${name}", "a = x\nb = ${a}\n", "b", "x" },
    { "$(name)", "a = x\nb = $(a)\n", "b", "x" },
    { "name ends at non-name char", "a = x\nb = $a.$a-$a/\n", "b", "x.x-x/" },
    { "braces join text", "a = x\nb = pre${a}post\n", "b", "prexpost" },
    { "$name takes the longest name", "a = x\nab = y\nb = $ab\n", "b", "y" },
    { "$$", "b = a$$b\n", "b", "a$b" },
    { "$$name is literal", "a = x\nb = $$a\n", "b", "$a" },
    { "$$$name", "a = x\nb = $$$a\n", "b", "$x" },
    { "lone $ at the end", "b = cost 5$\n", "b", "cost 5$" },
    { "lone $ before space", "b = $ x\n", "b", "$ x" },
    { "$ before other char", "b = $-x\n", "b", "$-x" },
    { "undefined expands to nothing", "b = [$nothing]\n", "b", "[]" },
    { "undefined in braces", "b = [${nothing}]\n", "b", "[]" },
    { "${name?text} set", "a = x\nb = ${a?yes}\n", "b", "yes" },
    { "${name?text} empty", "a =\nb = ${a?yes}\n", "b", "" },
    { "${name?text} undefined", "b = ${a?yes}\n", "b", "" },
    { "${name:text} empty", "a =\nb = ${a:no}\n", "b", "no" },
    { "${name:text} set", "a = x\nb = ${a:no}\n", "b", "" },
    { "${name:text} undefined", "b = ${a:no}\n", "b", "no" },
    { "$(name?text)", "a = x\nb = $(a?ok)\n", "b", "ok" },
    { "$(name:text)", "b = $(a:ok)\n", "b", "ok" },
    { "conditional text expands", "a = x\nb = ${a?[$a]}\n", "b", "[x]" },
    { "conditional text nests",
      "a = x\nc = y\nb = ${a?<${c?${c}${c}}>}\n", "b", "<yy>" },
    { "conditional text with braces", "a = x\nb = ${a?{a b}}\n", "b",
      "{a b}" },
    { "conditional tests the expanded value", "e =\na = $e\nb = ${a:empty}\n",
      "b", "empty" },
    { "conditional with spaces", "a = x\nb = ${a? with spaces }\n", "b",
      " with spaces " },
    { "chain", "a = 1\nb = $a\nc = $b$b\nd = ${c}!\n", "d", "11!" },
    { "forward reference", "b = $a\na = late\n", "b", "late" },
    { "same name twice", "a = x\nb = $a $a $a\n", "b", "x x x" },
    { "defaults expand", "myhostname = mail.example.com\n", "myorigin",
      "mail.example.com" },
    { "default uses two defaults", "myhostname = mail.example.com\n",
      "smtpd_banner", "mail.example.com ESMTP Postino" },
    { "computed mydomain", "myhostname = mail.example.com\n", "mydomain",
      "example.com" },
    { "mydomain without a dot", "myhostname = host\n", "mydomain",
      "localdomain" },
    { "mydomain with a trailing dot", "myhostname = host.\n", "mydomain",
      "localdomain" },
    { "mydomain from an expanded myhostname",
      "h = mx.a.example\nmyhostname = $h\n", "mydomain", "a.example" },
    { "mydestination default",
      "myhostname = mail.example.com\n", "mydestination",
      "mail.example.com, localhost.example.com, localhost" },
    { "set mydomain used by a default",
      "myhostname = m.x.org\nmydomain = y.org\n", "mydestination",
      "m.x.org, localhost.y.org, localhost" },
    { "user variable in a known parameter",
      "site = example.org\nmyorigin = $site\n", "myorigin", "example.org" },
};

static void test_expand(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(expand_cases); i++) {
        const struct expand_case *c = &expand_cases[i];
        struct config *cfg = load_ok(c->text);
        const char *value = config_try_get_str(cfg, c->param);
        if (value == NULL || strcmp(value, c->expected) != 0)
            fail_msg("%s: \"%s\", expected \"%s\" (%s)", c->name,
                     value ? value : "(null)", c->expected,
                     config_last_error(cfg));
        assert_string_equal(config_get_str(cfg, c->param), c->expected);
        config_free(cfg);
    }
}

struct expand_error_case {
    const char *name;
    const char *text;
    const char *param;
    const char *message; /* config_last_error() after config_try_get_str */
    int check_errors;    /* what config_check() returns */
};

static const struct expand_error_case expand_error_cases[] = {
    { "self loop", "a = $a\n", "a",
      "main.cf:1: cannot expand a: loop in $expansion: $a -> $a", 1 },
    { "two loop", "a = $b\nb = $a\n", "a",
      "main.cf:1: cannot expand a: loop in $expansion: $a -> $b -> $a", 2 },
    { "two loop from the other end", "a = $b\nb = $a\n", "b",
      "main.cf:2: cannot expand b: loop in $expansion: $b -> $a -> $b", 2 },
    { "three loop", "a = $b\nb = ${c}\nc = x$(a)y\n", "b",
      "main.cf:2: cannot expand b: loop in $expansion: $b -> $c -> $a -> "
      "$b", 3 },
    { "loop entered from outside", "x = $a\na = $b\nb = $a\n", "x",
      "main.cf:1: cannot expand x: loop in $expansion: $a -> $b -> $a", 3 },
    { "loop through a conditional", "a = ${b?x}\nb = ${a:y}\n", "a",
      "main.cf:1: cannot expand a: loop in $expansion: $a -> $b -> $a", 2 },
    { "loop through conditional text", "a = x\nb = ${a?$b}\n", "b",
      "main.cf:2: cannot expand b: loop in $expansion: $b -> $b", 1 },
    { "loop through a computed default", "myhostname = $mydomain\n",
      "myhostname",
      "main.cf:1: cannot expand myhostname: loop in $expansion: $myhostname "
      "-> $mydomain -> $myhostname", 7 },
    { "loop through a default, reported for the default",
      "myhostname = $mydomain\n", "mydomain",
      "main.cf: cannot expand mydomain: loop in $expansion: $mydomain -> "
      "$myhostname -> $mydomain", 7 },
    { "missing }", "a = ${b\n", "a",
      "main.cf:1: cannot expand a: bad $expansion: missing '}' in \"${b\"",
      1 },
    { "missing )", "a = x $(b\n", "a",
      "main.cf:1: cannot expand a: bad $expansion: missing ')' in \"$(b\"",
      1 },
    { "missing ) after text", "a = x $(b?y\n", "a",
      "main.cf:1: cannot expand a: bad $expansion: missing ')' in \"$(b?y\"",
      1 },
    { "missing } after text", "a = ${b?x\n", "a",
      "main.cf:1: cannot expand a: bad $expansion: missing '}' in \"${b?x\"",
      1 },
    { "mismatched close", "a = ${b)\n", "a",
      "main.cf:1: cannot expand a: bad $expansion: bad character in "
      "parameter name in \"${b)\"", 1 },
    { "empty name", "a = ${}\n", "a",
      "main.cf:1: cannot expand a: bad $expansion: missing parameter name "
      "in \"${}\"", 1 },
    { "space in name", "a = ${b c}\n", "a",
      "main.cf:1: cannot expand a: bad $expansion: bad character in "
      "parameter name in \"${b c}\"", 1 },
    { "bad syntax in a referenced value", "a = $b\nb = ${\n", "a",
      "main.cf:1: cannot expand a: bad $expansion: missing '}' in \"${\"",
      2 },
};

static void test_expand_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(expand_error_cases); i++) {
        const struct expand_error_case *c = &expand_error_cases[i];
        struct config *cfg = load_ok(c->text);
        const char *value = config_try_get_str(cfg, c->param);
        if (value != NULL || strcmp(config_last_error(cfg), c->message) != 0)
            fail_msg("%s: got \"%s\", message \"%s\"", c->name,
                     value ? value : "(null)", config_last_error(cfg));
        int errors = config_check(cfg);
        if (errors != c->check_errors)
            fail_msg("%s: config_check %d, expected %d", c->name, errors,
                     c->check_errors);
        /* Asking again gives the same answer (no state left behind). */
        assert_null(config_try_get_str(cfg, c->param));
        assert_string_equal(config_last_error(cfg), c->message);
        config_free(cfg);
    }
}

/* A chain of n parameters p0 = $p1, ..., p(n-1) = end. */
static struct config *chain(int n, const char *link_format)
{
    struct buf text;
    buf_init(&text, BUF_LIMIT_MAX);
    for (int i = 0; i < n - 1; i++)
        assert_int_equal(buf_printf(&text, link_format, i, i + 1, i + 1), 0);
    assert_int_equal(buf_printf(&text, "p%d = end\n", n - 1), 0);
    struct config *cfg = load_ok(text_of(&text));
    buf_free(&text);
    return cfg;
}

static void test_expand_depth(void **state)
{
    (void)state;
    struct config *cfg = chain(CONFIG_EXPAND_DEPTH, "p%d = $p%d\n");
    assert_string_equal(config_get_str(cfg, "p0"), "end");
    config_free(cfg);

    cfg = chain(CONFIG_EXPAND_DEPTH + 1, "p%d = $p%d\n");
    assert_null(config_try_get_str(cfg, "p0"));
    assert_string_equal(config_last_error(cfg),
                        "main.cf:1: cannot expand p0: $expansion nested "
                        "more than 100 deep (a loop?)");
    /* From further down the chain it is short enough. */
    assert_string_equal(config_get_str(cfg, "p1"), "end");
    config_free(cfg);

    /* Conditional text counts too; 1000 deep must not crash. */
    cfg = chain(1000, "p%d = ${p%d?$p%d}\n");
    assert_null(config_try_get_str(cfg, "p0"));
    assert_non_null(strstr(config_last_error(cfg), "nested more than 100"));
    config_free(cfg);
}

/* Each value names the next one twice: 2^60 words if done naively. */
static void test_expand_blowup(void **state)
{
    (void)state;
    struct config *cfg = chain(60, "p%d = $p%d$p%d\n");
    assert_null(config_try_get_str(cfg, "p0"));
    assert_string_equal(config_last_error(cfg),
                        "main.cf:1: cannot expand p0: value is longer than "
                        "262144 bytes once expanded");
    config_free(cfg);

    cfg = chain(60, "p%d = ${p%d?}${p%d:}\n"); /* empty, but 2^60 tests */
    assert_string_equal(config_get_str(cfg, "p0"), "");
    assert_int_equal(config_check(cfg), 0);
    config_free(cfg);
}

/* A value depends on others; setting one of them changes it. */
static void test_expand_after_set(void **state)
{
    (void)state;
    struct config *cfg = load_ok("a = x\nb = [$a]\n");
    const char *first = config_get_str(cfg, "b");
    assert_string_equal(first, "[x]");
    assert_ptr_equal(config_get_str(cfg, "b"), first); /* cached */
    assert_int_equal(config_set(cfg, "a", "y", "test", 1), 0);
    assert_string_equal(config_get_str(cfg, "b"), "[y]");
    /* The earlier result stays readable until config_free. */
    assert_string_equal(first, "[x]");
    assert_int_equal(config_set(cfg, "b", "$a$a", "test", 2), 0);
    assert_string_equal(config_get_str(cfg, "b"), "yy");
    config_free(cfg);
}

/* ---------------------------------------------------------------------
 * Types.
 */

struct type_case {
    const char *name;
    const char *text;
    const char *param;
    int errors;
    const char *message; /* "" when there is none */
    long value;          /* when there is no error */
};

static const struct type_case type_cases[] = {
    { "time default", "", "max_idle", 0, "", 100 },
    { "time seconds", "max_idle = 50\n", "max_idle", 0, "", 50 },
    { "time minutes", "max_idle = 5m\n", "max_idle", 0, "", 300 },
    { "time upper bound", "max_idle = 1d\n", "max_idle", 0, "", 86400 },
    { "time lower bound", "max_idle = 1s\n", "max_idle", 0, "", 1 },
    { "time in days by default", "maximal_queue_lifetime = 3\n",
      "maximal_queue_lifetime", 0, "", 3 * 86400 },
    { "time default in days", "", "maximal_queue_lifetime", 0, "",
      5 * 86400 },
    { "time bad unit", "max_idle = 10x\n", "max_idle", 1,
      "main.cf:1: bad time value for max_idle: \"10x\" (unit must be s, m, "
      "h, d or w)", 0 },
    { "time bad word unit", "\n\nmax_idle = 10 secs\n", "max_idle", 1,
      "main.cf:3: bad time value for max_idle: \"10 secs\" (must be a number "
      "with an optional unit s, m, h, d or w)", 0 },
    { "time empty", "max_idle =\n", "max_idle", 1,
      "main.cf:1: bad time value for max_idle: \"\" (must be a number with "
      "an optional unit s, m, h, d or w)", 0 },
    { "time negative", "max_idle = -1\n", "max_idle", 1,
      "main.cf:1: bad time value for max_idle: \"-1\" (must be a number "
      "with an optional unit s, m, h, d or w)", 0 },
    { "time too large", "max_idle = 99999999999999999999\n", "max_idle", 1,
      "main.cf:1: bad time value for max_idle: \"99999999999999999999\" "
      "(number too large)", 0 },
    { "time above the range", "a = 1\nmax_idle = 2d\n", "max_idle", 1,
      "main.cf:2: bad time value for max_idle: \"2d\" (must be from 1s to "
      "1d)", 0 },
    { "time below the range", "max_idle = 0\n", "max_idle", 1,
      "main.cf:1: bad time value for max_idle: \"0\" (must be from 1s to "
      "1d)", 0 },
    { "time range in hours", "service_throttle_time = 61m\n",
      "service_throttle_time", 1,
      "main.cf:1: bad time value for service_throttle_time: \"61m\" (must "
      "be from 1s to 1h)", 0 },
    { "time through a reference", "t = 10x\nsmtpd_timeout = ${t}\n",
      "smtpd_timeout", 1,
      "main.cf:2: bad time value for smtpd_timeout: \"10x\" from \"${t}\" "
      "(unit must be s, m, h, d or w)", 0 },
    { "int", "default_process_limit = 7\n", "default_process_limit", 0, "",
      7 },
    { "int default", "", "line_length_limit", 0, "", 2048 },
    { "int junk", "default_process_limit = abc\n", "default_process_limit",
      1,
      "main.cf:1: bad integer value for default_process_limit: \"abc\" "
      "(must be a whole number from 1 to 100000)", 0 },
    { "int with unit", "default_process_limit = 10s\n",
      "default_process_limit", 1,
      "main.cf:1: bad integer value for default_process_limit: \"10s\" "
      "(must be a whole number from 1 to 100000)", 0 },
    { "int below the range", "default_process_limit = 0\n",
      "default_process_limit", 1,
      "main.cf:1: bad integer value for default_process_limit: \"0\" (must "
      "be a whole number from 1 to 100000)", 0 },
    { "int above the range", "max_use = 1000001\n", "max_use", 1,
      "main.cf:1: bad integer value for max_use: \"1000001\" (must be a "
      "whole number from 1 to 1000000)", 0 },
    { "int too large", "max_use = 99999999999999999999\n", "max_use", 1,
      "main.cf:1: bad integer value for max_use: \"99999999999999999999\" "
      "(must be a whole number from 1 to 1000000)", 0 },
    { "size", "message_size_limit = 10m\n", "message_size_limit", 0, "",
      10485760 },
    { "size default", "", "message_size_limit", 0, "", 10240000 },
    { "size zero", "message_size_limit = 0\n", "message_size_limit", 0, "",
      0 },
    { "size bad suffix", "message_size_limit = 10x\n", "message_size_limit",
      1,
      "main.cf:1: bad size value for message_size_limit: \"10x\" (suffix "
      "must be k, m or g)", 0 },
    { "size negative", "message_size_limit = -5\n", "message_size_limit", 1,
      "main.cf:1: bad size value for message_size_limit: \"-5\" (must be a "
      "number of bytes with an optional k, m or g suffix)", 0 },
    { "size too large", "message_size_limit = 99999999999g\n",
      "message_size_limit", 1,
      "main.cf:1: bad size value for message_size_limit: \"99999999999g\" "
      "(number too large)", 0 },
    { "bool yes", "soft_bounce = yes\n", "soft_bounce", 0, "", 1 },
    { "bool default", "", "soft_bounce", 0, "", 0 },
    { "bool bad", "soft_bounce = maybe\n", "soft_bounce", 1,
      "main.cf:1: bad boolean value for soft_bounce: \"maybe\" (must be yes "
      "or no)", 0 },
    { "long bad value is cut", "soft_bounce = "
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "\n", "soft_bounce", 1,
      "main.cf:1: bad boolean value for soft_bounce: \""
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\" (must be yes or no)", 0 },
};

static long typed_get(struct config *cfg, const char *name)
{
    switch (config_param_lookup(name)->type) {
    case CONFIG_INT: return config_get_int(cfg, name);
    case CONFIG_TIME: return config_get_time(cfg, name);
    case CONFIG_SIZE: return config_get_size(cfg, name);
    case CONFIG_BOOL: return config_get_bool(cfg, name);
    default: return -1;
    }
}

static void test_types(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(type_cases); i++) {
        const struct type_case *c = &type_cases[i];
        struct config *cfg = load_ok(c->text);
        int errors = config_check(cfg);
        if (errors != c->errors || strcmp(config_last_error(cfg), c->message))
            fail_msg("%s: %d errors, \"%s\"", c->name, errors,
                     config_last_error(cfg));
        if (errors == 0 && typed_get(cfg, c->param) != c->value)
            fail_msg("%s: %ld, expected %ld", c->name,
                     typed_get(cfg, c->param), c->value);
        config_free(cfg);
    }
}

static void test_check_counts_every_error(void **state)
{
    (void)state;
    struct config *cfg = load_ok("max_idle = 1x\nmax_use = y\n"
                                 "soft_bounce = z\nok = 1\nmyorigin = $ok\n");
    assert_int_equal(config_check(cfg), 3);
    assert_string_equal(config_last_error(cfg),
                        "main.cf:3: bad boolean value for soft_bounce: \"z\" "
                        "(must be yes or no)");
    config_free(cfg);
}

static void test_lists(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *param;
        const char *items[6];
    } cases[] = {
        { "", "mynetworks", { "127.0.0.0/8", "[::1]/128" } },
        { "", "inet_interfaces", { "all" } },
        { "mydestination = a, b ,c\td\n\te,,f\n", "mydestination",
          { "a", "b", "c", "d", "e", "f" } },
        { "mydestination = $x, y\nx = p q\n", "mydestination",
          { "p", "q", "y" } },
        { "alias_maps =\n", "alias_maps", { NULL } },
        { "alias_maps = ,, ,\n", "alias_maps", { NULL } },
        { "myhostname = h.example\n", "mydestination",
          { "h.example", "localhost.example", "localhost" } },
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        struct config *cfg = load_ok(cases[i].text);
        struct text_list list;
        config_get_list(cfg, cases[i].param, &list);
        size_t n = 0;
        while (n < COUNT(cases[i].items) && cases[i].items[n])
            n++;
        if (list.count != n)
            fail_msg("list %zu: %zu items, expected %zu", i, list.count, n);
        for (size_t k = 0; k < n; k++)
            assert_string_equal(list.items[k], cases[i].items[k]);
        text_list_free(&list);
        assert_int_equal(list.count, 0);
        config_free(cfg);
    }
}

/* ---------------------------------------------------------------------
 * Overrides, config_set, origins.
 */

static void test_override_precedence(void **state)
{
    (void)state;
    struct config *cfg = config_create();
    assert_non_null(cfg);
    assert_int_equal(config_get_time(cfg, "max_idle"), 100); /* default */
    assert_string_equal(config_get_raw(cfg, "max_idle"), "100s");

    assert_int_equal(config_load_text(cfg, "main.cf", "max_idle = 200\n",
                                      15), 0);
    assert_int_equal(config_get_time(cfg, "max_idle"), 200); /* file */

    assert_int_equal(config_set_override(cfg, "max_idle", "5m", "master.cf",
                                         14), 0);
    assert_int_equal(config_get_time(cfg, "max_idle"), 300); /* override */
    assert_string_equal(config_get_raw(cfg, "max_idle"), "5m");
    const char *file;
    int line;
    config_get_origin(cfg, "max_idle", &file, &line);
    assert_string_equal(file, "master.cf");
    assert_int_equal(line, 14);

    /* A file value set later does not beat the override. */
    assert_int_equal(config_load_text(cfg, "other.cf", "max_idle = 7\n", 13),
                     0);
    assert_int_equal(config_get_time(cfg, "max_idle"), 300);
    /* A second override does. */
    assert_int_equal(config_set_override(cfg, "max_idle", "9", "master.cf",
                                         20), 0);
    assert_int_equal(config_get_time(cfg, "max_idle"), 9);
    assert_int_equal(config_check(cfg), 0);
    config_free(cfg);
}

static void test_override_errors(void **state)
{
    (void)state;
    struct config *cfg = load_ok("max_idle = 200\nsmtpd_timeout = 1x\n");
    assert_int_equal(config_set_override(cfg, "max_idle", "10x", "master.cf",
                                         14), 0);
    assert_int_equal(config_set_override(cfg, "smtpd_timeout", "60",
                                         "master.cf", 15), 0);
    /* The bad file value is overridden; the bad override is reported at
     * its master.cf line. */
    assert_int_equal(config_check(cfg), 1);
    assert_string_equal(config_last_error(cfg),
                        "master.cf:14: bad time value for max_idle: \"10x\" "
                        "(unit must be s, m, h, d or w)");

    /* An override referencing a file value. */
    assert_int_equal(config_set_override(cfg, "max_idle", "$smtpd_timeout",
                                         "master.cf", 16), 0);
    assert_int_equal(config_check(cfg), 0);
    assert_int_equal(config_get_time(cfg, "max_idle"), 60);

    /* A bad name. */
    assert_int_equal(config_set_override(cfg, "bad name", "x", "master.cf",
                                         17), 1);
    assert_string_equal(config_last_error(cfg),
                        "master.cf:17: bad parameter name: \"bad name\" "
                        "(letters, digits and _ only)");
    assert_int_equal(config_set(cfg, "", "x", "command line", 0), 1);
    assert_string_equal(config_last_error(cfg),
                        "command line: bad parameter name: \"\" (letters, "
                        "digits and _ only)");
    config_free(cfg);
}

/* Values set without a line ("command line", 0) report without one. */
static void test_set_without_line(void **state)
{
    (void)state;
    struct config *cfg = config_create();
    assert_non_null(cfg);
    assert_int_equal(config_set(cfg, "config_directory", "/x", "command line",
                                0), 0);
    assert_string_equal(config_get_str(cfg, "config_directory"), "/x");
    assert_int_equal(config_set(cfg, "max_use", "lots", "command line", 0),
                     0);
    assert_int_equal(config_check(cfg), 1);
    assert_string_equal(config_last_error(cfg),
                        "command line: bad integer value for max_use: "
                        "\"lots\" (must be a whole number from 1 to "
                        "1000000)");
    config_free(cfg);
}

struct seen {
    struct buf text;
};

static void collect(void *ctx, const char *name, const char *raw,
                    const char *file, int line)
{
    struct seen *seen = ctx;
    assert_int_equal(buf_printf(&seen->text, "%s=%s@%s:%d;", name, raw, file,
                                line), 0);
}

static void test_foreach(void **state)
{
    (void)state;
    struct config *cfg = load_ok("b = 1\na = 2\nb = 3\n");
    config_get_str(cfg, "max_idle"); /* looked at, never set */
    assert_int_equal(config_set_override(cfg, "c", "4", "master.cf", 9), 0);
    assert_int_equal(config_set_override(cfg, "a", "5", "master.cf", 10), 0);
    struct seen seen;
    buf_init(&seen.text, 4096);
    config_foreach(cfg, collect, &seen);
    assert_string_equal(buf_cstr(&seen.text),
                        "b=3@main.cf:3;a=5@master.cf:10;c=4@master.cf:9;");
    buf_free(&seen.text);
    config_free(cfg);
}

/* ---------------------------------------------------------------------
 * "unused parameter".
 */

static const struct {
    const char *name;
    const char *text;
    const char *message; /* "" when there is no warning */
} unused_cases[] = {
    { "unused", "a = 1\nfoo = bar\n", "main.cf:2: unused parameter: foo=\"bar\"" },
    { "used by a known parameter", "foo = bar\nmyorigin = $foo\n", "" },
    { "used before it is set", "myorigin = ${foo}\nfoo = bar\n", "" },
    { "used in conditional text",
      "foo = x\nbar = y\nmyorigin = ${foo?$(bar)}\n", "" },
    { "used as a condition", "foo = x\nmyorigin = ${foo:z}\n", "" },
    { "used by an unused one", "foo = x\nbar = $foo\n",
      "main.cf:2: unused parameter: bar=\"$foo\"" },
    { "$$name is not a use", "foo = x\nmyorigin = $$foo\n",
      "main.cf:1: unused parameter: foo=\"x\"" },
    { "known parameters are never unused", "max_idle = 10\nsoft_bounce = no\n",
      "" },
    { "empty unused", "foo =\n", "main.cf:1: unused parameter: foo=\"\"" },
};

static void test_unused(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(unused_cases); i++) {
        struct config *cfg = load_ok(unused_cases[i].text);
        assert_int_equal(config_check(cfg), 0); /* warnings are not errors */
        if (strcmp(config_last_error(cfg), unused_cases[i].message) != 0)
            fail_msg("%s: \"%s\"", unused_cases[i].name,
                     config_last_error(cfg));
        config_free(cfg);
    }
}

static void test_unused_override(void **state)
{
    (void)state;
    struct config *cfg = load_ok("");
    assert_int_equal(config_set_override(cfg, "foo", "bar", "master.cf", 9),
                     0);
    assert_int_equal(config_check(cfg), 0);
    assert_string_equal(config_last_error(cfg),
                        "master.cf:9: unused parameter: foo=\"bar\"");
    assert_int_equal(config_set_override(cfg, "myorigin", "$foo", "master.cf",
                                         9), 0);
    assert_int_equal(config_check(cfg), 0);
    config_free(cfg);
}

/* ---------------------------------------------------------------------
 * Getters and the table.
 */

static void test_raw_and_str(void **state)
{
    (void)state;
    struct config *cfg = load_ok("a = x\nb = $a\nfoo = bar\n");
    assert_string_equal(config_get_raw(cfg, "b"), "$a");
    assert_string_equal(config_get_str(cfg, "b"), "x");
    assert_string_equal(config_get_str(cfg, "foo"), "bar"); /* user's own */
    assert_string_equal(config_get_raw(cfg, "myorigin"), "$myhostname");
    assert_null(config_get_raw(cfg, "no_such"));
    assert_null(config_try_get_str(cfg, "no_such"));
    assert_string_equal(config_last_error(cfg),
                        "unknown configuration parameter: no_such");

    char host[256];
    assert_int_equal(gethostname(host, sizeof(host)), 0);
    host[sizeof(host) - 1] = '\0';
    assert_string_equal(config_get_raw(cfg, "myhostname"), host);
    assert_string_equal(config_get_str(cfg, "myhostname"), host);
    assert_string_equal(config_get_str(cfg, "myorigin"), host);
    const char *dot = strchr(host, '.');
    assert_string_equal(config_get_str(cfg, "mydomain"),
                        dot && dot[1] ? dot + 1 : "localdomain");
    config_free(cfg);
}

static void test_defaults_check_clean(void **state)
{
    (void)state;
    struct config *cfg = config_create();
    assert_non_null(cfg);
    assert_int_equal(config_check(cfg), 0);
    assert_string_equal(config_last_error(cfg), "");
    assert_string_equal(config_get_str(cfg, "mail_owner"), "postino");
    assert_string_equal(config_get_str(cfg, "process_id_directory"), "pid");
    assert_int_equal(config_get_int(cfg, "default_process_limit"), 100);
    assert_int_equal(config_get_time(cfg, "daemon_timeout"), 18000);
    assert_int_equal(config_get_time(cfg, "ipc_timeout"), 3600);
    assert_int_equal(config_get_time(cfg, "service_throttle_time"), 60);
    assert_int_equal(config_get_time(cfg, "smtpd_timeout"), 300);
    assert_int_equal(config_get_int(cfg, "smtpd_recipient_limit"), 1000);
    assert_int_equal(config_get_int(cfg, "max_use"), 100);
    assert_int_equal(config_get_bool(cfg, "soft_bounce"), 0);
    config_free(cfg);
}

static void test_param_table(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        enum config_type type;
        const char *value; /* NULL: computed */
    } required[] = {
        { "config_directory", CONFIG_STRING, NULL },
        { "queue_directory", CONFIG_STRING, NULL },
        { "daemon_directory", CONFIG_STRING, NULL },
        { "command_directory", CONFIG_STRING, NULL },
        { "data_directory", CONFIG_STRING, NULL },
        { "mail_owner", CONFIG_STRING, "postino" },
        { "setgid_group", CONFIG_STRING, "postdrop" },
        { "default_privs", CONFIG_STRING, "nobody" },
        { "syslog_name", CONFIG_STRING, "postino" },
        { "syslog_facility", CONFIG_STRING, "mail" },
        { "maillog_file", CONFIG_STRING, "" },
        { "myhostname", CONFIG_STRING, NULL },
        { "mydomain", CONFIG_STRING, NULL },
        { "myorigin", CONFIG_STRING, "$myhostname" },
        { "mydestination", CONFIG_LIST,
          "$myhostname, localhost.$mydomain, localhost" },
        { "mynetworks", CONFIG_LIST, "127.0.0.0/8 [::1]/128" },
        { "inet_interfaces", CONFIG_LIST, "all" },
        { "inet_protocols", CONFIG_LIST, "all" },
        { "default_process_limit", CONFIG_INT, "100" },
        { "max_use", CONFIG_INT, "100" },
        { "max_idle", CONFIG_TIME, "100s" },
        { "service_throttle_time", CONFIG_TIME, "60s" },
        { "daemon_timeout", CONFIG_TIME, "18000s" },
        { "ipc_timeout", CONFIG_TIME, "3600s" },
        { "line_length_limit", CONFIG_INT, "2048" },
        { "message_size_limit", CONFIG_SIZE, "10240000" },
        { "smtpd_timeout", CONFIG_TIME, "300s" },
        { "smtpd_recipient_limit", CONFIG_INT, "1000" },
        { "recipient_delimiter", CONFIG_STRING, "" },
        { "alias_maps", CONFIG_LIST, "hash:/etc/aliases" },
        { "alias_database", CONFIG_LIST, "$alias_maps" },
        { "smtpd_tls_cert_file", CONFIG_STRING, "" },
        { "smtpd_tls_key_file", CONFIG_STRING, "" },
        { "smtpd_tls_security_level", CONFIG_STRING, "" },
        { "process_id_directory", CONFIG_STRING, "pid" },
    };
    for (size_t i = 0; i < COUNT(required); i++) {
        const struct config_param_def *def =
            config_param_lookup(required[i].name);
        if (def == NULL)
            fail_msg("parameter %s missing", required[i].name);
        assert_int_equal(def->type, required[i].type);
        if (required[i].value)
            assert_string_equal(def->default_value, required[i].value);
        else
            assert_true(def->default_value != NULL ||
                        def->default_fn != NULL);
        if (def->type == CONFIG_INT || def->type == CONFIG_TIME ||
            def->type == CONFIG_SIZE)
            assert_true(def->min <= def->max);
    }
    assert_non_null(config_param_lookup("myhostname")->default_fn);
    assert_non_null(config_param_lookup("mydomain")->default_fn);
    assert_null(config_param_lookup("no_such_parameter"));
    assert_int_equal(config_param_lookup("max_idle")->min, 1);
    assert_int_equal(config_param_lookup("max_idle")->max, 86400);
    assert_int_equal(config_param_lookup("service_throttle_time")->max, 3600);

    /* No name twice, every name valid (Postfix's names have upper case
     * and digits too: smtp_tls_CAfile). */
    for (const struct config_param_def *p = config_param_table; p->name; p++) {
        assert_int_equal(strspn(p->name, "abcdefghijklmnopqrstuvwxyz"
                                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                         "0123456789_"),
                         strlen(p->name));
        assert_ptr_equal(config_param_lookup(p->name), p);
    }
}

/* ---------------------------------------------------------------------
 * Files.
 */

static char *temp_dir(void)
{
    const char *base = getenv("TMPDIR");
    struct buf path;
    buf_init(&path, 4096);
    assert_int_equal(buf_printf(&path, "%s/test_config.XXXXXX",
                                base && *base ? base : "/tmp"), 0);
    char *dir = strdup(buf_cstr(&path));
    buf_free(&path);
    assert_non_null(dir);
    assert_non_null(mkdtemp(dir));
    return dir;
}

static void test_load_file(void **state)
{
    (void)state;
    char *dir = temp_dir();
    struct buf path;
    buf_init(&path, 4096);
    assert_int_equal(buf_printf(&path, "%s/main.cf", dir), 0);
    FILE *f = fopen(buf_cstr(&path), "w");
    assert_non_null(f);
    assert_true(fputs("# test\nmax_idle = 7m\nbroken\n", f) >= 0);
    assert_int_equal(fclose(f), 0);

    struct config *cfg = config_create();
    assert_non_null(cfg);
    assert_int_equal(config_load_file(cfg, buf_cstr(&path)), 1);
    struct buf expected;
    buf_init(&expected, 8192);
    assert_int_equal(buf_printf(&expected, "%s:3: missing '=' after "
                                "parameter name: \"broken\"",
                                buf_cstr(&path)), 0);
    assert_string_equal(config_last_error(cfg), buf_cstr(&expected));
    assert_int_equal(config_get_time(cfg, "max_idle"), 420);
    const char *file;
    int line;
    config_get_origin(cfg, "max_idle", &file, &line);
    assert_string_equal(file, buf_cstr(&path));
    assert_int_equal(line, 2);

    /* Missing file: -1 and errno. */
    assert_int_equal(unlink(buf_cstr(&path)), 0);
    errno = 0;
    assert_int_equal(config_load_file(cfg, buf_cstr(&path)), -1);
    assert_int_equal(errno, ENOENT);
    buf_reset(&expected);
    assert_int_equal(buf_printf(&expected, "%s: cannot read: %s",
                                buf_cstr(&path), strerror(ENOENT)), 0);
    assert_string_equal(config_last_error(cfg), buf_cstr(&expected));
    /* A directory cannot be read either. */
    assert_int_equal(config_load_file(cfg, dir), -1);
    assert_int_equal(errno, EISDIR);
    config_free(cfg);

    assert_int_equal(rmdir(dir), 0);
    free(dir);
    buf_free(&expected);
    buf_free(&path);
}

/* config_read_lines() directly: what the callback sees. */
static void record_line(void *ctx, int line_no, char *line,
                        const char *problem)
{
    struct buf *out = ctx;
    assert_int_equal(buf_printf(out, "%d[%s]%s;", line_no, line ? line : "",
                                problem ? "!" : ""), 0);
}

static void test_read_lines(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *expected;
    } cases[] = {
        { "", "" },
        { "a\nb\n", "1[a];2[b];" },
        { "  a\nb\n", "1[]!;2[b];" },
        { "a\n  b\n\tc\nd", "1[a b c];4[d];" },
        { "a  \n  b  \r\n#x\n\n  c\n", "1[a b c];" },
        { "a\n # not a continuation\n  b\n", "1[a b];" },
        { "#\n#\n  \n", "" },
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        struct buf out;
        buf_init(&out, 4096);
        config_read_lines(cases[i].text, strlen(cases[i].text), record_line,
                          &out);
        if (strcmp(buf_cstr(&out), cases[i].expected) != 0)
            fail_msg("lines %zu: \"%s\"", i, buf_cstr(&out));
        buf_free(&out);
    }
}

/* ---------------------------------------------------------------------
 * Getters that exit: run in a child, check its status and message.
 */

static void expect_fatal(const char *text, void (*call)(struct config *),
                         const char *message)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        if (dup2(fds[1], STDERR_FILENO) < 0)
            _exit(99);
        log_init("test", LOG_TO_TTY);
        struct config *cfg = config_create();
        if (cfg == NULL || config_load_text(cfg, "main.cf", text,
                                            strlen(text)) != 0)
            _exit(98);
        call(cfg);
        _exit(0); /* should not get here */
    }
    close(fds[1]);
    char output[4096];
    size_t len = 0;
    ssize_t n;
    while ((n = read(fds[0], output + len, sizeof(output) - 1 - len)) > 0)
        len += (size_t)n;
    output[len] = '\0';
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    if (strstr(output, message) == NULL)
        fail_msg("expected \"%s\" in \"%s\"", message, output);
}

static void call_get_time_max_idle(struct config *cfg)
{
    config_get_time(cfg, "max_idle");
}

static void call_get_int_unknown(struct config *cfg)
{
    config_get_int(cfg, "no_such_parameter");
}

static void call_get_str_loop(struct config *cfg)
{
    config_get_str(cfg, "a");
}

static void call_get_str_unknown(struct config *cfg)
{
    config_get_str(cfg, "no_such_parameter");
}

static void call_get_list_loop(struct config *cfg)
{
    struct text_list list;
    config_get_list(cfg, "mynetworks", &list);
}

static void test_fatal_getters(void **state)
{
    (void)state;
    expect_fatal("# x\nmax_idle = 10x\n", call_get_time_max_idle,
                 "fatal: main.cf:2: bad time value for max_idle: \"10x\" "
                 "(unit must be s, m, h, d or w)");
    expect_fatal("max_idle = 9d\n", call_get_time_max_idle,
                 "fatal: main.cf:1: bad time value for max_idle: \"9d\" "
                 "(must be from 1s to 1d)");
    expect_fatal("", call_get_int_unknown,
                 "fatal: unknown configuration parameter: no_such_parameter");
    expect_fatal("", call_get_str_unknown,
                 "fatal: unknown configuration parameter: no_such_parameter");
    expect_fatal("a = $b\nb = $a\n", call_get_str_loop,
                 "fatal: main.cf:1: cannot expand a: loop in $expansion: "
                 "$a -> $b -> $a");
    expect_fatal("mynetworks = $mynetworks\n", call_get_list_loop,
                 "fatal: main.cf:1: cannot expand mynetworks: loop in "
                 "$expansion: $mynetworks -> $mynetworks");
}

static int setup_quiet_log(void **state)
{
    (void)state;
    log_init("test", 0);
    return 0;
}

/* Names are found by hash: every one of many names of one's own, set in
 * turn while the index grows, reads back its own value; so does each
 * known parameter, set after them; and a name that differs from a set
 * one only in its last character, or is a prefix of one, is not found. */
static void test_many_names(void **state)
{
    (void)state;
    struct config *cfg = config_create();
    assert_non_null(cfg);
    char name[64], value[64];
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof(name), "own_name_%d", i);
        snprintf(value, sizeof(value), "value %d", i);
        assert_int_equal(config_set(cfg, name, value, "main.cf", i + 1), 0);
    }
    size_t known = 0;
    for (const struct config_param_def *p = config_param_table; p->name;
         p++, known++)
        assert_ptr_equal(config_param_lookup(p->name), p);
    assert_true(known > 100);
    assert_int_equal(config_set(cfg, "myhostname", "mx.example", "x", 0), 0);
    assert_int_equal(config_set(cfg, "max_use", "7", "x", 0), 0);
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof(name), "own_name_%d", i);
        snprintf(value, sizeof(value), "value %d", i);
        assert_string_equal(config_get_raw(cfg, name), value);
    }
    assert_string_equal(config_get_str(cfg, "myhostname"), "mx.example");
    assert_int_equal(config_get_int(cfg, "max_use"), 7);
    assert_int_equal(config_get_int(cfg, "default_process_limit"), 100);
    assert_null(config_get_raw(cfg, "own_name_1000"));
    assert_null(config_get_raw(cfg, "own_name_"));
    assert_null(config_get_raw(cfg, "max_us"));
    assert_null(config_get_raw(cfg, "max_usex"));
    config_free(cfg);
}


int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_bool),
        cmocka_unit_test(test_syntax),
        cmocka_unit_test(test_origin_lines),
        cmocka_unit_test(test_nul_bytes),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_expand),
        cmocka_unit_test(test_expand_errors),
        cmocka_unit_test(test_expand_depth),
        cmocka_unit_test(test_expand_blowup),
        cmocka_unit_test(test_expand_after_set),
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_check_counts_every_error),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_override_precedence),
        cmocka_unit_test(test_override_errors),
        cmocka_unit_test(test_set_without_line),
        cmocka_unit_test(test_foreach),
        cmocka_unit_test(test_unused),
        cmocka_unit_test(test_unused_override),
        cmocka_unit_test(test_raw_and_str),
        cmocka_unit_test(test_defaults_check_clean),
        cmocka_unit_test(test_param_table),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_read_lines),
        cmocka_unit_test(test_fatal_getters),
        cmocka_unit_test(test_many_names),
    };
    return cmocka_run_group_tests(tests, setup_quiet_log, NULL);
}
