/*
 * test_smtp_address - unit tests for lib/smtp_address (the arguments of
 * MAIL FROM and RCPT TO, ESMTP parameters, xtext).
 *
 * Table-driven: paths (brackets, Dot-string, Quoted-string and its
 * canonical form, address literals, source routes, control bytes, 8-bit
 * with and without SMTPUTF8, invalid UTF-8), the relay-trick flags, the
 * length limits exactly at and one over, every parameter (valid, bad
 * value, duplicate, unknown, disabled, wrong command), and xtext decode,
 * encode and round trips.  Each case asserts the exact result, reply
 * code, status and, where given, reason and parsed values.
 *
 * Run: build/<cc>/tests/test_smtp_address (no arguments, no files).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <string.h>

#include "buf.h"
#include "smtp_address.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

#define MAIL SMTP_ADDRESS_MAIL
#define RCPT SMTP_ADDRESS_RCPT
#define EXT_ALL                                                              \
    (SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_BINARYMIME |              \
     SMTP_EXT_DSN | SMTP_EXT_SMTPUTF8 | SMTP_EXT_AUTH)
#define UTF8_RCPT (EXT_ALL | SMTP_UTF8_TRANSACTION)

/* Result names, shorter for the tables. */
#define OK SMTP_ADDRESS_OK
#define SYNTAX SMTP_ADDRESS_SYNTAX
#define NO_BRACKETS SMTP_ADDRESS_NO_BRACKETS
#define TOO_LONG SMTP_ADDRESS_TOO_LONG
#define CONTROL SMTP_ADDRESS_CONTROL
#define BAD_UTF8 SMTP_ADDRESS_BAD_UTF8
#define EIGHTBIT SMTP_ADDRESS_8BIT
#define NULL_RCPT SMTP_ADDRESS_NULL_RCPT
#define P_SYNTAX SMTP_ADDRESS_PARAM_SYNTAX
#define P_DUP SMTP_ADDRESS_PARAM_DUPLICATE
#define P_UNKNOWN SMTP_ADDRESS_PARAM_UNKNOWN
#define P_DISABLED SMTP_ADDRESS_PARAM_DISABLED
#define P_WRONG SMTP_ADDRESS_PARAM_WRONG_COMMAND

/* The reply code and status every result must give. */
static void assert_reply(const struct smtp_address *a,
                         enum smtp_address_command cmd)
{
    switch (a->result) {
    case SMTP_ADDRESS_OK:
        assert_int_equal(a->reply_code, 0);
        assert_string_equal(a->status, "");
        assert_string_equal(buf_cstr(&a->reason), "");
        return;
    case SMTP_ADDRESS_8BIT:
        assert_int_equal(a->reply_code, 553);
        assert_string_equal(a->status, "5.6.7");
        break;
    case SMTP_ADDRESS_PARAM_SYNTAX:
        assert_string_equal(buf_cstr(&a->reason),
                            "Syntax error in parameters");
        /* fall through */
    case SMTP_ADDRESS_PARAM_DUPLICATE:
        assert_int_equal(a->reply_code, 501);
        assert_string_equal(a->status, "5.5.4");
        break;
    case SMTP_ADDRESS_PARAM_UNKNOWN:
    case SMTP_ADDRESS_PARAM_DISABLED:
    case SMTP_ADDRESS_PARAM_WRONG_COMMAND:
        assert_int_equal(a->reply_code, 555);
        assert_string_equal(a->status, "5.5.4");
        assert_memory_equal(buf_cstr(&a->reason), "Unsupported option: ", 20);
        break;
    case SMTP_ADDRESS_NO_MEMORY:
        assert_int_equal(a->reply_code, 451);
        break;
    default:
        assert_int_equal(a->reply_code, 501);
        assert_string_equal(a->status, cmd == MAIL ? "5.1.7" : "5.1.3");
        assert_memory_equal(buf_cstr(&a->reason),
                            cmd == MAIL ? "Bad sender address syntax"
                                        : "Bad recipient address syntax",
                            cmd == MAIL ? 25 : 28);
        break;
    }
    /* Nothing half-parsed is left after an error. */
    assert_string_equal(buf_cstr(&a->address), "");
    assert_int_equal(a->flags, 0);
    assert_int_equal(a->param_count, 0);
}

static enum smtp_address_result parse(struct smtp_address *a,
                                      enum smtp_address_command cmd,
                                      const char *text, size_t len,
                                      unsigned ext)
{
    enum smtp_address_result r = smtp_address_parse(a, cmd, text, len, ext);
    if (r != a->result)
        fail_msg("returned %d, stored %d", r, a->result);
    assert_reply(a, cmd);
    return r;
}

/* ---- paths ---- */

#define Q "\""
#define F_NULL SMTP_ADDR_NULL
#define F_ROUTE SMTP_ADDR_SOURCE_ROUTE
#define F_PCT SMTP_ADDR_HAS_PERCENT
#define F_BANG SMTP_ADDR_HAS_BANG
#define F_QAT SMTP_ADDR_QUOTED_AT
#define F_DOT SMTP_ADDR_TRAILING_DOT
#define F_EMPTY SMTP_ADDR_EMPTY_LOCAL
#define F_QUOTED SMTP_ADDR_QUOTED
#define F_LIT SMTP_ADDR_LITERAL
#define F_8BIT SMTP_ADDR_8BIT
#define F_PM SMTP_ADDR_POSTMASTER

struct path_case {
    enum smtp_address_command cmd;
    const char *text;
    size_t len; /* 0: strlen(text) */
    unsigned ext;
    enum smtp_address_result result;
    const char *local; /* for OK */
    const char *domain;
    unsigned flags;
    const char *reason; /* NULL: not checked */
};

