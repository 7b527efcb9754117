/*
 * test_record - unit tests of lib/record.c: building records, the exact
 * wire form (the example of docs/protocol.md), decoding round trips, a
 * table of malformed records with the status each must give, and
 * record_read()/record_write() over a socketpair, including truncated,
 * oversized and silent peers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "record.h"
#include "stream.h"

static void close_fd(int fd)
{
    assert_int_equal(close(fd), 0);
}

static void put_bytes(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

/* The worked example of docs/protocol.md: request=ping, n=42. */
static const unsigned char example_wire[] = {
    0x00, 0x00, 0x00, 0x19,                   /* length 25 */
    0x01,                                     /* version 1 */
    0x07, 'r', 'e', 'q', 'u', 'e', 's', 't',  /* name "request" */
    0x00, 0x00, 0x00, 0x04, 'p', 'i', 'n', 'g',
    0x01, 'n',                                /* name "n" */
    0x00, 0x00, 0x00, 0x02, '4', '2',
};

/* ---- building and looking up ---- */

static void test_add_and_find(void **state)
{
    (void)state;
    struct record r;
    record_init(&r);
    assert_int_equal(record_add_str(&r, "request", "deliver"), RECORD_OK);
    assert_int_equal(record_add_long(&r, "size", 5120), RECORD_OK);
    assert_int_equal(record_add_long(&r, "min", LONG_MIN), RECORD_OK);
    assert_int_equal(record_add(&r, "bin", "a\0b", 3), RECORD_OK);
    assert_int_equal(record_add(&r, "empty", NULL, 0), RECORD_OK);
    assert_int_equal(r.count, 5);
    assert_string_equal(record_get_str(&r, "request"), "deliver");
    assert_string_equal(record_get_str(&r, "empty"), "");
    assert_null(record_get_str(&r, "bin")); /* holds a NUL byte */
    assert_null(record_get_str(&r, "missing"));
    const struct record_attr *a = record_find(&r, "bin");
    assert_non_null(a);
    assert_int_equal(a->value.len, 3);
    assert_memory_equal(a->value.data, "a\0b", 3);
    long v = 0;
    assert_int_equal(record_get_long(&r, "size", &v), 0);
    assert_int_equal(v, 5120);
    assert_int_equal(record_get_long(&r, "min", &v), 0);
    assert_true(v == LONG_MIN);
    assert_int_equal(record_get_long(&r, "request", &v), -1);
    assert_int_equal(record_get_long(&r, "empty", &v), -1);
    assert_int_equal(record_get_long(&r, "missing", &v), -1);
    assert_int_equal(record_get_long(&r, "bin", &v), -1);
    record_reset(&r);
    assert_int_equal(r.count, 0);
    assert_null(record_find(&r, "request"));
    assert_int_equal(record_add_str(&r, "request", "again"), RECORD_OK);
    assert_string_equal(record_get_str(&r, "request"), "again");
    record_free(&r);
    assert_int_equal(r.count, 0);
}

static void test_get_long_strict(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int ok;
        long value;
    } cases[] = {
        { "0", 1, 0 },      { "42", 1, 42 },   { "-7", 1, -7 },
        { "", 0, 0 },       { " 42", 0, 0 },   { "42 ", 0, 0 },
        { "4x", 0, 0 },     { "0x10", 0, 0 },  { "1e3", 0, 0 },
        { "-", 0, 0 },      { "99999999999999999999", 0, 0 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct record r;
        record_init(&r);
        assert_int_equal(record_add_str(&r, "v", cases[i].text), RECORD_OK);
        long v = 12345;
        int rc = record_get_long(&r, "v", &v);
        assert_int_equal(rc, cases[i].ok ? 0 : -1);
        assert_int_equal(v, cases[i].ok ? cases[i].value : 12345);
        record_free(&r);
    }
}

