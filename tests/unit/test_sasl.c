/*
 * test_sasl - unit tests for lib/sasl (SASL PLAIN and LOGIN, server side).
 *
 * Table-driven: PLAIN messages (authzid empty, equal, different; NUL
 * counts; empty and over-long parts; UTF-8; control characters), each as
 * an initial response and as the answer to the empty challenge; "=",
 * invalid base64, "*", the 12288-octet line limit; LOGIN's full exchange,
 * with an initial user name, and its failures; mechanism names, calls out
 * of order, the wiping of secrets, and the error replies.
 *
 * Run: build/<cc>/tests/test_sasl (no arguments, no files, no privileges).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "base64.h"
#include "buf.h"
#include "sasl.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
/* A literal that may hold NULs, and its length. */
#define BYTES(s) s, sizeof(s) - 1

/* ------------------------------------------------------------- helpers */

/* out = base64 of data[0..len). */
static void b64(struct buf *out, const char *data, size_t len)
{
    buf_init(out, 4 * SASL_LINE_MAX);
    assert_int_equal(base64_encode(data, len, out), BASE64_OK);
}

static int all_zero(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

static void assert_wiped(const struct sasl *s)
{
    assert_true(all_zero(s->username, sizeof(s->username)));
    assert_true(all_zero(s->password, sizeof(s->password)));
    assert_null(sasl_username(s));
    assert_null(sasl_password(s));
}

/* "\0" user "\0" password, with the parts made of n copies of a letter. */
static void plain_message(struct buf *m, size_t authzid, size_t authcid,
                          size_t passwd)
{
    buf_init(m, 4096);
    for (size_t i = 0; i < authzid; i++)
        assert_int_equal(buf_append_char(m, 'a'), 0);
    assert_int_equal(buf_append_char(m, '\0'), 0);
    for (size_t i = 0; i < authcid; i++)
        assert_int_equal(buf_append_char(m, 'a'), 0);
    assert_int_equal(buf_append_char(m, '\0'), 0);
    for (size_t i = 0; i < passwd; i++)
        assert_int_equal(buf_append_char(m, 'p'), 0);
}

/* --------------------------------------------------------------- PLAIN */

struct plain_case {
    const char *message;
    size_t len;
    int status;
    enum sasl_error error;
    const char *username;
    const char *password;
};

static const struct plain_case plain_cases[] = {
    { BYTES("\0alice\0secret"), SASL_DONE, SASL_ERR_NONE, "alice", "secret" },
    { BYTES("alice\0alice\0secret"), SASL_DONE, SASL_ERR_NONE, "alice",
      "secret" },
    { BYTES("\0alice@example.com\0pass word\twith tab"), SASL_DONE,
      SASL_ERR_NONE, "alice@example.com", "pass word\twith tab" },
    { BYTES("\0j\xc3\xbcrgen\0p\xc3\xa4ss \xf0\x9f\x98\x80"), SASL_DONE,
      SASL_ERR_NONE, "j\xc3\xbcrgen", "p\xc3\xa4ss \xf0\x9f\x98\x80" },
    /* proxy authorization is not supported */
    { BYTES("bob\0alice\0secret"), SASL_ERROR, SASL_ERR_AUTHZID, NULL, NULL },
    { BYTES("Alice\0alice\0secret"), SASL_ERROR, SASL_ERR_AUTHZID, NULL,
      NULL },
    { BYTES("alice2\0alice\0secret"), SASL_ERROR, SASL_ERR_AUTHZID, NULL,
      NULL },
    /* NUL count */
    { BYTES(""), SASL_ERROR, SASL_ERR_MALFORMED, NULL, NULL },
    { BYTES("alicesecret"), SASL_ERROR, SASL_ERR_MALFORMED, NULL, NULL },
    { BYTES("alice\0secret"), SASL_ERROR, SASL_ERR_MALFORMED, NULL, NULL },
    { BYTES("\0alice\0sec\0ret"), SASL_ERROR, SASL_ERR_MALFORMED, NULL,
      NULL },
    { BYTES("\0alice\0secret\0"), SASL_ERROR, SASL_ERR_MALFORMED, NULL,
      NULL },
    { BYTES("\0\0\0"), SASL_ERROR, SASL_ERR_MALFORMED, NULL, NULL },
    /* empty parts */
    { BYTES("\0\0secret"), SASL_ERROR, SASL_ERR_MALFORMED, NULL, NULL },
    { BYTES("\0alice\0"), SASL_ERROR, SASL_ERR_MALFORMED, NULL, NULL },
    { BYTES("alice\0\0secret"), SASL_ERROR, SASL_ERR_MALFORMED, NULL, NULL },
    { BYTES("\0\0"), SASL_ERROR, SASL_ERR_MALFORMED, NULL, NULL },
    /* not UTF-8 */
    { BYTES("\0alice\0\xff"), SASL_ERROR, SASL_ERR_MALFORMED, NULL, NULL },
    { BYTES("\0\xc0\xaf\0secret"), SASL_ERROR, SASL_ERR_MALFORMED, NULL,
      NULL }, /* overlong "/" */
    { BYTES("\0alice\0\xed\xa0\x80"), SASL_ERROR, SASL_ERR_MALFORMED, NULL,
      NULL }, /* a surrogate */
    { BYTES("\0alice\0\xe2\x82"), SASL_ERROR, SASL_ERR_MALFORMED, NULL,
      NULL }, /* cut short */
    { BYTES("\0alice\0\xf4\x90\x80\x80"), SASL_ERROR, SASL_ERR_MALFORMED,
      NULL, NULL }, /* above U+10FFFF */
    { BYTES("\xe9\0alice\0secret"), SASL_ERROR, SASL_ERR_MALFORMED, NULL,
      NULL }, /* Latin-1 authzid */
    /* control characters in the user name */
    { BYTES("\0al\tice\0secret"), SASL_ERROR, SASL_ERR_MALFORMED, NULL,
      NULL },
    { BYTES("\0alice\r\n\0secret"), SASL_ERROR, SASL_ERR_MALFORMED, NULL,
      NULL },
    { BYTES("\0alice\x7f\0secret"), SASL_ERROR, SASL_ERR_MALFORMED, NULL,
      NULL },
};

static void check_plain_result(const struct sasl *s, int rc,
                               const struct plain_case *c, size_t i)
{
    if (rc != c->status || sasl_error(s) != c->error)
        fail_msg("PLAIN case %zu: status %d error %d, expected %d %d", i, rc,
                 (int)sasl_error(s), c->status, (int)c->error);
    if (c->status != SASL_DONE) {
        assert_wiped(s);
        return;
    }
    assert_string_equal(sasl_username(s), c->username);
    assert_string_equal(sasl_password(s), c->password);
}

static void test_plain_initial(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(plain_cases); i++) {
        const struct plain_case *c = &plain_cases[i];
        struct buf text;
        b64(&text, c->message, c->len);
        struct sasl s;
        sasl_init(&s);
        /* An empty message encodes to "": the framing would have sent "=". */
        int rc = sasl_start(&s, "PLAIN", c->len ? buf_cstr(&text) : "=");
        check_plain_result(&s, rc, c, i);
        assert_int_equal(sasl_mechanism(&s), SASL_MECH_PLAIN);
        sasl_reset(&s);
        assert_wiped(&s);
        buf_free(&text);
    }
}