static const struct path_case path_cases[] = {
    /* brackets and the one optional space */
    { MAIL, "<a@b>", 0, EXT_ALL, OK, "a", "b", 0, NULL },
    { MAIL, " <a@b>", 0, EXT_ALL, OK, "a", "b", 0, NULL },
    { RCPT, " <a@b>", 0, EXT_ALL, OK, "a", "b", 0, NULL },
    { MAIL, "<a@b> ", 0, EXT_ALL, OK, "a", "b", 0, NULL },
    { MAIL, "  <a@b>", 0, EXT_ALL, SYNTAX, 0, 0, 0,
      "Bad sender address syntax" },
    { MAIL, "a@b", 0, EXT_ALL, NO_BRACKETS, 0, 0, 0,
      "Bad sender address syntax: angle brackets required" },
    { RCPT, "a@b", 0, EXT_ALL, NO_BRACKETS, 0, 0, 0,
      "Bad recipient address syntax: angle brackets required" },
    { MAIL, " a@b", 0, EXT_ALL, NO_BRACKETS, 0, 0, 0, NULL },
    { MAIL, "a@b>", 0, EXT_ALL, NO_BRACKETS, 0, 0, 0, NULL },
    { MAIL, "", 0, EXT_ALL, NO_BRACKETS, 0, 0, 0, NULL },
    { MAIL, " ", 0, EXT_ALL, NO_BRACKETS, 0, 0, 0, NULL },
    { MAIL, "<a@b", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "< a@b>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a@b >", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a@b>x", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a@b><c@d>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<<a@b>>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    /* null path */
    { MAIL, "<>", 0, EXT_ALL, OK, "", "", F_NULL, NULL },
    { MAIL, " <>", 0, EXT_ALL, OK, "", "", F_NULL, NULL },
    { MAIL, "<> SIZE=1", 0, EXT_ALL, OK, "", "", F_NULL, NULL },
    { RCPT, "<>", 0, EXT_ALL, NULL_RCPT, 0, 0, 0,
      "Bad recipient address syntax: null recipient" },
    { MAIL, "< >", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<>x", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<><>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    /* Postmaster without a domain: RCPT only */
    { RCPT, "<Postmaster>", 0, EXT_ALL, OK, "Postmaster", "", F_PM, NULL },
    { RCPT, "<postMASTER>", 0, EXT_ALL, OK, "postMASTER", "", F_PM, NULL },
    { RCPT, "<" Q "Postmaster" Q ">", 0, EXT_ALL, OK, "Postmaster", "", F_PM,
      NULL },
    { MAIL, "<Postmaster>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { RCPT, "<@a:Postmaster>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { RCPT, "<user>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { RCPT, "<Postmaster@example.com>", 0, EXT_ALL, OK, "Postmaster",
      "example.com", 0, NULL },
    /* Dot-string */
    { MAIL, "<user.name+tag@example.com>", 0, EXT_ALL, OK, "user.name+tag",
      "example.com", 0, NULL },
    { MAIL, "<!#$&'*+-/=?^_`{|}~@x>", 0, EXT_ALL, OK, "!#$&'*+-/=?^_`{|}~",
      "x", F_BANG, NULL },
    { MAIL, "<.a@b>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a.@b>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a..b@c>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a b@c>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a(b)@c>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a,b@c>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a;b@c>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a\\b@c>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a@b@c>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<@b>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a@>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a>", 0, EXT_ALL, SYNTAX, 0, 0, 0,
      "Bad sender address syntax" },
    /* Quoted-string and its canonical form */
    { MAIL, "<" Q "john doe" Q "@example.com>", 0, EXT_ALL, OK,
      Q "john doe" Q, "example.com", F_QUOTED, NULL },
    { MAIL, "<" Q "john" Q "@example.com>", 0, EXT_ALL, OK, "john",
      "example.com", 0, NULL },
    { MAIL, "<" Q "j.o.h.n" Q "@x>", 0, EXT_ALL, OK, "j.o.h.n", "x", 0,
      NULL },
    { MAIL, "<" Q "\\j\\o" Q "@x>", 0, EXT_ALL, OK, "jo", "x", 0, NULL },
    { MAIL, "<" Q "a\\\\b" Q "@x>", 0, EXT_ALL, OK, Q "a\\\\b" Q, "x",
      F_QUOTED, NULL },
    { MAIL, "<" Q "a\\" Q "b" Q "@x>", 0, EXT_ALL, OK, Q "a\\" Q "b" Q, "x",
      F_QUOTED, NULL },
    { MAIL, "<" Q "a..b" Q "@x>", 0, EXT_ALL, OK, Q "a..b" Q, "x", F_QUOTED,
      NULL },
    { MAIL, "<" Q ".a" Q "@x>", 0, EXT_ALL, OK, Q ".a" Q, "x", F_QUOTED,
      NULL },
    { MAIL, "<" Q "a>b" Q "@x>", 0, EXT_ALL, OK, Q "a>b" Q, "x", F_QUOTED,
      NULL },
    { MAIL, "<" Q "a\\ b" Q "@x>", 0, EXT_ALL, OK, Q "a b" Q, "x", F_QUOTED,
      NULL },
    { MAIL, "<" Q Q "@x>", 0, EXT_ALL, OK, Q Q, "x", F_EMPTY | F_QUOTED,
      NULL },
    { MAIL, "<" Q "abc@x>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<" Q "abc" Q "d@x>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a" Q "b" Q "@x>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<" Q "a" Q "." Q "b" Q "@x>", 0, EXT_ALL, SYNTAX, 0, 0, 0,
      NULL },
    { MAIL, "<" Q "a\\" Q "@x>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<" Q "a\\", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    /* domains */
    { MAIL, "<a@example.com>", 0, EXT_ALL, OK, "a", "example.com", 0, NULL },
    { MAIL, "<a@Ex-Ample.COM>", 0, EXT_ALL, OK, "a", "Ex-Ample.COM", 0,
      NULL },
    { MAIL, "<a@1.2.3.4>", 0, EXT_ALL, OK, "a", "1.2.3.4", 0, NULL },
    { MAIL, "<a@x--y.z>", 0, EXT_ALL, OK, "a", "x--y.z", 0, NULL },
    { MAIL, "<a@b..c>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a@.b>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a@-b.c>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a@b-.c>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a@b.c->", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a@b_c.d>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a@b.c..>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a@.>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a@b:c>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    /* trailing dot: reported, and dropped from domain and address */
    { MAIL, "<user@example.com.>", 0, EXT_ALL, OK, "user", "example.com",
      F_DOT, NULL },
    { RCPT, "<user@x.>", 0, EXT_ALL, OK, "user", "x", F_DOT, NULL },
    /* address literals */
    { MAIL, "<a@[192.0.2.1]>", 0, EXT_ALL, OK, "a", "[192.0.2.1]", F_LIT,
      NULL },
    { MAIL, "<a@[0.0.0.0]>", 0, EXT_ALL, OK, "a", "[0.0.0.0]", F_LIT, NULL },
    { MAIL, "<a@[255.255.255.255]>", 0, EXT_ALL, OK, "a",
      "[255.255.255.255]", F_LIT, NULL },
    { MAIL, "<a@[IPv6:2001:db8::1]>", 0, EXT_ALL, OK, "a",
      "[IPv6:2001:db8::1]", F_LIT, NULL },
    { MAIL, "<a@[ipv6:::1]>", 0, EXT_ALL, OK, "a", "[ipv6:::1]", F_LIT,
      NULL },
    { MAIL, "<a@[IPv6:::ffff:192.0.2.1]>", 0, EXT_ALL, OK, "a",
      "[IPv6:::ffff:192.0.2.1]", F_LIT, NULL },
    { MAIL, "<a@[x-tag:any-thing!]>", 0, EXT_ALL, OK, "a",
      "[x-tag:any-thing!]", F_LIT, NULL },
    { MAIL, "<a@[192.0.2.256]>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    /* inet_pton: no leading zeros, although Snum = 1*3DIGIT allows them */
    { MAIL, "<a@[192.0.2.01]>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a@[IPv4:192.0.2.1]>", 0, EXT_ALL, OK, "a",
      "[IPv4:192.0.2.1]", F_LIT, NULL }, /* a General-address-literal */
    { MAIL, "<a@[192.0.2]>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a@[192.0.2.1.5]>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a@[2001:db8::1]>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a@[IPv6:1::2::3]>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a@[IPv6:192.0.2.1]>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a@[IPv6:]>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a@[tag:]>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a@[-tag:x]>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a@[tag-:x]>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a@[:x]>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a@[]>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a@[192.0.2.1>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a@[a[b]>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a@[a\\b]>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a@[1.2.3.4].>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<a@x[1.2.3.4]>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    /* source routes: parsed, dropped, flagged */
    { MAIL, "<@a,@b:user@c>", 0, EXT_ALL, OK, "user", "c", F_ROUTE, NULL },
    { RCPT, "<@a:user@c>", 0, EXT_ALL, OK, "user", "c", F_ROUTE, NULL },
    { RCPT, "<@[192.0.2.1],@b.c:u@d>", 0, EXT_ALL, OK, "u", "d", F_ROUTE,
      NULL },
    { MAIL, "<@a,b:user@c>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<@a,:user@c>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<@a:@b:user@c>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<@:user@c>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<@a.:user@c>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<@a user@c>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<@a:>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    { MAIL, "<@a:user>", 0, EXT_ALL, SYNTAX, 0, 0, 0, NULL },
    /* relay tricks */
    { RCPT, "<user%other@us>", 0, EXT_ALL, OK, "user%other", "us", F_PCT,
      NULL },
    { RCPT, "<host!user@us>", 0, EXT_ALL, OK, "host!user", "us", F_BANG,
      NULL },
    { RCPT, "<a!b%c@us>", 0, EXT_ALL, OK, "a!b%c", "us", F_BANG | F_PCT,
      NULL },
    { RCPT, "<" Q "user@other" Q "@us>", 0, EXT_ALL, OK, Q "user@other" Q,
      "us", F_QAT | F_QUOTED, NULL },
    { RCPT, "<" Q "user%other" Q "@us>", 0, EXT_ALL, OK, "user%other", "us",
      F_PCT, NULL },
    { RCPT, "<" Q "host!user" Q "@us>", 0, EXT_ALL, OK, "host!user", "us",
      F_BANG, NULL },
    { RCPT, "<" Q "a@b%c!d" Q "@us.>", 0, EXT_ALL, OK, Q "a@b%c!d" Q, "us",
      F_QAT | F_PCT | F_BANG | F_QUOTED | F_DOT, NULL },
    { RCPT, "<@relay:" Q "u@v" Q "@us>", 0, EXT_ALL, OK, Q "u@v" Q, "us",
      F_ROUTE | F_QAT | F_QUOTED, NULL },
    { RCPT, "<" Q Q "@us>", 0, EXT_ALL, OK, Q Q, "us", F_EMPTY | F_QUOTED,
      NULL },
    /* control bytes, anywhere */
    { MAIL, "<a\r@b>", 0, EXT_ALL, CONTROL, 0, 0, 0,
      "Bad sender address syntax: control character" },
    { RCPT, "<a@b>\r\n", 0, EXT_ALL, CONTROL, 0, 0, 0,
      "Bad recipient address syntax: control character" },
    { MAIL, "<a\n@b>", 0, EXT_ALL, CONTROL, 0, 0, 0, NULL },
    { MAIL, "<a\0@b>", 6, EXT_ALL, CONTROL, 0, 0, 0, NULL },
    { MAIL, "<a@b>\0", 6, EXT_ALL, CONTROL, 0, 0, 0, NULL },
    { MAIL, "<a\t@b>", 0, EXT_ALL, CONTROL, 0, 0, 0, NULL },
    { MAIL, "<a@b>\tSIZE=1", 0, EXT_ALL, CONTROL, 0, 0, 0, NULL },
    { MAIL, "<a\x7f@b>", 0, EXT_ALL, CONTROL, 0, 0, 0, NULL },
    { MAIL, "<a\x1b@b>", 0, EXT_ALL, CONTROL, 0, 0, 0, NULL },
    { MAIL, "<" Q "a\\\x01" Q "@b>", 0, EXT_ALL, CONTROL, 0, 0, 0, NULL },
    { MAIL, "<a@b> ENVID=x\r", 0, EXT_ALL, CONTROL, 0, 0, 0, NULL },
    /* 8-bit: only valid UTF-8, only with SMTPUTF8 */
    { MAIL, "<j\xc3\xbcrgen@x>", 0, EXT_ALL, EIGHTBIT, 0, 0, 0,
      "Non-ASCII addresses not permitted for that sender" },
    { MAIL, "<j\xc3\xbcrgen@x> SMTPUTF8", 0, EXT_ALL, OK, "j\xc3\xbcrgen",
      "x", F_8BIT, NULL },
    { MAIL, "<j\xc3\xbcrgen@x> SMTPUTF8",
      0, EXT_ALL & ~SMTP_EXT_SMTPUTF8, P_DISABLED, 0, 0, 0,
      "Unsupported option: SMTPUTF8" },
    { RCPT, "<j\xc3\xbcrgen@x>", 0, UTF8_RCPT, OK, "j\xc3\xbcrgen", "x",
      F_8BIT, NULL },
    /* For MAIL only its own SMTPUTF8 parameter counts. */
    { MAIL, "<j\xc3\xbcrgen@x>", 0, UTF8_RCPT, EIGHTBIT, 0, 0, 0, NULL },
    { RCPT, "<j\xc3\xbcrgen@x>", 0, EXT_ALL, EIGHTBIT, 0, 0, 0,
      "Non-ASCII addresses not permitted for that recipient" },
    { RCPT, "<j\xc3\xbcrgen@x>", 0, UTF8_RCPT & ~SMTP_EXT_SMTPUTF8, EIGHTBIT,
      0, 0, 0, NULL },
    { RCPT, "<a@b\xc3\xbc" "cher.de>", 0, UTF8_RCPT, OK, "a",
      "b\xc3\xbc" "cher.de", F_8BIT, NULL },
    { RCPT, "<a@\xe4\xbe\x8b.\xe5\x9c\x8b>", 0, UTF8_RCPT, OK, "a",
      "\xe4\xbe\x8b.\xe5\x9c\x8b", F_8BIT, NULL },
    { RCPT, "<\xf0\x9f\x98\x80@x>", 0, UTF8_RCPT, OK, "\xf0\x9f\x98\x80", "x",
      F_8BIT, NULL },
    { RCPT, "<" Q "\xc3\xa9 x" Q "@x>", 0, UTF8_RCPT, OK, Q "\xc3\xa9 x" Q,
      "x", F_8BIT | F_QUOTED, NULL },
    { RCPT, "<" Q "\xc3\xa9" Q "@x>", 0, UTF8_RCPT, OK, "\xc3\xa9", "x",
      F_8BIT, NULL },
    { RCPT, "<@\xc3\xa9:a@x>", 0, EXT_ALL, EIGHTBIT, 0, 0, 0, NULL },
    { RCPT, "<a@[\xc3\xa9]>", 0, UTF8_RCPT, SYNTAX, 0, 0, 0, NULL },
    { RCPT, "<a@[\xff]>", 0, UTF8_RCPT, BAD_UTF8, 0, 0, 0, NULL },
    { RCPT, "<a\xff@b>", 0, UTF8_RCPT, BAD_UTF8, 0, 0, 0,
      "Bad recipient address syntax: invalid UTF-8" },
    { RCPT, "<a\xff@b>", 0, EXT_ALL, BAD_UTF8, 0, 0, 0, NULL },
    { RCPT, "<a\xc3@b>", 0, UTF8_RCPT, BAD_UTF8, 0, 0, 0, NULL },
    { RCPT, "<a@b\xc3>", 0, UTF8_RCPT, BAD_UTF8, 0, 0, 0, NULL },
    { RCPT, "<a@b\xc3", 0, UTF8_RCPT, BAD_UTF8, 0, 0, 0, NULL },
    { RCPT, "<a\x80@b>", 0, UTF8_RCPT, BAD_UTF8, 0, 0, 0, NULL },
    { RCPT, "<a\xc0\xaf@b>", 0, UTF8_RCPT, BAD_UTF8, 0, 0, 0, NULL },
    { RCPT, "<a\xc1\xbf@b>", 0, UTF8_RCPT, BAD_UTF8, 0, 0, 0, NULL },
    { RCPT, "<a\xe0\x80\xaf@b>", 0, UTF8_RCPT, BAD_UTF8, 0, 0, 0, NULL },
    { RCPT, "<a\xed\xa0\x80@b>", 0, UTF8_RCPT, BAD_UTF8, 0, 0, 0, NULL },
    { RCPT, "<a\xf0\x80\x80\xaf@b>", 0, UTF8_RCPT, BAD_UTF8, 0, 0, 0, NULL },
    { RCPT, "<a\xf4\x90\x80\x80@b>", 0, UTF8_RCPT, BAD_UTF8, 0, 0, 0, NULL },
    { RCPT, "<a\xf5\x80\x80\x80@b>", 0, UTF8_RCPT, BAD_UTF8, 0, 0, 0, NULL },
    { RCPT, "<" Q "\xfe" Q "@b>", 0, UTF8_RCPT, BAD_UTF8, 0, 0, 0, NULL },
    { RCPT, "<" Q "\\\xc3\xa9" Q "@b>", 0, UTF8_RCPT, SYNTAX, 0, 0, 0, NULL },
};

static void test_paths(void **state)
{
    (void)state;
    struct smtp_address a;
    smtp_address_init(&a);
    for (size_t i = 0; i < COUNT(path_cases); i++) {
        const struct path_case *c = &path_cases[i];
        size_t len = c->len ? c->len : strlen(c->text);
        enum smtp_address_result r = parse(&a, c->cmd, c->text, len, c->ext);
        if (r != c->result)
            fail_msg("case %zu \"%s\": %s, expected %s (%s)", i, c->text,
                     smtp_address_result_name(r),
                     smtp_address_result_name(c->result), a.detail);
        if (c->reason)
            assert_string_equal(buf_cstr(&a.reason), c->reason);
        if (r != OK)
            continue;
        if (a.flags != c->flags)
            fail_msg("case %zu \"%s\": flags %#x, expected %#x", i, c->text,
                     a.flags, c->flags);
        assert_string_equal(smtp_address_local_part(&a), c->local);
        assert_string_equal(smtp_address_domain(&a), c->domain);
        /* The address is the canonical local part and the domain. */
        struct buf want;
        buf_init(&want, 1000);
        assert_int_equal(buf_append_str(&want, c->local), 0);
        if (*c->domain)
            assert_int_equal(buf_printf(&want, "@%s", c->domain), 0);
        assert_string_equal(buf_cstr(&a.address), buf_cstr(&want));
        buf_free(&want);
    }
    smtp_address_free(&a);
}

/* ---- length limits, exactly at and one over ---- */

static void make_path(struct buf *b, size_t local, size_t domain,
                      const char *params)
{
    buf_reset(b);
    assert_int_equal(buf_append_char(b, '<'), 0);
    for (size_t i = 0; i < local; i++)
        assert_int_equal(buf_append_char(b, 'l'), 0);
    assert_int_equal(buf_append_char(b, '@'), 0);
    /* Labels of 63 letters and a dot, the last one shorter. */
    for (size_t i = 0; i < domain; i++)
        assert_int_equal(buf_append_char(b, i % 64 == 63 ? '.' : 'd'), 0);
    assert_int_equal(buf_append_char(b, '>'), 0);
    assert_int_equal(buf_append_str(b, params), 0);
}

struct limit_case {
    size_t local;
    size_t domain;
    enum smtp_address_result result;
    const char *reason;
};

static const struct limit_case limit_cases[] = {
    { 64, 10, OK, "" },
    { 65, 10, TOO_LONG, "Bad sender address syntax: local part too long" },
    { 100, 10, TOO_LONG, "Bad sender address syntax: local part too long" },
    /* 2 + 64 + 1 + 189 = 256: the path limit exactly */
    { 64, 189, OK, "" },
    { 64, 190, TOO_LONG, "Bad sender address syntax: path too long" },
    { 1, 252, OK, "" }, /* 2 + 1 + 1 + 252 = 256 */
    { 1, 253, TOO_LONG, "Bad sender address syntax: path too long" },
    /* a domain of 255 passes the domain check and fails the path one */
    { 1, 255, TOO_LONG, "Bad sender address syntax: path too long" },
    { 1, 256, TOO_LONG, "Bad sender address syntax: domain too long" },
    { 1, 1000, TOO_LONG, "Bad sender address syntax: domain too long" },
};

static void test_limits(void **state)
{
    (void)state;
    struct smtp_address a;
    struct buf b;
    smtp_address_init(&a);
    buf_init(&b, 4096);
    for (size_t i = 0; i < COUNT(limit_cases); i++) {
        const struct limit_case *c = &limit_cases[i];
        make_path(&b, c->local, c->domain, "");
        assert_int_equal(parse(&a, MAIL, b.data, b.len, EXT_ALL), c->result);
        assert_string_equal(buf_cstr(&a.reason), c->reason);
        if (c->result == OK) {
            assert_int_equal(a.local_part.len, c->local);
            assert_int_equal(a.domain.len, c->domain);
        }
    }
    /* 256 with a trailing dot: the dot counts in the path. */
    make_path(&b, 64, 188, "");
    buf_truncate(&b, b.len - 1);
    assert_int_equal(buf_append_str(&b, ".>"), 0);
    assert_int_equal(parse(&a, RCPT, b.data, b.len, EXT_ALL), OK);
    assert_int_equal(a.flags, SMTP_ADDR_TRAILING_DOT);
    assert_int_equal(a.domain.len, 188);
    /* A label of 63 octets, and of 64. */
    assert_int_equal(buf_set_str(&b, "<a@"), 0);
    for (int i = 0; i < 63; i++)
        assert_int_equal(buf_append_char(&b, 'x'), 0);
    assert_int_equal(buf_append_str(&b, ".com>"), 0);
    assert_int_equal(parse(&a, RCPT, b.data, b.len, EXT_ALL), OK);
    assert_int_equal(buf_set_str(&b, "<a@x"), 0);
    for (int i = 0; i < 63; i++)
        assert_int_equal(buf_append_char(&b, 'x'), 0);
    assert_int_equal(buf_append_str(&b, ".com>"), 0);
    assert_int_equal(parse(&a, RCPT, b.data, b.len, EXT_ALL), TOO_LONG);
    assert_string_equal(buf_cstr(&a.reason),
                        "Bad recipient address syntax: domain label too long");
    /* An address literal: 255 octets with its brackets, and 256. */
    for (size_t n = 255; n <= 256; n++) {
        assert_int_equal(buf_set_str(&b, "<a@[x:"), 0);
        while (b.len < 3 + n - 1)
            assert_int_equal(buf_append_char(&b, 'y'), 0);
        assert_int_equal(buf_append_str(&b, "]>"), 0);
        assert_int_equal(parse(&a, RCPT, b.data, b.len, EXT_ALL), TOO_LONG);
        assert_string_equal(buf_cstr(&a.reason),
                            n == 255 ? "Bad recipient address syntax: path "
                                       "too long"
                                     : "Bad recipient address syntax: "
                                       "domain too long");
    }
    /* The 63-octet label limit is for ASCII labels only: a U-label of 32
     * two-byte characters (64 octets) passes; its A-label is shorter. */
    assert_int_equal(buf_set_str(&b, "<a@"), 0);
    for (int i = 0; i < 32; i++)
        assert_int_equal(buf_append_str(&b, "\xc3\xa9"), 0);
    assert_int_equal(buf_append_str(&b, ".de>"), 0);
    assert_int_equal(parse(&a, RCPT, b.data, b.len,
                           EXT_ALL | SMTP_UTF8_TRANSACTION),
                     OK);
    /* A quoted local part: 64 octets as sent, quotes included. */
    assert_int_equal(buf_set_str(&b, "<\""), 0);
    for (int i = 0; i < 62; i++)
        assert_int_equal(buf_append_char(&b, ' '), 0);
    assert_int_equal(buf_append_str(&b, "\"@x>"), 0);
    assert_int_equal(parse(&a, RCPT, b.data, b.len, EXT_ALL), OK);
    assert_int_equal(a.local_part.len, 64);
    assert_int_equal(buf_set_str(&b, "<\""), 0);
    for (int i = 0; i < 63; i++)
        assert_int_equal(buf_append_char(&b, ' '), 0);
    assert_int_equal(buf_append_str(&b, "\"@x>"), 0);
    assert_int_equal(parse(&a, RCPT, b.data, b.len, EXT_ALL), TOO_LONG);
    /* Quoted-pairs count as sent: 32 escaped letters are 66 octets. */
    assert_int_equal(buf_set_str(&b, "<\""), 0);
    for (int i = 0; i < 32; i++)
        assert_int_equal(buf_append_str(&b, "\\x"), 0);
    assert_int_equal(buf_append_str(&b, "\"@x>"), 0);
    assert_int_equal(parse(&a, RCPT, b.data, b.len, EXT_ALL), TOO_LONG);
    /* A source route counts in the path. */
    assert_int_equal(buf_set_str(&b, "<@"), 0);
    for (int i = 0; i < 60; i++)
        assert_int_equal(buf_append_char(&b, 'r'), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(buf_printf(&b, ",@%060d", i), 0);
    assert_int_equal(buf_append_str(&b, ":u@x>"), 0);
    assert_int_equal(parse(&a, RCPT, b.data, b.len, EXT_ALL), TOO_LONG);
    assert_string_equal(buf_cstr(&a.reason),
                        "Bad recipient address syntax: path too long");
    buf_free(&b);
    smtp_address_free(&a);
}

/* ---- parameters ---- */

/* The decoded parameters as one line, to compare in the tables. */
static void summarize(const struct smtp_address *a, struct buf *out)
{
    static const char *const body[] = { "", "7BIT", "8BITMIME",
                                        "BINARYMIME" };
    buf_reset(out);
    if (a->seen & SMTP_PARAM_BIT(SMTP_PARAM_SIZE))
        assert_int_equal(buf_printf(out, " size=%ld", a->size), 0);
    if (a->seen & SMTP_PARAM_BIT(SMTP_PARAM_BODY))
        assert_int_equal(buf_printf(out, " body=%s", body[a->body]), 0);
    if (a->seen & SMTP_PARAM_BIT(SMTP_PARAM_SMTPUTF8))
        assert_int_equal(buf_printf(out, " smtputf8=%d", a->smtputf8), 0);
    if (a->seen & SMTP_PARAM_BIT(SMTP_PARAM_RET))
        assert_int_equal(buf_printf(out, " ret=%s", a->ret == SMTP_RET_FULL
                                                        ? "FULL"
                                                        : "HDRS"),
                         0);
    if (a->seen & SMTP_PARAM_BIT(SMTP_PARAM_ENVID))
        assert_int_equal(buf_printf(out, " envid=[%s]", buf_cstr(&a->envid)),
                         0);
    if (a->seen & SMTP_PARAM_BIT(SMTP_PARAM_AUTH))
        assert_int_equal(buf_printf(out, " auth=[%s]", buf_cstr(&a->auth)),
                         0);
    if (a->seen & SMTP_PARAM_BIT(SMTP_PARAM_NOTIFY))
        assert_int_equal(buf_printf(out, " notify=%s%s%s%s",
                                    a->notify & SMTP_NOTIFY_NEVER ? "N" : "",
                                    a->notify & SMTP_NOTIFY_SUCCESS ? "S" : "",
                                    a->notify & SMTP_NOTIFY_FAILURE ? "F" : "",
                                    a->notify & SMTP_NOTIFY_DELAY ? "D" : ""),
                         0);
    if (a->seen & SMTP_PARAM_BIT(SMTP_PARAM_ORCPT))
        assert_int_equal(buf_printf(out, " orcpt=%s;[%s]",
                                    buf_cstr(&a->orcpt_type),
                                    buf_cstr(&a->orcpt)),
                         0);
}

struct param_case {
    enum smtp_address_command cmd;
    const char *params; /* after "<a@b>" */
    unsigned ext;
    enum smtp_address_result result;
    const char *summary; /* for OK: see summarize() */
    const char *reason;  /* NULL: not checked */
};

static const struct param_case param_cases[] = {
    { MAIL, "", EXT_ALL, OK, "", NULL },
    { MAIL, " ", EXT_ALL, OK, "", NULL },
    /* SIZE */
    { MAIL, " SIZE=0", EXT_ALL, OK, " size=0", NULL },
    { MAIL, " SIZE=12345", EXT_ALL, OK, " size=12345", NULL },
    { MAIL, " size=12345", EXT_ALL, OK, " size=12345", NULL },
    { MAIL, " SiZe=7", EXT_ALL, OK, " size=7", NULL },
    { MAIL, " SIZE=00000000000000000001", EXT_ALL, OK, " size=1", NULL },
    { MAIL, " SIZE=000000000000000000001", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " SIZE=99999999999999999999", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " SIZE=-1", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " SIZE=+1", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " SIZE=1k", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " SIZE=0x10", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " SIZE=", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " SIZE", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " SIZE==1", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " SIZE=1 SIZE=2", EXT_ALL, P_DUP, 0,
      "Duplicate parameter: SIZE" },
    { MAIL, " SIZE=1 size=1", EXT_ALL, P_DUP, 0,
      "Duplicate parameter: SIZE" },
    { MAIL, " SIZE=1", EXT_ALL & ~SMTP_EXT_SIZE, P_DISABLED, 0,
      "Unsupported option: SIZE" },
    { MAIL, " size=1", 0, P_DISABLED, 0, "Unsupported option: size" },
    { RCPT, " SIZE=1", EXT_ALL, P_WRONG, 0, "Unsupported option: SIZE" },
    /* BODY */
    { MAIL, " BODY=7BIT", EXT_ALL, OK, " body=7BIT", NULL },
    { MAIL, " BODY=8BITMIME", EXT_ALL, OK, " body=8BITMIME", NULL },
    { MAIL, " body=8bitmime", EXT_ALL, OK, " body=8BITMIME", NULL },
    { MAIL, " BODY=BINARYMIME", EXT_ALL, OK, " body=BINARYMIME", NULL },
    { MAIL, " BODY=7BIT", SMTP_EXT_BINARYMIME, OK, " body=7BIT", NULL },
    { MAIL, " BODY=7BIT", SMTP_EXT_8BITMIME, OK, " body=7BIT", NULL },
    { MAIL, " BODY=8BIT", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " BODY=", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " BODY", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " BODY=8BITMIMEX", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " BODY=BINARYMIME", SMTP_EXT_8BITMIME, P_DISABLED, 0,
      "Unsupported option: BODY=BINARYMIME" },
    { MAIL, " BODY=8BITMIME", SMTP_EXT_BINARYMIME, P_DISABLED, 0,
      "Unsupported option: BODY=8BITMIME" },
    { MAIL, " BODY=7BIT", SMTP_EXT_SIZE, P_DISABLED, 0,
      "Unsupported option: BODY" },
    { MAIL, " BODY=7BIT BODY=7BIT", EXT_ALL, P_DUP, 0,
      "Duplicate parameter: BODY" },
    { RCPT, " BODY=7BIT", EXT_ALL, P_WRONG, 0, "Unsupported option: BODY" },
    /* SMTPUTF8 */
    { MAIL, " SMTPUTF8", EXT_ALL, OK, " smtputf8=1", NULL },
    { MAIL, " smtputf8", EXT_ALL, OK, " smtputf8=1", NULL },
    { MAIL, " SMTPUTF8=yes", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " SMTPUTF8=", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " SMTPUTF8 SMTPUTF8", EXT_ALL, P_DUP, 0, NULL },
    { MAIL, " SMTPUTF8", EXT_ALL & ~SMTP_EXT_SMTPUTF8, P_DISABLED, 0,
      "Unsupported option: SMTPUTF8" },
    { RCPT, " SMTPUTF8", EXT_ALL, P_WRONG, 0, NULL },
    /* RET */
    { MAIL, " RET=FULL", EXT_ALL, OK, " ret=FULL", NULL },
    { MAIL, " ret=hdrs", EXT_ALL, OK, " ret=HDRS", NULL },
    { MAIL, " RET=ALL", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " RET=FULL,HDRS", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " RET", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " RET=FULL RET=HDRS", EXT_ALL, P_DUP, 0, NULL },
    { MAIL, " RET=FULL", EXT_ALL & ~SMTP_EXT_DSN, P_DISABLED, 0,
      "Unsupported option: RET" },
    { RCPT, " RET=FULL", EXT_ALL, P_WRONG, 0, NULL },
    /* ENVID */
    { MAIL, " ENVID=abc", EXT_ALL, OK, " envid=[abc]", NULL },
    { MAIL, " ENVID=a+2Bb+3Dc", EXT_ALL, OK, " envid=[a+b=c]", NULL },
    { MAIL, " ENVID=+20x+7E", EXT_ALL, OK, " envid=[ x~]", NULL },
    { MAIL, " ENVID=<QQ@x>", EXT_ALL, OK, " envid=[<QQ@x>]", NULL },
    { MAIL, " ENVID=+2g", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " ENVID=+", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " ENVID=a+2", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " ENVID=+2b", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " ENVID=a+0D+0Ab", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " ENVID=a+00", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " ENVID=+7F", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " ENVID=+C3+A9", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " ENVID=\xc3\xa9", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " ENVID=", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " ENVID", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " ENVID=a ENVID=a", EXT_ALL, P_DUP, 0, NULL },
    { MAIL, " ENVID=a", EXT_ALL & ~SMTP_EXT_DSN, P_DISABLED, 0, NULL },
    { RCPT, " ENVID=a", EXT_ALL, P_WRONG, 0, NULL },
    /* AUTH */
    { MAIL, " AUTH=<>", EXT_ALL, OK, " auth=[<>]", NULL },
    { MAIL, " AUTH=user+40example.com", EXT_ALL, OK,
      " auth=[user@example.com]", NULL },
    { MAIL, " AUTH=e+3Dmc2@example.com", EXT_ALL, OK,
      " auth=[e=mc2@example.com]", NULL },
    { MAIL, " AUTH=+", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " AUTH=a+0Ab", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " AUTH", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " AUTH=<> AUTH=<>", EXT_ALL, P_DUP, 0, NULL },
    { MAIL, " AUTH=<>", EXT_ALL & ~SMTP_EXT_AUTH, P_DISABLED, 0,
      "Unsupported option: AUTH" },
    { RCPT, " AUTH=<>", EXT_ALL, P_WRONG, 0, NULL },
    /* NOTIFY */
    { RCPT, " NOTIFY=NEVER", EXT_ALL, OK, " notify=N", NULL },
    { RCPT, " NOTIFY=SUCCESS", EXT_ALL, OK, " notify=S", NULL },
    { RCPT, " NOTIFY=SUCCESS,FAILURE,DELAY", EXT_ALL, OK, " notify=SFD",
      NULL },
    { RCPT, " notify=delay,failure", EXT_ALL, OK, " notify=FD", NULL },
    { RCPT, " NOTIFY=SUCCESS,SUCCESS", EXT_ALL, OK, " notify=S", NULL },
    { RCPT, " NOTIFY=NEVER,SUCCESS", EXT_ALL, P_SYNTAX, 0, NULL },
    { RCPT, " NOTIFY=FAILURE,NEVER", EXT_ALL, P_SYNTAX, 0, NULL },
    { RCPT, " NOTIFY=NEVER,NEVER", EXT_ALL, OK, " notify=N", NULL },
    { RCPT, " NOTIFY=SUCCESS,,DELAY", EXT_ALL, P_SYNTAX, 0, NULL },
    { RCPT, " NOTIFY=SUCCESS,", EXT_ALL, P_SYNTAX, 0, NULL },
    { RCPT, " NOTIFY=,SUCCESS", EXT_ALL, P_SYNTAX, 0, NULL },
    { RCPT, " NOTIFY=,", EXT_ALL, P_SYNTAX, 0, NULL },
    { RCPT, " NOTIFY=BOGUS", EXT_ALL, P_SYNTAX, 0, NULL },
    { RCPT, " NOTIFY", EXT_ALL, P_SYNTAX, 0, NULL },
    { RCPT, " NOTIFY=NEVER NOTIFY=NEVER", EXT_ALL, P_DUP, 0,
      "Duplicate parameter: NOTIFY" },
    { RCPT, " NOTIFY=NEVER", EXT_ALL & ~SMTP_EXT_DSN, P_DISABLED, 0,
      "Unsupported option: NOTIFY" },
    { MAIL, " NOTIFY=NEVER", EXT_ALL, P_WRONG, 0,
      "Unsupported option: NOTIFY" },
    /* ORCPT */
    { RCPT, " ORCPT=rfc822;user+40example.com", EXT_ALL, OK,
      " orcpt=rfc822;[user@example.com]", NULL },
    { RCPT, " ORCPT=RFC822;a@b", EXT_ALL, OK, " orcpt=RFC822;[a@b]", NULL },
    { RCPT, " ORCPT=x-local;a+20b", EXT_ALL, OK, " orcpt=x-local;[a b]",
      NULL },
    { RCPT, " ORCPT=rfc822;a;b", EXT_ALL, OK, " orcpt=rfc822;[a;b]", NULL },
    { RCPT, " ORCPT=rfc822", EXT_ALL, P_SYNTAX, 0, NULL },
    { RCPT, " ORCPT=;a@b", EXT_ALL, P_SYNTAX, 0, NULL },
    { RCPT, " ORCPT=rfc822;", EXT_ALL, P_SYNTAX, 0, NULL },
    { RCPT, " ORCPT=rf(c;a@b", EXT_ALL, P_SYNTAX, 0, NULL },
    { RCPT, " ORCPT=rf.c;a@b", EXT_ALL, P_SYNTAX, 0, NULL },
    { RCPT, " ORCPT=rfc822;a+2", EXT_ALL, P_SYNTAX, 0, NULL },
    { RCPT, " ORCPT=rfc822;a+0Db", EXT_ALL, P_SYNTAX, 0, NULL },
    { RCPT, " ORCPT=rfc822;a+2fb", EXT_ALL, P_SYNTAX, 0, NULL },
    { RCPT, " ORCPT", EXT_ALL, P_SYNTAX, 0, NULL },
    { RCPT, " ORCPT=rfc822;a ORCPT=rfc822;a", EXT_ALL, P_DUP, 0, NULL },
    { RCPT, " ORCPT=rfc822;a", EXT_ALL & ~SMTP_EXT_DSN, P_DISABLED, 0,
      NULL },
    { MAIL, " ORCPT=rfc822;a", EXT_ALL, P_WRONG, 0,
      "Unsupported option: ORCPT" },
    /* unknown keywords and bad syntax */
    { MAIL, " FOO=bar", EXT_ALL, P_UNKNOWN, 0, "Unsupported option: FOO" },
    { MAIL, " X-Foo", EXT_ALL, P_UNKNOWN, 0, "Unsupported option: X-Foo" },
    { RCPT, " XFORWARD=1", EXT_ALL, P_UNKNOWN, 0,
      "Unsupported option: XFORWARD" },
    { MAIL, " 9=1", EXT_ALL, P_UNKNOWN, 0, "Unsupported option: 9" },
    { MAIL, " FOO=\xc3\xa9", EXT_ALL, P_UNKNOWN, 0, NULL },
    { MAIL, " FOO=\xff", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " FOO=\xc3", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " -FOO=1", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " =1", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " FO_O=1", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " FOO=", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " FOO=a=b", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " F\xc3\xa9=1", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " <x>", EXT_ALL, P_SYNTAX, 0, NULL },
    { MAIL, " SIZE=1 FOO=1 SIZE=x", EXT_ALL, P_UNKNOWN, 0,
      "Unsupported option: FOO" },
    { MAIL, " SIZE=x FOO=1", EXT_ALL, P_SYNTAX, 0, NULL },
    /* several, with extra spaces */
    { MAIL, " SIZE=10 BODY=8BITMIME RET=HDRS ENVID=QQ+2B1 AUTH=<> SMTPUTF8",
      EXT_ALL, OK,
      " size=10 body=8BITMIME smtputf8=1 ret=HDRS envid=[QQ+1] auth=[<>]",
      NULL },
    { MAIL, "  SIZE=10   BODY=7BIT  ", EXT_ALL, OK, " size=10 body=7BIT",
      NULL },
    { RCPT, " NOTIFY=SUCCESS,DELAY ORCPT=rfc822;a+40b", EXT_ALL, OK,
      " notify=SD orcpt=rfc822;[a@b]", NULL },
};

static void test_params(void **state)
{
    (void)state;
    struct smtp_address a;
    struct buf text, sum;
    smtp_address_init(&a);
    buf_init(&text, 4096);
    buf_init(&sum, 4096);
    for (size_t i = 0; i < COUNT(param_cases); i++) {
        const struct param_case *c = &param_cases[i];
        assert_int_equal(buf_set_str(&text, "<a@b>"), 0);
        assert_int_equal(buf_append_str(&text, c->params), 0);
        enum smtp_address_result r =
            parse(&a, c->cmd, text.data, text.len, c->ext);
        if (r != c->result)
            fail_msg("case %zu \"%s\": %s, expected %s (%s)", i, c->params,
                     smtp_address_result_name(r),
                     smtp_address_result_name(c->result), a.detail);
        if (c->reason)
            assert_string_equal(buf_cstr(&a.reason), c->reason);
        if (r != OK)
            continue;
        assert_string_equal(buf_cstr(&a.address), "a@b");
        summarize(&a, &sum);
        assert_string_equal(buf_cstr(&sum), c->summary);
    }
    buf_free(&sum);
    buf_free(&text);
    smtp_address_free(&a);
}

/* The parameters as given, in order, with canonical keywords. */
static void test_param_list(void **state)
{
    (void)state;
    struct smtp_address a;
    smtp_address_init(&a);
    const char *mail = "<a@b> body=8bitmime Size=42 envid=A+2BB smtputf8";
    assert_int_equal(parse(&a, MAIL, mail, strlen(mail), EXT_ALL), OK);
    assert_int_equal(a.param_count, 4);
    assert_string_equal(a.params[0].keyword, "BODY");
    assert_int_equal(a.params[0].id, SMTP_PARAM_BODY);
    assert_string_equal(buf_cstr(&a.params[0].value), "8bitmime");
    assert_string_equal(a.params[1].keyword, "SIZE");
    assert_string_equal(buf_cstr(&a.params[1].value), "42");
    assert_string_equal(a.params[2].keyword, "ENVID");
    assert_string_equal(buf_cstr(&a.params[2].value), "A+2BB");
    assert_string_equal(buf_cstr(&a.envid), "A+B");
    assert_string_equal(a.params[3].keyword, "SMTPUTF8");
    assert_string_equal(buf_cstr(&a.params[3].value), "");
    assert_int_equal(a.seen, SMTP_PARAM_BIT(SMTP_PARAM_BODY) |
                                 SMTP_PARAM_BIT(SMTP_PARAM_SIZE) |
                                 SMTP_PARAM_BIT(SMTP_PARAM_ENVID) |
                                 SMTP_PARAM_BIT(SMTP_PARAM_SMTPUTF8));
    /* The next parse forgets all of it. */
    const char *rcpt = "<c@d>";
    assert_int_equal(parse(&a, RCPT, rcpt, strlen(rcpt), EXT_ALL), OK);
    assert_int_equal(a.param_count, 0);
    assert_int_equal(a.seen, 0);
    assert_int_equal(a.size, 0);
    assert_int_equal(a.body, SMTP_BODY_NONE);
    assert_false(a.smtputf8);
    assert_string_equal(buf_cstr(&a.envid), "");
    assert_string_equal(buf_cstr(&a.address), "c@d");
    /* And an error after a success leaves nothing behind either. */
    assert_int_equal(parse(&a, MAIL, mail, strlen(mail), EXT_ALL), OK);
    const char *bad = "<a@b> SIZE=1 BOGUS";
    assert_int_equal(parse(&a, MAIL, bad, strlen(bad), EXT_ALL), P_UNKNOWN);
    assert_int_equal(a.seen, 0);
    assert_string_equal(buf_cstr(&a.envid), "");
    assert_string_equal(smtp_address_domain(&a), "");
    assert_string_equal(smtp_address_local_part(&a), "");
    smtp_address_free(&a);
}

static void test_size_range(void **state)
{
    (void)state;
    struct smtp_address a;
    struct buf b;
    smtp_address_init(&a);
    buf_init(&b, 200);
    assert_int_equal(buf_printf(&b, "<a@b> SIZE=%ld", LONG_MAX), 0);
    assert_int_equal(parse(&a, MAIL, b.data, b.len, EXT_ALL), OK);
    assert_true(a.size == LONG_MAX);
    /* LONG_MAX ends in 7 (2^31-1, 2^63-1): one more ends in 8. */
    assert_int_equal(b.data[b.len - 1], '7');
    b.data[b.len - 1] = '8';
    assert_int_equal(parse(&a, MAIL, b.data, b.len, EXT_ALL), P_SYNTAX);
    buf_free(&b);
    smtp_address_free(&a);
}

/* ENVID up to 100, ORCPT up to 500, AUTH up to 500 (as sent). */
static void check_value_length(const char *prefix, const char *filler,
                               size_t n, enum smtp_address_command cmd,
                               enum smtp_address_result want)
{
    struct smtp_address a;
    struct buf b;
    smtp_address_init(&a);
    buf_init(&b, 2000);
    assert_int_equal(buf_set_str(&b, prefix), 0);
    size_t value_start = strlen("<a@b> ") + strcspn(prefix + 6, "=") + 1;
    while (b.len - value_start < n)
        assert_int_equal(buf_append_str(&b, filler), 0);
    assert_int_equal(b.len - value_start, n);
    assert_int_equal(parse(&a, cmd, b.data, b.len, EXT_ALL), want);
    buf_free(&b);
    smtp_address_free(&a);
}

static void test_value_lengths(void **state)
{
    (void)state;
    check_value_length("<a@b> ENVID=", "x", 100, MAIL, OK);
    check_value_length("<a@b> ENVID=", "x", 101, MAIL, P_SYNTAX);
    check_value_length("<a@b> ENVID=+", "41", 99, MAIL, OK);
    check_value_length("<a@b> ORCPT=rfc822;", "x", 500, RCPT, OK);
    check_value_length("<a@b> ORCPT=rfc822;", "x", 501, RCPT, P_SYNTAX);
    check_value_length("<a@b> AUTH=", "x", 500, MAIL, OK);
    check_value_length("<a@b> AUTH=", "x", 501, MAIL, P_SYNTAX);
}

/* A long unknown keyword is echoed cut at 64 characters. */
static void test_long_keyword(void **state)
{
    (void)state;
    struct smtp_address a;
    struct buf b, want;
    smtp_address_init(&a);
    buf_init(&b, 2000);
    buf_init(&want, 2000);
    assert_int_equal(buf_set_str(&b, "<a@b> "), 0);
    assert_int_equal(buf_set_str(&want, "Unsupported option: "), 0);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(buf_append_char(&b, 'K'), 0);
        if (i < 64)
            assert_int_equal(buf_append_char(&want, 'K'), 0);
    }
    assert_int_equal(parse(&a, MAIL, b.data, b.len, EXT_ALL), P_UNKNOWN);
    assert_string_equal(buf_cstr(&a.reason), buf_cstr(&want));
    buf_free(&want);
    buf_free(&b);
    smtp_address_free(&a);
}

/* ---- xtext ---- */

struct xtext_case {
    const char *in;
    int rc;
    const char *out;
    size_t out_len;
};

static const struct xtext_case decode_cases[] = {
    { "", 0, "", 0 },
    { "abc", 0, "abc", 3 },
    { "a+2Bb", 0, "a+b", 3 },
    { "+3D", 0, "=", 1 },
    { "+20+7E+41", 0, " ~A", 3 },
    { "+00", 0, "\0", 1 },
    { "+FF", 0, "\xff", 1 },
    { "<>", 0, "<>", 2 },
    { "+2g", -1, "", 0 },
    { "+g2", -1, "", 0 },
    { "+", -1, "", 0 },
    { "+2", -1, "", 0 },
    { "a+", -1, "", 0 },
    { "+2b", -1, "", 0 },
    { "+ff", -1, "", 0 },
    { "a=b", -1, "", 0 },
    { "a b", -1, "", 0 },
    { "a\tb", -1, "", 0 },
    { "a\xc3\xa9", -1, "", 0 },
    { "a\x7f", -1, "", 0 },
    { "++2B", -1, "", 0 },
};

static void test_xtext_decode(void **state)
{
    (void)state;
    struct buf out;
    buf_init(&out, 100);
    for (size_t i = 0; i < COUNT(decode_cases); i++) {
        const struct xtext_case *c = &decode_cases[i];
        assert_int_equal(buf_set_str(&out, "pre"), 0);
        errno = 0;
        int rc = smtp_xtext_decode(&out, c->in, strlen(c->in));
        if (rc != c->rc)
            fail_msg("case %zu \"%s\": %d", i, c->in, rc);
        if (rc != 0)
            assert_int_equal(errno, EINVAL);
        /* Appended after what was there; nothing on failure. */
        assert_int_equal(out.len, 3 + c->out_len);
        assert_memory_equal(out.data, "pre", 3);
        if (c->out_len)
            assert_memory_equal(out.data + 3, c->out, c->out_len);
    }
    /* The limit of out is kept: EMSGSIZE and out unchanged. */
    struct buf small;
    buf_init(&small, 2);
    assert_int_equal(smtp_xtext_decode(&small, "abc", 3), -1);
    assert_int_equal(errno, EMSGSIZE);
    assert_int_equal(small.len, 0);
    buf_free(&small);
    buf_free(&out);
}

static const struct xtext_case encode_cases[] = {
    { "", 0, "", 0 },
    { "abc", 0, "abc", 3 },
    { "a+b", 0, "a+2Bb", 5 },
    { "e=mc2", 0, "e+3Dmc2", 7 },
    { "a b", 0, "a+20b", 5 },
    { "\r\n", 0, "+0D+0A", 6 },
    { "\xc3\xa9", 0, "+C3+A9", 6 },
    { "<>!~", 0, "<>!~", 4 },
    { "\x7f", 0, "+7F", 3 },
};

static void test_xtext_encode(void **state)
{
    (void)state;
    struct buf out;
    buf_init(&out, 100);
    for (size_t i = 0; i < COUNT(encode_cases); i++) {
        const struct xtext_case *c = &encode_cases[i];
        buf_reset(&out);
        assert_int_equal(smtp_xtext_encode(&out, c->in, strlen(c->in)), 0);
        assert_string_equal(buf_cstr(&out), c->out);
    }
    /* NUL is data too. */
    buf_reset(&out);
    assert_int_equal(smtp_xtext_encode(&out, "a\0b", 3), 0);
    assert_string_equal(buf_cstr(&out), "a+00b");
    /* Too long for out: -1, EMSGSIZE, out as it was. */
    struct buf small;
    buf_init(&small, 4);
    assert_int_equal(buf_set_str(&small, "x"), 0);
    assert_int_equal(smtp_xtext_encode(&small, "a+", 2), -1);
    assert_int_equal(errno, EMSGSIZE);
    assert_string_equal(buf_cstr(&small), "x");
    buf_free(&small);
    buf_free(&out);
}

/* Every byte value survives encode then decode, and the encoding is
 * itself valid xtext with only upper-case hex. */
static void test_xtext_round_trip(void **state)
{
    (void)state;
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    struct buf enc, dec;
    buf_init(&enc, 1000);
    buf_init(&dec, 1000);
    assert_int_equal(smtp_xtext_encode(&enc, all, sizeof(all)), 0);
    for (size_t i = 0; i < enc.len; i++) {
        unsigned char c = (unsigned char)enc.data[i];
        assert_true(c >= 33 && c <= 126 && c != '=');
        assert_false(c >= 'a' && c <= 'f' && i > 0 &&
                     (enc.data[i - 1] == '+' ||
                      (i > 1 && enc.data[i - 2] == '+')));
    }
    assert_int_equal(smtp_xtext_decode(&dec, enc.data, enc.len), 0);
    assert_int_equal(dec.len, sizeof(all));
    assert_memory_equal(dec.data, all, sizeof(all));
    /* Decoding then encoding canonical xtext gives it back. */
    const char *canon = "A+2B+20b+3D!~<>";
    buf_reset(&dec);
    buf_reset(&enc);
    assert_int_equal(smtp_xtext_decode(&dec, canon, strlen(canon)), 0);
    assert_int_equal(smtp_xtext_encode(&enc, dec.data, dec.len), 0);
    assert_string_equal(buf_cstr(&enc), canon);
    buf_free(&dec);
    buf_free(&enc);
}

static void test_result_names(void **state)
{
    (void)state;
    assert_string_equal(smtp_address_result_name(SMTP_ADDRESS_OK),
                        "SMTP_ADDRESS_OK");
    assert_string_equal(smtp_address_result_name(SMTP_ADDRESS_NO_MEMORY),
                        "SMTP_ADDRESS_NO_MEMORY");
    assert_string_equal(
        smtp_address_result_name((enum smtp_address_result)99), "unknown");
}

/* Exactly the reply lines the brief names. */
static void test_reply_lines(void **state)
{
    (void)state;
    static const struct {
        enum smtp_address_command cmd;
        const char *text;
        const char *line;
    } cases[] = {
        { MAIL, "<a..b@c>", "501 5.1.7 Bad sender address syntax" },
        { RCPT, "<a..b@c>", "501 5.1.3 Bad recipient address syntax" },
        { MAIL, "<a@b> FOO", "555 5.5.4 Unsupported option: FOO" },
        { MAIL, "<a@b> SIZE=x", "501 5.5.4 Syntax error in parameters" },
        { RCPT, "<a@b> ORCPT=x", "501 5.5.4 Syntax error in parameters" },
        { MAIL, "a@b", "501 5.1.7 Bad sender address syntax: angle "
                       "brackets required" },
    };
    struct smtp_address a;
    struct buf line;
    smtp_address_init(&a);
    buf_init(&line, 300);
    for (size_t i = 0; i < COUNT(cases); i++) {
        (void)parse(&a, cases[i].cmd, cases[i].text, strlen(cases[i].text),
                    EXT_ALL);
        buf_reset(&line);
        assert_int_equal(buf_printf(&line, "%d %s %s", a.reply_code,
                                    a.status, buf_cstr(&a.reason)),
                         0);
        assert_string_equal(buf_cstr(&line), cases[i].line);
    }
    buf_free(&line);
    smtp_address_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_param_list),
        cmocka_unit_test(test_size_range),
        cmocka_unit_test(test_value_lengths),
        cmocka_unit_test(test_long_keyword),
        cmocka_unit_test(test_xtext_decode),
        cmocka_unit_test(test_xtext_encode),
        cmocka_unit_test(test_xtext_round_trip),
        cmocka_unit_test(test_result_names),
        cmocka_unit_test(test_reply_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
