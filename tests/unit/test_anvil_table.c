/*
 * test_anvil_table - unit tests of daemons/anvil/anvil_table.c: a table
 * of scripted scenarios (connect, message, recipient, disconnect, expire,
 * each at a given clock value) with the count or rate each step must
 * give, then the statistics and the bounds on keys.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../../daemons/anvil/anvil_table.h"

enum op {
    END,
    CONNECT,    /* want: count, want2: rate; want -1: must fail */
    MESSAGE,    /* want: rate */
    RECIPIENT,  /* want: rate */
    DISCONNECT,
    EXPIRE,     /* want: entries dropped */
    SIZE,       /* want: entries in the table */
    COUNT,      /* want: open connections of (service, address) */
};

struct step {
    enum op op;
    int slot;            /* which session (entry) the step is about */
    const char *service;
    const char *address;
    long long now;
    long want;
    long want2;
};

struct scenario {
    const char *name;
    size_t max_entries;
    long unit;
    struct step steps[24];
};

#define A "smtp", "192.0.2.1"
#define B "smtp", "192.0.2.2"
#define C "smtp", "192.0.2.3"

static const struct scenario scenarios[] = {
    { "concurrent connections count up and down", 100, 60, {
        { CONNECT, 0, A, 1000, 1, 1 },
        { CONNECT, 1, A, 1000, 2, 2 },
        { CONNECT, 2, A, 1001, 3, 3 },
        { COUNT, 0, A, 1001, 3, 0 },
        { DISCONNECT, 1, A, 1002, 0, 0 },
        { COUNT, 0, A, 1002, 2, 0 },
        { CONNECT, 1, A, 1003, 3, 4 },
        { DISCONNECT, 0, A, 1004, 0, 0 },
        { DISCONNECT, 1, A, 1004, 0, 0 },
        { DISCONNECT, 2, A, 1004, 0, 0 },
        { COUNT, 0, A, 1004, 0, 0 },
        { END, 0, NULL, NULL, 0, 0, 0 } } },
    { "connection rate restarts after the time unit", 100, 60, {
        { CONNECT, 0, A, 1000, 1, 1 },
        { DISCONNECT, 0, A, 1000, 0, 0 },
        { CONNECT, 0, A, 1030, 1, 2 },
        { DISCONNECT, 0, A, 1030, 0, 0 },
        { CONNECT, 0, A, 1059, 1, 3 },
        { DISCONNECT, 0, A, 1059, 0, 0 },
        { CONNECT, 0, A, 1060, 1, 1 },   /* window 1000..1059 is over */
        { DISCONNECT, 0, A, 1060, 0, 0 },
        { CONNECT, 0, A, 1070, 1, 2 },
        { END, 0, NULL, NULL, 0, 0, 0 } } },
    { "a clock that steps back restarts the window", 100, 60, {
        { CONNECT, 0, A, 1000, 1, 1 },
        { CONNECT, 1, A, 1010, 2, 2 },
        { CONNECT, 2, A, 900, 3, 1 },
        { END, 0, NULL, NULL, 0, 0, 0 } } },
    { "services and addresses are counted apart", 100, 60, {
        { CONNECT, 0, A, 1000, 1, 1 },
        { CONNECT, 1, B, 1000, 1, 1 },
        { CONNECT, 2, "submission", "192.0.2.1", 1000, 1, 1 },
        { CONNECT, 3, A, 1000, 2, 2 },
        { SIZE, 0, NULL, NULL, 1000, 3, 0 },
        { END, 0, NULL, NULL, 0, 0, 0 } } },
    { "message and recipient rates per client", 100, 60, {
        { CONNECT, 0, A, 1000, 1, 1 },
        { CONNECT, 1, A, 1000, 2, 2 },
        { CONNECT, 2, B, 1000, 1, 1 },
        { MESSAGE, 0, NULL, NULL, 1000, 1, 0 },
        { MESSAGE, 1, NULL, NULL, 1001, 2, 0 },
        { MESSAGE, 2, NULL, NULL, 1001, 1, 0 },
        { RECIPIENT, 0, NULL, NULL, 1001, 1, 0 },
        { RECIPIENT, 0, NULL, NULL, 1002, 2, 0 },
        { RECIPIENT, 1, NULL, NULL, 1002, 3, 0 },
        { MESSAGE, 0, NULL, NULL, 1061, 1, 0 },
        { RECIPIENT, 1, NULL, NULL, 1062, 1, 0 },
        { END, 0, NULL, NULL, 0, 0, 0 } } },
    { "a rate outlives the connections within the unit", 100, 60, {
        { CONNECT, 0, A, 1000, 1, 1 },
        { DISCONNECT, 0, A, 1001, 0, 0 },
        { EXPIRE, 0, NULL, NULL, 1030, 0, 0 },
        { CONNECT, 0, A, 1031, 1, 2 },
        { DISCONNECT, 0, A, 1031, 0, 0 },
        { EXPIRE, 0, NULL, NULL, 1060, 1, 0 },
        { SIZE, 0, NULL, NULL, 1060, 0, 0 },
        { CONNECT, 0, A, 1061, 1, 1 },
        { END, 0, NULL, NULL, 0, 0, 0 } } },
    { "expire keeps entries with open connections", 100, 60, {
        { CONNECT, 0, A, 1000, 1, 1 },
        { CONNECT, 1, B, 1000, 1, 1 },
        { DISCONNECT, 1, B, 1000, 0, 0 },
        { EXPIRE, 0, NULL, NULL, 2000, 1, 0 },
        { SIZE, 0, NULL, NULL, 2000, 1, 0 },
        { COUNT, 0, A, 2000, 1, 0 },
        { END, 0, NULL, NULL, 0, 0, 0 } } },
    { "a full table makes room by dropping the oldest idle entry", 2, 60, {
        { CONNECT, 0, A, 1000, 1, 1 },
        { DISCONNECT, 0, A, 1000, 0, 0 },
        { CONNECT, 1, B, 1001, 1, 1 },
        { DISCONNECT, 1, B, 1001, 0, 0 },
        { CONNECT, 2, C, 1002, 1, 1 },   /* A goes */
        { SIZE, 0, NULL, NULL, 1002, 2, 0 },
        { CONNECT, 0, A, 1003, 1, 1 },   /* A is new again; B goes */
        { CONNECT, 1, B, 1003, -1, 0 },  /* only open connections left */
        { COUNT, 0, C, 1003, 1, 0 },
        { DISCONNECT, 2, C, 1004, 0, 0 },
        { CONNECT, 1, B, 1005, 1, 1 },   /* C was idle: B fits */
        { END, 0, NULL, NULL, 0, 0, 0 } } },
    { "an idle entry that comes back is not dropped first", 2, 60, {
        { CONNECT, 0, A, 1000, 1, 1 },
        { DISCONNECT, 0, A, 1000, 0, 0 },
        { CONNECT, 1, B, 1001, 1, 1 },
        { DISCONNECT, 1, B, 1001, 0, 0 },
        { CONNECT, 0, A, 1002, 1, 2 },
        { DISCONNECT, 0, A, 1002, 0, 0 },  /* A is now the newest idle */
        { CONNECT, 2, C, 1003, 1, 1 },     /* B goes */
        { COUNT, 0, B, 1003, 0, 0 },
        { CONNECT, 0, A, 1004, 1, 3 },
        { END, 0, NULL, NULL, 0, 0, 0 } } },
};

