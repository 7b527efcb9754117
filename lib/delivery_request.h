/*
 * delivery_request - the delivery agent's side of qmgr's delivery protocol
 * (docs/protocol.md, "Delivery agents"): read one request (a message, a
 * next hop and its recipients), read the message content from the queue
 * file, and send one result per recipient, each logged in Postfix's shape
 * (`ID: to=<...>, relay=..., delay=..., delays=a/b/c/d, dsn=..., status=...`).
 *
 * Every recipient gets exactly one result: delivery_request_finish() answers
 * those the agent left without one as deferred, so a bug or an early
 * return in an agent never makes qmgr lose a recipient.
 *
 * One connection may carry several requests, one after the other: an
 * agent that serves them through delivery_request_serve_all() tells qmgr
 * with each status=done whether it takes another (more=1), and qmgr may
 * then have the next one waiting in the socket, so that the agent starts
 * it the moment the last one is done.
 *
 * An agent that makes its files durable in groups (lib/sync_group.h)
 * gives serve_all a commit function.  Its results are then held, neither
 * sent nor logged: while the next request is already waiting,
 * serve_all serves that one too (at most DELIVERY_BATCH_MAX in all), then
 * calls commit once, and sends each request's results and status=done in
 * order.  A result given with awaits_commit (a file in the group) is sent
 * as given when commit succeeds, and as a deferral with commit's reason
 * when it fails.  Before slow work (a command, a message sent on) the
 * agent calls delivery_request_commit(), so that the results of the
 * requests before never wait behind it.
 *
 * Usage, in a SERVER_SINGLE service:
 *     static void serve(void *ctx, struct delivery_request *req)
 *     {
 *         ... deliver, delivery_request_reply() for each recipient ...
 *     }
 *     delivery_request_serve_all(srv, client_fd, "local", serve, ctx);
 *
 * or, for one request a connection:
 *     struct delivery_request req;
 *     struct buf error;
 *     if (delivery_request_read(&req, client_fd, "local", &error) != 0) {
 *         log_warn("%s", buf_cstr(&error)); ... close ...
 *     }
 *     struct delivery_content content;
 *     if (delivery_content_open(&content, &req, &error) != 0) ...defer all...
 *     while ((rc = delivery_content_next(&content, &chunk)) == 1) write...;
 *     delivery_content_close(&content);
 *     struct delivery_result res = { .status = DELIVERY_SENT, .dsn = "2.0.0",
 *         .text = "delivered to maildir", .relay = "local" };
 *     delivery_request_reply(&req, i, &res);
 *     delivery_request_finish(&req);   (status=done, flush)
 *     delivery_request_free(&req);
 */
#ifndef POSTINO_DELIVERY_REQUEST_H
#define POSTINO_DELIVERY_REQUEST_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "record.h"
#include "stream.h"

#define DELIVERY_RECORD_MAX (64 * 1024)
#define DELIVERY_RECIPIENT_MAX 100000
/* How long an agent waits for qmgr's request, in milliseconds. */
#define DELIVERY_READ_TIMEOUT_MS (100 * 1000)

enum delivery_status {
    DELIVERY_SENT,
    DELIVERY_DEFERRED,
    DELIVERY_BOUNCED,
};

struct delivery_recipient {
    long index;
    char *address;
    char *orcpt;          /* "rfc822;ADDR" or NULL */
    char *notify;         /* NEVER / SUCCESS,FAILURE,DELAY or NULL */
    long offset;          /* of the R record, echoed to qmgr */
    int answered;
    struct delivery_held *held;   /* a result not sent yet, or NULL */
};

struct delivery_request {
    struct stream *stream;      /* the connection to qmgr */
    struct stream own_stream;   /* delivery_request_read's */
    int owns_stream;
    int more;                   /* status=done says more=0 or more=1;
                                 * -1 (one request a connection): no
                                 * more attribute */
    const char *transport;      /* the agent's name, for the log */
    struct record envelope;     /* the "deliver" record, all attributes */
    const char *queue_id;       /* these point into envelope */
    const char *queue_file;
    const char *sender;
    const char *nexthop;
    off_t content_offset;
    long content_size;
    double arrival_time;
    double active_time;
    double dispatch_time;
    double received_time;       /* when the agent had the whole request */
    int holding;                /* results wait for the agent's commit */
    struct delivery_batch *batch;   /* serve_all's, with holding */
    struct delivery_recipient *recipients;
    size_t recipient_count;
};

