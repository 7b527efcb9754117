/*
 * Unit tests for lib/cleanup_client: the conversation with a cleanup
 * server played by a child process on a real Unix socket, which checks
 * every request it gets and answers as cleanup does.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "cleanup_client.h"
#include "log.h"
#include "record.h"
#include "stream.h"
#include "text.h"

enum server_script {
    SERVER_ACCEPT,      /* ok at open, hold at end */
    SERVER_REFUSE,      /* defer at open */
    SERVER_VANISH,      /* closes after the recipients */
    SERVER_EXPECT_ABORT,
};

#define CONTENT_SIZE (2 * QUEUE_BLOCK_MAX + 1234)

struct fake_server {
    char dir[64];
    char path[128];
    pid_t pid;
};

static int expect_request(struct stream *s, struct record *r,
                          const char *name)
{
    record_reset(r);
    if (record_read(s, r, CLEANUP_RECORD_MAX) != RECORD_OK)
        return -1;
    const char *request = record_get_str(r, "request");
    return request != NULL && strcmp(request, name) == 0 ? 0 : -1;
}

static void send_reply(struct stream *s, const char *status, const char *id)
{
    struct record r;
    record_init(&r);
    record_add_str(&r, "status", status);
    record_add_str(&r, "queue_id", id);
    if (strcmp(status, "hold") == 0) {
        record_add_long(&r, "code", 250);
        record_add_str(&r, "dsn", "2.0.0");
        record_add_str(&r, "text", "Ok: queued as 4F2A9C1B3D");
    } else if (strcmp(status, "defer") == 0) {
        record_add_long(&r, "code", 452);
        record_add_str(&r, "dsn", "4.3.1");
        record_add_str(&r, "text", "Insufficient system storage");
    }
    record_write(s, &r);
    stream_flush(s);
    record_free(&r);
}

/* The child: returns its exit code, 0 when every request was as expected. */
static int serve(int listen_fd, enum server_script script)
{
    int fd = accept(listen_fd, NULL, NULL);
    if (fd < 0)
        return 10;
    struct stream s;
    stream_init(&s, fd, 10000);
    struct record r;
    record_init(&r);
    if (expect_request(&s, &r, "open") != 0)
        return 11;
    const char *sender = record_get_str(&r, "sender");
    const char *helo = record_get_str(&r, "helo_name");
    if (sender == NULL || strcmp(sender, "a@example.com") != 0 ||
        helo == NULL || strcmp(helo, "client.example") != 0)
        return 12;
    if (script == SERVER_REFUSE) {
        send_reply(&s, "defer", "");
        return 0;
    }
    send_reply(&s, "ok", "4F2A9C1B3D");
    if (expect_request(&s, &r, "rcpt") != 0)
        return 13;
    const char *addr = record_get_str(&r, "address");
    const char *notify = record_get_str(&r, "notify");
    if (addr == NULL || strcmp(addr, "b@example.org") != 0 ||
        notify == NULL || strcmp(notify, "NEVER") != 0 ||
        record_find(&r, "orcpt") != NULL)
        return 14;
    if (expect_request(&s, &r, "rcpt") != 0)
        return 15;
    const char *orcpt = record_get_str(&r, "orcpt");
    if (orcpt == NULL || strcmp(orcpt, "rfc822;c@example.org") != 0)
        return 16;
    if (script == SERVER_VANISH)
        return 0;
    size_t got = 0;
    for (;;) {
        record_reset(&r);
        if (record_read(&s, &r, CLEANUP_RECORD_MAX) != RECORD_OK)
            return 17;
        const char *request = record_get_str(&r, "request");
        if (request == NULL)
            return 18;
        if (strcmp(request, "abort") == 0)
            return script == SERVER_EXPECT_ABORT ? 0 : 19;
        if (strcmp(request, "end") == 0)
            break;
        const struct record_attr *d = record_find(&r, "data");
        if (strcmp(request, "data") != 0 || d == NULL ||
            d->value.len > QUEUE_BLOCK_MAX || d->value.len == 0)
            return 20;
        for (size_t i = 0; i < d->value.len; i++)
            if (d->value.data[i] != (char)('a' + (got + i) % 26))
                return 21;
        got += d->value.len;
    }
    if (got != CONTENT_SIZE)
        return 22;
    send_reply(&s, "hold", "4F2A9C1B3D");
    record_free(&r);
    stream_free(&s);
    close(fd);
    return 0;
}

static void server_start(struct fake_server *srv, enum server_script script)
{
    text_copy(srv->dir, sizeof(srv->dir), "/tmp/cleanup-client-XXXXXX");
    assert_non_null(mkdtemp(srv->dir));
    snprintf(srv->path, sizeof(srv->path), "%s/cleanup", srv->dir);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    text_copy(addr.sun_path, sizeof(addr.sun_path), srv->path);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(fd, 5), 0);
    srv->pid = fork();
    assert_true(srv->pid >= 0);
    if (srv->pid == 0)
        _exit(serve(fd, script));
    close(fd);
}

