/*
 * bounce_report - the delivery status notification that the bounce daemon
 * sends about one message (docs/protocol.md, "bounce"): RFC 3464 delivery
 * status inside an RFC 3462 multipart/report, or with RFC 6533's
 * message/global-delivery-status for an SMTPUTF8 message.
 *
 * Three steps, each testable alone:
 *   1. bounce_original_read: what the notice needs of the queue file: the
 *      envelope sender, the arrival time, the DSN attributes, the header,
 *      and the body when the content is within the size limit.
 *   2. bounce_report_select: the recipients of a recipient log that the
 *      notice reports: one (the last) entry per recipient, only those whose
 *      NOTIFY asks for this kind of notice.
 *   3. bounce_report_compose: the notice itself, header and body with LF
 *      line ends, every line at most BOUNCE_LINE_MAX bytes.
 *
 * Usage:
 *     struct bounce_original orig;
 *     bounce_original_init(&orig);
 *     if (bounce_original_read(&orig, "active/ID", 50000, &error) != 0) ...
 *     struct bounce_selection sel;
 *     if (bounce_report_select(&log, BOUNCE_FAILURE, &sel) != 0) ...
 *     if (sel.count == 0) ... nothing to send ...
 *     struct bounce_report r = { .kind = BOUNCE_FAILURE, ... };
 *     bounce_report_compose(&r, &orig, &sel, &notice);
 *     bounce_selection_free(&sel);
 *     bounce_original_free(&orig);
 *
 * Functions return 0, or -1 (out of memory, a buffer limit, a damaged
 * queue file: the reason in error where there is one).
 */
#ifndef POSTINO_BOUNCE_REPORT_H
#define POSTINO_BOUNCE_REPORT_H

#include <stddef.h>
#include <time.h>

#include "buf.h"
#include "recipient_log.h"

/* Lines of the notice, LF not counted (RFC 5322 section 2.1.1). */
#define BOUNCE_LINE_MAX 998
/* The most of an original header kept when the body is left out. */
#define BOUNCE_HEADER_MAX (1024 * 1024)

enum bounce_kind {
    BOUNCE_FAILURE,
    BOUNCE_DELAY,
    BOUNCE_SUCCESS,
};

/* "failure", "delay", "success" -> kind: 0, or -1 for anything else. */
int bounce_kind_parse(const char *text, enum bounce_kind *kind);

struct bounce_original {
    struct buf sender;        /* "" for the null sender */
    long arrival;             /* seconds since the epoch; 0: unknown */
    struct buf envid;         /* dsn_envid, "" when absent */
    int ret_hdrs;             /* dsn_ret=HDRS */
    int smtputf8;             /* smtputf8=1 */
    long content_size;        /* from the S record */
    struct buf header;        /* the header, LF line ends */
    struct buf body;          /* the body, when body_kept */
    int body_kept;            /* the content was within the limit */
};

void bounce_original_init(struct bounce_original *o);
void bounce_original_free(struct bounce_original *o);
/* Reads the queue file at path (relative to the current directory).  The
 * body is kept when the content is at most body_limit bytes. */
int bounce_original_read(struct bounce_original *o, const char *path,
                         long body_limit, struct buf *error);

/* The entries a notice reports, pointing into the log (which must outlive
 * the selection), in the log's order. */
struct bounce_selection {
    const struct recipient_log_entry **items;
    size_t count;
};

/* True when a recipient with this NOTIFY (NULL: none given) wants a notice
 * of this kind: failure and delay by default, success only on request,
 * NEVER none. */
int bounce_notify_wants(const char *notify, enum bounce_kind kind);
int bounce_report_select(const struct recipient_log *log,
                         enum bounce_kind kind, struct bounce_selection *sel);
void bounce_selection_free(struct bounce_selection *sel);

struct bounce_report {
    enum bounce_kind kind;
    const char *myhostname;
    const char *mail_name;      /* "Postino", for the text */
    const char *queue_id;       /* of the original message */
    const char *new_queue_id;   /* of the notice, for Message-ID */
    const char *to;             /* the notice's recipient, for To: */
    int postmaster;             /* a double bounce, to the postmaster */
    int postmaster_copy;        /* notify_classes "bounce": the
                                 * postmaster's copy of a failure notice,
                                 * with the original's header only */
    time_t now;
    long queue_lifetime;        /* maximal_queue_lifetime, seconds */
};

/* Appends the whole notice (header and body) to out. */
int bounce_report_compose(const struct bounce_report *r,
                          const struct bounce_original *o,
                          const struct bounce_selection *sel,
                          struct buf *out);
/* True when text holds a byte outside ASCII (the notice then goes with
 * encoding=8bitmime). */
int bounce_report_8bit(const char *text, size_t len);

#endif