static void test_plain_challenge(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(plain_cases); i++) {
        const struct plain_case *c = &plain_cases[i];
        struct buf text;
        b64(&text, c->message, c->len);
        struct sasl s;
        sasl_init(&s);
        assert_int_equal(sasl_start(&s, "PLAIN", NULL), SASL_CHALLENGE);
        assert_string_equal(sasl_challenge(&s), ""); /* "334 " */
        assert_null(sasl_username(&s));
        int rc = sasl_step(&s, buf_cstr(&text)); /* "" for the empty one */
        check_plain_result(&s, rc, c, i);
        sasl_reset(&s);
        buf_free(&text);
    }
}

struct length_case {
    size_t authzid, authcid, passwd;
    int status;
};

static const struct length_case length_cases[] = {
    { 0, 255, 255, SASL_DONE },
    { 255, 255, 255, SASL_DONE }, /* authzid == authcid, all at the limit */
    { 0, 256, 1, SASL_ERROR },
    { 0, 1, 256, SASL_ERROR },
    { 256, 256, 1, SASL_ERROR },
    { 0, 1, 4000, SASL_ERROR }, /* longer than any PLAIN message */
};

static void test_plain_lengths(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(length_cases); i++) {
        const struct length_case *c = &length_cases[i];
        struct buf m, text;
        plain_message(&m, c->authzid, c->authcid, c->passwd);
        b64(&text, m.data, m.len);
        struct sasl s;
        sasl_init(&s);
        int rc = sasl_start(&s, "PLAIN", buf_cstr(&text));
        assert_int_equal(rc, c->status);
        if (rc == SASL_DONE) {
            assert_int_equal(strlen(sasl_username(&s)), c->authcid);
            assert_int_equal(strlen(sasl_password(&s)), c->passwd);
        } else {
            assert_int_equal(sasl_error(&s), SASL_ERR_MALFORMED);
        }
        sasl_reset(&s);
        buf_free(&m);
        buf_free(&text);
    }
}

