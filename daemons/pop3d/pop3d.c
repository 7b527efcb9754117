/*
 * pop3d - the POP3 server's main and the parent's part of each connection
 * (the process split is described in pop3d.h and docs/ARCHITECTURE.md).
 *
 * Before the privilege drop (as root under a root master, master.cf unpriv
 * column "n"): the settings, the TLS certificate and key, and every table
 * (pop3d_password_maps, virtual_mailbox_maps, virtual_uid_maps,
 * virtual_gid_maps).  Then the process becomes mail_owner and keeps only
 * CAP_SETUID and CAP_SETGID, which it needs to start each mailbox process
 * as its owner.  Not root, nothing is kept, and every mailbox must belong
 * to the user that runs the instance.
 *
 * Per connection the parent forks the login child and then only answers
 * its login records on a socketpair (docs/protocol.md, "pop3d login"):
 *     login child -> parent:  user, password, tls (0/1), pending (bytes)
 *     parent -> login child:  status = ok | bad | temp | nomailbox
 * On ok the parent has already forked the mailbox process, which speaks to
 * the client's socket itself (tls=0; the login child then exits) or to
 * the other end of a second socketpair through which the login child
 * proxies the TLS session (tls=1).  The parent waits for both children
 * before it takes the next connection, so master's maxproc counts
 * sessions.
 */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "pop3d.h"
#include "privilege.h"
#include "record.h"
#include "server.h"
#include "text.h"

#define POP3D_LOGIN_RECORD_MAX (4 * 1024 * 1024)

static struct pop3d pop3d_settings;
static int pop3d_can_switch;     /* CAP_SETUID and CAP_SETGID are kept */

static struct map_list *pop3d_open_maps(struct config *cfg, const char *name)
{
    const char *value = config_get_str(cfg, name);
    if (value[0] == '\0')
        return NULL;
    struct buf error;
    buf_init(&error, 4096);
    struct map_list *maps = map_list_open(value, 0, &error);
    if (maps == NULL)
        log_fatal("out of memory");
    if (error.len > 0)
        log_warn("%s: %s", name, buf_cstr(&error));
    buf_free(&error);
    return maps;
}

static void pop3d_open_tls(struct pop3d *d)
{
    const char *cert = config_get_str(d->cfg, "pop3d_tls_cert_file");
    const char *key = config_get_str(d->cfg, "pop3d_tls_key_file");
    if (cert[0] == '\0') {
        if (d->wrappermode)
            log_fatal("pop3d_tls_wrappermode = yes but pop3d_tls_cert_file "
                      "is not set");
        return;
    }
    struct buf error;
    buf_init(&error, 4096);
    d->tls = tls_server_context_create(cert, key[0] ? key : cert, NULL,
                                       &error);
    if (d->tls == NULL) {
        if (d->wrappermode)
            log_fatal("cannot load TLS certificate: %s", buf_cstr(&error));
        log_warn("cannot load TLS certificate: %s; STLS is not offered",
                 buf_cstr(&error));
    }
    buf_free(&error);
}

static void pop3d_open_trusted(struct pop3d *d)
{
    struct text_list items;
    config_get_list(d->cfg, "pop3d_trusted_networks", &items);
    struct buf error;
    buf_init(&error, 4096);
    d->trusted = network_list_create(items.items, items.count, &error);
    if (d->trusted == NULL)
        log_fatal("pop3d_trusted_networks: %s", buf_cstr(&error));
    buf_free(&error);
    text_list_free(&items);
}

