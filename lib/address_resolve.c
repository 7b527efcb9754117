/*
 * address_resolve - resolve a recipient to (class, transport, nexthop)
 * (interface and rules: address_resolve.h).
 */
#include "address_resolve.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "domain_list.h"
#include "map_list.h"
#include "table.h"

#define RESOLVE_ADDRESS_MAX 4096
#define RESOLVE_HOST_ADDRESSES_MAX 256

struct resolve_host_address {
    int family;                 /* AF_INET or AF_INET6 */
    unsigned char bytes[16];
};

struct address_resolver {
    struct map_list *transport_maps;
    struct domain_list *mydestination;
    struct domain_list *virtual_domains;
    struct domain_list *relay_domains;
    char *myhostname;
    char *relayhost;
    char *class_transport[4];   /* by enum address_class */
    struct resolve_host_address host[RESOLVE_HOST_ADDRESSES_MAX];
    size_t host_count;
};

const char *address_class_name(enum address_class cls)
{
    switch (cls) {
    case ADDRESS_CLASS_LOCAL: return "local";
    case ADDRESS_CLASS_VIRTUAL: return "virtual";
    case ADDRESS_CLASS_RELAY: return "relay";
    case ADDRESS_CLASS_DEFAULT: return "default";
    }
    return "default";
}

/* ---- this host's addresses, for [ip] literals ---------------------- */

static void resolve_add_host(struct address_resolver *r, int family,
                             const void *bytes)
{
    if (r->host_count >= RESOLVE_HOST_ADDRESSES_MAX)
        return;
    struct resolve_host_address *h = &r->host[r->host_count++];
    h->family = family;
    memset(h->bytes, 0, sizeof(h->bytes));
    memcpy(h->bytes, bytes, family == AF_INET ? 4 : 16);
}

static void resolve_add_loopback(struct address_resolver *r)
{
    struct in_addr v4;
    v4.s_addr = htonl(INADDR_LOOPBACK);
    resolve_add_host(r, AF_INET, &v4);
    resolve_add_host(r, AF_INET6, &in6addr_loopback);
}

static void resolve_add_interfaces(struct address_resolver *r)
{
    struct ifaddrs *list;
    if (getifaddrs(&list) != 0)
        return;
    for (struct ifaddrs *i = list; i != NULL; i = i->ifa_next) {
        if (i->ifa_addr == NULL)
            continue;
        if (i->ifa_addr->sa_family == AF_INET)
            resolve_add_host(r, AF_INET,
                             &((struct sockaddr_in *)(void *)i->ifa_addr)
                                  ->sin_addr);
        else if (i->ifa_addr->sa_family == AF_INET6)
            resolve_add_host(r, AF_INET6,
                             &((struct sockaddr_in6 *)(void *)i->ifa_addr)
                                  ->sin6_addr);
    }
    freeifaddrs(list);
}

/* Parses "1.2.3.4", "::1", "ipv6:::1" (any case), brackets already gone. */
static int resolve_parse_ip(const char *text, int *family,
                            unsigned char bytes[16])
{
    memset(bytes, 0, 16);
    if (inet_pton(AF_INET, text, bytes) == 1) {
        *family = AF_INET;
        return 0;
    }
    if (strncasecmp(text, "ipv6:", 5) == 0)
        text += 5;
    if (inet_pton(AF_INET6, text, bytes) == 1) {
        *family = AF_INET6;
        return 0;
    }
    return -1;
}

static void resolve_load_interfaces(struct address_resolver *r,
                                    struct config *cfg)
{
    resolve_add_loopback(r);
    struct text_list items;
    config_get_list(cfg, "inet_interfaces", &items);
    for (size_t i = 0; i < items.count; i++) {
        const char *item = items.items[i];
        int family;
        unsigned char bytes[16];
        if (strcasecmp(item, "all") == 0)
            resolve_add_interfaces(r);
        else if (resolve_parse_ip(item, &family, bytes) == 0)
            resolve_add_host(r, family, bytes);
    }
    text_list_free(&items);
}

/* True when domain is "[ip]" with ip an address of this host. */
static int resolve_is_own_literal(const struct address_resolver *r,
                                  const char *domain)
{
    size_t len = strlen(domain);
    if (len < 3 || domain[0] != '[' || domain[len - 1] != ']' || len > 64)
        return 0;
    char inner[64];
    memcpy(inner, domain + 1, len - 2);
    inner[len - 2] = '\0';
    int family;
    unsigned char bytes[16];
    if (resolve_parse_ip(inner, &family, bytes) != 0)
        return 0;
    for (size_t i = 0; i < r->host_count; i++)
        if (r->host[i].family == family &&
            memcmp(r->host[i].bytes, bytes, family == AF_INET ? 4 : 16) == 0)
            return 1;
    return 0;
}

/* ---- set-up -------------------------------------------------------- */

