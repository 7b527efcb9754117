/*
 * master - the Postino supervisor.
 *
 * The only process that starts as root.  It reads main.cf and master.cf,
 * opens every service's listening sockets itself, and starts each service's
 * children on demand with the sockets handed over (master_service.c).  It
 * replaces children that exit, throttles services whose children keep
 * failing at start-up, pokes services that have a wakeup time, reloads its
 * configuration on SIGHUP without cutting connections in flight, and on
 * SIGTERM (or SIGINT) stops every child and exits.
 *
 * A lock on $queue_directory/pid/master.pid keeps a second master off the
 * same queue.
 *
 * Usage (normally through "postino start", "postino start-fg"):
 *     master [-c config_dir] [-d] [-s] [-v]
 *   -d  stay in the foreground (default: detach, and exit 0 only once the
 *       daemon has its lock and its sockets, or 1 with the reason on stderr)
 *   -s  log to stderr (and tell the children to) instead of maillog_file or
 *       syslog
 *   -v  verbose logging, also in the children
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "event.h"
#include "log.h"
#include "master_cf.h"
#include "master_service.h"
#include "postino_paths.h"
#include "privilege.h"
#include "text.h"

#define MASTER_STOP_SECONDS 10
#define MASTER_READY_SECONDS 60

struct master_options {
    char config_dir[PATH_MAX];
    int foreground;
    int log_stderr;
    int verbose;
};

struct master_state {
    struct master_context ctx;
    struct master_cf cf;
    struct master_service *services;
    int lock_fd;
    int signal_pipe[2];
    int stop_signal;
};

/* A signal handler can reach only file-scope state: the write end of the
 * self-pipe that turns signals into events. */
static int master_signal_fd = -1;

static void master_on_signal(int sig)
{
    int saved = errno;
    unsigned char byte = (unsigned char)sig;
    if (write(master_signal_fd, &byte, 1) < 0) {
        /* The pipe is full: a wakeup is already pending. */
    }
    errno = saved;
}

static void master_parse_args(int argc, char **argv,
                              struct master_options *opt)
{
    memset(opt, 0, sizeof(*opt));
    const char *dir = getenv("MAIL_CONFIG");
    if (dir == NULL || dir[0] == '\0')
        dir = POSTINO_CONFIG_DIR;
    int c;
    while ((c = getopt(argc, argv, "c:dsv")) != -1) {
        switch (c) {
        case 'c': dir = optarg; break;
        case 'd': opt->foreground = 1; break;
        case 's': opt->log_stderr = 1; break;
        case 'v': opt->verbose = 1; break;
        default: log_fatal("usage: master [-c config_dir] [-d] [-s] [-v]");
        }
    }
    if (optind != argc)
        log_fatal("usage: master [-c config_dir] [-d] [-s] [-v]");
    /* Children run elsewhere (the queue directory): the path must be
     * absolute. */
    if (realpath(dir, opt->config_dir) == NULL)
        log_fatal("configuration directory %s: %s", dir, strerror(errno));
}

static int master_load_master_cf(const char *config_dir, struct master_cf *cf)
{
    struct buf path;
    buf_init(&path, PATH_MAX);
    buf_printf(&path, "%s/master.cf", config_dir);
    int errors = master_cf_load(buf_cstr(&path), cf);
    if (errors < 0)
        log_error("cannot read %s: %s", buf_cstr(&path), strerror(errno));
    buf_free(&path);
    return errors;
}