struct response_case {
    const char *initial;  /* NULL: none, then step with response */
    const char *response;
    int status;
    enum sasl_error error;
};

static const struct response_case plain_responses[] = {
    /* "=" is the empty initial response: an empty PLAIN message. */
    { "=", NULL, SASL_ERROR, SASL_ERR_MALFORMED },
    { NULL, "=", SASL_ERROR, SASL_ERR_MALFORMED },
    { NULL, "", SASL_ERROR, SASL_ERR_MALFORMED },
    /* "*" cancels an answer; as an initial response it is not base64. */
    { NULL, "*", SASL_ERROR, SASL_ERR_CANCELLED },
    { "*", NULL, SASL_ERROR, SASL_ERR_BASE64 },
    /* invalid base64: "\0alice\0secret" is AGFsaWNlAHNlY3JldA== */
    { "AGFsaWNlAHNlY3JldA", NULL, SASL_ERROR, SASL_ERR_BASE64 },
    { "AGFsaWNlAHNlY3JldA=", NULL, SASL_ERROR, SASL_ERR_BASE64 },
    { "AGFsaWNl AHNlY3JldA==", NULL, SASL_ERROR, SASL_ERR_BASE64 },
    { "AGFsaWNlAHNlY3JldA== ", NULL, SASL_ERROR, SASL_ERR_BASE64 },
    { "AGFsaWNlAHNlY3JldA==\r", NULL, SASL_ERROR, SASL_ERR_BASE64 },
    { NULL, "AGFsaWNlAHNlY3JldA==AA==", SASL_ERROR, SASL_ERR_BASE64 },
    { NULL, "AGFsaWNl\nAHNlY3JldA==", SASL_ERROR, SASL_ERR_BASE64 },
    { NULL, "**", SASL_ERROR, SASL_ERR_BASE64 },
    { NULL, " *", SASL_ERROR, SASL_ERR_BASE64 },
    /* and the valid one, both ways */
    { "AGFsaWNlAHNlY3JldA==", NULL, SASL_DONE, SASL_ERR_NONE },
    { NULL, "AGFsaWNlAHNlY3JldA==", SASL_DONE, SASL_ERR_NONE },
};

static int run_response_case(struct sasl *s, const char *mechanism,
                             const struct response_case *c)
{
    if (c->initial != NULL)
        return sasl_start(s, mechanism, c->initial);
    int rc = sasl_start(s, mechanism, NULL);
    assert_int_equal(rc, SASL_CHALLENGE);
    return sasl_step(s, c->response);
}

static void test_plain_responses(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(plain_responses); i++) {
        const struct response_case *c = &plain_responses[i];
        struct sasl s;
        sasl_init(&s);
        int rc = run_response_case(&s, "PLAIN", c);
        if (rc != c->status || sasl_error(&s) != c->error)
            fail_msg("case %zu: status %d error %d", i, rc,
                     (int)sasl_error(&s));
        if (rc == SASL_DONE)
            assert_string_equal(sasl_username(&s), "alice");
        else
            assert_wiped(&s);
        sasl_reset(&s);
    }
}

