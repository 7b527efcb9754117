/*
 * network_match - client network and name lists (mynetworks).  See
 * network_match.h for the item syntax.
 */
#include "network_match.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "text.h"

enum network_item_kind {
    NETWORK_ITEM_ADDRESS, /* address/prefix */
    NETWORK_ITEM_NAME,    /* exact host name */
    NETWORK_ITEM_SUFFIX,  /* ".example.com" */
};

struct network_item {
    enum network_item_kind kind;
    int negate;
    int family;           /* 4 or 6 */
    unsigned char bytes[16];
    unsigned prefix;      /* bits */
    char *name;           /* names, lower case kept as given */
};

struct network_list {
    struct network_item *items;
    size_t count;
};

int network_parse_address(const char *text, unsigned char bytes[16],
                          int *family)
{
    char copy[INET6_ADDRSTRLEN + 2];
    size_t len = strlen(text);
    if (len >= 2 && text[0] == '[' && text[len - 1] == ']') {
        text++;
        len -= 2;
    }
    if (len == 0 || len >= sizeof(copy))
        return -1;
    memcpy(copy, text, len);
    copy[len] = '\0';
    memset(bytes, 0, 16);
    if (inet_pton(AF_INET, copy, bytes) == 1) {
        *family = 4;
        return 0;
    }
    unsigned char v6[16];
    if (inet_pton(AF_INET6, copy, v6) != 1)
        return -1;
    static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0,
                                              0, 0, 0xff, 0xff };
    if (memcmp(v6, mapped, sizeof(mapped)) == 0) {
        memcpy(bytes, v6 + 12, 4);
        *family = 4;
        return 0;
    }
    memcpy(bytes, v6, 16);
    *family = 6;
    return 0;
}

int network_is_loopback(const char *address)
{
    unsigned char b[16];
    int family;
    if (network_parse_address(address, b, &family) != 0)
        return 0;
    if (family == 4)
        return b[0] == 127;
    static const unsigned char one[16] = { [15] = 1 };
    return memcmp(b, one, 16) == 0;
}

/* 1 when the first prefix bits of a and b agree. */
static int prefix_equal(const unsigned char *a, const unsigned char *b,
                        unsigned prefix)
{
    unsigned full = prefix / 8, rest = prefix % 8;
    if (memcmp(a, b, full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

/* 1 when bits after prefix are all zero. */
static int host_bits_clear(const unsigned char *a, unsigned prefix,
                           unsigned bits)
{
    for (unsigned i = prefix; i < bits; i++)
        if (a[i / 8] & (0x80 >> (i % 8)))
            return 0;
    return 1;
}

/* "[2001:db8::]/32", "[::1]/128", "10.0.0.0/8", "::1", "[::1]". */
static int parse_network(const char *text, struct network_item *item,
                         struct buf *error)
{
    char addr[INET6_ADDRSTRLEN + 4];
    const char *slash = strrchr(text, '/');
    size_t addr_len = slash ? (size_t)(slash - text) : strlen(text);
    if (addr_len >= sizeof(addr)) {
        (void)buf_printf(error, "bad network \"%s\": too long", text);
        return -1;
    }
    memcpy(addr, text, addr_len);
    addr[addr_len] = '\0';
    if (network_parse_address(addr, item->bytes, &item->family) != 0) {
        (void)buf_printf(error, "bad network address \"%s\"", text);
        return -1;
    }
    unsigned bits = item->family == 4 ? 32 : 128;
    item->prefix = bits;
    if (slash != NULL) {
        long prefix;
        if (text_parse_long(slash + 1, 0, bits, &prefix) != 0 ||
            slash[1] == '+' || slash[1] == '-') {
            (void)buf_printf(error, "bad network prefix in \"%s\"", text);
            return -1;
        }
        item->prefix = (unsigned)prefix;
    }
    if (!host_bits_clear(item->bytes, item->prefix, bits)) {
        (void)buf_printf(error, "non-null host address bits in \"%s\"", text);
        return -1;
    }
    item->kind = NETWORK_ITEM_ADDRESS;
    return 0;
}

/* A host name item: letters, digits, '-', '.', '_'. */
static int looks_like_name(const char *text)
{
    if (text[0] == '\0')
        return 0;
    for (const char *p = text; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'))
            return 0;
    }
    return 1;
}

static int parse_item(const char *text, struct network_item *item,
                      struct buf *error)
{
    memset(item, 0, sizeof(*item));
    if (text[0] == '!') {
        item->negate = 1;
        text++;
    }
    if (text[0] == '[' || strchr(text, ':') != NULL ||
        strchr(text, '/') != NULL)
        return parse_network(text, item, error);
    unsigned char bytes[16];
    int family;
    if (network_parse_address(text, bytes, &family) == 0)
        return parse_network(text, item, error);
    /* "300.1.1.1" is a mistyped address, not a host name. */
    if (!looks_like_name(text) || strspn(text, "0123456789.") == strlen(text)) {
        (void)buf_printf(error, "bad network or host name \"%s\"", text);
        return -1;
    }
    item->kind = text[0] == '.' ? NETWORK_ITEM_SUFFIX : NETWORK_ITEM_NAME;
    item->name = strdup(text);
    if (item->name == NULL) {
        (void)buf_append_str(error, "out of memory");
        return -1;
    }
    return 0;
}

struct network_list *network_list_create(char *const *items, size_t count,
                                         struct buf *error)
{
    struct network_list *list = calloc(1, sizeof(*list));
    if (list == NULL || (count > 0 &&
        (list->items = calloc(count, sizeof(*list->items))) == NULL)) {
        free(list);
        (void)buf_append_str(error, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        if (parse_item(items[i], &list->items[i], error) != 0) {
            network_list_free(list);
            return NULL;
        }
        list->count++;
    }
    return list;
}

static int name_matches(const struct network_item *item, const char *name)
{
    if (item->kind == NETWORK_ITEM_NAME)
        return strcasecmp(item->name, name) == 0;
    size_t nlen = strlen(name), slen = strlen(item->name);
    return nlen > slen &&
           strcasecmp(name + nlen - slen, item->name) == 0;
}

static int item_matches(const struct network_item *item, int family,
                        const unsigned char *bytes, const char *name)
{
    if (item->kind != NETWORK_ITEM_ADDRESS)
        return name != NULL && strcmp(name, "unknown") != 0 &&
               name_matches(item, name);
    return family != 0 && family == item->family &&
           prefix_equal(item->bytes, bytes, item->prefix);
}

int network_list_match(const struct network_list *list, const char *address,
                       const char *name)
{
    unsigned char bytes[16];
    int family = 0;
    if (address == NULL || network_parse_address(address, bytes, &family) != 0)
        family = 0;
    for (size_t i = 0; i < list->count; i++)
        if (item_matches(&list->items[i], family, bytes, name))
            return !list->items[i].negate;
    return 0;
}

void network_list_free(struct network_list *list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < list->count; i++)
        free(list->items[i].name);
    free(list->items);
    free(list);
}