struct delivery_result {
    enum delivery_status status;
    const char *dsn;            /* "2.0.0" */
    const char *text;           /* "delivered to maildir" */
    const char *action;         /* sent: delivered (default), relayed, expanded */
    const char *relay;          /* "local", "host[addr]:port" */
    const char *remote_mta;     /* "dns; host" or NULL */
    const char *diagnostic;     /* "smtp; 550 ..." or NULL */
    int destination_failure;    /* the next hop as a whole failed
                                 * (sent as destination_failure=1) */
    int dsn_passed;             /* sent: the next hop took the DSN request
                                 * (NOTIFY), so no success notice from
                                 * here (sent as dsn_passed=1) */
    int awaits_commit;          /* sent: true only once the agent's commit
                                 * succeeds (not a protocol attribute) */
};

/* Reads one whole request from fd, which stays the caller's (the server
 * skeleton closes it after the service returns).  0, or -1 with the reason
 * in error (the caller logs it and frees req). */
int delivery_request_read(struct delivery_request *req, int fd,
                          const char *transport, struct buf *error);
struct server;
typedef void delivery_serve_fn(void *ctx, struct delivery_request *req);
/* Makes durable what the requests served since the last commit left
 * pending.  0, or -1 with a temporary code in *dsn and the reason in why
 * (each result given with awaits_commit then goes as that deferral). */
typedef int delivery_commit_fn(void *ctx, const char **dsn,
                               struct buf *why);
/* The most requests one commit covers. */
#define DELIVERY_BATCH_MAX 8
/* Serves the requests qmgr sends on fd (which stays the caller's), one
 * after another: serve(ctx, req) delivers, then delivery_request_finish
 * answers what serve left and sends status=done, with more=1 while the
 * process may take another request (server_single_can_take_more).  With
 * commit (else NULL), results wait for it as said above.  Ends when qmgr
 * closes the connection, a request is malformed (logged), more=0 was
 * sent, or qmgr closed its end before the agent began a request: that
 * request is not served, as the qmgr that takes up the queue asks for
 * it again. */
void delivery_request_serve_all(struct server *srv, int fd,
                                const char *transport,
                                delivery_serve_fn *serve,
                                delivery_commit_fn *commit, void *ctx);
/* In serve, with a commit function: commits now, then sends every result
 * held so far (and status=done of each request served before req). */
void delivery_request_commit(struct delivery_request *req);
/* An optional envelope attribute (dsn_envid, dsn_ret, encoding, ...), or
 * NULL. */
const char *delivery_request_attr(const struct delivery_request *req,
                                  const char *name);
/* Sends and logs the result of recipient i (holds it, while results wait
 * for a commit).  0, or -1 when qmgr is gone (nothing more can be told;
 * the caller may stop). */
int delivery_request_reply(struct delivery_request *req, size_t i,
                           const struct delivery_result *res);
/* The same result for every recipient not yet answered. */
int delivery_request_reply_all(struct delivery_request *req,
                               const struct delivery_result *res);
/* Defers every recipient still without a result (4.3.0, "delivery agent
 * gave no result"), then sends status=done and flushes.  0 or -1. */
int delivery_request_finish(struct delivery_request *req);
void delivery_request_free(struct delivery_request *req);

/* The message content (header and body, LF line ends, dot-unstuffed), read
 * from the queue file in the chunks cleanup wrote.  The file is read a
 * window at a time (one read for most messages, however often the
 * content is gone through); it must not change meanwhile (the content of
 * a queue file never does). */
#define DELIVERY_CONTENT_WINDOW (64 * 1024)

struct delivery_content {
    int fd;
    int owns_fd;
    off_t offset;               /* of the next record */
    int done;
    struct buf window;          /* the file's bytes from window_start */
    off_t window_start;
};

/* Opens req->queue_file read-only at content_offset.  0, or -1 with the
 * reason in error. */
int delivery_content_open(struct delivery_content *c,
                          const struct delivery_request *req,
                          struct buf *error);
/* The same from a descriptor the caller keeps. */
void delivery_content_attach(struct delivery_content *c, int fd,
                             off_t content_offset);
/* 1 with the next chunk in *data and *len (valid until the next call), 0 at
 * the end of the content, -1 on a read error or a damaged file (error). */
int delivery_content_next(struct delivery_content *c, const char **data,
                          size_t *len, struct buf *error);
/* Back to the start of the content (a second pass, e.g. a retry). */
void delivery_content_rewind(struct delivery_content *c, off_t content_offset);
void delivery_content_close(struct delivery_content *c);

/* Appends one of Postfix's delay figures (two decimals, trailing zeros
 * cut, "0" under 5 ms): what the delay= and delays= fields show. */
void delivery_format_delay(struct buf *out, double seconds);

/* Seconds since the epoch, with microseconds, as the protocol sends them. */
double delivery_time_now(void);

#endif
