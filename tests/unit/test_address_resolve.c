/*
 * test_address_resolve - recipient to (class, transport, nexthop): the
 * domain rules, the classes, relayhost, transport_maps with its key order
 * and empty fields, [ip] literals of this host, and a table error.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "address_resolve.h"
#include "config.h"

static struct config *make_config(const char *text)
{
    struct config *cfg = config_create();
    assert_non_null(cfg);
    assert_int_equal(config_load_text(cfg, "main.cf", text, strlen(text)), 0);
    assert_int_equal(config_check(cfg), 0);
    return cfg;
}

static const char *BASE =
    "myhostname = mx.example.net\n"
    "mydomain = example.net\n"
    "inet_interfaces = loopback-only, 192.0.2.7\n"
    "mydestination = $myhostname, localhost, example.net\n"
    "virtual_mailbox_domains = virt.example\n"
    "relay_domains = relay.example\n";

struct expect {
    const char *address;
    enum address_class cls;
    const char *transport;
    const char *nexthop;
};

static void check_all(const char *extra, const struct expect *cases,
                      size_t count)
{
    struct buf text;
    buf_init(&text, 8192);
    buf_printf(&text, "%s%s", BASE, extra);
    struct config *cfg = make_config(buf_cstr(&text));
    struct buf error;
    buf_init(&error, 4096);
    struct address_resolver *r = address_resolver_create(cfg, &error);
    assert_non_null(r);
    assert_int_equal(error.len, 0);
    struct address_resolution res;
    address_resolution_init(&res);
    for (size_t i = 0; i < count; i++) {
        buf_reset(&error);
        int rc = address_resolve(r, cases[i].address, &res, &error);
        if (rc != 0)
            fail_msg("%s: %s", cases[i].address, buf_cstr(&error));
        if ((int)res.cls != (int)cases[i].cls ||
            strcmp(buf_cstr(&res.transport), cases[i].transport) != 0 ||
            strcmp(buf_cstr(&res.nexthop), cases[i].nexthop) != 0)
            fail_msg("%s: got %s %s:%s, want %s %s:%s", cases[i].address,
                     address_class_name(res.cls), buf_cstr(&res.transport),
                     buf_cstr(&res.nexthop),
                     address_class_name(cases[i].cls), cases[i].transport,
                     cases[i].nexthop);
    }
    address_resolution_free(&res);
    address_resolver_free(r);
    buf_free(&error);
    buf_free(&text);
    config_free(cfg);
}

static void test_classes(void **state)
{
    (void)state;
    static const struct expect cases[] = {
        { "joe", ADDRESS_CLASS_LOCAL, "local", "mx.example.net" },
        { "joe@MX.Example.NET.", ADDRESS_CLASS_LOCAL, "local",
          "mx.example.net" },
        { "\"a@b\"@example.net", ADDRESS_CLASS_LOCAL, "local",
          "mx.example.net" },
        { "\"a@remote.example\"", ADDRESS_CLASS_LOCAL, "local",
          "mx.example.net" },
        { "joe@[127.0.0.1]", ADDRESS_CLASS_LOCAL, "local",
          "mx.example.net" },
        { "joe@[IPv6:::1]", ADDRESS_CLASS_LOCAL, "local", "mx.example.net" },
        { "joe@[192.0.2.7]", ADDRESS_CLASS_LOCAL, "local",
          "mx.example.net" },
        { "joe@[192.0.2.8]", ADDRESS_CLASS_DEFAULT, "smtp", "[192.0.2.8]" },
        { "ann@virt.example", ADDRESS_CLASS_VIRTUAL, "virtual",
          "virt.example" },
        { "ann@relay.example", ADDRESS_CLASS_RELAY, "relay",
          "relay.example" },
        { "ann@sub.relay.example", ADDRESS_CLASS_RELAY, "relay",
          "sub.relay.example" },
        { "bob@Remote.Example", ADDRESS_CLASS_DEFAULT, "smtp",
          "remote.example" },
    };
    check_all("", cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_relayhost_and_class_transports(void **state)
{
    (void)state;
    static const struct expect cases[] = {
        { "bob@remote.example", ADDRESS_CLASS_DEFAULT, "smtp",
          "[smart.example]:587" },
        { "ann@relay.example", ADDRESS_CLASS_RELAY, "relay",
          "relay.example" },
        { "joe@example.net", ADDRESS_CLASS_LOCAL, "mylocal", "box" },
        { "ann@virt.example", ADDRESS_CLASS_VIRTUAL, "lmtp",
          "virt.example" },
    };
    check_all("relayhost = [smart.example]:587\n"
              "local_transport = mylocal:box\n"
              "virtual_transport = lmtp\n",
              cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_transport_maps(void **state)
{
    (void)state;
    static const struct expect cases[] = {
        { "joe@gone.example", ADDRESS_CLASS_DEFAULT, "error",
          "5.1.2 gone for good" },
        { "vip@gone.example", ADDRESS_CLASS_DEFAULT, "smtp",
          "[vip.example]:2525" },
        { "x@a.b.parent.example", ADDRESS_CLASS_DEFAULT, "retry",
          "4.4.1 later" },
        { "x@parent.example", ADDRESS_CLASS_DEFAULT, "smtp",
          "star.example" },
        { "x@keep.example", ADDRESS_CLASS_DEFAULT, "smtp", "[hop]:25" },
        { "x@deftransport.example", ADDRESS_CLASS_DEFAULT, "special",
          "deftransport.example" },
        { "joe@example.net", ADDRESS_CLASS_LOCAL, "error", "" },
        { "joe", ADDRESS_CLASS_LOCAL, "local", "mx.example.net" },
        { "elsewhere@other.example", ADDRESS_CLASS_DEFAULT, "smtp",
          "star.example" },
    };
    check_all("transport_maps = inline:{ gone.example = error:5.1.2 gone "
              "for good, vip@gone.example = smtp:[vip.example]:2525, "
              ".parent.example = retry:4.4.1 later, keep.example = :[hop]:25,"
              " deftransport.example = special:, example.net = error:, "
              "joe = local:, * = smtp:star.example }\n",
              cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_table_error_is_reported(void **state)
{
    (void)state;
    struct config *cfg = make_config(
        "myhostname = mx.example.net\n"
        "transport_maps = hash:/nonexistent/transport\n");
    struct buf error;
    buf_init(&error, 4096);
    struct address_resolver *r = address_resolver_create(cfg, &error);
    assert_non_null(r);
    assert_true(error.len > 0);
    buf_reset(&error);
    struct address_resolution res;
    address_resolution_init(&res);
    assert_int_equal(address_resolve(r, "a@b.example", &res, &error), -1);
    assert_non_null(strstr(buf_cstr(&error), "transport_maps"));
    address_resolution_free(&res);
    address_resolver_free(r);
    buf_free(&error);
    config_free(cfg);
}

static void test_class_alone(void **state)
{
    (void)state;
    struct config *cfg = make_config(BASE);
    struct buf error;
    buf_init(&error, 4096);
    struct address_resolver *r = address_resolver_create(cfg, &error);
    assert_non_null(r);
    static const struct {
        const char *domain;
        enum address_class cls;
    } cases[] = {
        { "", ADDRESS_CLASS_LOCAL },
        { "example.net", ADDRESS_CLASS_LOCAL },
        { "[127.0.0.1]", ADDRESS_CLASS_LOCAL },
        { "[ipv6:::2]", ADDRESS_CLASS_DEFAULT },
        { "[not an address]", ADDRESS_CLASS_DEFAULT },
        { "virt.example", ADDRESS_CLASS_VIRTUAL },
        { "x.relay.example", ADDRESS_CLASS_RELAY },
        { "other.example", ADDRESS_CLASS_DEFAULT },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum address_class cls;
        assert_int_equal(address_resolve_class(r, cases[i].domain, &cls,
                                               &error), 0);
        if (cls != cases[i].cls)
            fail_msg("%s: %s", cases[i].domain, address_class_name(cls));
    }
    address_resolver_free(r);
    buf_free(&error);
    config_free(cfg);
}

static void test_domain(void **state)
{
    (void)state;
    struct buf d;
    buf_init(&d, 100);
    assert_int_equal(address_resolve_domain("a@B.c.", &d), 0);
    assert_string_equal(buf_cstr(&d), "b.c");
    assert_int_equal(address_resolve_domain("a@b@C", &d), 0);
    assert_string_equal(buf_cstr(&d), "c");
    assert_int_equal(address_resolve_domain("\"x\\\"@y\"", &d), 0);
    assert_string_equal(buf_cstr(&d), "");
    buf_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classes),
        cmocka_unit_test(test_relayhost_and_class_transports),
        cmocka_unit_test(test_transport_maps),
        cmocka_unit_test(test_table_error_is_reported),
        cmocka_unit_test(test_class_alone),
        cmocka_unit_test(test_domain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
