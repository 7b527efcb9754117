/*
 * test_table_live - the live-table property of hash: tables: a reader that
 * keeps a table open while postino-map rebuilds it never sees an error or
 * a half-written table, and picks up the new versions.
 *
 * A child process rebuilds the same hash table 100 times through the
 * writer API (each version: the same 1000 "stable" keys, a "version"
 * key, and 50 keys of its own), at most one build every 12 ms, so that the
 * rebuilds span more than one reopen check.  Meanwhile the parent looks up
 * stable keys in a tight loop: every lookup must find the right value, and the
 * parent must see rebuilt versions, the last one within the reopen check
 * interval (1 s) after the child is done (about 2.5 s).
 *
 * Also: a FILE.db replaced by a file that cannot be opened leaves the
 * reader on the old table (with a warning), and a good rebuild after it
 * is picked up (2.2 s); two writers of one directory wait for each other.
 *
 * Run: build/<cc>/tests/test_table_live
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "unit_dir.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "table.h"
#include "table_db.h"

#define STABLE_KEYS 1000
#define OWN_KEYS 50
#define VERSIONS 100
#define BUILD_PACE 0.012 /* seconds: builds start no faster than this */

static double now_seconds(void)
{
    struct timespec t;
    if (clock_gettime(CLOCK_MONOTONIC, &t) != 0)
        return 0;
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Builds version of the table; 0 or -1 (the reason printed). */
static int build_version(const char *db_path, int version)
{
    struct buf error;
    buf_init(&error, 4096);
    struct table_db_writer *w = table_db_writer_create(
        db_path, "hash", STABLE_KEYS + OWN_KEYS + 1, 0, &error);
    int rc = w == NULL ? -1 : 0;
    char key[64], value[64];
    for (int i = 0; rc == 0 && i < STABLE_KEYS; i++) {
        int key_len = snprintf(key, sizeof(key), "stable%d", i);
        int value_len = snprintf(value, sizeof(value), "value%d", i);
        if (table_db_writer_put(w, key, (size_t)key_len, value,
                                (size_t)value_len, 0, &error) != 0)
            rc = -1;
    }
    for (int i = 0; rc == 0 && i < OWN_KEYS; i++) {
        int key_len = snprintf(key, sizeof(key), "v%d-%d", version, i);
        if (table_db_writer_put(w, key, (size_t)key_len, "x", 1, 0,
                                &error) != 0)
            rc = -1;
    }
    int value_len = snprintf(value, sizeof(value), "%d", version);
    if (rc == 0 && table_db_writer_put(w, "version", 7, value,
                                       (size_t)value_len, 0, &error) != 0)
        rc = -1;
    if (rc == 0)
        rc = table_db_writer_commit(w, &error);
    else
        table_db_writer_abort(w);
    if (rc != 0)
        fprintf(stderr, "version %d: %s\n", version, buf_cstr(&error));
    buf_free(&error);
    return rc;
}

static _Noreturn void rebuild_in_child(const char *db_path)
{
    double started = now_seconds();
    for (int version = 1; version <= VERSIONS; version++) {
        double ahead = started + version * BUILD_PACE - now_seconds();
        if (ahead > 0) {
            struct timespec pause = {0, (long)(ahead * 1e9)};
            (void)nanosleep(&pause, NULL);
        }
        if (build_version(db_path, version) != 0)
            _exit(1);
    }
    _exit(0);
}

struct reader_result {
    long lookups;
    long errors;
    long misses;
    int versions_seen; /* how many times the version changed */
    int last_version;
};

/* One round of the reader: a stable key, and now and then the version. */
static void read_once(struct table *t, struct reader_result *r,
                      struct buf *value, struct buf *error)
{
    char key[64], expected[64];
    int i = (int)(r->lookups % STABLE_KEYS);
    (void)snprintf(key, sizeof(key), "Stable%d", i);
    (void)snprintf(expected, sizeof(expected), "value%d", i);
    r->lookups++;
    int rc = table_lookup(t, key, value, error);
    if (rc == TABLE_ERROR)
        r->errors++;
    else if (rc != TABLE_FOUND || strcmp(buf_cstr(value), expected) != 0)
        r->misses++;
    if (r->lookups % 100 != 0)
        return;
    if (table_lookup(t, "version", value, error) != TABLE_FOUND) {
        r->errors++;
        return;
    }
    int version = atoi(buf_cstr(value));
    if (version != r->last_version) {
        r->versions_seen++;
        r->last_version = version;
    }
}


struct scratch {
    struct buf dir, db_path, spec, value, error;
};

static void scratch_open(struct scratch *s)
{
    buf_init(&s->dir, PATH_MAX);
    buf_init(&s->db_path, PATH_MAX);
    buf_init(&s->spec, PATH_MAX);
    buf_init(&s->value, TABLE_VALUE_MAX);
    buf_init(&s->error, 4096);
    const char *tmp = getenv("TMPDIR");
    assert_int_equal(buf_printf(&s->dir, "%s/test_table_live.XXXXXX",
                                tmp && tmp[0] ? tmp : "/tmp"), 0);
    assert_non_null(mkdtemp(s->dir.data));
    assert_int_equal(buf_printf(&s->db_path, "%s/live.db", s->dir.data), 0);
    assert_int_equal(buf_printf(&s->spec, "hash:%s/live", s->dir.data), 0);
}

static void scratch_close(struct scratch *s)
{
    unit_dir_remove(s->dir.data);
    buf_free(&s->dir);
    buf_free(&s->db_path);
    buf_free(&s->spec);
    buf_free(&s->value);
    buf_free(&s->error);
}

static void test_live_rebuild(void **state)
{
    (void)state;
    struct scratch s;
    scratch_open(&s);
    assert_int_equal(build_version(s.db_path.data, 0), 0);
    struct table *t = table_open(s.spec.data, 0, &s.error);
    assert_non_null(t);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0)
        rebuild_in_child(s.db_path.data);

    struct reader_result r = {0, 0, 0, 0, 0};
    double started = now_seconds(), child_done = 0;
    int status = -1;
    while (now_seconds() - started < 20) {
        read_once(t, &r, &s.value, &s.error);
        if (child_done == 0 && r.lookups % 1000 == 0 &&
            waitpid(child, &status, WNOHANG) == child)
            child_done = now_seconds();
        if (child_done != 0 && now_seconds() - child_done > 1.3)
            break;
    }
    print_message("%ld lookups in %.1f s, %d versions seen, last %d; "
                  "errors %ld, misses %ld\n",
                  r.lookups, now_seconds() - started, r.versions_seen,
                  r.last_version, r.errors, r.misses);
    if (s.error.len > 0)
        print_message("first error: %s\n", s.error.data);
    table_close(t);
    scratch_close(&s);
    assert_true(child_done != 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(r.errors, 0);
    assert_int_equal(r.misses, 0);
    assert_true(r.versions_seen >= 2); /* some in between, and the last */
    assert_int_equal(r.last_version, VERSIONS);
}

static void sleep_seconds(double seconds)
{
    struct timespec pause = {(time_t)seconds,
                             (long)((seconds - (double)(time_t)seconds) *
                                    1e9)};
    while (nanosleep(&pause, &pause) != 0)
        ;
}

static void expect_version(struct scratch *s, struct table *t,
                           const char *version)
{
    assert_int_equal(table_lookup(t, "stable7", &s->value, &s->error),
                     TABLE_FOUND);
    assert_string_equal(buf_cstr(&s->value), "value7");
    assert_int_equal(table_lookup(t, "version", &s->value, &s->error),
                     TABLE_FOUND);
    assert_string_equal(buf_cstr(&s->value), version);
}

static void test_bad_replacement_keeps_old(void **state)
{
    (void)state;
    struct scratch s;
    scratch_open(&s);
    assert_int_equal(build_version(s.db_path.data, 1), 0);
    struct table *t = table_open(s.spec.data, 0, &s.error);
    assert_non_null(t);
    expect_version(&s, t, "1");

    /* A file that is no database, renamed over FILE.db. */
    struct buf garbage_path;
    buf_init(&garbage_path, PATH_MAX);
    assert_int_equal(buf_printf(&garbage_path, "%s/garbage", s.dir.data), 0);
    FILE *garbage = fopen(garbage_path.data, "w");
    assert_non_null(garbage);
    for (int i = 0; i < 8192; i++)
        assert_true(fputc('x', garbage) != EOF);
    assert_int_equal(fclose(garbage), 0);
    assert_int_equal(rename(garbage_path.data, s.db_path.data), 0);
    buf_free(&garbage_path);
    sleep_seconds(1.1);
    expect_version(&s, t, "1"); /* the old table, and a warning */

    assert_int_equal(build_version(s.db_path.data, 2), 0);
    sleep_seconds(1.1);
    expect_version(&s, t, "2");
    table_close(t);
    scratch_close(&s);
}

static void test_writers_wait_for_each_other(void **state)
{
    (void)state;
    struct scratch s;
    scratch_open(&s);
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        struct table_db_writer *w = table_db_writer_create(
            s.db_path.data, "hash", 0, 0, &s.error);
        char byte = 'r';
        if (w == NULL || write(ready[1], &byte, 1) != 1)
            _exit(1);
        sleep_seconds(0.4);
        _exit(table_db_writer_commit(w, &s.error) == 0 ? 0 : 1);
    }
    char byte = 0;
    assert_int_equal(close(ready[1]), 0);
    assert_int_equal(read(ready[0], &byte, 1), 1);
    assert_int_equal(close(ready[0]), 0);
    double asked = now_seconds();
    struct table_db_writer *w =
        table_db_writer_create(s.db_path.data, "hash", 0, 1, &s.error);
    double waited = now_seconds() - asked;
    assert_non_null(w);
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    print_message("the second writer waited %.2f s\n", waited);
    assert_true(waited > 0.2);
    assert_int_equal(table_db_writer_commit(w, &s.error), 0);
    scratch_close(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_live_rebuild),
        cmocka_unit_test(test_bad_replacement_keeps_old),
        cmocka_unit_test(test_writers_wait_for_each_other),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