static void test_add_rejects_bad_names(void **state)
{
    (void)state;
    char longest[RECORD_NAME_MAX + 1];
    char too_long[RECORD_NAME_MAX + 2];
    memset(longest, 'a', RECORD_NAME_MAX);
    longest[RECORD_NAME_MAX] = '\0';
    memset(too_long, 'b', RECORD_NAME_MAX + 1);
    too_long[RECORD_NAME_MAX + 1] = '\0';
    struct record r;
    record_init(&r);
    assert_int_equal(record_add_str(&r, "", "x"), RECORD_MALFORMED);
    assert_int_equal(record_add_str(&r, "Upper", "x"), RECORD_MALFORMED);
    assert_int_equal(record_add_str(&r, "a-b", "x"), RECORD_MALFORMED);
    assert_int_equal(record_add_str(&r, "a b", "x"), RECORD_MALFORMED);
    assert_int_equal(record_add_str(&r, "caf\xc3\xa9", "x"),
                     RECORD_MALFORMED);
    assert_int_equal(record_add_str(&r, too_long, "x"), RECORD_MALFORMED);
    assert_int_equal(r.count, 0);
    assert_int_equal(record_add_str(&r, longest, "x"), RECORD_OK);
    assert_int_equal(record_add_str(&r, "queue_id_2", "x"), RECORD_OK);
    assert_int_equal(record_add_str(&r, "queue_id_2", "y"),
                     RECORD_MALFORMED);
    assert_int_equal(r.count, 2);
    assert_string_equal(record_get_str(&r, "queue_id_2"), "x");
    assert_string_equal(record_find(&r, longest)->name, longest);
    record_free(&r);
}

/* ---- wire form ---- */

static void test_encode_example(void **state)
{
    (void)state;
    struct record r;
    record_init(&r);
    assert_int_equal(record_add_str(&r, "request", "ping"), RECORD_OK);
    assert_int_equal(record_add_long(&r, "n", 42), RECORD_OK);
    struct buf wire;
    buf_init(&wire, 1000);
    assert_int_equal(buf_append_str(&wire, "prefix"), 0);
    assert_int_equal(record_encode(&r, &wire), RECORD_OK); /* appends */
    assert_int_equal(wire.len, 6 + sizeof(example_wire));
    assert_memory_equal(wire.data, "prefix", 6);
    assert_memory_equal(wire.data + 6, example_wire, sizeof(example_wire));
    /* An output buffer that is too small is left as it was. */
    struct buf small;
    buf_init(&small, sizeof(example_wire) - 1);
    assert_int_equal(record_encode(&r, &small), RECORD_TOO_LARGE);
    assert_int_equal(small.len, 0);
    /* The empty record is its header alone. */
    record_reset(&r);
    buf_reset(&wire);
    assert_int_equal(record_encode(&r, &wire), RECORD_OK);
    assert_int_equal(wire.len, RECORD_HEADER_SIZE);
    assert_memory_equal(wire.data, "\0\0\0\1\1", RECORD_HEADER_SIZE);
    assert_int_equal(record_decode(&r, wire.data, wire.len, 1), RECORD_OK);
    assert_int_equal(r.count, 0);
    buf_free(&small);
    buf_free(&wire);
    record_free(&r);
}

static void test_decode_example(void **state)
{
    (void)state;
    struct record r;
    record_init(&r);
    assert_int_equal(record_add_str(&r, "old", "replaced"), RECORD_OK);
    assert_int_equal(record_decode(&r, example_wire, sizeof(example_wire),
                                   25),
                     RECORD_OK);
    assert_int_equal(r.count, 2);
    assert_string_equal(r.attrs[0].name, "request");
    assert_string_equal(r.attrs[1].name, "n");
    assert_null(record_find(&r, "old"));
    assert_string_equal(record_get_str(&r, "request"), "ping");
    long n = 0;
    assert_int_equal(record_get_long(&r, "n", &n), 0);
    assert_int_equal(n, 42);
    /* One byte under the limit it needs: too large. */
    assert_int_equal(record_decode(&r, example_wire, sizeof(example_wire),
                                   24),
                     RECORD_TOO_LARGE);
    assert_int_equal(r.count, 0);
    record_free(&r);
}

