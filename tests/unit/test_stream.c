/*
 * test_stream - unit tests of lib/stream.c: the line reader (endings,
 * overlong lines, EOF, NUL bytes, split writes), timeouts, the deadline,
 * EINTR, read_exact/read_some/pending, and buffered writes through a
 * socketpair or a pipe to a reading child process.
 *
 * A peer is either the other end of a socketpair written before reading,
 * or a forked child.  Children never use cmocka: they report failure with
 * a non-zero exit status, which reap() checks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "stream.h"

/* ---- helpers ---- */

static void make_socketpair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

static void close_fd(int fd)
{
    assert_int_equal(close(fd), 0);
}

static int write_all_raw(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void put(int fd, const char *text)
{
    assert_int_equal(write_all_raw(fd, text, strlen(text)), 0);
}

static void put_bytes(int fd, const void *data, size_t len)
{
    assert_int_equal(write_all_raw(fd, data, len), 0);
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    assert_true(flags >= 0);
    assert_int_equal(fcntl(fd, F_SETFL, flags | O_NONBLOCK), 0);
}

/* Runs fn(fd, arg) in a child that exits with fn's result; the child
 * first closes other_fd (the parent's end). */
static pid_t spawn(int (*fn)(int fd, const void *arg), int fd, int other_fd,
                   const void *arg)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
            _exit(9); /* a reader that gave up must not kill the child */
        if (other_fd >= 0 && close(other_fd) != 0)
            _exit(10);
        int rc = fn(fd, arg);
        _exit(close(fd) == 0 ? rc : 11);
    }
    return pid;
}

