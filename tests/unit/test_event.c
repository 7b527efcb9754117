/*
 * test_event - unit tests of lib/event.c: descriptor readiness and
 * hangup, changing a watch, timers (order, cancel, a timer cancelling
 * another), and callbacks that unwatch descriptors or cancel timers whose
 * events are already due in the same round.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "event.h"
#include "log.h"

static void close_fd(int fd)
{
    assert_int_equal(close(fd), 0);
}

static void make_pipe(int p[2])
{
    assert_int_equal(pipe(p), 0);
}

static void put_byte(int fd)
{
    assert_int_equal(write(fd, "x", 1), 1);
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- descriptors ---- */

struct seen {
    int calls;
    int fd;
    unsigned events;
};

static void on_fd(struct event_loop *loop, int fd, unsigned events,
                  void *ctx)
{
    (void)loop;
    struct seen *s = ctx;
    s->calls++;
    s->fd = fd;
    s->events = events;
}

static void test_fd_readiness(void **state)
{
    (void)state;
    struct event_loop *loop = event_loop_create();
    assert_non_null(loop);
    int p[2];
    make_pipe(p);
    struct seen r = { 0, -1, 0 };
    assert_int_equal(event_watch(loop, p[0], EVENT_READ, on_fd, &r), 0);
    long long start = event_now_ms();
    assert_int_equal(event_loop_run_once(loop, 50), 0);
    long long took = event_now_ms() - start;
    assert_true(took >= 45 && took < 1000);
    assert_int_equal(r.calls, 0);
    put_byte(p[1]);
    assert_int_equal(event_loop_run_once(loop, 1000), 1);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.fd, p[0]);
    assert_int_equal(r.events, EVENT_READ);
    /* Level-triggered: still readable, reported again. */
    assert_int_equal(event_loop_run_once(loop, 0), 1);
    assert_int_equal(r.calls, 2);
    /* A pipe's write end is writable at once. */
    struct seen w = { 0, -1, 0 };
    assert_int_equal(event_watch(loop, p[1], EVENT_WRITE, on_fd, &w), 0);
    assert_int_equal(event_loop_run_once(loop, 0), 2);
    assert_int_equal(w.fd, p[1]);
    assert_int_equal(w.events, EVENT_WRITE);
    assert_int_equal(event_unwatch(loop, p[1]), 0);
    assert_int_equal(event_unwatch(loop, p[1]), -1);
    /* Hangup: the writer goes away. */
    char c;
    assert_int_equal(read(p[0], &c, 1), 1);
    close_fd(p[1]);
    assert_int_equal(event_loop_run_once(loop, 1000), 1);
    assert_true(r.events & EVENT_ERROR);
    assert_true(r.events & EVENT_READ);
    assert_false(r.events & EVENT_WRITE);
    assert_int_equal(event_unwatch(loop, p[0]), 0);
    close_fd(p[0]);
    event_loop_free(loop);
}

static void test_watch_errors(void **state)
{
    (void)state;
    struct event_loop *loop = event_loop_create();
    assert_non_null(loop);
    struct seen s = { 0, -1, 0 };
    assert_int_equal(event_watch(loop, -1, EVENT_READ, on_fd, &s), -1);
    assert_int_equal(errno, EBADF);
    assert_int_equal(event_watch(loop, 9999, EVENT_READ, on_fd, &s), -1);
    assert_int_equal(event_unwatch(loop, 9999), -1);
    assert_int_equal(event_unwatch(loop, -1), -1);
    assert_int_equal(event_unwatch(loop, 0), -1);
    int p[2];
    make_pipe(p);
    assert_int_equal(event_watch(loop, p[0], EVENT_READ, NULL, &s), -1);
    close_fd(p[0]);
    close_fd(p[1]);
    event_loop_free(loop);
    event_loop_free(NULL);
}