static void pop3d_pre_drop(struct server *srv)
{
    struct pop3d *d = &pop3d_settings;
    struct config *cfg = srv->cfg;
    d->cfg = cfg;
    d->service = srv->service_name;
    long timeout = config_get_time(cfg, "pop3d_timeout");
    d->timeout_ms = (int)(timeout > 86400 ? 86400000 : timeout * 1000);
    d->line_limit = config_get_int(cfg, "pop3d_max_line_length");
    d->max_messages = config_get_int(cfg, "pop3d_max_messages");
    d->failure_delay = config_get_time(cfg, "pop3d_auth_failure_delay");
    d->failure_limit = config_get_int(cfg, "pop3d_auth_failure_limit");
    d->minimum_uid = config_get_int(cfg, "virtual_minimum_uid");
    d->wrappermode = config_get_bool(cfg, "pop3d_tls_wrappermode");
    d->mailbox_base = config_get_str(cfg, "virtual_mailbox_base");
    pop3d_open_tls(d);
    pop3d_open_trusted(d);
    d->passwords = pop3d_open_maps(cfg, "pop3d_password_maps");
    d->mailboxes = pop3d_open_maps(cfg, "virtual_mailbox_maps");
    d->uids = pop3d_open_maps(cfg, "virtual_uid_maps");
    d->gids = pop3d_open_maps(cfg, "virtual_gid_maps");
    if (d->passwords == NULL)
        log_warn("pop3d_password_maps is empty: no login can succeed");
}

static int pop3d_has_capability(cap_value_t cap)
{
    cap_t caps = cap_get_proc();
    if (caps == NULL)
        return 0;
    cap_flag_value_t v = CAP_CLEAR;
    int ok = cap_get_flag(caps, cap, CAP_EFFECTIVE, &v) == 0 && v == CAP_SET;
    cap_free(caps);
    return ok;
}

/* mail_owner with CAP_SETUID and CAP_SETGID (see the top). */
static void pop3d_init(struct server *srv)
{
    static const cap_value_t keep[] = { CAP_SETUID, CAP_SETGID };
    pid_t parent = getppid();
    int root = privilege_is_root();
    if (privilege_drop(config_get_str(srv->cfg, "mail_owner"), NULL, keep,
                       root ? 2 : 0) != 0)
        log_fatal("cannot drop privileges");
    /* The uid change reset the parent-death signal. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
        log_fatal("master is gone; exiting");
    pop3d_can_switch = pop3d_has_capability(CAP_SETUID) &&
                       pop3d_has_capability(CAP_SETGID);
}

/* What every child of the parent does first: die with the parent. */
static void pop3d_child_start(pid_t parent)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
        _exit(1);
}

/* The tables stay with the parent: a child that parses client input, or
 * runs as a mailbox owner, must not be able to read them. */
static void pop3d_child_close_tables(struct pop3d *d)
{
    map_list_free(d->passwords);
    map_list_free(d->mailboxes);
    map_list_free(d->uids);
    map_list_free(d->gids);
    d->passwords = d->mailboxes = d->uids = d->gids = NULL;
}

/* The mailbox process becomes the mailbox owner, with no capability. */
static int pop3d_become_owner(const struct pop3d_account *acct)
{
    if (pop3d_can_switch && geteuid() != acct->uid) {
        gid_t groups[1] = { acct->gid };
        if (setgroups(1, groups) != 0 ||
            setresgid(acct->gid, acct->gid, acct->gid) != 0 ||
            setresuid(acct->uid, acct->uid, acct->uid) != 0) {
            log_error("cannot switch to uid %ld gid %ld: %s",
                      (long)acct->uid, (long)acct->gid, strerror(errno));
            return -1;
        }
    }
    if (privilege_drop(NULL, NULL, NULL, 0) != 0)
        return -1;
    return 0;
}

static pid_t pop3d_start_mailbox(struct pop3d *d,
                                 const struct pop3d_account *acct, int tls,
                                 int client_fd, int data_fd, int ctl_fd,
                                 const struct record_attr *pending)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    pop3d_child_start(parent);
    (void)close(ctl_fd);
    pop3d_child_close_tables(d);
    int fd = tls ? data_fd : client_fd;
    if (pop3d_become_owner(acct) != 0) {
        static const char reply[] = "-ERR [SYS/PERM] cannot open the "
                                    "mailbox\r\n";
        (void)send(fd, reply, sizeof(reply) - 1, MSG_NOSIGNAL);
        _exit(1);
    }
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
        _exit(1);
    pop3d_mailbox_run(d, acct, fd, client_fd,
                      pending ? pending->value.data : NULL,
                      pending ? pending->value.len : 0);
}

static const char *pop3d_status_name(int result)
{
    switch (result) {
    case POP3D_AUTH_OK: return "ok";
    case POP3D_AUTH_BAD: return "bad";
    case POP3D_AUTH_NO_MAILBOX: return "nomailbox";
    default: return "temp";
    }
}

