/*
 * cleanup - the state the modules of the cleanup daemon share: the
 * settings read once at start (struct cleanup_config) and one message in
 * progress (struct cleanup_state).
 *
 *   cleanup.c           main, the conversation with the client
 *                       (docs/protocol.md, "cleanup"), the verdict, commit
 *   cleanup_envelope.c  sender and recipients: canonical and virtual
 *                       alias rewriting, the envelope records
 *   cleanup_message.c   the content: header fields, Received:, missing
 *                       headers, recipients from headers, body lines
 *   cleanup_checks.c    header_checks and body_checks: lookups, actions
 *
 * A problem found anywhere is kept in the state as the verdict
 * (cleanup_fail); the first one wins, the rest of the input is read and
 * dropped, and the client hears the verdict at the end.
 */
#ifndef POSTINO_CLEANUP_H
#define POSTINO_CLEANUP_H

#include <stddef.h>
#include <sys/time.h>

#include "buf.h"
#include "cleanup_client.h"
#include "config.h"
#include "queue_file.h"
#include "record.h"
#include "table.h"
#include "trigger.h"

/* Most recipients one message may have, before and after expansion. */
#define CLEANUP_RECIPIENT_MAX 100000
/* Longest address cleanup accepts (envelope or expansion). */
#define CLEANUP_ADDRESS_MAX 4096
/* Deepest nesting of multipart bodies whose part headers are checked. */
#define CLEANUP_MIME_DEPTH 20
/* Longest attribute cleanup puts into Received: or the log. */
#define CLEANUP_ATTR_TEXT_MAX 1024

struct cleanup_tables {
    struct table **tables;
    size_t count;
};

struct cleanup_config {
    const char *myhostname;
    const char *myorigin;
    int append_at_myorigin;
    const char *mail_name;
    const char *recipient_delimiter;
    struct text_list mydestination;
    long header_size_limit;
    long message_size_limit;    /* 0: none */
    long hopcount_limit;
    long line_length_limit;
    long recursion_limit;       /* virtual_alias_recursion_limit */
    long expansion_limit;       /* virtual_alias_expansion_limit */
    long ipc_timeout;           /* seconds, each wait */
    long daemon_timeout;        /* seconds, the whole message */
    struct cleanup_tables header_checks;
    struct cleanup_tables mime_header_checks;
    struct cleanup_tables nested_header_checks;
    struct cleanup_tables body_checks;
    struct cleanup_tables canonical;
    struct cleanup_tables sender_canonical;
    struct cleanup_tables recipient_canonical;
    struct cleanup_tables virtual_alias;
    struct trigger *qmgr_wakeup; /* the process's, across messages */
    struct queue_dir incoming;   /* held open for the process's life */
};

struct cleanup_recipient {
    char *address;
    char *orcpt;   /* NULL: none */
    char *notify;  /* NULL: none */
    long depth;    /* virtual alias expansion: levels from the original */
};

/* A list in order, with a hash index of the addresses (case folded) so
 * that duplicates are found quickly even among many recipients. */
struct cleanup_recipients {
    struct cleanup_recipient *items;
    size_t count;
    size_t cap;
    size_t *slots;      /* item index + 1; 0: empty */
    size_t slot_count;  /* a power of two, at least twice count */
};

struct cleanup_state {
    const struct cleanup_config *cfg;
    struct queue_writer writer;
    int writer_open;
    char id[QUEUE_ID_SIZE];
    struct timeval arrival;
    struct record envelope;           /* the open request */
    unsigned flags;                   /* CLEANUP_FLAG_* */
    struct buf sender;                /* after rewriting */
    struct buf sender_original;
    struct cleanup_recipients rcpts;  /* as the client gave them */
    struct cleanup_recipients final;  /* after rewriting, expansion */
    int envelope_written;             /* R records and M are out */
    size_t final_written;             /* of final, how many are out */

    /* The verdict: CLEANUP_OK until something says otherwise. */
    enum cleanup_status status;
    int code;
    char dsn[16];
    struct buf text;
    int hold;                         /* a HOLD action was taken */

    /* Content. */
    long long content_size;           /* bytes from the client */
    struct buf out;                   /* content not yet in a B record */
    struct buf line;                  /* a physical line being assembled */
    struct buf field;                 /* a header field being assembled */
    int in_header;
    long long header_size;
    long hops;
    int seen_message_id, seen_date, seen_from;
    int seen_resent;                  /* some Resent-* field */
    struct buf message_id;
    struct buf boundaries[CLEANUP_MIME_DEPTH]; /* open multiparts */
    size_t mime_depth;
    int in_part_header;               /* the header of a MIME part */
    struct buf part_boundary;         /* multipart boundary of the header
                                       * being read, when it has one */
    int part_is_message;              /* that header says message/rfc822 */
    int in_nested_header;             /* the header of an attached
                                       * message (a kind of part header) */
    struct cleanup_recipients extracted;        /* To, Cc, Bcc */
    struct cleanup_recipients extracted_resent; /* Resent-To, -Cc, -Bcc */
};