static void test_watch_change(void **state)
{
    (void)state;
    struct event_loop *loop = event_loop_create();
    assert_non_null(loop);
    int p[2];
    make_pipe(p);
    struct seen first = { 0, -1, 0 };
    struct seen second = { 0, -1, 0 };
    put_byte(p[1]);
    assert_int_equal(event_watch(loop, p[0], EVENT_READ, on_fd, &first), 0);
    assert_int_equal(event_watch(loop, p[0], EVENT_READ, on_fd, &second), 0);
    assert_int_equal(event_loop_run_once(loop, 1000), 1);
    assert_int_equal(first.calls, 0);
    assert_int_equal(second.calls, 1);
    /* Watching for nothing that is ready: no callback. */
    assert_int_equal(event_watch(loop, p[0], EVENT_WRITE, on_fd, &second), 0);
    assert_int_equal(event_loop_run_once(loop, 20), 0);
    assert_int_equal(second.calls, 1);
    assert_int_equal(event_unwatch(loop, p[0]), 0);
    close_fd(p[0]);
    close_fd(p[1]);
    event_loop_free(loop);
}

/* Two readable pipes whose callbacks each unwatch the other. */
struct pair_ctx {
    int fds[2];
    int calls[2];
};

static void on_pair(struct event_loop *loop, int fd, unsigned events,
                    void *ctx)
{
    (void)events;
    struct pair_ctx *p = ctx;
    int me = fd == p->fds[0] ? 0 : 1;
    p->calls[me]++;
    assert_int_equal(event_unwatch(loop, p->fds[1 - me]), 0);
}

static void test_unwatch_other_in_same_round(void **state)
{
    (void)state;
    struct event_loop *loop = event_loop_create();
    assert_non_null(loop);
    int a[2];
    int b[2];
    make_pipe(a);
    make_pipe(b);
    put_byte(a[1]);
    put_byte(b[1]);
    struct pair_ctx ctx = { { a[0], b[0] }, { 0, 0 } };
    assert_int_equal(event_watch(loop, a[0], EVENT_READ, on_pair, &ctx), 0);
    assert_int_equal(event_watch(loop, b[0], EVENT_READ, on_pair, &ctx), 0);
    /* Both are ready in this round; only the first callback runs. */
    assert_int_equal(event_loop_run_once(loop, 1000), 1);
    assert_int_equal(ctx.calls[0] + ctx.calls[1], 1);
    int winner = ctx.calls[0] == 1 ? 0 : 1;
    /* The unwatched one stays silent; the winner is still watched. */
    assert_int_equal(event_unwatch(loop, ctx.fds[1 - winner]), -1);
    assert_int_equal(event_unwatch(loop, ctx.fds[winner]), 0);
    assert_int_equal(event_loop_run_once(loop, 20), 0);
    close_fd(a[0]);
    close_fd(a[1]);
    close_fd(b[0]);
    close_fd(b[1]);
    event_loop_free(loop);
}

/* The first callback unwatches and closes the other descriptor, and a new
 * pipe takes its number: the stale event must not reach the new watch. */
struct reuse_ctx {
    int fds[2];
    int first;        /* index of the callback that ran first, or -1 */
    int old_calls;
    int new_fd;
    int new_write_fd;
    struct seen fresh;
};

static void on_reuse(struct event_loop *loop, int fd, unsigned events,
                     void *ctx)
{
    (void)events;
    struct reuse_ctx *r = ctx;
    r->old_calls++;
    if (r->first >= 0)
        return;
    r->first = fd == r->fds[0] ? 0 : 1;
    int other = r->fds[1 - r->first];
    assert_int_equal(event_unwatch(loop, other), 0);
    assert_int_equal(close(other), 0);
    int p[2];
    assert_int_equal(pipe(p), 0);
    r->new_fd = p[0];
    r->new_write_fd = p[1];
    assert_int_equal(event_watch(loop, p[0], EVENT_READ, on_fd, &r->fresh),
                     0);
}

