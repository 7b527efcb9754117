/*
 * server - the daemon skeleton: arguments, configuration, logging,
 * privilege drop, and the accept loop with the master's status protocol.
 * See server.h for the contract and docs/protocol.md for the status pipe.
 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "event.h"
#include "log.h"
#include "privilege.h"
#include "status_board.h"
#include "text.h"

/* Set by the SIGHUP handler: the master asked us to finish.  A signal
 * handler can only reach a file-scope flag. */
static volatile sig_atomic_t server_exit_requested;
/* SERVER_MULTI: the write end of the pipe that wakes the event loop when
 * SIGHUP arrives; -1 in the other modes. */
static int server_wakeup_fd = -1;

struct server_options {
    const char *config_dir;
    const char *service_name;
    const char *service_type;
    long listen_count;
    long board_slot;           /* -1: no status board */
    int log_stderr;
    int unprivileged;
    int chroot;
    int verbose;
    char **overrides;
    size_t override_count;
};

static void server_on_hangup(int sig)
{
    (void)sig;
    server_exit_requested = 1;
    if (server_wakeup_fd >= 0) {
        int saved = errno;
        ssize_t n = write(server_wakeup_fd, "x", 1);
        (void)n; /* a full pipe already holds a wakeup */
        errno = saved;
    }
}

int server_should_exit(const struct server *srv)
{
    (void)srv;
    return server_exit_requested != 0;
}

int server_single_can_take_more(const struct server *srv)
{
    return !server_exit_requested && srv->used + 1 < srv->max_use;
}

void server_single_took_more(struct server *srv)
{
    srv->used++;
}

static void server_usage(const char *program)
{
    log_fatal("usage: %s -c config_dir -n service -t inet|unix -s count "
              "[-b slot] [-S] [-u] [-Z] [-v] [-o name=value]... [args]",
              program);
}

static void server_parse_args(int argc, char **argv,
                              struct server_options *opt)
{
    memset(opt, 0, sizeof(*opt));
    opt->board_slot = -1;
    opt->overrides = calloc((size_t)argc, sizeof(char *));
    if (opt->overrides == NULL)
        log_fatal("out of memory");
    int c;
    opterr = 0;
    while ((c = getopt(argc, argv, "+c:n:t:s:b:SuZvo:")) != -1) {
        switch (c) {
        case 'c': opt->config_dir = optarg; break;
        case 'n': opt->service_name = optarg; break;
        case 't': opt->service_type = optarg; break;
        case 's':
            if (text_parse_long(optarg, 0, SERVER_LISTEN_MAX,
                                &opt->listen_count) != 0)
                log_fatal("bad listen socket count: %s", optarg);
            break;
        case 'b':
            if (text_parse_long(optarg, 0, LONG_MAX, &opt->board_slot) != 0)
                log_fatal("bad status board slot: %s", optarg);
            break;
        case 'S': opt->log_stderr = 1; break;
        case 'u': opt->unprivileged = 1; break;
        case 'Z': opt->chroot = 1; break;
        case 'v': opt->verbose = 1; break;
        case 'o': opt->overrides[opt->override_count++] = optarg; break;
        default: server_usage(argv[0]);
        }
    }
    if (opt->config_dir == NULL || opt->service_name == NULL ||
        opt->service_type == NULL)
        server_usage(argv[0]);
}

static struct config *server_load_config(const struct server_options *opt)
{
    struct config *cfg =
        config_load_dir_flags(opt->config_dir, CONFIG_QUIET_UNUSED, NULL);
    if (cfg == NULL)
        log_fatal("%s/main.cf has errors; run \"postino check\"",
                  opt->config_dir);
    for (size_t i = 0; i < opt->override_count; i++) {
        char *name = opt->overrides[i];
        char *eq = strchr(name, '=');
        if (eq == NULL)
            log_fatal("master.cf: -o %s: expected name=value", name);
        *eq = '\0';
        config_set_override(cfg, text_trim(name), text_trim(eq + 1),
                            "master.cf", 0);
    }
    if (config_check(cfg) != 0)
        log_fatal("bad configuration; run \"postino check\"");
    return cfg;
}