static void reap(pid_t pid)
{
    int status;
    pid_t got;
    while ((got = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
        ;
    assert_int_equal(got, pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* The byte at position i of the test pattern. */
static unsigned char pattern(size_t i)
{
    return (unsigned char)(i * 7 + i / 251);
}

static char *pattern_alloc(size_t len)
{
    char *p = malloc(len);
    assert_non_null(p);
    for (size_t i = 0; i < len; i++)
        p[i] = (char)pattern(i);
    return p;
}

/* Reads one line and checks its content and ending. */
static void expect_line(struct stream *s, struct buf *line, size_t max,
                        const char *want, enum stream_line_ending end)
{
    enum stream_line_ending got = STREAM_LINE_EOF;
    if (end == STREAM_LINE_EOF)
        got = STREAM_LINE_CRLF;
    assert_int_equal(stream_read_line(s, line, max, &got), STREAM_OK);
    assert_int_equal(line->len, strlen(want));
    assert_memory_equal(buf_cstr(line), want, line->len);
    assert_int_equal(got, end);
}

/* ---- line endings ---- */

static void test_line_endings(void **state)
{
    (void)state;
    int sv[2];
    make_socketpair(sv);
    put(sv[1], "HELO a.example\r\nMAIL FROM:<>\nfoo\rbar\r\n\r\n\nx\r\r\n");
    close_fd(sv[1]);
    struct stream s;
    stream_init(&s, sv[0], 2000);
    struct buf line;
    buf_init(&line, 1000);
    expect_line(&s, &line, 1000, "HELO a.example", STREAM_LINE_CRLF);
    expect_line(&s, &line, 1000, "MAIL FROM:<>", STREAM_LINE_LF);
    expect_line(&s, &line, 1000, "foo\rbar", STREAM_LINE_CRLF);
    expect_line(&s, &line, 1000, "", STREAM_LINE_CRLF);
    expect_line(&s, &line, 1000, "", STREAM_LINE_LF);
    expect_line(&s, &line, 1000, "x\r", STREAM_LINE_CRLF);
    assert_int_equal(stream_read_line(&s, &line, 1000, NULL), STREAM_EOF);
    assert_int_equal(line.len, 0);
    /* EOF is not sticky as an error, it is simply seen again. */
    assert_int_equal(stream_read_line(&s, &line, 1000, NULL), STREAM_EOF);
    buf_free(&line);
    stream_free(&s);
    close_fd(sv[0]);
}

static void test_eof_partial_line(void **state)
{
    (void)state;
    int sv[2];
    make_socketpair(sv);
    put(sv[1], "QUIT\r\npartial\r");
    close_fd(sv[1]);
    struct stream s;
    stream_init(&s, sv[0], 2000);
    struct buf line;
    buf_init(&line, 100);
    expect_line(&s, &line, 100, "QUIT", STREAM_LINE_CRLF);
    /* A CR not followed by LF is data. */
    expect_line(&s, &line, 100, "partial\r", STREAM_LINE_EOF);
    assert_int_equal(stream_read_line(&s, &line, 100, NULL), STREAM_EOF);
    buf_free(&line);
    stream_free(&s);
    close_fd(sv[0]);
}

static void test_eof_no_data(void **state)
{
    (void)state;
    int sv[2];
    make_socketpair(sv);
    close_fd(sv[1]);
    struct stream s;
    stream_init(&s, sv[0], 2000);
    struct buf line;
    buf_init(&line, 100);
    enum stream_line_ending end = STREAM_LINE_CRLF;
    assert_int_equal(stream_read_line(&s, &line, 100, &end), STREAM_EOF);
    assert_int_equal(line.len, 0);
    assert_int_equal(s.error, 0);
    buf_free(&line);
    stream_free(&s);
    close_fd(sv[0]);
}

static void test_nul_bytes(void **state)
{
    (void)state;
    int sv[2];
    make_socketpair(sv);
    put_bytes(sv[1], "a\0b\0\r\n\0\n", 9);
    close_fd(sv[1]);
    struct stream s;
    stream_init(&s, sv[0], 2000);
    struct buf line;
    buf_init(&line, 100);
    enum stream_line_ending end;
    assert_int_equal(stream_read_line(&s, &line, 100, &end), STREAM_OK);
    assert_int_equal(line.len, 4);
    assert_memory_equal(line.data, "a\0b\0", 4);
    assert_int_equal(end, STREAM_LINE_CRLF);
    assert_int_equal(stream_read_line(&s, &line, 100, &end), STREAM_OK);
    assert_int_equal(line.len, 1);
    assert_int_equal(line.data[0], '\0');
    assert_int_equal(end, STREAM_LINE_LF);
    buf_free(&line);
    stream_free(&s);
    close_fd(sv[0]);
}

/* ---- overlong lines ---- */

static void test_max_len_boundaries(void **state)
{
    (void)state;
    int sv[2];
    make_socketpair(sv);
    put(sv[1], "0123456789\r\n"     /* exactly 10: fine */
               "0123456789\n"       /* exactly 10, bare LF */
               "0123456789A\r\n"    /* 11: too long */
               "next\r\n"
               "0123456789AB\n"     /* 12, bare LF: too long */
               "0123456789\r"       /* 10 and a CR ... */
    );
    put(sv[1], "\nafter\r\n"          /* ... whose LF comes later: fine */
               "0123456789A");      /* 11 then EOF: too long */
    close_fd(sv[1]);
    struct stream s;
    stream_init(&s, sv[0], 2000);
    struct buf line;
    buf_init(&line, 100);
    enum stream_line_ending end;
    expect_line(&s, &line, 10, "0123456789", STREAM_LINE_CRLF);
    expect_line(&s, &line, 10, "0123456789", STREAM_LINE_LF);
    assert_int_equal(stream_read_line(&s, &line, 10, &end), STREAM_TOO_LONG);
    assert_int_equal(line.len, 10);
    assert_memory_equal(line.data, "0123456789", 10);
    assert_int_equal(end, STREAM_LINE_CRLF);
    assert_int_equal(s.error, 0); /* not sticky */
    expect_line(&s, &line, 10, "next", STREAM_LINE_CRLF);
    assert_int_equal(stream_read_line(&s, &line, 10, &end), STREAM_TOO_LONG);
    assert_int_equal(end, STREAM_LINE_LF);
    expect_line(&s, &line, 10, "0123456789", STREAM_LINE_CRLF);
    expect_line(&s, &line, 10, "after", STREAM_LINE_CRLF);
    assert_int_equal(stream_read_line(&s, &line, 10, &end), STREAM_TOO_LONG);
    assert_int_equal(end, STREAM_LINE_EOF);
    assert_int_equal(line.len, 10);
    assert_int_equal(stream_read_line(&s, &line, 10, &end), STREAM_EOF);
    buf_free(&line);
    stream_free(&s);
    close_fd(sv[0]);
}

/* A line buffer whose limit is below max_len bounds the line too. */
static void test_line_buffer_limit(void **state)
{
    (void)state;
    int sv[2];
    make_socketpair(sv);
    put(sv[1], "12345\r\n123456\r\nok\r\n");
    close_fd(sv[1]);
    struct stream s;
    stream_init(&s, sv[0], 2000);
    struct buf line;
    buf_init(&line, 5);
    expect_line(&s, &line, 1000, "12345", STREAM_LINE_CRLF);
    assert_int_equal(stream_read_line(&s, &line, 1000, NULL),
                     STREAM_TOO_LONG);
    assert_int_equal(line.len, 5);
    expect_line(&s, &line, 1000, "ok", STREAM_LINE_CRLF);
    buf_free(&line);
    stream_free(&s);
    close_fd(sv[0]);
}

struct long_line {
    size_t len;   /* bytes of the overlong line */
    size_t piece; /* written this many bytes at a time */
};

static int write_long_line(int fd, const void *arg)
{
    const struct long_line *spec = arg;
    char *data = pattern_alloc(spec->len);
    for (size_t i = 0; i < spec->len; i++)
        if (data[i] == '\n')
            data[i] = 'x';
    for (size_t off = 0; off < spec->len; off += spec->piece) {
        size_t n = spec->len - off < spec->piece ? spec->len - off
                                                 : spec->piece;
        if (write_all_raw(fd, data + off, n) != 0)
            return 1;
    }
    free(data);
    const char *tail = "\r\nafter\r\n";
    return write_all_raw(fd, tail, strlen(tail)) == 0 ? 0 : 2;
}

static void test_overlong_line_discarded(void **state)
{
    (void)state;
    int sv[2];
    make_socketpair(sv);
    struct long_line spec = { 300 * 1000, 7000 };
    pid_t pid = spawn(write_long_line, sv[1], sv[0], &spec);
    close_fd(sv[1]);
    struct stream s;
    stream_init(&s, sv[0], 5000);
    struct buf line;
    buf_init(&line, 1000);
    enum stream_line_ending end;
    assert_int_equal(stream_read_line(&s, &line, 1000, &end),
                     STREAM_TOO_LONG);
    assert_int_equal(end, STREAM_LINE_CRLF);
    assert_int_equal(line.len, 1000);
    char *want = pattern_alloc(1000);
    for (size_t i = 0; i < 1000; i++)
        if (want[i] == '\n')
            want[i] = 'x';
    assert_memory_equal(line.data, want, 1000);
    free(want);
    /* Memory stayed bounded while the line was thrown away. */
    assert_true(s.in.cap <= 64 * 1024);
    expect_line(&s, &line, 1000, "after", STREAM_LINE_CRLF);
    assert_int_equal(stream_read_line(&s, &line, 1000, NULL), STREAM_EOF);
    reap(pid);
    buf_free(&line);
    stream_free(&s);
    close_fd(sv[0]);
}

/* ---- lines split across many writes ---- */

static const char split_text[] =
    "EHLO client.example\r\nMAIL FROM:<a@b.example>\r\n"
    "bare\nend\r\n";

static int write_bytewise(int fd, const void *arg)
{
    (void)arg;
    for (size_t i = 0; i < sizeof(split_text) - 1; i++) {
        if (write_all_raw(fd, &split_text[i], 1) != 0)
            return 1;
        if (i % 4 == 0)
            sleep_ms(1);
    }
    return 0;
}

static void test_split_writes(void **state)
{
    (void)state;
    int sv[2];
    make_socketpair(sv);
    set_nonblocking(sv[0]); /* non-blocking works as well as blocking */
    pid_t pid = spawn(write_bytewise, sv[1], sv[0], NULL);
    close_fd(sv[1]);
    struct stream s;
    stream_init(&s, sv[0], 5000);
    struct buf line;
    buf_init(&line, 100);
    expect_line(&s, &line, 100, "EHLO client.example", STREAM_LINE_CRLF);
    expect_line(&s, &line, 100, "MAIL FROM:<a@b.example>", STREAM_LINE_CRLF);
    expect_line(&s, &line, 100, "bare", STREAM_LINE_LF);
    expect_line(&s, &line, 100, "end", STREAM_LINE_CRLF);
    assert_int_equal(stream_read_line(&s, &line, 100, NULL), STREAM_EOF);
    reap(pid);
    buf_free(&line);
    stream_free(&s);
    close_fd(sv[0]);
}

/* Many short lines in large writes: each one comes back intact. */
static int write_many_lines(int fd, const void *arg)
{
    const size_t *count = arg;
    struct buf out;
    buf_init(&out, 1024 * 1024);
    for (size_t i = 0; i < *count; i++) {
        if (buf_printf(&out, "line %zu of the message body\r\n", i) != 0)
            return 1;
        if (out.len > 60000) {
            if (write_all_raw(fd, out.data, out.len) != 0)
                return 2;
            buf_reset(&out);
        }
    }
    int rc = write_all_raw(fd, out.data, out.len) == 0 ? 0 : 3;
    buf_free(&out);
    return rc;
}

static void test_many_lines(void **state)
{
    (void)state;
    int sv[2];
    make_socketpair(sv);
    size_t count = 100 * 1000;
    pid_t pid = spawn(write_many_lines, sv[1], sv[0], &count);
    close_fd(sv[1]);
    struct stream s;
    stream_init(&s, sv[0], 5000);
    struct buf line;
    buf_init(&line, 1000);
    char want[64];
    enum stream_line_ending end;
    for (size_t i = 0; i < count; i++) {
        int n = snprintf(want, sizeof(want), "line %zu of the message body",
                         i);
        assert_int_equal(stream_read_line(&s, &line, 1000, &end), STREAM_OK);
        assert_int_equal(line.len, (size_t)n);
        assert_memory_equal(line.data, want, line.len);
        assert_int_equal(end, STREAM_LINE_CRLF);
    }
    assert_int_equal(stream_read_line(&s, &line, 1000, NULL), STREAM_EOF);
    reap(pid);
    buf_free(&line);
    stream_free(&s);
    close_fd(sv[0]);
}

/* ---- timeouts, deadline, signals ---- */

static void test_timeout(void **state)
{
    (void)state;
    int sv[2];
    make_socketpair(sv);
    put(sv[1], "partial"); /* and then silence */
    struct stream s;
    stream_init(&s, sv[0], 200);
    struct buf line;
    buf_init(&line, 100);
    long long start = stream_now_ms();
    assert_int_equal(stream_read_line(&s, &line, 100, NULL), STREAM_TIMEOUT);
    long long took = stream_now_ms() - start;
    assert_int_equal(errno, ETIMEDOUT);
    assert_true(took >= 190 && took < 1500);
    /* Sticky: every later call fails at once, even a write. */
    put(sv[1], "\r\n");
    start = stream_now_ms();
    assert_int_equal(stream_read_line(&s, &line, 100, NULL), STREAM_TIMEOUT);
    assert_int_equal(stream_puts(&s, "x"), STREAM_TIMEOUT);
    assert_int_equal(stream_flush(&s), STREAM_TIMEOUT);
    assert_true(stream_now_ms() - start < 100);
    buf_free(&line);
    stream_free(&s);
    close_fd(sv[0]);
    close_fd(sv[1]);
}

static void test_zero_timeout(void **state)
{
    (void)state;
    int sv[2];
    make_socketpair(sv);
    put(sv[1], "ready\r\n");
    struct stream s;
    stream_init(&s, sv[0], 0); /* data already there: no waiting needed */
    struct buf line;
    buf_init(&line, 100);
    expect_line(&s, &line, 100, "ready", STREAM_LINE_CRLF);
    assert_int_equal(stream_read_line(&s, &line, 100, NULL), STREAM_TIMEOUT);
    buf_free(&line);
    stream_free(&s);
    close_fd(sv[0]);
    close_fd(sv[1]);
}

/* Sends a byte every 50 ms, so that no single wait times out. */
static int trickle(int fd, const void *arg)
{
    (void)arg;
    for (int i = 0; i < 60; i++) {
        if (write_all_raw(fd, "z", 1) != 0)
            return 0; /* the reader gave up: expected */
        sleep_ms(50);
    }
    return 0;
}

static void test_deadline(void **state)
{
    (void)state;
    int sv[2];
    make_socketpair(sv);
    pid_t pid = spawn(trickle, sv[1], sv[0], NULL);
    close_fd(sv[1]);
    struct stream s;
    stream_init(&s, sv[0], 1000);
    stream_set_deadline(&s, 1);
    assert_true(s.deadline_ms > stream_now_ms());
    struct buf line;
    buf_init(&line, 10000);
    long long start = stream_now_ms();
    assert_int_equal(stream_read_line(&s, &line, 10000, NULL),
                     STREAM_TIMEOUT);
    long long took = stream_now_ms() - start;
    assert_true(took >= 950 && took < 2000);
    assert_true(line.len >= 5); /* bytes did arrive in between */
    close_fd(sv[0]);
    reap(pid);
    buf_free(&line);
    stream_free(&s);
}

static void test_deadline_passed_and_removed(void **state)
{
    (void)state;
    int sv[2];
    make_socketpair(sv);
    put(sv[1], "one\r\n");
    struct stream s;
    stream_init(&s, sv[0], 1000);
    stream_set_deadline(&s, 60);
    stream_set_deadline(&s, 0);
    assert_int_equal(s.deadline_ms, 0);
    struct buf line;
    buf_init(&line, 100);
    expect_line(&s, &line, 100, "one", STREAM_LINE_CRLF);
    put(sv[1], "two\r\n");
    s.deadline_ms = stream_now_ms() - 1; /* the exchange is over */
    long long start = stream_now_ms();
    assert_int_equal(stream_read_line(&s, &line, 100, NULL), STREAM_TIMEOUT);
    assert_true(stream_now_ms() - start < 100);
    buf_free(&line);
    stream_free(&s);
    close_fd(sv[0]);
    close_fd(sv[1]);
}

/* A write, too, ends at once once the deadline has passed, even though
 * the socket would take the bytes; none of them goes out. */
static void test_write_after_the_deadline(void **state)
{
    (void)state;
    int sv[2];
    make_socketpair(sv);
    struct stream s;
    stream_init(&s, sv[0], 1000);
    s.deadline_ms = stream_now_ms() - 1;
    assert_int_equal(stream_puts(&s, "late\r\n"), STREAM_OK);
    assert_int_equal(stream_flush(&s), STREAM_TIMEOUT);
    assert_int_equal(errno, ETIMEDOUT);
    char byte;
    assert_int_equal(recv(sv[1], &byte, 1, MSG_DONTWAIT), -1);
    assert_int_equal(errno, EAGAIN);
    stream_free(&s);
    close_fd(sv[0]);
    close_fd(sv[1]);
}

/* Answers each line after a pause, so that the reader must wait. */
static int late_echo(int fd, const void *arg)
{
    (void)arg;
    char data[64];
    for (int i = 0; i < 3; i++) {
        ssize_t n = read(fd, data, sizeof(data));
        if (n <= 0)
            return 1;
        sleep_ms(20);
        if (write_all_raw(fd, data, (size_t)n) != 0)
            return 2;
    }
    return 0;
}

/* Request and answer on a blocking socket: the read after a flush waits
 * for the answer, and a read that finds nothing neither blocks nor fails;
 * the streamed lines after the answers are there at once. */
static void test_answers_on_a_blocking_socket(void **state)
{
    (void)state;
    int sv[2];
    make_socketpair(sv); /* blocking */
    pid_t pid = spawn(late_echo, sv[1], sv[0], NULL);
    close_fd(sv[1]);
    struct stream s;
    stream_init(&s, sv[0], 2000);
    struct buf line;
    buf_init(&line, 100);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(stream_printf(&s, "ask %d\r\n", i), STREAM_OK);
        assert_int_equal(stream_flush(&s), STREAM_OK);
        char want[16];
        snprintf(want, sizeof(want), "ask %d", i);
        expect_line(&s, &line, 100, want, STREAM_LINE_CRLF);
    }
    long long start = stream_now_ms();
    assert_int_equal(stream_read_line(&s, &line, 100, NULL), STREAM_EOF);
    assert_true(stream_now_ms() - start < 1500);
    reap(pid);
    buf_free(&line);
    stream_free(&s);
    close_fd(sv[0]);
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

/* SIGALRM every 20 ms, without SA_RESTART, so that poll() sees EINTR. */
static void start_alarms(struct sigaction *old)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    assert_int_equal(sigemptyset(&sa.sa_mask), 0);
    assert_int_equal(sigaction(SIGALRM, &sa, old), 0);
    alarms = 0;
    struct itimerval it = { { 0, 20000 }, { 0, 20000 } };
    assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
}

static void stop_alarms(const struct sigaction *old)
{
    struct itimerval off;
    memset(&off, 0, sizeof(off));
    assert_int_equal(setitimer(ITIMER_REAL, &off, NULL), 0);
    assert_int_equal(sigaction(SIGALRM, old, NULL), 0);
}

static int write_late_line(int fd, const void *arg)
{
    (void)arg;
    sleep_ms(150);
    return write_all_raw(fd, "late\r\n", 6) == 0 ? 0 : 1;
}

static void test_eintr_continues(void **state)
{
    (void)state;
    int sv[2];
    make_socketpair(sv);
    struct stream s;
    stream_init(&s, sv[0], 300);
    stream_set_deadline(&s, 2); /* a backstop should the wait restart */
    struct buf line;
    buf_init(&line, 100);
    struct sigaction old;
    start_alarms(&old);
    /* A silent peer: the timeout is neither cut short nor extended. */
    long long start = stream_now_ms();
    int rc = stream_read_line(&s, &line, 100, NULL);
    long long took = stream_now_ms() - start;
    int seen = alarms;
    stop_alarms(&old); /* before any assert can end the test */
    assert_int_equal(rc, STREAM_TIMEOUT);
    assert_true(seen >= 5);
    assert_true(took >= 290 && took < 1500);
    stream_free(&s);
    /* A peer that answers after several signals: the line arrives. */
    stream_init(&s, sv[0], 1000);
    pid_t pid = spawn(write_late_line, sv[1], sv[0], NULL);
    start_alarms(&old);
    rc = stream_read_line(&s, &line, 100, NULL);
    seen = alarms;
    stop_alarms(&old);
    assert_int_equal(rc, STREAM_OK);
    assert_string_equal(buf_cstr(&line), "late");
    assert_true(seen >= 3);
    reap(pid);
    buf_free(&line);
    stream_free(&s);
    close_fd(sv[0]);
    close_fd(sv[1]);
}

/* ---- read_exact, read_some, pending ---- */

static void test_read_exact_and_pending(void **state)
{
    (void)state;
    int sv[2];
    make_socketpair(sv);
    put(sv[1], "HEADERline one\r\nrest-of-data");
    struct stream s;
    stream_init(&s, sv[0], 2000);
    struct buf out;
    buf_init(&out, 100);
    assert_int_equal(stream_read_exact(&s, &out, 6), STREAM_OK);
    assert_string_equal(buf_cstr(&out), "HEADER");
    assert_int_equal(stream_pending(&s), strlen("line one\r\nrest-of-data"));
    struct buf line;
    buf_init(&line, 100);
    expect_line(&s, &line, 100, "line one", STREAM_LINE_CRLF);
    assert_int_equal(stream_pending(&s), strlen("rest-of-data"));
    assert_int_equal(stream_discard_pending(&s), strlen("rest-of-data"));
    assert_int_equal(stream_pending(&s), 0);
    assert_int_equal(stream_discard_pending(&s), 0);
    put(sv[1], "next\n");
    expect_line(&s, &line, 100, "next", STREAM_LINE_LF);
    /* read_exact appends, and refuses what the buffer cannot hold. */
    put(sv[1], "abc");
    assert_int_equal(stream_read_exact(&s, &out, 3), STREAM_OK);
    assert_string_equal(buf_cstr(&out), "HEADERabc");
    struct buf small;
    buf_init(&small, 2);
    assert_int_equal(stream_read_exact(&s, &small, 3), STREAM_TOO_LONG);
    assert_int_equal(stream_read_exact(&s, &out, 0), STREAM_OK);
    /* EOF in the middle: STREAM_EOF, with the bytes that came. */
    put(sv[1], "xy");
    close_fd(sv[1]);
    buf_reset(&out);
    assert_int_equal(stream_read_exact(&s, &out, 5), STREAM_EOF);
    assert_string_equal(buf_cstr(&out), "xy");
    buf_free(&small);
    buf_free(&line);
    buf_free(&out);
    stream_free(&s);
    close_fd(sv[0]);
}

static int write_pattern(int fd, const void *arg)
{
    const size_t *len = arg;
    char *data = pattern_alloc(*len);
    int rc = 0;
    for (size_t off = 0; off < *len && rc == 0; off += 3001) {
        size_t n = *len - off < 3001 ? *len - off : 3001;
        rc = write_all_raw(fd, data + off, n);
    }
    free(data);
    return rc == 0 ? 0 : 1;
}

static void test_read_exact_large(void **state)
{
    (void)state;
    int sv[2];
    make_socketpair(sv);
    size_t len = 2 * 1000 * 1000 + 17;
    pid_t pid = spawn(write_pattern, sv[1], sv[0], &len);
    close_fd(sv[1]);
    struct stream s;
    stream_init(&s, sv[0], 5000);
    struct buf head;
    buf_init(&head, 10);
    assert_int_equal(stream_read_exact(&s, &head, 10), STREAM_OK);
    struct buf out;
    buf_init(&out, len);
    assert_int_equal(stream_read_exact(&s, &out, len - 10), STREAM_OK);
    char *want = pattern_alloc(len);
    assert_memory_equal(head.data, want, 10);
    assert_memory_equal(out.data, want + 10, len - 10);
    free(want);
    assert_int_equal(stream_read_exact(&s, &out, 0), STREAM_OK);
    struct buf more;
    buf_init(&more, 10);
    assert_int_equal(stream_read_some(&s, &more, 10), STREAM_EOF);
    reap(pid);
    buf_free(&more);
    buf_free(&out);
    buf_free(&head);
    stream_free(&s);
    close_fd(sv[0]);
}

static void test_read_some(void **state)
{
    (void)state;
    int sv[2];
    make_socketpair(sv);
    put(sv[1], "abcdef");
    struct stream s;
    stream_init(&s, sv[0], 200);
    struct buf out;
    buf_init(&out, 8);
    assert_int_equal(stream_read_some(&s, &out, 4), STREAM_OK);
    assert_string_equal(buf_cstr(&out), "abcd");
    assert_int_equal(stream_read_some(&s, &out, 100), STREAM_OK);
    assert_string_equal(buf_cstr(&out), "abcdef");
    assert_int_equal(stream_read_some(&s, &out, 0), STREAM_OK);
    put(sv[1], "ghijk");
    assert_int_equal(stream_read_some(&s, &out, 100), STREAM_OK);
    assert_string_equal(buf_cstr(&out), "abcdefgh"); /* the buffer is full */
    assert_int_equal(stream_pending(&s), 3);
    assert_int_equal(stream_read_some(&s, &out, 100), STREAM_TOO_LONG);
    buf_reset(&out);
    assert_int_equal(stream_read_some(&s, &out, 100), STREAM_OK);
    assert_string_equal(buf_cstr(&out), "ijk");
    assert_int_equal(stream_read_some(&s, &out, 100), STREAM_TIMEOUT);
    buf_free(&out);
    stream_free(&s);
    close_fd(sv[0]);
    close_fd(sv[1]);
}

/* ---- read_fn / write_fn ---- */

struct fake_io {
    int fd;
    int reads;
    int writes;
    int again; /* fail with EAGAIN this many times first */
};

static ssize_t fake_read(void *ctx, void *data, size_t len)
{
    struct fake_io *io = ctx;
    io->reads++;
    if (io->again > 0) {
        io->again--;
        errno = EAGAIN;
        return -1;
    }
    return read(io->fd, data, len < 3 ? len : 3); /* tiny pieces */
}

static ssize_t fake_write(void *ctx, const void *data, size_t len)
{
    struct fake_io *io = ctx;
    io->writes++;
    return write(io->fd, data, len < 5 ? len : 5);
}

static void test_io_functions(void **state)
{
    (void)state;
    int sv[2];
    make_socketpair(sv);
    set_nonblocking(sv[0]);
    struct fake_io io = { sv[0], 0, 0, 2 };
    struct stream s;
    stream_init(&s, sv[0], 2000);
    s.read_fn = fake_read;
    s.write_fn = fake_write;
    s.io_ctx = &io;
    put(sv[1], "through fake io\r\n");
    struct buf line;
    buf_init(&line, 100);
    expect_line(&s, &line, 100, "through fake io", STREAM_LINE_CRLF);
    assert_true(io.reads >= 2 + 6);
    assert_int_equal(stream_puts(&s, "reply text\r\n"), STREAM_OK);
    assert_int_equal(io.writes, 0); /* buffered until the flush */
    assert_int_equal(stream_flush(&s), STREAM_OK);
    assert_int_equal(io.writes, 3);
    char got[32];
    ssize_t n = read(sv[1], got, sizeof(got));
    assert_int_equal(n, 12);
    assert_memory_equal(got, "reply text\r\n", 12);
    buf_free(&line);
    stream_free(&s);
    close_fd(sv[0]);
    close_fd(sv[1]);
}

/* ---- writing ---- */

struct expect_data {
    size_t len;
    const char *tail; /* text expected after the pattern */
};

/* Reads everything and checks it is the pattern followed by the tail. */
static int read_and_check(int fd, const void *arg)
{
    const struct expect_data *want = arg;
    size_t tail_len = strlen(want->tail);
    size_t total = want->len + tail_len;
    size_t got = 0;
    char chunk[8192];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return 1;
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++, got++) {
            if (got >= total)
                return 2;
            char c = got < want->len ? (char)pattern(got)
                                     : want->tail[got - want->len];
            if (chunk[i] != c)
                return 3;
        }
        if (got % 65536 < (size_t)n)
            sleep_ms(1); /* a slow reader: the writer has to wait */
    }
    return got == total ? 0 : 4;
}

static void check_large_write(int rfd, int wfd, int nonblocking)
{
    struct expect_data want = { 4 * 1024 * 1024 + 123, "200 done 42\r\n" };
    pid_t pid = spawn(read_and_check, rfd, wfd, &want);
    close_fd(rfd);
    if (nonblocking)
        set_nonblocking(wfd);
    char *data = pattern_alloc(want.len);
    struct stream s;
    stream_init(&s, wfd, 5000);
    size_t off = 0;
    for (; off < 1000 * 1000; off += 1000)
        assert_int_equal(stream_write(&s, data + off, 1000), STREAM_OK);
    assert_true(s.out.len <= STREAM_BUFFER_LIMIT);
    size_t big = STREAM_BUFFER_LIMIT + 500 * 1000;
    assert_int_equal(stream_write(&s, data + off, big), STREAM_OK);
    off += big;
    assert_int_equal(stream_write(&s, data + off, want.len - off), STREAM_OK);
    assert_int_equal(stream_printf(&s, "200 %s %d\r\n", "done", 42),
                     STREAM_OK);
    assert_int_equal(stream_flush(&s), STREAM_OK);
    assert_int_equal(s.out.len, 0);
    assert_int_equal(stream_flush(&s), STREAM_OK); /* nothing to do */
    free(data);
    stream_free(&s);
    close_fd(wfd);
    reap(pid);
}

static void test_write_large_socket(void **state)
{
    (void)state;
    int sv[2];
    make_socketpair(sv);
    check_large_write(sv[1], sv[0], 1);
}

static void test_write_large_pipe(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    check_large_write(p[0], p[1], 0);
}

static void test_write_closed_peer(void **state)
{
    (void)state;
    int sv[2];
    make_socketpair(sv);
    close_fd(sv[1]);
    struct stream s;
    stream_init(&s, sv[0], 1000);
    /* No SIGPIPE for a socket: MSG_NOSIGNAL. */
    assert_int_equal(stream_puts(&s, "250 ok\r\n"), STREAM_OK);
    assert_int_equal(stream_flush(&s), STREAM_ERROR);
    assert_int_equal(errno, EPIPE);
    assert_int_equal(stream_flush(&s), STREAM_ERROR);
    stream_free(&s);
    close_fd(sv[0]);
    /* A pipe needs SIGPIPE ignored, as the daemons do. */
    int p[2];
    assert_int_equal(pipe(p), 0);
    close_fd(p[0]);
    struct sigaction ign;
    struct sigaction old;
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    assert_int_equal(sigaction(SIGPIPE, &ign, &old), 0);
    stream_init(&s, p[1], 1000);
    assert_int_equal(stream_write(&s, "x", 1), STREAM_OK);
    assert_int_equal(stream_flush(&s), STREAM_ERROR);
    assert_int_equal(errno, EPIPE);
    assert_int_equal(sigaction(SIGPIPE, &old, NULL), 0);
    stream_free(&s);
    close_fd(p[1]);
}

static void test_write_timeout(void **state)
{
    (void)state;
    int sv[2];
    make_socketpair(sv);
    /* The peer never reads: the socket buffer fills and the wait ends. */
    struct stream s;
    stream_init(&s, sv[0], 200);
    char *data = pattern_alloc(STREAM_BUFFER_LIMIT);
    assert_int_equal(stream_write(&s, data, STREAM_BUFFER_LIMIT), STREAM_OK);
    long long start = stream_now_ms();
    assert_int_equal(stream_flush(&s), STREAM_TIMEOUT);
    long long took = stream_now_ms() - start;
    assert_true(took >= 190 && took < 1500);
    free(data);
    stream_free(&s);
    close_fd(sv[0]);
    close_fd(sv[1]);
}

/* After a write timeout the bytes that did go out are gone from the
 * buffer: clearing the error and flushing again (a last reply) sends the
 * rest once, never the start twice. */
static void test_write_timeout_keeps_only_the_unsent(void **state)
{
    (void)state;
    int sv[2];
    make_socketpair(sv);
    struct stream s;
    stream_init(&s, sv[0], 200);
    size_t total = STREAM_BUFFER_LIMIT;
    char *data = pattern_alloc(total);
    assert_int_equal(stream_write(&s, data, total), STREAM_OK);
    assert_int_equal(stream_flush(&s), STREAM_TIMEOUT);
    size_t unsent = s.out.len;
    assert_true(unsent > 0 && unsent < total);
    /* A reader comes along; the writer clears the error and flushes
     * again.  The reader must see every byte exactly once. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(sv[0]);
        char *got = malloc(total + 1);
        size_t have = 0;
        ssize_t n;
        while (got && have <= total &&
               (n = read(sv[1], got + have, total + 1 - have)) > 0)
            have += (size_t)n;
        _exit(got && have == total && memcmp(got, data, total) == 0 ? 0 : 1);
    }
    close_fd(sv[1]);
    s.error = STREAM_OK;
    stream_set_timeout(&s, 5000);
    assert_int_equal(stream_flush(&s), STREAM_OK);
    assert_int_equal(s.out.len, 0);
    close_fd(sv[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    free(data);
    stream_free(&s);
}

static void test_printf_long(void **state)
{
    (void)state;
    int sv[2];
    make_socketpair(sv);
    struct stream s;
    stream_init(&s, sv[0], 1000);
    char word[400];
    memset(word, 'w', sizeof(word) - 1);
    word[sizeof(word) - 1] = '\0';
    assert_int_equal(stream_printf(&s, "%s|%zu", word, sizeof(word)),
                     STREAM_OK);
    assert_int_equal(s.out.len, 399 + 4);
    assert_int_equal(stream_flush(&s), STREAM_OK);
    char got[512];
    ssize_t n = read(sv[1], got, sizeof(got));
    assert_int_equal(n, 403);
    assert_memory_equal(got, word, 399);
    assert_memory_equal(got + 399, "|400", 4);
    stream_free(&s);
    close_fd(sv[0]);
    close_fd(sv[1]);
}

int main(void)
{
    log_init("test", 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_endings),
        cmocka_unit_test(test_eof_partial_line),
        cmocka_unit_test(test_eof_no_data),
        cmocka_unit_test(test_nul_bytes),
        cmocka_unit_test(test_max_len_boundaries),
        cmocka_unit_test(test_line_buffer_limit),
        cmocka_unit_test(test_overlong_line_discarded),
        cmocka_unit_test(test_split_writes),
        cmocka_unit_test(test_many_lines),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_zero_timeout),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_deadline_passed_and_removed),
        cmocka_unit_test(test_write_after_the_deadline),
        cmocka_unit_test(test_answers_on_a_blocking_socket),
        cmocka_unit_test(test_eintr_continues),
        cmocka_unit_test(test_read_exact_and_pending),
        cmocka_unit_test(test_read_exact_large),
        cmocka_unit_test(test_read_some),
        cmocka_unit_test(test_io_functions),
        cmocka_unit_test(test_write_large_socket),
        cmocka_unit_test(test_write_large_pipe),
        cmocka_unit_test(test_write_closed_peer),
        cmocka_unit_test(test_write_timeout),
        cmocka_unit_test(test_write_timeout_keeps_only_the_unsent),
        cmocka_unit_test(test_printf_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
