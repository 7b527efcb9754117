/*
 * test_recipient_log - appending and reading the defer, bounce and trace
 * logs of a message: round trip of every field, the last entry of a
 * recipient, the delay-notice marker, a record cut by a crash, damage;
 * what recipient_log_probe tells of a missing, an empty and a written log.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "recipient_log.h"
#include "unit_dir.h"

static const char *ID = "4F2A91B3D";

static int setup(void **state)
{
    char *dir = unit_dir_make("recipient-log-test");
    assert_int_equal(chdir(dir), 0);
    assert_int_equal(mkdir("defer", 0700), 0);
    *state = dir;
    return 0;
}

static int teardown(void **state)
{
    char *dir = *state;
    assert_int_equal(chdir("/"), 0);
    unit_dir_remove(dir);
    free(dir);
    return 0;
}

static void append(const char *rcpt, const char *status, const char *text)
{
    struct recipient_log_entry e = {
        .recipient = (char *)rcpt, .status = (char *)status,
        .action = "delayed", .text = (char *)text, .offset = 120,
        .time = 1700000000,
    };
    struct buf error;
    buf_init(&error, 1024);
    assert_int_equal(recipient_log_append("defer", ID, &e, &error), 0);
    buf_free(&error);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct recipient_log_entry e = {
        .recipient = "bob@example.net", .orcpt = "rfc822;b@example.net",
        .notify = "SUCCESS,FAILURE", .offset = 77, .status = "4.4.1",
        .action = "delayed", .text = "connection refused",
        .remote_mta = "dns; mx.example.net",
        .diagnostic = "smtp; 421 4.4.1 try later", .time = 1234,
    };
    struct buf error;
    buf_init(&error, 1024);
    assert_int_equal(recipient_log_probe("defer", ID), 0);
    assert_int_equal(recipient_log_append("defer", ID, &e, &error), 0);
    assert_true(recipient_log_exists("defer", ID));
    assert_int_equal(recipient_log_probe("defer", ID), 1);
    struct recipient_log log;
    assert_int_equal(recipient_log_read(&log, "defer", ID, &error), 0);
    assert_int_equal(log.count, 1);
    const struct recipient_log_entry *r = &log.entries[0];
    assert_string_equal(r->recipient, "bob@example.net");
    assert_string_equal(r->orcpt, "rfc822;b@example.net");
    assert_string_equal(r->notify, "SUCCESS,FAILURE");
    assert_int_equal(r->offset, 77);
    assert_string_equal(r->status, "4.4.1");
    assert_string_equal(r->action, "delayed");
    assert_string_equal(r->text, "connection refused");
    assert_string_equal(r->remote_mta, "dns; mx.example.net");
    assert_string_equal(r->diagnostic, "smtp; 421 4.4.1 try later");
    assert_int_equal(r->time, 1234);
    assert_false(log.truncated);
    recipient_log_free(&log);
    assert_int_equal(recipient_log_remove("defer", ID), 0);
    assert_false(recipient_log_exists("defer", ID));
    assert_int_equal(recipient_log_remove("defer", ID), 0);
    assert_int_equal(recipient_log_probe("defer", ID), 0);
    /* An empty file: no entry, but a file to remove. */
    int fd = open("defer/4F2A91B3D", O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(close(fd), 0);
    assert_int_equal(recipient_log_probe("defer", ID), -1);
    assert_false(recipient_log_exists("defer", ID));
    assert_int_equal(recipient_log_remove("defer", ID), 0);
    buf_free(&error);
}

static void test_last_entry_and_warning(void **state)
{
    (void)state;
    append("a@x", "4.0.0", "first");
    append("b@x", "4.0.0", "other");
    append("a@x", "4.2.2", "second");
    struct recipient_log_entry warned = { .recipient = "", .action = "warned",
                                          .offset = -1 };
    struct buf error;
    buf_init(&error, 1024);
    struct recipient_log log;
    assert_int_equal(recipient_log_read(&log, "defer", ID, &error), 0);
    assert_false(recipient_log_has_warning(&log));
    assert_string_equal(recipient_log_last(&log, "a@x")->text, "second");
    assert_null(recipient_log_last(&log, "c@x"));
    recipient_log_free(&log);
    assert_int_equal(recipient_log_append("defer", ID, &warned, &error), 0);
    assert_int_equal(recipient_log_read(&log, "defer", ID, &error), 0);
    assert_true(recipient_log_has_warning(&log));
    assert_int_equal(log.count, 4);
    assert_int_equal(log.entries[3].offset, -1);
    recipient_log_free(&log);
    buf_free(&error);
}

static void test_missing_log_is_empty(void **state)
{
    (void)state;
    struct buf error;
    buf_init(&error, 1024);
    struct recipient_log log;
    assert_int_equal(recipient_log_read(&log, "defer", "ABCDEF", &error), 0);
    assert_int_equal(log.count, 0);
    recipient_log_free(&log);
    buf_free(&error);
}

static void test_cut_record_is_ignored(void **state)
{
    (void)state;
    append("a@x", "4.0.0", "whole");
    append("b@x", "4.0.0", "cut");
    struct stat st;
    assert_int_equal(stat("defer/4F2A91B3D", &st), 0);
    assert_int_equal(truncate("defer/4F2A91B3D", st.st_size - 3), 0);
    struct buf error;
    buf_init(&error, 1024);
    struct recipient_log log;
    assert_int_equal(recipient_log_read(&log, "defer", ID, &error), 0);
    assert_int_equal(log.count, 1);
    assert_true(log.truncated);
    assert_string_equal(log.entries[0].text, "whole");
    recipient_log_free(&log);
    buf_free(&error);
}

static void test_damaged_log_is_an_error(void **state)
{
    (void)state;
    int fd = open("defer/4F2A91B3D", O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    /* A record with a bad version byte. */
    assert_int_equal(write(fd, "\0\0\0\1\7", 5), 5);
    close(fd);
    struct buf error;
    buf_init(&error, 1024);
    struct recipient_log log;
    assert_int_equal(recipient_log_read(&log, "defer", ID, &error), -1);
    assert_non_null(strstr(buf_cstr(&error), "malformed entry"));
    buf_free(&error);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_last_entry_and_warning, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_missing_log_is_empty, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cut_record_is_ignored, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_damaged_log_is_an_error, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
