/*
 * test_network_match - unit tests for lib/network_match (mynetworks),
 * lib/domain_list (mydestination, relay_domains) and lib/map_list (table
 * lists with { } groups).
 *
 * Table-driven: each case is a list, a client or domain, and the answer;
 * bad items must be refused with a message.
 *
 * Run: build/<cc>/tests/test_network_match (no files, no privileges).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "config.h"
#include "domain_list.h"
#include "map_list.h"
#include "network_match.h"
#include "table.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

struct net_case {
    const char *address;
    const char *name;
    int match;
};

static char *default_items[] = {
    "127.0.0.0/8", "[::1]/128", "192.0.2.0/25", "2001:db8::/32",
    "!10.1.2.3", "10.0.0.0/8", "mail.example.com", ".trusted.example",
};

static const struct net_case net_cases[] = {
    { "127.0.0.1", "localhost", 1 },
    { "127.255.0.9", "unknown", 1 },
    { "::1", "localhost", 1 },
    { "::ffff:127.0.0.1", "localhost", 1 },
    { "::2", "unknown", 0 },
    { "192.0.2.127", "unknown", 1 },
    { "192.0.2.128", "unknown", 0 },
    { "2001:db8:1::5", "unknown", 1 },
    { "2001:db9::5", "unknown", 0 },
    { "10.1.2.3", "unknown", 0 },    /* excluded before 10/8 */
    { "10.1.2.4", "unknown", 1 },
    { "198.51.100.1", "MAIL.example.COM", 1 },
    { "198.51.100.1", "a.trusted.example", 1 },
    { "198.51.100.1", "trusted.example", 0 },
    { "198.51.100.1", "unknown", 0 },
    { "not-an-address", "unknown", 0 },
};

static void test_network_list(void **state)
{
    (void)state;
    struct buf error;
    buf_init(&error, 1024);
    struct network_list *l =
        network_list_create(default_items, COUNT(default_items), &error);
    assert_non_null(l);
    for (size_t i = 0; i < COUNT(net_cases); i++) {
        const struct net_case *c = &net_cases[i];
        if (network_list_match(l, c->address, c->name) != c->match)
            fail_msg("%s (%s): expected %d", c->address, c->name, c->match);
    }
    network_list_free(l);
    buf_free(&error);
}

static void test_network_bad_items(void **state)
{
    (void)state;
    static const char *bad[] = {
        "192.0.2.1/24", "192.0.2.0/33", "10.0.0.0/x", "[::1]/129",
        "1.2.3.4.5/8", "bad name!", "::1/-1", "300.1.1.1",
    };
    for (size_t i = 0; i < COUNT(bad); i++) {
        struct buf error;
        buf_init(&error, 1024);
        char *item = (char *)bad[i];
        struct network_list *l = network_list_create(&item, 1, &error);
        if (l != NULL)
            fail_msg("accepted bad item %s", bad[i]);
        assert_true(error.len > 0);
        assert_non_null(strstr(buf_cstr(&error), bad[i]));
        buf_free(&error);
    }
}

static void test_loopback(void **state)
{
    (void)state;
    assert_true(network_is_loopback("127.0.0.1"));
    assert_true(network_is_loopback("::1"));
    assert_true(network_is_loopback("::ffff:127.1.2.3"));
    assert_false(network_is_loopback("192.0.2.1"));
    assert_false(network_is_loopback("::2"));
    assert_false(network_is_loopback("garbage"));
}

struct domain_case {
    const char *list;
    unsigned flags;
    const char *domain;
    int result;
};