static void server_open_log(struct server *srv, const struct server_options *opt)
{
    log_set_syslog_name(config_get_str(srv->cfg, "syslog_name"));
    log_set_verbose(opt->verbose);
    if (opt->log_stderr) {
        log_set_destinations(LOG_TO_STDERR);
        return;
    }
    const char *file = config_get_str(srv->cfg, "maillog_file");
    if (file[0] != '\0') {
        if (log_open_file(file) != 0)
            log_fatal("open maillog_file %s: %s", file, strerror(errno));
        log_set_destinations(LOG_TO_FILE);
        return;
    }
    log_set_destinations(LOG_TO_SYSLOG);
}

static void server_drop_privileges(struct server *srv,
                                   const struct server_options *opt)
{
    if (!opt->unprivileged)
        return;
    const char *root = opt->chroot
        ? config_get_str(srv->cfg, "queue_directory") : NULL;
    if (privilege_drop(config_get_str(srv->cfg, "mail_owner"), root, NULL,
                       0) != 0)
        log_fatal("cannot drop privileges");
}

/* The master's death must not leave us serving from its sockets.  The
 * parent-death signal is reset by a uid change, so it is set after the
 * drop, and the parent checked again to close the race. */
static void server_watch_parent(pid_t parent)
{
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0)
        log_fatal("prctl(PR_SET_PDEATHSIG): %s", strerror(errno));
    if (getppid() != parent)
        log_fatal("master is gone; exiting");
}

static void server_setup_signals(sigset_t *wait_mask)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGPIPE, &sa, NULL) != 0)
        log_fatal("sigaction SIGPIPE: %s", strerror(errno));
    sa.sa_handler = server_on_hangup;
    if (sigaction(SIGHUP, &sa, NULL) != 0)
        log_fatal("sigaction SIGHUP: %s", strerror(errno));
    /* SIGHUP stays blocked except while waiting for a connection, so that
     * it never cuts a connection short, and never slips in between the
     * flag check and the wait. */
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &block, wait_mask) != 0)
        log_fatal("sigprocmask: %s", strerror(errno));
    sigdelset(wait_mask, SIGHUP);
}

/* Tells the master we are busy or available; exits when it is gone. */
/* Writes count status messages in one write(2): atomic on the pipe, so
 * the master reads them together. */
static void server_report_messages(const int32_t (*message)[2], size_t count)
{
    size_t size = count * sizeof(message[0]);
    for (;;) {
        ssize_t n = write(SERVER_STATUS_FD, message, size);
        if (n == (ssize_t)size)
            return;
        if (n < 0 && errno == EINTR)
            continue;
        log_debug("status pipe: %s; master gone, exiting",
                  n < 0 ? strerror(errno) : "short write");
        exit(0);
    }
}

static void server_report(const struct server *srv, enum server_status status)
{
    const int32_t message[1][2] = { { (int32_t)srv->pid, (int32_t)status } };
    server_report_messages(message, 1);
}

/* Took a connection.  With a status board the master hears of it only
 * the first time (that this process works) and when no process of the
 * service is left idle (it may have to start one). */
static void server_report_busy(struct server *srv)
{
    int first = !srv->reported_use;
    srv->reported_use = 1;
    if (srv->board == NULL ||
        status_board_mark_busy(srv->board, srv->board_slot) || first)
        server_report(srv, SERVER_STATUS_BUSY);
}

/* Done with it; the master hears of it only when it waits for that. */
static void server_report_available(struct server *srv)
{
    if (srv->board == NULL ||
        status_board_mark_idle(srv->board, srv->board_slot))
        server_report(srv, SERVER_STATUS_AVAILABLE);
}

/* The board the master passed after the listening sockets, or none: then
 * every change goes on the status pipe. */
static void server_attach_board(struct server *srv, long slot)
{
    if (slot < 0)
        return;
    int fd = SERVER_LISTEN_FD + (int)srv->listen_count;
    srv->board = status_board_attach(fd);
    if (srv->board == NULL) {
        log_warn("status board: %s", strerror(errno));
        return;
    }
    if (!status_board_has_slot(srv->board, slot)) {
        log_warn("status board: no slot %ld", slot);
        status_board_free(srv->board);
        srv->board = NULL;
        return;
    }
    srv->board_slot = slot;
}

