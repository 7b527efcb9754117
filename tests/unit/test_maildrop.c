/*
 * Unit tests for lib/maildrop: a file written and read back, the internal
 * form on a pipe, and the records a hostile local user might write, each
 * refused with its reason.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "unit_dir.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "maildrop.h"



static void sample_envelope(struct maildrop_envelope *env)
{
    struct buf error;
    buf_init(&error, 256);
    maildrop_envelope_init(env);
    buf_set_str(&env->sender, "alice");
    env->have_sender = 1;
    env->flags = MAILDROP_FLAG_EXTRACT;
    buf_set_str(&env->full_name, "Alice Example");
    buf_set_str(&env->extract_notify, "DELAY");
    env->time_sec = 1764621611;
    env->time_usec = 42;
    env->uid = 1000;
    assert_int_equal(maildrop_envelope_add_recipient(env, "bob@example.org",
                                                     NULL, &error), 0);
    assert_int_equal(maildrop_envelope_add_recipient(env, "carol",
                                                     "failure,delay", &error),
                     0);
    buf_free(&error);
}

static void test_file_round_trip(void **state)
{
    (void)state;
    char *dir = unit_dir_make("maildrop-test");
    struct buf error;
    buf_init(&error, 1024);
    struct maildrop_envelope env;
    sample_envelope(&env);
    struct maildrop_file f;
    assert_int_equal(maildrop_file_create(&f, dir, &error), 0);
    assert_int_equal(maildrop_put_envelope(&f.out, &env, MAILDROP_FILE), 0);
    assert_int_equal(maildrop_put_content(&f.out, "Subject: hi\n\nbody\n", 18),
                     0);
    assert_int_equal(maildrop_put_end(&f.out), 0);
    char id[QUEUE_ID_SIZE];
    assert_int_equal(maildrop_file_commit(&f, id, &error), 0);
    assert_true(queue_id_valid(id));
    maildrop_envelope_free(&env);

    struct buf path;
    buf_init(&path, 4096);
    buf_printf(&path, "%s/%s", dir, id);
    struct stat st;
    assert_int_equal(stat(path.data, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    FILE *fp = fopen(path.data, "r");
    assert_non_null(fp);
    struct maildrop_reader r;
    maildrop_reader_attach(&r, fileno(fp), MAILDROP_FILE, 1000);
    struct maildrop_envelope back;
    maildrop_envelope_init(&back);
    assert_int_equal(maildrop_reader_envelope(&r, &back, &error), 0);
    assert_string_equal(buf_cstr(&back.sender), "alice");
    assert_string_equal(buf_cstr(&back.full_name), "Alice Example");
    assert_string_equal(buf_cstr(&back.extract_notify), "DELAY");
    assert_int_equal(back.flags, MAILDROP_FLAG_EXTRACT);
    assert_int_equal(back.uid, 1000);
    assert_int_equal(back.time_sec, 1764621611);
    assert_int_equal(back.rcpt_count, 2);
    assert_string_equal(back.rcpt[0].address, "bob@example.org");
    assert_null(back.rcpt[0].notify);
    assert_string_equal(back.rcpt[1].notify, "FAILURE,DELAY");
    const char *data;
    size_t len;
    struct buf content;
    buf_init(&content, 1000);
    int rc;
    while ((rc = maildrop_reader_content(&r, &data, &len, &error)) == 1)
        buf_append(&content, data, len);
    assert_int_equal(rc, 0);
    assert_string_equal(buf_cstr(&content), "Subject: hi\n\nbody\n");
    maildrop_reader_free(&r);
    maildrop_envelope_free(&back);
    fclose(fp);
    buf_free(&content);
    buf_free(&path);
    buf_free(&error);
    unit_dir_remove(dir);
    free(dir);
}

/* Records as bytes, for hostile files. */
static void rec(struct buf *b, int type, const char *data)
{
    size_t len = strlen(data);
    unsigned char h[5] = { (unsigned char)type, 0, 0, (unsigned char)(len >> 8),
                           (unsigned char)len };
    buf_append(b, h, 5);
    buf_append(b, data, len);
}

static const char *zeros =
    "              0               0               0";

