/*
 * log - syslog-shaped logging to syslog, stderr or a file.  See log.h.
 *
 * The state below is the process's logging setup, made once in main; it is
 * process-wide, as syslog(3) itself is.  The time of the line prefix is
 * formatted once per second (localtime_r and strftime cost more than the
 * rest of a line): lines of the same second reuse the text.
 * Each line is formatted whole and written with one write(2), so lines of
 * processes that share a terminal or an O_APPEND file do not interleave.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

static struct {
    char program[64];
    char syslog_name[64];
    char tag[130];
    char host[128];
    unsigned destinations;
    int file_fd;
    int verbose;
    int syslog_open;
    pid_t pid;           /* cached for the line prefix; 0: not known */
    int pid_watched;     /* the fork handler that forgets it is set */
    time_t when_second;  /* the second when_text shows */
    int when_known;
    char when_text[32];  /* "Nov 23 19:16:51" */
} log_state = { "postino", "postino", "postino/postino", "localhost",
                LOG_TO_TTY, -1, 0, 0, 0, 0, 0, 0, "" };

/* A forked child must not log with its parent's pid. */
static void log_forget_pid(void)
{
    log_state.pid = 0;
}

/* The process id, asked of the kernel once per process rather than once
 * per line: a busy daemon logs several lines for every message. */
static pid_t log_pid(void)
{
    if (log_state.pid != 0)
        return log_state.pid;
    if (!log_state.pid_watched)
        log_state.pid_watched = pthread_atfork(NULL, NULL,
                                               log_forget_pid) == 0;
    pid_t pid = getpid();
    if (log_state.pid_watched)
        log_state.pid = pid;
    return pid;
}

static void log_make_tag(void)
{
    snprintf(log_state.tag, sizeof(log_state.tag), "%s/%s",
             log_state.syslog_name, log_state.program);
    if (log_state.syslog_open) {
        closelog();
        log_state.syslog_open = 0;
    }
}

void log_init(const char *program, unsigned destinations)
{
    const char *slash = strrchr(program, '/');
    snprintf(log_state.program, sizeof(log_state.program), "%s",
             slash ? slash + 1 : program);
    if (gethostname(log_state.host, sizeof(log_state.host)) != 0)
        snprintf(log_state.host, sizeof(log_state.host), "localhost");
    log_state.host[sizeof(log_state.host) - 1] = '\0';
    char *dot = strchr(log_state.host, '.');
    if (dot)
        *dot = '\0';
    log_state.destinations = destinations;
    log_make_tag();
}

void log_set_destinations(unsigned destinations)
{
    log_state.destinations = destinations;
}

unsigned log_destinations(void)
{
    return log_state.destinations;
}

void log_set_syslog_name(const char *name)
{
    snprintf(log_state.syslog_name, sizeof(log_state.syslog_name), "%s", name);
    log_make_tag();
}

int log_open_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY,
                  0644);
    if (fd < 0)
        return -1;
    if (log_state.file_fd >= 0)
        close(log_state.file_fd);
    log_state.file_fd = fd;
    return 0;
}

void log_set_verbose(int verbose)
{
    log_state.verbose = verbose;
}

int log_verbose(void)
{
    return log_state.verbose;
}

static void write_whole(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* nowhere left to report a logging failure */
        data += n;
        len -= (size_t)n;
    }
}

/* Appends src to the line, cutting it when the line is full; a log line
 * that long is itself cut at LOG_LINE_MAX anyway. */
static void line_append(char *line, size_t size, size_t *len, const char *src)
{
    size_t n = strlen(src);
    if (n > size - 1 - *len)
        n = size - 1 - *len;
    memcpy(line + *len, src, n);
    *len += n;
    line[*len] = '\0';
}

/* "Nov 23 19:16:51" for now, formatted again only when the second
 * changed since the last line. */
static const char *log_when(void)
{
    time_t now = time(NULL);
    if (log_state.when_known && now == log_state.when_second)
        return log_state.when_text;
    struct tm tm;
    if (localtime_r(&now, &tm) == NULL ||
        strftime(log_state.when_text, sizeof(log_state.when_text),
                 "%b %e %H:%M:%S", &tm) == 0)
        log_state.when_text[0] = '\0';
    log_state.when_second = now;
    log_state.when_known = 1;
    return log_state.when_text;
}

/* "Nov 23 19:16:51 host postino/smtpd[123]: " as a syslog file has it. */
static void log_file_prefix(char *line, size_t size, size_t *len)
{
    char pid[32];
    snprintf(pid, sizeof(pid), "[%ld]: ", (long)log_pid());
    line_append(line, size, len, log_when());
    line_append(line, size, len, " ");
    line_append(line, size, len, log_state.host);
    line_append(line, size, len, " ");
    line_append(line, size, len, log_state.tag);
    line_append(line, size, len, pid);
}

static void log_emit(int priority, const char *level, const char *fmt,
                     va_list ap)
{
    int saved_errno = errno;
    char text[LOG_LINE_MAX];
    size_t text_len = 0;
    text[0] = '\0';
    line_append(text, sizeof(text), &text_len, level);
    vsnprintf(text + text_len, sizeof(text) - text_len, fmt, ap);
    /* A newline or control character inside a line would forge a new log
     * line; data from outside must never be able to do that. */
    for (char *p = text; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';

    if (log_state.destinations & LOG_TO_SYSLOG) {
        if (!log_state.syslog_open) {
            openlog(log_state.tag, LOG_PID | LOG_NDELAY, LOG_MAIL);
            log_state.syslog_open = 1;
        }
        syslog(priority, "%s", text);
    }
    char line[LOG_LINE_MAX + 256];
    size_t len = 0;
    if (log_state.destinations & (LOG_TO_STDERR | LOG_TO_FILE)) {
        log_file_prefix(line, sizeof(line), &len);
        line_append(line, sizeof(line) - 1, &len, text);
        line_append(line, sizeof(line), &len, "\n");
        if (log_state.destinations & LOG_TO_STDERR)
            write_whole(STDERR_FILENO, line, len);
        if ((log_state.destinations & LOG_TO_FILE) && log_state.file_fd >= 0)
            write_whole(log_state.file_fd, line, len);
    }
    if (log_state.destinations & LOG_TO_TTY) {
        len = 0;
        line_append(line, sizeof(line), &len, log_state.tag);
        line_append(line, sizeof(line), &len, ": ");
        line_append(line, sizeof(line) - 1, &len, text);
        line_append(line, sizeof(line), &len, "\n");
        write_whole(STDERR_FILENO, line, len);
    }
    errno = saved_errno;
}

void log_info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit(LOG_INFO, "", fmt, ap);
    va_end(ap);
}

void log_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit(LOG_WARNING, "warning: ", fmt, ap);
    va_end(ap);
}

void log_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit(LOG_ERR, "error: ", fmt, ap);
    va_end(ap);
}

void log_debug(const char *fmt, ...)
{
    if (!log_state.verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_emit(LOG_DEBUG, "", fmt, ap);
    va_end(ap);
}

void log_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit(LOG_CRIT, "fatal: ", fmt, ap);
    va_end(ap);
    exit(1);
}

void log_panic(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit(LOG_CRIT, "panic: ", fmt, ap);
    va_end(ap);
    abort();
}