/* The lock that keeps a second master off this queue.  Held until exit. */
static int master_take_lock(struct config *cfg)
{
    struct buf path;
    buf_init(&path, PATH_MAX);
    buf_printf(&path, "%s/%s/master.pid",
               config_get_str(cfg, "queue_directory"),
               config_get_str(cfg, "process_id_directory"));
    int fd = open(buf_cstr(&path), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
                  0644);
    if (fd < 0)
        log_fatal("open lock file %s: %s", buf_cstr(&path), strerror(errno));
    struct flock lock = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    if (fcntl(fd, F_SETLK, &lock) != 0) {
        if (errno != EAGAIN && errno != EACCES)
            log_fatal("lock %s: %s", buf_cstr(&path), strerror(errno));
        struct flock who = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
        long pid = fcntl(fd, F_GETLK, &who) == 0 ? (long)who.l_pid : 0;
        log_fatal("the Postino mail system is already running on this queue "
                  "(master pid %ld, lock file %s)", pid, buf_cstr(&path));
    }
    char text[32];
    int n = snprintf(text, sizeof(text), "%10ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != n)
        log_fatal("write %s: %s", buf_cstr(&path), strerror(errno));
    buf_free(&path);
    return fd;
}

static void master_setup_signals(struct master_state *m)
{
    if (pipe2(m->signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        log_fatal("pipe: %s", strerror(errno));
    master_signal_fd = m->signal_pipe[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = master_on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    const int handled[] = { SIGHUP, SIGTERM, SIGINT, SIGCHLD };
    for (size_t i = 0; i < sizeof(handled) / sizeof(handled[0]); i++)
        if (sigaction(handled[i], &sa, NULL) != 0)
            log_fatal("sigaction: %s", strerror(errno));
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) != 0)
        log_fatal("sigaction: %s", strerror(errno));
}

/* --- Services ------------------------------------------------------------ */

static struct master_service *master_find_service(
    struct master_state *m, const struct master_service_entry *entry,
    const char *address_key)
{
    for (struct master_service *s = m->services; s != NULL; s = s->next)
        if (strcmp(s->name, entry->name) == 0 && s->type == entry->type &&
            s->address_key != NULL && address_key != NULL &&
            strcmp(s->address_key, address_key) == 0)
            return s;
    return NULL;
}

static int master_start_services(struct master_state *m)
{
    int failures = 0;
    for (size_t i = 0; i < m->cf.count; i++) {
        struct master_service *svc =
            master_service_create(&m->ctx, &m->cf.services[i]);
        if (svc == NULL) {
            failures++;
            continue;
        }
        svc->next = m->services;
        m->services = svc;
    }
    return failures;
}

/* SIGHUP: new main.cf and master.cf.  Kept services keep their sockets
 * (nothing in flight is cut, no connection is refused); their children
 * finish their connection and exit, and new children run the new
 * configuration.  A configuration with errors changes nothing. */
static void master_reload(struct master_state *m)
{
    struct config *cfg = config_load_dir_flags(m->ctx.config_dir,
                                                CONFIG_QUIET_UNUSED, NULL);
    if (cfg == NULL) {
        log_error("reload: main.cf has errors; configuration not changed");
        return;
    }
    struct master_cf cf;
    if (master_load_master_cf(m->ctx.config_dir, &cf) != 0) {
        log_error("reload: master.cf has errors; configuration not changed");
        master_cf_free(&cf);
        config_free(cfg);
        return;
    }
    struct config *old_cfg = m->ctx.cfg;
    m->ctx.cfg = cfg;

    /* Match every new entry with a running service of the same name, type
     * and address; the services left over are removed. */
    struct master_service *kept = NULL;
    struct buf key;
    buf_init(&key, PATH_MAX);
    for (size_t i = 0; i < cf.count; i++) {
        const struct master_service_entry *entry = &cf.services[i];
        buf_reset(&key);
        const char *address = master_service_address_key(&m->ctx, entry,
                                                         &key) == 0
            ? buf_cstr(&key) : NULL;
        struct master_service *svc = master_find_service(m, entry, address);
        if (svc == NULL)
            continue;
        struct master_service **link = &m->services;
        while (*link != svc)
            link = &(*link)->next;
        *link = svc->next;
        if (master_service_update(svc, entry) != 0) {
            master_service_free(svc, 1);
            continue;
        }
        svc->next = kept;
        kept = svc;
    }
    buf_free(&key);
    while (m->services != NULL) {
        struct master_service *gone = m->services;
        m->services = gone->next;
        log_info("reload: removing service %s", gone->label);
        master_service_free(gone, 1);
    }
    m->services = kept;
    for (size_t i = 0; i < cf.count; i++) {
        const struct master_service_entry *entry = &cf.services[i];
        int found = 0;
        for (struct master_service *s = kept; s != NULL; s = s->next)
            found |= s->entry == entry;
        if (found)
            continue;
        struct master_service *svc = master_service_create(&m->ctx, entry);
        if (svc == NULL)
            continue;
        log_info("reload: adding service %s", svc->label);
        svc->next = m->services;
        m->services = svc;
    }
    master_cf_free(&m->cf);
    m->cf = cf;
    config_free(old_cfg);
    log_info("reload -- configuration %s", m->ctx.config_dir);
}

static int master_reap_retired(struct master_state *m, pid_t pid)
{
    struct master_child **link = &m->ctx.retired;
    while (*link != NULL && (*link)->pid != pid)
        link = &(*link)->next;
    if (*link == NULL)
        return 0;
    struct master_child *child = *link;
    *link = child->next;
    free(child);
    return 1;
}

static void master_reap(struct master_state *m)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            return;
        int found = master_reap_retired(m, pid);
        for (struct master_service *s = m->services; !found && s != NULL;
             s = s->next)
            found = master_service_reap(s, pid, status);
        if (!found)
            log_debug("reaped unknown pid %ld", (long)pid);
    }
}

