/*
 * smtp_address - parse what follows "MAIL FROM:" and "RCPT TO:": the path
 * in angle brackets (RFC 5321 section 4.1.2, limits of 4.5.3.1) and the
 * ESMTP parameters after it; also xtext (RFC 3461 section 4).  See
 * smtp_address.h.
 *
 * Use: smtp_address_init() once, smtp_address_parse() per command (it
 * resets the result), read result/reply_code/status/reason, or address,
 * flags and the decoded parameters; smtp_address_free() at the end.
 *
 * The parse is strict and takes each byte as hostile: no control byte
 * anywhere, 8-bit bytes only as valid UTF-8 and only with SMTPUTF8, every
 * length checked before it is copied, every copy into a bounded buf.
 * Character classes are ASCII tables, never <ctype.h> (locale).
 */
#include "smtp_address.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <string.h>

/* ---- character classes (ASCII only) ---- */

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_let_dig(unsigned char c)
{
    return is_alpha(c) || is_digit(c);
}

static bool is_control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* RFC 5321 atext, ASCII part. */
static bool is_atext(unsigned char c)
{
    return is_let_dig(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* qtextSMTP: %d32-33 / %d35-91 / %d93-126 */
static bool is_qtext(unsigned char c)
{
    return c == 32 || c == 33 || (c >= 35 && c <= 91) ||
           (c >= 93 && c <= 126);
}

/* dcontent: %d33-90 / %d94-126 */
static bool is_dcontent(unsigned char c)
{
    return (c >= 33 && c <= 90) || (c >= 94 && c <= 126);
}

/* esmtp-value ASCII part: %d33-60 / %d62-126 */
static bool is_value_char(unsigned char c)
{
    return (c >= 33 && c <= 60) || (c >= 62 && c <= 126);
}

/* xchar: %d33-42 / %d44-60 / %d62-126 */
static bool is_xchar(unsigned char c)
{
    return is_value_char(c) && c != '+';
}

static int hex_value(unsigned char c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1; /* lower case is not hexchar in RFC 3461 */
}

static unsigned char ascii_upper(unsigned char c)
{
    return c >= 'a' && c <= 'z' ? (unsigned char)(c - 'a' + 'A') : c;
}

static bool equal_nocase(const unsigned char *s, size_t n, const char *word)
{
    size_t k = strlen(word);
    if (n != k)
        return false;
    for (size_t i = 0; i < n; i++)
        if (ascii_upper(s[i]) != (unsigned char)word[i])
            return false;
    return true;
}

/* Length of the valid UTF-8 sequence of 2..4 bytes at p, or 0: no
 * overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_sequence(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    if (c < 0xc2 || c > 0xf4)
        return 0;
    size_t need = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    if (n < need)
        return 0;
    for (size_t k = 1; k < need; k++)
        if ((p[k] & 0xc0) != 0x80)
            return 0;
    if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f) ||
        (c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))
        return 0;
    return need;
}

/* ---- xtext ---- */

int smtp_xtext_decode(struct buf *out, const char *in, size_t len)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t old = out->len;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = s[i];
        if (c != '+') {
            if (!is_xchar(c))
                goto invalid;
            if (buf_append_char(out, (char)c) != 0)
                goto failed;
            continue;
        }
        if (len - i < 3)
            goto invalid;
        int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
        if (hi < 0 || lo < 0)
            goto invalid;
        if (buf_append_char(out, (char)(hi * 16 + lo)) != 0)
            goto failed;
        i += 2;
    }
    return 0;
invalid:
    errno = EINVAL;
failed:
    buf_truncate(out, old);
    return -1;
}

int smtp_xtext_encode(struct buf *out, const void *in, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *s = in;
    size_t old = out->len;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = s[i];
        char enc[3] = { '+', hex[c >> 4], hex[c & 15] };
        int rc = is_xchar(c) ? buf_append_char(out, (char)c)
                             : buf_append(out, enc, sizeof(enc));
        if (rc != 0) {
            buf_truncate(out, old);
            return -1;
        }
    }
    return 0;
}

/* ---- the result ---- */

struct parser {
    struct smtp_address *a;
    enum smtp_address_command cmd;
    const unsigned char *s;
    size_t n;
    size_t i;
    enum smtp_address_result err;
    const char *detail;
};

static int fail(struct parser *p, enum smtp_address_result r,
                const char *detail)
{
    p->err = r;
    p->detail = detail;
    return -1;
}

/* A buf append failed: out of memory, or (a bug) a limit too small. */
static int store_failed(struct parser *p)
{
    if (errno == EMSGSIZE)
        return fail(p, SMTP_ADDRESS_TOO_LONG, "too long");
    return fail(p, SMTP_ADDRESS_NO_MEMORY, "out of memory");
}

