/*
 * test_table_pcre - unit tests for the pcre: table driver
 * (tables/table_pcre.c), Postfix's pcre_table syntax on PCRE2.
 *
 * Table files are written into a mkdtemp() directory and opened through
 * table_open("pcre:FILE"); one test also drives table_pcre_ops directly.
 * Lookups are table-driven (file, key, expected result or not found):
 * every flag (i as a toggle of the case-insensitive default, m, s, x, A, E,
 * U, X), negation, if/endif nesting with and without negation, $1..$9,
 * ${n}, $(n) and $$, groups that took no part in the match, first match
 * wins, other delimiters and escaped delimiters, continuation lines and
 * comments.  Errors are checked word for word with their FILE:LINE: bad
 * regex (with the offset), unknown flag, $n out of range or in a negated
 * rule, unbalanced if/endif, text after endif, missing result, missing
 * file; and match-time errors (the match limit) and over-long results are
 * TABLE_ERROR, never "not found".
 *
 * Run: build/<cc>/tests/test_table_pcre
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "unit_dir.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "safe_file.h"
#include "table.h"
#include "table_driver.h"

struct fixture {
    struct buf dir;
    struct buf path; /* scratch: DIR/NAME */
    struct buf spec; /* scratch: pcre:DIR/NAME */
    struct buf error;
    struct buf value;
};

/* ------------------------------------------------------------ set-up */

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    buf_init(&f->dir, PATH_MAX);
    buf_init(&f->path, PATH_MAX);
    buf_init(&f->spec, PATH_MAX);
    buf_init(&f->error, 4096);
    buf_init(&f->value, TABLE_VALUE_MAX);
    const char *tmp = getenv("TMPDIR");
    if (buf_printf(&f->dir, "%s/test_table_pcre.XXXXXX",
                   tmp && tmp[0] ? tmp : "/tmp") != 0 ||
        mkdtemp(f->dir.data) == NULL)
        return -1;
    *state = f;
    return 0;
}

/* Removes every file in the test directory, then the directory. */

static int teardown(void **state)
{
    struct fixture *f = *state;
    unit_dir_remove(buf_cstr(&f->dir));
    buf_free(&f->dir);
    buf_free(&f->path);
    buf_free(&f->spec);
    buf_free(&f->error);
    buf_free(&f->value);
    free(f);
    return 0;
}

/* Sets f->path to DIR/name and f->spec to pcre:DIR/name. */
static void set_path(struct fixture *f, const char *name)
{
    buf_reset(&f->path);
    buf_reset(&f->spec);
    assert_int_equal(buf_printf(&f->path, "%s/%s", buf_cstr(&f->dir), name),
                     0);
    assert_int_equal(buf_printf(&f->spec, "pcre:%s", buf_cstr(&f->path)), 0);
}

/* Writes len bytes of text to DIR/name; f->path and f->spec name it. */
static void write_file_len(struct fixture *f, const char *name,
                           const char *text, size_t len)
{
    set_path(f, name);
    assert_int_equal(
        safe_file_write_atomic(buf_cstr(&f->path), text, len, 0644), 0);
}

static void write_file(struct fixture *f, const char *name, const char *text)
{
    write_file_len(f, name, text, strlen(text));
}

static struct table *open_spec(struct fixture *f)
{
    buf_reset(&f->error);
    return table_open(buf_cstr(&f->spec), 0, &f->error);
}

/* Opens f->spec, which must fail with exactly "DIR/NAME" + suffix. */
static void expect_open_error(struct fixture *f, const char *suffix)
{
    struct table *t = open_spec(f);
    if (t != NULL) {
        table_close(t);
        fail_msg("%s opened; expected the error ...%s", buf_cstr(&f->spec),
                 suffix);
    }
    struct buf want;
    buf_init(&want, 8192);
    assert_int_equal(buf_printf(&want, "%s%s", buf_cstr(&f->path), suffix),
                     0);
    assert_string_equal(buf_cstr(&f->error), buf_cstr(&want));
    buf_free(&want);
}

/* ---------------------------------------------------------- lookups */

struct table_file {
    const char *name;
    const char *text;
};