/* The listening sockets in an epoll set, each with EPOLLEXCLUSIVE: a new
 * connection then wakes one idle process of the service rather than all
 * of them, which would each wake up (a context switch and two system
 * calls) only for all but one to find nothing to accept. */
static int server_listen_set(const struct server *srv)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        log_fatal("epoll_create1: %s", strerror(errno));
    for (size_t i = 0; i < srv->listen_count; i++) {
        struct epoll_event ev;
        memset(&ev, 0, sizeof(ev));
        ev.events = EPOLLIN | EPOLLEXCLUSIVE;
        ev.data.fd = srv->listen_fds[i];
        if (epoll_ctl(ep, EPOLL_CTL_ADD, srv->listen_fds[i], &ev) != 0)
            log_fatal("epoll_ctl: %s", strerror(errno));
    }
    return ep;
}

/* Waits for a connection on the listening set ep; returns its descriptor,
 * or -1 when it is time to exit (idle too long, or asked to finish). */
static int server_accept(int ep, const sigset_t *wait_mask,
                         long idle_seconds)
{
    int timeout_ms = -1;
    if (idle_seconds > 0)
        timeout_ms = idle_seconds > INT_MAX / 1000 ? INT_MAX
                                                   : (int)idle_seconds * 1000;
    for (;;) {
        if (server_exit_requested)
            return -1;
        struct epoll_event ready[SERVER_LISTEN_MAX];
        int n = epoll_pwait(ep, ready, SERVER_LISTEN_MAX, timeout_ms,
                            wait_mask);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            log_fatal("epoll_pwait: %s", strerror(errno));
        if (n == 0) {
            log_debug("idle timeout -- exiting");
            return -1;
        }
        for (int i = 0; i < n; i++) {
            int fd = accept4(ready[i].data.fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0)
                return fd;
            if (errno == EINVAL || errno == EBADF || errno == ENOTSOCK) {
                /* The master shut the service down. */
                log_debug("listening socket closed -- exiting");
                return -1;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNABORTED)
                log_warn("accept: %s", strerror(errno));
        }
    }
}

