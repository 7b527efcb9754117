/*
 * config_params - the table of every main.cf parameter Postino knows: its
 * name, type, default and bounds, and the two defaults computed at run
 * time (myhostname, mydomain).
 *
 * Usage: a program never reads the table directly; config.c looks names
 * up in it (config_param_lookup) and config_check() checks every entry.
 * To add a parameter, add one line below; a default may use $name.
 * Bounds are min..max for INT, TIME (in seconds) and SIZE (in bytes).
 */
#include "config.h"

#include "postino_paths.h"
#include "text.h"

#include <limits.h>
#include <string.h>
#include <unistd.h>

#define MINUTE 60L
#define HOUR (60 * MINUTE)
#define DAY (24 * HOUR)
#define WEEK (7 * DAY)

#define PARAM_STRING(name, value) \
    { name, CONFIG_STRING, value, 0, 0, 0, NULL }
#define PARAM_LIST(name, value) \
    { name, CONFIG_LIST, value, 0, 0, 0, NULL }
#define PARAM_BOOL(name, value) \
    { name, CONFIG_BOOL, value, 0, 1, 0, NULL }
#define PARAM_INT(name, value, min, max) \
    { name, CONFIG_INT, value, min, max, 0, NULL }
#define PARAM_SIZE(name, value, min, max) \
    { name, CONFIG_SIZE, value, min, max, 0, NULL }
/* A bare number is in seconds, or in unit for PARAM_TIME_UNIT. */
#define PARAM_TIME(name, value, min, max) \
    { name, CONFIG_TIME, value, min, max, 's', NULL }
#define PARAM_TIME_UNIT(name, value, min, max, unit) \
    { name, CONFIG_TIME, value, min, max, unit, NULL }
#define PARAM_COMPUTED(name, fn) \
    { name, CONFIG_STRING, NULL, 0, 0, 0, fn }

/* The host name as the system knows it; no DNS lookup. */
static int default_myhostname(struct config *cfg, char *out, size_t size)
{
    (void)cfg;
    if (size < 2 || gethostname(out, size - 1) != 0)
        return -1;
    out[size - 1] = '\0';
    return out[0] != '\0' ? 0 : -1;
}

/* myhostname without its first label; "localdomain" when it has no dot. */
static int default_mydomain(struct config *cfg, char *out, size_t size)
{
    const char *host = config_try_get_str(cfg, "myhostname");
    if (host == NULL)
        return -1;
    const char *dot = strchr(host, '.');
    if (dot == NULL || dot[1] == '\0')
        return text_copy(out, size, "localdomain");
    return text_copy(out, size, dot + 1);
}