/* The damaged variants that docs/protocol.md lists. */
static void test_example_variants(void **state)
{
    (void)state;
    struct record r;
    record_init(&r);
    unsigned char w[sizeof(example_wire)];
    memcpy(w, example_wire, sizeof(w));
    w[0x04] = 0x02;
    assert_int_equal(record_decode(&r, w, sizeof(w), 100),
                     RECORD_BAD_VERSION);
    memcpy(w, example_wire, sizeof(w));
    w[0x06] = 'R';
    assert_int_equal(record_decode(&r, w, sizeof(w), 100), RECORD_MALFORMED);
    memcpy(w, example_wire, sizeof(w));
    w[0x1a] = 0x09;
    assert_int_equal(record_decode(&r, w, sizeof(w), 100), RECORD_MALFORMED);
    assert_int_equal(record_decode(&r, example_wire, sizeof(example_wire) - 1,
                                   100),
                     RECORD_TRUNCATED);
    /* "n" renamed "request": 6 more bytes, and a duplicate. */
    struct buf dup;
    buf_init(&dup, 100);
    assert_int_equal(buf_append(&dup, example_wire, 0x15), 0);
    assert_int_equal(buf_append(&dup, example_wire + 0x05, 8), 0);
    assert_int_equal(buf_append(&dup, example_wire + 0x17, 6), 0);
    dup.data[3] = 25 + 6;
    assert_int_equal(record_decode(&r, dup.data, dup.len, 100),
                     RECORD_MALFORMED);
    /* The same with a fresh name decodes: only the duplicate was wrong. */
    dup.data[0x15 + 1] = 'x';
    assert_int_equal(record_decode(&r, dup.data, dup.len, 100), RECORD_OK);
    assert_string_equal(record_get_str(&r, "xequest"), "42");
    buf_free(&dup);
    record_free(&r);
}

static void test_round_trip(void **state)
{
    (void)state;
    char name[RECORD_NAME_MAX + 1];
    memset(name, 'z', RECORD_NAME_MAX);
    name[RECORD_NAME_MAX] = '\0';
    size_t big_len = 100 * 1000;
    char *big = malloc(big_len);
    assert_non_null(big);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (char)(i % 256);
    struct record r;
    record_init(&r);
    assert_int_equal(record_add_str(&r, "request", "deliver"), RECORD_OK);
    assert_int_equal(record_add_long(&r, "size", -5120), RECORD_OK);
    assert_int_equal(record_add(&r, "binary", big, big_len), RECORD_OK);
    assert_int_equal(record_add(&r, "empty", "", 0), RECORD_OK);
    assert_int_equal(record_add_str(&r, name, "longest name"), RECORD_OK);
    for (int i = 0; i < 50; i++) {
        char attr[16];
        int n = snprintf(attr, sizeof(attr), "a%d", i);
        assert_true(n > 0);
        assert_int_equal(record_add_long(&r, attr, i), RECORD_OK);
    }
    struct buf wire;
    buf_init(&wire, 1024 * 1024);
    assert_int_equal(record_encode(&r, &wire), RECORD_OK);
    struct record back;
    record_init(&back);
    assert_int_equal(record_decode(&back, wire.data, wire.len, wire.len - 4),
                     RECORD_OK);
    assert_int_equal(back.count, r.count);
    for (size_t i = 0; i < r.count; i++) {
        assert_string_equal(back.attrs[i].name, r.attrs[i].name);
        assert_int_equal(back.attrs[i].value.len, r.attrs[i].value.len);
        assert_memory_equal(buf_cstr(&back.attrs[i].value),
                            buf_cstr(&r.attrs[i].value),
                            r.attrs[i].value.len);
    }
    long v = 0;
    assert_int_equal(record_get_long(&back, "size", &v), 0);
    assert_int_equal(v, -5120);
    assert_int_equal(record_get_long(&back, "a49", &v), 0);
    assert_int_equal(v, 49);
    /* Encoding the decoded record gives the same bytes. */
    struct buf again;
    buf_init(&again, 1024 * 1024);
    assert_int_equal(record_encode(&back, &again), RECORD_OK);
    assert_int_equal(again.len, wire.len);
    assert_memory_equal(again.data, wire.data, wire.len);
    buf_free(&again);
    buf_free(&wire);
    record_free(&back);
    record_free(&r);
    free(big);
}

