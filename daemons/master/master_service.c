/*
 * master_service - running one master.cf service.  See master_service.h.
 *
 * Demand-driven spawning, as Postfix's master does it: while at least one
 * child is available the master leaves the listening sockets alone and the
 * children accept; when none is, the master watches the sockets itself and
 * starts a child when a connection waits.  A new child counts as available
 * from the moment it is forked, so one waiting connection starts one child,
 * not a burst of them.
 *
 * A child that exits abnormally before it took a single connection is a bad
 * start: the service is throttled (no new children) for 1 s, then 2, 4, ...
 * up to service_throttle_time, and a good start resets the delay.  Other
 * services are not affected.
 */
#include "master_service.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "server.h"
#include "text.h"

#define MASTER_LISTEN_BACKLOG 256
#define MASTER_PATH_MAX 4096
/* After a child of a service with wakeups died, the next wakeup waits
 * this long. */
#define MASTER_CRASH_WAKEUP_MS 1000
/* After a reload, the first wakeup of a kept service waits this long. */
#define MASTER_RELOAD_WAKEUP_MS 1000
/* Status board slots of a service without a process limit. */
#define MASTER_BOARD_UNLIMITED 4096

static void service_update_listen(struct master_service *svc);

static char *service_strdup(const char *s)
{
    char *copy = strdup(s);
    if (copy == NULL)
        log_fatal("out of memory");
    return copy;
}

static int service_unix_path(struct master_context *ctx,
                             const struct master_service_entry *entry,
                             struct buf *path)
{
    if (strchr(entry->name, '/') != NULL || entry->name[0] == '.') {
        buf_printf(path, "bad unix service name \"%s\"", entry->name);
        return -1;
    }
    return buf_printf(path, "%s/%s/%s",
                      config_get_str(ctx->cfg, "queue_directory"),
                      entry->private_socket ? "private" : "public",
                      entry->name);
}

static int service_resolve(struct master_context *ctx,
                           const struct master_service_entry *entry,
                           struct listen_addr *addrs, size_t *count,
                           struct buf *error)
{
    struct text_list interfaces, protocols;
    config_get_list(ctx->cfg, "inet_interfaces", &interfaces);
    config_get_list(ctx->cfg, "inet_protocols", &protocols);
    int rc = listen_resolve_inet(entry->name, &interfaces, &protocols, addrs,
                                 count, error);
    text_list_free(&interfaces);
    text_list_free(&protocols);
    return rc;
}

int master_service_address_key(struct master_context *ctx,
                               const struct master_service_entry *entry,
                               struct buf *key)
{
    if (entry->type == MASTER_SERVICE_UNIX)
        return service_unix_path(ctx, entry, key);
    struct listen_addr addrs[LISTEN_ADDR_MAX];
    size_t count;
    struct buf error;
    buf_init(&error, 512);
    int rc = service_resolve(ctx, entry, addrs, &count, &error);
    buf_free(&error);
    if (rc != 0)
        return -1;
    for (size_t i = 0; i < count; i++)
        if (buf_printf(key, "%s%s", i ? " " : "", addrs[i].text) != 0)
            return -1;
    return 0;
}

static int service_open_sockets(struct master_service *svc)
{
    struct buf error;
    buf_init(&error, 1024);
    if (svc->entry->type == MASTER_SERVICE_UNIX) {
        struct buf path;
        buf_init(&path, MASTER_PATH_MAX);
        if (service_unix_path(svc->ctx, svc->entry, &path) != 0) {
            log_error("%s:%d: %s", svc->entry->file, svc->entry->line,
                      buf_cstr(&path));
            buf_free(&path);
            return -1;
        }
        int fd = listen_open_unix(buf_cstr(&path), MASTER_LISTEN_BACKLOG,
                                  &error);
        if (fd < 0) {
            log_error("service %s: %s", svc->label, buf_cstr(&error));
            buf_free(&error);
            buf_free(&path);
            return -1;
        }
        svc->listen_fds[svc->listen_count++] = fd;
        svc->socket_path = service_strdup(buf_cstr(&path));
        buf_free(&path);
        buf_free(&error);
        return 0;
    }
    struct listen_addr addrs[LISTEN_ADDR_MAX];
    size_t count;
    if (service_resolve(svc->ctx, svc->entry, addrs, &count, &error) != 0) {
        log_error("%s:%d: service %s: %s", svc->entry->file,
                  svc->entry->line, svc->entry->name, buf_cstr(&error));
        buf_free(&error);
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        buf_reset(&error);
        int fd = listen_open_inet(&addrs[i], MASTER_LISTEN_BACKLOG, &error);
        if (fd < 0) {
            log_error("service %s: %s", svc->label, buf_cstr(&error));
            buf_free(&error);
            return -1;
        }
        svc->listen_fds[svc->listen_count++] = fd;
    }
    buf_free(&error);
    return 0;
}