/* Answers the login child's records; returns the mailbox process, or 0
 * when none was started. */
static pid_t pop3d_answer_logins(struct pop3d *d, struct stream *ctl,
                                 int client_fd, int data_fd)
{
    struct record req, reply;
    record_init(&req);
    record_init(&reply);
    struct pop3d_account acct;
    memset(&acct, 0, sizeof(acct));
    buf_init(&acct.maildir, 4096);
    struct buf error;
    buf_init(&error, 4096);
    pid_t mailbox = 0;
    while (mailbox == 0) {
        record_reset(&req);
        int rc = record_read(ctl, &req, POP3D_LOGIN_RECORD_MAX);
        if (rc != RECORD_OK) {
            if (rc != RECORD_EOF)
                log_warn("login child: %s", record_status_text(rc));
            break;
        }
        const char *user = record_get_str(&req, "user");
        const char *password = record_get_str(&req, "password");
        long tls = 0;
        int result = POP3D_AUTH_BAD;
        buf_reset(&error);
        if (user != NULL && password != NULL &&
            record_get_long(&req, "tls", &tls) == 0)
            result = pop3d_account_login(d, user, password, &acct, &error);
        pop3d_record_wipe(&req, "password");
        if (error.len > 0)
            log_warn("login of %s: %s", user ? user : "?", buf_cstr(&error));
        if (result == POP3D_AUTH_OK) {
            mailbox = pop3d_start_mailbox(d, &acct, tls != 0, client_fd,
                                          data_fd, ctl->fd,
                                          record_find(&req, "pending"));
            if (mailbox < 0) {
                log_error("fork: %s", strerror(errno));
                result = POP3D_AUTH_TEMP;
                mailbox = 0;
            }
        }
        record_reset(&reply);
        (void)record_add_str(&reply, "status", pop3d_status_name(result));
        if (record_write(ctl, &reply) != RECORD_OK ||
            stream_flush(ctl) != STREAM_OK)
            break;
    }
    if (ctl->in.data != NULL)
        explicit_bzero(ctl->in.data, ctl->in.cap);
    record_free(&req);
    record_free(&reply);
    buf_free(&acct.maildir);
    buf_free(&error);
    return mailbox;
}

static void pop3d_wait(pid_t pid)
{
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        continue;
}

static void pop3d_service(struct server *srv, int client_fd)
{
    (void)srv;
    struct pop3d *d = &pop3d_settings;
    int ctl[2], data[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, ctl) != 0)
        log_fatal("socketpair: %s", strerror(errno));
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, data) != 0)
        log_fatal("socketpair: %s", strerror(errno));
    pid_t parent = getpid();
    pid_t login = fork();
    if (login < 0)
        log_fatal("fork: %s", strerror(errno));
    if (login == 0) {
        pop3d_child_start(parent);
        (void)close(ctl[0]);
        (void)close(data[0]);
        pop3d_child_close_tables(d);
        pop3d_login_run(d, client_fd, ctl[1], data[1]);
    }
    (void)close(ctl[1]);
    (void)close(data[1]);
    struct stream ctl_stream;
    /* The login child bounds every wait for its client; this only keeps
     * a child that stopped answering from holding the process for good. */
    stream_init(&ctl_stream, ctl[0], d->timeout_ms * 4 +
                                     POP3D_TLS_HANDSHAKE_MS);
    pid_t mailbox = pop3d_answer_logins(d, &ctl_stream, client_fd, data[0]);
    if (ctl_stream.error == STREAM_TIMEOUT)
        (void)kill(login, SIGKILL);
    stream_free(&ctl_stream);
    (void)close(ctl[0]);
    (void)close(data[0]);
    pop3d_wait(login);
    if (mailbox > 0)
        pop3d_wait(mailbox);
}

int main(int argc, char **argv)
{
    static const struct server_spec spec = {
        .mode = SERVER_SINGLE,
        .pre_drop = pop3d_pre_drop,
        .init = pop3d_init,
        .service = pop3d_service,
    };
    int rc = server_main(argc, argv, &spec);
    pop3d_child_close_tables(&pop3d_settings);
    network_list_free(pop3d_settings.trusted);
    tls_context_free(pop3d_settings.tls);
    return rc;
}
