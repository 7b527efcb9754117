/*
 * anvil_client - how smtpd asks the anvil service for a client's connection
 * count and its connection, message and recipient rates.
 *
 * One smtpd session holds one connection to anvil for its whole lifetime.
 * anvil counts the session as a concurrent connection from the moment it
 * answers connect until the client says disconnect or the socket closes,
 * whichever comes first; so a smtpd that crashes or is killed never leaves
 * a count behind.
 *
 * The conversation is the record protocol (docs/protocol.md, "anvil") on
 * the Unix socket ANVIL_SOCKET, relative to the queue directory:
 *
 *   client                                      anvil
 *   request=connect service=S client_address=A ->
 *                                           <-  status=ok count=N rate=M
 *   request=message                         ->
 *                                           <-  status=ok rate=M
 *   request=recipient                       ->
 *                                           <-  status=ok rate=M
 *   request=disconnect                      ->  (no reply; anvil closes)
 *
 * count is the number of sessions of (S, A) now open, this one included;
 * rate is the number of connects (messages, recipients) of (S, A) within
 * the last anvil_rate_time_unit, this one included.  smtpd compares them
 * with smtpd_client_connection_count_limit and friends; anvil itself
 * enforces nothing.
 *
 * Usage:
 *     struct anvil_client a;
 *     anvil_client_init(&a);
 *     long count, rate;
 *     if (anvil_client_connect(&a, ANVIL_SOCKET, "smtp", "192.0.2.1",
 *                              1000, &count, &rate, &error) != 0)
 *         log_warn("anvil: %s; connection limits are not enforced",
 *                  buf_cstr(&error));
 *     else if (count > limit) ... 421 4.7.0 Too many connections ...
 *     ... per MAIL FROM: anvil_client_message(&a, &rate, &error) ...
 *     ... per RCPT TO:   anvil_client_recipient(&a, &rate, &error) ...
 *     anvil_client_disconnect(&a);
 *
 * Every call returns 0 or -1 with the reason in error.  After -1 the
 * connection to anvil is closed; later calls fail at once with "not
 * connected" (the session goes on without limits, as Postfix's smtpd does
 * when anvil is unreachable).  anvil_client_disconnect may be called in any
 * state, also after a failure or on a client never connected, and more
 * than once; it releases everything.  A struct anvil_client must be set up
 * with anvil_client_init before any other call.
 */
#ifndef POSTINO_ANVIL_CLIENT_H
#define POSTINO_ANVIL_CLIENT_H

#include "buf.h"
#include "record.h"
#include "stream.h"

#define ANVIL_SOCKET "private/anvil"
/* The largest record either side sends or accepts. */
#define ANVIL_RECORD_MAX 4096
/* Longest service name and client address anvil accepts. */
#define ANVIL_SERVICE_MAX 100
#define ANVIL_ADDRESS_MAX 100

struct anvil_client {
    int fd;               /* -1 when not connected */
    struct stream stream;
    struct record record;
};

void anvil_client_init(struct anvil_client *a);

int anvil_client_connect(struct anvil_client *a, const char *socket_path,
                         const char *service, const char *client_address,
                         int timeout_ms, long *count, long *rate,
                         struct buf *error);
int anvil_client_message(struct anvil_client *a, long *rate,
                         struct buf *error);
int anvil_client_recipient(struct anvil_client *a, long *rate,
                           struct buf *error);
void anvil_client_disconnect(struct anvil_client *a);

#endif