static void service_close_sockets(struct master_service *svc)
{
    if (svc->watching) {
        for (size_t i = 0; i < svc->listen_count; i++)
            event_unwatch(svc->ctx->loop, svc->listen_fds[i]);
        svc->watching = 0;
    }
    /* Children that finish a connection still hold copies of the sockets;
     * shutdown() stops the listening for every copy at once, so a removed
     * service refuses new connections now, not when its last child goes. */
    for (size_t i = 0; i < svc->listen_count; i++) {
        if (shutdown(svc->listen_fds[i], SHUT_RDWR) != 0 && errno != ENOTCONN)
            log_warn("shutdown listener of %s: %s", svc->label,
                     strerror(errno));
        if (close(svc->listen_fds[i]) != 0)
            log_warn("close listener of %s: %s", svc->label, strerror(errno));
    }
    svc->listen_count = 0;
    if (svc->socket_path != NULL && unlink(svc->socket_path) != 0 &&
        errno != ENOENT)
        log_warn("remove %s: %s", svc->socket_path, strerror(errno));
}

/* The command and limits of the entry, checked; 0 or -1. */
static int service_apply_entry(struct master_service *svc,
                               const struct master_service_entry *entry)
{
    struct buf path;
    buf_init(&path, MASTER_PATH_MAX);
    if (master_cf_command_path(entry, config_get_str(svc->ctx->cfg,
                                                     "daemon_directory"),
                               &path) != 0 ||
        access(buf_cstr(&path), X_OK) != 0) {
        log_error("%s:%d: service %s: command %s: %s", entry->file,
                  entry->line, entry->name, buf_cstr(&path), strerror(errno));
        buf_free(&path);
        return -1;
    }
    free(svc->command_path);
    svc->command_path = service_strdup(buf_cstr(&path));
    buf_free(&path);
    svc->entry = entry;
    svc->max_process = entry->max_process == MASTER_MAXPROC_DEFAULT
        ? config_get_int(svc->ctx->cfg, "default_process_limit")
        : entry->max_process;
    return 0;
}

/* Moves the children to the retired list and tells them to finish. */
static void service_retire_children(struct master_service *svc)
{
    while (svc->children != NULL) {
        struct master_child *child = svc->children;
        svc->children = child->next;
        if (kill(child->pid, SIGHUP) != 0 && errno != ESRCH)
            log_warn("signal pid %ld: %s", (long)child->pid, strerror(errno));
        child->next = svc->ctx->retired;
        svc->ctx->retired = child;
    }
    svc->total = 0;
}

/* A fresh status board, for a new service or for the new children of a
 * reloaded one (the old ones, retired, keep the old board to themselves).
 * A service with a process limit gets a slot for each process. */
static int service_new_board(struct master_service *svc)
{
    size_t capacity = svc->max_process > 0 ? (size_t)svc->max_process
                                           : MASTER_BOARD_UNLIMITED;
    struct status_board *board = status_board_create(capacity);
    if (board == NULL) {
        log_error("service %s: status board: %s", svc->label,
                  strerror(errno));
        return -1;
    }
    status_board_free(svc->board);
    svc->board = board;
    return 0;
}

/* Children idle right now, from the board. */
static unsigned service_available(const struct master_service *svc)
{
    unsigned n = 0;
    for (const struct master_child *c = svc->children; c != NULL; c = c->next)
        if (status_board_is_idle(svc->board, c->slot))
            n++;
    return n;
}

/* --- Spawning ----------------------------------------------------------- */

/* The environment a child gets: nothing from the caller but the few
 * variables a daemon legitimately needs. */
