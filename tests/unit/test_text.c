/*
 * test_text - unit tests for lib/text (bounded C string helpers).
 *
 * Table-driven: text_copy (truncation gives -1 and ""), text_parse_long
 * (strict decimal, range and overflow), text_trim, text_next_word and
 * text_equal_nocase (ASCII only, also under an 8-bit locale when one is
 * installed).
 *
 * Run: build/<cc>/tests/test_text (no arguments, no files, no privileges).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "text.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

struct copy_case {
    size_t size;
    const char *src;
    int rc;
    const char *dst;
};

static const struct copy_case copy_cases[] = {
    { 6, "hello", 0, "hello" },  { 100, "hello", 0, "hello" },
    { 5, "hello", -1, "" },      { 2, "hello", -1, "" },
    { 1, "", 0, "" },            { 1, "a", -1, "" },
    { 2, "a", 0, "a" },          { 16, "", 0, "" },
};

static void test_copy(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(copy_cases); i++) {
        const struct copy_case *c = &copy_cases[i];
        char dst[128];
        memset(dst, 'X', sizeof(dst));
        assert_int_equal(text_copy(dst, c->size, c->src), c->rc);
        assert_string_equal(dst, c->dst);
        /* Nothing is written past size. */
        assert_int_equal(dst[c->size], 'X');
    }
}

static void test_copy_size_zero(void **state)
{
    (void)state;
    char dst[4] = "abc";
    assert_int_equal(text_copy(dst, 0, "x"), -1);
    assert_string_equal(dst, "abc"); /* no room even for "" */
}

struct parse_case {
    const char *s;
    long min;
    long max;
    int rc;
    long value;
};

static const struct parse_case parse_cases[] = {
    { "0", 0, 10, 0, 0 },
    { "7", 0, 10, 0, 7 },
    { "+7", 0, 10, 0, 7 },
    { "-7", -10, 10, 0, -7 },
    { "-0", 0, 10, 0, 0 },
    { "007", 0, 10, 0, 7 },
    { "10", 10, 20, 0, 10 },   /* min itself */
    { "20", 10, 20, 0, 20 },   /* max itself */
    { "9", 10, 20, -1, 0 },    /* below min */
    { "21", 10, 20, -1, 0 },   /* above max */
    { "-1", 0, 10, -1, 0 },
    { "", 0, 10, -1, 0 },
    { "+", 0, 10, -1, 0 },
    { "-", -10, 10, -1, 0 },
    { "+-1", -10, 10, -1, 0 },
    { "--1", -10, 10, -1, 0 },
    { "12a", 0, 100, -1, 0 },
    { "a12", 0, 100, -1, 0 },
    { " 1", 0, 10, -1, 0 },
    { "1 ", 0, 10, -1, 0 },
    { "\t1", 0, 10, -1, 0 },
    { "1\n", 0, 10, -1, 0 },
    { "0x10", 0, 100, -1, 0 },
    { "1.5", 0, 10, -1, 0 },
    { "1e3", 0, 10000, -1, 0 },
    { "1,000", 0, 10000, -1, 0 },
    { "\xd9\xa3", 0, 10, -1, 0 }, /* ARABIC-INDIC DIGIT THREE */
    { "9223372036854775807", LONG_MIN, LONG_MAX, 0, LONG_MAX },
    { "-9223372036854775808", LONG_MIN, LONG_MAX, 0, LONG_MIN },
    { "9223372036854775808", LONG_MIN, LONG_MAX, -1, 0 },
    { "-9223372036854775809", LONG_MIN, LONG_MAX, -1, 0 },
    { "99999999999999999999999999", LONG_MIN, LONG_MAX, -1, 0 },
    { "00000000000000000000000000001", 0, 10, 0, 1 },
    { "5", 6, 4, -1, 0 }, /* empty range */
};

static void test_parse_long(void **state)
{
    (void)state;
    assert_int_equal(LONG_MAX, 9223372036854775807L); /* the table's LP64 */
    for (size_t i = 0; i < COUNT(parse_cases); i++) {
        const struct parse_case *c = &parse_cases[i];
        long value = 12345;
        int rc = text_parse_long(c->s, c->min, c->max, &value);
        if (rc != c->rc)
            fail_msg("text_parse_long(\"%s\", %ld, %ld) = %d, expected %d",
                     c->s, c->min, c->max, rc, c->rc);
        if (c->rc == 0)
            assert_int_equal(value, c->value);
        else
            assert_int_equal(value, 12345); /* untouched on failure */
    }
}

struct trim_case {
    const char *in;
    const char *out;
    size_t skipped; /* leading bytes skipped */
};

static const struct trim_case trim_cases[] = {
    { "abc", "abc", 0 },
    { "  a b  ", "a b", 2 },
    { "", "", 0 },
    { "   ", "", 3 },
    { "\t\n x\r\n", "x", 3 },
    { "\v\fx\v\f", "x", 2 },
    { "x ", "x", 0 },
    { " x", "x", 1 },
    { "a\tb", "a\tb", 0 },
    { "caf\xc3\xa0", "caf\xc3\xa0", 0 },  /* 0xA0 is not ASCII space */
    { "\xc2\x85x\xc2\x85", "\xc2\x85x\xc2\x85", 0 }, /* nor 0x85 */
};