/* A line of n copies of c (n a multiple of 4 gives valid base64 for 'A'). */
static char *make_line(struct buf *b, size_t n, char c)
{
    buf_init(b, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(buf_append_char(b, c), 0);
    return b->data;
}

static void test_line_limit(void **state)
{
    (void)state;
    struct buf line;
    struct sasl s;
    sasl_init(&s);
    /* One octet too many: 500 5.5.6, as initial response and as answer. */
    make_line(&line, SASL_LINE_MAX + 1, 'A');
    assert_int_equal(sasl_start(&s, "PLAIN", line.data), SASL_ERROR);
    assert_int_equal(sasl_error(&s), SASL_ERR_TOO_LONG);
    assert_int_equal(sasl_start(&s, "PLAIN", NULL), SASL_CHALLENGE);
    assert_int_equal(sasl_step(&s, line.data), SASL_ERROR);
    assert_int_equal(sasl_error(&s), SASL_ERR_TOO_LONG);
    assert_int_equal(sasl_start(&s, "LOGIN", line.data), SASL_ERROR);
    assert_int_equal(sasl_error(&s), SASL_ERR_TOO_LONG);
    buf_free(&line);
    /* Exactly at the limit the line is taken; its 9216 zero octets are
     * no PLAIN message, and far too long a LOGIN user name. */
    make_line(&line, SASL_LINE_MAX, 'A');
    assert_int_equal(sasl_start(&s, "PLAIN", line.data), SASL_ERROR);
    assert_int_equal(sasl_error(&s), SASL_ERR_MALFORMED);
    assert_int_equal(sasl_start(&s, "LOGIN", line.data), SASL_ERROR);
    assert_int_equal(sasl_error(&s), SASL_ERR_MALFORMED);
    buf_free(&line);
    /* Not base64 at all, at the limit: a base64 error, not "too long". */
    make_line(&line, SASL_LINE_MAX, '!');
    assert_int_equal(sasl_start(&s, "PLAIN", line.data), SASL_ERROR);
    assert_int_equal(sasl_error(&s), SASL_ERR_BASE64);
    buf_free(&line);
    sasl_reset(&s);
}

/* --------------------------------------------------------------- LOGIN */

static void assert_decodes_to(const char *challenge, const char *text)
{
    struct buf out;
    buf_init(&out, 64);
    assert_int_equal(base64_decode(challenge, strlen(challenge), &out),
                     BASE64_OK);
    assert_string_equal(buf_cstr(&out), text);
    buf_free(&out);
}

static void test_login_exchange(void **state)
{
    (void)state;
    struct sasl s;
    sasl_init(&s);
    assert_int_equal(sasl_start(&s, "LOGIN", NULL), SASL_CHALLENGE);
    assert_string_equal(sasl_challenge(&s), "VXNlcm5hbWU6");
    assert_decodes_to(sasl_challenge(&s), "Username:");
    assert_int_equal(sasl_step(&s, "YWxpY2U="), SASL_CHALLENGE); /* alice */
    assert_string_equal(sasl_challenge(&s), "UGFzc3dvcmQ6");
    assert_decodes_to(sasl_challenge(&s), "Password:");
    assert_null(sasl_username(&s)); /* not before the end */
    assert_int_equal(sasl_step(&s, "c2VjcmV0"), SASL_DONE); /* secret */
    assert_string_equal(sasl_username(&s), "alice");
    assert_string_equal(sasl_password(&s), "secret");
    assert_int_equal(sasl_mechanism(&s), SASL_MECH_LOGIN);
    assert_null(sasl_challenge(&s));
    /* The exchange is over: another answer is out of order. */
    assert_int_equal(sasl_step(&s, "c2VjcmV0"), SASL_ERROR);
    assert_int_equal(sasl_error(&s), SASL_ERR_STATE);
    assert_wiped(&s);
}

static void test_login_initial(void **state)
{
    (void)state;
    struct sasl s;
    sasl_init(&s);
    assert_int_equal(sasl_start(&s, "login", "YWxpY2U="), SASL_CHALLENGE);
    assert_string_equal(sasl_challenge(&s), "UGFzc3dvcmQ6");
    assert_int_equal(sasl_step(&s, "c2VjcmV0"), SASL_DONE);
    assert_string_equal(sasl_username(&s), "alice");
    assert_string_equal(sasl_password(&s), "secret");
    sasl_reset(&s);
    assert_wiped(&s);
}

struct login_case {
    const char *username; /* as sent: base64, "=", "*" */
    const char *password; /* NULL: the exchange ends at the user name */
    int status;
    enum sasl_error error;
    const char *expect_password; /* on SASL_DONE */
};

/* "YWxpY2U=" is "alice". */
static const struct login_case login_cases[] = {
    { "=", NULL, SASL_ERROR, SASL_ERR_MALFORMED, NULL },
    { "", NULL, SASL_ERROR, SASL_ERR_MALFORMED, NULL },
    { "*", NULL, SASL_ERROR, SASL_ERR_CANCELLED, NULL },
    { "YWxpY2U", NULL, SASL_ERROR, SASL_ERR_BASE64, NULL },
    { "YWxp Y2U=", NULL, SASL_ERROR, SASL_ERR_BASE64, NULL },
    { "YQBi", NULL, SASL_ERROR, SASL_ERR_MALFORMED, NULL },   /* "a\0b" */
    { "YQli", NULL, SASL_ERROR, SASL_ERR_MALFORMED, NULL },   /* "a\tb" */
    { "YWxpY2U=", "*", SASL_ERROR, SASL_ERR_CANCELLED, NULL },
    { "YWxpY2U=", "=", SASL_ERROR, SASL_ERR_MALFORMED, NULL },
    { "YWxpY2U=", "", SASL_ERROR, SASL_ERR_MALFORMED, NULL },
    { "YWxpY2U=", "c2VjcmV0=", SASL_ERROR, SASL_ERR_BASE64, NULL },
    { "YWxpY2U=", "cwBw", SASL_ERROR, SASL_ERR_MALFORMED, NULL }, /* s\0p */
    /* LOGIN takes any octets but NUL in a password, UTF-8 or not */
    { "YWxpY2U=", "6XTp", SASL_DONE, SASL_ERR_NONE, "\xe9t\xe9" },
    { "YWxpY2U=", "YQli", SASL_DONE, SASL_ERR_NONE, "a\tb" },
};

static void test_login_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(login_cases); i++) {
        const struct login_case *c = &login_cases[i];
        struct sasl s;
        sasl_init(&s);
        assert_int_equal(sasl_start(&s, "LOGIN", NULL), SASL_CHALLENGE);
        int rc = sasl_step(&s, c->username);
        if (c->password != NULL) {
            assert_int_equal(rc, SASL_CHALLENGE);
            rc = sasl_step(&s, c->password);
        }
        if (rc != c->status || sasl_error(&s) != c->error)
            fail_msg("LOGIN case %zu: status %d error %d", i, rc,
                     (int)sasl_error(&s));
        if (rc == SASL_DONE)
            assert_string_equal(sasl_password(&s), c->expect_password);
        else
            assert_wiped(&s); /* the user name too, after a cancel */
        sasl_reset(&s);
    }
}