static const struct domain_case domain_cases[] = {
    { "example.com, localhost", 0, "example.com", DOMAIN_LIST_MATCH },
    { "example.com, localhost", 0, "EXAMPLE.Com.", DOMAIN_LIST_MATCH },
    { "example.com, localhost", 0, "sub.example.com", DOMAIN_LIST_NO_MATCH },
    { "example.com", DOMAIN_LIST_SUBDOMAINS, "sub.example.com",
      DOMAIN_LIST_MATCH },
    { "example.com", DOMAIN_LIST_SUBDOMAINS, "badexample.com",
      DOMAIN_LIST_NO_MATCH },
    { ".example.com", 0, "a.b.example.com", DOMAIN_LIST_MATCH },
    { ".example.com", 0, "example.com", DOMAIN_LIST_NO_MATCH },
    { "!a.example.com .example.com", 0, "a.example.com",
      DOMAIN_LIST_NO_MATCH },
    { "inline:{ virtual.example = x, other.example = y }", 0,
      "Other.Example", DOMAIN_LIST_MATCH },
    { "inline:{ virtual.example = x }", 0, "nope.example",
      DOMAIN_LIST_NO_MATCH },
    { "inline:{ relay.example = x }", DOMAIN_LIST_SUBDOMAINS,
      "a.b.relay.example", DOMAIN_LIST_MATCH },
    { "hash:/nonexistent/table", 0, "example.com", DOMAIN_LIST_ERROR },
    { "", 0, "example.com", DOMAIN_LIST_NO_MATCH },
};

static void test_domain_list(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(domain_cases); i++) {
        const struct domain_case *c = &domain_cases[i];
        struct buf error;
        buf_init(&error, 4096);
        struct domain_list *l = domain_list_create(c->list, c->flags, &error);
        assert_non_null(l);
        int r = domain_list_match(l, c->domain, &error);
        if (r != c->result)
            fail_msg("\"%s\" vs %s: %d, expected %d", c->list, c->domain, r,
                     c->result);
        domain_list_free(l);
        buf_free(&error);
    }
}

static void test_map_list_split(void **state)
{
    (void)state;
    struct text_list out;
    assert_int_equal(map_list_split("a, inline:{ x = 1, y = 2 } ,b", &out), 0);
    assert_int_equal(out.count, 3);
    assert_string_equal(out.items[0], "a");
    assert_string_equal(out.items[1], "inline:{ x = 1, y = 2 }");
    assert_string_equal(out.items[2], "b");
    text_list_free(&out);
    assert_int_equal(map_list_split("inline:{ x = 1", &out), -1);
    assert_int_equal(out.count, 0);
}

static void test_map_list_lookup(void **state)
{
    (void)state;
    struct buf error, value;
    buf_init(&error, 4096);
    buf_init(&value, 1024);
    struct map_list *m = map_list_open(
        "inline:{ alice = 1 }, inline:{ bob = 2, @example.com = 3 }", 0,
        &error);
    assert_int_equal(error.len, 0);
    assert_int_equal(map_list_count(m), 2);
    assert_int_equal(map_list_lookup(m, "bob", &value, &error), TABLE_FOUND);
    assert_string_equal(buf_cstr(&value), "2");
    assert_int_equal(map_list_lookup_address(m, "carol@example.com", NULL, 0,
                                             &value, &error), TABLE_FOUND);
    assert_string_equal(buf_cstr(&value), "3");
    assert_int_equal(map_list_lookup(m, "dave", &value, &error),
                     TABLE_NOT_FOUND);
    map_list_free(m);
    /* A table that does not open is an error at lookup, never "no". */
    m = map_list_open("inline:{ a = 1 } hash:/nonexistent/x", 0, &error);
    assert_true(error.len > 0);
    assert_int_equal(map_list_lookup(m, "a", &value, &error), TABLE_FOUND);
    assert_int_equal(map_list_lookup(m, "b", &value, &error), TABLE_ERROR);
    map_list_free(m);
    buf_free(&error);
    buf_free(&value);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_network_list),
        cmocka_unit_test(test_network_bad_items),
        cmocka_unit_test(test_loopback),
        cmocka_unit_test(test_domain_list),
        cmocka_unit_test(test_map_list_split),
        cmocka_unit_test(test_map_list_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