static const struct table_file lookup_files[] = {
    {"case", "/^caseless$/ caseless\n"
             "/^Exact$/i exact\n"
             "/^Twice$/ii twice\n"},
    {"multiline", "/^two$/m two-line\n"
                  "/^three$/ three\n"},
    {"dotall", "/^a.b$/s dotall\n"
               "/^c.d$/ plain\n"},
    {"extended", "/^a b c$/x ext\n"
                 "/^d e$/ spaced\n"},
    {"anchored", "/b/A anchored\n"
                 "/c/ unanchored\n"},
    {"dollar", "/^end$/E endonly\n"
               "/^fin$/ fin\n"},
    {"ungreedy", "/^(a+)/U <$1>\n"
                 "/^(b+)/ <$1>\n"
                 "/^(c+?)/U <$1>\n"
                 "/^(d+?)/ <$1>\n"},
    {"xflag", "/^x$/X xflag\n"
              "/^y$/iX yflag\n"},
    {"negation", "!/@example\\.com$/ external\n"},
    {"double_negation", "! !/^yes$/ double\n"
                        "!/./ empty $$\n"},
    {"if", "if /@example\\.com$/\n"
           "/^postmaster@/ pm-example\n"
           "if !/^admin/\n"
           "/^(.*)@/ user-$1\n"
           "endif\n"
           "/^admin/ admin-example\n"
           "ENDIF\n"
           "/^postmaster@/ pm-other\n"
           "/./ fallback\n"},
    {"if_flags", "if /@EXAMPLE$/i\n"
                 "if /^a/\n"
                 "if /^ab/\n"
                 "/^abc/ abc-upper\n"
                 "endif\n"
                 "/^a/ a-upper\n"
                 "endif\n"
                 "endif\n"
                 "/./ other\n"},
    {"if_last", "if !/x/\n"
                "/y/ z\n"
                "endif\n"},
    {"if_empty", "if /a/\n"
                 "endif\n"
                 "/a/ after-empty-if\n"},
    {"subst", "/^(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)$/ "
              "$9$8$7$6$5$4$3$2$1-${10}${11}-${1}0-$10\n"
              "/^cost (\\d+)$/ $$$1 USD $$\n"
              "/^opt(ional)?-(x)$/ [$1][$2]\n"
              "/^(\\w+)@(\\w+)$/ $(2) at ${1}\n"
              "/^(x)(y)?$/ [${2}]\n"
              "/^(lit)$/ no groups here\n"
              "/^(?<name>named)$/ <${1}>\n"},
    {"order", "/^a/ first\n"
              "/^ab/ second\n"
              "/b/ third\n"},
    {"empty_pattern", "// everything\n"},
    {"delimiters", "/^a\\/b$/ slash\n"
                   "|^/path/(\\w+)$| path-$1\n"
                   "|^x\\|y$| pipe\n"
                   ",^(one|two)$, comma-$1\n"
                   "/^\\d\\/\\d$/ digits\n"
                   "%^100\\%$%i percent\n"},
    {"continuation", "# a comment at the top\n"
                     "\n"
                     "/^cont$/\n"
                     "    continued result\n"
                     "   # an indented comment\n"
                     "/^multi$/ one\n"
                     "\ttwo\n"
                     "  # a comment between continuation lines\n"
                     "\n"
                     "\tthree\n"
                     "/^pat\n"
                     " tern$/x joined\n"
                     "/^trim$/    spaced   out   \t\n"
                     "#/^commented$/ never\n"
                     "/^crlf$/ dos\r\n"
                     "/^hash$/ a # is text here"},
    {"empty", ""},
    {"comments_only", "# nothing\n\n   \n\t# here\n"},
};

struct lookup_case {
    const char *file;
    const char *key;
    const char *expect; /* NULL: not found */
};