static int server_finish(struct fake_server *srv)
{
    int status;
    assert_int_equal(waitpid(srv->pid, &status, 0), srv->pid);
    unlink(srv->path);
    rmdir(srv->dir);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

static void envelope(struct record *env)
{
    record_init(env);
    record_add_str(env, "sender", "a@example.com");
    record_add_str(env, "helo_name", "client.example");
}

static int send_start(struct cleanup_client *c, const char *path,
                      struct buf *error)
{
    struct record env;
    envelope(&env);
    int rc = cleanup_client_open(c, path, 5000, &env, error);
    record_free(&env);
    if (rc != 0)
        return rc;
    assert_int_equal(cleanup_client_add_recipient(c, "b@example.org", NULL,
                                                  "NEVER", error), 0);
    assert_int_equal(cleanup_client_add_recipient(
                         c, "c@example.org", "rfc822;c@example.org", NULL,
                         error), 0);
    return 0;
}

static void test_whole_conversation(void **state)
{
    (void)state;
    struct fake_server srv;
    server_start(&srv, SERVER_ACCEPT);
    struct cleanup_client c;
    struct buf error;
    buf_init(&error, 1024);
    assert_int_equal(send_start(&c, srv.path, &error), 0);
    assert_string_equal(c.queue_id, "4F2A9C1B3D");
    /* Odd chunk sizes: the client regroups them into blocks. */
    char chunk[7777];
    size_t sent = 0;
    while (sent < CONTENT_SIZE) {
        size_t n = CONTENT_SIZE - sent < sizeof(chunk) ? CONTENT_SIZE - sent
                                                       : sizeof(chunk);
        for (size_t i = 0; i < n; i++)
            chunk[i] = (char)('a' + (sent + i) % 26);
        assert_int_equal(cleanup_client_write(&c, chunk, n, &error), 0);
        sent += n;
    }
    struct cleanup_result res;
    cleanup_result_init(&res);
    assert_int_equal(cleanup_client_finish(&c, &res, &error), 0);
    assert_int_equal(res.status, CLEANUP_HOLD);
    assert_string_equal(cleanup_status_name(res.status), "hold");
    assert_int_equal(res.code, 250);
    assert_string_equal(res.dsn, "2.0.0");
    assert_string_equal(buf_cstr(&res.text), "Ok: queued as 4F2A9C1B3D");
    assert_string_equal(res.queue_id, "4F2A9C1B3D");
    cleanup_result_free(&res);
    buf_free(&error);
    assert_int_equal(server_finish(&srv), 0);
}

static void test_refused_at_open(void **state)
{
    (void)state;
    struct fake_server srv;
    server_start(&srv, SERVER_REFUSE);
    struct cleanup_client c;
    struct buf error;
    buf_init(&error, 1024);
    assert_int_equal(send_start(&c, srv.path, &error), -1);
    assert_non_null(strstr(buf_cstr(&error), "Insufficient system storage"));
    buf_free(&error);
    assert_int_equal(server_finish(&srv), 0);
}

static void test_server_vanishes(void **state)
{
    (void)state;
    struct fake_server srv;
    server_start(&srv, SERVER_VANISH);
    struct cleanup_client c;
    struct buf error;
    buf_init(&error, 1024);
    assert_int_equal(send_start(&c, srv.path, &error), 0);
    struct cleanup_result res;
    cleanup_result_init(&res);
    /* Recipients and content are only buffered until finish flushes. */
    int rc = cleanup_client_write(&c, "x\n", 2, &error);
    if (rc == 0)
        rc = cleanup_client_finish(&c, &res, &error);
    assert_int_equal(rc, -1);
    assert_true(error.len > 0);
    assert_int_equal(res.status, CLEANUP_DEFER); /* not queued */
    cleanup_client_abort(&c); /* harmless after a failure */
    assert_int_equal(server_finish(&srv), 0);
    cleanup_result_free(&res);
    buf_free(&error);
}

static void test_abort(void **state)
{
    (void)state;
    struct fake_server srv;
    server_start(&srv, SERVER_EXPECT_ABORT);
    struct cleanup_client c;
    struct buf error;
    buf_init(&error, 1024);
    assert_int_equal(send_start(&c, srv.path, &error), 0);
    assert_int_equal(cleanup_client_write(&c, "abc\n", 4, &error), 0);
    cleanup_client_abort(&c);
    assert_int_equal(server_finish(&srv), 0);
    buf_free(&error);
}

static void test_bad_calls(void **state)
{
    (void)state;
    struct cleanup_client c;
    struct buf error;
    buf_init(&error, 1024);
    struct record env;
    record_init(&env);
    record_add_str(&env, "helo_name", "x");
    assert_int_equal(cleanup_client_open(&c, "/nonexistent/cleanup", 1000,
                                         &env, &error), -1);
    assert_non_null(strstr(buf_cstr(&error), "without a sender"));
    buf_reset(&error);
    record_add_str(&env, "sender", "");
    assert_int_equal(cleanup_client_open(&c, "/nonexistent/cleanup", 1000,
                                         &env, &error), -1);
    assert_non_null(strstr(buf_cstr(&error), "connect to"));
    record_free(&env);
    buf_free(&error);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    log_init("test", 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_conversation),
        cmocka_unit_test(test_refused_at_open),
        cmocka_unit_test(test_server_vanishes),
        cmocka_unit_test(test_abort),
        cmocka_unit_test(test_bad_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