static void master_on_signal_pipe(struct event_loop *loop, int fd,
                                  unsigned events, void *arg)
{
    (void)loop;
    (void)events;
    struct master_state *m = arg;
    unsigned char sigs[64];
    ssize_t n;
    int reload = 0, reap = 0;
    while ((n = read(fd, sigs, sizeof(sigs))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (sigs[i] == SIGHUP)
                reload = 1;
            else if (sigs[i] == SIGCHLD)
                reap = 1;
            else if (m->stop_signal == 0)
                m->stop_signal = sigs[i];
        }
    }
    if (reap)
        master_reap(m);
    if (reload && m->stop_signal == 0)
        master_reload(m);
}

/* --- Stopping ------------------------------------------------------------- */

static size_t master_count_children(struct master_state *m)
{
    size_t n = 0;
    for (struct master_child *c = m->ctx.retired; c != NULL; c = c->next)
        n++;
    for (struct master_service *s = m->services; s != NULL; s = s->next)
        n += s->total;
    return n;
}

static void master_signal_all(struct master_state *m, int sig)
{
    for (struct master_service *s = m->services; s != NULL; s = s->next)
        master_service_signal(s, sig);
    for (struct master_child *c = m->ctx.retired; c != NULL; c = c->next)
        if (kill(c->pid, sig) != 0 && errno != ESRCH)
            log_warn("signal pid %ld: %s", (long)c->pid, strerror(errno));
}

/* Waits for the children to go, up to the deadline; returns how many are
 * left. */
static size_t master_wait_children(struct master_state *m,
                                   long long deadline_ms)
{
    while (master_count_children(m) > 0 && event_now_ms() < deadline_ms) {
        master_reap(m);
        if (master_count_children(m) == 0)
            break;
        struct timespec pause = { 0, 20 * 1000 * 1000 };
        nanosleep(&pause, NULL);
    }
    return master_count_children(m);
}

static void master_stop(struct master_state *m)
{
    log_info("terminating on signal %d", m->stop_signal);
    m->ctx.stopping = 1;
    master_signal_all(m, SIGTERM);
    long long deadline = event_now_ms() + MASTER_STOP_SECONDS * 1000LL;
    size_t left = master_wait_children(m, deadline);
    if (left > 0) {
        log_warn("%zu process(es) did not stop in %d s; killing them", left,
                 MASTER_STOP_SECONDS);
        master_signal_all(m, SIGKILL);
        master_wait_children(m, event_now_ms() + 5000);
    }
    while (m->services != NULL) {
        struct master_service *svc = m->services;
        m->services = svc->next;
        master_service_free(svc, 0);
    }
    while (m->ctx.retired != NULL) {
        struct master_child *c = m->ctx.retired;
        m->ctx.retired = c->next;
        free(c);
    }
}

/* --- Start-up ------------------------------------------------------------- */

/* Detaches: the caller's process waits until the daemon says it is ready
 * (lock taken, sockets open) and exits 0, or exits 1 if it dies first.
 * Returns the descriptor on which the daemon reports readiness. */
static int master_detach(void)
{
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) != 0)
        log_fatal("pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        log_fatal("fork: %s", strerror(errno));
    if (pid > 0) {
        close(ready[1]);
        struct pollfd pfd = { ready[0], POLLIN, 0 };
        char byte = 0;
        int ok = poll(&pfd, 1, MASTER_READY_SECONDS * 1000) == 1 &&
                 read(ready[0], &byte, 1) == 1 && byte == '1';
        if (!ok)
            log_error("master daemon initialization failed");
        _exit(ok ? 0 : 1);
    }
    close(ready[0]);
    if (setsid() < 0)
        log_fatal("setsid: %s", strerror(errno));
    return ready[1];
}

