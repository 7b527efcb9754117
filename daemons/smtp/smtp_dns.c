/*
 * smtp_dns - where mail for a next hop goes: the MX records of a domain
 * (RFC 5321 section 5.1), or its own addresses when it has none, or the
 * addresses of a host given in brackets, as the list of addresses the
 * agent tries in order (interface: smtp.h, smtp_dns_route).
 *
 * Lookups go through the system resolver: res_nquery() of libresolv with
 * the state read from resolv.conf at start-up (smtp_host_lookup = dns),
 * or getaddrinfo() for the addresses (native, which also reads
 * /etc/hosts; MX records always come from DNS).  inet_protocols chooses
 * A and/or AAAA.  Postfix's rules and words:
 *   - MX sorted by preference, equal preferences shuffled;
 *   - a null MX (RFC 7505: one MX "." of preference 0) bounces 5.1.10;
 *   - an MX that is this host (myhostname, or an address of this host):
 *     it and every less preferred MX are dropped; when nothing more
 *     preferred is left, "mail for DOMAIN loops back to myself";
 *   - NXDOMAIN bounces 5.1.2, a temporary failure defers 4.4.3, both
 *     "Host or domain name not found. Name service error for name=N
 *     type=T: Host not found[, try again]".
 * At most smtp_mx_address_limit addresses are returned.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "smtp.h"
#include "text.h"

#define DNS_ANSWER_MAX 65536

/* The resolver state, per process; read in smtp_dns_init before the
 * privilege drop (resolv.conf stays readable, but this is done once). */
static struct __res_state dns_state;
static int dns_ready;

int smtp_dns_init(void)
{
    memset(&dns_state, 0, sizeof(dns_state));
    if (res_ninit(&dns_state) != 0)
        return -1;
    dns_ready = 1;
    return 0;
}

enum lookup_result { LOOKUP_OK, LOOKUP_NXDOMAIN, LOOKUP_NODATA,
                     LOOKUP_TEMP };

struct mx_host {
    char name[SMTP_HOST_MAX];
    int pref;
    unsigned rank;          /* random, to shuffle equal preferences */
};

static enum lookup_result dns_query(const char *name, int type,
                                    unsigned char *answer, int *len)
{
    if (!dns_ready && smtp_dns_init() != 0)
        return LOOKUP_TEMP;
    int n = res_nquery(&dns_state, name, ns_c_in, type, answer,
                       DNS_ANSWER_MAX);
    if (n >= 0) {
        /* A truncated answer reports its full size: parse what we have. */
        *len = n < DNS_ANSWER_MAX ? n : DNS_ANSWER_MAX;
        return LOOKUP_OK;
    }
    switch (dns_state.res_h_errno) {
    case HOST_NOT_FOUND: return LOOKUP_NXDOMAIN;
    case NO_DATA: return LOOKUP_NODATA;
    default: return LOOKUP_TEMP;
    }
}

static void dns_not_found(struct buf *why, const char *name,
                          const char *type, int temporary)
{
    buf_reset(why);
    buf_printf(why, "Host or domain name not found. Name service error for "
               "name=%s type=%s: Host not found%s", name, type,
               temporary ? ", try again" : "");
}

static int name_is(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 0 && a[la - 1] == '.')
        la--;
    if (lb > 0 && b[lb - 1] == '.')
        lb--;
    return la == lb && strncasecmp(a, b, la) == 0;
}

static int mx_compare(const void *x, const void *y)
{
    const struct mx_host *a = x, *b = y;
    if (a->pref != b->pref)
        return a->pref < b->pref ? -1 : 1;
    return a->rank < b->rank ? -1 : a->rank > b->rank;
}

/* The answer records of one type for name, each handed to take(ctx, msg,
 * rr) (1: taken, 0: not), until room of them are taken.  A record that
 * does not parse ends the walk; with strict the look-up then fails
 * (LOOKUP_TEMP).  LOOKUP_NODATA when none was taken. */
typedef int dns_take_fn(void *ctx, ns_msg *msg, ns_rr *rr);

