/*
 * listen_socket - the addresses of master.cf services and the listening
 * sockets the master opens for them.
 *
 * An inet service name is "port", "host:port", "[ipv6]:port" or "*:port".
 * The port is a number or a name from /etc/services.  The host must be a
 * numeric address, "*" (all addresses) or "localhost" (the loopback
 * addresses): names are never resolved, so opening a service never waits for
 * DNS.  A name without a host listens on main.cf's inet_interfaces ("all",
 * "loopback-only" or numeric addresses), filtered by inet_protocols ("all",
 * "ipv4", "ipv6").
 *
 * listen_resolve_inet() turns a name into addresses and reports a clear
 * error; listen_open_inet() and listen_open_unix() create sockets that are
 * non-blocking and close-on-exec, listening with the given backlog.  A unix
 * socket replaces a stale file of the same name and is made mode 0666 (its
 * directory, private/ or public/, controls who may connect).
 *
 * Usage:
 *     struct listen_addr addrs[LISTEN_ADDR_MAX]; size_t n; struct buf err;
 *     if (listen_resolve_inet("127.0.0.1:2525", &ifaces, &protos, addrs,
 *                             &n, &err) != 0) log_error("%s", err.data);
 *     int fd = listen_open_inet(&addrs[0], 128, &err);
 */
#ifndef POSTINO_LISTEN_SOCKET_H
#define POSTINO_LISTEN_SOCKET_H

#include <stddef.h>
#include <sys/socket.h>

#include "buf.h"
#include "config.h"

#define LISTEN_ADDR_MAX 16

struct listen_addr {
    struct sockaddr_storage sa;
    socklen_t len;
    char text[64]; /* "127.0.0.1:25", "[::1]:25" for messages */
};

int listen_resolve_inet(const char *name, const struct text_list *interfaces,
                        const struct text_list *protocols,
                        struct listen_addr *addrs, size_t *count,
                        struct buf *error);
int listen_open_inet(const struct listen_addr *addr, int backlog,
                     struct buf *error);
int listen_open_unix(const char *path, int backlog, struct buf *error);

#endif