static void service_child_environment(struct master_service *svc)
{
    static const char *const keep[] = {
        "TZ", "LANG", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", NULL,
    };
    char *saved[sizeof(keep) / sizeof(keep[0])];
    for (size_t i = 0; keep[i] != NULL; i++) {
        const char *value = getenv(keep[i]);
        saved[i] = value ? strdup(value) : NULL;
    }
    if (clearenv() != 0)
        _exit(126);
    for (size_t i = 0; keep[i] != NULL; i++)
        if (saved[i] != NULL && setenv(keep[i], saved[i], 1) != 0)
            _exit(126);
    if (setenv("PATH", "/usr/bin:/bin", 1) != 0 ||
        setenv("MAIL_CONFIG", svc->ctx->config_dir, 1) != 0)
        _exit(126);
}

/* Puts the status pipe at 3, the listeners at 4.. and the status board
 * after them.  Everything else the master has open is close-on-exec. */
static void service_child_descriptors(struct master_service *svc)
{
    int sources[2 + LISTEN_ADDR_MAX];
    size_t n = 0;
    sources[n++] = svc->status_fds[1];
    for (size_t i = 0; i < svc->listen_count; i++)
        sources[n++] = svc->listen_fds[i];
    sources[n++] = status_board_fd(svc->board);
    /* Move out of the way first, so that no dup2 overwrites a source. */
    for (size_t i = 0; i < n; i++) {
        sources[i] = fcntl(sources[i], F_DUPFD_CLOEXEC, 64);
        if (sources[i] < 0)
            _exit(126);
    }
    for (size_t i = 0; i < n; i++) {
        if (dup2(sources[i], SERVER_STATUS_FD + (int)i) < 0)
            _exit(126);
        int flags = fcntl(SERVER_STATUS_FD + (int)i, F_GETFL);
        if (i > 0 && i <= svc->listen_count && (flags < 0 ||
                      fcntl(SERVER_STATUS_FD + (int)i, F_SETFL,
                            flags | O_NONBLOCK) != 0))
            _exit(126);
    }
}

static _Noreturn void service_exec_child(struct master_service *svc,
                                         long slot)
{
    const struct master_service_entry *e = svc->entry;
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL);
    /* Own process group: a Ctrl-C at the terminal reaches the master alone,
     * which then stops the children in order. */
    setpgid(0, 0);
    service_child_environment(svc);
    service_child_descriptors(svc);

    char count[16], slot_text[24];
    snprintf(count, sizeof(count), "%zu", svc->listen_count);
    snprintf(slot_text, sizeof(slot_text), "%ld", slot);
    size_t max = e->argc + 20;
    char **argv = calloc(max, sizeof(char *));
    if (argv == NULL)
        _exit(126);
    size_t n = 0;
    argv[n++] = svc->command_path;
    argv[n++] = "-c";
    argv[n++] = (char *)svc->ctx->config_dir;
    argv[n++] = "-n";
    argv[n++] = e->name;
    argv[n++] = "-t";
    argv[n++] = (char *)master_cf_type_name(e->type);
    argv[n++] = "-s";
    argv[n++] = count;
    argv[n++] = "-b";
    argv[n++] = slot_text;
    if (svc->ctx->log_stderr)
        argv[n++] = "-S";
    if (e->unprivileged)
        argv[n++] = "-u";
    if (e->chroot)
        argv[n++] = "-Z";
    if (svc->ctx->verbose)
        argv[n++] = "-v";
    for (size_t i = 1; i < e->argc; i++)
        argv[n++] = e->argv[i];
    argv[n] = NULL;
    execv(svc->command_path, argv);
    log_error("exec %s: %s", svc->command_path, strerror(errno));
    _exit(127);
}

/* The process-limit warnings are said at most once a minute per service,
 * as the condition tends to last: true when one may be said now. */
static int service_may_warn_limit(struct master_service *svc)
{
    long long now = event_now_ms();
    if (svc->limit_warned_ms != 0 && now - svc->limit_warned_ms < 60000)
        return 0;
    svc->limit_warned_ms = now;
    return 1;
}

/* More children than a board without a process limit holds. */
static void service_warn_board_full(struct master_service *svc)
{
    if (!service_may_warn_limit(svc))
        return;
    log_warn("service %s has %u processes, as many as the master can watch: "
             "new clients may experience noticeable delays", svc->label,
             svc->total);
}