/* A trigger client writes a few bytes and closes; a slow one is cut off. */
static void server_read_trigger(struct server *srv,
                                const struct server_spec *spec, int fd)
{
    char data[SERVER_TRIGGER_MAX];
    size_t len = 0;
    while (len < sizeof(data)) {
        struct pollfd pfd = { fd, POLLIN, 0 };
        int ready = poll(&pfd, 1, 1000);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0)
            break;
        ssize_t n = read(fd, data + len, sizeof(data) - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    if (len > 0)
        spec->trigger(srv, data, len);
}

static void server_loop(struct server *srv, const struct server_spec *spec,
                        const sigset_t *wait_mask)
{
    srv->max_use = config_get_int(srv->cfg, "max_use");
    long max_idle = spec->no_idle_exit ? 0
                                       : config_get_time(srv->cfg, "max_idle");
    int ep = server_listen_set(srv);
    for (srv->used = 0;
         srv->used < srv->max_use || spec->mode == SERVER_TRIGGER;
         srv->used++) {
        server_report_available(srv);
        int fd = server_accept(ep, wait_mask, max_idle);
        if (fd < 0)
            break;
        server_report_busy(srv);
        if (spec->mode == SERVER_TRIGGER)
            server_read_trigger(srv, spec, fd);
        else
            spec->service(srv, fd);
        if (close(fd) != 0 && errno != EINTR)
            log_warn("close: %s", strerror(errno));
        if (srv->used + 1 >= srv->max_use && spec->mode != SERVER_TRIGGER)
            log_debug("max_use reached -- exiting");
    }
    if (close(ep) != 0)
        log_warn("close epoll set: %s", strerror(errno));
}

/*
 * SERVER_MULTI: the skeleton's part of the event loop.  It accepts on the
 * listening sockets, counts the open connections for max_idle and
 * max_use, and ends the loop when it is time to exit.
 */
#define SERVER_ACCEPT_PAUSE_MS 1000

struct server_multi {
    const struct server_spec *spec;
    long max_use;
    long max_idle_ms;     /* 0: no idle exit */
    long used;            /* connections accepted */
    size_t open;          /* connections the daemon holds now */
    long idle_timer;      /* 0: none */
    long pause_timer;     /* accepting paused after EMFILE; 0: not */
    int wakeup_fds[2];
    int done;
};

static void server_multi_on_idle(struct event_loop *loop, void *ctx)
{
    (void)loop;
    struct server *srv = ctx;
    srv->multi->idle_timer = 0;
    log_debug("idle timeout -- exiting");
    srv->multi->done = 1;
}

/* Called whenever the number of open connections may have dropped to 0. */
static void server_multi_check_idle(struct server *srv)
{
    struct server_multi *m = srv->multi;
    if (m->open > 0)
        return;
    if (!m->spec->no_use_limit && m->used >= m->max_use) {
        log_debug("max_use reached -- exiting");
        m->done = 1;
        return;
    }
    if (m->max_idle_ms > 0 && m->idle_timer == 0) {
        m->idle_timer = event_timer_add(srv->loop, m->max_idle_ms,
                                        server_multi_on_idle, srv);
        if (m->idle_timer < 0)
            log_fatal("event_timer_add: %s", strerror(errno));
    }
}

static void server_multi_on_listen(struct event_loop *loop, int fd,
                                   unsigned events, void *ctx);

static void server_multi_watch_listen(struct server *srv)
{
    for (size_t i = 0; i < srv->listen_count; i++)
        if (event_watch(srv->loop, srv->listen_fds[i], EVENT_READ,
                        server_multi_on_listen, srv) != 0)
            log_fatal("watch listening socket: %s", strerror(errno));
}

static void server_multi_on_unpause(struct event_loop *loop, void *ctx)
{
    (void)loop;
    struct server *srv = ctx;
    srv->multi->pause_timer = 0;
    server_multi_watch_listen(srv);
}

/* Out of descriptors: the listening socket stays readable, so stop
 * watching it for a while instead of spinning on accept. */
static void server_multi_pause_accept(struct server *srv)
{
    struct server_multi *m = srv->multi;
    if (m->pause_timer != 0)
        return;
    log_warn("accept: %s; not accepting for %d ms", strerror(errno),
             SERVER_ACCEPT_PAUSE_MS);
    for (size_t i = 0; i < srv->listen_count; i++)
        (void)event_unwatch(srv->loop, srv->listen_fds[i]);
    m->pause_timer = event_timer_add(srv->loop, SERVER_ACCEPT_PAUSE_MS,
                                     server_multi_on_unpause, srv);
    if (m->pause_timer < 0)
        log_fatal("event_timer_add: %s", strerror(errno));
}

static void server_multi_on_listen(struct event_loop *loop, int fd,
                                   unsigned events, void *ctx)
{
    (void)events;
    struct server *srv = ctx;
    struct server_multi *m = srv->multi;
    if (m->done)
        return;
    int client = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (client < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
            errno == ENOMEM) {
            server_multi_pause_accept(srv);
        } else if (errno == EINVAL || errno == EBADF || errno == ENOTSOCK) {
            log_debug("listening socket closed -- exiting");
            m->done = 1;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK &&
                   errno != EINTR && errno != ECONNABORTED) {
            log_warn("accept: %s", strerror(errno));
        }
        return;
    }
    /* Like a single-connection child, tell the master that this process
     * served a connection; it stays available (idle on the board) for the
     * next.  Both words in one write, so that the master never sees this
     * process busy (and at its process limit) in between.  With a board,
     * only the first connection is told: nothing else changes. */
    const int32_t used[2][2] = {
        { (int32_t)srv->pid, SERVER_STATUS_BUSY },
        { (int32_t)srv->pid, SERVER_STATUS_AVAILABLE },
    };
    if (srv->board == NULL || !srv->reported_use)
        server_report_messages(used, 2);
    srv->reported_use = 1;
    m->used++;
    m->open++;
    if (m->idle_timer != 0) {
        (void)event_timer_cancel(loop, m->idle_timer);
        m->idle_timer = 0;
    }
    m->spec->accept(srv, client);
}

