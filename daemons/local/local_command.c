/*
 * local_command - delivery to a |command of an alias or .forward.
 *
 * The command runs as /bin/sh -c COMMAND in a child of its own process
 * group, as the target's user for good (delivery_identity_become), in the
 * user's home (or / when that cannot be entered), with only this
 * environment: HOME USER LOGNAME SHELL SENDER RECIPIENT LOCAL EXTENSION
 * DOMAIN ORIGINAL_RECIPIENT and PATH=/usr/bin:/bin.  Its standard input
 * is the message with Return-Path: and Delivered-To: first; its standard
 * output and error are read together, the first LOCAL_COMMAND_OUTPUT_MAX
 * bytes kept (control characters made spaces) for the result text.
 *
 * The outcome:
 *   exit 0                         sent, "delivered to command: CMD"
 *   exit 75 (EX_TEMPFAIL), 71      deferred, with the output
 *   killed by a signal             deferred
 *   over command_time_limit        the group is killed; deferred
 *   another exit status            bounced, with the sysexits.h text and
 *                                  its RFC 3463 code (67: 5.1.1 ...)
 * A command that does not read its input is no error (its exit status
 * says how it went).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "delivery_identity.h"
#include "local.h"

/* A child that cannot be set up exits with this: deferred. */
#define LOCAL_CHILD_SETUP_FAILED EX_TEMPFAIL

struct local_exit_text {
    int status;
    const char *dsn;
    const char *text;
};

static const struct local_exit_text local_exit_texts[] = {
    { EX_USAGE, "5.3.0", "command line usage error" },
    { EX_DATAERR, "5.6.0", "data format error" },
    { EX_NOINPUT, "5.3.0", "cannot open input" },
    { EX_NOUSER, "5.1.1", "user unknown" },
    { EX_NOHOST, "5.1.2", "host name unknown" },
    { EX_UNAVAILABLE, "5.3.0", "service unavailable" },
    { EX_SOFTWARE, "5.3.0", "internal software error" },
    { EX_OSERR, "4.3.0", "system resource problem" },
    { EX_OSFILE, "5.3.0", "critical OS file missing" },
    { EX_CANTCREAT, "5.2.0", "can't create user output file" },
    { EX_IOERR, "5.3.0", "input/output error" },
    { EX_TEMPFAIL, "4.3.0", "temporary failure" },
    { EX_PROTOCOL, "5.5.0", "remote error in protocol" },
    { EX_NOPERM, "5.7.0", "permission denied" },
    { EX_CONFIG, "5.3.5", "local configuration error" },
};

/* ---- the child ------------------------------------------------------- */

static void local_child_env(struct buf *env, const char *name,
                            const char *value)
{
    buf_printf(env, "%s=%s", name, value != NULL ? value : "");
    buf_append_char(env, '\0');
}

static const char *local_original(const struct local_rcpt *r)
{
    const char *orcpt = r->req->recipients[r->index].orcpt;
    if (orcpt == NULL)
        return r->address;
    const char *semi = strchr(orcpt, ';');
    return semi != NULL ? semi + 1 : orcpt;
}

/* Never returns.  Errors go to stderr, which the parent reads. */
static _Noreturn void local_child(const struct local_rcpt *r,
                                  const struct local_target *t, int in_fd,
                                  int out_fd)
{
    struct buf why;
    buf_init(&why, 4096);
    if (setsid() < 0 || dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 ||
        dup2(out_fd, 2) < 0)
        _exit(LOCAL_CHILD_SETUP_FAILED);
    if (close_range(3, ~0U, 0) != 0)
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    const struct local_user *u = &t->as;
    if (delivery_identity_become(u->name, u->uid, u->gid, &why) != 0) {
        (void)!write(2, why.data, why.len);
        _exit(LOCAL_CHILD_SETUP_FAILED);
    }
    if (u->home == NULL || u->home[0] == '\0' || chdir(u->home) != 0)
        if (chdir("/") != 0)
            _exit(LOCAL_CHILD_SETUP_FAILED);
    struct buf env;
    buf_init(&env, 64 * 1024);
    local_child_env(&env, "HOME", u->home);
    local_child_env(&env, "USER", u->name);
    local_child_env(&env, "LOGNAME", u->name);
    local_child_env(&env, "SHELL", u->shell);
    local_child_env(&env, "SENDER", r->req->sender);
    local_child_env(&env, "RECIPIENT", r->address);
    local_child_env(&env, "LOCAL", r->local);
    local_child_env(&env, "EXTENSION", r->extension);
    local_child_env(&env, "DOMAIN", r->domain);
    local_child_env(&env, "ORIGINAL_RECIPIENT", local_original(r));
    local_child_env(&env, "PATH", "/usr/bin:/bin");
    char *envp[12];
    size_t n = 0;
    for (size_t off = 0; off < env.len && n < 11; n++) {
        envp[n] = env.data + off;
        off += strlen(env.data + off) + 1;
    }
    envp[n] = NULL;
    char *argv[] = { "sh", "-c", t->value, NULL };
    execve("/bin/sh", argv, envp);
    buf_reset(&why);
    buf_printf(&why, "cannot execute /bin/sh: %s", strerror(errno));
    (void)!write(2, why.data, why.len);
    _exit(LOCAL_CHILD_SETUP_FAILED);
}