/* A byte that does not fit the grammar where it stands. */
static int fail_byte(struct parser *p, const char *detail)
{
    if (p->i < p->n && p->s[p->i] >= 0x80 &&
        utf8_sequence(p->s + p->i, p->n - p->i) == 0)
        return fail(p, SMTP_ADDRESS_BAD_UTF8, "invalid UTF-8");
    return fail(p, SMTP_ADDRESS_SYNTAX, detail);
}

static bool at(const struct parser *p, char c)
{
    return p->i < p->n && p->s[p->i] == (unsigned char)c;
}

/* Consumes one UTF-8 character at the cursor, or fails. */
static int take_utf8(struct parser *p)
{
    size_t k = utf8_sequence(p->s + p->i, p->n - p->i);
    if (k == 0)
        return fail(p, SMTP_ADDRESS_BAD_UTF8, "invalid UTF-8");
    p->i += k;
    p->a->flags |= SMTP_ADDR_8BIT;
    return 0;
}

/* ---- local part ---- */

/* Dot-string = Atom *("." Atom), atext being ASCII or (valid) UTF-8. */
static int scan_dot_string(struct parser *p)
{
    for (;;) {
        size_t atom = p->i;
        while (p->i < p->n) {
            unsigned char c = p->s[p->i];
            if (c >= 0x80) {
                if (take_utf8(p) != 0)
                    return -1;
            } else if (is_atext(c)) {
                p->i++;
            } else {
                break;
            }
        }
        if (p->i == atom)
            return fail_byte(p, "bad local part");
        if (!at(p, '.'))
            return 0;
        p->i++;
    }
}

/* Quoted-string; the content (quoted-pairs undone) goes to content. */
static int scan_quoted(struct parser *p, char *content, size_t *clen)
{
    p->i++; /* the opening quote */
    *clen = 0;
    while (p->i < p->n && !at(p, '"')) {
        unsigned char c = p->s[p->i];
        size_t from = p->i;
        if (c == '\\') {
            if (p->i + 1 >= p->n || p->s[p->i + 1] < 32 ||
                p->s[p->i + 1] > 126) {
                p->i++;
                return fail_byte(p, "bad quoted pair");
            }
            from = ++p->i;
            p->i++;
        } else if (c >= 0x80) {
            if (take_utf8(p) != 0)
                return -1;
        } else if (is_qtext(c)) {
            p->i++;
        } else {
            return fail_byte(p, "bad quoted string");
        }
        /* The content is never longer than the quoted string, which was
         * checked against SMTP_LOCAL_PART_MAX on the way. */
        if (*clen + (p->i - from) > SMTP_LOCAL_PART_MAX)
            return fail(p, SMTP_ADDRESS_TOO_LONG, "local part too long");
        memcpy(content + *clen, p->s + from, p->i - from);
        *clen += p->i - from;
    }
    if (!at(p, '"'))
        return fail(p, SMTP_ADDRESS_SYNTAX, "unterminated quoted string");
    p->i++;
    return 0;
}

static bool is_dot_string(const char *s, size_t n)
{
    bool atom_empty = true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (atom_empty)
                return false;
            atom_empty = true;
        } else if (c >= 0x80 || is_atext(c)) {
            atom_empty = false;
        } else {
            return false;
        }
    }
    return !atom_empty;
}

/* The canonical form: bare when the content is a Dot-string, else quoted
 * with only '"' and '\' escaped (RFC 5321 section 4.1.2: quote only if
 * needed). */
static int store_local_part(struct parser *p, const char *content, size_t n)
{
    struct smtp_address *a = p->a;
    if (is_dot_string(content, n)) {
        if (buf_append(&a->local_part, content, n) != 0)
            return store_failed(p);
        return 0;
    }
    a->flags |= SMTP_ADDR_QUOTED;
    if (buf_append_char(&a->local_part, '"') != 0)
        return store_failed(p);
    for (size_t i = 0; i < n; i++) {
        if ((content[i] == '"' || content[i] == '\\') &&
            buf_append_char(&a->local_part, '\\') != 0)
            return store_failed(p);
        if (buf_append_char(&a->local_part, content[i]) != 0)
            return store_failed(p);
    }
    if (buf_append_char(&a->local_part, '"') != 0)
        return store_failed(p);
    return 0;
}

static void local_part_flags(struct smtp_address *a, const char *content,
                             size_t n, bool quoted)
{
    if (n == 0)
        a->flags |= SMTP_ADDR_EMPTY_LOCAL;
    if (memchr(content, '%', n))
        a->flags |= SMTP_ADDR_HAS_PERCENT;
    if (memchr(content, '!', n))
        a->flags |= SMTP_ADDR_HAS_BANG;
    if (quoted && memchr(content, '@', n))
        a->flags |= SMTP_ADDR_QUOTED_AT;
}

