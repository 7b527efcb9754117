/*
 * mail_address - a lenient tokenizer and parser for RFC 5322 address
 * lists.  See mail_address.h.
 *
 * The value is read token by token.  Words (atoms, quoted strings, domain
 * literals, '.' and '@') are collected into the current candidate; a '<'
 * starts an angle address, which replaces the candidate (what came before
 * was a display name); ':' outside an angle address ends a group name
 * (dropped), or inside one ends a source route (dropped); ',' and ';' end
 * the current address.
 */
#include "mail_address.h"

#include <errno.h>
#include <stdint.h>

#include "buf.h"

/* Where the words of a candidate lie in the value; start is SIZE_MAX
 * while there are none. */
struct address_span {
    size_t start;
    size_t end;
};

struct address_parser {
    const char *value;
    const char *p;
    const char *end;
    struct buf phrase;   /* words outside angle brackets */
    struct buf angle;    /* what is inside <...> */
    struct address_span phrase_span;
    struct address_span angle_span;
    int in_angle;
    int have_angle;      /* an angle address ended: it wins */
    int unclosed;        /* a quote or literal ran to the end: no address */
    mail_address_span_fn *fn;
    void *ctx;
    int result;
};

static const struct address_span no_span = { SIZE_MAX, SIZE_MAX };

/* The word from from to ap->p was added to the candidate of span. */
static void span_extend(const struct address_parser *ap,
                        struct address_span *span, const char *from)
{
    if (span->start == SIZE_MAX)
        span->start = (size_t)(from - ap->value);
    span->end = (size_t)(ap->p - ap->value);
}

static struct address_span *current_span(struct address_parser *ap)
{
    return ap->in_angle ? &ap->angle_span : &ap->phrase_span;
}

static int is_special(char c)
{
    return c == '(' || c == ')' || c == '<' || c == '>' || c == '[' ||
           c == ']' || c == ':' || c == ';' || c == '@' || c == '\\' ||
           c == ',' || c == '.' || c == '"';
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Skips a comment, nested, with quoted pairs; p is after its '('. */
static void skip_comment(struct address_parser *ap)
{
    int depth = 1;
    while (ap->p < ap->end && depth > 0) {
        char c = *ap->p++;
        if (c == '\\' && ap->p < ap->end)
            ap->p++;
        else if (c == '(')
            depth++;
        else if (c == ')')
            depth--;
    }
}

/* Appends a quoted string or domain literal as written, ended by close. */
static int take_delimited(struct address_parser *ap, struct buf *to,
                          char close)
{
    const char *start = ap->p++;
    while (ap->p < ap->end && *ap->p != close) {
        if (*ap->p == '\\' && ap->p + 1 < ap->end)
            ap->p++;
        ap->p++;
    }
    if (ap->p < ap->end)
        ap->p++;
    else
        ap->unclosed = 1;
    return buf_append(to, start, (size_t)(ap->p - start));
}

/* The current address, if any, goes to fn; the state starts over. */
static int emit(struct address_parser *ap)
{
    struct buf *addr = ap->have_angle ? &ap->angle : &ap->phrase;
    const struct address_span *span =
        ap->have_angle ? &ap->angle_span : &ap->phrase_span;
    int rc = 0;
    if (addr->len > 0 && addr->len <= MAIL_ADDRESS_MAX && !ap->unclosed)
        rc = ap->fn(ap->ctx, buf_cstr(addr), span->start, span->end);
    buf_reset(&ap->phrase);
    buf_reset(&ap->angle);
    ap->phrase_span = ap->angle_span = no_span;
    ap->have_angle = 0;
    ap->in_angle = 0;
    ap->result = rc;
    return rc;
}

/* One token; returns non-zero to stop (fn said so, or out of memory). */
static int parse_token(struct address_parser *ap)
{
    struct buf *to = ap->in_angle ? &ap->angle : &ap->phrase;
    char c = *ap->p;
    if (is_space(c)) {
        ap->p++;
        return 0;
    }
    if (c == '(') {
        ap->p++;
        skip_comment(ap);
        return 0;
    }
    const char *from = ap->p;
    if (c == '"' || c == '[') {
        int rc = take_delimited(ap, to, c == '"' ? '"' : ']');
        span_extend(ap, current_span(ap), from);
        return rc != 0 ? -1 : 0;
    }
    ap->p++;
    switch (c) {
    case '<':
        ap->in_angle = 1;
        buf_reset(&ap->angle);
        ap->angle_span = no_span;
        return 0;
    case '>':
        if (ap->in_angle) {
            ap->in_angle = 0;
            ap->have_angle = 1;
        }
        return 0;
    case ':':
        /* A group name or a source route: what came before goes. */
        buf_reset(to);
        *current_span(ap) = no_span;
        return 0;
    case ',':
        if (ap->in_angle) { /* inside a source route: "@a,@b:" */
            buf_reset(to);
            ap->angle_span = no_span;
            return 0;
        }
        return emit(ap);
    case ';':
        return emit(ap);
    case ')':
        return 0; /* a stray close: ignored */
    default:
        break;
    }
    /* '.', '@' or an atom: taken as it is. */
    if (buf_append_char(to, c) != 0)
        return -1;
    if (c != '.' && c != '@')
        while (ap->p < ap->end && !is_space(*ap->p) && !is_special(*ap->p))
            if (buf_append_char(to, *ap->p++) != 0)
                return -1;
    span_extend(ap, current_span(ap), from);
    return 0;
}

int mail_address_spans(const char *value, size_t len,
                       mail_address_span_fn *fn, void *ctx)
{
    struct address_parser ap = {
        .value = value, .p = value, .end = value + len, .fn = fn,
        .ctx = ctx, .phrase_span = no_span, .angle_span = no_span,
    };
    /* Words beyond the bound make the address one that is skipped. */
    buf_init(&ap.phrase, MAIL_ADDRESS_MAX + 2);
    buf_init(&ap.angle, MAIL_ADDRESS_MAX + 2);
    int rc = 0;
    while (ap.p < ap.end) {
        rc = parse_token(&ap);
        if (rc < 0 && errno == EMSGSIZE) {
            /* Too long: skip to the next separator, drop this address. */
            while (ap.p < ap.end && *ap.p != ',' && *ap.p != ';')
                ap.p++;
            buf_reset(&ap.phrase);
            buf_reset(&ap.angle);
            ap.phrase_span = ap.angle_span = no_span;
            ap.in_angle = ap.have_angle = 0;
            rc = 0;
            continue;
        }
        if (rc != 0)
            break;
    }
    if (rc == 0)
        rc = emit(&ap);
    buf_free(&ap.phrase);
    buf_free(&ap.angle);
    return rc;
}

/* mail_address_list through mail_address_spans: the spans are dropped. */
struct address_only {
    mail_address_fn *fn;
    void *ctx;
};

static int address_only(void *ctx, const char *address, size_t start,
                        size_t end)
{
    (void)start;
    (void)end;
    const struct address_only *a = ctx;
    return a->fn(a->ctx, address);
}

int mail_address_list(const char *value, size_t len, mail_address_fn *fn,
                      void *ctx)
{
    struct address_only a = { fn, ctx };
    return mail_address_spans(value, len, address_only, &a);
}
