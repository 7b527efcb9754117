/*
 * mail_address - the addresses of an RFC 5322 address list, as To:, Cc:
 * and Bcc: hold them (section 3.4), for sendmail -t and header rewriting.
 *
 * The parser understands display names ("Joe Q. Public <joe@example.com>"),
 * quoted strings (local parts and names, with backslash escapes), comments
 * in parentheses (nested, dropped), domain literals ("[192.0.2.1]"),
 * source routes ("<@relay:joe@example.com>", the route dropped) and groups
 * ("team: a@example.com, b@example.com;", the group name dropped, an empty
 * group giving nothing).  Each address comes out as its addr-spec with the
 * white space and comments between its tokens removed; a quoted local part
 * keeps its quotes.  A bare local part ("joe") is returned as is.
 *
 * Bad syntax is not an error: the parser is lenient, as a mail system
 * must be with headers that others wrote (an unclosed quote or comment
 * runs to the end of the value, and an address with an unclosed quote or
 * domain literal is dropped).  Bounded: an address longer than
 * MAIL_ADDRESS_MAX bytes is skipped.
 *
 * Usage:
 *     static int add(void *ctx, const char *address) { ...; return 0; }
 *     mail_address_list(value, value_len, add, ctx);
 * fn returns 0 to go on, anything else to stop; mail_address_list returns
 * what the last call of fn returned (0 when it was never called), or -1
 * when memory ran out.
 *
 * mail_address_spans is the same walk for code that edits the value in
 * place (cleanup appends "@myorigin" to a bare local part): fn also gets
 * where the words of the address lie, value[start..end), from its first
 * word to its last.  When that text is not the address itself (comments
 * or white space between its words), the caller should leave it alone.
 */
#ifndef POSTINO_MAIL_ADDRESS_H
#define POSTINO_MAIL_ADDRESS_H

#include <stddef.h>

#define MAIL_ADDRESS_MAX 1024

typedef int mail_address_fn(void *ctx, const char *address);
int mail_address_list(const char *value, size_t len, mail_address_fn *fn,
                      void *ctx);

typedef int mail_address_span_fn(void *ctx, const char *address,
                                 size_t start, size_t end);
int mail_address_spans(const char *value, size_t len,
                       mail_address_span_fn *fn, void *ctx);

#endif
