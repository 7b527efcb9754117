/*
 * master_cf - parser for master.cf, the table of services the master runs.
 *
 * Syntax (Postfix's): one service per logical line, with the columns
 *     service  type  private  unpriv  chroot  wakeup  maxproc  command + args
 *   service   a name (unix: the socket name under private/ or public/;
 *             inet: "port", "host:port", "[ipv6]:port" or "*:port", the
 *             port a number or a name from /etc/services)
 *   type      "inet" or "unix"; anything else is an error
 *   private   y/n, "-" = y (an inet service may not be private: error)
 *   unpriv    y/n, "-" = y (n: the service keeps root; see privilege.h)
 *   chroot    y/n, "-" = n
 *   wakeup    "-" or 0 = none, N = seconds, "N?" = only when used; only
 *             unix services take a wakeup time
 *   maxproc   "-" = default_process_limit, 0 = no limit, N
 *   command   a program in daemon_directory (or an absolute path) and its
 *             arguments; "-o name=value" overrides a main.cf parameter for
 *             this service, and "{ text with spaces }" is one argument.
 *             "-o" is looked for among the options before the first
 *             argument that does not start with '-' (or "--"), as
 *             Postfix's postconf does; "-o { name = value }" is kept in
 *             argv as "-o" "name=value" (name and value trimmed).
 * A line that starts with white space continues the previous one; blank
 * lines and lines whose first non-space character is '#' are ignored.  A
 * logical line longer than CONFIG_LINE_MAX bytes is an error.
 *
 * Errors are logged through log.h as "FILE:LINE: message" (the most recent
 * also returned by master_cf_last_error()); a line in error is left out of
 * the result.  The same service name and type twice is an error.
 *
 * Usage:
 *     struct master_cf cf;
 *     int errors = master_cf_load("/etc/postino/master.cf", &cf);
 *     if (errors != 0) ... (-1: cannot read the file, errno set) ...
 *     for (size_t i = 0; i < cf.count; i++) use(&cf.services[i]);
 *     master_cf_free(&cf);
 */
#ifndef POSTINO_MASTER_CF_H
#define POSTINO_MASTER_CF_H

#include <stddef.h>

#include "buf.h"

enum master_service_type {
    MASTER_SERVICE_INET,
    MASTER_SERVICE_UNIX,
};

#define MASTER_MAXPROC_DEFAULT (-1)

struct master_cf_override {
    char *name;
    char *value;
};

struct master_service_entry {
    char *name;
    enum master_service_type type;
    int private_socket;  /* 1: under private/, 0: under public/ */
    int unprivileged;    /* 1: drops to mail_owner */
    int chroot;          /* 1: chroot to queue_directory */
    long wakeup_seconds; /* 0: no wakeup */
    int wakeup_if_used;  /* the "?" suffix */
    long max_process;    /* MASTER_MAXPROC_DEFAULT, 0 = no limit, or N */
    char **argv;         /* argv[0] = command; NULL-terminated */
    size_t argc;
    struct master_cf_override *overrides; /* the -o options, parsed */
    size_t override_count;
    char *file;          /* where the entry was read */
    int line;
};

struct master_cf {
    struct master_service_entry *services;
    size_t count;
    char last_error[512];
};

int master_cf_load(const char *path, struct master_cf *cf);
int master_cf_load_text(const char *name, const char *text, size_t len,
                        struct master_cf *cf);
void master_cf_free(struct master_cf *cf);
const char *master_cf_type_name(enum master_service_type type);
/* The program a service runs: argv[0] itself when it holds a '/', else
 * daemon_directory/argv[0], set into path.  0, or -1 when too long. */
int master_cf_command_path(const struct master_service_entry *entry,
                           const char *daemon_directory, struct buf *path);
const char *master_cf_last_error(const struct master_cf *cf);

#endif
