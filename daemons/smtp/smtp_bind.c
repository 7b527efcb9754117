/*
 * smtp_bind - the local address of the SMTP client's connections
 * (interface: smtp.h).
 *
 * smtp_bind_address (IPv4) and smtp_bind_address6 (IPv6), as in Postfix:
 * a socket of one family is bound to the address set for that family
 * before it connects; a connection of the other family is left to the
 * kernel.  When a parameter is empty and inet_interfaces lists exactly
 * one address of that family, not a loopback one, that address is used
 * instead.  The values are read once, when the daemon starts; one that
 * is not an address of its family is a fatal configuration error.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "log.h"
#include "smtp.h"

static int is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
    }
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
    return IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
}

/* b as the address ss of len bytes, with its text. */
static void bind_set(struct smtp_bind *b, const struct sockaddr_storage *ss,
                     socklen_t len)
{
    const void *raw = ss->ss_family == AF_INET
        ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
        : (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
    memset(b, 0, sizeof(*b));
    if (inet_ntop(ss->ss_family, raw, b->text, sizeof(b->text)) == NULL)
        return;
    memcpy(&b->sa, ss, len);
    b->len = len;
}

/* The address of a family in inet_interfaces, for the parameter of that
 * family that is empty, when it is the only one of its family and not a
 * loopback address.  "all", "loopback-only" or a host name leave both
 * unset: the kernel chooses. */
static void bind_from_interfaces(struct smtp_bind *v4, struct smtp_bind *v6,
                                 struct config *conf)
{
    struct text_list list;
    config_get_list(conf, "inet_interfaces", &list);
    struct sockaddr_storage only[2];
    memset(only, 0, sizeof(only));
    socklen_t only_len[2] = { 0, 0 };
    size_t count[2] = { 0, 0 };
    int other = 0;
    for (size_t i = 0; i < list.count; i++) {
        struct sockaddr_storage ss;
        socklen_t len;
        if (smtp_dns_parse_numeric(list.items[i], &ss, &len) != 0) {
            other = 1;
            continue;
        }
        size_t k = ss.ss_family == AF_INET ? 0 : 1;
        if (count[k]++ == 0) {
            only[k] = ss;
            only_len[k] = len;
        }
    }
    text_list_free(&list);
    if (other)
        return;
    struct smtp_bind *bind_of[2] = { v4, v6 };
    for (size_t k = 0; k < 2; k++)
        if (bind_of[k]->len == 0 && count[k] == 1 && !is_loopback(&only[k]))
            bind_set(bind_of[k], &only[k], only_len[k]);
}

/* One parameter: empty, or an address of family; fatal otherwise. */
static void bind_param(struct smtp_bind *b, struct config *conf,
                       const char *name, int family)
{
    const char *value = config_get_str(conf, name);
    memset(b, 0, sizeof(*b));
    if (value[0] == '\0')
        return;
    struct sockaddr_storage ss;
    socklen_t len;
    if (smtp_dns_parse_numeric(value, &ss, &len) != 0 ||
        ss.ss_family != family)
        log_fatal("%s: not an %s address: \"%s\"", name,
                  family == AF_INET ? "IPv4" : "IPv6", value);
    bind_set(b, &ss, len);
}

void smtp_bind_init(struct smtp_config *cfg, struct config *conf)
{
    bind_param(&cfg->bind4, conf, "smtp_bind_address", AF_INET);
    bind_param(&cfg->bind6, conf, "smtp_bind_address6", AF_INET6);
    bind_from_interfaces(&cfg->bind4, &cfg->bind6, conf);
}

const char *smtp_bind_socket(const struct smtp_config *cfg, int fd,
                             int family)
{
    const struct smtp_bind *b = family == AF_INET ? &cfg->bind4
                              : family == AF_INET6 ? &cfg->bind6 : NULL;
    if (b == NULL || b->len == 0)
        return NULL;
    if (bind(fd, (const struct sockaddr *)&b->sa, b->len) != 0)
        return b->text;
    return NULL;
}