const struct config_param_def config_param_table[] = {
    /* Where things are. */
    PARAM_STRING("config_directory", POSTINO_CONFIG_DIR),
    PARAM_STRING("queue_directory", POSTINO_QUEUE_DIR),
    PARAM_STRING("daemon_directory", POSTINO_DAEMON_DIR),
    PARAM_STRING("command_directory", POSTINO_COMMAND_DIR),
    PARAM_STRING("data_directory", POSTINO_DATA_DIR),
    PARAM_STRING("process_id_directory", "pid"),

    /* Who runs things, and logging. */
    PARAM_STRING("mail_owner", "postino"),
    PARAM_STRING("setgid_group", "postdrop"),
    PARAM_STRING("default_privs", "nobody"),
    PARAM_STRING("mail_name", "Postino"),
    PARAM_STRING("syslog_name", "postino"),
    PARAM_STRING("syslog_facility", "mail"),
    PARAM_STRING("maillog_file", ""),

    /* Who we are, and what mail is ours. */
    PARAM_COMPUTED("myhostname", default_myhostname),
    PARAM_COMPUTED("mydomain", default_mydomain),
    PARAM_STRING("myorigin", "$myhostname"),
    PARAM_BOOL("append_at_myorigin", "yes"),
    PARAM_LIST("mydestination", "$myhostname, localhost.$mydomain, localhost"),
    PARAM_LIST("mynetworks", "127.0.0.0/8 [::1]/128"),
    PARAM_LIST("inet_interfaces", "all"),
    PARAM_LIST("inet_protocols", "all"),
    PARAM_STRING("recipient_delimiter", ""),
    PARAM_LIST("alias_maps", "hash:/etc/aliases"),
    PARAM_LIST("alias_database", "$alias_maps"),

    /* Local delivery (daemons/local). */
    PARAM_STRING("home_mailbox", ""),
    PARAM_STRING("mail_spool_directory", "/var/mail"),
    PARAM_LIST("forward_path", "$home/.forward"),
    PARAM_LIST("allow_mail_to_commands", "alias, forward"),
    PARAM_LIST("allow_mail_to_files", "alias, forward"),
    PARAM_TIME("command_time_limit", "1000s", 1, DAY),

    /* Processes: the master and the daemon skeleton. */
    PARAM_INT("default_process_limit", "100", 1, 100000),
    PARAM_INT("max_use", "100", 1, 1000000),
    PARAM_TIME("max_idle", "100s", 1, DAY),
    PARAM_TIME("service_throttle_time", "60s", 1, HOUR),
    PARAM_TIME("daemon_timeout", "18000s", 1, WEEK),
    PARAM_TIME("ipc_timeout", "3600s", 1, DAY),

    /* Mail. */
    PARAM_INT("line_length_limit", "2048", 80, 1024L * 1024),
    PARAM_SIZE("message_size_limit", "10240000", 0, LONG_MAX),
    PARAM_TIME_UNIT("maximal_queue_lifetime", "5d", 0, 100 * DAY, 'd'),
    PARAM_BOOL("soft_bounce", "no"),

    /* The bounce daemon: delivery status notices. */
    PARAM_SIZE("bounce_size_limit", "50000", 1, LONG_MAX),
    PARAM_STRING("2bounce_notice_recipient", "postmaster"),
    PARAM_STRING("bounce_notice_recipient", "postmaster"),
    PARAM_STRING("double_bounce_sender", "double-bounce"),
    PARAM_LIST("notify_classes", "resource, software"),

    /* The virtual delivery agent. */
    PARAM_STRING("virtual_mailbox_base", ""),
    PARAM_LIST("virtual_uid_maps", ""),
    PARAM_LIST("virtual_gid_maps", ""),
    PARAM_INT("virtual_minimum_uid", "100", 0, LONG_MAX),
    PARAM_SIZE("virtual_mailbox_limit", "51200000", 0, LONG_MAX),
    PARAM_LIST("virtual_mailbox_limit_maps", ""),

    /* The cleanup daemon: header, size and hop limits, content checks,
     * address rewriting. */
    PARAM_SIZE("header_size_limit", "102400", 1024, 1024L * 1024 * 1024),
    PARAM_INT("hopcount_limit", "50", 1, 10000),
    PARAM_LIST("header_checks", ""),
    PARAM_LIST("mime_header_checks", "$header_checks"),
    PARAM_LIST("nested_header_checks", "$header_checks"),
    PARAM_LIST("body_checks", ""),
    PARAM_LIST("canonical_maps", ""),
    PARAM_LIST("sender_canonical_maps", ""),
    PARAM_LIST("recipient_canonical_maps", ""),
    PARAM_LIST("virtual_alias_maps", ""),
    PARAM_INT("virtual_alias_recursion_limit", "1000", 1, 100000),
    PARAM_INT("virtual_alias_expansion_limit", "1000", 1, 100000),

    /* The SMTP server. */
    PARAM_STRING("smtpd_banner", "$myhostname ESMTP $mail_name"),
    PARAM_TIME("smtpd_timeout", "300s", 1, DAY),
    PARAM_INT("smtpd_recipient_limit", "1000", 1, 10000000),
    PARAM_BOOL("disable_vrfy_command", "no"),
    PARAM_STRING("smtpd_tls_cert_file", ""),
    PARAM_STRING("smtpd_tls_key_file", ""),
    PARAM_STRING("smtpd_tls_security_level", ""),
    PARAM_BOOL("smtpd_tls_wrappermode", "no"),
    PARAM_BOOL("smtpd_tls_auth_only", "yes"),
    PARAM_INT("smtpd_tls_loglevel", "0", 0, 4),
    PARAM_BOOL("smtpd_sasl_auth_enable", "no"),
    PARAM_LIST("smtpd_sasl_password_maps", ""),
    PARAM_BOOL("smtpd_peername_lookup", "yes"),
    PARAM_INT("unknown_client_reject_code", "450", 400, 599),
    PARAM_BOOL("smtpd_helo_required", "no"),
    PARAM_INT("smtpd_max_line_length", "998", 78, 1024L * 1024),
    PARAM_TIME("smtpd_data_timeout", "3600s", 1, DAY),
    PARAM_INT("smtpd_hard_error_limit", "20", 1, 100000),
    PARAM_INT("smtpd_junk_command_limit", "100", 1, 100000),
    PARAM_BOOL("smtpd_forbid_unauth_pipelining", "yes"),
    PARAM_INT("smtpd_soft_error_limit", "10", 1, 100000),
    PARAM_TIME("smtpd_error_sleep_time", "1s", 0, HOUR),
    PARAM_LIST("smtpd_client_restrictions", ""),
    PARAM_LIST("smtpd_helo_restrictions", ""),
    PARAM_LIST("smtpd_sender_restrictions", ""),
    PARAM_LIST("smtpd_relay_restrictions",
               "permit_mynetworks, permit_sasl_authenticated, "
               "reject_unauth_destination"),
    PARAM_LIST("smtpd_recipient_restrictions", ""),
    PARAM_BOOL("smtpd_reject_unlisted_recipient", "yes"),
    PARAM_BOOL("smtpd_delay_reject", "yes"),
    PARAM_LIST("local_recipient_maps", "unix:passwd.byname $alias_maps"),
    PARAM_LIST("relay_domains", ""),
    PARAM_LIST("relay_recipient_maps", ""),
    PARAM_LIST("virtual_alias_domains", "$virtual_alias_maps"),
    PARAM_LIST("virtual_mailbox_maps", ""),
    PARAM_LIST("virtual_mailbox_domains", "$virtual_mailbox_maps"),

    /* Per-client limits: smtpd enforces them with the counts of anvil. */
    PARAM_INT("smtpd_client_connection_count_limit", "50", 0, 1000000),
    PARAM_INT("smtpd_client_connection_rate_limit", "0", 0, 100000000),
    PARAM_INT("smtpd_client_message_rate_limit", "0", 0, 100000000),
    PARAM_INT("smtpd_client_recipient_rate_limit", "0", 0, 100000000),
    PARAM_LIST("smtpd_client_event_limit_exceptions", "$mynetworks"),
    PARAM_TIME("anvil_rate_time_unit", "60s", 1, DAY),
    PARAM_TIME("anvil_status_update_time", "600s", 1, DAY),

    /* Address resolution (lib/address_resolve.c). */
    PARAM_LIST("transport_maps", ""),
    PARAM_STRING("local_transport", "local:$myhostname"),
    PARAM_STRING("virtual_transport", "virtual"),
    PARAM_STRING("relay_transport", "relay"),
    PARAM_STRING("default_transport", "smtp"),
    PARAM_STRING("relayhost", ""),

    /* The queue manager.  TRANSPORT_destination_concurrency_limit and
     * TRANSPORT_destination_recipient_limit of other transports are read
     * by qmgr by name. */
    PARAM_TIME("queue_run_delay", "300s", 1, DAY),
    PARAM_TIME("minimal_backoff_time", "300s", 1, DAY),
    PARAM_TIME("maximal_backoff_time", "4000s", 1, WEEK),
    PARAM_TIME_UNIT("bounce_queue_lifetime", "5d", 0, 100 * DAY, 'd'),
    PARAM_TIME_UNIT("delay_warning_time", "0h", 0, 100 * DAY, 'h'),
    PARAM_INT("qmgr_message_active_limit", "20000", 1, 10000000),
    PARAM_INT("qmgr_message_recipient_limit", "20000", 1, 10000000),
    PARAM_INT("default_destination_recipient_limit", "50", 1, 100000),
    PARAM_INT("default_destination_concurrency_limit", "20", 1, 100000),
    PARAM_INT("initial_destination_concurrency", "5", 1, 100000),
    PARAM_INT("destination_concurrency_failed_cohort_limit", "1", 0, 100000),
    PARAM_INT("local_destination_concurrency_limit", "2", 1, 100000),
    PARAM_INT("local_destination_recipient_limit", "1", 1, 100000),

    /* pop3d (Postfix has no POP3 server: these names are Postino's). */
    PARAM_LIST("pop3d_password_maps", ""),
    PARAM_STRING("pop3d_tls_cert_file", "$smtpd_tls_cert_file"),
    PARAM_STRING("pop3d_tls_key_file", "$smtpd_tls_key_file"),
    PARAM_BOOL("pop3d_tls_wrappermode", "no"),
    PARAM_LIST("pop3d_trusted_networks", ""),
    PARAM_TIME("pop3d_timeout", "600s", 1, DAY),
    PARAM_INT("pop3d_max_line_length", "255", 64, 65536),
    PARAM_INT("pop3d_max_messages", "100000", 1, 10000000),
    PARAM_TIME("pop3d_auth_failure_delay", "1s", 0, MINUTE),
    PARAM_INT("pop3d_auth_failure_limit", "5", 1, 1000),

    /* The SMTP client (the smtp and relay delivery agents). */
    PARAM_LIST("proxy_interfaces", ""),
    PARAM_STRING("smtp_helo_name", "$myhostname"),
    PARAM_STRING("smtp_host_lookup", "dns"),
    PARAM_STRING("smtp_bind_address", ""),
    PARAM_STRING("smtp_bind_address6", ""),
    PARAM_STRING("smtp_tls_security_level", "may"),
    PARAM_STRING("smtp_tls_CAfile", ""),
    PARAM_TIME("smtp_connect_timeout", "30s", 1, HOUR),
    PARAM_TIME("smtp_helo_timeout", "300s", 1, DAY),
    PARAM_TIME("smtp_starttls_timeout", "300s", 1, DAY),
    PARAM_TIME("smtp_mail_timeout", "300s", 1, DAY),
    PARAM_TIME("smtp_rcpt_timeout", "300s", 1, DAY),
    PARAM_TIME("smtp_data_init_timeout", "120s", 1, DAY),
    PARAM_TIME("smtp_data_xfer_timeout", "180s", 1, DAY),
    PARAM_TIME("smtp_data_done_timeout", "600s", 1, DAY),
    PARAM_TIME("smtp_rset_timeout", "20s", 1, DAY),
    PARAM_TIME("smtp_quit_timeout", "300s", 1, DAY),
    PARAM_TIME("smtp_connection_cache_time_limit", "2s", 0, HOUR),
    PARAM_INT("smtp_line_length_limit", "999", 0, 1024L * 1024),
    PARAM_INT("smtp_mx_address_limit", "5", 0, 100),
    PARAM_INT("smtp_mx_session_limit", "2", 0, 100),

    { NULL, CONFIG_STRING, NULL, 0, 0, 0, NULL },
};

const struct config_param_def *config_param_lookup(const char *name)
{
    for (const struct config_param_def *p = config_param_table; p->name; p++)
        if (strcmp(p->name, name) == 0)
            return p;
    return NULL;
}
