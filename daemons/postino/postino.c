/*
 * postino - the control command of the Postino mail system.
 *
 *     postino [-c config_dir] [-v] command
 *
 *   start     check, then start the master as a daemon; exit 0 once it runs
 *   start-fg  check, then run the master in the foreground, logging to the
 *             terminal, until it is stopped (Ctrl-C, SIGTERM, postino stop)
 *   stop      stop the master and every process it started; wait for them
 *   reload    check, then make the master re-read main.cf and master.cf
 *   status    exit 0 when running, 1 when not
 *   check     report every problem of the configuration and directories
 *             with its file and line; exit 1 if there is any
 *
 * The configuration directory is -c, else $MAIL_CONFIG, else the compiled-in
 * default.  Whether the master runs is read from the lock it holds on
 * $queue_directory/pid/master.pid.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "log.h"
#include "postino_check.h"
#include "postino_paths.h"
#include "trigger.h"

#define POSTINO_STOP_WAIT_SECONDS 30

static _Noreturn void postino_usage(void)
{
    log_fatal("usage: postino [-c config_dir] [-v] "
              "start|start-fg|stop|reload|status|check|flush\n"
              "  flush: try every deferred message now (the queue manager "
              "forgets dead destinations, scans deferred/ and incoming/)");
}

/* "FDI" to public/qmgr: forget dead destinations, scan deferred/ with
 * every file due, scan incoming/ (what sendmail -q asks too). */
static int postino_flush(struct config *cfg)
{
    struct buf path;
    buf_init(&path, PATH_MAX);
    buf_printf(&path, "%s/public/qmgr",
               config_get_str(cfg, "queue_directory"));
    struct trigger qmgr;
    trigger_init(&qmgr, buf_cstr(&path));
    int rc = trigger_send(&qmgr, "FDI", 3);
    if (rc != 0)
        log_error("cannot flush the mail queue: the mail system is down "
                  "(connect to %s: %s)", buf_cstr(&path), strerror(errno));
    buf_free(&path);
    return rc == 0 ? 0 : 1;
}

/* The master's pid when it runs (it holds the lock), else 0. */
static pid_t postino_master_pid(struct config *cfg)
{
    struct buf path;
    buf_init(&path, PATH_MAX);
    buf_printf(&path, "%s/%s/master.pid",
               config_get_str(cfg, "queue_directory"),
               config_get_str(cfg, "process_id_directory"));
    int fd = open(buf_cstr(&path), O_RDONLY | O_CLOEXEC);
    buf_free(&path);
    if (fd < 0)
        return 0;
    struct flock probe = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    pid_t pid = 0;
    if (fcntl(fd, F_GETLK, &probe) == 0 && probe.l_type != F_UNLCK)
        pid = probe.l_pid;
    close(fd);
    return pid;
}

static struct config *postino_checked_config(const char *config_dir)
{
    struct config *cfg;
    int errors = postino_check(config_dir, &cfg);
    if (errors != 0)
        log_fatal("%d problem(s) in the configuration; nothing was done",
                  errors);
    return cfg;
}

static void postino_master_argv(struct config *cfg, const char *config_dir,
                                int verbose, int foreground, struct buf *path,
                                char **argv)
{
    buf_printf(path, "%s/master", config_get_str(cfg, "daemon_directory"));
    size_t n = 0;
    argv[n++] = (char *)buf_cstr(path);
    argv[n++] = "-c";
    argv[n++] = (char *)config_dir;
    if (foreground) {
        argv[n++] = "-d";
        argv[n++] = "-s";
    }
    if (verbose)
        argv[n++] = "-v";
    argv[n] = NULL;
}

