/*
 * test_base64 - unit tests for lib/base64 (RFC 4648 section 4, strict).
 *
 * Table-driven: the RFC 4648 section 10 vectors both ways, binary round
 * trips of every length up to 300, invalid texts (characters outside the
 * alphabet, white space, wrong length, misplaced padding, data after the
 * padding, non-zero bits before the padding, NUL), and the struct buf
 * limit (too long, out untouched on every failure, appending).
 *
 * Run: build/<cc>/tests/test_base64 (no arguments, no files, no privileges).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "base64.h"
#include "buf.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

struct vector {
    const char *plain;
    const char *encoded;
};

/* RFC 4648 section 10. */
static const struct vector rfc_vectors[] = {
    { "", "" },
    { "f", "Zg==" },
    { "fo", "Zm8=" },
    { "foo", "Zm9v" },
    { "foob", "Zm9vYg==" },
    { "fooba", "Zm9vYmE=" },
    { "foobar", "Zm9vYmFy" },
};

static void test_rfc_encode(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(rfc_vectors); i++) {
        const struct vector *v = &rfc_vectors[i];
        struct buf out;
        buf_init(&out, 64);
        assert_int_equal(base64_encode(v->plain, strlen(v->plain), &out),
                         BASE64_OK);
        assert_string_equal(buf_cstr(&out), v->encoded);
        assert_int_equal(out.len, strlen(v->encoded));
        assert_int_equal(base64_encoded_length(strlen(v->plain)), out.len);
        buf_free(&out);
    }
}

static void test_rfc_decode(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(rfc_vectors); i++) {
        const struct vector *v = &rfc_vectors[i];
        struct buf out;
        buf_init(&out, 64);
        assert_int_equal(base64_decode(v->encoded, strlen(v->encoded), &out),
                         BASE64_OK);
        assert_int_equal(out.len, strlen(v->plain));
        assert_memory_equal(buf_cstr(&out), v->plain, out.len);
        assert_int_equal(buf_cstr(&out)[out.len], '\0');
        buf_free(&out);
    }
}

/* Every length from 0 to 300, octets of every value including NUL. */
static void test_round_trip(void **state)
{
    (void)state;
    unsigned char data[300];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char)(i * 7 + 3);
    for (size_t n = 0; n <= sizeof(data); n++) {
        struct buf text, back;
        buf_init(&text, 1024);
        buf_init(&back, 1024);
        assert_int_equal(base64_encode(data, n, &text), BASE64_OK);
        assert_int_equal(text.len % 4, 0);
        assert_int_equal(base64_decode(text.data, text.len, &back),
                         BASE64_OK);
        assert_int_equal(back.len, n);
        if (n > 0)
            assert_memory_equal(back.data, data, n);
        buf_free(&text);
        buf_free(&back);
    }
}

struct invalid_case {
    const char *text;
    size_t len; /* 0: strlen(text) */
    int result;
};

static const struct invalid_case invalid_cases[] = {
    /* outside the alphabet, white space included */
    { "Zm9v\n", 0, BASE64_BAD_CHARACTER },
    { "Zm9v\r\n", 0, BASE64_BAD_CHARACTER },
    { "Zm9 v", 0, BASE64_BAD_CHARACTER },
    { " Zm9v", 0, BASE64_BAD_CHARACTER },
    { "Zm9v YmFy", 0, BASE64_BAD_CHARACTER },
    { "Zm9\tv", 0, BASE64_BAD_CHARACTER },
    { "Zm-v", 0, BASE64_BAD_CHARACTER }, /* base64url, section 5 */
    { "Zm_v", 0, BASE64_BAD_CHARACTER },
    { "Zm9.", 0, BASE64_BAD_CHARACTER },
    { "*", 0, BASE64_BAD_CHARACTER },
    { "Zm\xc3\xa9", 0, BASE64_BAD_CHARACTER },
    { "Zm9v\0YmFy", 9, BASE64_BAD_CHARACTER },
    { "Zg==\0", 5, BASE64_BAD_PADDING }, /* a NUL after the padding */
    /* not whole groups */
    { "Z", 0, BASE64_BAD_LENGTH },
    { "Zg", 0, BASE64_BAD_LENGTH },
    { "Zm9", 0, BASE64_BAD_LENGTH },
    { "Zm9vY", 0, BASE64_BAD_LENGTH },
    { "Zg=", 0, BASE64_BAD_LENGTH },
    { "=", 0, BASE64_BAD_LENGTH },
    { "==", 0, BASE64_BAD_LENGTH },
    /* padding misplaced, too much of it, or data after it */
    { "====", 0, BASE64_BAD_PADDING },
    { "Z===", 0, BASE64_BAD_PADDING },
    { "Zm=v", 0, BASE64_BAD_PADDING },
    { "=m9v", 0, BASE64_BAD_PADDING },
    { "Zg==Zg==", 0, BASE64_BAD_PADDING },
    { "Zm8=Zm9v", 0, BASE64_BAD_PADDING },
    { "Zm9v====", 0, BASE64_BAD_PADDING },
    { "Zg==Zm9v", 0, BASE64_BAD_PADDING },
    /* bits left over before the padding are not zero */
    { "Zh==", 0, BASE64_BAD_PADDING },
    { "Zm9=", 0, BASE64_BAD_PADDING },
    { "Zm9vYh==", 0, BASE64_BAD_PADDING },
    { "Zm9vYmF=", 0, BASE64_BAD_PADDING },
};

