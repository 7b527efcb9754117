/*
 * test_bounce_report - the notice of the bounce daemon: NOTIFY and the
 * choice of recipients, reading the original from a queue file, and the
 * notice's parts, fields, encodings and line lengths.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../daemons/bounce/bounce_report.h"
#include "queue_file.h"
#include "unit_dir.h"

static void test_kind_parse(void **state)
{
    (void)state;
    enum bounce_kind k;
    assert_int_equal(bounce_kind_parse("failure", &k), 0);
    assert_int_equal(k, BOUNCE_FAILURE);
    assert_int_equal(bounce_kind_parse("delay", &k), 0);
    assert_int_equal(k, BOUNCE_DELAY);
    assert_int_equal(bounce_kind_parse("success", &k), 0);
    assert_int_equal(k, BOUNCE_SUCCESS);
    assert_int_equal(bounce_kind_parse("Failure", &k), -1);
    assert_int_equal(bounce_kind_parse("", &k), -1);
    assert_int_equal(bounce_kind_parse(NULL, &k), -1);
}

static void test_notify_wants(void **state)
{
    (void)state;
    static const struct {
        const char *notify;
        int failure, delay, success;
    } cases[] = {
        { NULL, 1, 1, 0 },
        { "", 1, 1, 0 },
        { "NEVER", 0, 0, 0 },
        { "FAILURE", 1, 0, 0 },
        { "DELAY", 0, 1, 0 },
        { "SUCCESS", 0, 0, 1 },
        { "SUCCESS,FAILURE", 1, 0, 1 },
        { "failure,delay", 1, 1, 0 },
        { "FAILUREX", 0, 0, 0 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(bounce_notify_wants(cases[i].notify, BOUNCE_FAILURE),
                         cases[i].failure);
        assert_int_equal(bounce_notify_wants(cases[i].notify, BOUNCE_DELAY),
                         cases[i].delay);
        assert_int_equal(bounce_notify_wants(cases[i].notify, BOUNCE_SUCCESS),
                         cases[i].success);
    }
}

static void test_select_last_entry_and_notify(void **state)
{
    (void)state;
    struct recipient_log_entry e[] = {
        { .recipient = "a@x", .status = "4.0.0", .text = "first" },
        { .recipient = "b@x", .notify = "NEVER", .status = "4.0.0" },
        { .recipient = "", .action = "warned" },
        { .recipient = "c@x", .notify = "SUCCESS", .status = "4.0.0" },
        { .recipient = "a@x", .status = "4.4.1", .text = "second" },
        { .recipient = "d@x", .notify = "DELAY", .status = "4.2.2" },
    };
    struct recipient_log log = { .entries = e, .count = 6 };
    struct bounce_selection sel;
    assert_int_equal(bounce_report_select(&log, BOUNCE_DELAY, &sel), 0);
    assert_int_equal(sel.count, 2);
    assert_ptr_equal(sel.items[0], &e[4]);
    assert_ptr_equal(sel.items[1], &e[5]);
    bounce_selection_free(&sel);
    assert_int_equal(bounce_report_select(&log, BOUNCE_SUCCESS, &sel), 0);
    assert_int_equal(sel.count, 1);
    assert_ptr_equal(sel.items[0], &e[3]);
    bounce_selection_free(&sel);
    struct recipient_log empty = { 0 };
    assert_int_equal(bounce_report_select(&empty, BOUNCE_FAILURE, &sel), 0);
    assert_int_equal(sel.count, 0);
    bounce_selection_free(&sel);
}

/* --- The original, from a real queue file ------------------------------- */

static int setup_dir(void **state)
{
    char *dir = unit_dir_make("bounce-report-test");
    assert_int_equal(chdir(dir), 0);
    assert_int_equal(mkdir("incoming", 0700), 0);
    *state = dir;
    return 0;
}

static int teardown_dir(void **state)
{
    char *dir = *state;
    assert_int_equal(chdir("/"), 0);
    unit_dir_remove(dir);
    free(dir);
    return 0;
}