static void service_spawn(struct master_service *svc)
{
    struct master_child *child = calloc(1, sizeof(*child));
    if (child == NULL) {
        log_error("service %s: out of memory", svc->label);
        return;
    }
    /* Idle from now on: one waiting connection starts one child. */
    child->slot = status_board_claim(svc->board);
    if (child->slot < 0) {
        service_warn_board_full(svc);
        free(child);
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        log_error("service %s: fork: %s", svc->label, strerror(errno));
        status_board_release(svc->board, child->slot);
        free(child);
        return;
    }
    if (pid == 0)
        service_exec_child(svc, child->slot);
    child->pid = pid;
    child->next = svc->children;
    svc->children = child;
    svc->total++;
    log_debug("service %s: started pid %ld", svc->label, (long)pid);
}

static void service_on_connection(struct event_loop *loop, int fd,
                                  unsigned events, void *arg)
{
    (void)loop;
    (void)fd;
    (void)events;
    struct master_service *svc = arg;
    if (service_available(svc) == 0 && !svc->throttled &&
        (svc->max_process == 0 || svc->total < svc->max_process))
        service_spawn(svc);
    service_update_listen(svc);
}

/* Watch the sockets exactly when a waiting connection should start a
 * child: none available, room for one more, not throttled.  While it
 * does, the board says so, and a child that becomes idle writes on the
 * status pipe; the board is read again after saying it, so that a child
 * that became idle just before is seen (status_board.h). */
static void service_update_listen(struct master_service *svc)
{
    int want = !svc->ctx->stopping && !svc->throttled &&
               service_available(svc) == 0 &&
               (svc->max_process == 0 || svc->total < svc->max_process);
    status_board_set_watching(svc->board, want);
    if (want && service_available(svc) > 0) {
        want = 0;
        status_board_set_watching(svc->board, 0);
    }
    if (want == svc->watching)
        return;
    for (size_t i = 0; i < svc->listen_count; i++) {
        int rc = want ? event_watch(svc->ctx->loop, svc->listen_fds[i],
                                    EVENT_READ, service_on_connection, svc)
                      : event_unwatch(svc->ctx->loop, svc->listen_fds[i]);
        if (rc != 0)
            log_error("service %s: event loop: %s", svc->label,
                      strerror(errno));
    }
    svc->watching = want;
}

/* --- Status reports ------------------------------------------------------ */

static struct master_child *service_find_child(struct master_service *svc,
                                               pid_t pid)
{
    for (struct master_child *c = svc->children; c != NULL; c = c->next)
        if (c->pid == pid)
            return c;
    return NULL;
}

/* All children busy and no room for another: new clients wait.  Said at
 * most once a minute per service, as it tends to last. */
static void service_warn_limit(struct master_service *svc)
{
    if (service_available(svc) > 0 || svc->max_process == 0 ||
        svc->total < svc->max_process || !service_may_warn_limit(svc))
        return;
    log_warn("service %s has reached its process limit \"%ld\": new "
             "clients may experience noticeable delays", svc->label,
             svc->max_process);
}

static void service_child_status(struct master_service *svc, pid_t pid,
                                 int status)
{
    struct master_child *child = service_find_child(svc, pid);
    if (child == NULL)
        return; /* retired, or already reaped */
    /* Who is idle is on the board; a message says that the master should
     * look again, and a child's first "busy" that it took a connection. */
    if (status == SERVER_STATUS_BUSY) {
        child->use_count++;
        svc->used = 1;
        svc->failures = 0;
    }
}

static void service_on_status(struct event_loop *loop, int fd,
                              unsigned events, void *arg)
{
    (void)loop;
    (void)events;
    struct master_service *svc = arg;
    /* Several messages per read(2): each is written atomically (8 bytes,
     * less than PIPE_BUF), so the pipe holds whole messages only, and a
     * read that does not fill the array has emptied it. */
    int32_t messages[64][2];
    for (;;) {
        ssize_t n = read(fd, messages, sizeof(messages));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n < 0 && errno != EAGAIN)
                log_warn("service %s: status pipe: %s", svc->label,
                         strerror(errno));
            break;
        }
        if (n % (ssize_t)sizeof(messages[0]) != 0)
            log_warn("service %s: bad status message", svc->label);
        size_t count = (size_t)n / sizeof(messages[0]);
        for (size_t i = 0; i < count; i++)
            service_child_status(svc, (pid_t)messages[i][0], messages[i][1]);
        if ((size_t)n < sizeof(messages))
            break;
    }
    /* After the whole batch: a child that said busy and then available in
     * one write (a SERVER_MULTI process) is not at its limit. */
    service_warn_limit(svc);
    service_update_listen(svc);
}

