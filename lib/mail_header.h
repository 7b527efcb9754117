/*
 * mail_header - the message header of RFC 5322: which lines start a header
 * field and which continue one, field names, unfolding, the date format,
 * and the Received: field that a receiving system prepends (RFC 5321
 * section 4.4, "with" keywords of RFC 3848).
 *
 * A header field here is what the message holds: one or more physical
 * lines, each ended by LF, the first starting with the name and a colon,
 * the others (folded continuations) with a space or a tab.  The functions
 * take a pointer and a length, never a C string, since the bytes come from
 * outside; none of them allocates except into a struct buf.
 *
 * Usage:
 *     if (mail_header_continues(line, len)) ... append to the field ...
 *     else if (mail_header_starts(line, len)) ... a new field ...
 *     else ... the header has ended: this line is the body's first ...
 *     if (mail_header_name_is(field, len, "Received")) hops++;
 *     mail_header_unfold(field, len, &unfolded);  // "Subject: a b"
 *     mail_date_format(time(NULL), &date);        // "Tue, 1 Dec 2026 ..."
 *     struct mail_received r = { .helo_name = ..., ... };
 *     mail_received_format(&r, &out);             // "Received: ...\n..."
 *
 * Functions that write into a buf return 0, or -1 when it is full (errno
 * EMSGSIZE) or memory ran out.
 */
#ifndef POSTINO_MAIL_HEADER_H
#define POSTINO_MAIL_HEADER_H

#include <stddef.h>
#include <time.h>

#include "buf.h"

/* True when line (without or with its LF) starts a header field: a name of
 * printable ASCII other than ':' (at least one byte), optional white space
 * (obsolete syntax), then ':'. */
int mail_header_starts(const char *line, size_t len);
/* True when line continues the previous field: it starts with SP or HT. */
int mail_header_continues(const char *line, size_t len);
/* Length of the field's name (0 when field does not start a field). */
size_t mail_header_name_len(const char *field, size_t len);
/* True when the field's name is name, compared without case. */
int mail_header_name_is(const char *field, size_t len, const char *name);
/* The field's value after the colon, with leading white space skipped and
 * the final LF left out; *value_len receives its length. */
const char *mail_header_value(const char *field, size_t len,
                              size_t *value_len);
/* Appends the field unfolded (RFC 5322 section 2.2.3: each CRLF or LF
 * that is followed by white space is removed) and without its final line
 * ending: "Name: value". */
int mail_header_unfold(const char *field, size_t len, struct buf *out);

/* True when the field is a MIME header field (RFC 2045: MIME-Version or
 * Content-*), which mime_header_checks sees instead of header_checks. */
int mail_header_is_mime(const char *field, size_t len);
/* True for a Content-Type field of type message/rfc822 (or its UTF-8
 * form message/global, RFC 6532): the part's body is a whole message,
 * header and body (RFC 2046 section 5.2.1). */
int mail_header_is_message(const char *field, size_t len);
/* For a Content-Type field of a multipart type (RFC 2046 section 5.1.1):
 * sets boundary to its boundary parameter (quotes removed) and returns 1;
 * returns 0 for any other field or type, or when there is no usable
 * boundary (empty, or longer than MAIL_BOUNDARY_MAX). */
#define MAIL_BOUNDARY_MAX 200
int mail_header_boundary(const char *field, size_t len, struct buf *boundary);

/* Appends name (a person's full name) as the display name of an address
 * (RFC 5322 section 3.4): as it is when it is a phrase of atoms, as a
 * quoted string when it holds specials ("Joe Q. Public"), and, when it
 * holds 8-bit bytes and utf8_ok is false, as RFC 2047 "B" encoded-words
 * (charset UTF-8, or UNKNOWN-8BIT when it is not valid UTF-8), folded
 * onto continuation lines ("\n ").  With utf8_ok (an SMTPUTF8 message,
 * RFC 6532) valid UTF-8 stays as it is.  White space at either end is
 * dropped; a control character other than tab fails (errno EINVAL). */
int mail_header_phrase(const char *name, size_t len, int utf8_ok,
                       struct buf *out);

/* Appends the RFC 5322 date-time of t in local time with a numeric zone:
 * "Tue, 1 Dec 2026 20:42:47 +0100". */
int mail_date_format(time_t t, struct buf *out);

/* The facts a Received: field is made of.  NULL or "" means absent. */
struct mail_received {
    const char *helo_name;      /* SMTP HELO/EHLO argument */
    const char *client_name;    /* verified client name, or "unknown" */
    const char *client_address; /* IP address, without brackets */
    const char *tls;            /* "TLSv1.3 with cipher ... (256/256 bits)" */
    const char *sasl_username;  /* "(Authenticated sender: ...)" */
    const char *local_user;     /* local submission: "from userid ..." */
    const char *by_host;        /* this host (myhostname) */
    const char *mail_name;      /* "Postino" */
    const char *protocol;       /* "ESMTP", "ESMTPSA", ... */
    const char *queue_id;
    const char *recipient;      /* only when the message has one */
    time_t date;
};

/* Appends the whole Received: field, folded on several lines, each ended
 * by LF.  From a network client:
 *     Received: from HELO (NAME [ADDRESS])
 *     \t(using TLS)
 *     \t(Authenticated sender: USER)
 *     \tby HOST (MAIL_NAME) with PROTOCOL id QUEUE_ID
 *     \tfor <RECIPIENT>; DATE
 * (with several recipients "\tby ... id QUEUE_ID;" and "\tDATE"), and
 * without a client address (local submission, as Postfix's pickup writes
 * it, never with a recipient):
 *     Received: by HOST (MAIL_NAME, from userid USER)
 *     \tid QUEUE_ID; DATE
 */
int mail_received_format(const struct mail_received *r, struct buf *out);

#endif