static void add(struct queue_writer *w, int type, const char *text)
{
    assert_int_equal(queue_writer_add(w, type, text, strlen(text)), 0);
}

/* A queue file in incoming/; its path in path. */
static void write_queue_file(const char *sender, const char *content,
                             struct buf *path)
{
    struct queue_writer w;
    struct buf error;
    buf_init(&error, 1024);
    assert_int_equal(queue_writer_open(&w, "incoming", &error), 0);
    add(&w, QUEUE_REC_TIME, "1700000000.123456");
    add(&w, QUEUE_REC_ATTR, "dsn_envid=ENV-42");
    add(&w, QUEUE_REC_ATTR, "dsn_ret=HDRS");
    add(&w, QUEUE_REC_ATTR, "smtputf8=1");
    add(&w, QUEUE_REC_SENDER, sender);
    add(&w, QUEUE_REC_RCPT, "bob@example.net");
    assert_int_equal(queue_writer_add_content(&w, content, strlen(content)),
                     0);
    char id[QUEUE_ID_SIZE];
    assert_int_equal(queue_writer_commit(&w, id, &error), 0);
    buf_reset(path);
    assert_int_equal(buf_printf(path, "incoming/%s", id), 0);
    buf_free(&error);
}

static void test_original_read(void **state)
{
    (void)state;
    struct buf path, error;
    buf_init(&path, 4096);
    buf_init(&error, 1024);
    write_queue_file("alice@example.com",
                     "Subject: hi\nFrom: alice@example.com\n\nbody 1\nbody 2\n",
                     &path);
    struct bounce_original o;
    bounce_original_init(&o);
    assert_int_equal(bounce_original_read(&o, buf_cstr(&path), 1000, &error),
                     0);
    assert_string_equal(buf_cstr(&o.sender), "alice@example.com");
    assert_int_equal(o.arrival, 1700000000);
    assert_string_equal(buf_cstr(&o.envid), "ENV-42");
    assert_true(o.ret_hdrs);
    assert_true(o.smtputf8);
    assert_true(o.body_kept);
    assert_string_equal(buf_cstr(&o.header),
                        "Subject: hi\nFrom: alice@example.com\n");
    assert_string_equal(buf_cstr(&o.body), "body 1\nbody 2\n");
    bounce_original_free(&o);

    /* Over the limit: the header only. */
    bounce_original_init(&o);
    assert_int_equal(bounce_original_read(&o, buf_cstr(&path), 10, &error),
                     0);
    assert_false(o.body_kept);
    assert_string_equal(buf_cstr(&o.header),
                        "Subject: hi\nFrom: alice@example.com\n");
    assert_int_equal(o.body.len, 0);
    bounce_original_free(&o);

    /* A missing file is an error with the reason. */
    bounce_original_init(&o);
    assert_int_equal(bounce_original_read(&o, "incoming/NOPE", 10, &error),
                     -1);
    assert_non_null(strstr(buf_cstr(&error), "incoming/NOPE"));
    bounce_original_free(&o);
    buf_free(&path);
    buf_free(&error);
}

/* --- The notice --------------------------------------------------------- */

static void original(struct bounce_original *o, const char *header,
                     const char *body)
{
    bounce_original_init(o);
    assert_int_equal(buf_set_str(&o->sender, "alice@example.com"), 0);
    assert_int_equal(buf_set_str(&o->header, header), 0);
    assert_int_equal(buf_set_str(&o->body, body), 0);
    o->body_kept = 1;
    o->arrival = 1700000000;
    o->content_size = (long)(strlen(header) + 1 + strlen(body));
}

static void compose_copy(enum bounce_kind kind, int postmaster_copy,
                         const struct bounce_original *o,
                         struct recipient_log_entry *entries, size_t n,
                         struct buf *out)
{
    struct bounce_selection sel = { 0 };
    const struct recipient_log_entry *items[8];
    for (size_t i = 0; i < n; i++)
        items[i] = &entries[i];
    sel.items = items;
    sel.count = n;
    struct bounce_report r = {
        .kind = kind, .myhostname = "mx.example.net", .mail_name = "Postino",
        .queue_id = "ABCDE123", .new_queue_id = "FEDCB987",
        .to = "alice@example.com", .now = 1700000500,
        .queue_lifetime = 5 * 86400, .postmaster_copy = postmaster_copy,
    };
    buf_init(out, BUF_LIMIT_MAX);
    assert_int_equal(bounce_report_compose(&r, o, &sel, out), 0);
}

