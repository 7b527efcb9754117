/*
 * cleanup_client - how smtpd, pickup and any other producer of mail hand a
 * message to cleanup, the only writer of new queue files.
 *
 * The conversation is the record protocol (docs/protocol.md, "cleanup")
 * on the Unix socket of the cleanup service, private/cleanup relative to
 * the queue directory (every daemon runs with the queue directory as its
 * working directory, chrooted or not):
 *
 *   client                                  cleanup
 *   request=open + envelope attributes  ->
 *                                       <-  status=ok queue_id=ID
 *                                           (or status=defer + reason)
 *   request=rcpt address= [orcpt=] [notify=]     (one per recipient)
 *   request=data data=BYTES                      (any number)
 *   request=end                         ->
 *                                       <-  status=ok|hold|discard|
 *                                           reject|defer, queue_id, code,
 *                                           dsn, text
 *   (or request=abort: the temporary file goes, no reply)
 *
 * Nothing is answered between open and end, so a client never waits
 * inside a message: it streams, and cleanup reads on.  A problem that
 * cleanup finds early (a header check that rejects, a write error) is kept
 * and reported at end; the rest of the content is read and dropped.
 *
 * Content is the message as it will be stored: lines ended by LF (smtpd
 * has turned CRLF into LF and undone dot-stuffing), header then body.
 * Chunks may split lines anywhere; cleanup reassembles them.
 *
 * Envelope attributes of the open request (all optional but sender; a
 * reader ignores what it does not know):
 *   sender          envelope sender, "" for the null sender
 *   flags           decimal CLEANUP_FLAG_* bits
 *   origin          "smtpd", "pickup", "sendmail", "bounce" (for the log)
 *   client_name, client_address, client_port, helo_name
 *   protocol        "SMTP", "ESMTP", "ESMTPS", "ESMTPA", "ESMTPSA", "LMTP"...
 *                   as RFC 3848 names them for Received: "with"
 *   sasl_method, sasl_username
 *   tls             e.g. "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384
 *                   (256/256 bits)", for Received:
 *   encoding        "7bit", "8bitmime", "binarymime" (BODY=)
 *   smtputf8        "1" when SMTPUTF8 was given
 *   dsn_envid       ENVID, xtext decoded
 *   dsn_ret         "FULL" or "HDRS"
 *   size            the client's SIZE= declaration, decimal
 *   local_user      the submitting local user (pickup), for Received:
 *   full_name       sendmail -F: the name in a From: that cleanup adds
 *   extract_notify  sendmail -N with -t: NOTIFY of the recipients taken
 *                   from the header
 *   received_by     the receiving host name (default myhostname)
 * Recipient attributes: address, orcpt ("TYPE;ADDRESS", RFC 3461 decoded),
 * notify ("NEVER" or a comma list of SUCCESS, FAILURE, DELAY).
 *
 * Usage:
 *     struct cleanup_client c;
 *     struct record env;  record_init(&env);
 *     record_add_str(&env, "sender", "a@example.com"); ...
 *     if (cleanup_client_open(&c, CLEANUP_SOCKET, timeout_ms, &env,
 *                             &error) != 0)
 *         ... 451 4.3.0, log error ...
 *     log_info("%s: client=...", c.queue_id);
 *     cleanup_client_add_recipient(&c, "b@example.org", NULL, NULL);
 *     while (...) cleanup_client_write(&c, bytes, n);
 *     struct cleanup_result res;  cleanup_result_init(&res);
 *     if (cleanup_client_finish(&c, &res, &error) != 0)
 *         ... 451 4.3.0: the message is not queued ...
 *     switch (res.status) { ... reply res.code res.dsn res.text ... }
 *     cleanup_result_free(&res);
 *
 * Every call returns 0 or -1 with the reason in error; after -1 the
 * connection is closed and c released, and the message is NOT queued
 * (cleanup removes its temporary file when the client goes away without
 * end).  Only CLEANUP_OK and CLEANUP_HOLD from finish mean "on disk".
 */
#ifndef POSTINO_CLEANUP_CLIENT_H
#define POSTINO_CLEANUP_CLIENT_H

#include <stddef.h>

#include "buf.h"
#include "queue_file.h"
#include "record.h"
#include "stream.h"

#define CLEANUP_SOCKET "private/cleanup"
/* The largest record either side sends or accepts. */
#define CLEANUP_RECORD_MAX (QUEUE_BLOCK_MAX + 4096)

/* flags of the open request */
enum {
    CLEANUP_FLAG_SUBMISSION = 1 << 0, /* local or authenticated submission:
                                       * add Message-ID and Date when
                                       * missing (RFC 6409 section 8) */
    CLEANUP_FLAG_NO_CHECKS = 1 << 1,  /* skip header_checks, body_checks
                                       * (bounces, re-injection) */
    CLEANUP_FLAG_NO_REWRITE = 1 << 2, /* skip canonical and virtual alias
                                       * rewriting (already done) */
    CLEANUP_FLAG_EXTRACT = 1 << 3,    /* recipients from To/Cc/Bcc headers
                                       * (sendmail -t), Bcc removed */
};

enum cleanup_status {
    CLEANUP_OK,      /* queued in incoming/: 250 */
    CLEANUP_HOLD,    /* queued in hold/ by a HOLD action: 250 */
    CLEANUP_DISCARD, /* accepted and dropped by a DISCARD action: 250 */
    CLEANUP_REJECT,  /* permanent: code 5xx */
    CLEANUP_DEFER,   /* temporary: code 4xx (disk full, table error) */
};

struct cleanup_result {
    enum cleanup_status status;
    char queue_id[QUEUE_ID_SIZE];
    int code;          /* SMTP reply code, e.g. 250, 550, 452 */
    char dsn[16];      /* RFC 3463 status, e.g. "2.0.0", "4.3.1" */
    struct buf text;   /* reply text without code and dsn */
};

struct cleanup_client {
    int fd;
    struct stream stream;
    struct record record;
    struct buf pending;   /* content not yet sent */
    char queue_id[QUEUE_ID_SIZE];
};

void cleanup_result_init(struct cleanup_result *r);
void cleanup_result_free(struct cleanup_result *r);
/* A name for the log: "ok", "hold", "discard", "reject", "defer". */
const char *cleanup_status_name(enum cleanup_status s);

/* Connects to socket_path, sends the open request with the attributes of
 * envelope (which must hold "sender"), waits for the queue ID. */
int cleanup_client_open(struct cleanup_client *c, const char *socket_path,
                        int timeout_ms, const struct record *envelope,
                        struct buf *error);
/* orcpt and notify may be NULL. */
int cleanup_client_add_recipient(struct cleanup_client *c,
                                 const char *address, const char *orcpt,
                                 const char *notify, struct buf *error);
/* Content bytes, buffered and sent in records of QUEUE_BLOCK_MAX. */
int cleanup_client_write(struct cleanup_client *c, const void *data,
                         size_t len, struct buf *error);
/* Sends end, reads cleanup's verdict into result, closes. */
int cleanup_client_finish(struct cleanup_client *c,
                          struct cleanup_result *result, struct buf *error);
/* Tells cleanup to drop the message (best effort) and closes. */
void cleanup_client_abort(struct cleanup_client *c);

#endif