static void run_scenario(const struct scenario *sc)
{
    struct anvil_table *t = anvil_table_create(sc->max_entries, sc->unit);
    assert_non_null(t);
    struct anvil_entry *slots[8] = { NULL };
    for (size_t i = 0; sc->steps[i].op != END; i++) {
        const struct step *st = &sc->steps[i];
        long got = 0, got2 = 0;
        switch (st->op) {
        case CONNECT:
            slots[st->slot] = anvil_table_connect(t, st->service, st->address,
                                                  st->now, &got, &got2);
            if (slots[st->slot] == NULL) {
                got = -1;
                got2 = 0;
                assert_int_equal(errno, ENOSPC);
            }
            break;
        case MESSAGE:
            got = anvil_table_message(t, slots[st->slot], st->now);
            break;
        case RECIPIENT:
            got = anvil_table_recipient(t, slots[st->slot], st->now);
            break;
        case DISCONNECT:
            anvil_table_disconnect(t, slots[st->slot], st->now);
            slots[st->slot] = NULL;
            break;
        case EXPIRE:
            got = (long)anvil_table_expire(t, st->now);
            break;
        case SIZE:
            got = (long)anvil_table_size(t);
            break;
        case COUNT:
            got = anvil_table_count(t, st->service, st->address);
            break;
        case END:
            break;
        }
        if (got != st->want || got2 != st->want2)
            fail_msg("%s: step %zu: got %ld/%ld, want %ld/%ld", sc->name, i,
                     got, got2, st->want, st->want2);
    }
    anvil_table_free(t);
}

