/*
 * sasl - the server side of the SASL mechanisms PLAIN (RFC 4616) and LOGIN
 * (draft-murchison-sasl-login), apart from any protocol framing, shared by
 * smtpd (AUTH, RFC 4954) and pop3d (AUTH, RFC 5034).
 *
 * The caller reads lines and writes replies; this module turns the client's
 * base64 responses into a user name and a password:
 *
 *     struct sasl s;
 *     sasl_init(&s);
 *     int r = sasl_start(&s, "PLAIN", initial_or_NULL); AUTH PLAIN [resp]
 *     while (r == SASL_CHALLENGE) {
 *         send "334 " + sasl_challenge(&s)     (pop3d: "+ " + challenge)
 *         read a line (CRLF removed)
 *         r = sasl_step(&s, line);
 *     }
 *     if (r == SASL_ERROR)
 *         send sasl_error_reply(sasl_error(&s))  (pop3d: "-ERR " +
 *                                                  sasl_error_text(...))
 *     else
 *         password_check(users, sasl_username(&s), sasl_password(&s), ...)
 *     sasl_reset(&s);                          wipes the secrets
 *
 * Rules applied:
 *   - "=" alone is the empty response (RFC 4954 section 4); it is taken in
 *     sasl_start as the initial response and, leniently, in sasl_step too.
 *   - "*" alone in sasl_step cancels (501 5.0.0).  As an initial response
 *     it is simply invalid base64.
 *   - A response (initial or not) longer than SASL_LINE_MAX octets, CRLF
 *     not counted, is refused with 500 5.5.6.
 *   - Base64 is strict (lib/base64.h): anything else is 501 5.5.2.
 *   - PLAIN: [authzid] NUL authcid NUL passwd, exactly two NULs, each part
 *     at most SASL_PART_MAX octets and valid UTF-8, authcid and passwd not
 *     empty.  An authzid that is not empty and differs from authcid is
 *     refused (no proxy authorization) with its own code.
 *   - LOGIN: "Username:" then "Password:" challenges; an initial response
 *     is the user name.  Each at most SASL_PART_MAX octets, not empty, no
 *     NUL; not checked for UTF-8 (LOGIN clients send what they have).
 *   - Both: a user name may not hold control characters (it ends up in
 *     table keys and log lines).
 *   - Mechanism names are compared without regard to ASCII case.
 *
 * Nothing here logs; the password never leaves struct sasl except through
 * sasl_password(), and sasl_reset() (also called on every error and by
 * the next sasl_start) wipes it with explicit_bzero.
 */
#ifndef POSTINO_SASL_H
#define POSTINO_SASL_H

#include <stddef.h>

/* RFC 4954 section 4: the longest response line, CRLF not counted. */
#define SASL_LINE_MAX 12288
/* RFC 4616 section 2: the longest authzid, authcid or passwd. */
#define SASL_PART_MAX 255

/* For EHLO's "AUTH" keyword and POP3's CAPA "SASL" line. */
#define SASL_MECHANISMS "PLAIN LOGIN"

enum sasl_status {
    SASL_CHALLENGE = 1, /* send sasl_challenge(), pass the answer to step */
    SASL_DONE = 0,      /* sasl_username() and sasl_password() are set */
    SASL_ERROR = -1,    /* sasl_error() says why; the exchange is over */
};

enum sasl_error {
    SASL_ERR_NONE = 0,
    SASL_ERR_MECHANISM, /* 504 5.5.4 Unrecognized authentication type */
    SASL_ERR_BASE64,    /* 501 5.5.2 Cannot decode response */
    SASL_ERR_MALFORMED, /* 501 5.5.2 Malformed authentication data */
    SASL_ERR_AUTHZID,   /* 535 5.7.8 authorization identity not supported */
    SASL_ERR_CANCELLED, /* 501 5.0.0 Authentication aborted */
    SASL_ERR_TOO_LONG,  /* 500 5.5.6 Authentication Exchange line is too long */
    SASL_ERR_STATE,     /* 503 5.5.1 sasl_step without an exchange (a bug) */
    SASL_ERR_TEMPORARY, /* 454 4.7.0 out of memory */
};

enum sasl_mechanism {
    SASL_MECH_NONE = 0,
    SASL_MECH_PLAIN,
    SASL_MECH_LOGIN,
};

/* The fields are private; the struct is public so that it can live on the
 * stack or in a session without an allocation. */
struct sasl {
    enum sasl_mechanism mechanism;
    int state;                 /* what the next response answers */
    enum sasl_error error;
    const char *challenge;     /* base64, a static string */
    size_t username_len;
    size_t password_len;
    char username[SASL_PART_MAX + 1];
    char password[SASL_PART_MAX + 1];
};

void sasl_init(struct sasl *s);
/* Starts an exchange (after sasl_reset).  initial is the initial response
 * as the client sent it (base64 or "="), NULL when there was none. */
int sasl_start(struct sasl *s, const char *mechanism, const char *initial);
/* Hands the client's answer to the last challenge (one line, CRLF
 * removed). */
int sasl_step(struct sasl *s, const char *response);
/* The challenge to send after SASL_CHALLENGE, base64 ("" for PLAIN). */
const char *sasl_challenge(const struct sasl *s);
/* After SASL_ERROR. */
enum sasl_error sasl_error(const struct sasl *s);
/* After SASL_DONE: NUL-terminated, no NUL inside; NULL otherwise. */
const char *sasl_username(const struct sasl *s);
const char *sasl_password(const struct sasl *s);
/* The mechanism of the exchange, SASL_MECH_NONE before sasl_start. */
enum sasl_mechanism sasl_mechanism(const struct sasl *s);
/* Wipes the user name and password and forgets the exchange. */
void sasl_reset(struct sasl *s);

/* 1 when name is a mechanism sasl_start takes, else 0. */
int sasl_mechanism_supported(const char *name);
/* The SMTP reply for an error, without CRLF: "501 5.5.2 ...". */
const char *sasl_error_reply(enum sasl_error e);
/* The same without the codes, for pop3d's "-ERR " and for logs. */
const char *sasl_error_text(enum sasl_error e);

#endif
