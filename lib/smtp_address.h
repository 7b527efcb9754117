/*
 * smtp_address - parse the arguments of MAIL FROM and RCPT TO (RFC 5321
 * section 4.1.2, with the ESMTP parameters of RFC 1870, 6152, 3030, 3461, 4954
 * and 6531), and xtext (RFC 3461 section 4).
 *
 * The caller strips "MAIL FROM:" or "RCPT TO:" and the CRLF and hands over
 * the rest, with its length (the bytes may hold NUL, which is refused).
 * One optional space may follow the colon; the path must be in angle
 * brackets.  The result says what to reply; the caller formats it:
 *
 *     struct smtp_address a;
 *     smtp_address_init(&a);                    once per session
 *     enum smtp_address_result r = smtp_address_parse(&a, SMTP_ADDRESS_MAIL,
 *         arg, arg_len, SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_DSN);
 *     if (r != SMTP_ADDRESS_OK)
 *         reply("%d %s %s", a.reply_code, a.status, buf_cstr(&a.reason));
 *     ... buf_cstr(&a.address), a.flags, a.size, buf_cstr(&a.envid) ...
 *     smtp_address_free(&a);                    at the end
 *
 * Every parse starts from a clean result, so one struct serves a whole
 * session.  Output strings are struct buf with fixed limits (the RFC
 * limits), always NUL-terminated; addresses cannot hold NUL.
 */
#ifndef POSTINO_SMTP_ADDRESS_H
#define POSTINO_SMTP_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* RFC 5321 section 4.5.3.1, in octets as the client sent them. */
#define SMTP_LOCAL_PART_MAX 64
#define SMTP_DOMAIN_MAX 255
#define SMTP_PATH_MAX 256 /* with the angle brackets and any source route */
/* RFC 3461 sections 4.4 and 4.2: the esmtp-values as sent (xtext). */
#define SMTP_ENVID_MAX 100
#define SMTP_ORCPT_MAX 500
#define SMTP_AUTH_MAX 500 /* RFC 4954 sets none; an addr-spec fits */

enum smtp_address_command {
    SMTP_ADDRESS_MAIL, /* MAIL FROM: reverse-path, "<>" allowed */
    SMTP_ADDRESS_RCPT, /* RCPT TO: forward-path, "<Postmaster>" allowed */
};

/* What the server announced in EHLO, plus one transaction state bit. */
enum {
    SMTP_EXT_SIZE = 1 << 0,
    SMTP_EXT_8BITMIME = 1 << 1,
    SMTP_EXT_BINARYMIME = 1 << 2,
    SMTP_EXT_DSN = 1 << 3,
    SMTP_EXT_SMTPUTF8 = 1 << 4,
    SMTP_EXT_AUTH = 1 << 5,
    /* For RCPT: the MAIL of this transaction carried SMTPUTF8, so UTF-8
     * is allowed in the address (needs SMTP_EXT_SMTPUTF8 too).  For MAIL
     * the SMTPUTF8 parameter itself turns it on. */
    SMTP_UTF8_TRANSACTION = 1 << 8,
};

enum smtp_address_result {
    SMTP_ADDRESS_OK = 0,
    /* 501 5.1.7 (MAIL) or 501 5.1.3 (RCPT) */
    SMTP_ADDRESS_SYNTAX,        /* bad path syntax */
    SMTP_ADDRESS_NO_BRACKETS,   /* path not in <> */
    SMTP_ADDRESS_TOO_LONG,      /* local part, domain or path too long */
    SMTP_ADDRESS_CONTROL,       /* NUL, CR, LF, TAB or other control */
    SMTP_ADDRESS_BAD_UTF8,      /* 8-bit bytes that are not UTF-8 */
    SMTP_ADDRESS_8BIT,          /* valid UTF-8 but no SMTPUTF8 */
    SMTP_ADDRESS_NULL_RCPT,     /* RCPT TO:<> */
    /* 501 5.5.4 */
    SMTP_ADDRESS_PARAM_SYNTAX,  /* bad parameter syntax or value */
    SMTP_ADDRESS_PARAM_DUPLICATE,
    /* 555 5.5.4 Unsupported option: NAME */
    SMTP_ADDRESS_PARAM_UNKNOWN,
    SMTP_ADDRESS_PARAM_DISABLED,      /* extension not announced */
    SMTP_ADDRESS_PARAM_WRONG_COMMAND, /* e.g. NOTIFY on MAIL */
    /* 451 4.3.0 */
    SMTP_ADDRESS_NO_MEMORY,
};