static void compose(enum bounce_kind kind, const struct bounce_original *o,
                    struct recipient_log_entry *entries, size_t n,
                    struct buf *out)
{
    compose_copy(kind, 0, o, entries, n, out);
}

static void assert_has(const struct buf *b, const char *text)
{
    if (strstr(buf_cstr(b), text) == NULL)
        fail_msg("missing %s in:\n%s", text, buf_cstr(b));
}

static void assert_lacks(const struct buf *b, const char *text)
{
    if (strstr(buf_cstr(b), text) != NULL)
        fail_msg("unexpected %s in:\n%s", text, buf_cstr(b));
}

static void assert_lines_bounded(const struct buf *b)
{
    size_t column = 0;
    for (size_t i = 0; i < b->len; i++) {
        if (b->data[i] == '\n')
            column = 0;
        else if (++column > BOUNCE_LINE_MAX)
            fail_msg("line longer than %d at offset %zu", BOUNCE_LINE_MAX, i);
    }
}

static void test_failure_full(void **state)
{
    (void)state;
    struct bounce_original o;
    original(&o, "Subject: hi\n", "hello\n");
    struct recipient_log_entry e[] = { {
        .recipient = "bob@example.net", .orcpt = "rfc822;b@example.net",
        .status = "5.1.1", .text = "unknown user",
        .remote_mta = "dns; mx.example.net",
        .diagnostic = "smtp; 550 5.1.1 no such user", .time = 1700000400,
    } };
    struct buf out;
    compose(BOUNCE_FAILURE, &o, e, 1, &out);
    assert_has(&out, "From: MAILER-DAEMON@mx.example.net (Mail Delivery "
                     "System)\n");
    assert_has(&out, "To: alice@example.com\n");
    assert_has(&out, "Subject: Undelivered Mail Returned to Sender\n");
    assert_has(&out, "Auto-Submitted: auto-replied\n");
    assert_has(&out, "Message-ID: <20231114222140.FEDCB987@mx.example.net>\n");
    assert_has(&out, "Content-Type: multipart/report; "
                     "report-type=delivery-status;\n\tboundary=\""
                     "FEDCB987.1700000500/mx.example.net\"\n");
    assert_has(&out, "Content-Transfer-Encoding: 7bit\n");
    assert_has(&out, "--FEDCB987.1700000500/mx.example.net\n"
                     "Content-Description: Notification\n"
                     "Content-Type: text/plain; charset=us-ascii\n\n");
    assert_has(&out, "<bob@example.net> (expanded from <b@example.net>): "
                     "unknown user\n");
    assert_has(&out, "Content-Type: message/delivery-status\n\n"
                     "Reporting-MTA: dns; mx.example.net\n"
                     "X-Postino-Queue-ID: ABCDE123\n"
                     "X-Postino-Sender: rfc822; alice@example.com\n"
                     "Arrival-Date: ");
    assert_has(&out, "\nFinal-Recipient: rfc822; bob@example.net\n"
                     "Original-Recipient: rfc822; b@example.net\n"
                     "Action: failed\nStatus: 5.1.1\n"
                     "Remote-MTA: dns; mx.example.net\n"
                     "Diagnostic-Code: smtp; 550 5.1.1 no such user\n"
                     "Last-Attempt-Date: ");
    assert_has(&out, "Content-Description: Undelivered Message\n"
                     "Content-Type: message/rfc822\n\n"
                     "Subject: hi\n\nhello\n\n"
                     "--FEDCB987.1700000500/mx.example.net--\n");
    assert_lacks(&out, "Will-Retry-Until");
    assert_lacks(&out, "Original-Envelope-Id");
    buf_free(&out);
    bounce_original_free(&o);
}