static void test_unwatch_close_reuse_in_same_round(void **state)
{
    (void)state;
    struct event_loop *loop = event_loop_create();
    assert_non_null(loop);
    int a[2];
    int b[2];
    make_pipe(a);
    make_pipe(b);
    put_byte(a[1]);
    put_byte(b[1]);
    struct reuse_ctx r;
    memset(&r, 0, sizeof(r));
    r.fds[0] = a[0];
    r.fds[1] = b[0];
    r.first = -1;
    assert_int_equal(event_watch(loop, a[0], EVENT_READ, on_reuse, &r), 0);
    assert_int_equal(event_watch(loop, b[0], EVENT_READ, on_reuse, &r), 0);
    assert_int_equal(event_loop_run_once(loop, 1000), 1);
    assert_int_equal(r.old_calls, 1);
    assert_int_equal(r.new_fd, r.fds[1 - r.first]); /* the number reused */
    assert_int_equal(r.fresh.calls, 0); /* nothing written to it yet */
    put_byte(r.new_write_fd);
    int kept = r.fds[r.first];
    assert_int_equal(event_unwatch(loop, kept), 0);
    assert_int_equal(event_loop_run_once(loop, 1000), 1);
    assert_int_equal(r.fresh.calls, 1);
    assert_int_equal(r.fresh.fd, r.new_fd);
    assert_int_equal(event_unwatch(loop, r.new_fd), 0);
    close_fd(r.new_fd);
    close_fd(r.new_write_fd);
    close_fd(kept);
    close_fd(r.first == 0 ? a[1] : b[1]);
    close_fd(r.first == 0 ? b[1] : a[1]);
    event_loop_free(loop);
}

static void on_unwatch_self(struct event_loop *loop, int fd, unsigned events,
                            void *ctx)
{
    (void)events;
    int *calls = ctx;
    (*calls)++;
    assert_int_equal(event_unwatch(loop, fd), 0);
}

static void test_unwatch_self(void **state)
{
    (void)state;
    struct event_loop *loop = event_loop_create();
    assert_non_null(loop);
    int p[2];
    make_pipe(p);
    put_byte(p[1]);
    int calls = 0;
    assert_int_equal(event_watch(loop, p[0], EVENT_READ, on_unwatch_self,
                                 &calls),
                     0);
    assert_int_equal(event_loop_run_once(loop, 1000), 1);
    assert_int_equal(event_loop_run_once(loop, 20), 0);
    assert_int_equal(calls, 1);
    close_fd(p[0]);
    close_fd(p[1]);
    event_loop_free(loop);
}

/* ---- timers ---- */

struct order {
    char log[32];
    size_t n;
    long long at[8];
};

struct tick {
    struct order *order;
    char mark;
};

static void on_tick(struct event_loop *loop, void *ctx)
{
    (void)loop;
    struct tick *t = ctx;
    struct order *o = t->order;
    if (o->n < sizeof(o->at) / sizeof(o->at[0]))
        o->at[o->n] = event_now_ms();
    if (o->n + 1 < sizeof(o->log))
        o->log[o->n++] = t->mark;
}

static void run_until(struct event_loop *loop, struct order *o, size_t n,
                      long long limit_ms)
{
    long long end = event_now_ms() + limit_ms;
    while (o->n < n && event_now_ms() < end)
        assert_true(event_loop_run_once(loop, 100) >= 0);
}

static void test_timer_order(void **state)
{
    (void)state;
    struct event_loop *loop = event_loop_create();
    assert_non_null(loop);
    struct order o;
    memset(&o, 0, sizeof(o));
    struct tick t30 = { &o, 'c' };
    struct tick t10 = { &o, 'a' };
    struct tick t20 = { &o, 'b' };
    struct tick z1 = { &o, '1' };
    struct tick z2 = { &o, '2' };
    long long start = event_now_ms();
    long id30 = event_timer_add(loop, 60, on_tick, &t30);
    long id10 = event_timer_add(loop, 20, on_tick, &t10);
    long id20 = event_timer_add(loop, 40, on_tick, &t20);
    long idz1 = event_timer_add(loop, 0, on_tick, &z1);
    long idz2 = event_timer_add(loop, -5, on_tick, &z2); /* as 0 */
    assert_true(id30 > 0 && id10 > id30 && id20 > id10 && idz1 > id20 &&
                idz2 > idz1);
    run_until(loop, &o, 5, 2000);
    assert_string_equal(o.log, "12abc");
    assert_true(o.at[2] - start >= 20);
    assert_true(o.at[3] - start >= 40);
    assert_true(o.at[4] - start >= 60);
    assert_true(o.at[4] - start < 1000);
    /* All ran: cancelling them now fails. */
    assert_int_equal(event_timer_cancel(loop, id10), -1);
    assert_int_equal(event_timer_cancel(loop, idz2), -1);
    event_loop_free(loop);
}