static int parse_local_part(struct parser *p)
{
    char content[SMTP_LOCAL_PART_MAX];
    size_t clen = 0;
    size_t begin = p->i;
    bool quoted = at(p, '"');
    int rc = quoted ? scan_quoted(p, content, &clen) : scan_dot_string(p);
    if (rc != 0)
        return -1;
    if (p->i - begin > SMTP_LOCAL_PART_MAX)
        return fail(p, SMTP_ADDRESS_TOO_LONG, "local part too long");
    if (!quoted) {
        clen = p->i - begin;
        memcpy(content, p->s + begin, clen);
    }
    local_part_flags(p->a, content, clen, quoted);
    return store_local_part(p, content, clen);
}

/* ---- domain ---- */

/* Ldh-str after a Let-dig: letters, digits, hyphens, not ending in '-'. */
static bool is_ldh_tag(const unsigned char *s, size_t n)
{
    if (n == 0 || !is_let_dig(s[0]) || !is_let_dig(s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_let_dig(s[i]) && s[i] != '-')
            return false;
    return true;
}

/* The inside of "[...]": IPv4, "IPv6:" address, or tag ":" dcontent. */
static bool valid_literal(const unsigned char *s, size_t n)
{
    char text[SMTP_DOMAIN_MAX + 1];
    unsigned char addr[16];
    if (n == 0 || n > SMTP_DOMAIN_MAX)
        return false;
    if (n > 5 && equal_nocase(s, 5, "IPV6:")) {
        memcpy(text, s + 5, n - 5);
        text[n - 5] = '\0';
        return inet_pton(AF_INET6, text, addr) == 1;
    }
    /* General-address-literal.  The tag must start with a letter (our
     * choice: the grammar allows "[2001:db8::1]" as tag "2001", which is
     * a mistyped IPv6 literal, and no registered tag starts otherwise). */
    const unsigned char *colon = memchr(s, ':', n);
    if (colon)
        return is_alpha(s[0]) && is_ldh_tag(s, (size_t)(colon - s)) &&
               colon + 1 < s + n;
    memcpy(text, s, n);
    text[n] = '\0';
    return inet_pton(AF_INET, text, addr) == 1;
}

static int scan_literal(struct parser *p)
{
    size_t inside = ++p->i;
    while (p->i < p->n && is_dcontent(p->s[p->i]))
        p->i++;
    if (!at(p, ']'))
        return fail_byte(p, "bad address literal");
    if (p->i - inside + 2 > SMTP_DOMAIN_MAX)
        return fail(p, SMTP_ADDRESS_TOO_LONG, "domain too long");
    if (!valid_literal(p->s + inside, p->i - inside))
        return fail(p, SMTP_ADDRESS_SYNTAX, "bad address literal");
    p->i++;
    return 0;
}

/* One sub-domain: Let-dig [Ldh-str], or a U-label made of UTF-8 and
 * Let-dig and '-'; never starting or ending with '-'.  An ASCII label
 * has at most 63 octets (RFC 1035). */
static int scan_label(struct parser *p)
{
    size_t begin = p->i;
    bool ascii = true;
    if (at(p, '-'))
        return fail(p, SMTP_ADDRESS_SYNTAX, "bad domain");
    while (p->i < p->n) {
        unsigned char c = p->s[p->i];
        if (c >= 0x80) {
            if (take_utf8(p) != 0)
                return -1;
            ascii = false;
        } else if (is_let_dig(c) || c == '-') {
            p->i++;
        } else {
            break;
        }
    }
    if (p->i == begin)
        return fail_byte(p, "bad domain");
    if (p->s[p->i - 1] == '-')
        return fail(p, SMTP_ADDRESS_SYNTAX, "bad domain");
    if (ascii && p->i - begin > 63)
        return fail(p, SMTP_ADDRESS_TOO_LONG, "domain label too long");
    return 0;
}

static bool label_starts(const struct parser *p)
{
    if (p->i >= p->n)
        return false;
    unsigned char c = p->s[p->i];
    return c >= 0x80 || is_let_dig(c);
}

/* Domain; with trailing_dot_ok, one final '.' is allowed and reported. */
static int scan_domain(struct parser *p, bool trailing_dot_ok, bool *dot)
{
    size_t begin = p->i;
    *dot = false;
    if (at(p, '['))
        return scan_literal(p); /* it checks the length itself */
    for (;;) {
        if (scan_label(p) != 0)
            return -1;
        if (!at(p, '.'))
            break;
        p->i++;
        if (!label_starts(p)) {
            if (!trailing_dot_ok)
                return fail_byte(p, "bad domain");
            *dot = true;
            break;
        }
    }
    if (p->i - begin > SMTP_DOMAIN_MAX)
        return fail(p, SMTP_ADDRESS_TOO_LONG, "domain too long");
    return 0;
}

static int parse_domain(struct parser *p)
{
    size_t begin = p->i;
    bool dot;
    if (scan_domain(p, true, &dot) != 0)
        return -1;
    if (dot)
        p->a->flags |= SMTP_ADDR_TRAILING_DOT;
    if (p->s[begin] == '[')
        p->a->flags |= SMTP_ADDR_LITERAL;
    size_t n = p->i - begin - (dot ? 1 : 0);
    if (buf_append(&p->a->domain, p->s + begin, n) != 0)
        return store_failed(p);
    return 0;
}

/* A-d-l = At-domain *( "," At-domain ) ":" -- parsed, then ignored. */
static int parse_source_route(struct parser *p)
{
    p->a->flags |= SMTP_ADDR_SOURCE_ROUTE;
    for (;;) {
        bool dot;
        p->i++; /* the '@' */
        if (scan_domain(p, false, &dot) != 0)
            return -1;
        if (at(p, ':')) {
            p->i++;
            return 0;
        }
        if (!at(p, ',') || p->i + 1 >= p->n || p->s[p->i + 1] != '@')
            return fail_byte(p, "bad source route");
        p->i++;
    }
}

/* ---- the path ---- */

static int store_address(struct parser *p)
{
    struct smtp_address *a = p->a;
    if (buf_append(&a->address, a->local_part.data, a->local_part.len) != 0)
        return store_failed(p);
    if (a->flags & SMTP_ADDR_POSTMASTER)
        return 0;
    if (buf_append_char(&a->address, '@') != 0 ||
        buf_append(&a->address, a->domain.data, a->domain.len) != 0)
        return store_failed(p);
    return 0;
}

/* RCPT TO:<Postmaster> (any case, no domain, no route; "\"Postmaster\""
 * counts too, being the same local part). */
static bool is_bare_postmaster(const struct parser *p)
{
    const struct smtp_address *a = p->a;
    return p->cmd == SMTP_ADDRESS_RCPT && at(p, '>') &&
           !(a->flags & (SMTP_ADDR_SOURCE_ROUTE | SMTP_ADDR_QUOTED)) &&
           equal_nocase((const unsigned char *)a->local_part.data,
                        a->local_part.len, "POSTMASTER");
}

static int parse_mailbox(struct parser *p)
{
    if (at(p, '@') && parse_source_route(p) != 0)
        return -1;
    if (parse_local_part(p) != 0)
        return -1;
    if (is_bare_postmaster(p)) {
        p->a->flags |= SMTP_ADDR_POSTMASTER;
        return 0;
    }
    if (!at(p, '@'))
        return fail_byte(p, p->i < p->n && p->s[p->i] == '>'
                                ? "missing domain"
                                : "bad local part");
    p->i++;
    return parse_domain(p);
}

static int parse_path(struct parser *p)
{
    if (at(p, ' '))
        p->i++; /* "MAIL FROM: <a@b>" */
    if (!at(p, '<'))
        return at(p, ' ') ? fail(p, SMTP_ADDRESS_SYNTAX, "extra space")
                          : fail(p, SMTP_ADDRESS_NO_BRACKETS,
                                 "angle brackets required");
    size_t begin = p->i++;
    if (at(p, '>')) {
        p->i++;
        if (p->cmd == SMTP_ADDRESS_RCPT)
            return fail(p, SMTP_ADDRESS_NULL_RCPT, "null recipient");
        p->a->flags |= SMTP_ADDR_NULL;
        return 0;
    }
    if (parse_mailbox(p) != 0)
        return -1;
    if (!at(p, '>'))
        return fail_byte(p, "bad address");
    p->i++;
    if (p->i - begin > SMTP_PATH_MAX)
        return fail(p, SMTP_ADDRESS_TOO_LONG, "path too long");
    return store_address(p);
}

/* ---- parameters ---- */

#define CMD_BIT(cmd) (1u << (cmd))
#define MAIL_ONLY CMD_BIT(SMTP_ADDRESS_MAIL)
#define RCPT_ONLY CMD_BIT(SMTP_ADDRESS_RCPT)

struct param_def {
    const char *name;
    enum smtp_param_id id;
    unsigned commands;
    unsigned extensions; /* any one of them enables the keyword */
    size_t max_value;    /* 0: no value allowed */
};

static const struct param_def param_defs[] = {
    { "SIZE", SMTP_PARAM_SIZE, MAIL_ONLY, SMTP_EXT_SIZE, 20 },
    { "BODY", SMTP_PARAM_BODY, MAIL_ONLY,
      SMTP_EXT_8BITMIME | SMTP_EXT_BINARYMIME, 10 },
    { "SMTPUTF8", SMTP_PARAM_SMTPUTF8, MAIL_ONLY, SMTP_EXT_SMTPUTF8, 0 },
    { "RET", SMTP_PARAM_RET, MAIL_ONLY, SMTP_EXT_DSN, 4 },
    { "ENVID", SMTP_PARAM_ENVID, MAIL_ONLY, SMTP_EXT_DSN, SMTP_ENVID_MAX },
    { "AUTH", SMTP_PARAM_AUTH, MAIL_ONLY, SMTP_EXT_AUTH, SMTP_AUTH_MAX },
    { "NOTIFY", SMTP_PARAM_NOTIFY, RCPT_ONLY, SMTP_EXT_DSN, 30 },
    { "ORCPT", SMTP_PARAM_ORCPT, RCPT_ONLY, SMTP_EXT_DSN, SMTP_ORCPT_MAX },
};

#define PARAM_VALUE_LIMIT SMTP_ORCPT_MAX /* the largest max_value */

/* One "keyword[=value]" token, split. */
struct token {
    const unsigned char *key;
    size_t key_len;
    const unsigned char *value; /* NULL: no '=' */
    size_t value_len;
};

static int param_syntax(struct parser *p, const char *detail)
{
    return fail(p, SMTP_ADDRESS_PARAM_SYNTAX, detail);
}

/* For "Unsupported option: X", the keyword (safe: letters, digits, '-'). */
static int param_unsupported(struct parser *p, enum smtp_address_result r,
                             const struct token *t, const char *detail)
{
    size_t n = t->key_len < 64 ? t->key_len : 64;
    if (buf_printf(&p->a->reason, "Unsupported option: %.*s", (int)n,
                   (const char *)t->key) != 0)
        return store_failed(p);
    return fail(p, r, detail);
}

static bool valid_keyword(const struct token *t)
{
    if (t->key_len == 0 || !is_let_dig(t->key[0]))
        return false;
    for (size_t i = 1; i < t->key_len; i++)
        if (!is_let_dig(t->key[i]) && t->key[i] != '-')
            return false;
    return true;
}

/* esmtp-value = 1*(%d33-60 / %d62-126 / UTF8-non-ascii) */
static bool valid_value(const unsigned char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n;) {
        if (is_value_char(s[i])) {
            i++;
            continue;
        }
        size_t k = s[i] >= 0x80 ? utf8_sequence(s + i, n - i) : 0;
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

static int set_size(struct parser *p, const struct token *t)
{
    long v = 0;
    for (size_t i = 0; i < t->value_len; i++) {
        if (!is_digit(t->value[i]))
            return param_syntax(p, "bad SIZE value");
        int d = t->value[i] - '0';
        if (v > (LONG_MAX - d) / 10)
            return param_syntax(p, "SIZE value out of range");
        v = v * 10 + d;
    }
    p->a->size = v;
    return 0;
}

static int set_body(struct parser *p, const struct token *t,
                    unsigned extensions)
{
    struct smtp_address *a = p->a;
    if (equal_nocase(t->value, t->value_len, "7BIT")) {
        a->body = SMTP_BODY_7BIT;
        return 0;
    }
    if (equal_nocase(t->value, t->value_len, "8BITMIME")) {
        a->body = SMTP_BODY_8BITMIME;
        if (extensions & SMTP_EXT_8BITMIME)
            return 0;
        if (buf_set_str(&a->reason, "Unsupported option: BODY=8BITMIME"))
            return store_failed(p);
        return fail(p, SMTP_ADDRESS_PARAM_DISABLED, "8BITMIME disabled");
    }
    if (equal_nocase(t->value, t->value_len, "BINARYMIME")) {
        a->body = SMTP_BODY_BINARYMIME;
        if (extensions & SMTP_EXT_BINARYMIME)
            return 0;
        if (buf_set_str(&a->reason, "Unsupported option: BODY=BINARYMIME"))
            return store_failed(p);
        return fail(p, SMTP_ADDRESS_PARAM_DISABLED, "BINARYMIME disabled");
    }
    return param_syntax(p, "bad BODY value");
}

static int set_ret(struct parser *p, const struct token *t)
{
    if (equal_nocase(t->value, t->value_len, "FULL"))
        p->a->ret = SMTP_RET_FULL;
    else if (equal_nocase(t->value, t->value_len, "HDRS"))
        p->a->ret = SMTP_RET_HDRS;
    else
        return param_syntax(p, "bad RET value");
    return 0;
}

/* Decodes xtext into out; the result must be printable US-ASCII
 * (RFC 3461 sections 4.2, 4.4): "+0D+0A" must not smuggle a line break. */
static int set_xtext(struct parser *p, struct buf *out,
                     const unsigned char *s, size_t n, const char *what)
{
    if (smtp_xtext_decode(out, (const char *)s, n) != 0)
        return errno == EINVAL ? param_syntax(p, what) : store_failed(p);
    for (size_t i = 0; i < out->len; i++) {
        unsigned char c = (unsigned char)out->data[i];
        if (c < 32 || c > 126)
            return param_syntax(p, what);
    }
    return 0;
}

static int notify_word(const unsigned char *s, size_t n, unsigned *bit)
{
    static const struct { const char *name; unsigned bit; } words[] = {
        { "NEVER", SMTP_NOTIFY_NEVER },
        { "SUCCESS", SMTP_NOTIFY_SUCCESS },
        { "FAILURE", SMTP_NOTIFY_FAILURE },
        { "DELAY", SMTP_NOTIFY_DELAY },
    };
    for (size_t k = 0; k < sizeof(words) / sizeof(words[0]); k++) {
        if (equal_nocase(s, n, words[k].name)) {
            *bit = words[k].bit;
            return 0;
        }
    }
    return -1;
}

/* "NEVER" alone, or a list of SUCCESS, FAILURE, DELAY (repeats allowed,
 * as the grammar of RFC 3461 section 4.1 allows them). */
static int set_notify(struct parser *p, const struct token *t)
{
    unsigned mask = 0;
    size_t begin = 0;
    for (size_t i = 0; i <= t->value_len; i++) {
        if (i < t->value_len && t->value[i] != ',')
            continue;
        unsigned bit;
        if (notify_word(t->value + begin, i - begin, &bit) != 0)
            return param_syntax(p, "bad NOTIFY value");
        mask |= bit;
        begin = i + 1;
    }
    if ((mask & SMTP_NOTIFY_NEVER) && mask != SMTP_NOTIFY_NEVER)
        return param_syntax(p, "NOTIFY=NEVER with other values");
    p->a->notify = mask;
    return 0;
}

/* ORCPT=addr-type ";" xtext; addr-type an atom, the address not empty. */
static int set_orcpt(struct parser *p, const struct token *t)
{
    const unsigned char *semi = memchr(t->value, ';', t->value_len);
    if (!semi || semi == t->value)
        return param_syntax(p, "bad ORCPT value");
    size_t type_len = (size_t)(semi - t->value);
    for (size_t i = 0; i < type_len; i++)
        if (!is_atext(t->value[i]))
            return param_syntax(p, "bad ORCPT address type");
    size_t rest = t->value_len - type_len - 1;
    if (rest == 0)
        return param_syntax(p, "empty ORCPT address");
    if (buf_append(&p->a->orcpt_type, t->value, type_len) != 0)
        return store_failed(p);
    return set_xtext(p, &p->a->orcpt, semi + 1, rest, "bad ORCPT xtext");
}

static int set_value(struct parser *p, const struct param_def *d,
                     const struct token *t, unsigned extensions)
{
    struct smtp_address *a = p->a;
    switch (d->id) {
    case SMTP_PARAM_SIZE:
        return set_size(p, t);
    case SMTP_PARAM_BODY:
        return set_body(p, t, extensions);
    case SMTP_PARAM_SMTPUTF8:
        a->smtputf8 = true;
        return 0;
    case SMTP_PARAM_RET:
        return set_ret(p, t);
    case SMTP_PARAM_ENVID:
        return set_xtext(p, &a->envid, t->value, t->value_len,
                         "bad ENVID xtext");
    case SMTP_PARAM_AUTH:
        return set_xtext(p, &a->auth, t->value, t->value_len,
                         "bad AUTH xtext");
    case SMTP_PARAM_NOTIFY:
        return set_notify(p, t);
    case SMTP_PARAM_ORCPT:
        return set_orcpt(p, t);
    case SMTP_PARAM_COUNT:
        break;
    }
    return param_syntax(p, "bad parameter");
}

static const struct param_def *find_param(const struct token *t)
{
    for (size_t k = 0; k < sizeof(param_defs) / sizeof(param_defs[0]); k++)
        if (equal_nocase(t->key, t->key_len, param_defs[k].name))
            return &param_defs[k];
    return NULL;
}

/* Syntax, then whether the keyword may be used here, then the value. */
static int parse_param(struct parser *p, const struct token *t,
                       unsigned extensions)
{
    struct smtp_address *a = p->a;
    if (!valid_keyword(t))
        return param_syntax(p, "bad parameter keyword");
    if (t->value && !valid_value(t->value, t->value_len))
        return param_syntax(p, "bad parameter value");
    const struct param_def *d = find_param(t);
    if (!d)
        return param_unsupported(p, SMTP_ADDRESS_PARAM_UNKNOWN, t,
                                 "unknown parameter");
    if (!(d->commands & CMD_BIT(p->cmd)))
        return param_unsupported(p, SMTP_ADDRESS_PARAM_WRONG_COMMAND, t,
                                 "parameter not valid for this command");
    if (!(d->extensions & extensions))
        return param_unsupported(p, SMTP_ADDRESS_PARAM_DISABLED, t,
                                 "extension not enabled");
    if (a->seen & SMTP_PARAM_BIT(d->id)) {
        if (buf_printf(&a->reason, "Duplicate parameter: %s", d->name))
            return store_failed(p);
        return fail(p, SMTP_ADDRESS_PARAM_DUPLICATE, "duplicate parameter");
    }
    if (d->max_value == 0 ? t->value != NULL : t->value == NULL)
        return param_syntax(p, d->max_value == 0 ? "unexpected value"
                                                 : "missing value");
    if (t->value_len > d->max_value)
        return param_syntax(p, "parameter value too long");
    a->seen |= SMTP_PARAM_BIT(d->id);
    struct smtp_param *sp = &a->params[a->param_count++];
    sp->id = d->id;
    sp->keyword = d->name;
    if (t->value && buf_append(&sp->value, t->value, t->value_len) != 0)
        return store_failed(p);
    return set_value(p, d, t, extensions);
}

static void split_token(struct token *t, const unsigned char *s, size_t n)
{
    const unsigned char *eq = memchr(s, '=', n);
    t->key = s;
    t->key_len = eq ? (size_t)(eq - s) : n;
    t->value = eq ? eq + 1 : NULL;
    t->value_len = eq ? n - t->key_len - 1 : 0;
}

/* Parameters are separated by spaces; more than one space and trailing
 * spaces are tolerated (only SP: TAB was refused as a control). */
static int parse_params(struct parser *p, unsigned extensions)
{
    if (p->i == p->n)
        return 0;
    if (!at(p, ' '))
        return fail_byte(p, "junk after address");
    while (p->i < p->n) {
        while (at(p, ' '))
            p->i++;
        size_t begin = p->i;
        while (p->i < p->n && !at(p, ' '))
            p->i++;
        if (p->i == begin)
            break;
        struct token t;
        split_token(&t, p->s + begin, p->i - begin);
        if (parse_param(p, &t, extensions) != 0)
            return -1;
    }
    return 0;
}

/* ---- the whole ---- */

static int reject_controls(struct parser *p)
{
    for (size_t i = 0; i < p->n; i++)
        if (is_control(p->s[i]))
            return fail(p, SMTP_ADDRESS_CONTROL, "control character");
    return 0;
}

static int check_8bit(struct parser *p, unsigned extensions)
{
    if (!(p->a->flags & SMTP_ADDR_8BIT))
        return 0;
    bool utf8 = (extensions & SMTP_EXT_SMTPUTF8) &&
                (p->cmd == SMTP_ADDRESS_MAIL
                     ? p->a->smtputf8
                     : (extensions & SMTP_UTF8_TRANSACTION) != 0);
    if (utf8)
        return 0;
    return fail(p, SMTP_ADDRESS_8BIT, "non-ASCII address without SMTPUTF8");
}

static void set_reply(struct smtp_address *a, enum smtp_address_command cmd,
                      enum smtp_address_result r, const char *detail)
{
    const char *who = cmd == SMTP_ADDRESS_MAIL ? "sender" : "recipient";
    int rc = 0;
    a->result = r;
    if (r != SMTP_ADDRESS_PARAM_DUPLICATE && r != SMTP_ADDRESS_PARAM_UNKNOWN &&
        r != SMTP_ADDRESS_PARAM_DISABLED &&
        r != SMTP_ADDRESS_PARAM_WRONG_COMMAND)
        buf_reset(&a->reason); /* the others wrote theirs where found */
    a->detail = detail;
    switch (r) {
    case SMTP_ADDRESS_OK:
        a->reply_code = 0;
        a->status = "";
        return;
    case SMTP_ADDRESS_8BIT:
        a->reply_code = 553;
        a->status = "5.6.7";
        rc = buf_printf(&a->reason,
                        "Non-ASCII addresses not permitted for that %s", who);
        break;
    case SMTP_ADDRESS_PARAM_SYNTAX:
        a->reply_code = 501;
        a->status = "5.5.4";
        rc = buf_set_str(&a->reason, "Syntax error in parameters");
        break;
    case SMTP_ADDRESS_PARAM_DUPLICATE:
        a->reply_code = 501;
        a->status = "5.5.4";
        break;
    case SMTP_ADDRESS_PARAM_UNKNOWN:
    case SMTP_ADDRESS_PARAM_DISABLED:
    case SMTP_ADDRESS_PARAM_WRONG_COMMAND:
        a->reply_code = 555;
        a->status = "5.5.4";
        break;
    case SMTP_ADDRESS_NO_MEMORY:
        a->reply_code = 451;
        a->status = "4.3.0";
        rc = buf_set_str(&a->reason, "Insufficient system resources");
        break;
    default:
        a->reply_code = 501;
        a->status = cmd == SMTP_ADDRESS_MAIL ? "5.1.7" : "5.1.3";
        rc = r == SMTP_ADDRESS_SYNTAX
                 ? buf_printf(&a->reason, "Bad %s address syntax", who)
                 : buf_printf(&a->reason, "Bad %s address syntax: %s", who,
                              detail);
        break;
    }
    if (rc != 0)
        buf_reset(&a->reason); /* out of memory: the code still says it */
}

/* Forgets the parsed path and parameters (not the reason). */
static void clear_parsed(struct smtp_address *a)
{
    buf_reset(&a->address);
    buf_reset(&a->local_part);
    buf_reset(&a->domain);
    buf_reset(&a->envid);
    buf_reset(&a->auth);
    buf_reset(&a->orcpt_type);
    buf_reset(&a->orcpt);
    for (size_t k = 0; k < SMTP_PARAM_COUNT; k++)
        buf_reset(&a->params[k].value);
    a->flags = 0;
    a->param_count = 0;
    a->seen = 0;
    a->size = 0;
    a->body = SMTP_BODY_NONE;
    a->smtputf8 = false;
    a->ret = SMTP_RET_NONE;
    a->notify = 0;
}

enum smtp_address_result smtp_address_parse(struct smtp_address *a,
                                            enum smtp_address_command cmd,
                                            const char *text, size_t len,
                                            unsigned extensions)
{
    struct parser p = { .a = a, .cmd = cmd,
                        .s = (const unsigned char *)text, .n = len,
                        .err = SMTP_ADDRESS_OK, .detail = "" };
    buf_reset(&a->reason);
    clear_parsed(a);
    if (reject_controls(&p) != 0 || parse_path(&p) != 0 ||
        parse_params(&p, extensions) != 0 || check_8bit(&p, extensions) != 0)
        clear_parsed(a); /* nothing half-parsed for the caller to trust */
    set_reply(a, cmd, p.err, p.detail);
    return a->result;
}

void smtp_address_init(struct smtp_address *a)
{
    memset(a, 0, sizeof(*a));
    buf_init(&a->reason, 200);
    buf_init(&a->address, SMTP_LOCAL_PART_MAX + 1 + SMTP_DOMAIN_MAX);
    buf_init(&a->local_part, SMTP_LOCAL_PART_MAX);
    buf_init(&a->domain, SMTP_DOMAIN_MAX);
    buf_init(&a->envid, SMTP_ENVID_MAX);
    buf_init(&a->auth, SMTP_AUTH_MAX);
    buf_init(&a->orcpt_type, SMTP_ORCPT_MAX);
    buf_init(&a->orcpt, SMTP_ORCPT_MAX);
    for (size_t k = 0; k < SMTP_PARAM_COUNT; k++)
        buf_init(&a->params[k].value, PARAM_VALUE_LIMIT);
    a->status = "";
    a->detail = "";
}

void smtp_address_free(struct smtp_address *a)
{
    buf_free(&a->reason);
    buf_free(&a->address);
    buf_free(&a->local_part);
    buf_free(&a->domain);
    buf_free(&a->envid);
    buf_free(&a->auth);
    buf_free(&a->orcpt_type);
    buf_free(&a->orcpt);
    for (size_t k = 0; k < SMTP_PARAM_COUNT; k++)
        buf_free(&a->params[k].value);
}

const char *smtp_address_domain(const struct smtp_address *a)
{
    return buf_cstr(&a->domain);
}

const char *smtp_address_local_part(const struct smtp_address *a)
{
    return buf_cstr(&a->local_part);
}

const char *smtp_address_result_name(enum smtp_address_result r)
{
    static const char *const names[] = {
        [SMTP_ADDRESS_OK] = "SMTP_ADDRESS_OK",
        [SMTP_ADDRESS_SYNTAX] = "SMTP_ADDRESS_SYNTAX",
        [SMTP_ADDRESS_NO_BRACKETS] = "SMTP_ADDRESS_NO_BRACKETS",
        [SMTP_ADDRESS_TOO_LONG] = "SMTP_ADDRESS_TOO_LONG",
        [SMTP_ADDRESS_CONTROL] = "SMTP_ADDRESS_CONTROL",
        [SMTP_ADDRESS_BAD_UTF8] = "SMTP_ADDRESS_BAD_UTF8",
        [SMTP_ADDRESS_8BIT] = "SMTP_ADDRESS_8BIT",
        [SMTP_ADDRESS_NULL_RCPT] = "SMTP_ADDRESS_NULL_RCPT",
        [SMTP_ADDRESS_PARAM_SYNTAX] = "SMTP_ADDRESS_PARAM_SYNTAX",
        [SMTP_ADDRESS_PARAM_DUPLICATE] = "SMTP_ADDRESS_PARAM_DUPLICATE",
        [SMTP_ADDRESS_PARAM_UNKNOWN] = "SMTP_ADDRESS_PARAM_UNKNOWN",
        [SMTP_ADDRESS_PARAM_DISABLED] = "SMTP_ADDRESS_PARAM_DISABLED",
        [SMTP_ADDRESS_PARAM_WRONG_COMMAND] =
            "SMTP_ADDRESS_PARAM_WRONG_COMMAND",
        [SMTP_ADDRESS_NO_MEMORY] = "SMTP_ADDRESS_NO_MEMORY",
    };
    if ((unsigned)r >= sizeof(names) / sizeof(names[0]) || !names[r])
        return "unknown";
    return names[r];
}