/* --- Throttling and wakeups ---------------------------------------------- */

static void service_on_unthrottle(struct event_loop *loop, void *arg)
{
    (void)loop;
    struct master_service *svc = arg;
    svc->throttle_timer = 0;
    svc->throttled = 0;
    service_update_listen(svc);
}

static void service_throttle(struct master_service *svc)
{
    long limit = config_get_time(svc->ctx->cfg, "service_throttle_time");
    svc->failures++;
    long delay = 1;
    for (unsigned i = 1; i < svc->failures && delay < limit; i++)
        delay *= 2;
    if (delay > limit)
        delay = limit;
    log_warn("service %s: bad command startup -- throttling for %ld s",
             svc->label, delay);
    svc->throttled = 1;
    if (svc->throttle_timer > 0)
        event_timer_cancel(svc->ctx->loop, svc->throttle_timer);
    svc->throttle_timer = event_timer_add(svc->ctx->loop, delay * 1000,
                                          service_on_unthrottle, svc);
}

/* A wakeup is a connection to the service's own socket carrying one "W",
 * which starts a child when none runs.  Never blocks the master. */
static void service_send_wakeup(struct master_service *svc)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_warn("wakeup %s: socket: %s", svc->label, strerror(errno));
        return;
    }
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (text_copy(sun.sun_path, sizeof(sun.sun_path), svc->socket_path) != 0 ||
        connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
        if (errno != EAGAIN)
            log_warn("wakeup %s: connect: %s", svc->label, strerror(errno));
    } else if (send(fd, "W", 1, MSG_NOSIGNAL) != 1) {
        log_warn("wakeup %s: write: %s", svc->label, strerror(errno));
    }
    if (close(fd) != 0)
        log_warn("wakeup %s: close: %s", svc->label, strerror(errno));
}

static void service_on_wakeup(struct event_loop *loop, void *arg)
{
    struct master_service *svc = arg;
    if (!svc->entry->wakeup_if_used || svc->used)
        service_send_wakeup(svc);
    svc->wakeup_timer = event_timer_add(loop, svc->entry->wakeup_seconds * 1000,
                                        service_on_wakeup, svc);
}

/* As Postfix's master, the first wakeup goes out soon after a service is
 * set up (first_ms 0) or reloaded (after the old children had a moment
 * to exit, so that none of them takes it), not a whole interval later: a
 * queue manager then starts with the system and finds the mail already
 * queued.  A "?" service still waits until it is used. */
static void service_schedule_wakeup(struct master_service *svc, long first_ms)
{
    if (svc->wakeup_timer > 0) {
        event_timer_cancel(svc->ctx->loop, svc->wakeup_timer);
        svc->wakeup_timer = 0;
    }
    if (svc->entry->wakeup_seconds > 0 && svc->socket_path != NULL)
        svc->wakeup_timer = event_timer_add(svc->ctx->loop, first_ms,
                                            service_on_wakeup, svc);
}

/* --- Life cycle ---------------------------------------------------------- */

struct master_service *master_service_create(
    struct master_context *ctx, const struct master_service_entry *entry)
{
    struct master_service *svc = calloc(1, sizeof(*svc));
    if (svc == NULL)
        log_fatal("out of memory");
    svc->ctx = ctx;
    svc->status_fds[0] = svc->status_fds[1] = -1;
    svc->name = service_strdup(entry->name);
    svc->type = entry->type;
    struct buf label;
    buf_init(&label, MASTER_PATH_MAX);
    buf_printf(&label, "%s/%s", entry->name, master_cf_type_name(entry->type));
    svc->label = service_strdup(buf_cstr(&label));
    buf_reset(&label);
    if (master_service_address_key(ctx, entry, &label) == 0)
        svc->address_key = service_strdup(buf_cstr(&label));
    buf_free(&label);