static const struct lookup_case lookup_cases[] = {
    /* i toggles the default, case-insensitive matching */
    {"case", "CaseLESS", "caseless"},
    {"case", "Exact", "exact"},
    {"case", "exact", NULL},
    {"case", "EXACT", NULL},
    {"case", "tWICE", "twice"},
    /* m: ^ and $ at line breaks */
    {"multiline", "one\ntwo", "two-line"},
    {"multiline", "one\ntwo\nx", "two-line"},
    {"multiline", "one\nthree", NULL},
    {"multiline", "three", "three"},
    /* s: dot matches a newline */
    {"dotall", "a\nb", "dotall"},
    {"dotall", "c\nd", NULL},
    {"dotall", "cxd", "plain"},
    /* x: white space in the pattern ignored */
    {"extended", "abc", "ext"},
    {"extended", "a b c", NULL},
    {"extended", "d e", "spaced"},
    {"extended", "de", NULL},
    /* A: anchored at the start */
    {"anchored", "bx", "anchored"},
    {"anchored", "ab", NULL},
    {"anchored", "ac", "unanchored"},
    /* E: $ only at the very end, not before a final newline */
    {"dollar", "end", "endonly"},
    {"dollar", "end\n", NULL},
    {"dollar", "fin\n", "fin"},
    /* U: toggles greediness */
    {"ungreedy", "aaa", "<a>"},
    {"ungreedy", "bbb", "<bbb>"},
    {"ungreedy", "ccc", "<ccc>"},
    {"ungreedy", "ddd", "<d>"},
    /* X: accepted and ignored */
    {"xflag", "X", "xflag"},
    {"xflag", "Y", NULL},
    {"xflag", "y", "yflag"},
    /* negation */
    {"negation", "a@example.com", NULL},
    {"negation", "a@EXAMPLE.COM", NULL},
    {"negation", "a@other.org", "external"},
    {"double_negation", "yes", "double"},
    {"double_negation", "no", NULL},
    {"double_negation", "", "empty $"},
    /* if/endif, nested, negated, upper-case keyword */
    {"if", "postmaster@example.com", "pm-example"},
    {"if", "bob@example.com", "user-bob"},
    {"if", "admin@example.com", "admin-example"},
    {"if", "Admin@Example.COM", "admin-example"},
    {"if", "postmaster@other.org", "pm-other"},
    {"if", "x@other.org", "fallback"},
    {"if", "", NULL},
    {"if_flags", "abc@EXAMPLE", "abc-upper"},
    {"if_flags", "ab@EXAMPLE", "a-upper"},
    {"if_flags", "abc@example", "other"},
    {"if_flags", "b@EXAMPLE", "other"},
    {"if_flags", "", NULL},
    {"if_last", "y", "z"},
    {"if_last", "xy", NULL},
    {"if_empty", "a", "after-empty-if"},
    {"if_empty", "b", NULL},
    /* substitution */
    {"subst", "abcdefghijk", "ihgfedcba-jk-a0-a0"},
    {"subst", "cost 42", "$42 USD $"},
    {"subst", "opt-x", "[][x]"},
    {"subst", "optional-x", "[ional][x]"},
    {"subst", "joe@host", "host at joe"},
    {"subst", "JOE@Host", "Host at JOE"},
    {"subst", "x", "[]"},
    {"subst", "xy", "[y]"},
    {"subst", "lit", "no groups here"},
    {"subst", "Named", "<Named>"},
    /* the first rule that matches wins */
    {"order", "abc", "first"},
    {"order", "xb", "third"},
    {"order", "zzz", NULL},
    {"empty_pattern", "", "everything"},
    {"empty_pattern", "anything", "everything"},
    /* delimiters and escaped delimiters */
    {"delimiters", "a/b", "slash"},
    {"delimiters", "/path/foo", "path-foo"},
    {"delimiters", "x|y", "pipe"},
    {"delimiters", "x", NULL},
    {"delimiters", "two", "comma-two"},
    {"delimiters", "1/2", "digits"},
    {"delimiters", "100%", "percent"},
    /* continuation lines and comments */
    {"continuation", "cont", "continued result"},
    {"continuation", "multi", "one two three"},
    {"continuation", "pattern", "joined"},
    {"continuation", "trim", "spaced   out"},
    {"continuation", "crlf", "dos"},
    {"continuation", "hash", "a # is text here"},
    {"continuation", "commented", NULL},
    {"continuation", "#/^commented$/ never", NULL},
    {"continuation", "# a comment at the top", NULL},
    {"empty", "anything", NULL},
    {"empty", "", NULL},
    {"comments_only", "# nothing", NULL},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void check_case(struct fixture *f, struct table *t,
                       const struct lookup_case *c)
{
    buf_reset(&f->error);
    assert_int_equal(buf_set_str(&f->value, "stale value"), 0);
    int rc = table_lookup(t, c->key, &f->value, &f->error);
    if (rc == TABLE_ERROR)
        fail_msg("%s, key \"%s\": error %s", c->file, c->key,
                 buf_cstr(&f->error));
    if (c->expect == NULL && rc != TABLE_NOT_FOUND)
        fail_msg("%s, key \"%s\": found \"%s\", expected not found", c->file,
                 c->key, buf_cstr(&f->value));
    if (c->expect == NULL)
        return;
    if (rc != TABLE_FOUND)
        fail_msg("%s, key \"%s\": not found, expected \"%s\"", c->file,
                 c->key, c->expect);
    if (strcmp(buf_cstr(&f->value), c->expect) != 0 ||
        f->value.len != strlen(c->expect))
        fail_msg("%s, key \"%s\": got \"%s\", expected \"%s\"", c->file,
                 c->key, buf_cstr(&f->value), c->expect);
}

static void test_lookups(void **state)
{
    struct fixture *f = *state;
    size_t checked = 0;
    for (size_t i = 0; i < COUNT(lookup_files); i++) {
        write_file(f, lookup_files[i].name, lookup_files[i].text);
        struct table *t = open_spec(f);
        if (t == NULL)
            fail_msg("%s: %s", lookup_files[i].name, buf_cstr(&f->error));
        for (size_t j = 0; j < COUNT(lookup_cases); j++) {
            if (strcmp(lookup_cases[j].file, lookup_files[i].name) != 0)
                continue;
            check_case(f, t, &lookup_cases[j]);
            checked++;
        }
        table_close(t);
    }
    assert_int_equal(checked, COUNT(lookup_cases));
}

/* ----------------------------------------------------------- errors */

struct error_case {
    const char *name;
    const char *text;
    const char *suffix; /* the error is "DIR/NAME" followed by this */
};

static const struct error_case error_cases[] = {
    {"bad_regex", "/ok/ fine\n/a(b/ broken\n",
     ":2: bad pattern \"a(b\": missing closing parenthesis at offset 3"},
    {"bad_regex_offset", "# comment\n\n/^abcdef)/ x\n",
     ":3: bad pattern \"^abcdef)\": unmatched closing parenthesis at "
     "offset 7"},
    {"bad_regex_in_if", "if /a[/\n/x/ y\nendif\n",
     ":1: bad pattern \"a[\": missing terminating ] for character class at "
     "offset 2"},
    {"unknown_flag", "/abc/iq result\n",
     ":1: unknown flag 'q' after the pattern \"abc\""},
    {"unknown_flag_if", "if /abc/z\nendif\n",
     ":1: unknown flag 'z' after the pattern \"abc\""},
    {"group_range", "/^(a)(b)$/ $3\n",
     ":1: $3 refers to a group the pattern does not have (it has 2)"},
    {"group_range_braces", "/^(a)$/ x${12}\n",
     ":1: ${12} refers to a group the pattern does not have (it has 1)"},
    {"group_range_parens", "/^(a)$/ x$(2)y\n",
     ":1: $(2) refers to a group the pattern does not have (it has 1)"},
    {"group_range_none", "/^a$/ $1\n",
     ":1: $1 refers to a group the pattern does not have (it has 0)"},
    {"group_zero", "/^(a)$/ $0\n",
     ":1: $0 is not a group: groups are numbered from 1"},
    {"negated_group", "!/^(a)$/ x$1\n",
     ":1: $1 in the result of a negated pattern: a pattern that does not "
     "match has no groups"},
    {"negated_group_braces", "/x/ y\n! /^(a)$/ ${1}\n",
     ":2: ${1} in the result of a negated pattern: a pattern that does not "
     "match has no groups"},
    {"bare_dollar", "/a/ cost $ 5\n",
     ":1: \"$\" in the result must be followed by a group number, {n} or "
     "(n); write $$ for a literal \"$\""},
    {"dollar_at_end", "/a/ cost$\n",
     ":1: \"$\" in the result must be followed by a group number, {n} or "
     "(n); write $$ for a literal \"$\""},
    {"unclosed_brace", "/(a)/ ${1\n",
     ":1: \"$\" in the result must be followed by a group number, {n} or "
     "(n); write $$ for a literal \"$\""},
    {"three_digit_group", "/(a)/ ${100}\n",
     ":1: \"$\" in the result must be followed by a group number, {n} or "
     "(n); write $$ for a literal \"$\""},
    {"endif_without_if", "/a/ b\nendif\n", ":2: endif without if"},
    {"if_without_endif", "/a/ b\nif /x/\n/y/ z\n", ":2: if without endif"},
    {"nested_unclosed", "if /a/\nif /b/\nendif\n", ":1: if without endif"},
    {"text_after_endif", "if /x/\n/y/ z\nendif junk\n",
     ":3: text after endif"},
    {"text_after_if", "if /x/ junk\nendif\n",
     ":1: text after the pattern of an if"},
    {"if_without_pattern", "if\nendif\n", ":1: missing pattern"},
    {"missing_result", "/abc/\n",
     ":1: missing result after the pattern \"abc\""},
    {"missing_result_flags", "\n\n/abc/i   \n",
     ":3: missing result after the pattern \"abc\""},
    {"negation_only", "!\n", ":1: missing pattern"},
    {"missing_delimiter", "/abc result\n",
     ":1: missing closing '/' of the pattern"},
    {"escaped_last_delimiter", "|abc\\| x\n",
     ":1: missing closing '|' of the pattern"},
    {"not_a_rule", "/a/ b\nabc def\n",
     ":2: expected \"/pattern/flags result\", \"if /pattern/flags\" or "
     "\"endif\""},
    {"ifx_is_not_if", "ifx /a/\n",
     ":1: expected \"/pattern/flags result\", \"if /pattern/flags\" or "
     "\"endif\""},
    {"backslash_delimiter", "\\a\\ x\n",
     ":1: pattern must start with a delimiter such as '/', not '\\'"},
    {"continuation_first", "  /a/ b\n",
     ":1: continuation line (starting with white space) without a line "
     "before it"},
    {"continued_rule_line", "/ok/ a\n/x/\n  $2\n",
     ":2: $2 refers to a group the pattern does not have (it has 0)"},
    /* only the first of several errors reaches the caller */
    {"first_error_only", "/a(/ x\n/b/q y\nendif\n",
     ":1: bad pattern \"a(\": missing closing parenthesis at offset 2"},
};

static void test_errors(void **state)
{
    struct fixture *f = *state;
    for (size_t i = 0; i < COUNT(error_cases); i++) {
        write_file(f, error_cases[i].name, error_cases[i].text);
        expect_open_error(f, error_cases[i].suffix);
    }
}

static void test_missing_file(void **state)
{
    struct fixture *f = *state;
    set_path(f, "no-such-file");
    expect_open_error(f, ": No such file or directory");
    set_path(f, "");
    expect_open_error(f, ": Is a directory");
}

static void test_nul_byte(void **state)
{
    struct fixture *f = *state;
    static const char text[] = "/a/ b\n/c/ d\0e\n";
    write_file_len(f, "nul", text, sizeof(text) - 1);
    expect_open_error(f, ":2: NUL byte in line");
}

static void test_line_too_long(void **state)
{
    struct fixture *f = *state;
    struct buf text;
    buf_init(&text, 2 * TABLE_VALUE_MAX);
    assert_int_equal(buf_append_str(&text, "/ok/ fine\n/a/ "), 0);
    for (size_t i = 0; i < TABLE_VALUE_MAX; i++)
        assert_int_equal(buf_append_char(&text, 'v'), 0);
    write_file_len(f, "too_long", buf_cstr(&text), text.len);
    buf_free(&text);
    expect_open_error(f, ":2: line longer than 1048576 bytes");
}

/* A long bad pattern is shown cut, so that the message stays readable. */
static void test_long_pattern_cut(void **state)
{
    struct fixture *f = *state;
    struct buf text;
    buf_init(&text, 8192);
    assert_int_equal(buf_append_char(&text, '/'), 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(buf_append_char(&text, 'p'), 0);
    assert_int_equal(buf_append_str(&text, "(/ x\n"), 0);
    write_file(f, "long_pattern", buf_cstr(&text));
    buf_reset(&text);
    assert_int_equal(buf_append_str(&text, ":1: bad pattern \""), 0);
    for (int i = 0; i < 200; i++)
        assert_int_equal(buf_append_char(&text, 'p'), 0);
    assert_int_equal(buf_append_str(&text, "...\": missing closing "
                                           "parenthesis at offset 1001"),
                     0);
    expect_open_error(f, buf_cstr(&text));
    buf_free(&text);
}

/* ------------------------------------------------- lookup-time errors */

static void test_match_limit(void **state)
{
    struct fixture *f = *state;
    write_file(f, "match_limit", "/^ok$/ ok\n"
                                 "/(*LIMIT_MATCH=20)^(a+)+$/ never\n"
                                 "/./ fallback\n");
    struct table *t = open_spec(f);
    assert_non_null(t);
    assert_int_equal(table_lookup(t, "ok", &f->value, &f->error),
                     TABLE_FOUND);
    assert_string_equal(buf_cstr(&f->value), "ok");
    buf_reset(&f->error);
    assert_int_equal(table_lookup(t, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!",
                                  &f->value, &f->error),
                     TABLE_ERROR);
    struct buf want;
    buf_init(&want, 8192);
    assert_int_equal(
        buf_printf(&want, "%s:2: matching the pattern "
                          "\"(*LIMIT_MATCH=20)^(a+)+$\" failed: match limit "
                          "exceeded", buf_cstr(&f->path)),
        0);
    assert_string_equal(buf_cstr(&f->error), buf_cstr(&want));
    buf_free(&want);
    /* the table goes on working after the error */
    buf_reset(&f->error);
    assert_int_equal(table_lookup(t, "ok", &f->value, &f->error),
                     TABLE_FOUND);
    table_close(t);
}

static void test_result_too_long(void **state)
{
    struct fixture *f = *state;
    struct buf text;
    buf_init(&text, 2 * TABLE_VALUE_MAX);
    assert_int_equal(buf_append_str(&text, "/^(.*)$/ "), 0);
    for (size_t i = 0; i < TABLE_VALUE_MAX - 100; i++)
        assert_int_equal(buf_append_char(&text, 'v'), 0);
    assert_int_equal(buf_append_str(&text, "$1\n"), 0);
    write_file_len(f, "long_result", buf_cstr(&text), text.len);
    buf_free(&text);
    struct table *t = open_spec(f);
    assert_non_null(t);
    assert_int_equal(table_lookup(t, "k", &f->value, &f->error),
                     TABLE_FOUND);
    assert_int_equal(f->value.len, TABLE_VALUE_MAX - 100 + 1);
    assert_int_equal(f->value.data[f->value.len - 1], 'k');

    char key[201];
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    buf_reset(&f->error);
    assert_int_equal(table_lookup(t, key, &f->value, &f->error), TABLE_ERROR);
    struct buf want;
    buf_init(&want, 8192);
    assert_int_equal(buf_printf(&want, "%s:1: result longer than 1048576 "
                                       "bytes", buf_cstr(&f->path)),
                     0);
    assert_string_equal(buf_cstr(&f->error), buf_cstr(&want));
    buf_free(&want);
    table_close(t);
}

/* --------------------------------------------------- driver interface */

/* The driver called directly, with a struct table filled in by hand. */
static void test_driver_direct(void **state)
{
    struct fixture *f = *state;
    write_file(f, "direct", "/^(\\w+)@example\\.com$/ $1@example.org\n");
    assert_string_equal(table_pcre_ops.type, "pcre");
    assert_null(table_pcre_ops.iterate);
    struct table t = {
        .ops = &table_pcre_ops,
        .spec = f->spec.data,
        .name = f->path.data,
        .flags = 0,
        .state = NULL,
    };
    buf_reset(&f->error);
    assert_int_equal(table_pcre_ops.open(&t, t.name, &f->error), 0);
    assert_non_null(t.state);
    assert_int_equal(table_pcre_ops.lookup(&t, "Joe@Example.COM", &f->value,
                                           &f->error),
                     TABLE_FOUND);
    assert_string_equal(buf_cstr(&f->value), "Joe@example.org");
    assert_int_equal(
        table_pcre_ops.lookup(&t, "joe@example.net", &f->value, &f->error),
        TABLE_NOT_FOUND);
    table_pcre_ops.close(&t);
    assert_null(t.state);

    /* a failed open leaves nothing behind */
    write_file(f, "direct_bad", "/a(/ x\n");
    t.name = f->path.data;
    t.spec = f->spec.data;
    buf_reset(&f->error);
    assert_int_equal(table_pcre_ops.open(&t, t.name, &f->error), -1);
    assert_null(t.state);
    assert_non_null(strstr(buf_cstr(&f->error), ":1: bad pattern"));
}

/* TABLE_FLAG_KEEP_CASE changes nothing: keys are never folded. */
static void test_keep_case_flag(void **state)
{
    struct fixture *f = *state;
    write_file(f, "keep_case", "/^(Joe)$/ <$1>\n/^(joe)$/i lower\n");
    buf_reset(&f->error);
    struct table *t =
        table_open(buf_cstr(&f->spec), TABLE_FLAG_KEEP_CASE, &f->error);
    assert_non_null(t);
    assert_int_equal(table_lookup(t, "JOE", &f->value, &f->error),
                     TABLE_FOUND);
    assert_string_equal(buf_cstr(&f->value), "<JOE>");
    table_close(t);
    t = open_spec(f);
    assert_non_null(t);
    assert_int_equal(table_lookup(t, "jOe", &f->value, &f->error),
                     TABLE_FOUND);
    assert_string_equal(buf_cstr(&f->value), "<jOe>");
    table_close(t);
}

static void test_cannot_list(void **state)
{
    struct fixture *f = *state;
    write_file(f, "list", "/a/ b\n");
    struct table *t = open_spec(f);
    assert_non_null(t);
    buf_reset(&f->error);
    assert_int_equal(table_iterate(t, NULL, NULL, &f->error), TABLE_ERROR);
    assert_non_null(strstr(buf_cstr(&f->error), "cannot be listed"));
    assert_string_equal(table_spec(t), buf_cstr(&f->spec));
    table_close(t);
}

/* Many lookups on one table reuse its match data; results stay right. */
static void test_many_lookups(void **state)
{
    struct fixture *f = *state;
    write_file(f, "many", "/^user(\\d+)@(\\w+)\\.example$/ $2-$1\n"
                          "!/^user/ other\n");
    struct table *t = open_spec(f);
    assert_non_null(t);
    struct buf key, want;
    buf_init(&key, 256);
    buf_init(&want, 256);
    for (int i = 0; i < 2000; i++) {
        buf_reset(&key);
        buf_reset(&want);
        assert_int_equal(buf_printf(&key, "user%d@host%d.example", i, i % 7),
                         0);
        assert_int_equal(buf_printf(&want, "host%d-%d", i % 7, i), 0);
        assert_int_equal(
            table_lookup(t, buf_cstr(&key), &f->value, &f->error),
            TABLE_FOUND);
        assert_string_equal(buf_cstr(&f->value), buf_cstr(&want));
        assert_int_equal(table_lookup(t, "x", &f->value, &f->error),
                         TABLE_FOUND);
        assert_string_equal(buf_cstr(&f->value), "other");
        assert_int_equal(table_lookup(t, "user1@", &f->value, &f->error),
                         TABLE_NOT_FOUND);
    }
    buf_free(&key);
    buf_free(&want);
    table_close(t);
}

int main(void)
{
    log_init("test_table_pcre", 0); /* errors are checked, not shown */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lookups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nul_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_line_too_long, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_pattern_cut, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_match_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_result_too_long, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_driver_direct, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_case_flag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cannot_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_lookups, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