/* ---- malformed input ---- */

#define NAME63 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define NAME64 NAME63 "a"

struct bad_case {
    const char *what;
    const char *wire;
    size_t len;
    size_t max;
    int status;
};

#define CASE(what, bytes, max, status) \
    { what, bytes, sizeof(bytes) - 1, max, status }

static const struct bad_case bad_cases[] = {
    CASE("length field cut", "\0\0\0", 100, RECORD_TRUNCATED),
    CASE("nothing at all", "", 100, RECORD_TRUNCATED),
    CASE("length 0: no version", "\0\0\0\0", 100, RECORD_MALFORMED),
    CASE("version 0", "\0\0\0\1\0", 100, RECORD_BAD_VERSION),
    CASE("version 2", "\0\0\0\1\2", 100, RECORD_BAD_VERSION),
    CASE("version 255 with attribute",
         "\0\0\0\7\xff\1a\0\0\0\0", 100, RECORD_BAD_VERSION),
    CASE("body shorter than declared", "\0\0\0\x0a\1\1a", 100,
         RECORD_TRUNCATED),
    CASE("version missing from body", "\0\0\0\1", 100, RECORD_TRUNCATED),
    CASE("bytes after the declared end", "\0\0\0\1\1\1a\0\0\0\0", 100,
         RECORD_MALFORMED),
    CASE("declared over the limit", "\0\0\0\x65\1", 100, RECORD_TOO_LARGE),
    CASE("declared 4 GiB - 1", "\xff\xff\xff\xff\1", 100, RECORD_TOO_LARGE),
    CASE("empty name", "\0\0\0\6\1\0\0\0\0\0", 100, RECORD_MALFORMED),
    CASE("upper-case name", "\0\0\0\7\1\1A\0\0\0\0", 100, RECORD_MALFORMED),
    CASE("name with '-'", "\0\0\0\x09\1\3a-b\0\0\0\0", 100,
         RECORD_MALFORMED),
    CASE("name with NUL", "\0\0\0\x08\1\2a\0\0\0\0\0", 100,
         RECORD_MALFORMED),
    CASE("name with space", "\0\0\0\x08\1\2a \0\0\0\0", 100,
         RECORD_MALFORMED),
    CASE("name of 64 bytes", "\0\0\0\x46\1\x40" NAME64 "\0\0\0\0", 100,
         RECORD_MALFORMED),
    CASE("name length 255", "\0\0\0\x06\1\xff\0\0\0\0", 100,
         RECORD_MALFORMED),
    CASE("duplicate name", "\0\0\0\x0d\1\1a\0\0\0\0\1a\0\0\0\0", 100,
         RECORD_MALFORMED),
    CASE("duplicate name apart",
         "\0\0\0\x13\1\1a\0\0\0\0\1b\0\0\0\0\1a\0\0\0\0", 100,
         RECORD_MALFORMED),
    CASE("value length past the end", "\0\0\0\x07\1\1a\0\0\0\5", 100,
         RECORD_MALFORMED),
    CASE("value length 4 GiB - 1", "\0\0\0\x08\1\1a\xff\xff\xff\xffx", 100,
         RECORD_MALFORMED),
    CASE("trailing name length only", "\0\0\0\x08\1\1a\0\0\0\0\3", 100,
         RECORD_TRUNCATED),
    CASE("trailing name, no value length", "\0\0\0\x09\1\1a\0\0\0\0\1b",
         100, RECORD_TRUNCATED),
    CASE("trailing value length cut", "\0\0\0\x0b\1\1a\0\0\0\0\1b\0\0", 100,
         RECORD_TRUNCATED),
    CASE("trailing zero byte", "\0\0\0\x08\1\1a\0\0\0\0\0", 100,
         RECORD_MALFORMED),
};

