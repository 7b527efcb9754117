/*
 * sasl - server side of SASL PLAIN (RFC 4616) and LOGIN, one small state
 * machine per exchange, without protocol framing.  See sasl.h for the
 * rules and the calling sequence:
 *
 *     sasl_init(&s);
 *     r = sasl_start(&s, mechanism, initial_or_NULL);
 *     while (r == SASL_CHALLENGE) r = sasl_step(&s, next_line);
 *     ... SASL_DONE: sasl_username(&s), sasl_password(&s) ...
 *     sasl_reset(&s);
 *
 * Decoded responses go into a heap buffer reserved at its full size
 * before decoding (no reallocation, so no stray copies) and wiped before
 * it is freed; the user name and password are copied into struct sasl
 * and wiped by sasl_reset and on every error.  Nothing is logged here.
 */
#include "sasl.h"

#include <string.h>

#include "base64.h"
#include "buf.h"
#include "text.h"

enum state {
    STATE_IDLE = 0,         /* no exchange: after init, reset */
    STATE_PLAIN,            /* the next response is the PLAIN message */
    STATE_LOGIN_USERNAME,   /* ... answers "Username:" */
    STATE_LOGIN_PASSWORD,   /* ... answers "Password:" */
    STATE_DONE,
    STATE_FAILED,
};

/* base64 of "Username:" and "Password:", the challenges every LOGIN client
 * expects (draft-murchison-sasl-login section 2). */
#define LOGIN_USERNAME_CHALLENGE "VXNlcm5hbWU6"
#define LOGIN_PASSWORD_CHALLENGE "UGFzc3dvcmQ6"

/* The longest decoded PLAIN message: three parts and two NULs. */
#define PLAIN_MESSAGE_MAX (3 * SASL_PART_MAX + 2)

/* ------------------------------------------------------------ the struct */

static void wipe_secrets(struct sasl *s)
{
    explicit_bzero(s->username, sizeof(s->username));
    explicit_bzero(s->password, sizeof(s->password));
    s->username_len = 0;
    s->password_len = 0;
}

void sasl_init(struct sasl *s)
{
    memset(s, 0, sizeof(*s));
    sasl_reset(s);
}

void sasl_reset(struct sasl *s)
{
    wipe_secrets(s);
    s->mechanism = SASL_MECH_NONE;
    s->state = STATE_IDLE;
    s->error = SASL_ERR_NONE;
    s->challenge = NULL;
}

static int fail(struct sasl *s, enum sasl_error e)
{
    wipe_secrets(s);
    s->state = STATE_FAILED;
    s->error = e;
    s->challenge = NULL;
    return SASL_ERROR;
}

static int challenge(struct sasl *s, int next_state, const char *text)
{
    s->state = next_state;
    s->challenge = text;
    return SASL_CHALLENGE;
}

static int done(struct sasl *s)
{
    s->state = STATE_DONE;
    s->challenge = NULL;
    return SASL_DONE;
}

/* ----------------------------------------------------------- the checks */

/* Length of the UTF-8 sequence at p (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF), or 0 when it is invalid. */
static size_t utf8_sequence(const unsigned char *p, size_t left)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t n = c >= 0xc2 && c <= 0xdf   ? 2
               : c >= 0xe0 && c <= 0xef ? 3
               : c >= 0xf0 && c <= 0xf4 ? 4
                                        : 0;
    if (n == 0 || n > left)
        return 0;
    unsigned char low = 0x80, high = 0xbf; /* range of the second octet */
    if (c == 0xe0)
        low = 0xa0;
    else if (c == 0xed)
        high = 0x9f;
    else if (c == 0xf0)
        low = 0x90;
    else if (c == 0xf4)
        high = 0x8f;
    if (p[1] < low || p[1] > high)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return n;
}

static int valid_utf8(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_sequence(p + i, len - i);
        if (n == 0)
            return 0;
        i += n;
    }
    return 1;
}

/* No NUL, no ASCII control character: a user name becomes a table key and
 * appears in log lines. */
static int valid_username(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}

/* -------------------------------------------------------------- decoding */

static void wipe_buf(struct buf *b)
{
    if (b->data != NULL)
        explicit_bzero(b->data, b->cap);
    buf_free(b);
}

/* Decodes one client response into out (limit max, reserved in full here
 * so that decoding never reallocates).  SASL_ERR_NONE or the error. */