    if (service_apply_entry(svc, entry) != 0 ||
        service_new_board(svc) != 0 ||
        service_open_sockets(svc) != 0) {
        master_service_free(svc, 0);
        return NULL;
    }
    if (pipe2(svc->status_fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        log_error("service %s: pipe: %s", svc->label, strerror(errno));
        master_service_free(svc, 0);
        return NULL;
    }
    /* Children write status messages blocking: a full pipe must make them
     * wait, never lose a message. */
    if (fcntl(svc->status_fds[1], F_SETFL, 0) != 0 ||
        event_watch(ctx->loop, svc->status_fds[0], EVENT_READ,
                    service_on_status, svc) != 0) {
        log_error("service %s: status pipe: %s", svc->label, strerror(errno));
        master_service_free(svc, 0);
        return NULL;
    }
    service_schedule_wakeup(svc, 0);
    service_update_listen(svc);
    return svc;
}

int master_service_update(struct master_service *svc,
                          const struct master_service_entry *entry)
{
    if (service_apply_entry(svc, entry) != 0)
        return -1;
    service_retire_children(svc);
    if (service_new_board(svc) != 0)
        log_warn("service %s: keeping the old status board", svc->label);
    svc->throttled = 0;
    svc->failures = 0;
    if (svc->throttle_timer > 0) {
        event_timer_cancel(svc->ctx->loop, svc->throttle_timer);
        svc->throttle_timer = 0;
    }
    service_schedule_wakeup(svc, MASTER_RELOAD_WAKEUP_MS);
    service_update_listen(svc);
    return 0;
}

void master_service_free(struct master_service *svc, int retire)
{
    struct master_context *ctx = svc->ctx;
    if (retire)
        service_retire_children(svc);
    service_close_sockets(svc);
    if (svc->throttle_timer > 0)
        event_timer_cancel(ctx->loop, svc->throttle_timer);
    if (svc->wakeup_timer > 0)
        event_timer_cancel(ctx->loop, svc->wakeup_timer);
    if (svc->status_fds[0] >= 0) {
        event_unwatch(ctx->loop, svc->status_fds[0]);
        close(svc->status_fds[0]);
    }
    if (svc->status_fds[1] >= 0)
        close(svc->status_fds[1]);
    status_board_free(svc->board);
    /* Children not retired (stop, or a failed create) are left to the
     * master's stop path, which knows them through the retired list too. */
    while (svc->children != NULL) {
        struct master_child *child = svc->children;
        svc->children = child->next;
        child->next = ctx->retired;
        ctx->retired = child;
    }
    free(svc->name);
    free(svc->label);
    free(svc->command_path);
    free(svc->socket_path);
    free(svc->address_key);
    free(svc);
}

static void service_log_exit(struct master_service *svc, pid_t pid,
                             int status)
{
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        log_warn("process %s pid %ld exit status %d", svc->command_path,
                 (long)pid, WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        log_warn("process %s pid %ld killed by signal %d", svc->command_path,
                 (long)pid, WTERMSIG(status));
}

int master_service_reap(struct master_service *svc, pid_t pid, int status)
{
    struct master_child **link = &svc->children;
    while (*link != NULL && (*link)->pid != pid)
        link = &(*link)->next;
    struct master_child *child = *link;
    if (child == NULL)
        return 0;
    *link = child->next;
    svc->total--;
    status_board_release(svc->board, child->slot);
    int bad = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (bad && !svc->ctx->stopping) {
        service_log_exit(svc, pid, status);
        if (child->use_count == 0)
            service_throttle(svc);
        /* A service that works on wakeups (qmgr: the queue after a crash)
         * gets one soon, so a new process starts without waiting for the
         * next timer or client. */
        service_schedule_wakeup(svc, MASTER_CRASH_WAKEUP_MS);
    }
    free(child);
    service_update_listen(svc);
    return 1;
}

void master_service_signal(struct master_service *svc, int sig)
{
    for (struct master_child *c = svc->children; c != NULL; c = c->next)
        if (kill(c->pid, sig) != 0 && errno != ESRCH)
            log_warn("signal pid %ld: %s", (long)c->pid, strerror(errno));
}
