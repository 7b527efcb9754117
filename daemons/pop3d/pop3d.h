/*
 * pop3d - the POP3 server (RFC 1939, with CAPA of RFC 2449, AUTH of RFC
 * 5034, STLS of RFC 2595 and implicit TLS of RFC 8314), under the master.
 *
 * Processes of one connection (docs/ARCHITECTURE.md, "Reading mail:
 * pop3d"):
 *   parent      pop3d itself: mail_owner with CAP_SETUID and CAP_SETGID
 *               only (master.cf unpriv column "n").  It never reads the
 *               client: it forks the login child, checks the credentials
 *               the child forwards, and starts the mailbox process.
 *   login       one per connection, mail_owner, no capabilities: the
 *               greeting, TLS, AUTHORIZATION state; after a login over
 *               TLS it stays as the proxy between the TLS connection and
 *               the mailbox process.
 *   mailbox     the mailbox owner, no capabilities: locks the Maildir,
 *               TRANSACTION and UPDATE states.
 *
 * Modules:
 *   pop3d.c          main, settings, the parent's part of a connection
 *   pop3d_account.c  user name to password check, uid, gid and Maildir
 *   pop3d_login.c    the login child: greeting, CAPA, STLS, USER/PASS, AUTH
 *   pop3d_proxy.c    plaintext between the TLS session and the mailbox
 *   pop3d_mailbox.c  the mailbox process: TRANSACTION and UPDATE
 *   pop3d_maildir.c  Maildir scan, lock, sizes, UIDL, the transfer form
 *   pop3d_io.c       replies and command lines shared by login and mailbox
 */
#ifndef POSTINO_POP3D_H
#define POSTINO_POP3D_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "config.h"
#include "map_list.h"
#include "network_match.h"
#include "stream.h"
#include "tls.h"

#define POP3D_NAME_MAX 255      /* a user name */
#define POP3D_ADDR_MAX 64
#define POP3D_ERROR_LIMIT 50    /* -ERR replies before the session ends */
#define POP3D_TLS_HANDSHAKE_MS 60000
#define POP3D_IMPLEMENTATION "Postino"

/* The process-wide settings, read before the privilege drop. */
struct pop3d {
    struct config *cfg;
    const char *service;
    int timeout_ms;              /* pop3d_timeout */
    long line_limit;             /* pop3d_max_line_length */
    long max_messages;           /* pop3d_max_messages */
    long failure_delay;          /* pop3d_auth_failure_delay, seconds */
    long failure_limit;          /* pop3d_auth_failure_limit */
    long minimum_uid;            /* virtual_minimum_uid */
    int wrappermode;             /* pop3d_tls_wrappermode */
    struct tls_context *tls;     /* NULL: no STLS, no wrapper mode */
    struct network_list *trusted; /* plaintext logins allowed from there */
    struct map_list *passwords;  /* pop3d_password_maps */
    struct map_list *mailboxes;  /* virtual_mailbox_maps */
    struct map_list *uids;       /* virtual_uid_maps */
    struct map_list *gids;       /* virtual_gid_maps */
    const char *mailbox_base;    /* virtual_mailbox_base */
};

/* Who logged in, and where the mail is. */
struct pop3d_account {
    char user[POP3D_NAME_MAX + 1];
    uid_t uid;
    gid_t gid;
    struct buf maildir;
};

/* ---- pop3d_io.c: one client connection's replies and lines ---------- */

struct pop3d_conn {
    struct stream stream;
    char client_id[POP3D_NAME_MAX + POP3D_ADDR_MAX + 4]; /* name[addr] */
    char client_addr[POP3D_ADDR_MAX];
    int errors;                  /* -ERR replies so far */
    int line_too_long;           /* the last read line was too long */
};

enum pop3d_read {
    POP3D_LINE = 0,      /* a command line in line */
    POP3D_BAD_LINE = 1,  /* answered already (too long, NUL); read again */
    POP3D_GONE = -1,     /* EOF, timeout, error: logged; end the session */
};

void pop3d_conn_init(struct pop3d_conn *c, int fd, int timeout_ms);
/* Queues "+OK text" or "-ERR text"; counts the errors. */
void pop3d_ok(struct pop3d_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void pop3d_err(struct pop3d_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Flushes when no further command is already buffered (PIPELINING).
 * 0, or -1 when the client is gone. */
int pop3d_flush_if_idle(struct pop3d_conn *c);
/* Reads one command line (at most limit octets): see enum pop3d_read. */
int pop3d_read_command(struct pop3d_conn *c, struct buf *line, long limit,
                       const char *state);
/* Splits "VERB args": upper-cases the verb into verb (size bytes; "" when
 * too long) and returns the arguments ("" when none). */
const char *pop3d_split_command(const char *line, char *verb, size_t size);
/* 1 for a user name of 1..POP3D_NAME_MAX octets without a control
 * character (it ends up in table keys and log lines), else 0. */
int pop3d_valid_user_name(const char *name);
struct record;
/* Overwrites the value of attribute name (a password) in r. */
void pop3d_record_wipe(struct record *r, const char *name);
/* Fills client_addr and client_id from the socket's peer. */
void pop3d_identify_client(struct pop3d_conn *c, int fd);
/* The CAPA list; login and mailbox states differ. */
void pop3d_capa(struct pop3d_conn *c, int login_state, int offer_stls,
                int offer_user);

/* ---- pop3d_account.c (the parent) ----------------------------------- */

enum pop3d_auth_result {
    POP3D_AUTH_OK = 0,
    POP3D_AUTH_BAD = 1,      /* wrong password or unknown user */
    POP3D_AUTH_TEMP = 2,     /* a table failed: try again later */
    POP3D_AUTH_NO_MAILBOX = 3, /* password right, no mailbox known */
};

/* Checks user's password and finds the account.  error gets the reason
 * for the log. */
int pop3d_account_login(const struct pop3d *d, const char *user,
                        const char *password, struct pop3d_account *acct,
                        struct buf *error);

/* ---- pop3d_login.c (the login child) -------------------------------- */

/* Runs the AUTHORIZATION state on client_fd, asking the parent on ctl_fd
 * to check logins; after a login over TLS proxies to data_fd.  Never
 * returns. */
_Noreturn void pop3d_login_run(const struct pop3d *d, int client_fd,
                               int ctl_fd, int data_fd);

/* ---- pop3d_proxy.c ------------------------------------------------ */

/* Copies plaintext both ways between the TLS stream and data_fd until the
 * mailbox process closes data_fd (the end of the session) or the client
 * goes away.  0 on a clean end. */
int pop3d_proxy_run(struct stream *client, int client_fd, int data_fd,
                    int timeout_ms);

/* ---- pop3d_mailbox.c (the mailbox process) -------------------------- */

/* Runs TRANSACTION and UPDATE for acct on fd (the client's socket, or the
 * proxy's end); client_fd is the client's socket, for its address (closed
 * here when it is not fd); pending is input the client sent after its
 * login command.  The process already runs as the mailbox owner.  Never
 * returns. */
_Noreturn void pop3d_mailbox_run(const struct pop3d *d,
                                 const struct pop3d_account *acct, int fd,
                                 int client_fd, const char *pending,
                                 size_t pending_len);

#endif