static void test_decode_rejects(void **state)
{
    (void)state;
    struct record r;
    record_init(&r);
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *c = &bad_cases[i];
        assert_int_equal(record_add_str(&r, "stale", "x"), RECORD_OK);
        int rc = record_decode(&r, c->wire, c->len, c->max);
        if (rc != c->status)
            fail_msg("%s: got %d (%s), want %d (%s)", c->what, rc,
                     record_status_text(rc), c->status,
                     record_status_text(c->status));
        assert_int_equal(r.count, 0); /* nothing half-decoded is left */
    }
    record_free(&r);
}

struct good_case {
    const char *what;
    const char *wire;
    size_t len;
    size_t max;
    size_t count; /* attributes decoded */
};

#define GOOD(what, bytes, max, count) \
    { what, bytes, sizeof(bytes) - 1, max, count }

/* The valid neighbours of the bad cases do decode. */
static void test_decode_accepts_edges(void **state)
{
    (void)state;
    static const struct good_case good[] = {
        GOOD("name of 63 bytes", "\0\0\0\x45\1\x3f" NAME63 "\0\0\0\0", 100,
             1),
        GOOD("exactly at the limit", "\0\0\0\x07\1\1a\0\0\0\0", 7, 1),
        GOOD("NUL in value", "\0\0\0\x09\1\1a\0\0\0\2\0\0", 100, 1),
        GOOD("digits and _", "\0\0\0\x0a\1\4_0z9\0\0\0\0", 100, 1),
        GOOD("two attributes", "\0\0\0\x0e\1\1a\0\0\0\0\1b\0\0\0\1x", 100,
             2),
        GOOD("no attributes", "\0\0\0\1\1", 1, 0),
    };
    struct record r;
    record_init(&r);
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int rc = record_decode(&r, good[i].wire, good[i].len, good[i].max);
        if (rc != RECORD_OK)
            fail_msg("%s: got %d (%s)", good[i].what, rc,
                     record_status_text(rc));
        assert_int_equal(r.count, good[i].count);
    }
    assert_int_equal(record_decode(&r, good[0].wire, good[0].len, 100),
                     RECORD_OK);
    assert_string_equal(r.attrs[0].name, NAME63);
    assert_int_equal(record_decode(&r, good[2].wire, good[2].len, 100),
                     RECORD_OK);
    assert_int_equal(r.attrs[0].value.len, 2);
    assert_null(record_get_str(&r, "a"));
    record_free(&r);
}

static void test_decode_many_attributes(void **state)
{
    (void)state;
    /* Thousands of attributes, last one a duplicate of the first. */
    struct buf wire;
    buf_init(&wire, 1024 * 1024);
    size_t count = 5000;
    assert_int_equal(buf_append(&wire, "\0\0\0\0\1", 5), 0);
    for (size_t i = 0; i <= count; i++) {
        char name[16];
        int n = snprintf(name, sizeof(name), "n%zu", i < count ? i : 0);
        assert_true(n > 0);
        assert_int_equal(buf_append_char(&wire, (char)n), 0);
        assert_int_equal(buf_append(&wire, name, (size_t)n), 0);
        assert_int_equal(buf_append(&wire, "\0\0\0\0", 4), 0);
    }
    size_t body = wire.len - 4;
    wire.data[0] = (char)(body >> 24);
    wire.data[1] = (char)(body >> 16);
    wire.data[2] = (char)(body >> 8);
    wire.data[3] = (char)body;
    struct record r;
    record_init(&r);
    assert_int_equal(record_decode(&r, wire.data, wire.len, body),
                     RECORD_MALFORMED);
    /* Without the duplicate it decodes. */
    size_t last = 1 + 2 + 4;
    buf_truncate(&wire, wire.len - last);
    body -= last;
    wire.data[2] = (char)(body >> 8);
    wire.data[3] = (char)body;
    assert_int_equal(body >> 16, 0);
    assert_int_equal(record_decode(&r, wire.data, wire.len, body),
                     RECORD_OK);
    assert_int_equal(r.count, count);
    assert_non_null(record_find(&r, "n4999"));
    record_free(&r);
    buf_free(&wire);
}