static void test_login_lengths(void **state)
{
    (void)state;
    const size_t sizes[] = { 1, 255, 256, 1000 };
    for (size_t i = 0; i < COUNT(sizes); i++) {
        struct buf part, text;
        make_line(&part, sizes[i], 'x');
        b64(&text, part.data, part.len);
        int expect = sizes[i] <= SASL_PART_MAX ? SASL_CHALLENGE : SASL_ERROR;
        struct sasl s;
        sasl_init(&s);
        /* as the user name */
        assert_int_equal(sasl_start(&s, "LOGIN", text.data), expect);
        if (expect == SASL_ERROR)
            assert_int_equal(sasl_error(&s), SASL_ERR_MALFORMED);
        /* as the password */
        assert_int_equal(sasl_start(&s, "LOGIN", "YWxpY2U="), SASL_CHALLENGE);
        int rc = sasl_step(&s, text.data);
        assert_int_equal(rc, expect == SASL_CHALLENGE ? SASL_DONE
                                                      : SASL_ERROR);
        if (rc == SASL_DONE)
            assert_int_equal(strlen(sasl_password(&s)), sizes[i]);
        sasl_reset(&s);
        buf_free(&part);
        buf_free(&text);
    }
}

/* -------------------------------------------------------------- general */

struct mechanism_case {
    const char *name;
    int supported;
};

static const struct mechanism_case mechanism_cases[] = {
    { "PLAIN", 1 },     { "plain", 1 },  { "Login", 1 },
    { "LOGIN", 1 },     { "CRAM-MD5", 0 }, { "PLAINX", 0 },
    { "PLAI", 0 },      { "", 0 },       { "SCRAM-SHA-256", 0 },
    { "PLAIN ", 0 },
};

static void test_mechanisms(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(mechanism_cases); i++) {
        const struct mechanism_case *c = &mechanism_cases[i];
        assert_int_equal(sasl_mechanism_supported(c->name), c->supported);
        struct sasl s;
        sasl_init(&s);
        int rc = sasl_start(&s, c->name, NULL);
        assert_int_equal(rc, c->supported ? SASL_CHALLENGE : SASL_ERROR);
        if (!c->supported) {
            assert_int_equal(sasl_error(&s), SASL_ERR_MECHANISM);
            assert_string_equal(sasl_error_reply(sasl_error(&s)),
                                "504 5.5.4 Unrecognized authentication type");
        }
        sasl_reset(&s);
    }
    assert_int_equal(sasl_mechanism_supported(NULL), 0);
    struct sasl s;
    sasl_init(&s);
    assert_int_equal(sasl_start(&s, NULL, NULL), SASL_ERROR);
    assert_int_equal(sasl_error(&s), SASL_ERR_MECHANISM);
    assert_string_equal(SASL_MECHANISMS, "PLAIN LOGIN");
}

