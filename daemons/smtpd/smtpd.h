/*
 * smtpd - the SMTP server (RFC 5321 with the ESMTP extensions listed in
 * smtpd_session.c), one connection per process run, under the master.
 *
 * Modules:
 *   smtpd.c          main: reads the configuration and opens every table
 *                    and the TLS certificate before the privilege drop
 *                    (so a chrooted smtpd needs nothing from the file
 *                    system later), then serves connections
 *   smtpd_peer.c     who the client is: address, port, verified name
 *   smtpd_session.c  the command loop, replies, limits and the log
 *   smtpd_command.c  the words of a command line (no I/O: fuzzed alone)
 *   smtpd_policy.c   restriction lists, relay control, recipient checks
 *   smtpd_data.c     DATA and BDAT: the message to cleanup
 *   smtpd_auth.c     AUTH PLAIN and LOGIN (RFC 4954) over TLS
 *   smtpd_anvil.c    per-client connection, message and recipient limits
 *                    with the counts of the anvil service
 * This header holds what they share: the process-wide settings (struct
 * smtpd) and one session's state (struct smtpd_session).
 */
#ifndef POSTINO_SMTPD_H
#define POSTINO_SMTPD_H

#include <stddef.h>

#include "address_resolve.h"
#include "anvil_client.h"
#include "buf.h"
#include "cleanup_client.h"
#include "config.h"
#include "domain_list.h"
#include "map_list.h"
#include "network_match.h"
#include "sasl.h"
#include "smtp_address.h"
#include "smtpd_command.h"
#include "stream.h"
#include "tls.h"

/* RFC 5321 4.5.3.1.5: 512 octets per command line, CRLF included; ESMTP
 * parameters may need more, so the bound is line_length_limit. */
#define SMTPD_NAME_MAX 255
#define SMTPD_ADDR_MAX 64

enum smtpd_tls_level { SMTPD_TLS_NONE, SMTPD_TLS_MAY, SMTPD_TLS_ENCRYPT };

/* One restriction of a list such as smtpd_recipient_restrictions. */
enum smtpd_restriction_kind {
    SMTPD_R_PERMIT,
    SMTPD_R_REJECT,
    SMTPD_R_PERMIT_MYNETWORKS,
    SMTPD_R_PERMIT_SASL,
    SMTPD_R_REJECT_UNAUTH_DESTINATION,
    SMTPD_R_REJECT_UNLISTED_RECIPIENT,
    SMTPD_R_REJECT_NON_FQDN_SENDER,
    SMTPD_R_REJECT_NON_FQDN_RECIPIENT,
    SMTPD_R_REJECT_NON_FQDN_HELO,
    SMTPD_R_REJECT_INVALID_HELO,
    SMTPD_R_CHECK_CLIENT_ACCESS,
    SMTPD_R_CHECK_HELO_ACCESS,
    SMTPD_R_CHECK_SENDER_ACCESS,
    SMTPD_R_CHECK_RECIPIENT_ACCESS,
    SMTPD_R_REJECT_UNKNOWN_CLIENT,
    SMTPD_R_REJECT_UNKNOWN_REVERSE_CLIENT,
    SMTPD_R_UNKNOWN, /* a configuration error: 451 4.3.5 */
};

/* How a client name lookup ended (smtpd_peer.c), as Postfix tells them
 * apart for reject_unknown_client_hostname and
 * reject_unknown_reverse_client_hostname. */
enum smtpd_peer_status {
    SMTPD_PEER_OK,      /* found (and for the name: confirmed) */
    SMTPD_PEER_TEMP,    /* the name service failed for now: try later */
    SMTPD_PEER_PERM,    /* there is no name (or the lookup is off) */
    SMTPD_PEER_FORGED,  /* the name does not resolve back to the address */
};

struct smtpd_restriction {
    enum smtpd_restriction_kind kind;
    char *name;              /* as written, for the log */
    struct map_list *table;  /* check_*_access */
};

struct smtpd_restrictions {
    const char *parameter;   /* "smtpd_recipient_restrictions" */
    struct smtpd_restriction *items;
    size_t count;
};