static void test_status_text(void **state)
{
    (void)state;
    static const int codes[] = {
        RECORD_OK,        RECORD_EOF,       RECORD_TIMEOUT,
        RECORD_IO_ERROR,  RECORD_TOO_LARGE, RECORD_TRUNCATED,
        RECORD_BAD_VERSION, RECORD_MALFORMED,
    };
    size_t n = sizeof(codes) / sizeof(codes[0]);
    for (size_t i = 0; i < n; i++) {
        const char *text = record_status_text(codes[i]);
        assert_non_null(text);
        assert_true(strlen(text) > 0);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(text, record_status_text(codes[j]));
    }
    assert_string_equal(record_status_text(RECORD_MALFORMED),
                         "malformed record");
    assert_non_null(record_status_text(12345));
}

/* ---- over a socket ---- */

static void test_write_read_socket(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct stream out;
    struct stream in;
    stream_init(&out, sv[0], 2000);
    stream_init(&in, sv[1], 2000);
    struct record r;
    record_init(&r);
    assert_int_equal(record_add_str(&r, "request", "deliver"), RECORD_OK);
    assert_int_equal(record_add_long(&r, "size", 5120), RECORD_OK);
    assert_int_equal(record_write(&out, &r), RECORD_OK);
    record_reset(&r);
    assert_int_equal(record_add_str(&r, "status", "sent"), RECORD_OK);
    assert_int_equal(record_write(&out, &r), RECORD_OK);
    assert_int_equal(stream_flush(&out), STREAM_OK);
    assert_int_equal(shutdown(sv[0], SHUT_WR), 0);
    struct record got;
    record_init(&got);
    assert_int_equal(record_read(&in, &got, 64 * 1024), RECORD_OK);
    assert_int_equal(got.count, 2);
    assert_string_equal(record_get_str(&got, "request"), "deliver");
    long size = 0;
    assert_int_equal(record_get_long(&got, "size", &size), 0);
    assert_int_equal(size, 5120);
    assert_int_equal(record_read(&in, &got, 64 * 1024), RECORD_OK);
    assert_int_equal(got.count, 1);
    assert_string_equal(record_get_str(&got, "status"), "sent");
    assert_int_equal(record_read(&in, &got, 64 * 1024), RECORD_EOF);
    assert_int_equal(got.count, 0);
    record_free(&got);
    record_free(&r);
    stream_free(&in);
    stream_free(&out);
    close_fd(sv[0]);
    close_fd(sv[1]);
}

/* Sends raw bytes, optionally closes, and reads one record. */
static int read_raw(const void *bytes, size_t len, int close_peer,
                    size_t max, int timeout_ms, struct record *r)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    if (len > 0)
        put_bytes(sv[0], bytes, len);
    if (close_peer)
        assert_int_equal(shutdown(sv[0], SHUT_WR), 0);
    struct stream s;
    stream_init(&s, sv[1], timeout_ms);
    int rc = record_read(&s, r, max);
    stream_free(&s);
    close_fd(sv[0]);
    close_fd(sv[1]);
    return rc;
}