/* ---- the parent: feed the input, read the output, wait ---------------- */

struct local_feed {
    struct buf headers;
    const char *data;       /* what is left to write of the current piece */
    size_t len;
    int stage;              /* 0 headers, 1 content, 2 done */
    int failed;             /* the queue file could not be read */
};

/* The next piece to write; 0 when everything was written. */
static int local_feed_next(struct local_feed *f, struct delivery_source *src)
{
    while (f->len == 0 && f->stage < 2) {
        if (f->stage == 0) {
            f->data = f->headers.data;
            f->len = f->headers.len;
            f->stage = 1;
            continue;
        }
        struct buf error;
        buf_init(&error, 1024);
        int rc = delivery_source_next(src, &f->data, &f->len, &error);
        buf_free(&error);
        if (rc <= 0) {
            f->failed = rc < 0;
            f->stage = 2;
            f->len = 0;
        }
    }
    return f->len > 0;
}

static double local_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void local_keep_output(struct buf *out, const char *data, size_t len)
{
    for (size_t i = 0; i < len && out->len < LOCAL_COMMAND_OUTPUT_MAX; i++) {
        unsigned char c = (unsigned char)data[i];
        buf_append_char(out, c < 0x20 || c == 0x7f ? ' ' : (char)c);
    }
}

/* Feeds the input and reads the output until both are done or the
 * deadline passes.  0, or -1 on timeout. */
static int local_converse(struct local_rcpt *r, int in_fd, int out_fd,
                          double deadline, struct local_feed *feed,
                          struct buf *output)
{
    int writing = 1, reading = 1;
    while (writing || reading) {
        if (writing && !local_feed_next(feed, r->src)) {
            close(in_fd);
            writing = 0;
            continue;
        }
        struct pollfd fds[2] = {
            { .fd = reading ? out_fd : -1, .events = POLLIN },
            { .fd = writing ? in_fd : -1, .events = POLLOUT },
        };
        double left = deadline - local_now();
        if (left <= 0)
            break;
        int rc = poll(fds, 2, left > 1000 ? 1000000 : (int)(left * 1000) + 1);
        if (rc < 0 && errno != EINTR)
            break;
        if (rc <= 0)
            continue;
        if (fds[1].revents & (POLLOUT | POLLERR | POLLHUP)) {
            ssize_t n = write(in_fd, feed->data, feed->len);
            if (n > 0) {
                feed->data += n;
                feed->len -= (size_t)n;
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                close(in_fd);   /* EPIPE: the command reads no more */
                writing = 0;
            }
        }
        if (fds[0].revents & (POLLIN | POLLERR | POLLHUP)) {
            char chunk[4096];
            ssize_t n = read(out_fd, chunk, sizeof(chunk));
            if (n > 0)
                local_keep_output(output, chunk, (size_t)n);
            else if (n == 0 || (errno != EAGAIN && errno != EINTR))
                reading = 0;
        }
    }
    if (writing)
        close(in_fd);
    return writing || reading ? -1 : 0;
}