void server_multi_close(struct server *srv, int client_fd)
{
    struct server_multi *m = srv->multi;
    if (m == NULL)
        log_panic("server_multi_close outside SERVER_MULTI");
    (void)event_unwatch(srv->loop, client_fd);
    if (close(client_fd) != 0 && errno != EINTR)
        log_warn("close: %s", strerror(errno));
    if (m->open == 0)
        log_panic("server_multi_close: no connection is open");
    m->open--;
    server_multi_check_idle(srv);
}

static void server_multi_on_wakeup(struct event_loop *loop, int fd,
                                   unsigned events, void *ctx)
{
    (void)loop;
    (void)events;
    (void)ctx;
    char bytes[16];
    while (read(fd, bytes, sizeof(bytes)) > 0)
        continue;
}

static void server_multi_loop(struct server *srv,
                              const struct server_spec *spec,
                              const sigset_t *wait_mask)
{
    struct server_multi m;
    memset(&m, 0, sizeof(m));
    m.spec = spec;
    m.max_use = config_get_int(srv->cfg, "max_use");
    m.max_idle_ms = spec->no_idle_exit
        ? 0 : config_get_time(srv->cfg, "max_idle") * 1000;
    srv->multi = &m;
    if (pipe2(m.wakeup_fds, O_CLOEXEC | O_NONBLOCK) != 0)
        log_fatal("pipe: %s", strerror(errno));
    if (event_watch(srv->loop, m.wakeup_fds[0], EVENT_READ,
                    server_multi_on_wakeup, srv) != 0)
        log_fatal("watch wakeup pipe: %s", strerror(errno));
    server_wakeup_fd = m.wakeup_fds[1];
    /* From here SIGHUP may arrive at any time: the handler wakes the loop
     * through the pipe, so it cannot slip in unseen before a wait. */
    if (sigprocmask(SIG_SETMASK, wait_mask, NULL) != 0)
        log_fatal("sigprocmask: %s", strerror(errno));
    server_multi_watch_listen(srv);
    server_report_available(srv);
    server_multi_check_idle(srv);
    while (!m.done && !server_exit_requested) {
        if (event_loop_run_once(srv->loop, -1) < 0)
            log_fatal("event loop: %s", strerror(errno));
    }
    if (spec->pre_exit)
        spec->pre_exit(srv);
}

int server_main(int argc, char **argv, const struct server_spec *spec)
{
    log_init(argv[0], LOG_TO_STDERR);
    pid_t parent = getppid();
    struct server_options opt;
    server_parse_args(argc, argv, &opt);

    struct server srv;
    memset(&srv, 0, sizeof(srv));
    srv.config_dir = opt.config_dir;
    srv.service_name = opt.service_name;
    srv.service_type = opt.service_type;
    srv.argc = argc - optind;
    srv.argv = argv + optind;
    srv.listen_count = (size_t)opt.listen_count;
    srv.pid = getpid();
    for (size_t i = 0; i < srv.listen_count; i++)
        srv.listen_fds[i] = SERVER_LISTEN_FD + (int)i;
    srv.board_slot = -1;
    server_attach_board(&srv, opt.board_slot);

    srv.cfg = server_load_config(&opt);
    server_open_log(&srv, &opt);

    sigset_t wait_mask;
    server_setup_signals(&wait_mask);
    if (spec->pre_drop)
        spec->pre_drop(&srv);
    server_drop_privileges(&srv, &opt);
    server_watch_parent(parent);
    if (spec->mode == SERVER_MULTI) {
        srv.loop = event_loop_create();
        if (srv.loop == NULL)
            log_fatal("event loop: %s", strerror(errno));
    }
    if (spec->init)
        spec->init(&srv);
    if (spec->mode == SERVER_MULTI)
        server_multi_loop(&srv, spec, &wait_mask);
    else
        server_loop(&srv, spec, &wait_mask);
    if (srv.loop != NULL)
        event_loop_free(srv.loop);
    config_free(srv.cfg);
    status_board_free(srv.board);
    free(opt.overrides);
    return 0;
}