static void test_out_of_order(void **state)
{
    (void)state;
    struct sasl s;
    sasl_init(&s);
    assert_int_equal(sasl_mechanism(&s), SASL_MECH_NONE);
    assert_null(sasl_challenge(&s));
    assert_int_equal(sasl_step(&s, "AGFsaWNlAHNlY3JldA=="), SASL_ERROR);
    assert_int_equal(sasl_error(&s), SASL_ERR_STATE);
    /* After an error, until the next start. */
    assert_int_equal(sasl_step(&s, "AGFsaWNlAHNlY3JldA=="), SASL_ERROR);
    assert_int_equal(sasl_error(&s), SASL_ERR_STATE);
    assert_int_equal(sasl_start(&s, "PLAIN", NULL), SASL_CHALLENGE);
    assert_int_equal(sasl_step(&s, NULL), SASL_ERROR);
    assert_int_equal(sasl_error(&s), SASL_ERR_STATE);
    /* A new start forgets everything before it. */
    assert_int_equal(sasl_start(&s, "PLAIN", "AGFsaWNlAHNlY3JldA=="),
                     SASL_DONE);
    assert_int_equal(sasl_start(&s, "LOGIN", NULL), SASL_CHALLENGE);
    assert_wiped(&s);
    assert_int_equal(sasl_error(&s), SASL_ERR_NONE);
}

static void test_reset_wipes(void **state)
{
    (void)state;
    struct sasl s;
    sasl_init(&s);
    assert_int_equal(sasl_start(&s, "PLAIN", "AGFsaWNlAHNlY3JldA=="),
                     SASL_DONE);
    assert_false(all_zero(s.password, sizeof(s.password)));
    sasl_reset(&s);
    assert_wiped(&s);
    assert_int_equal(sasl_mechanism(&s), SASL_MECH_NONE);
    assert_int_equal(sasl_error(&s), SASL_ERR_NONE);
    /* An error after the user name was taken wipes it. */
    assert_int_equal(sasl_start(&s, "LOGIN", "YWxpY2U="), SASL_CHALLENGE);
    assert_false(all_zero(s.username, sizeof(s.username)));
    assert_int_equal(sasl_step(&s, "!"), SASL_ERROR);
    assert_int_equal(sasl_error(&s), SASL_ERR_BASE64);
    assert_wiped(&s);
}

struct reply_case {
    enum sasl_error error;
    const char *reply;
};

static const struct reply_case reply_cases[] = {
    { SASL_ERR_MECHANISM, "504 5.5.4 " },
    { SASL_ERR_BASE64, "501 5.5.2 " },
    { SASL_ERR_MALFORMED, "501 5.5.2 " },
    { SASL_ERR_AUTHZID, "535 5.7.8 " },
    { SASL_ERR_CANCELLED, "501 5.0.0 Authentication aborted" },
    { SASL_ERR_TOO_LONG, "500 5.5.6 " },
    { SASL_ERR_STATE, "503 5.5.1 " },
    { SASL_ERR_TEMPORARY, "454 4.7.0 " },
    { SASL_ERR_NONE, "454 4.7.0 " }, /* never a success */
    { (enum sasl_error)99, "454 4.7.0 " },
};

static void test_replies(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(reply_cases); i++) {
        const struct reply_case *c = &reply_cases[i];
        const char *reply = sasl_error_reply(c->error);
        assert_non_null(reply);
        assert_memory_equal(reply, c->reply, strlen(c->reply));
        assert_null(strchr(reply, '\r'));
        const char *text = sasl_error_text(c->error);
        assert_ptr_equal(text, reply + 10);
        assert_true(text[0] >= 'A' && text[0] <= 'Z');
    }
    assert_string_equal(sasl_error_text(SASL_ERR_CANCELLED),
                        "Authentication aborted");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_initial),
        cmocka_unit_test(test_plain_challenge),
        cmocka_unit_test(test_plain_lengths),
        cmocka_unit_test(test_plain_responses),
        cmocka_unit_test(test_line_limit),
        cmocka_unit_test(test_login_exchange),
        cmocka_unit_test(test_login_initial),
        cmocka_unit_test(test_login_cases),
        cmocka_unit_test(test_login_lengths),
        cmocka_unit_test(test_mechanisms),
        cmocka_unit_test(test_out_of_order),
        cmocka_unit_test(test_reset_wipes),
        cmocka_unit_test(test_replies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