static enum sasl_error decode_response(const char *response, size_t max,
                                       struct buf *out)
{
    size_t len = strnlen(response, SASL_LINE_MAX + 1);
    if (len > SASL_LINE_MAX)
        return SASL_ERR_TOO_LONG;
    if (buf_reserve(out, max) != 0)
        return SASL_ERR_TEMPORARY;
    if (len == 1 && response[0] == '=') /* RFC 4954: the empty response */
        return SASL_ERR_NONE;
    switch (base64_decode(response, len, out)) {
    case BASE64_OK:
        return SASL_ERR_NONE;
    case BASE64_TOO_LONG:
        return SASL_ERR_MALFORMED; /* longer than any valid message */
    case BASE64_NO_MEMORY:
        return SASL_ERR_TEMPORARY;
    default:
        return SASL_ERR_BASE64;
    }
}

static void store(char *dst, size_t *dst_len, const char *src, size_t len)
{
    memcpy(dst, src, len);
    dst[len] = '\0';
    *dst_len = len;
}

/* ----------------------------------------------------------------- PLAIN */

/* Splits message = [authzid] NUL authcid NUL passwd and checks it. */
static enum sasl_error plain_parse(struct sasl *s, const char *m, size_t len)
{
    const char *nul1 = memchr(m, '\0', len);
    if (nul1 == NULL)
        return SASL_ERR_MALFORMED;
    const char *authcid = nul1 + 1;
    const char *nul2 = memchr(authcid, '\0', len - (size_t)(authcid - m));
    if (nul2 == NULL)
        return SASL_ERR_MALFORMED;
    const char *passwd = nul2 + 1;
    size_t passwd_len = len - (size_t)(passwd - m);
    if (memchr(passwd, '\0', passwd_len) != NULL)
        return SASL_ERR_MALFORMED; /* a third NUL */
    size_t authzid_len = (size_t)(nul1 - m);
    size_t authcid_len = (size_t)(nul2 - authcid);
    if (authzid_len > SASL_PART_MAX || authcid_len > SASL_PART_MAX ||
        passwd_len > SASL_PART_MAX)
        return SASL_ERR_MALFORMED;
    if (authcid_len == 0 || passwd_len == 0)
        return SASL_ERR_MALFORMED;
    if (!valid_utf8(m, authzid_len) || !valid_utf8(authcid, authcid_len) ||
        !valid_utf8(passwd, passwd_len) ||
        !valid_username(authcid, authcid_len))
        return SASL_ERR_MALFORMED;
    if (authzid_len != 0 &&
        (authzid_len != authcid_len || memcmp(m, authcid, authcid_len) != 0))
        return SASL_ERR_AUTHZID;
    store(s->username, &s->username_len, authcid, authcid_len);
    store(s->password, &s->password_len, passwd, passwd_len);
    return SASL_ERR_NONE;
}

static int plain_response(struct sasl *s, const char *response)
{
    struct buf message;
    buf_init(&message, PLAIN_MESSAGE_MAX);
    enum sasl_error e = decode_response(response, PLAIN_MESSAGE_MAX,
                                        &message);
    if (e == SASL_ERR_NONE)
        e = plain_parse(s, message.data, message.len);
    wipe_buf(&message);
    return e == SASL_ERR_NONE ? done(s) : fail(s, e);
}

/* ----------------------------------------------------------------- LOGIN */

/* Decodes a LOGIN answer (user name or password) into dst. */
static enum sasl_error login_decode(const char *response, char *dst,
                                    size_t *dst_len, int is_username)
{
    struct buf value;
    buf_init(&value, SASL_PART_MAX);
    enum sasl_error e = decode_response(response, SASL_PART_MAX, &value);
    if (e == SASL_ERR_NONE &&
        (value.len == 0 || memchr(value.data, '\0', value.len) != NULL))
        e = SASL_ERR_MALFORMED;
    if (e == SASL_ERR_NONE && is_username &&
        !valid_username(value.data, value.len))
        e = SASL_ERR_MALFORMED;
    if (e == SASL_ERR_NONE)
        store(dst, dst_len, value.data, value.len);
    wipe_buf(&value);
    return e;
}

static int login_username(struct sasl *s, const char *response)
{
    enum sasl_error e = login_decode(response, s->username, &s->username_len,
                                     1);
    if (e != SASL_ERR_NONE)
        return fail(s, e);
    return challenge(s, STATE_LOGIN_PASSWORD, LOGIN_PASSWORD_CHALLENGE);
}

static int login_password(struct sasl *s, const char *response)
{
    enum sasl_error e = login_decode(response, s->password, &s->password_len,
                                     0);
    return e == SASL_ERR_NONE ? done(s) : fail(s, e);
}

