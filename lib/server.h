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
 *     over, tells the master when it is busy and when it is available, and
 *     calls the daemon for each connection (SERVER_SINGLE) or for each
 *     wakeup trigger (SERVER_TRIGGER: the bytes a client wrote, up to
 *     SERVER_TRIGGER_MAX, after which the connection is closed);
 *   - exits after max_use connections, or after max_idle seconds without
 *     one (unless spec->no_idle_exit), or when the master asks it to (it
 *     sends SIGHUP on reload and when the service is removed: the current
 *     connection is finished first), or when the master is gone.
 *
 * Arguments from the master (docs/protocol.md, "Master and child"):
 *     -c config_dir  -n service_name  -t inet|unix  -s listen_fd_count
 *     -S (log to stderr)  -u (drop to mail_owner)  -Z (chroot)  -v (verbose)
 *     -o name=value (repeatable), then the daemon's own arguments
 * Descriptor 3 is the status pipe to the master, 4.. the listening sockets.
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
};

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
};

struct server_spec {
    enum server_mode mode;
    void (*pre_drop)(struct server *srv); /* may be NULL */
    void (*init)(struct server *srv);     /* may be NULL */
    void (*service)(struct server *srv, int client_fd);   /* SINGLE */
    void (*trigger)(struct server *srv, const char *data,
                    size_t len);                          /* TRIGGER */
    int no_idle_exit;                     /* ignore max_idle */
};

int server_main(int argc, char **argv, const struct server_spec *spec);

/* True once the master asked this process to finish (reload, stop). */
int server_should_exit(const struct server *srv);

#endif