/* cleanup.c: records the first problem as the verdict; later ones are
 * ignored.  (HOLD is no verdict but a flag: a later problem still wins.) */
void cleanup_fail(struct cleanup_state *st, enum cleanup_status status,
                  int code, const char *dsn, const char *text);
/* True once the message will not be queued (reject, discard, defer). */
int cleanup_failed(const struct cleanup_state *st);
/* The "from CLIENT; from=<S> to=<R> proto=P helo=<H>" part of an action
 * log line. */
void cleanup_log_context(const struct cleanup_state *st, struct buf *out);
/* The write error errno as a verdict: 452 4.3.1 for a full disk or quota,
 * 451 4.3.0 for anything else. */
void cleanup_fail_write(struct cleanup_state *st, int error);
/* An attribute of the open request as text for headers and the log; NULL
 * when missing, not text (NUL, CR or LF), or longer than
 * CLEANUP_ATTR_TEXT_MAX. */
const char *cleanup_attr(const struct cleanup_state *st, const char *name);

/* cleanup_envelope.c */
int cleanup_recipients_add(struct cleanup_recipients *list,
                           const char *address, const char *orcpt,
                           const char *notify);
void cleanup_recipients_free(struct cleanup_recipients *list);
/* True when list has address, compared without case. */
int cleanup_recipients_contains(const struct cleanup_recipients *list,
                                const char *address);
/* The sender rewritten, T, A and F records written. */
void cleanup_envelope_open(struct cleanup_state *st);
/* Rewrites and expands the recipients of list into st->final. */
void cleanup_envelope_rewrite(struct cleanup_state *st,
                              const struct cleanup_recipients *list);
/* Writes the O, N, R records of st->final not yet written. */
void cleanup_envelope_write_recipients(struct cleanup_state *st);
/* True for a local submission (origin "pickup") while append_at_myorigin
 * is on and CLEANUP_FLAG_NO_REWRITE is not given: its addresses without a
 * domain get "@myorigin", in the envelope and in the address fields of
 * the header. */
int cleanup_appends_origin(const struct cleanup_state *st);
/* True when address has a domain: an '@' outside a quoted local part. */
int cleanup_address_has_domain(const char *address, size_t len);
/* Appends "@myorigin" to a non-empty address without a domain when
 * cleanup_appends_origin; 0, or -1 when it does not fit. */
int cleanup_append_origin(const struct cleanup_state *st,
                          struct buf *address);
/* Rewrites one address through canonical maps (sender or recipient
 * side); 0, or -1 after cleanup_fail on a table error. */
int cleanup_rewrite_address(struct cleanup_state *st, int sender,
                            struct buf *address);

/* cleanup_message.c */
void cleanup_message_init(struct cleanup_state *st);
void cleanup_message_free(struct cleanup_state *st);
/* Content bytes as they come. */
void cleanup_message_data(struct cleanup_state *st, const char *data,
                          size_t len);
/* The end of the content: the last line, the end of the header if it
 * has not come, extracted recipients. */
void cleanup_message_end(struct cleanup_state *st);
/* The envelope's recipients are final: write them, M, Received:. */
void cleanup_message_start(struct cleanup_state *st);

/* cleanup_checks.c */
enum cleanup_check_kind {
    CLEANUP_CHECK_HEADER, /* header_checks: primary header fields */
    CLEANUP_CHECK_MIME,   /* mime_header_checks: MIME-Version, Content-* */
    CLEANUP_CHECK_NESTED, /* nested_header_checks: attached messages */
    CLEANUP_CHECK_BODY,   /* body_checks */
};
/* What a check says about one header field or body line. */
enum cleanup_check_result {
    CHECK_KEEP,     /* write it (possibly after prepend) */
    CHECK_DROP,     /* IGNORE: leave it out */
    CHECK_REPLACE,  /* write replacement instead */
};
/* Runs the checks on text (an unfolded header or a body line).  May set
 * the verdict, log, and fill prepend / replacement (lines without LF). */
enum cleanup_check_result cleanup_check(struct cleanup_state *st,
                                        enum cleanup_check_kind kind,
                                        const char *text, size_t len,
                                        struct buf *prepend,
                                        struct buf *replacement);
/* Opens the tables of a list parameter; log_fatal when one cannot be
 * opened (the master throttles, smtpd answers 451). */
void cleanup_tables_open(struct config *cfg, const char *param,
                         struct cleanup_tables *out);
/* Looks address up in every table of list with the address_lookup rules;
 * TABLE_FOUND (value set), TABLE_NOT_FOUND or TABLE_ERROR (error set). */
int cleanup_tables_lookup_address(const struct cleanup_state *st,
                                  const struct cleanup_tables *list,
                                  const char *address, struct buf *value,
                                  struct buf *error);

#endif