static struct domain_list *resolve_domains(struct config *cfg,
                                           const char *name, unsigned flags,
                                           struct buf *error)
{
    struct buf why;
    buf_init(&why, 4096);
    struct domain_list *list =
        domain_list_create(config_get_str(cfg, name), flags, &why);
    if (why.len > 0)
        buf_printf(error, "%s%s: %s", error->len ? "\n" : "", name,
                   buf_cstr(&why));
    buf_free(&why);
    return list;
}

static char *resolve_strdup(struct config *cfg, const char *name)
{
    return strdup(config_get_str(cfg, name));
}

struct address_resolver *address_resolver_create(struct config *cfg,
                                                 struct buf *error)
{
    struct address_resolver *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    struct buf why;
    buf_init(&why, 4096);
    r->transport_maps =
        map_list_open(config_get_str(cfg, "transport_maps"), 0, &why);
    if (why.len > 0)
        buf_printf(error, "transport_maps: %s", buf_cstr(&why));
    buf_free(&why);
    r->mydestination = resolve_domains(cfg, "mydestination", 0, error);
    r->virtual_domains =
        resolve_domains(cfg, "virtual_mailbox_domains", 0, error);
    r->relay_domains = resolve_domains(cfg, "relay_domains",
                                       DOMAIN_LIST_SUBDOMAINS, error);
    r->myhostname = resolve_strdup(cfg, "myhostname");
    r->relayhost = resolve_strdup(cfg, "relayhost");
    r->class_transport[ADDRESS_CLASS_LOCAL] =
        resolve_strdup(cfg, "local_transport");
    r->class_transport[ADDRESS_CLASS_VIRTUAL] =
        resolve_strdup(cfg, "virtual_transport");
    r->class_transport[ADDRESS_CLASS_RELAY] =
        resolve_strdup(cfg, "relay_transport");
    r->class_transport[ADDRESS_CLASS_DEFAULT] =
        resolve_strdup(cfg, "default_transport");
    resolve_load_interfaces(r, cfg);
    int ok = r->transport_maps != NULL && r->mydestination != NULL &&
             r->virtual_domains != NULL && r->relay_domains != NULL &&
             r->myhostname != NULL && r->relayhost != NULL;
    for (int i = 0; i < 4; i++)
        ok = ok && r->class_transport[i] != NULL;
    if (!ok) {
        address_resolver_free(r);
        return NULL;
    }
    return r;
}

void address_resolver_free(struct address_resolver *r)
{
    if (r == NULL)
        return;
    if (r->transport_maps != NULL)
        map_list_free(r->transport_maps);
    domain_list_free(r->mydestination);
    domain_list_free(r->virtual_domains);
    domain_list_free(r->relay_domains);
    free(r->myhostname);
    free(r->relayhost);
    for (int i = 0; i < 4; i++)
        free(r->class_transport[i]);
    free(r);
}

void address_resolution_init(struct address_resolution *res)
{
    res->cls = ADDRESS_CLASS_DEFAULT;
    buf_init(&res->transport, RESOLVE_ADDRESS_MAX);
    buf_init(&res->nexthop, RESOLVE_ADDRESS_MAX);
    buf_init(&res->domain, RESOLVE_ADDRESS_MAX);
}

void address_resolution_free(struct address_resolution *res)
{
    buf_free(&res->transport);
    buf_free(&res->nexthop);
    buf_free(&res->domain);
}

/* ---- resolving ----------------------------------------------------- */

int address_resolve_domain(const char *address, struct buf *out)
{
    buf_reset(out);
    const char *at = NULL;
    int quoted = 0;
    for (const char *p = address; *p; p++) {
        if (*p == '\\' && quoted && p[1] != '\0')
            p++;
        else if (*p == '"')
            quoted = !quoted;
        else if (*p == '@' && !quoted)
            at = p;
    }
    if (at == NULL)
        return 0;
    for (const char *p = at + 1; *p; p++)
        if (buf_append_char(out, (char)tolower((unsigned char)*p)) != 0)
            return -1;
    if (out->len > 0 && out->data[out->len - 1] == '.')
        buf_truncate(out, out->len - 1);
    return 0;
}

/* Splits "transport:nexthop" (a value without ':' is a transport only). */
static int resolve_split(const char *value, struct buf *transport,
                         struct buf *nexthop)
{
    const char *colon = strchr(value, ':');
    size_t tlen = colon != NULL ? (size_t)(colon - value) : strlen(value);
    if (buf_set(transport, value, tlen) != 0)
        return -1;
    return buf_set_str(nexthop, colon != NULL ? colon + 1 : "");
}

int address_resolve_class(struct address_resolver *r, const char *domain,
                          enum address_class *cls, struct buf *error)
{
    if (domain[0] == '\0' || resolve_is_own_literal(r, domain)) {
        *cls = ADDRESS_CLASS_LOCAL;
        return 0;
    }
    struct {
        const struct domain_list *list;
        enum address_class cls;
        const char *name;
    } order[] = {
        { r->mydestination, ADDRESS_CLASS_LOCAL, "mydestination" },
        { r->virtual_domains, ADDRESS_CLASS_VIRTUAL,
          "virtual_mailbox_domains" },
        { r->relay_domains, ADDRESS_CLASS_RELAY, "relay_domains" },
    };
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        struct buf why;
        buf_init(&why, 4096);
        int m = domain_list_match(order[i].list, domain, &why);
        if (m == DOMAIN_LIST_ERROR)
            buf_printf(error, "%s: %s", order[i].name, buf_cstr(&why));
        buf_free(&why);
        if (m == DOMAIN_LIST_ERROR)
            return -1;
        if (m == DOMAIN_LIST_MATCH) {
            *cls = order[i].cls;
            return 0;
        }
    }
    *cls = ADDRESS_CLASS_DEFAULT;
    return 0;
}