static enum lookup_result dns_answers(const char *name, int type,
                                      size_t room, int strict,
                                      dns_take_fn *take, void *ctx)
{
    unsigned char *answer = malloc(DNS_ANSWER_MAX);
    if (answer == NULL)
        return LOOKUP_TEMP;
    int len = 0;
    enum lookup_result rc = dns_query(name, type, answer, &len);
    ns_msg msg;
    if (rc == LOOKUP_OK && ns_initparse(answer, len, &msg) != 0)
        rc = LOOKUP_TEMP;
    size_t taken = 0;
    for (int i = 0; rc == LOOKUP_OK && i < ns_msg_count(msg, ns_s_an) &&
                    taken < room; i++) {
        ns_rr rr;
        if (ns_parserr(&msg, ns_s_an, i, &rr) != 0) {
            if (strict)
                rc = LOOKUP_TEMP;
            break;
        }
        if ((int)ns_rr_type(rr) == type && take(ctx, &msg, &rr))
            taken++;
    }
    if (rc == LOOKUP_OK && taken == 0)
        rc = LOOKUP_NODATA;
    free(answer);
    return rc;
}

struct dns_mx_list {
    struct mx_host *hosts;
    size_t *count;
};

static int dns_take_mx(void *ctx, ns_msg *msg, ns_rr *rr)
{
    struct dns_mx_list *list = ctx;
    if (ns_rr_rdlen(*rr) < 3)
        return 0;
    struct mx_host *h = &list->hosts[*list->count];
    const unsigned char *rdata = ns_rr_rdata(*rr);
    h->pref = (rdata[0] << 8) | rdata[1];
    if (ns_name_uncompress(ns_msg_base(*msg), ns_msg_end(*msg), rdata + 2,
                           h->name, sizeof(h->name)) < 0)
        return 0;
    h->rank = (unsigned)random();
    (*list->count)++;
    return 1;
}

/* The MX records of domain into hosts (at most SMTP_MX_MAX). */
static enum lookup_result dns_mx(const char *domain, struct mx_host *hosts,
                                 size_t *count)
{
    *count = 0;
    struct dns_mx_list list = { hosts, count };
    return dns_answers(domain, ns_t_mx, SMTP_MX_MAX, 1, dns_take_mx, &list);
}

static int target_add(struct smtp_route *route, size_t max, const char *host,
                      int pref, const struct sockaddr *sa, socklen_t len,
                      int port)
{
    if (route->count >= max)
        return 0;
    struct smtp_target *t = &route->targets[route->count];
    memset(t, 0, sizeof(*t));
    if (text_copy(t->host, sizeof(t->host), host) != 0)
        return -1;
    t->pref = pref;
    memcpy(&t->sa, sa, len);
    t->salen = len;
    const void *bin;
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t->sa;
        s6->sin6_port = htons((unsigned short)port);
        bin = &s6->sin6_addr;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&t->sa;
        s4->sin_port = htons((unsigned short)port);
        bin = &s4->sin_addr;
    }
    if (inet_ntop(sa->sa_family, bin, t->addr, sizeof(t->addr)) == NULL)
        return -1;
    route->count++;
    return 0;
}

struct dns_address_list {
    struct sockaddr_storage *out;
    size_t *count;
};

static int dns_take_address(void *ctx, ns_msg *msg, ns_rr *rr)
{
    (void)msg;
    struct dns_address_list *list = ctx;
    struct sockaddr_storage *ss = &list->out[*list->count];
    memset(ss, 0, sizeof(*ss));
    if (ns_rr_type(*rr) == ns_t_a && ns_rr_rdlen(*rr) == 4) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, ns_rr_rdata(*rr), 4);
    } else if (ns_rr_type(*rr) == ns_t_aaaa && ns_rr_rdlen(*rr) == 16) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, ns_rr_rdata(*rr), 16);
    } else {
        return 0;
    }
    (*list->count)++;
    return 1;
}

/* The addresses of host from DNS answers of one type (A or AAAA),
 * appended to out (max in all).  A broken answer keeps those before it. */
static enum lookup_result dns_addresses(const char *host, int type,
                                        struct sockaddr_storage *out,
                                        size_t max, size_t *count)
{
    struct dns_address_list list = { out, count };
    size_t room = *count < max ? max - *count : 0;
    return dns_answers(host, type, room, 0, dns_take_address, &list);
}