static void test_scenarios(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
        run_scenario(&scenarios[i]);
}

static void test_stats(void **state)
{
    (void)state;
    struct anvil_table *t = anvil_table_create(100, 60);
    assert_non_null(t);
    long count, rate;
    struct anvil_entry *a1 = anvil_table_connect(t, A, 1000, &count, &rate);
    struct anvil_entry *a2 = anvil_table_connect(t, A, 1001, &count, &rate);
    struct anvil_entry *b1 = anvil_table_connect(t, B, 1002, &count, &rate);
    assert_non_null(a1);
    assert_non_null(a2);
    assert_non_null(b1);
    anvil_table_message(t, b1, 1003);
    anvil_table_recipient(t, b1, 1003);
    anvil_table_recipient(t, b1, 1004);

    struct anvil_stats st;
    anvil_table_stats(t, &st);
    assert_int_equal(st.count.value, 2);
    assert_string_equal(st.count.key, "smtp:192.0.2.1");
    assert_int_equal(st.count.when, 1001);
    assert_int_equal(st.connect_rate.value, 2);
    assert_int_equal(st.message_rate.value, 1);
    assert_string_equal(st.message_rate.key, "smtp:192.0.2.2");
    assert_int_equal(st.recipient_rate.value, 2);
    assert_int_equal(st.recipient_rate.when, 1004);
    assert_int_equal(st.size.value, 2);

    anvil_table_stats_reset(t);
    anvil_table_stats(t, &st);
    assert_int_equal(st.count.value, 0);
    assert_int_equal(st.recipient_rate.value, 0);
    anvil_table_disconnect(t, a1, 1005);
    anvil_table_disconnect(t, a2, 1005);
    anvil_table_disconnect(t, b1, 1005);
    anvil_table_free(t);
}

static void test_bounds(void **state)
{
    (void)state;
    assert_null(anvil_table_create(0, 60));
    assert_null(anvil_table_create(10, 0));
    struct anvil_table *t = anvil_table_create(10, 60);
    assert_non_null(t);
    char address[ANVIL_KEY_MAX + 10];
    memset(address, '1', sizeof(address) - 1);
    address[sizeof(address) - 1] = '\0';
    long count = -7, rate = -7;
    assert_null(anvil_table_connect(t, "smtp", address, 1000, &count, &rate));
    assert_int_equal(errno, EINVAL);
    assert_int_equal(anvil_table_size(t), 0);
    /* The longest key that fits. */
    address[ANVIL_KEY_MAX - 1 - strlen("smtp:")] = '\0';
    struct anvil_entry *e =
        anvil_table_connect(t, "smtp", address, 1000, &count, &rate);
    assert_non_null(e);
    assert_int_equal(anvil_table_count(t, "smtp", address), 1);
    anvil_table_disconnect(t, e, 1000);
    anvil_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scenarios),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_bounds),
    };
    return cmocka_run_group_tests(tests, 0, NULL);
}
