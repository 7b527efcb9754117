/*
 * listen_socket - service addresses and listening sockets.  See the header.
 */
#include "listen_socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "text.h"

static int listen_parse_port(const char *text, unsigned *port,
                             struct buf *error)
{
    long value;
    if (text_parse_long(text, 1, 65535, &value) == 0) {
        *port = (unsigned)value;
        return 0;
    }
    if (text[0] != '\0' && strspn(text, "0123456789") == strlen(text)) {
        buf_printf(error, "bad port number \"%s\" (1..65535)", text);
        return -1;
    }
    /* A service name from /etc/services, a local file: no DNS. */
    struct servent *se = getservbyname(text, "tcp");
    if (se == NULL) {
        buf_printf(error, "unknown service name \"%s\" (not in "
                   "/etc/services)", text);
        return -1;
    }
    *port = ntohs((unsigned short)se->s_port);
    return 0;
}

static int listen_add(struct listen_addr *addrs, size_t *count, int family,
                      const char *host, unsigned port, struct buf *error)
{
    if (*count >= LISTEN_ADDR_MAX) {
        buf_printf(error, "too many addresses (at most %d)", LISTEN_ADDR_MAX);
        return -1;
    }
    struct listen_addr *a = &addrs[*count];
    memset(a, 0, sizeof(*a));
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&a->sa;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((unsigned short)port);
        if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
            buf_printf(error, "bad IPv4 address \"%s\"", host);
            return -1;
        }
        a->len = sizeof(*sin);
        snprintf(a->text, sizeof(a->text), "%s:%u", host, port);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->sa;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((unsigned short)port);
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
            buf_printf(error, "bad IPv6 address \"%s\"", host);
            return -1;
        }
        a->len = sizeof(*sin6);
        snprintf(a->text, sizeof(a->text), "[%s]:%u", host, port);
    }
    (*count)++;
    return 0;
}

struct listen_protocols {
    int ipv4;
    int ipv6;
};

static int listen_parse_protocols(const struct text_list *protocols,
                                  struct listen_protocols *p,
                                  struct buf *error)
{
    p->ipv4 = p->ipv6 = 0;
    for (size_t i = 0; i < protocols->count; i++) {
        const char *word = protocols->items[i];
        if (text_equal_nocase(word, "all"))
            p->ipv4 = p->ipv6 = 1;
        else if (text_equal_nocase(word, "ipv4"))
            p->ipv4 = 1;
        else if (text_equal_nocase(word, "ipv6"))
            p->ipv6 = 1;
        else {
            buf_printf(error, "inet_protocols: unknown protocol \"%s\" "
                       "(all, ipv4 or ipv6)", word);
            return -1;
        }
    }
    if (!p->ipv4 && !p->ipv6)
        p->ipv4 = p->ipv6 = 1;
    return 0;
}

/* One host word: "*", "all", "localhost", "loopback-only", or an address. */
static int listen_add_host(const char *host, unsigned port,
                           const struct listen_protocols *p,
                           struct listen_addr *addrs, size_t *count,
                           struct buf *error)
{
    if (strcmp(host, "*") == 0 || text_equal_nocase(host, "all")) {
        if (p->ipv4 && listen_add(addrs, count, AF_INET, "0.0.0.0", port,
                                  error) != 0)
            return -1;
        if (p->ipv6 && listen_add(addrs, count, AF_INET6, "::", port,
                                  error) != 0)
            return -1;
        return 0;
    }
    if (text_equal_nocase(host, "localhost") ||
        text_equal_nocase(host, "loopback-only")) {
        if (p->ipv4 && listen_add(addrs, count, AF_INET, "127.0.0.1", port,
                                  error) != 0)
            return -1;
        if (p->ipv6 && listen_add(addrs, count, AF_INET6, "::1", port,
                                  error) != 0)
            return -1;
        return 0;
    }
    char bare[64];
    size_t len = strlen(host);
    if (host[0] == '[' && len > 2 && host[len - 1] == ']') {
        if (len - 2 >= sizeof(bare)) {
            buf_printf(error, "bad IPv6 address \"%s\"", host);
            return -1;
        }
        memcpy(bare, host + 1, len - 2);
        bare[len - 2] = '\0';
        return listen_add(addrs, count, AF_INET6, bare, port, error);
    }
    struct in6_addr scratch;
    if (inet_pton(AF_INET6, host, &scratch) == 1)
        return listen_add(addrs, count, AF_INET6, host, port, error);
    if (inet_pton(AF_INET, host, &scratch) == 1)
        return listen_add(addrs, count, AF_INET, host, port, error);
    buf_printf(error, "\"%s\" is not a numeric address: host names are not "
               "resolved here, write the address", host);
    return -1;
}

int listen_resolve_inet(const char *name, const struct text_list *interfaces,
                        const struct text_list *protocols,
                        struct listen_addr *addrs, size_t *count,
                        struct buf *error)
{
    *count = 0;
    struct listen_protocols p;
    if (listen_parse_protocols(protocols, &p, error) != 0)
        return -1;
    char host[128];
    const char *port_text = name;
    host[0] = '\0';
    const char *colon = strrchr(name, ':');
    if (colon != NULL) {
        size_t host_len = (size_t)(colon - name);
        if (host_len == 0 || host_len >= sizeof(host)) {
            buf_printf(error, "bad service address \"%s\"", name);
            return -1;
        }
        memcpy(host, name, host_len);
        host[host_len] = '\0';
        port_text = colon + 1;
        if (strchr(host, ':') != NULL && host[0] != '[') {
            buf_printf(error, "bad service address \"%s\": write an IPv6 "
                       "address in brackets, [::1]:25", name);
            return -1;
        }
    }
    unsigned port;
    if (listen_parse_port(port_text, &port, error) != 0)
        return -1;
    if (host[0] != '\0')
        return listen_add_host(host, port, &p, addrs, count, error);
    if (interfaces->count == 0)
        return listen_add_host("all", port, &p, addrs, count, error);
    for (size_t i = 0; i < interfaces->count; i++)
        if (listen_add_host(interfaces->items[i], port, &p, addrs, count,
                            error) != 0)
            return -1;
    return 0;
}

int listen_open_inet(const struct listen_addr *addr, int backlog,
                     struct buf *error)
{
    int family = addr->sa.ss_family;
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        buf_printf(error, "socket for %s: %s", addr->text, strerror(errno));
        return -1;
    }
    int on = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        (family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) != 0)) {
        buf_printf(error, "setsockopt for %s: %s", addr->text,
                   strerror(errno));
        close(fd);
        return -1;
    }
    if (bind(fd, (const struct sockaddr *)&addr->sa, addr->len) != 0 ||
        listen(fd, backlog) != 0) {
        buf_printf(error, "bind %s: %s", addr->text, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int listen_open_unix(const char *path, int backlog, struct buf *error)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (text_copy(sun.sun_path, sizeof(sun.sun_path), path) != 0) {
        buf_printf(error, "socket path too long (at most %zu bytes): %s",
                   sizeof(sun.sun_path) - 1, path);
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        buf_printf(error, "socket %s: %s", path, strerror(errno));
        return -1;
    }
    if (unlink(path) != 0 && errno != ENOENT) {
        buf_printf(error, "remove stale socket %s: %s", path,
                   strerror(errno));
        close(fd);
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
        chmod(path, 0666) != 0 || listen(fd, backlog) != 0) {
        buf_printf(error, "bind %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}
