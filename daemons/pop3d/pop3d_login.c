/*
 * pop3d_login - the login child: one connection's AUTHORIZATION state, as
 * mail_owner with no capability.
 *
 * Commands: CAPA, STLS (RFC 2595), USER and PASS, AUTH (RFC 5034: PLAIN
 * and LOGIN from lib/sasl.h; "AUTH" alone lists them), QUIT.  APOP is not
 * offered.  TRANSACTION commands get "-ERR not logged in".
 *
 * Plaintext logins: USER, PASS and AUTH are taken only over TLS (STLS, or
 * pop3d_tls_wrappermode = yes) or from pop3d_trusted_networks; elsewhere
 * the answer is "-ERR [AUTH] Plaintext authentication disallowed without
 * TLS".  Input the client sent after STLS but before the handshake is
 * thrown away and logged (the plaintext injection of CVE-2011-0411).
 *
 * The credentials are not checked here: they go to the parent (pop3d.c),
 * which answers ok, bad, temp or nomailbox.  A wrong password costs the
 * client pop3d_auth_failure_delay times the number of its failures (at
 * most POP3D_DELAY_STEPS of them) before "-ERR [AUTH] Authentication
 * failed".  The failures are counted per client address across sessions
 * by the anvil service (as messages of the service "pop3d-auth", within
 * anvil_rate_time_unit), so reconnecting does not reset the delay; when
 * anvil cannot be reached, per session.  The pop3d_auth_failure_limit-th
 * failure in a session ends it.  On ok the
 * mailbox process takes over the conversation (its "+OK" answers the
 * login command): without TLS this process simply exits; with TLS it
 * stays as the proxy (pop3d_proxy.c).
 */
#include <string.h>
#include <unistd.h>

#include "anvil_client.h"
#include "log.h"
#include "pop3d.h"
#include "privilege.h"
#include "record.h"
#include "sasl.h"
#include "text.h"

#define POP3D_DELAY_STEPS 10

struct login {
    const struct pop3d *d;
    struct anvil_client anvil;
    int anvil_tried;
    struct pop3d_conn c;
    struct tls_session *tls;
    struct stream ctl;
    int client_fd;
    int data_fd;
    int trusted;
    long failures;
    int have_user;
    char user[POP3D_NAME_MAX + 1];
};

static _Noreturn void login_exit(struct login *l, int status)
{
    (void)stream_flush(&l->c.stream);
    if (l->tls != NULL) {
        (void)tls_session_shutdown(l->tls, 1000, NULL);
        tls_session_free(l->tls);
    }
    _exit(status);
}

static int login_allowed(struct login *l)
{
    if (l->tls != NULL || l->trusted)
        return 1;
    pop3d_err(&l->c, "[AUTH] Plaintext authentication disallowed without "
                     "TLS");
    return 0;
}

static void login_start_tls(struct login *l, const char *args)
{
    if (args[0] != '\0') {
        pop3d_err(&l->c, "STLS takes no argument");
        return;
    }
    if (l->tls != NULL) {
        pop3d_err(&l->c, "Command not permitted when TLS active");
        return;
    }
    if (l->d->tls == NULL) {
        pop3d_err(&l->c, "TLS not available");
        return;
    }
    pop3d_ok(&l->c, "Begin TLS negotiation");
    struct buf error;
    buf_init(&error, 1024);
    size_t pending = 0;
    int rc = tls_session_start_on_stream(l->d->tls, &l->c.stream, NULL,
                                         POP3D_TLS_HANDSHAKE_MS,
                                         TLS_PENDING_DISCARD, &pending,
                                         &l->tls, &error);
    if (pending > 0)
        log_info("%s: discarding %zu bytes sent before the TLS handshake",
                 l->c.client_id, pending);
    if (rc != TLS_OK) {
        log_info("%s: STLS: TLS handshake failed: %s", l->c.client_id,
                 buf_cstr(&error));
        buf_free(&error);
        _exit(0);
    }
    buf_free(&error);
    l->have_user = 0;  /* RFC 2595: the session starts over */
}