static int postino_start(const char *config_dir, int verbose, int foreground)
{
    struct config *cfg = postino_checked_config(config_dir);
    pid_t running = postino_master_pid(cfg);
    if (running > 0) {
        log_error("the Postino mail system is already running (pid %ld)",
                  (long)running);
        return 1;
    }
    struct buf path;
    buf_init(&path, PATH_MAX);
    char *argv[8];
    postino_master_argv(cfg, config_dir, verbose, foreground, &path, argv);
    if (foreground) {
        log_info("starting the Postino mail system in the foreground");
        execv(argv[0], argv);
        log_fatal("exec %s: %s", argv[0], strerror(errno));
    }
    log_info("starting the Postino mail system");
    pid_t pid = fork();
    if (pid < 0)
        log_fatal("fork: %s", strerror(errno));
    if (pid == 0) {
        execv(argv[0], argv);
        log_error("exec %s: %s", argv[0], strerror(errno));
        _exit(1);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            log_fatal("waitpid: %s", strerror(errno));
    buf_free(&path);
    config_free(cfg);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    log_error("the Postino mail system did not start; see the messages "
              "above");
    return 1;
}

static int postino_stop(struct config *cfg)
{
    pid_t pid = postino_master_pid(cfg);
    if (pid == 0) {
        log_error("the Postino mail system is not running");
        return 1;
    }
    log_info("stopping the Postino mail system");
    if (kill(pid, SIGTERM) != 0)
        log_fatal("signal master pid %ld: %s", (long)pid, strerror(errno));
    /* The master releases its lock only after its children are gone. */
    for (int i = 0; i < POSTINO_STOP_WAIT_SECONDS * 10; i++) {
        if (postino_master_pid(cfg) == 0)
            return 0;
        struct timespec pause = { 0, 100 * 1000 * 1000 };
        nanosleep(&pause, NULL);
    }
    log_error("the master (pid %ld) did not stop within %d s", (long)pid,
              POSTINO_STOP_WAIT_SECONDS);
    return 1;
}

static int postino_reload(const char *config_dir)
{
    struct config *cfg = postino_checked_config(config_dir);
    pid_t pid = postino_master_pid(cfg);
    config_free(cfg);
    if (pid == 0) {
        log_error("the Postino mail system is not running");
        return 1;
    }
    log_info("refreshing the Postino mail system");
    if (kill(pid, SIGHUP) != 0)
        log_fatal("signal master pid %ld: %s", (long)pid, strerror(errno));
    return 0;
}

static struct config *postino_plain_config(const char *config_dir)
{
    struct config *cfg = config_load_dir_flags(config_dir, CONFIG_QUIET_UNUSED,
                                              NULL);
    if (cfg == NULL)
        log_fatal("%s/main.cf has errors; run \"postino check\"", config_dir);
    return cfg;
}

int main(int argc, char **argv)
{
    log_init("postino", LOG_TO_TTY);
    const char *dir = getenv("MAIL_CONFIG");
    if (dir == NULL || dir[0] == '\0')
        dir = POSTINO_CONFIG_DIR;
    int verbose = 0;
    int c;
    while ((c = getopt(argc, argv, "c:v")) != -1) {
        switch (c) {
        case 'c': dir = optarg; break;
        case 'v': verbose = 1; break;
        default: postino_usage();
        }
    }
    if (optind != argc - 1)
        postino_usage();
    const char *command = argv[optind];
    char config_dir[PATH_MAX];
    if (realpath(dir, config_dir) == NULL)
        log_fatal("configuration directory %s: %s", dir, strerror(errno));
    log_set_verbose(verbose);

    if (strcmp(command, "check") == 0) {
        struct config *cfg;
        int errors = postino_check(config_dir, &cfg);
        config_free(cfg);
        return errors == 0 ? 0 : 1;
    }
    if (strcmp(command, "start") == 0)
        return postino_start(config_dir, verbose, 0);
    if (strcmp(command, "start-fg") == 0)
        return postino_start(config_dir, verbose, 1);
    if (strcmp(command, "reload") == 0)
        return postino_reload(config_dir);
    if (strcmp(command, "flush") == 0) {
        struct config *cfg = postino_plain_config(config_dir);
        int rc = postino_flush(cfg);
        config_free(cfg);
        return rc;
    }
    if (strcmp(command, "stop") == 0 || strcmp(command, "status") == 0) {
        struct config *cfg = postino_plain_config(config_dir);
        if (strcmp(command, "stop") == 0) {
            int rc = postino_stop(cfg);
            config_free(cfg);
            return rc;
        }
        pid_t pid = postino_master_pid(cfg);
        config_free(cfg);
        if (pid == 0) {
            log_info("the Postino mail system is not running");
            return 1;
        }
        log_info("the Postino mail system is running: PID: %ld", (long)pid);
        return 0;
    }
    log_error("unknown command: \"%s\"", command);
    postino_usage();
}