/* waitpid until the deadline; 0 with *status, or -1 on timeout. */
static int local_wait(pid_t pid, double deadline, int *status)
{
    for (;;) {
        pid_t got = waitpid(pid, status, WNOHANG);
        if (got == pid)
            return 0;
        if (got < 0 && errno != EINTR)
            return -1;
        if (local_now() >= deadline)
            return -1;
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
}

static void local_command_result(const struct local_target *t, int status,
                                 const struct buf *output,
                                 struct local_outcome *o)
{
    struct buf text;
    buf_init(&text, 16 * 1024);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        buf_printf(&text, "delivered to command: %s", t->value);
        local_outcome_add(o, DELIVERY_SENT, "2.0.0", buf_cstr(&text));
        buf_free(&text);
        return;
    }
    const char *dsn = "4.3.0";
    if (WIFSIGNALED(status)) {
        buf_printf(&text, "Command died with signal %d: \"%s\"",
                   WTERMSIG(status), t->value);
    } else {
        int code = WEXITSTATUS(status);
        const char *what = "unknown mail error";
        dsn = "5.3.0";
        for (size_t i = 0; i < sizeof(local_exit_texts) /
                                   sizeof(local_exit_texts[0]); i++)
            if (local_exit_texts[i].status == code) {
                dsn = local_exit_texts[i].dsn;
                what = local_exit_texts[i].text;
            }
        buf_printf(&text, "Command died with status %d (%s): \"%s\"", code,
                   what, t->value);
    }
    size_t out_len = output->len;
    while (out_len > 0 && output->data[out_len - 1] == ' ')
        out_len--;
    if (out_len > 0)
        buf_printf(&text, ". Command output: %.*s", (int)out_len,
                   output->data);
    local_outcome_add(o, dsn[0] == '4' ? DELIVERY_DEFERRED : DELIVERY_BOUNCED,
                      dsn, buf_cstr(&text));
    buf_free(&text);
}

void local_deliver_command(struct local_rcpt *r, const struct local_target *t,
                           struct local_outcome *o)
{
    /* A command may take long: what is delivered so far is told first. */
    delivery_request_commit(r->req);
    if (!delivery_identity_possible(t->as.uid)) {
        struct buf why;
        buf_init(&why, 1024);
        buf_printf(&why, "cannot run a command as uid %ld: the delivery "
                   "agent does not run as root", (long)t->as.uid);
        local_outcome_add(o, DELIVERY_DEFERRED, "4.3.0", buf_cstr(&why));
        buf_free(&why);
        return;
    }
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0) {
        local_outcome_add(o, DELIVERY_DEFERRED, "4.3.0", "pipe failed");
        return;
    }
    if (pipe2(out, O_CLOEXEC) != 0) {
        close(in[0]);
        close(in[1]);
        local_outcome_add(o, DELIVERY_DEFERRED, "4.3.0", "pipe failed");
        return;
    }
    pid_t pid = fork();
    if (pid == 0)
        local_child(r, t, in[0], out[1]);
    close(in[0]);
    close(out[1]);
    if (pid < 0) {
        close(in[1]);
        close(out[0]);
        local_outcome_add(o, DELIVERY_DEFERRED, "4.3.0", "fork failed");
        return;
    }
    fcntl(in[1], F_SETFL, O_NONBLOCK);
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    struct local_feed feed = { .stage = 0 };
    buf_init(&feed.headers, 16 * 1024);
    local_prepend_headers(r, &feed.headers);
    delivery_source_rewind(r->src);
    struct buf output;
    buf_init(&output, LOCAL_COMMAND_OUTPUT_MAX + 1);
    double deadline = local_now() + (double)r->lc->command_time_limit;
    int status = 0;
    int timed_out = local_converse(r, in[1], out[0], deadline, &feed,
                                   &output) != 0 ||
                    local_wait(pid, deadline, &status) != 0;
    close(out[0]);
    if (timed_out) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        struct buf why;
        buf_init(&why, 8192);
        buf_printf(&why, "Command time limit exceeded: \"%s\"", t->value);
        local_outcome_add(o, DELIVERY_DEFERRED, "4.3.0", buf_cstr(&why));
        buf_free(&why);
    } else if (feed.failed) {
        local_outcome_add(o, DELIVERY_DEFERRED, "4.3.0",
                          "cannot read the queue file");
    } else {
        local_command_result(t, status, &output, o);
    }
    buf_free(&output);
    buf_free(&feed.headers);
}