static enum lookup_result native_addresses(const char *host, int family,
                                           struct sockaddr_storage *out,
                                           size_t max, size_t *count)
{
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    int err = getaddrinfo(host, NULL, &hints, &res);
    if (err == EAI_NONAME)
        return LOOKUP_NXDOMAIN;
#ifdef EAI_NODATA
    if (err == EAI_NODATA)
        return LOOKUP_NODATA;
#endif
    if (err != 0)
        return LOOKUP_TEMP;
    for (struct addrinfo *ai = res; ai != NULL && *count < max;
         ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof(out[0]))
            continue;
        memset(&out[*count], 0, sizeof(out[0]));
        memcpy(&out[*count], ai->ai_addr, ai->ai_addrlen);
        (*count)++;
    }
    freeaddrinfo(res);
    return LOOKUP_OK;
}

/* Every address of host that inet_protocols allows; the worst failure
 * when there is none (temporary beats not found). */
static enum lookup_result host_addresses(const struct smtp_config *cfg,
                                         const char *host,
                                         struct sockaddr_storage *out,
                                         size_t max, size_t *count)
{
    *count = 0;
    enum lookup_result r4 = LOOKUP_NODATA, r6 = LOOKUP_NODATA;
    if (cfg->use_dns) {
        if (cfg->want_ipv4)
            r4 = dns_addresses(host, ns_t_a, out, max, count);
        if (cfg->want_ipv6 && r4 != LOOKUP_NXDOMAIN)
            r6 = dns_addresses(host, ns_t_aaaa, out, max, count);
    } else {
        int family = cfg->want_ipv4 && cfg->want_ipv6 ? AF_UNSPEC
                     : cfg->want_ipv6 ? AF_INET6 : AF_INET;
        r4 = native_addresses(host, family, out, max, count);
    }
    if (*count > 0)
        return LOOKUP_OK;
    if (r4 == LOOKUP_TEMP || r6 == LOOKUP_TEMP)
        return LOOKUP_TEMP;
    if (r4 == LOOKUP_NXDOMAIN || r6 == LOOKUP_NXDOMAIN)
        return LOOKUP_NXDOMAIN;
    return LOOKUP_NODATA;
}

static int same_address(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family)
        return 0;
    if (a->sa_family == AF_INET)
        return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
                      &((const struct sockaddr_in *)b)->sin_addr, 4) == 0;
    if (a->sa_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr,
                      16) == 0;
    return 0;
}

int smtp_dns_is_own_address(const struct smtp_config *cfg,
                            const struct sockaddr *sa)
{
    for (size_t i = 0; i < cfg->own_count; i++)
        if (same_address((const struct sockaddr *)&cfg->own[i], sa))
            return 1;
    return 0;
}

static void own_add(struct smtp_config *cfg, const struct sockaddr *sa,
                    socklen_t len)
{
    struct sockaddr_storage *grown =
        realloc(cfg->own, (cfg->own_count + 1) * sizeof(*grown));
    if (grown == NULL)
        log_fatal("out of memory");
    cfg->own = grown;
    memset(&cfg->own[cfg->own_count], 0, sizeof(*grown));
    memcpy(&cfg->own[cfg->own_count], sa, len);
    cfg->own_count++;
}

int smtp_dns_parse_numeric(const char *text, struct sockaddr_storage *ss,
                           socklen_t *len)
{
    char copy[SMTP_ADDR_TEXT_MAX];
    size_t n = strlen(text);
    if (n >= sizeof(copy))
        return -1;
    if (n >= 2 && text[0] == '[' && text[n - 1] == ']') {
        memcpy(copy, text + 1, n - 2);
        copy[n - 2] = '\0';
    } else {
        memcpy(copy, text, n + 1);
    }
    const char *body = copy;
    if (strncasecmp(body, "ipv6:", 5) == 0)
        body += 5;
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, body, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        *len = sizeof(*s4);
        return 0;
    }
    if (inet_pton(AF_INET6, body, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        *len = sizeof(*s6);
        return 0;
    }
    return -1;
}

