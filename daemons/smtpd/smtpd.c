/*
 * smtpd - the SMTP server's main: settings and tables are opened before the
 * privilege drop, then each connection is one session (smtpd_session.c).
 *
 * Everything a session needs from the file system is opened here, as root
 * when the master runs as root: the TLS certificate and key (which may be
 * readable by root only), the password table and every lookup table.  A
 * chrooted smtpd (master.cf chroot column y) therefore works without
 * copies of them in the queue directory; Berkeley DB tables that are
 * rebuilt later are picked up only when the path still resolves inside the
 * chroot, otherwise the opened version stays in use until the process
 * exits (max_use, max_idle), as Postfix's proxymap-less chroot does.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"
#include "smtpd.h"
#include "text.h"

static struct smtpd smtpd_settings;

static enum smtpd_tls_level smtpd_tls_level(struct config *cfg)
{
    const char *level = config_get_str(cfg, "smtpd_tls_security_level");
    if (level[0] == '\0' || strcmp(level, "none") == 0)
        return SMTPD_TLS_NONE;
    if (strcmp(level, "may") == 0)
        return SMTPD_TLS_MAY;
    if (strcmp(level, "encrypt") == 0)
        return SMTPD_TLS_ENCRYPT;
    log_fatal("smtpd_tls_security_level = %s: expected none, may or "
              "encrypt", level);
}

/* The certificate; without one TLS is off (and encrypt or wrappermode
 * cannot work, which is fatal: master throttles us and the log says why). */
static void smtpd_open_tls(struct smtpd *d)
{
    const char *cert = config_get_str(d->cfg, "smtpd_tls_cert_file");
    const char *key = config_get_str(d->cfg, "smtpd_tls_key_file");
    int needed = d->tls_level == SMTPD_TLS_ENCRYPT || d->tls_wrappermode;
    if (cert[0] == '\0') {
        if (needed)
            log_fatal("TLS is required (smtpd_tls_security_level=encrypt or "
                      "smtpd_tls_wrappermode=yes) but smtpd_tls_cert_file "
                      "is not set");
        d->tls_level = SMTPD_TLS_NONE;
        return;
    }
    if (d->tls_level == SMTPD_TLS_NONE && !d->tls_wrappermode)
        return;
    struct buf error;
    buf_init(&error, 4096);
    d->tls = tls_server_context_create(cert, key[0] ? key : cert, NULL,
                                       &error);
    if (d->tls == NULL) {
        if (needed)
            log_fatal("cannot load TLS certificate: %s", buf_cstr(&error));
        log_warn("cannot load TLS certificate: %s; STARTTLS is not offered",
                 buf_cstr(&error));
        d->tls_level = SMTPD_TLS_NONE;
    }
    buf_free(&error);
}

static void smtpd_open_passwords(struct smtpd *d)
{
    if (!d->sasl_enable)
        return;
    const char *maps = config_get_str(d->cfg, "smtpd_sasl_password_maps");
    if (maps[0] == '\0') {
        log_warn("smtpd_sasl_auth_enable = yes but smtpd_sasl_password_maps "
                 "is empty: AUTH is not offered");
        d->sasl_enable = 0;
        return;
    }
    struct buf error;
    buf_init(&error, 4096);
    d->sasl_passwords = map_list_open(maps, 0, &error);
    if (d->sasl_passwords == NULL)
        log_fatal("out of memory");
    if (error.len > 0)
        log_warn("smtpd_sasl_password_maps: %s", buf_cstr(&error));
    buf_free(&error);
}

static void smtpd_read_settings(struct smtpd *d, struct server *srv)
{
    struct config *cfg = srv->cfg;
    d->cfg = cfg;
    d->service = srv->service_name;
    d->myhostname = config_get_str(cfg, "myhostname");
    d->banner = config_get_str(cfg, "smtpd_banner");
    d->recipient_delimiter = config_get_str(cfg, "recipient_delimiter");
    d->message_size_limit = config_get_size(cfg, "message_size_limit");
    d->recipient_limit = config_get_int(cfg, "smtpd_recipient_limit");
    d->line_limit = config_get_int(cfg, "line_length_limit");
    d->data_line_limit = config_get_int(cfg, "smtpd_max_line_length");
    long timeout = config_get_time(cfg, "smtpd_timeout");
    d->timeout_ms = (int)(timeout > 86400 ? 86400000 : timeout * 1000);
    d->data_timeout = config_get_time(cfg, "smtpd_data_timeout");
    d->hard_error_limit = config_get_int(cfg, "smtpd_hard_error_limit");
    d->soft_error_limit = config_get_int(cfg, "smtpd_soft_error_limit");
    d->error_sleep = config_get_time(cfg, "smtpd_error_sleep_time");
    d->junk_command_limit = config_get_int(cfg, "smtpd_junk_command_limit");
    d->forbid_unauth_pipelining =
        config_get_bool(cfg, "smtpd_forbid_unauth_pipelining");
    d->disable_vrfy = config_get_bool(cfg, "disable_vrfy_command");
    d->peername_lookup = config_get_bool(cfg, "smtpd_peername_lookup");
    d->unknown_client_reject_code =
        (int)config_get_int(cfg, "unknown_client_reject_code");
    d->helo_required = config_get_bool(cfg, "smtpd_helo_required");
    d->reject_unlisted_recipient =
        config_get_bool(cfg, "smtpd_reject_unlisted_recipient");
    d->delay_reject = config_get_bool(cfg, "smtpd_delay_reject");
    d->sasl_enable = config_get_bool(cfg, "smtpd_sasl_auth_enable");
    d->tls_auth_only = config_get_bool(cfg, "smtpd_tls_auth_only");
    d->tls_wrappermode = config_get_bool(cfg, "smtpd_tls_wrappermode");
    d->tls_loglevel = (int)config_get_int(cfg, "smtpd_tls_loglevel");
    d->tls_level = smtpd_tls_level(cfg);
}

static void smtpd_pre_drop(struct server *srv)
{
    struct smtpd *d = &smtpd_settings;
    smtpd_read_settings(d, srv);
    smtpd_open_tls(d);
    smtpd_open_passwords(d);
    if (d->peername_lookup)
        smtpd_peer_init();
    smtpd_policy_init(d);
    smtpd_anvil_init(d);
}

static void smtpd_service(struct server *srv, int client_fd)
{
    (void)srv;
    smtpd_session_run(&smtpd_settings, client_fd);
}

int main(int argc, char **argv)
{
    static const struct server_spec spec = {
        .mode = SERVER_SINGLE,
        .pre_drop = smtpd_pre_drop,
        .service = smtpd_service,
    };
    int rc = server_main(argc, argv, &spec);
    smtpd_policy_free(&smtpd_settings);
    network_list_free(smtpd_settings.limit_exceptions);
    map_list_free(smtpd_settings.sasl_passwords);
    tls_context_free(smtpd_settings.tls);
    return rc;
}