/* Feeds bytes through a pipe to a reader of the given source; returns
 * the reader's verdict: 0 read to the end, -1 refused (reason in why). */
static int read_bytes(const struct buf *bytes, enum maildrop_source source,
                      long long max, char *why, size_t why_size)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_true(bytes->len < 60000);
    assert_int_equal(write(fds[1], bytes->data, bytes->len),
                     (ssize_t)bytes->len);
    close(fds[1]);
    struct maildrop_reader r;
    maildrop_reader_attach(&r, fds[0], source, max);
    struct maildrop_envelope env;
    maildrop_envelope_init(&env);
    struct buf error;
    buf_init(&error, 1024);
    int rc = maildrop_reader_envelope(&r, &env, &error);
    if (rc == 0) {
        const char *data;
        size_t len;
        while ((rc = maildrop_reader_content(&r, &data, &len, &error)) == 1)
            ;
    }
    snprintf(why, why_size, "%s", buf_cstr(&error));
    buf_free(&error);
    maildrop_envelope_free(&env);
    maildrop_reader_free(&r);
    close(fds[0]);
    return rc;
}

struct hostile_case {
    const char *name;
    const char *records; /* type letters; data from the table below */
    const char *data[12];
    enum maildrop_source source;
    const char *reason; /* substring of the error; NULL: accepted */
};

static const struct hostile_case hostile_cases[] = {
    { "good input", "VSFRMBXE",
      { "1", "", "alice", "bob", "", "hi\n", "", "" }, MAILDROP_INPUT, NULL },
    { "time in input", "VSTFRMXE",
      { "1", "", "1.000000", "alice", "bob", "", "", "" }, MAILDROP_INPUT,
      "time" },
    { "uid in input", "VSAFRMXE",
      { "1", "", "uid=0", "alice", "bob", "", "", "" }, MAILDROP_INPUT,
      "unknown attribute" },
    { "unknown flag", "VSAFRMXE",
      { "1", "", "flags=3", "alice", "bob", "", "", "" }, MAILDROP_INPUT,
      "flags" },
    { "newline in full name", "VSAFRMXE",
      { "1", "", "full_name=x\nBcc: eve", "alice", "bob", "", "", "" },
      MAILDROP_INPUT, "full_name" },
    { "two senders", "VSFFRMXE",
      { "1", "", "alice", "mallory", "bob", "", "", "" }, MAILDROP_INPUT,
      "second sender" },
    { "control in recipient", "VSFRMXE",
      { "1", "", "alice", "bob\r\n", "", "", "" }, MAILDROP_INPUT,
      "control" },
    { "recipient before sender", "VSRFMXE",
      { "1", "", "bob", "alice", "", "", "" }, MAILDROP_INPUT, "before" },
    { "done record", "VSFDMXE",
      { "1", "", "alice", "bob", "", "", "" }, MAILDROP_INPUT, "not allowed" },
    { "no end", "VSFRMB",
      { "1", "", "alice", "bob", "", "hi\n" }, MAILDROP_INPUT, "ends" },
    { "recipient after content", "VSFRMXRE",
      { "1", "", "alice", "bob", "", "", "eve", "" }, MAILDROP_INPUT,
      "after the content" },
    { "too large", "VSFRMBBXE",
      { "1", "", "alice", "bob", "", "0123456789", "0123456789", "", "" },
      MAILDROP_INPUT, "larger than" },
    { "file without time", "VSAFRMXE",
      { "1", "", "uid=5", "alice", "bob", "", "", "" }, MAILDROP_FILE,
      "incomplete" },
    { "good file", "VSTAFRMXE",
      { "1", "", "1764621611.000001", "uid=5", "alice", "bob", "", "", "" },
      MAILDROP_FILE, NULL },
    { "sender gave up", "VSFRMBXAE",
      { "1", "", "alice", "bob", "", "part", "", "abort=1", "" },
      MAILDROP_INPUT, "gave up" },
    { "abort in a file", "VSTAFRMXAE",
      { "1", "", "1764621611.000001", "uid=5", "alice", "bob", "", "",
        "abort=1", "" },
      MAILDROP_FILE, "after the content" },
    { "extract notify", "VSAAFRMXE",
      { "1", "", "flags=8", "extract_notify=never", "alice", "bob", "", "",
        "" }, MAILDROP_INPUT, NULL },
    { "bad extract notify", "VSAFRMXE",
      { "1", "", "extract_notify=SOMETIMES", "alice", "bob", "", "", "" },
      MAILDROP_INPUT, "extract_notify" },
    { "two extract notify", "VSAAFRMXE",
      { "1", "", "extract_notify=DELAY", "extract_notify=DELAY", "alice",
        "bob", "", "", "" }, MAILDROP_INPUT, "extract_notify" },
    { "bad notify", "VSFNRMXE",
      { "1", "", "alice", "SOMETIMES", "bob", "", "", "" }, MAILDROP_INPUT,
      "notify" },
};