/* Hands the login to the parent; returns its status word. */
static const char *login_ask_parent(struct login *l, const char *user,
                                    const char *password)
{
    static char status[16];
    struct record r;
    record_init(&r);
    const struct stream *s = &l->c.stream;
    size_t pending = stream_pending(s);
    int ok = record_add_str(&r, "user", user) == RECORD_OK &&
             record_add_str(&r, "password", password) == RECORD_OK &&
             record_add_long(&r, "tls", l->tls != NULL) == RECORD_OK &&
             record_add(&r, "pending",
                        pending ? s->in.data + s->in_pos : "",
                        pending) == RECORD_OK &&
             record_write(&l->ctl, &r) == RECORD_OK &&
             stream_flush(&l->ctl) == STREAM_OK;
    if (l->ctl.out.data != NULL)
        explicit_bzero(l->ctl.out.data, l->ctl.out.cap);
    pop3d_record_wipe(&r, "password");
    record_reset(&r);
    const char *answer = NULL;
    if (ok && record_read(&l->ctl, &r, 1024) == RECORD_OK)
        answer = record_get_str(&r, "status");
    (void)text_copy(status, sizeof(status), answer ? answer : "temp");
    record_free(&r);
    return status;
}

/* The client's failures within anvil_rate_time_unit, this one included,
 * or the session's count when anvil cannot say. */
static long login_count_failure(struct login *l)
{
    struct buf error;
    buf_init(&error, 1024);
    long count = 0, rate = 0;
    if (!l->anvil_tried) {
        l->anvil_tried = 1;
        if (anvil_client_connect(&l->anvil, ANVIL_SOCKET, "pop3d-auth",
                                 l->c.client_addr, 1000, &count, &rate,
                                 &error) != 0)
            log_warn("anvil: %s; login failures are counted per session "
                     "only", buf_cstr(&error));
    }
    buf_reset(&error);
    if (l->anvil.fd < 0 || anvil_client_message(&l->anvil, &rate,
                                                &error) != 0)
        rate = 0;
    buf_free(&error);
    return rate > l->failures ? rate : l->failures;
}

static void login_failed(struct login *l, const char *user,
                         const char *method)
{
    l->failures++;
    log_warn("%s: %s authentication failed: user=<%s>", l->c.client_id,
             method, user);
    if (stream_flush(&l->c.stream) != STREAM_OK)
        login_exit(l, 0);
    long steps = login_count_failure(l);
    if (steps > POP3D_DELAY_STEPS)
        steps = POP3D_DELAY_STEPS;
    if (l->d->failure_delay > 0)
        sleep((unsigned)(l->d->failure_delay * steps));
    if (l->failures >= l->d->failure_limit) {
        pop3d_err(&l->c, "[AUTH] Authentication failed; too many failures");
        login_exit(l, 0);
    }
    pop3d_err(&l->c, "[AUTH] Authentication failed");
}

static void login_try(struct login *l, const char *user, const char *password,
                      const char *method)
{
    if (stream_flush(&l->c.stream) != STREAM_OK)
        login_exit(l, 0);
    const char *status = login_ask_parent(l, user, password);
    if (strcmp(status, "ok") == 0) {
        log_info("%s: login: user=<%s>, method=%s%s", l->c.client_id, user,
                 method, l->tls ? ", TLS" : "");
        anvil_client_disconnect(&l->anvil);
        if (l->tls == NULL)
            _exit(0);  /* the mailbox process has the socket now */
        (void)stream_discard_pending(&l->c.stream); /* forwarded */
        /* The mailbox process times the client out itself and says so;
         * the proxy waits a little longer, to pass that on. */
        int rc = pop3d_proxy_run(&l->c.stream, l->client_fd, l->data_fd,
                                 l->d->timeout_ms + 30000);
        login_exit(l, rc == 0 ? 0 : 1);
    }
    if (strcmp(status, "bad") == 0) {
        login_failed(l, user, method);
    } else if (strcmp(status, "nomailbox") == 0) {
        pop3d_err(&l->c, "[SYS/PERM] No mailbox for this user");
    } else {
        pop3d_err(&l->c, "[SYS/TEMP] Temporary authentication failure");
    }
}