static void own_add_list(struct smtp_config *cfg, struct config *conf,
                         const char *param)
{
    struct text_list list;
    config_get_list(conf, param, &list);
    for (size_t i = 0; i < list.count; i++) {
        const char *item = list.items[i];
        struct sockaddr_storage ss;
        socklen_t len;
        if (strcasecmp(item, "all") == 0) {
            cfg->own_all = 1;
        } else if (strcasecmp(item, "loopback-only") == 0 ||
                   strcasecmp(item, "localhost") == 0) {
            if (smtp_dns_parse_numeric("127.0.0.1", &ss, &len) == 0)
                own_add(cfg, (struct sockaddr *)&ss, len);
            if (smtp_dns_parse_numeric("::1", &ss, &len) == 0)
                own_add(cfg, (struct sockaddr *)&ss, len);
        } else if (smtp_dns_parse_numeric(item, &ss, &len) == 0) {
            own_add(cfg, (struct sockaddr *)&ss, len);
        } else {
            log_warn("%s: ignoring %s: not a numeric address", param, item);
        }
    }
    text_list_free(&list);
}

void smtp_dns_own_addresses(struct smtp_config *cfg, struct config *conf)
{
    own_add_list(cfg, conf, "inet_interfaces");
    own_add_list(cfg, conf, "proxy_interfaces");
    if (!cfg->own_all)
        return;
    struct ifaddrs *ifa;
    if (getifaddrs(&ifa) != 0) {
        log_warn("cannot list the network interfaces: %s", strerror(errno));
        return;
    }
    for (struct ifaddrs *p = ifa; p != NULL; p = p->ifa_next) {
        if (p->ifa_addr == NULL)
            continue;
        if (p->ifa_addr->sa_family == AF_INET)
            own_add(cfg, p->ifa_addr, sizeof(struct sockaddr_in));
        else if (p->ifa_addr->sa_family == AF_INET6)
            own_add(cfg, p->ifa_addr, sizeof(struct sockaddr_in6));
    }
    freeifaddrs(ifa);
}

static size_t route_max(const struct smtp_config *cfg)
{
    return cfg->mx_address_limit > 0 ? (size_t)cfg->mx_address_limit
                                     : SMTP_MX_MAX;
}

/* Adds the addresses of one host; *myself (when not NULL) set when one
 * of them is this host (nothing is added then). */
static enum lookup_result route_host(const struct smtp_config *cfg,
                                     struct smtp_route *route,
                                     const char *host, int pref, int port,
                                     int *myself)
{
    struct sockaddr_storage addrs[SMTP_MX_MAX];
    size_t n = 0;
    enum lookup_result rc = host_addresses(cfg, host, addrs, SMTP_MX_MAX, &n);
    if (rc != LOOKUP_OK)
        return rc;
    for (size_t i = 0; myself != NULL && i < n; i++)
        if (smtp_dns_is_own_address(cfg, (struct sockaddr *)&addrs[i])) {
            *myself = 1;
            return LOOKUP_OK;
        }
    for (size_t i = 0; i < n; i++) {
        socklen_t len = addrs[i].ss_family == AF_INET6
                            ? sizeof(struct sockaddr_in6)
                            : sizeof(struct sockaddr_in);
        if (target_add(route, route_max(cfg), host, pref,
                       (struct sockaddr *)&addrs[i], len, port) != 0)
            return LOOKUP_TEMP;
    }
    return LOOKUP_OK;
}

/* A host given in brackets (no_mx), or a domain without MX.  Only the
 * domain is checked for this host's addresses: "[127.0.0.1]:10025" (a
 * content filter) is a place on this host that mail is meant to go to,
 * as in Postfix. */
