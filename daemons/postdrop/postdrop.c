/*
 * postdrop - the one program of local submission with a privilege: it is
 * installed set-group-ID setgid_group (postdrop), which may write into
 * maildrop/ and reach the sockets in public/, and nothing else.  sendmail
 * runs it from command_directory; a user never needs to.
 *
 *     postdrop [-c config_dir] [-v]   read a message in the internal form
 *                                     (maildrop.h) on stdin, write it to
 *                                     maildrop/, wake pickup, print the ID
 *     postdrop [-c config_dir] -p     print the queue (from showq)
 *     postdrop [-c config_dir] -q     ask qmgr for a queue run
 *
 * Because whoever runs it is not trusted, it first makes its own start
 * clean: descriptors 0-2 open, every other one closed, the environment
 * emptied, umask 077.  It reads only the internal form, every record
 * checked and bounded (message_size_limit, MAILDROP_RCPT_MAX), and adds
 * the arrival time and the real uid itself.  The file it writes belongs to
 * the real uid, which is what pickup trusts.  While privileged (effective
 * group not the real group) it accepts a configuration directory other
 * than the compiled-in one only when that directory and its main.cf
 * belong to root and nobody else may write them, so that a user cannot
 * point it at a queue of the user's choice with limits of the user's
 * choice.
 *
 * Exit codes (sysexits.h): 0 done; EX_USAGE bad arguments; EX_DATAERR bad
 * input or too large; EX_CANTCREAT maildrop not writable; EX_UNAVAILABLE
 * the mail system does not run (-p, -q); EX_CONFIG bad configuration;
 * EX_TEMPFAIL other failures.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sysexits.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "maildrop.h"
#include "postino_paths.h"
#include "safe_file.h"

#define POSTDROP_LISTING_MAX (256L * 1024 * 1024)
#define POSTDROP_SOCKET_TIMEOUT_MS (60 * 1000)

enum postdrop_mode { MODE_DROP, MODE_LIST, MODE_FLUSH };

/* Descriptors 0, 1 and 2 open (on /dev/null when the caller closed
 * them, so that no file we open becomes someone's stdout), all others
 * closed. */
static void clean_descriptors(void)
{
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) != -1)
            continue;
        int null = open("/dev/null", O_RDWR);
        if (null != fd)
            _exit(EX_OSERR);
    }
    if (close_range(3, ~0U, 0) == 0)
        return;
    long max = sysconf(_SC_OPEN_MAX); /* kernels before 5.9 */
    if (max < 0 || max > 65536)
        max = 65536;
    for (int fd = 3; fd < max; fd++)
        (void)close(fd);
}

/* Set-group-ID: the group for good, real and saved too, so that nothing
 * later can switch back and forth (and, in sanitizer builds, so that the
 * leak checker may attach to its own process).  Returns 1 when the
 * process had a privilege from its set-ID bit. */
static int settle_privilege(void)
{
    int privileged = getegid() != getgid() || geteuid() != getuid();
    if (!privileged)
        return 0;
    gid_t group = getegid();
    if (setresgid(group, group, group) != 0)
        _exit(EX_OSERR);
    return 1;
}

/* A configuration directory other than the compiled-in one, given to a
 * privileged postdrop by a user other than root, is used only when root
 * owns it and its main.cf and neither is writable by group or others.
 * The check is made on an open descriptor and the file read through it
 * (/proc/self/fd/N), so that the user cannot swap the directory between
 * the check and the read by renaming a parent.  Returns the path to read
 * (in path), with *dir_fd to close after reading, or -1. */
