/*
 * master_service - one master.cf service as the master runs it: its
 * listening sockets, its children, the status pipe they report on, its
 * throttle and its wakeup timer.
 *
 * The master creates a service from a master.cf entry with
 * master_service_create(), which opens the sockets.  From then on the
 * service reacts to events by itself: when a connection waits and no child
 * is available, it spawns one (up to maxproc), unless the service is
 * throttled; children mark themselves busy and idle on the service's
 * status board and write on the status pipe when the master must know
 * (status_board.h); the master hands every reaped child to
 * master_service_reap().
 *
 * On reload a service is either kept (master_service_update: same socket,
 * new command and limits; the old children finish their connection and
 * exit) or removed (master_service_free with retire: sockets closed, the
 * children finish and exit).  Children that were told to finish move to
 * the master's retired list, which master_service_reap() also searches.
 */
#ifndef POSTINO_MASTER_SERVICE_H
#define POSTINO_MASTER_SERVICE_H

#include <stddef.h>
#include <sys/types.h>

#include "config.h"
#include "event.h"
#include "listen_socket.h"
#include "master_cf.h"
#include "status_board.h"

struct master_child {
    pid_t pid;
    long slot;                /* on the service's status board */
    unsigned long use_count;
    struct master_child *next;
};

/* What every service shares: the configuration and the event loop. */
struct master_context {
    struct event_loop *loop;
    struct config *cfg;
    const char *config_dir;
    int log_stderr;
    int verbose;
    int stopping;
    struct master_child *retired; /* told to finish, not yet reaped */
};

struct master_service {
    struct master_context *ctx;
    char *name;
    enum master_service_type type;
    char *label;              /* "smtp/inet" for messages */
    /* Points into the master's current master_cf, which outlives it. */
    const struct master_service_entry *entry;
    char *command_path;
    long max_process;         /* 0: no limit */
    int listen_fds[LISTEN_ADDR_MAX];
    size_t listen_count;
    char *socket_path;        /* unix services */
    char *address_key;        /* what the sockets are bound to */
    int status_fds[2];        /* read end: master; write end: children */
    struct status_board *board; /* which children are busy */
    struct master_child *children;
    unsigned total;
    int watching;             /* listen fds in the event loop */
    int used;                 /* a child has taken a connection */
    int throttled;
    unsigned failures;        /* consecutive bad starts */
    long throttle_timer;
    long wakeup_timer;
    long long limit_warned_ms; /* last process-limit warning */
    struct master_service *next;
};

/* Returns NULL after logging why (bad address, bind failure, ...). */
struct master_service *master_service_create(
    struct master_context *ctx, const struct master_service_entry *entry);
/* The address a service would listen on, for matching on reload. */
int master_service_address_key(struct master_context *ctx,
                               const struct master_service_entry *entry,
                               struct buf *key);
/* Takes the new entry (same name, type and address): retires the current
 * children, and runs the new command and limits from now on. */
int master_service_update(struct master_service *svc,
                          const struct master_service_entry *entry);
/* Closes the sockets; children are retired (retire=1, they finish what
 * they do) or left for master_service_stop_all to end. */
void master_service_free(struct master_service *svc, int retire);
/* A child was reaped; returns 1 if it belonged to this service. */
int master_service_reap(struct master_service *svc, pid_t pid, int status);
/* Sends sig to every child of the service. */
void master_service_signal(struct master_service *svc, int sig);

#endif