static void test_hostile_records(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(hostile_cases) / sizeof(hostile_cases[0]);
         i++) {
        const struct hostile_case *c = &hostile_cases[i];
        struct buf bytes;
        buf_init(&bytes, 100000);
        for (size_t j = 0; c->records[j] != '\0'; j++)
            rec(&bytes, c->records[j],
                c->records[j] == 'S' ? zeros : c->data[j]);
        char why[1024];
        int rc = read_bytes(&bytes, c->source, 15, why, sizeof(why));
        if (c->reason == NULL) {
            if (rc != 0)
                fail_msg("%s: refused: %s", c->name, why);
        } else {
            if (rc != -1 || strstr(why, c->reason) == NULL)
                fail_msg("%s: rc %d, reason \"%s\", wanted \"%s\"", c->name,
                         rc, why, c->reason);
        }
        buf_free(&bytes);
    }
}

static void test_garbage_is_refused(void **state)
{
    (void)state;
    struct buf bytes;
    buf_init(&bytes, 1000);
    buf_set_str(&bytes, "From: someone\nSubject: not records\n\n");
    char why[1024];
    assert_int_equal(read_bytes(&bytes, MAILDROP_FILE, 0, why, sizeof(why)),
                     -1);
    assert_non_null(strstr(why, "corrupt"));
    buf_free(&bytes);
}

static void test_address_checks(void **state)
{
    (void)state;
    static const struct { const char *address; int ok; } cases[] = {
        { "user", 1 },
        { "user@example.com", 1 },
        { "\"john doe\"@example.com", 1 },
        { "user@[192.0.2.1]", 1 },
        { "", 0 },
        { "a b@example.com", 0 },
        { "<user@example.com>", 0 },
        { "a,b", 0 },
        { "-oQ/tmp", 0 },
        { "\"unbalanced@example.com", 0 },
        { "tab\there", 0 },
    };
    struct buf error;
    buf_init(&error, 256);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf_reset(&error);
        int rc = maildrop_check_address(cases[i].address,
                                        strlen(cases[i].address), 0, &error);
        if ((rc == 0) != cases[i].ok)
            fail_msg("\"%s\": rc %d (%s)", cases[i].address, rc,
                     buf_cstr(&error));
    }
    assert_int_equal(maildrop_check_address("", 0, 1, &error), 0);
    buf_free(&error);
}

static void test_notify(void **state)
{
    (void)state;
    struct buf out;
    buf_init(&out, 64);
    assert_int_equal(maildrop_check_notify("never", &out), 0);
    assert_string_equal(buf_cstr(&out), "NEVER");
    assert_int_equal(maildrop_check_notify("delay,Success", &out), 0);
    assert_string_equal(buf_cstr(&out), "DELAY,SUCCESS");
    assert_int_equal(maildrop_check_notify("", &out), -1);
    assert_int_equal(maildrop_check_notify("delay,", &out), -1);
    assert_int_equal(maildrop_check_notify("delay,delay", &out), -1);
    assert_int_equal(maildrop_check_notify("never,delay", &out), -1);
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_round_trip),
        cmocka_unit_test(test_hostile_records),
        cmocka_unit_test(test_garbage_is_refused),
        cmocka_unit_test(test_address_checks),
        cmocka_unit_test(test_notify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