/* ------------------------------------------------------------ the driver */

struct mechanism_name {
    const char *name;
    enum sasl_mechanism mechanism;
};

static const struct mechanism_name mechanism_names[] = {
    { "PLAIN", SASL_MECH_PLAIN },
    { "LOGIN", SASL_MECH_LOGIN },
};

static enum sasl_mechanism find_mechanism(const char *name)
{
    if (name == NULL)
        return SASL_MECH_NONE;
    size_t count = sizeof(mechanism_names) / sizeof(mechanism_names[0]);
    for (size_t i = 0; i < count; i++)
        if (text_equal_nocase(name, mechanism_names[i].name))
            return mechanism_names[i].mechanism;
    return SASL_MECH_NONE;
}

int sasl_mechanism_supported(const char *name)
{
    return find_mechanism(name) != SASL_MECH_NONE;
}

int sasl_start(struct sasl *s, const char *mechanism, const char *initial)
{
    sasl_reset(s);
    s->mechanism = find_mechanism(mechanism);
    switch (s->mechanism) {
    case SASL_MECH_PLAIN:
        if (initial == NULL)
            return challenge(s, STATE_PLAIN, "");
        return plain_response(s, initial);
    case SASL_MECH_LOGIN:
        if (initial == NULL)
            return challenge(s, STATE_LOGIN_USERNAME,
                             LOGIN_USERNAME_CHALLENGE);
        return login_username(s, initial);
    case SASL_MECH_NONE:
        break;
    }
    return fail(s, SASL_ERR_MECHANISM);
}

int sasl_step(struct sasl *s, const char *response)
{
    if (response == NULL)
        return fail(s, SASL_ERR_STATE);
    int state = s->state;
    if (state != STATE_PLAIN && state != STATE_LOGIN_USERNAME &&
        state != STATE_LOGIN_PASSWORD)
        return fail(s, SASL_ERR_STATE);
    if (strcmp(response, "*") == 0)
        return fail(s, SASL_ERR_CANCELLED);
    if (state == STATE_PLAIN)
        return plain_response(s, response);
    if (state == STATE_LOGIN_USERNAME)
        return login_username(s, response);
    return login_password(s, response);
}

/* ------------------------------------------------------------- accessors */

const char *sasl_challenge(const struct sasl *s)
{
    return s->challenge;
}

enum sasl_error sasl_error(const struct sasl *s)
{
    return s->error;
}

const char *sasl_username(const struct sasl *s)
{
    return s->state == STATE_DONE ? s->username : NULL;
}

const char *sasl_password(const struct sasl *s)
{
    return s->state == STATE_DONE ? s->password : NULL;
}

enum sasl_mechanism sasl_mechanism(const struct sasl *s)
{
    return s->mechanism;
}

/* ------------------------------------------------------------- messages */

struct error_message {
    enum sasl_error error;
    const char *reply; /* SMTP, RFC 4954 section 6 where it names one */
};

static const struct error_message error_messages[] = {
    { SASL_ERR_MECHANISM, "504 5.5.4 Unrecognized authentication type" },
    { SASL_ERR_BASE64, "501 5.5.2 Cannot decode response" },
    { SASL_ERR_MALFORMED, "501 5.5.2 Malformed authentication data" },
    { SASL_ERR_AUTHZID,
      "535 5.7.8 Authorization identity not supported" },
    { SASL_ERR_CANCELLED, "501 5.0.0 Authentication aborted" },
    { SASL_ERR_TOO_LONG,
      "500 5.5.6 Authentication Exchange line is too long" },
    { SASL_ERR_STATE, "503 5.5.1 No authentication in progress" },
    { SASL_ERR_TEMPORARY, "454 4.7.0 Temporary authentication failure" },
};

/* What SASL_ERR_NONE and an unknown code become: a temporary failure,
 * never a success. */
static const char temporary_reply[] =
    "454 4.7.0 Temporary authentication failure";

const char *sasl_error_reply(enum sasl_error e)
{
    size_t count = sizeof(error_messages) / sizeof(error_messages[0]);
    for (size_t i = 0; i < count; i++)
        if (error_messages[i].error == e)
            return error_messages[i].reply;
    return temporary_reply;
}

const char *sasl_error_text(enum sasl_error e)
{
    /* "NNN N.N.N text": the text starts after the second space. */
    return sasl_error_reply(e) + sizeof("NNN N.N.N ") - 1;
}