static void login_user(struct login *l, const char *args)
{
    if (!login_allowed(l))
        return;
    if (!pop3d_valid_user_name(args)) {
        pop3d_err(&l->c, "Invalid user name");
        return;
    }
    (void)text_copy(l->user, sizeof(l->user), args);
    l->have_user = 1;
    pop3d_ok(&l->c, "Send your password");
}

static void login_pass(struct login *l, const char *args)
{
    if (!l->have_user) {
        pop3d_err(&l->c, "No user name given (send USER first)");
        return;
    }
    l->have_user = 0;
    if (!login_allowed(l))
        return;
    login_try(l, l->user, args, "USER");
}

/* The SASL exchange of RFC 5034: "+ challenge" lines, "*" cancels. */
static int login_sasl_exchange(struct login *l, struct sasl *sasl, int r)
{
    struct buf line;
    buf_init(&line, SASL_LINE_MAX + 1);
    while (r == SASL_CHALLENGE) {
        (void)stream_printf(&l->c.stream, "+ %s\r\n", sasl_challenge(sasl));
        enum stream_line_ending ending;
        if (stream_flush(&l->c.stream) != STREAM_OK)
            login_exit(l, 0);
        stream_set_deadline(&l->c.stream, l->d->timeout_ms / 1000);
        int rc = stream_read_line(&l->c.stream, &line, SASL_LINE_MAX,
                                  &ending);
        stream_set_deadline(&l->c.stream, 0);
        if (rc == STREAM_TOO_LONG) {
            r = SASL_ERROR;
            sasl_reset(sasl);
            pop3d_err(&l->c, "%s", sasl_error_text(SASL_ERR_TOO_LONG));
            break;
        }
        if (rc != STREAM_OK || ending == STREAM_LINE_EOF)
            login_exit(l, 0);
        if (memchr(buf_cstr(&line), '\0', line.len))
            (void)buf_set_str(&line, "\001"); /* not base64: refused */
        r = sasl_step(sasl, buf_cstr(&line));
        if (r == SASL_ERROR)
            pop3d_err(&l->c, "%s", sasl_error_text(sasl_error(sasl)));
    }
    if (line.data)
        explicit_bzero(line.data, line.len);
    buf_free(&line);
    return r;
}

static void login_auth(struct login *l, const char *args)
{
    if (args[0] == '\0') {
        pop3d_ok(&l->c, "Mechanisms follow");
        (void)stream_puts(&l->c.stream, "PLAIN\r\nLOGIN\r\n.\r\n");
        return;
    }
    if (!login_allowed(l))
        return;
    char mechanism[32];
    size_t n = strcspn(args, " ");
    if (n == 0 || n >= sizeof(mechanism)) {
        pop3d_err(&l->c, "Unrecognized authentication type");
        return;
    }
    memcpy(mechanism, args, n);
    mechanism[n] = '\0';
    if (!sasl_mechanism_supported(mechanism)) {
        pop3d_err(&l->c, "Unrecognized authentication type");
        return;
    }
    const char *initial = args[n] == ' ' ? args + n + 1 : NULL;
    struct sasl sasl;
    sasl_init(&sasl);
    int r = sasl_start(&sasl, mechanism, initial);
    if (r == SASL_ERROR)
        pop3d_err(&l->c, "%s", sasl_error_text(sasl_error(&sasl)));
    else
        r = login_sasl_exchange(l, &sasl, r);
    if (r == SASL_DONE)
        login_try(l, sasl_username(&sasl), sasl_password(&sasl),
                  sasl_mechanism(&sasl) == SASL_MECH_PLAIN ? "PLAIN"
                                                           : "LOGIN");
    sasl_reset(&sasl);
}

