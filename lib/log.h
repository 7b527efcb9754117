/*
 * log - the one logging module of every Postino program.
 *
 * Lines have syslog's shape, so that existing log tools read them:
 *     postino/smtpd[123]: 4F2A9C: from=<a@b>, size=120
 * The queue ID, when there is one, is simply the start of the text.
 *
 * Destinations (any combination, chosen once in main):
 *   LOG_TO_SYSLOG  syslog(3), facility mail, tag "postino/<program>".
 *   LOG_TO_STDERR  the same line on stderr, preceded by the time and host
 *                  as a syslog file has them (a daemon in the foreground).
 *   LOG_TO_TTY     "postino/<program>: text" on stderr, for commands that
 *                  a person runs (postino check, postino-map).
 *   LOG_TO_FILE    appended to the file given to log_open_file(), in the
 *                  same format as LOG_TO_STDERR (main.cf: maillog_file).
 *
 * Severity says what happens next, as in Postfix:
 *   log_info   normal event;                     the program goes on.
 *   log_warn   "warning: " something is wrong;   the program goes on.
 *   log_error  "error: " an operation failed;    the program goes on.
 *   log_fatal  "fatal: " this process cannot go on; exit(1).  Under the
 *              master, the master replaces it.
 *   log_panic  "panic: " a bug, an interface was violated; abort().
 *   log_debug  only when log_set_verbose(1) was called.
 *
 * Usage:
 *     log_init("smtpd", LOG_TO_STDERR);
 *     log_info("%s: client=%s[%s]", queue_id, name, addr);
 */
#ifndef POSTINO_LOG_H
#define POSTINO_LOG_H

#include <stdarg.h>

enum {
    LOG_TO_SYSLOG = 1,
    LOG_TO_STDERR = 2,
    LOG_TO_TTY = 4,
    LOG_TO_FILE = 8,
};

void log_init(const char *program, unsigned destinations);
void log_set_destinations(unsigned destinations);
unsigned log_destinations(void);
void log_set_syslog_name(const char *name);
int log_open_file(const char *path);
void log_set_verbose(int verbose);
int log_verbose(void);

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void log_fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
_Noreturn void log_panic(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

#endif