static void test_read_failures(void **state)
{
    (void)state;
    struct record r;
    record_init(&r);
    /* Cut inside the length field, and inside the body. */
    assert_int_equal(read_raw(example_wire, 2, 1, 100, 2000, &r),
                     RECORD_TRUNCATED);
    assert_int_equal(read_raw(example_wire, sizeof(example_wire) - 1, 1, 100,
                              2000, &r),
                     RECORD_TRUNCATED);
    assert_int_equal(read_raw(example_wire, 4, 1, 100, 2000, &r),
                     RECORD_TRUNCATED);
    /* Clean EOF, and the example that does arrive whole. */
    assert_int_equal(read_raw(NULL, 0, 1, 100, 2000, &r), RECORD_EOF);
    assert_int_equal(read_raw(example_wire, sizeof(example_wire), 1, 100,
                              2000, &r),
                     RECORD_OK);
    assert_string_equal(record_get_str(&r, "request"), "ping");
    /* Over the limit: refused from the length alone, at once, although
     * the peer keeps the connection open and sends no body. */
    long long start = stream_now_ms();
    assert_int_equal(read_raw("\x40\0\0\0", 4, 0, 64 * 1024, 5000, &r),
                     RECORD_TOO_LARGE);
    assert_true(stream_now_ms() - start < 1000);
    assert_int_equal(r.count, 0);
    assert_int_equal(read_raw(example_wire, sizeof(example_wire), 1, 24,
                              2000, &r),
                     RECORD_TOO_LARGE);
    /* Decoding errors come through record_read too. */
    assert_int_equal(read_raw("\0\0\0\1\7", 5, 1, 100, 2000, &r),
                     RECORD_BAD_VERSION);
    assert_int_equal(read_raw("\0\0\0\6\1\0\0\0\0\0", 10, 1, 100, 2000, &r),
                     RECORD_MALFORMED);
    /* A silent peer: the length, then half a body, then nothing. */
    start = stream_now_ms();
    assert_int_equal(read_raw(example_wire, 10, 0, 100, 150, &r),
                     RECORD_TIMEOUT);
    long long took = stream_now_ms() - start;
    assert_true(took >= 140 && took < 1500);
    assert_int_equal(read_raw(NULL, 0, 0, 100, 100, &r), RECORD_TIMEOUT);
    record_free(&r);
}

static void test_read_large_record(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    size_t len = 600 * 1000;
    char *value = malloc(len);
    assert_non_null(value);
    for (size_t i = 0; i < len; i++)
        value[i] = (char)(i * 13);
    struct record r;
    record_init(&r);
    assert_int_equal(record_add(&r, "data", value, len), RECORD_OK);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct stream out;
        stream_init(&out, sv[0], 5000);
        int ok = record_write(&out, &r) == RECORD_OK &&
                 stream_flush(&out) == STREAM_OK;
        _exit(ok ? 0 : 1);
    }
    close_fd(sv[0]);
    struct stream in;
    stream_init(&in, sv[1], 5000);
    struct record got;
    record_init(&got);
    assert_int_equal(record_read(&in, &got, 1024 * 1024), RECORD_OK);
    const struct record_attr *a = record_find(&got, "data");
    assert_non_null(a);
    assert_int_equal(a->value.len, len);
    assert_memory_equal(a->value.data, value, len);
    assert_int_equal(record_read(&in, &got, 1024 * 1024), RECORD_EOF);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    record_free(&got);
    record_free(&r);
    stream_free(&in);
    close_fd(sv[1]);
    free(value);
}

int main(void)
{
    log_init("test", 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_and_find),
        cmocka_unit_test(test_get_long_strict),
        cmocka_unit_test(test_add_rejects_bad_names),
        cmocka_unit_test(test_encode_example),
        cmocka_unit_test(test_decode_example),
        cmocka_unit_test(test_example_variants),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_decode_rejects),
        cmocka_unit_test(test_decode_accepts_edges),
        cmocka_unit_test(test_decode_many_attributes),
        cmocka_unit_test(test_status_text),
        cmocka_unit_test(test_write_read_socket),
        cmocka_unit_test(test_read_failures),
        cmocka_unit_test(test_read_large_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