static enum smtp_dns_status route_literal_or_host(
    const struct smtp_config *cfg, const char *host, int no_mx, int port,
    struct smtp_route *route, struct buf *why)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (smtp_dns_parse_numeric(host, &ss, &len) == 0) {
        if (target_add(route, 1, host, -1, (struct sockaddr *)&ss, len,
                       port) != 0)
            return SMTP_DNS_TEMP;
        return SMTP_DNS_OK;
    }
    int myself = 0;
    enum lookup_result rc = route_host(cfg, route, host, -1, port,
                                       no_mx ? NULL : &myself);
    if (rc == LOOKUP_TEMP) {
        dns_not_found(why, host, cfg->want_ipv4 ? "A" : "AAAA", 1);
        return SMTP_DNS_TEMP;
    }
    if (rc != LOOKUP_OK) {
        dns_not_found(why, host, cfg->want_ipv4 ? "A" : "AAAA", 0);
        return SMTP_DNS_NOTFOUND;
    }
    if (myself) {
        buf_reset(why);
        buf_printf(why, "mail for %s loops back to myself", host);
        return SMTP_DNS_LOOP;
    }
    return SMTP_DNS_OK;
}

static enum smtp_dns_status route_mx(const struct smtp_config *cfg,
                                     const char *domain, int port,
                                     struct mx_host *mx, size_t mx_count,
                                     struct smtp_route *route,
                                     struct buf *why)
{
    if (mx_count == 1 && mx[0].pref == 0 &&
        (mx[0].name[0] == '\0' || strcmp(mx[0].name, ".") == 0)) {
        buf_reset(why);
        buf_printf(why, "Domain %s does not accept mail (nullMX)", domain);
        return SMTP_DNS_NULLMX;
    }
    qsort(mx, mx_count, sizeof(mx[0]), mx_compare);
    int temp_failure = 0, myself = 0;
    const char *failed_host = NULL;
    for (size_t i = 0; i < mx_count && route->count < route_max(cfg); i++) {
        if (name_is(mx[i].name, cfg->myhostname)) {
            myself = 1;
        } else {
            enum lookup_result rc = route_host(cfg, route, mx[i].name,
                                               mx[i].pref, port, &myself);
            if (rc != LOOKUP_OK) {
                temp_failure |= rc == LOOKUP_TEMP;
                failed_host = mx[i].name;
            }
        }
        if (!myself)
            continue;
        /* This host and everything at its preference or worse is out. */
        while (route->count > 0 &&
               route->targets[route->count - 1].pref >= mx[i].pref)
            route->count--;
        break;
    }
    if (route->count > 0)
        return SMTP_DNS_OK;
    if (myself) {
        buf_reset(why);
        buf_printf(why, "mail for %s loops back to myself", domain);
        return SMTP_DNS_LOOP;
    }
    dns_not_found(why, failed_host != NULL ? failed_host : domain,
                  cfg->want_ipv4 ? "A" : "AAAA", temp_failure);
    return temp_failure ? SMTP_DNS_TEMP : SMTP_DNS_NOTFOUND;
}

enum smtp_dns_status smtp_dns_route(const struct smtp_config *cfg,
                                    const char *host, int no_mx, int port,
                                    struct smtp_route *route,
                                    struct buf *why)
{
    route->count = 0;
    route->targets = calloc(route_max(cfg) + 1, sizeof(*route->targets));
    if (route->targets == NULL) {
        buf_set_str(why, "out of memory");
        return SMTP_DNS_TEMP;
    }
    struct sockaddr_storage ss;
    socklen_t len;
    if (no_mx || smtp_dns_parse_numeric(host, &ss, &len) == 0)
        return route_literal_or_host(cfg, host, 1, port, route, why);
    struct mx_host *mx = calloc(SMTP_MX_MAX, sizeof(*mx));
    if (mx == NULL) {
        buf_set_str(why, "out of memory");
        return SMTP_DNS_TEMP;
    }
    size_t mx_count = 0;
    enum lookup_result rc = dns_mx(host, mx, &mx_count);
    enum smtp_dns_status status;
    if (rc == LOOKUP_OK) {
        status = route_mx(cfg, host, port, mx, mx_count, route, why);
    } else if (rc == LOOKUP_NODATA) {
        status = route_literal_or_host(cfg, host, 0, port, route, why);
    } else {
        dns_not_found(why, host, "MX", rc == LOOKUP_TEMP);
        status = rc == LOOKUP_TEMP ? SMTP_DNS_TEMP : SMTP_DNS_NOTFOUND;
    }
    free(mx);
    return status;
}

void smtp_route_free(struct smtp_route *route)
{
    free(route->targets);
    route->targets = NULL;
    route->count = 0;
}