static void test_timer_cancel(void **state)
{
    (void)state;
    struct event_loop *loop = event_loop_create();
    assert_non_null(loop);
    struct order o;
    memset(&o, 0, sizeof(o));
    struct tick ta = { &o, 'a' };
    struct tick tb = { &o, 'b' };
    struct tick tc = { &o, 'c' };
    long a = event_timer_add(loop, 10, on_tick, &ta);
    long b = event_timer_add(loop, 20, on_tick, &tb);
    long c = event_timer_add(loop, 30, on_tick, &tc);
    assert_int_equal(event_timer_cancel(loop, b), 0);
    assert_int_equal(event_timer_cancel(loop, b), -1);
    assert_int_equal(event_timer_cancel(loop, 0), -1);
    assert_int_equal(event_timer_cancel(loop, 424242), -1);
    run_until(loop, &o, 2, 2000);
    assert_string_equal(o.log, "ac");
    assert_int_equal(event_timer_cancel(loop, a), -1);
    assert_int_equal(event_timer_cancel(loop, c), -1);
    /* With no timer and nothing watched, the loop just waits. */
    assert_int_equal(event_loop_run_once(loop, 10), 0);
    assert_string_equal(o.log, "ac");
    event_loop_free(loop);
}

/* A timer that cancels another one that is due in the same round. */
struct canceller {
    long victim;
    int cancel_rc;
    int calls;
};

static void on_cancel_other(struct event_loop *loop, void *ctx)
{
    struct canceller *c = ctx;
    c->calls++;
    c->cancel_rc = event_timer_cancel(loop, c->victim);
}

static void on_must_not_run(struct event_loop *loop, void *ctx)
{
    (void)loop;
    int *ran = ctx;
    (*ran)++;
}

static void test_timer_cancels_due_timer(void **state)
{
    (void)state;
    struct event_loop *loop = event_loop_create();
    assert_non_null(loop);
    int ran = 0;
    struct canceller c = { 0, 99, 0 };
    assert_true(event_timer_add(loop, 0, on_cancel_other, &c) > 0);
    c.victim = event_timer_add(loop, 0, on_must_not_run, &ran);
    assert_true(c.victim > 0);
    sleep_ms(5); /* both are due when the round starts */
    assert_int_equal(event_loop_run_once(loop, 0), 1);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.cancel_rc, 0);
    assert_int_equal(event_loop_run_once(loop, 20), 0);
    assert_int_equal(ran, 0);
    event_loop_free(loop);
}

/* A timer cancelling itself (it has already left the heap) and adding a
 * successor, which waits for the next round even with delay 0. */
struct rearm {
    long id;
    int calls;
    int self_cancel;
};

static void on_rearm(struct event_loop *loop, void *ctx)
{
    struct rearm *r = ctx;
    r->calls++;
    r->self_cancel = event_timer_cancel(loop, r->id);
    if (r->calls < 3)
        r->id = event_timer_add(loop, 0, on_rearm, r);
}

static void test_timer_rearms_itself(void **state)
{
    (void)state;
    struct event_loop *loop = event_loop_create();
    assert_non_null(loop);
    struct rearm r = { 0, 0, 0 };
    r.id = event_timer_add(loop, 0, on_rearm, &r);
    assert_int_equal(event_loop_run_once(loop, 100), 1);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.self_cancel, -1);
    assert_int_equal(event_loop_run_once(loop, 100), 1);
    assert_int_equal(event_loop_run_once(loop, 100), 1);
    assert_int_equal(r.calls, 3);
    assert_int_equal(event_loop_run_once(loop, 10), 0);
    event_loop_free(loop);
}