static int trusted_config_dir(const char *dir, int privileged,
                              struct buf *path, int *dir_fd)
{
    *dir_fd = -1;
    if (!privileged || getuid() == 0 || strcmp(dir, POSTINO_CONFIG_DIR) == 0)
        return buf_set_str(path, dir);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat d, f;
    if (fstat(fd, &d) != 0 ||
        fstatat(fd, "main.cf", &f, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISREG(f.st_mode) || d.st_uid != 0 || f.st_uid != 0 ||
        (d.st_mode & 022) != 0 || (f.st_mode & 022) != 0 ||
        buf_printf(path, "/proc/self/fd/%d", fd) != 0) {
        (void)close(fd);
        return -1;
    }
    *dir_fd = fd;
    return 0;
}

static struct config *load_config(const char *dir, int privileged)
{
    struct buf path;
    buf_init(&path, 4096);
    int dir_fd;
    if (trusted_config_dir(dir, privileged, &path, &dir_fd) != 0)
        log_fatal("-c %s: not a configuration directory of root's "
                  "(root must own it and its main.cf, writable by root "
                  "alone)", dir);
    int errors = 0;
    struct config *cfg = config_load_dir_flags(buf_cstr(&path),
                                               CONFIG_QUIET_UNUSED, &errors);
    if (dir_fd >= 0)
        (void)close(dir_fd);
    buf_free(&path);
    if (cfg == NULL) {
        log_error("%s/main.cf: %d error(s)", dir, errors);
        exit(EX_CONFIG);
    }
    return cfg;
}

/* Connects to a socket in public/; -1 when nobody listens. */
static int connect_public(const char *name)
{
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    if ((size_t)snprintf(addr.sun_path, sizeof(addr.sun_path), "public/%s",
                         name) >= sizeof(addr.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        int saved = errno;
        (void)close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/* Writes request bytes to public/NAME.  0 or -1 (errno). */
static int trigger(const char *name, const char *bytes)
{
    int fd = connect_public(name);
    if (fd < 0)
        return -1;
    int rc = safe_file_write_all(fd, bytes, strlen(bytes));
    int saved = errno;
    if (close(fd) != 0 && rc == 0)
        return -1;
    errno = saved;
    return rc;
}

static int wait_readable(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    for (;;) {
        int n = poll(&p, 1, POSTDROP_SOCKET_TIMEOUT_MS);
        if (n > 0)
            return 0;
        if (n == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (errno != EINTR)
            return -1;
    }
}

/* -p: copies what showq says to stdout. */
static int list_queue(void)
{
    int fd = connect_public("showq");
    if (fd < 0) {
        log_error("Queue report unavailable - mail system is down "
                  "(connect to public/showq: %s)", strerror(errno));
        return EX_UNAVAILABLE;
    }
    char chunk[16384];
    long total = 0;
    int rc = EX_OK;
    for (;;) {
        if (wait_readable(fd) != 0) {
            log_error("read from showq: %s", strerror(errno));
            rc = EX_TEMPFAIL;
            break;
        }
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            log_error("read from showq: %s", strerror(errno));
            rc = EX_TEMPFAIL;
            break;
        }
        if (n == 0)
            break;
        total += n;
        if (total > POSTDROP_LISTING_MAX) {
            log_error("queue listing longer than %ld bytes",
                      POSTDROP_LISTING_MAX);
            rc = EX_SOFTWARE;
            break;
        }
        if (safe_file_write_all(STDOUT_FILENO, chunk, (size_t)n) != 0) {
            log_error("write: %s", strerror(errno));
            rc = EX_IOERR;
            break;
        }
    }
    (void)close(fd);
    return rc;
}

/* -q: forget dead destinations, scan deferred, scan incoming. */
static int flush_queue(void)
{
    if (trigger("qmgr", "FDI") != 0) {
        log_error("Cannot flush mail queue - mail system is down "
                  "(connect to public/qmgr: %s)", strerror(errno));
        return EX_UNAVAILABLE;
    }
    return EX_OK;
}

/* Copies the checked input into the maildrop file. */
static int drop_copy(struct maildrop_reader *in, struct maildrop_file *out,
                     struct buf *error)
{
    struct maildrop_envelope env;
    maildrop_envelope_init(&env);
    int rc = EX_DATAERR;
    if (maildrop_reader_envelope(in, &env, error) != 0)
        goto out;
    struct timeval now;
    gettimeofday(&now, NULL);
    env.time_sec = now.tv_sec;
    env.time_usec = now.tv_usec;
    env.uid = (long)getuid();
    rc = EX_TEMPFAIL;
    if (maildrop_put_envelope(&out->out, &env, MAILDROP_FILE) != 0) {
        buf_printf(error, "write: %s", strerror(errno));
        goto out;
    }
    const char *data;
    size_t len;
    int got;
    while ((got = maildrop_reader_content(in, &data, &len, error)) == 1) {
        if (maildrop_put_content(&out->out, data, len) != 0) {
            buf_printf(error, "write: %s", strerror(errno));
            goto out;
        }
    }
    if (got < 0) {
        rc = EX_DATAERR;
        goto out;
    }
    if (maildrop_put_end(&out->out) != 0) {
        buf_printf(error, "write: %s", strerror(errno));
        goto out;
    }
    rc = EX_OK;
out:
    maildrop_envelope_free(&env);
    return rc;
}

static int drop_message(struct config *cfg)
{
    struct buf error;
    buf_init(&error, 1024);
    struct maildrop_file file;
    if (maildrop_file_create(&file, "maildrop", &error) != 0) {
        int saved = errno;
        log_error("cannot write to %s/maildrop: %s%s",
                  config_get_str(cfg, "queue_directory"), strerror(saved),
                  saved == EACCES ? " (postdrop must be installed set-group-"
                                    "ID to setgid_group)" : "");
        buf_free(&error);
        return EX_CANTCREAT;
    }
    struct maildrop_reader in;
    maildrop_reader_attach(&in, STDIN_FILENO, MAILDROP_INPUT,
                           config_get_size(cfg, "message_size_limit"));
    int rc = drop_copy(&in, &file, &error);
    int too_large = in.too_large;
    int aborted = in.aborted;
    maildrop_reader_free(&in);
    if (rc != EX_OK) {
        maildrop_file_abort(&file);
        if (aborted)
            log_debug("uid=%ld: the sender gave up", (long)getuid());
        else if (too_large)
            log_error("uid=%ld: message file too big", (long)getuid());
        else
            log_error("uid=%ld: %s", (long)getuid(), buf_cstr(&error));
        buf_free(&error);
        return rc;
    }
    char id[QUEUE_ID_SIZE];
    if (maildrop_file_commit(&file, id, &error) != 0) {
        log_error("uid=%ld: %s", (long)getuid(), buf_cstr(&error));
        buf_free(&error);
        return EX_TEMPFAIL;
    }
    buf_free(&error);
    if (trigger("pickup", "W") != 0)
        log_debug("%s: wakeup pickup: %s", id, strerror(errno));
    if (printf("%s\n", id) < 0 || fflush(stdout) != 0)
        return EX_IOERR;
    return EX_OK;
}

static _Noreturn void usage(void)
{
    log_error("usage: postdrop [-v] [-c config_dir] [-p | -q]");
    exit(EX_USAGE);
}

int main(int argc, char **argv)
{
    clean_descriptors();
    int privileged = settle_privilege();
    umask(077);
    if (clearenv() != 0)
        _exit(EX_OSERR);
#ifdef POSTINO_SANITIZE
    /* LeakSanitizer must attach to the process; set-ID programs are not
     * dumpable otherwise.  Production builds never do this. */
    (void)prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
#endif
    log_init("postdrop", LOG_TO_TTY);
    signal(SIGPIPE, SIG_IGN);

    const char *config_dir = POSTINO_CONFIG_DIR;
    enum postdrop_mode mode = MODE_DROP;
    int c;
    while ((c = getopt(argc, argv, "c:pqv")) != -1) {
        switch (c) {
        case 'c': config_dir = optarg; break;
        case 'p': mode = MODE_LIST; break;
        case 'q': mode = MODE_FLUSH; break;
        case 'v': log_set_verbose(1); break;
        default: usage();
        }
    }
    if (optind != argc)
        usage();
    struct config *cfg = load_config(config_dir, privileged);
    const char *queue_dir = config_get_str(cfg, "queue_directory");
    if (chdir(queue_dir) != 0) {
        log_error("chdir %s: %s", queue_dir, strerror(errno));
        config_free(cfg);
        return EX_TEMPFAIL;
    }
    int rc;
    switch (mode) {
    case MODE_LIST: rc = list_queue(); break;
    case MODE_FLUSH: rc = flush_queue(); break;
    default: rc = drop_message(cfg); break;
    }
    config_free(cfg);
    return rc;
}
