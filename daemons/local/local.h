/*
 * local.h - what the modules of the local delivery agent share: the
 * daemon's settings, one recipient's delivery, the list of destinations an
 * alias, :include: file or .forward expands to, and the outcome that
 * gathers their results.  The agent itself is described in local.c.
 */
#ifndef POSTINO_LOCAL_H
#define POSTINO_LOCAL_H

#include <pwd.h>
#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "config.h"
#include "delivery_request.h"
#include "delivery_source.h"
#include "map_list.h"
#include "sync_group.h"

struct delivery_identity;

/* Bounds of one recipient's expansion (docs: conf/main.cf, local.c). */
#define LOCAL_EXPANSION_MAX 1000      /* destinations per recipient */
#define LOCAL_INCLUDE_DEPTH 10        /* :include: inside :include: */
#define LOCAL_FILE_MAX (1024 * 1024)  /* a .forward or :include: file */
#define LOCAL_DELIVERED_TO_MAX 1000   /* Delivered-To: fields looked at */
#define LOCAL_HEADER_MAX (1024 * 1024)/* header bytes scanned for them */
#define LOCAL_COMMAND_OUTPUT_MAX 1000 /* command output kept for the text */

/* Where files and commands are allowed (allow_mail_to_commands/files). */
enum {
    LOCAL_ALLOW_ALIAS = 1,
    LOCAL_ALLOW_FORWARD = 2,
    LOCAL_ALLOW_INCLUDE = 4,
};

struct local {
    struct config *cfg;
    struct map_list *aliases;
    const char *delimiters;      /* recipient_delimiter, "" for none */
    const char *home_mailbox;
    const char *mail_spool_directory;
    const char *forward_path;    /* raw: $home etc. are ours to expand */
    const char *myorigin;
    unsigned allow_commands;     /* LOCAL_ALLOW_* bits */
    unsigned allow_files;
    long command_time_limit;     /* seconds */
    int ipc_timeout_ms;
    uid_t trusted_uid;           /* root, or the instance's user */
    struct passwd default_privs; /* strings owned by the strings below */
    char *default_privs_name;
    char *default_privs_home;
    char hostname[256];          /* for Maildir names */
    pid_t pid;
    struct sync_group pending;   /* Maildir files not yet fsynced: the
                                  * requests' commit (local.c) */
};

/* A user to act as: for a mailbox, a file, a command, reading a file. */
struct local_user {
    char *name;                  /* may be NULL: no supplementary groups */
    uid_t uid;
    gid_t gid;
    char *home;
    char *shell;
};

enum local_kind {
    LOCAL_TO_MAILBOX,   /* value: the user name */
    LOCAL_TO_FILE,      /* value: absolute path; a trailing '/': Maildir */
    LOCAL_TO_COMMAND,   /* value: the shell command */
    LOCAL_TO_ADDRESS,   /* value: the address, sent on through cleanup */
};

struct local_target {
    enum local_kind kind;
    char *value;
    struct local_user as;        /* files and commands run as this user */
};

struct local_expansion {
    struct local_target *targets;
    size_t count;
    size_t cap;
    char *sender;                /* owner-ALIAS, when the alias has one */
};

/* One recipient being delivered. */
struct local_rcpt {
    struct local *lc;
    struct delivery_request *req;
    size_t index;
    const char *address;         /* as qmgr sent it */
    char *local;                 /* local part, lower case */
    char *user;                  /* local without the extension */
    char *extension;             /* NULL without one */
    const char *domain;          /* may be "" */
    struct delivery_source *src; /* the message content */
    const struct text_list *delivered_to;
};

/* The gathered result of one recipient's destinations: the worst status
 * wins (deferred over bounced over sent), the first text of that status
 * is kept; sent texts are joined with "; ". */
struct local_outcome {
    enum delivery_status status;
    const char *dsn;             /* static */
    struct buf text;
    int any;                     /* a result was added */
    int expanded;                /* something was sent on through cleanup */
    int awaits_commit;           /* a Maildir file in lc->pending */
};

/* local.c */
void local_outcome_init(struct local_outcome *o);
void local_outcome_add(struct local_outcome *o, enum delivery_status status,
                       const char *dsn, const char *text);
void local_outcome_free(struct local_outcome *o);

/* local_user.c: users to act as */
int local_user_from_passwd(struct local_user *u, const struct passwd *pw);
int local_user_copy(struct local_user *dst, const struct local_user *src);
void local_user_free(struct local_user *u);

/* local_expand.c: alias values, :include: files, .forward */
void local_expansion_init(struct local_expansion *e);
void local_expansion_free(struct local_expansion *e);
/* Adds the items of a list value ("a, /file, |cmd, :include:/x") found
 * for self (alias name or user), files and commands allowed by class
 * (LOCAL_ALLOW_*) and run as as.  0, or -1 with a deferral or bounce in
 * the outcome. */
int local_expand_value(struct local_rcpt *r, struct local_expansion *e,
                       const char *value, size_t len, const char *self,
                       unsigned class, const struct local_user *as,
                       int depth, struct local_outcome *o);
/* The alias of the recipient: 1 found (e filled), 0 none, -1 failed (o). */
int local_expand_alias(struct local_rcpt *r, struct local_expansion *e,
                       struct local_outcome *o);
/* The user's .forward: 1 found (e filled), 0 none, -1 failed (o).  held,
 * when not NULL, is the caller's enter as pw: it is left before a found
 * file is expanded (which may read files as others). */
int local_expand_forward(struct local_rcpt *r, const struct local_user *pw,
                         struct delivery_identity *held,
                         struct local_expansion *e, struct local_outcome *o);

/* local_mailbox.c: mailbox, Maildir and file deliveries */
void local_deliver_mailbox(struct local_rcpt *r, const struct local_user *u,
                           struct local_outcome *o);
void local_deliver_file(struct local_rcpt *r, const struct local_target *t,
                        struct local_outcome *o);
/* "Return-Path: <S>\nDelivered-To: R\n" */
void local_prepend_headers(const struct local_rcpt *r, struct buf *out);

/* local_command.c */
void local_deliver_command(struct local_rcpt *r, const struct local_target *t,
                           struct local_outcome *o);

/* local_forward.c: the addresses of an expansion, as one new message */
void local_forward(struct local_rcpt *r, const struct local_expansion *e,
                   struct local_outcome *o);

#endif
