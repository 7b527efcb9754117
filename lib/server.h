/*
 * server - the skeleton every daemon under the master stands on.
 *
 * A daemon's main is one call to server_main() with a table that says what
 * the daemon does; the skeleton does everything else:
 *   - parses the arguments the master passes (see below) and reads main.cf,
 *     applying the service's "-o name=value" overrides from master.cf;
 *   - opens logging: stderr when the master runs in the foreground, else
 *     maillog_file when set, else syslog;
 *   - calls spec->pre_drop (open what needs root), drops privileges (to
 *     mail_owner, all capabilities cleared, NO_NEW_PRIVS, chroot when the
 *     service's chroot column says so), then calls spec->init;
 *   - waits for connections on the listening sockets the master handed
 *     over, marks itself busy and idle on the service's status board (and
 *     tells the master on the status pipe when it needs to know), and
 *     calls the daemon for each connection (SERVER_SINGLE) or for each
 *     wakeup trigger (SERVER_TRIGGER: the bytes a client wrote, up to
 *     SERVER_TRIGGER_MAX, after which the connection is closed), or hands
 *     each new connection to the daemon and serves them all at once from
 *     one event loop (SERVER_MULTI, below);
 *   - exits after max_use connections (SERVER_SINGLE: and the extra
 *     requests a connection carried, server_single_took_more), or after
 *     max_idle seconds without one (unless spec->no_idle_exit), or when
 *     the master asks it to (it sends SIGHUP on reload and when the
 *     service is removed: the current connection is finished first), or
 *     when the master is gone.
 *
 * SERVER_MULTI: one process serves many connections at once (anvil, and
 * later the qmgr).  The skeleton owns an event loop (srv->loop) on which it
 * watches the listening sockets; spec->accept(srv, fd) gets each new
 * connection, non-blocking, and the daemon watches it on srv->loop itself.
 * The daemon must never block: it reads and writes what the descriptor
 * allows and waits for the loop to call it again.  When it is done with a
 * connection it calls server_multi_close(srv, fd), which unwatches and
 * closes it.  max_idle counts from the moment the last connection closed;
 * max_use counts connections, and the process exits once that many were
 * accepted and none is open (spec->no_use_limit: never).  When the master
 * asks the process to finish (SIGHUP) it exits at once, open connections
 * and all: its clients must treat a lost connection as the end of their
 * conversation.  spec->pre_exit, when set, runs before any such exit.
 *
 * Arguments from the master (docs/protocol.md, "Master and child"):
 *     -c config_dir  -n service_name  -t inet|unix  -s listen_fd_count
 *     -b status_board_slot  -S (log to stderr)  -u (drop to mail_owner)
 *     -Z (chroot)  -v (verbose)  -o name=value (repeatable), then the
 *     daemon's own arguments
 * Descriptor 3 is the status pipe to the master, 4.. the listening sockets,
 * and with -b the status board after them (status_board.h).
 *
 * Usage:
 *     static void echo_service(struct server *srv, int client_fd) { ... }
 *     int main(int argc, char **argv)
 *     {
 *         static const struct server_spec spec = {
 *             .mode = SERVER_SINGLE, .service = echo_service,
 *         };
 *         return server_main(argc, argv, &spec);
 *     }
 */
#ifndef POSTINO_SERVER_H
#define POSTINO_SERVER_H

#include <stddef.h>
#include <sys/types.h>

#include "config.h"

#define SERVER_STATUS_FD 3
#define SERVER_LISTEN_FD 4
#define SERVER_LISTEN_MAX 16
#define SERVER_TRIGGER_MAX 1024

/* The two words a child writes on the status pipe (with its pid). */
enum server_status {
    SERVER_STATUS_BUSY = 0,
    SERVER_STATUS_AVAILABLE = 1,
};

enum server_mode {
    SERVER_SINGLE,  /* one connection at a time */
    SERVER_TRIGGER, /* wakeup bytes, e.g. "W" from the master's timer */
    SERVER_MULTI,   /* many connections at once, on srv->loop */
};

struct event_loop;
struct server_multi;
struct status_board;

struct server {
    struct config *cfg;
    const char *config_dir;
    const char *service_name;
    const char *service_type;  /* "inet" or "unix" */
    int argc;                  /* the daemon's own arguments */
    char **argv;
    void *app;                 /* the daemon's state, set by its init */
    int listen_fds[SERVER_LISTEN_MAX];
    size_t listen_count;
    struct event_loop *loop;      /* SERVER_MULTI only, else NULL */
    struct server_multi *multi;   /* SERVER_MULTI: the skeleton's state */
    pid_t pid;                 /* this process, for the status messages */
    struct status_board *board; /* shared with the master, or NULL */
    long board_slot;           /* this process's slot on it */
    int reported_use;          /* the master knows we took a connection */
    long used;                 /* SERVER_SINGLE: connections and the
                                * extra requests they carried */
    long max_use;
};

struct server_spec {
    enum server_mode mode;
    void (*pre_drop)(struct server *srv); /* may be NULL */
    void (*init)(struct server *srv);     /* may be NULL */
    void (*service)(struct server *srv, int client_fd);   /* SINGLE */
    void (*trigger)(struct server *srv, const char *data,
                    size_t len);                          /* TRIGGER */
    int no_idle_exit;                     /* ignore max_idle */
    void (*accept)(struct server *srv, int client_fd);    /* MULTI */
    void (*pre_exit)(struct server *srv); /* MULTI, may be NULL */
    int no_use_limit;                     /* MULTI: ignore max_use */
};

int server_main(int argc, char **argv, const struct server_spec *spec);

/* True once the master asked this process to finish (reload, stop). */
int server_should_exit(const struct server *srv);

/* SERVER_SINGLE: may the current connection carry one more request (a
 * delivery agent's next request from qmgr)?  Not once max_use requests
 * were served or the master asked the process to finish.  A service that
 * takes another counts it with server_single_took_more. */
int server_single_can_take_more(const struct server *srv);
void server_single_took_more(struct server *srv);

/* SERVER_MULTI: the daemon is done with client_fd (from spec->accept);
 * the skeleton unwatches and closes it. */
void server_multi_close(struct server *srv, int client_fd);

#endif