/* The settings of this process: read once, before the privilege drop. */
struct smtpd {
    struct config *cfg;
    const char *service;
    const char *myhostname;
    const char *banner;
    const char *recipient_delimiter;
    long message_size_limit;   /* 0: none */
    long recipient_limit;
    long line_limit;           /* command line, CRLF not counted */
    long data_line_limit;      /* text line in DATA, CRLF not counted */
    int timeout_ms;
    long data_timeout;         /* seconds for one whole DATA or BDAT */
    long hard_error_limit;
    long soft_error_limit;
    long error_sleep;
    long junk_command_limit;
    int forbid_unauth_pipelining;
    int disable_vrfy;
    int peername_lookup;
    int unknown_client_reject_code; /* reject_unknown_*client_hostname */
    int helo_required;
    int reject_unlisted_recipient;
    int delay_reject;          /* client and sender lists at RCPT */
    int sasl_enable;
    int tls_auth_only;
    int tls_wrappermode;
    int tls_loglevel;
    enum smtpd_tls_level tls_level;
    struct tls_context *tls;   /* NULL: no certificate, no STARTTLS */
    struct map_list *sasl_passwords;
    struct network_list *mynetworks; /* NULL: the item was bad */
    /* mydestination, [ip] literals of this host, virtual_mailbox_domains
     * and relay_domains: the address classes qmgr resolves too. */
    struct address_resolver *resolver;
    struct domain_list *virtual_alias_domains;
    struct map_list *local_recipient_maps;
    struct map_list *virtual_alias_maps;
    struct map_list *virtual_mailbox_maps;
    struct map_list *relay_recipient_maps;
    long connection_count_limit; /* 0: none, for each of the four */
    long connection_rate_limit;
    long message_rate_limit;
    long recipient_rate_limit;
    struct network_list *limit_exceptions; /* NULL: nobody is exempt */
    int relay_unguarded;       /* no reject_unauth_destination anywhere */
    struct smtpd_restrictions client_restrictions;
    struct smtpd_restrictions helo_restrictions;
    struct smtpd_restrictions sender_restrictions;
    struct smtpd_restrictions relay_restrictions;
    struct smtpd_restrictions recipient_restrictions;
};

enum smtpd_bdat_state {
    SMTPD_BDAT_NONE,   /* no BDAT in this transaction */
    SMTPD_BDAT_ACTIVE, /* chunks arriving */
    SMTPD_BDAT_FAILED, /* a chunk failed: the rest is read and refused */
};

struct smtpd_session {
    struct smtpd *smtpd;
    int fd;
    struct stream stream;
    struct tls_session *tls;
    struct buf tls_info;        /* "TLSv1.3 with cipher ..." */

    /* The client (smtpd_peer.c). */
    char client_addr[SMTPD_ADDR_MAX];
    char client_port[8];
    char client_name[SMTPD_NAME_MAX + 1];
    char client_id[SMTPD_NAME_MAX + SMTPD_ADDR_MAX + 4]; /* name[addr] */
    enum smtpd_peer_status name_status;    /* client_name confirmed? */
    enum smtpd_peer_status reverse_status; /* any PTR name at all? */
    int in_mynetworks;
    struct anvil_client anvil;
    int anvil_limited;          /* the client is subject to the limits */

    /* Session state. */
    struct buf helo;            /* "" before HELO/EHLO */
    int esmtp;                  /* EHLO was given */
    unsigned extensions;        /* SMTP_EXT_* announced */
    int sasl_done;
    struct buf sasl_method;
    struct buf sasl_username;
    long errors;
    long junk_commands;         /* smtpd_command_is_junk, since the last
                                 * queued message */
    enum smtpd_command_id previous; /* SMTPD_CMD_COUNT: CONNECT */
    int improper_pipelining;    /* logged once, as Postfix does */
    int last_code;              /* of the last reply, for the counters */
    const char *last_command;   /* "CONNECT", "EHLO", "DATA", ... */
    int quit;                   /* end the session after this reply */
    struct buf line;            /* the current command line */