/* One command; 0 to go on, 1 after QUIT. */
static int login_command(struct login *l, const char *line)
{
    char verb[8];
    const char *args = pop3d_split_command(line, verb, sizeof(verb));
    if (strcmp(verb, "CAPA") == 0)
        pop3d_capa(&l->c, 1, l->d->tls != NULL && l->tls == NULL, 1);
    else if (strcmp(verb, "STLS") == 0)
        login_start_tls(l, args);
    else if (strcmp(verb, "USER") == 0)
        login_user(l, args);
    else if (strcmp(verb, "PASS") == 0)
        login_pass(l, args);
    else if (strcmp(verb, "AUTH") == 0)
        login_auth(l, args);
    else if (strcmp(verb, "QUIT") == 0) {
        pop3d_ok(&l->c, "Bye");
        return 1;
    } else if (strcmp(verb, "APOP") == 0)
        pop3d_err(&l->c, "APOP not supported");
    else if (strcmp(verb, "STAT") == 0 || strcmp(verb, "LIST") == 0 ||
             strcmp(verb, "RETR") == 0 || strcmp(verb, "DELE") == 0 ||
             strcmp(verb, "NOOP") == 0 || strcmp(verb, "RSET") == 0 ||
             strcmp(verb, "TOP") == 0 || strcmp(verb, "UIDL") == 0)
        pop3d_err(&l->c, "Not logged in");
    else
        pop3d_err(&l->c, "Unknown command");
    return 0;
}

_Noreturn void pop3d_login_run(const struct pop3d *d, int client_fd,
                               int ctl_fd, int data_fd)
{
    if (privilege_drop(config_get_str(d->cfg, "mail_owner"), NULL, NULL,
                       0) != 0)
        _exit(1);
    struct login l;
    memset(&l, 0, sizeof(l));
    l.d = d;
    anvil_client_init(&l.anvil);
    l.client_fd = client_fd;
    l.data_fd = data_fd;
    stream_init(&l.ctl, ctl_fd, 60 * 1000);
    pop3d_conn_init(&l.c, client_fd, d->timeout_ms);
    pop3d_identify_client(&l.c, client_fd);
    l.trusted = network_list_match(d->trusted, l.c.client_addr, "unknown");
    log_info("connect from %s", l.c.client_id);
    if (d->wrappermode) {
        struct buf error;
        buf_init(&error, 1024);
        if (tls_session_start_server(d->tls, client_fd,
                                     POP3D_TLS_HANDSHAKE_MS, &l.tls,
                                     &error) != TLS_OK) {
            log_info("%s: TLS handshake failed: %s", l.c.client_id,
                     buf_cstr(&error));
            _exit(0);
        }
        buf_free(&error);
        tls_session_attach(l.tls, &l.c.stream);
    }
    pop3d_ok(&l.c, "Postino POP3 server ready");
    struct buf line;
    buf_init(&line, (size_t)d->line_limit + 1);
    for (;;) {
        int rc = pop3d_read_command(&l.c, &line, d->line_limit,
                                    "AUTHORIZATION");
        if (rc == POP3D_GONE)
            login_exit(&l, 0);
        int quit = rc == POP3D_LINE && login_command(&l, buf_cstr(&line));
        if (line.data != NULL)
            explicit_bzero(line.data, line.len);  /* PASS and AUTH lines */
        if (quit)
            break;
        if (l.c.errors >= POP3D_ERROR_LIMIT) {
            pop3d_err(&l.c, "Too many errors");
            break;
        }
    }
    log_info("disconnect from %s", l.c.client_id);
    login_exit(&l, 0);
}