/* Relay tricks and other facts about the path, for policy (a.flags). */
enum {
    SMTP_ADDR_NULL = 1 << 0,          /* "<>" (MAIL only) */
    SMTP_ADDR_SOURCE_ROUTE = 1 << 1,  /* "<@a,@b:u@c>", route dropped */
    SMTP_ADDR_HAS_PERCENT = 1 << 2,   /* '%' in the local part */
    SMTP_ADDR_HAS_BANG = 1 << 3,      /* '!' in the local part */
    SMTP_ADDR_QUOTED_AT = 1 << 4,     /* '@' in a quoted local part */
    SMTP_ADDR_TRAILING_DOT = 1 << 5,  /* "u@example.com.", dot dropped */
    SMTP_ADDR_EMPTY_LOCAL = 1 << 6,   /* "\"\"@example.com" */
    SMTP_ADDR_QUOTED = 1 << 7,        /* canonical local part is quoted */
    SMTP_ADDR_LITERAL = 1 << 8,       /* domain is an address literal */
    SMTP_ADDR_8BIT = 1 << 9,          /* UTF-8 in the path */
    SMTP_ADDR_POSTMASTER = 1 << 10,   /* RCPT TO:<Postmaster>, no domain */
};

enum smtp_param_id {
    SMTP_PARAM_SIZE,
    SMTP_PARAM_BODY,
    SMTP_PARAM_SMTPUTF8,
    SMTP_PARAM_RET,
    SMTP_PARAM_ENVID,
    SMTP_PARAM_AUTH,
    SMTP_PARAM_NOTIFY,
    SMTP_PARAM_ORCPT,
    SMTP_PARAM_COUNT,
};

#define SMTP_PARAM_BIT(id) (1u << (id))

enum smtp_body { SMTP_BODY_NONE, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME,
                 SMTP_BODY_BINARYMIME };
enum smtp_ret { SMTP_RET_NONE, SMTP_RET_FULL, SMTP_RET_HDRS };

enum {
    SMTP_NOTIFY_NEVER = 1 << 0,
    SMTP_NOTIFY_SUCCESS = 1 << 1,
    SMTP_NOTIFY_FAILURE = 1 << 2,
    SMTP_NOTIFY_DELAY = 1 << 3,
};

/* One parameter as the client sent it: the keyword's canonical upper-case
 * name and the value exactly as given ("" for SMTPUTF8). */
struct smtp_param {
    enum smtp_param_id id;
    const char *keyword;
    struct buf value;
};

struct smtp_address {
    /* The answer: reply_code and status are 0 and "" when OK. */
    enum smtp_address_result result;
    int reply_code;      /* 501, 555, 553 (8-bit) or 451 (memory) */
    const char *status;  /* "5.1.7", "5.1.3", "5.5.4", "5.6.7", "4.3.0" */
    struct buf reason;   /* text after the status, e.g. "Bad sender ..." */
    const char *detail;  /* what exactly was wrong, for the log */

    /* The path, only after SMTP_ADDRESS_OK (all "" after an error).  All
     * "" for "<>"; domain "" for RCPT TO:<Postmaster>.  Domain case is
     * kept as sent; the caller folds it for lookups. */
    struct buf address;    /* canonical local-part "@" domain */
    struct buf local_part; /* canonical: quoted only when it must be */
    struct buf domain;     /* as sent, minus one trailing dot; literals
                            * keep their brackets: "[192.0.2.1]" */
    unsigned flags;        /* SMTP_ADDR_* */

    /* The parameters, in the order given (at most one of each). */
    struct smtp_param params[SMTP_PARAM_COUNT];
    size_t param_count;
    unsigned seen; /* SMTP_PARAM_BIT(id) for each one given */

    /* Their decoded values (meaningful when the bit is in seen). */
    long size;
    enum smtp_body body;
    bool smtputf8;
    enum smtp_ret ret;
    struct buf envid;       /* xtext decoded */
    struct buf auth;        /* xtext decoded; "<>" stays "<>" */
    unsigned notify;        /* SMTP_NOTIFY_* */
    struct buf orcpt_type;  /* addr-type as sent, e.g. "rfc822" */
    struct buf orcpt;       /* xtext decoded address */
};

void smtp_address_init(struct smtp_address *a);
void smtp_address_free(struct smtp_address *a);
enum smtp_address_result smtp_address_parse(struct smtp_address *a,
                                            enum smtp_address_command cmd,
                                            const char *text, size_t len,
                                            unsigned extensions);

/* The parts of a parsed address ("" for the null sender). */
const char *smtp_address_domain(const struct smtp_address *a);
const char *smtp_address_local_part(const struct smtp_address *a);

/* A name for the result, for logs and tests: "SMTP_ADDRESS_OK", ... */
const char *smtp_address_result_name(enum smtp_address_result r);

/*
 * xtext (RFC 3461 section 4): xchar is '!'..'~' except '+' and '='; anything
 * else is "+" and two upper-case hex digits.  Both append to out.
 * smtp_xtext_decode: -1 with errno EINVAL on bad xtext ("+2g", "+",
 * "+2f" lower case, a bare '=', a space or 8-bit byte); EMSGSIZE or ENOMEM
 * from buf (out then holds what it held before).  The decoded bytes may
 * be anything, NUL included; the caller judges them.
 */
int smtp_xtext_decode(struct buf *out, const char *in, size_t len);
int smtp_xtext_encode(struct buf *out, const void *in, size_t len);

#endif