/* A descriptor callback cancels a timer that is due in the same round. */
struct fd_cancel {
    long timer;
    int calls;
};

static void on_fd_cancel(struct event_loop *loop, int fd, unsigned events,
                         void *ctx)
{
    (void)fd;
    (void)events;
    struct fd_cancel *f = ctx;
    f->calls++;
    assert_int_equal(event_timer_cancel(loop, f->timer), 0);
    assert_int_equal(event_unwatch(loop, fd), 0);
}

static void test_fd_callback_cancels_timer(void **state)
{
    (void)state;
    struct event_loop *loop = event_loop_create();
    assert_non_null(loop);
    int p[2];
    make_pipe(p);
    int ran = 0;
    struct fd_cancel f = { 0, 0 };
    f.timer = event_timer_add(loop, 0, on_must_not_run, &ran);
    put_byte(p[1]);
    assert_int_equal(event_watch(loop, p[0], EVENT_READ, on_fd_cancel, &f),
                     0);
    sleep_ms(2);
    assert_int_equal(event_loop_run_once(loop, 0), 1);
    assert_int_equal(f.calls, 1);
    assert_int_equal(ran, 0);
    close_fd(p[0]);
    close_fd(p[1]);
    event_loop_free(loop);
}

static void test_timer_limits_wait(void **state)
{
    (void)state;
    struct event_loop *loop = event_loop_create();
    assert_non_null(loop);
    struct order o;
    memset(&o, 0, sizeof(o));
    struct tick t = { &o, 't' };
    long long start = event_now_ms();
    assert_true(event_timer_add(loop, 50, on_tick, &t) > 0);
    /* An endless wait is cut short by the timer. */
    while (o.n == 0)
        assert_true(event_loop_run_once(loop, -1) >= 0);
    long long took = event_now_ms() - start;
    assert_true(took >= 50 && took < 1000);
    event_loop_free(loop);
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

static void test_eintr_returns_zero(void **state)
{
    (void)state;
    struct event_loop *loop = event_loop_create();
    assert_non_null(loop);
    struct sigaction sa;
    struct sigaction old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    assert_int_equal(sigemptyset(&sa.sa_mask), 0);
    assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
    alarms = 0;
    struct itimerval it = { { 0, 0 }, { 0, 30000 } };
    assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
    long long start = event_now_ms();
    int rc = event_loop_run_once(loop, 2000);
    long long took = event_now_ms() - start;
    assert_int_equal(sigaction(SIGALRM, &old, NULL), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(alarms, 1);
    assert_true(took >= 25 && took < 1000);
    event_loop_free(loop);
}

/* Watches and timers still pending when the loop is freed are released. */
static void test_free_with_pending(void **state)
{
    (void)state;
    struct event_loop *loop = event_loop_create();
    assert_non_null(loop);
    int p[2];
    make_pipe(p);
    struct seen s = { 0, -1, 0 };
    int ran = 0;
    assert_int_equal(event_watch(loop, p[0], EVENT_READ, on_fd, &s), 0);
    for (int i = 0; i < 100; i++)
        assert_true(event_timer_add(loop, 10000 + i, on_must_not_run, &ran) >
                    0);
    event_loop_free(loop);
    close_fd(p[0]);
    close_fd(p[1]);
    assert_int_equal(ran, 0);
}

int main(void)
{
    log_init("test", 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fd_readiness),
        cmocka_unit_test(test_watch_errors),
        cmocka_unit_test(test_watch_change),
        cmocka_unit_test(test_unwatch_other_in_same_round),
        cmocka_unit_test(test_unwatch_close_reuse_in_same_round),
        cmocka_unit_test(test_unwatch_self),
        cmocka_unit_test(test_timer_order),
        cmocka_unit_test(test_timer_cancel),
        cmocka_unit_test(test_timer_cancels_due_timer),
        cmocka_unit_test(test_timer_rearms_itself),
        cmocka_unit_test(test_fd_callback_cancels_timer),
        cmocka_unit_test(test_timer_limits_wait),
        cmocka_unit_test(test_eintr_returns_zero),
        cmocka_unit_test(test_free_with_pending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