static void test_trim(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(trim_cases); i++) {
        char s[64];
        assert_int_equal(text_copy(s, sizeof(s), trim_cases[i].in), 0);
        char *t = text_trim(s);
        assert_ptr_equal(t, s + trim_cases[i].skipped);
        assert_string_equal(t, trim_cases[i].out);
    }
}

#define MAX_WORDS 8

struct word_case {
    const char *in;
    const char *separators;
    const char *words[MAX_WORDS]; /* then NULL */
};

static const struct word_case word_cases[] = {
    { "a b c", " ", { "a", "b", "c", NULL } },
    { "  a   b  ", " ", { "a", "b", NULL } },
    { "", " ", { NULL } },
    { "    ", " ", { NULL } },
    { "one", " ", { "one", NULL } },
    { "a, b,\tc,,d", ", \t", { "a", "b", "c", "d", NULL } },
    { "key=value", "=", { "key", "value", NULL } },
    { "key==", "=", { "key", NULL } },
    { "a b", "", { "a b", NULL } },
    { "MAIL FROM:<a@b>", " :", { "MAIL", "FROM", "<a@b>", NULL } },
};

static void check_words(const struct word_case *c)
{
    char s[64];
    assert_int_equal(text_copy(s, sizeof(s), c->in), 0);
    char *cursor = s;
    for (size_t i = 0; i < MAX_WORDS; i++) {
        char *word = text_next_word(&cursor, c->separators);
        if (c->words[i] == NULL) {
            assert_null(word);
            break;
        }
        assert_non_null(word);
        assert_string_equal(word, c->words[i]);
        assert_true(word >= s && word < s + sizeof(s)); /* in place */
    }
    /* At the end it stays at the end. */
    assert_null(text_next_word(&cursor, c->separators));
    assert_null(text_next_word(&cursor, c->separators));
    assert_non_null(cursor);
    assert_int_equal(*cursor, '\0');
}

static void test_next_word(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(word_cases); i++)
        check_words(&word_cases[i]);
    char *cursor = NULL;
    assert_null(text_next_word(&cursor, " "));
}

/* The rest of the string is still there after a word: not hidden state. */
static void test_next_word_cursor(void **state)
{
    (void)state;
    char s[] = "first second third";
    char *cursor = s;
    assert_string_equal(text_next_word(&cursor, " "), "first");
    assert_string_equal(cursor, "second third");
    char copy[] = "x y";
    char *other = copy;
    assert_string_equal(text_next_word(&other, " "), "x");
    assert_string_equal(text_next_word(&cursor, " "), "second");
    assert_string_equal(text_next_word(&other, " "), "y");
    assert_string_equal(text_next_word(&cursor, " "), "third");
    assert_null(text_next_word(&cursor, " "));
}

struct nocase_case {
    const char *a;
    const char *b;
    int equal;
};

static const struct nocase_case nocase_cases[] = {
    { "abc", "abc", 1 },
    { "abc", "ABC", 1 },
    { "MaIl FrOm", "mail from", 1 },
    { "", "", 1 },
    { "", "a", 0 },
    { "a", "", 0 },
    { "abc", "abd", 0 },
    { "abc", "abcd", 0 },
    { "abcd", "abc", 0 },
    { "@", "`", 0 },  /* 'A' - 1 and 'a' - 1 */
    { "[", "{", 0 },  /* 'Z' + 1 and 'z' + 1 */
    { "I", "i", 1 },
    { "\xc0", "\xe0", 0 }, /* Latin-1 A grave: not ASCII */
    { "\xc9t\xc9", "\xe9t\xe9", 0 },
};

static void check_nocase_table(void)
{
    for (size_t i = 0; i < COUNT(nocase_cases); i++) {
        const struct nocase_case *c = &nocase_cases[i];
        int equal = text_equal_nocase(c->a, c->b);
        if (equal != c->equal)
            fail_msg("text_equal_nocase(\"%s\", \"%s\") = %d", c->a, c->b,
                     equal);
        assert_int_equal(text_equal_nocase(c->b, c->a), c->equal);
    }
}

static void test_equal_nocase(void **state)
{
    (void)state;
    check_nocase_table();
}

/* The same answers once a program has set an 8-bit locale, in which
 * <ctype.h> would call 0xC0 and 0xE0 the same letter, and 0xA0 space. */
static void test_locale_independent(void **state)
{
    (void)state;
    static const char *const locales[] = {
        "tr_TR.ISO-8859-9", "en_US.ISO-8859-1", "de_DE.ISO-8859-1",
        "fr_FR.ISO-8859-1", "en_US", "de_DE",
    };
    const char *set = NULL;
    for (size_t i = 0; i < COUNT(locales) && set == NULL; i++)
        set = setlocale(LC_CTYPE, locales[i]);
    if (set == NULL)
        skip(); /* no 8-bit locale installed */
    check_nocase_table();
    for (size_t i = 0; i < COUNT(trim_cases); i++) {
        char s[64];
        assert_int_equal(text_copy(s, sizeof(s), trim_cases[i].in), 0);
        assert_string_equal(text_trim(s), trim_cases[i].out);
    }
    assert_non_null(setlocale(LC_CTYPE, "C"));
}

int main(void)
{
    log_init("test", 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy),
        cmocka_unit_test(test_copy_size_zero),
        cmocka_unit_test(test_parse_long),
        cmocka_unit_test(test_trim),
        cmocka_unit_test(test_next_word),
        cmocka_unit_test(test_next_word_cursor),
        cmocka_unit_test(test_equal_nocase),
        cmocka_unit_test(test_locale_independent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