static void test_failure_headers_and_expired_status(void **state)
{
    (void)state;
    struct bounce_original o;
    original(&o, "Subject: hi\n", "hello\n");
    o.ret_hdrs = 1;
    assert_int_equal(buf_set_str(&o.envid, "ENV-1"), 0);
    struct recipient_log_entry e[] = { {
        .recipient = "bob@example.net", .status = "4.4.1",
        .text = "connection timed out", .time = 1700000400,
    } };
    struct buf out;
    compose(BOUNCE_FAILURE, &o, e, 1, &out);
    assert_has(&out, "Original-Envelope-Id: ENV-1\n");
    assert_has(&out, "Action: failed\nStatus: 5.4.1\n"
                     "Diagnostic-Code: X-Postino; connection timed out\n");
    assert_has(&out, "Content-Description: Undelivered Message Headers\n"
                     "Content-Type: text/rfc822-headers\n\nSubject: hi\n\n--");
    assert_lacks(&out, "hello");
    assert_lacks(&out, "Remote-MTA");
    buf_free(&out);
    bounce_original_free(&o);
}

static void test_postmaster_copy(void **state)
{
    (void)state;
    struct bounce_original o;
    original(&o, "Subject: hi\n", "hello\n");
    struct recipient_log_entry e[] = { {
        .recipient = "bob@example.net", .status = "5.1.1", .text = "no",
    } };
    struct buf out;
    compose_copy(BOUNCE_FAILURE, 1, &o, e, 1, &out);
    assert_has(&out, "Subject: Postmaster Copy: Undelivered Mail\n");
    assert_has(&out, "To: alice@example.com\n");
    assert_has(&out, "postmaster's copy: a message from "
                     "<alice@example.com> could not\n");
    assert_has(&out, "Content-Type: text/rfc822-headers\n");
    assert_lacks(&out, "hello");
    buf_free(&out);
    bounce_original_free(&o);
}

static void test_delay(void **state)
{
    (void)state;
    struct bounce_original o;
    original(&o, "Subject: hi\n", "hello\n");
    struct recipient_log_entry e[] = { {
        .recipient = "bob@example.net", .status = "4.2.2",
        .action = "delayed", .text = "mailbox full", .time = 1700000400,
    } };
    struct buf out;
    compose(BOUNCE_DELAY, &o, e, 1, &out);
    assert_has(&out, "Subject: Delayed Mail (still being retried)\n");
    assert_has(&out, "Action: delayed\nStatus: 4.2.2\n");
    assert_has(&out, "Will-Retry-Until: ");
    assert_has(&out, "Content-Type: text/rfc822-headers\n");
    assert_lacks(&out, "hello");
    buf_free(&out);
    bounce_original_free(&o);
}

static void test_success(void **state)
{
    (void)state;
    struct bounce_original o;
    original(&o, "Subject: hi\n", "hello\n");
    struct recipient_log_entry e[] = {
        { .recipient = "bob@example.net", .status = "2.0.0",
          .action = "delivered", .text = "delivered to maildir" },
        { .recipient = "list@example.net", .status = "2.0.0",
          .action = "expanded", .text = "alias expanded" },
    };
    struct buf out;
    compose(BOUNCE_SUCCESS, &o, e, 2, &out);
    assert_has(&out, "Subject: Successful Mail Delivery Report\n");
    assert_has(&out, "Final-Recipient: rfc822; bob@example.net\n"
                     "Action: delivered\nStatus: 2.0.0\n");
    assert_has(&out, "Final-Recipient: rfc822; list@example.net\n"
                     "Action: expanded\nStatus: 2.0.0\n");
    assert_has(&out, "Content-Description: Delivered Message Headers\n");
    assert_lacks(&out, "Last-Attempt-Date");
    buf_free(&out);
    bounce_original_free(&o);
}