static void test_invalid(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(invalid_cases); i++) {
        const struct invalid_case *c = &invalid_cases[i];
        size_t len = c->len ? c->len : strlen(c->text);
        struct buf out;
        buf_init(&out, 64);
        assert_int_equal(buf_append_str(&out, "keep"), 0);
        int rc = base64_decode(c->text, len, &out);
        if (rc != c->result)
            fail_msg("case %zu \"%s\": got %d, expected %d", i, c->text, rc,
                     c->result);
        assert_string_equal(buf_cstr(&out), "keep"); /* untouched */
        assert_int_equal(out.len, 4);
        assert_non_null(base64_strerror(rc));
        buf_free(&out);
    }
}

static void test_decode_limit(void **state)
{
    (void)state;
    struct buf out;
    buf_init(&out, 5);
    assert_int_equal(base64_decode("Zm9vYmFy", 8, &out), BASE64_TOO_LONG);
    assert_int_equal(out.len, 0);
    assert_int_equal(base64_decode("Zm9vYmE=", 8, &out), BASE64_OK);
    assert_string_equal(buf_cstr(&out), "fooba");
    /* Full: even one more octet does not fit, and nothing changes. */
    assert_int_equal(base64_decode("Zg==", 4, &out), BASE64_TOO_LONG);
    assert_string_equal(buf_cstr(&out), "fooba");
    /* The empty text fits anywhere. */
    assert_int_equal(base64_decode("", 0, &out), BASE64_OK);
    assert_int_equal(out.len, 5);
    buf_free(&out);
}

static void test_decode_appends(void **state)
{
    (void)state;
    struct buf out;
    buf_init(&out, 64);
    assert_int_equal(buf_append_str(&out, "x:"), 0);
    assert_int_equal(base64_decode("Zm9v", 4, &out), BASE64_OK);
    assert_int_equal(base64_decode("YmFy", 4, &out), BASE64_OK);
    assert_string_equal(buf_cstr(&out), "x:foobar");
    buf_free(&out);
}

static void test_encode_limit(void **state)
{
    (void)state;
    struct buf out;
    buf_init(&out, 7);
    assert_int_equal(base64_encode("foobar", 6, &out), BASE64_TOO_LONG);
    assert_int_equal(out.len, 0);
    buf_free(&out);
    buf_init(&out, 8);
    assert_int_equal(base64_encode("foobar", 6, &out), BASE64_OK);
    assert_string_equal(buf_cstr(&out), "Zm9vYmFy");
    assert_int_equal(base64_encode("", 0, &out), BASE64_OK);
    assert_int_equal(base64_encode("f", 1, &out), BASE64_TOO_LONG);
    assert_string_equal(buf_cstr(&out), "Zm9vYmFy");
    buf_free(&out);
}

struct length_case {
    size_t in;
    size_t out;
};

static const struct length_case length_cases[] = {
    { 0, 0 }, { 1, 4 }, { 2, 4 }, { 3, 4 }, { 4, 8 }, { 255, 340 },
    { 767, 1024 }, { SIZE_MAX, SIZE_MAX }, { SIZE_MAX / 3 * 3, SIZE_MAX },
};

static void test_encoded_length(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(length_cases); i++)
        assert_int_equal(base64_encoded_length(length_cases[i].in),
                         length_cases[i].out);
}

static void test_strerror(void **state)
{
    (void)state;
    const int codes[] = { BASE64_OK, BASE64_BAD_LENGTH, BASE64_BAD_CHARACTER,
                          BASE64_BAD_PADDING, BASE64_TOO_LONG,
                          BASE64_NO_MEMORY, 42 };
    for (size_t i = 0; i < COUNT(codes); i++) {
        const char *s = base64_strerror(codes[i]);
        assert_non_null(s);
        assert_true(s[0] != '\0');
    }
    assert_string_equal(base64_strerror(BASE64_BAD_CHARACTER),
                        "invalid base64 character");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_encode),
        cmocka_unit_test(test_rfc_decode),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_decode_limit),
        cmocka_unit_test(test_decode_appends),
        cmocka_unit_test(test_encode_limit),
        cmocka_unit_test(test_encoded_length),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