    /* The transaction: MAIL to end of data or RSET. */
    int in_mail;
    struct buf sender;
    unsigned mail_flags;        /* SMTP_ADDR_* of the sender */
    int smtputf8;
    enum smtp_body body;
    enum smtp_ret ret;
    struct buf envid;
    long declared_size;         /* -1: no SIZE= */
    size_t rcpt_count;          /* accepted recipients */
    int cleanup_open;
    struct cleanup_client cleanup;
    char queue_id[QUEUE_ID_SIZE];
    enum smtpd_bdat_state bdat;
    long bdat_size;             /* content bytes received so far */
    int bdat_cr;                /* a chunk ended in CR: LF may follow */
    struct buf bdat_reply;      /* why the chunks are refused */
    struct smtp_address addr;   /* the parser's scratch */

    unsigned long count_total[SMTPD_CMD_COUNT];
    unsigned long count_ok[SMTPD_CMD_COUNT];
};

/* smtpd_peer.c */
void smtpd_peer_init(void);     /* once, before the privilege drop */
void smtpd_peer_identify(struct smtpd_session *s);

/* smtpd_session.c */
void smtpd_session_run(struct smtpd *smtpd, int fd);
/* Appends one reply line (CRLF added); counts 4xx and 5xx as errors,
 * sleeping smtpd_error_sleep_time past the soft limit. */
void smtpd_reply(struct smtpd_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* After a read timed out: "421 4.4.2 ... timeout exceeded" and the log. */
void smtpd_timeout_reply(struct smtpd_session *s);
/* Logs "NOQUEUE: reject: CMD from client: reply; from=<> to=<> proto=
 * helo=<>" (or with the queue ID) as Postfix does. */
void smtpd_log_reject(struct smtpd_session *s, const char *command,
                      const char *reply, const char *recipient);
/* Forgets the transaction; aborts an open cleanup stream. */
void smtpd_transaction_reset(struct smtpd_session *s);
const char *smtpd_protocol_name(const struct smtpd_session *s);
/* Bytes the client sent that are not read yet (buffered or still in the
 * socket, peeked); up to 100 of them are appended to peek. */
size_t smtpd_unread_input(struct smtpd_session *s, struct buf *peek);

/* smtpd_policy.c */
void smtpd_policy_init(struct smtpd *smtpd);
void smtpd_policy_free(struct smtpd *smtpd);
/* Judges a recipient: 0 to accept, else the reply (without CRLF) is in
 * reply.  address is the parsed forward path. */
int smtpd_policy_recipient(struct smtpd_session *s,
                           const struct smtp_address *rcpt,
                           struct buf *reply);
/* With smtpd_delay_reject = no: the client and sender restrictions at
 * MAIL time (s->sender set); 0 or -1 with the reply. */
int smtpd_policy_sender(struct smtpd_session *s, struct buf *reply);
/* 1 when the HELO name is a syntactically valid host name or literal. */
int smtpd_policy_valid_hostname(const char *name);

/* smtpd_data.c */
void smtpd_data_command(struct smtpd_session *s);
void smtpd_bdat_command(struct smtpd_session *s, const char *arg);
/* Opens the cleanup stream for the transaction and sends the envelope;
 * 0, or -1 after logging (the caller replies 451 4.3.0). */
int smtpd_cleanup_open(struct smtpd_session *s);

/* smtpd_anvil.c */
void smtpd_anvil_init(struct smtpd *smtpd);
/* At connect: 0 to go on, -1 after a 421 (too many connections). */
int smtpd_anvil_connect(struct smtpd_session *s);
/* At MAIL and RCPT: 0 to go on, -1 after a 450 (rate exceeded). */
int smtpd_anvil_message(struct smtpd_session *s);
int smtpd_anvil_recipient(struct smtpd_session *s);
void smtpd_anvil_disconnect(struct smtpd_session *s);

/* smtpd_auth.c */
void smtpd_auth_command(struct smtpd_session *s, const char *arg);

#endif