static void test_smtputf8_and_8bit(void **state)
{
    (void)state;
    struct bounce_original o;
    original(&o, "Subject: caf\xc3\xa9\n", "d\xc3\xa9j\xc3\xa0\n");
    o.smtputf8 = 1;
    struct recipient_log_entry e[] = { {
        .recipient = "j\xc3\xb6rg@example.net", .status = "5.1.1",
        .text = "unknown user",
    } };
    struct buf out;
    compose(BOUNCE_FAILURE, &o, e, 1, &out);
    assert_has(&out, "report-type=global-delivery-status;");
    assert_has(&out, "\nContent-Transfer-Encoding: 8bit\n\nThis is");
    assert_has(&out, "Content-Type: text/plain; charset=utf-8\n"
                     "Content-Transfer-Encoding: 8bit\n");
    assert_has(&out, "Content-Type: message/global-delivery-status\n"
                     "Content-Transfer-Encoding: 8bit\n");
    assert_has(&out, "Final-Recipient: utf-8; j\xc3\xb6rg@example.net\n");
    assert_has(&out, "Content-Type: message/global\n"
                     "Content-Transfer-Encoding: 8bit\n");
    assert_true(bounce_report_8bit(out.data, out.len));
    buf_free(&out);
    bounce_original_free(&o);
}

static void test_long_lines_and_control_characters(void **state)
{
    (void)state;
    static char word[3000], header[2100], body[2100];
    memset(word, 'w', sizeof(word) - 1);
    memcpy(header, "X-Long: ", 8);
    memset(header + 8, 'h', sizeof(header) - 10);
    header[sizeof(header) - 2] = '\n';
    memset(body, 'b', sizeof(body) - 2);
    body[sizeof(body) - 2] = '\n';
    struct bounce_original o;
    original(&o, header, body);
    struct buf text;
    buf_init(&text, 100000);
    for (int i = 0; i < 50; i++)
        assert_int_equal(buf_printf(&text, "word%d ", i), 0);
    assert_int_equal(buf_printf(&text, "line\r\nbreak %s", word), 0);
    struct recipient_log_entry e[] = { {
        .recipient = "bob@example.net", .status = "5.0.0",
        .text = (char *)buf_cstr(&text),
        .diagnostic = (char *)buf_cstr(&text),
    } };
    struct buf out;
    compose(BOUNCE_FAILURE, &o, e, 1, &out);
    assert_lines_bounded(&out);
    assert_lacks(&out, "\r");
    assert_has(&out, "line break");
    /* The folded Diagnostic-Code goes on with a tab. */
    assert_has(&out, "Diagnostic-Code: word0 word1");
    assert_has(&out, "\n\tword");
    /* The long header line of the original is folded, its body line
     * broken. */
    assert_has(&out, "X-Long: hhh");
    assert_has(&out, "\n\thhh");
    buf_free(&out);
    buf_free(&text);
    bounce_original_free(&o);
}

static void test_boundary_avoids_original(void **state)
{
    (void)state;
    struct bounce_original o;
    original(&o, "Subject: hi\n",
             "--FEDCB987.1700000500/mx.example.net\nsneaky\n");
    struct recipient_log_entry e[] = { {
        .recipient = "bob@example.net", .status = "5.1.1", .text = "no",
    } };
    struct buf out;
    compose(BOUNCE_FAILURE, &o, e, 1, &out);
    assert_has(&out, "boundary=\"FEDCB987.1700000500/mx.example.net/1\"");
    buf_free(&out);
    bounce_original_free(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_parse),
        cmocka_unit_test(test_notify_wants),
        cmocka_unit_test(test_select_last_entry_and_notify),
        cmocka_unit_test_setup_teardown(test_original_read, setup_dir,
                                        teardown_dir),
        cmocka_unit_test(test_failure_full),
        cmocka_unit_test(test_failure_headers_and_expired_status),
        cmocka_unit_test(test_postmaster_copy),
        cmocka_unit_test(test_delay),
        cmocka_unit_test(test_success),
        cmocka_unit_test(test_smtputf8_and_8bit),
        cmocka_unit_test(test_long_lines_and_control_characters),
        cmocka_unit_test(test_boundary_avoids_original),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