static void master_report_ready(int ready_fd, unsigned log_after)
{
    if (write(ready_fd, "1", 1) != 1)
        log_warn("report readiness: %s", strerror(errno));
    close(ready_fd);
    int null_fd = open("/dev/null", O_RDWR);
    if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 ||
        dup2(null_fd, STDOUT_FILENO) < 0 || dup2(null_fd, STDERR_FILENO) < 0)
        log_fatal("redirect to /dev/null: %s", strerror(errno));
    if (null_fd > STDERR_FILENO)
        close(null_fd);
    log_set_destinations(log_after);
}

/* Where the logs go once running: stderr (-s), else maillog_file, else
 * syslog. */
static unsigned master_log_destination(struct config *cfg,
                                       const struct master_options *opt)
{
    if (opt->log_stderr)
        return LOG_TO_STDERR;
    const char *file = config_get_str(cfg, "maillog_file");
    if (file[0] == '\0')
        return LOG_TO_SYSLOG;
    if (log_open_file(file) != 0)
        log_fatal("open maillog_file %s: %s", file, strerror(errno));
    return LOG_TO_FILE;
}

static void master_check_user(struct config *cfg)
{
    if (privilege_is_root()) {
        uid_t uid;
        gid_t gid;
        const char *owner = config_get_str(cfg, "mail_owner");
        if (privilege_lookup_user(owner, &uid, &gid) != 0)
            log_fatal("mail_owner %s: no such user", owner);
        if (uid == 0)
            log_fatal("mail_owner %s must not be root", owner);
        return;
    }
    struct passwd *pw = getpwuid(getuid());
    log_warn("not running as root: every process runs as %s, without "
             "privilege separation",
             pw ? pw->pw_name : "this user");
}

int main(int argc, char **argv)
{
    log_init("master", LOG_TO_STDERR);
    struct master_options opt;
    master_parse_args(argc, argv, &opt);
    log_set_verbose(opt.verbose);

    struct master_state m;
    memset(&m, 0, sizeof(m));
    m.ctx.config_dir = opt.config_dir;
    m.ctx.log_stderr = opt.log_stderr;
    m.ctx.verbose = opt.verbose;
    m.ctx.cfg = config_load_dir_flags(opt.config_dir, CONFIG_QUIET_UNUSED,
                                       NULL);
    if (m.ctx.cfg == NULL)
        log_fatal("%s/main.cf has errors; run \"postino check\"",
                  opt.config_dir);
    log_set_syslog_name(config_get_str(m.ctx.cfg, "syslog_name"));
    if (master_load_master_cf(opt.config_dir, &m.cf) != 0)
        log_fatal("%s/master.cf has errors; run \"postino check\"",
                  opt.config_dir);
    unsigned log_after = master_log_destination(m.ctx.cfg, &opt);
    /* Until the daemon is ready, problems also go to the terminal. */
    log_set_destinations(log_after | LOG_TO_STDERR);
    master_check_user(m.ctx.cfg);

    const char *queue_dir = config_get_str(m.ctx.cfg, "queue_directory");
    if (chdir(queue_dir) != 0)
        log_fatal("chdir %s: %s", queue_dir, strerror(errno));
    int ready_fd = opt.foreground ? -1 : master_detach();
    m.lock_fd = master_take_lock(m.ctx.cfg);
    umask(022);

    m.ctx.loop = event_loop_create();
    if (m.ctx.loop == NULL)
        log_fatal("event loop: %s", strerror(errno));
    master_setup_signals(&m);
    if (event_watch(m.ctx.loop, m.signal_pipe[0], EVENT_READ,
                    master_on_signal_pipe, &m) != 0)
        log_fatal("event loop: %s", strerror(errno));
    if (master_start_services(&m) != 0) {
        m.stop_signal = SIGTERM;
        master_stop(&m);
        log_fatal("cannot start every service; see above");
    }
    log_info("daemon started -- configuration %s", opt.config_dir);
    if (ready_fd >= 0)
        master_report_ready(ready_fd, log_after);
    else
        log_set_destinations(log_after);

    while (m.stop_signal == 0)
        if (event_loop_run_once(m.ctx.loop, -1) < 0)
            log_fatal("event loop: %s", strerror(errno));
    master_stop(&m);
    master_cf_free(&m.cf);
    config_free(m.ctx.cfg);
    event_loop_free(m.ctx.loop);
    log_info("stopped");
    return 0;
}
