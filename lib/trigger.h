/*
 * trigger - a best-effort wakeup of a local service, such as cleanup's
 * "a new message is in incoming/" to the queue manager, sent without
 * blocking and without a log line when the service does not listen.
 *
 * When the socket does not exist or nobody listens on it (ENOENT,
 * ECONNREFUSED), the service is taken to be absent and no connection is
 * attempted again for TRIGGER_ABSENT_RETRY_MS: a process that receives
 * hundreds of messages a second would otherwise pay for a socket, a
 * failing connect and a close with each of them.  So a service must look
 * for work when it starts (a queue manager scans incoming/), and a wakeup
 * skipped meanwhile delays nothing.
 *
 * Usage:
 *     struct trigger qmgr;
 *     trigger_init(&qmgr, "public/qmgr");
 *     ...
 *     trigger_send(&qmgr, "I", 1);
 */
#ifndef POSTINO_TRIGGER_H
#define POSTINO_TRIGGER_H

#include <stddef.h>

#define TRIGGER_ABSENT_RETRY_MS 1000

struct trigger {
    const char *socket_path; /* a Unix socket, not copied */
    long long absent_until;  /* CLOCK_MONOTONIC ms; 0: try at once */
};

void trigger_init(struct trigger *t, const char *socket_path);
/* Connects, writes the bytes and closes; 0 when they were written, -1
 * when not (errno says why; log_debug has the details). */
int trigger_send(struct trigger *t, const void *bytes, size_t len);

#endif