/* The class's transport and its default nexthop. */
static int resolve_class_default(struct address_resolver *r,
                                 struct address_resolution *res)
{
    if (resolve_split(r->class_transport[res->cls], &res->transport,
                      &res->nexthop) != 0)
        return -1;
    if (res->nexthop.len > 0)
        return 0;
    if (res->cls == ADDRESS_CLASS_LOCAL)
        return buf_set_str(&res->nexthop, r->myhostname);
    if (res->cls == ADDRESS_CLASS_DEFAULT && r->relayhost[0] != '\0')
        return buf_set_str(&res->nexthop, r->relayhost);
    return buf_set(&res->nexthop, res->domain.data != NULL ? res->domain.data
                                                           : "",
                   res->domain.len);
}

/* One transport_maps key: TABLE_FOUND with value, NOT_FOUND, ERROR. */
static int resolve_lookup(struct address_resolver *r, const char *key,
                          struct buf *value, struct buf *error)
{
    struct buf why;
    buf_init(&why, 4096);
    int rc = map_list_lookup(r->transport_maps, key, value, &why);
    if (rc == TABLE_ERROR)
        buf_printf(error, "transport_maps lookup of %s: %s", key,
                   buf_cstr(&why));
    buf_free(&why);
    return rc;
}

/* transport_maps, keys in order; TABLE_FOUND leaves the value in value. */
static int resolve_transport_maps(struct address_resolver *r,
                                  const char *address, const char *domain,
                                  struct buf *value, struct buf *error)
{
    if (map_list_count(r->transport_maps) == 0)
        return TABLE_NOT_FOUND;
    int rc = resolve_lookup(r, address, value, error);
    if (rc != TABLE_NOT_FOUND || domain[0] == '\0')
        return rc != TABLE_NOT_FOUND
                   ? rc : resolve_lookup(r, "*", value, error);
    rc = resolve_lookup(r, domain, value, error);
    for (const char *p = strchr(domain, '.'); rc == TABLE_NOT_FOUND &&
                                              p != NULL && p[1] != '\0';
         p = strchr(p + 1, '.'))
        rc = resolve_lookup(r, p, value, error);
    if (rc == TABLE_NOT_FOUND)
        rc = resolve_lookup(r, "*", value, error);
    return rc;
}

static int resolve_apply_map(struct address_resolution *res,
                             const char *value)
{
    struct buf transport, nexthop;
    buf_init(&transport, RESOLVE_ADDRESS_MAX);
    buf_init(&nexthop, RESOLVE_ADDRESS_MAX);
    int rc = resolve_split(value, &transport, &nexthop);
    if (rc == 0 && transport.len > 0)
        rc = buf_set(&res->transport, transport.data, transport.len);
    /* error and retry take the nexthop as their text: none is none. */
    int text_only = strcmp(buf_cstr(&res->transport), "error") == 0 ||
                    strcmp(buf_cstr(&res->transport), "retry") == 0;
    if (rc == 0 && (nexthop.len > 0 || text_only))
        rc = buf_set(&res->nexthop, nexthop.data != NULL ? nexthop.data : "",
                     nexthop.len);
    buf_free(&transport);
    buf_free(&nexthop);
    return rc;
}

int address_resolve(struct address_resolver *r, const char *address,
                    struct address_resolution *res, struct buf *error)
{
    buf_reset(&res->transport);
    buf_reset(&res->nexthop);
    if (strlen(address) >= RESOLVE_ADDRESS_MAX ||
        address_resolve_domain(address, &res->domain) != 0) {
        buf_append_str(error, "address too long");
        return -1;
    }
    const char *domain = buf_cstr(&res->domain);
    if (address_resolve_class(r, domain, &res->cls, error) != 0)
        return -1;
    if (resolve_class_default(r, res) != 0) {
        buf_append_str(error, "transport or nexthop too long");
        return -1;
    }
    struct buf value;
    buf_init(&value, TABLE_VALUE_MAX);
    int rc = resolve_transport_maps(r, address, domain, &value, error);
    if (rc == TABLE_FOUND && resolve_apply_map(res, buf_cstr(&value)) != 0) {
        buf_append_str(error, "transport_maps value too long");
        rc = TABLE_ERROR;
    }
    buf_free(&value);
    if (rc == TABLE_ERROR)
        return -1;
    if (res->transport.len == 0) {
        buf_append_str(error, "empty transport");
        return -1;
    }
    return 0;
}
