/*
 * smtp.h - what the modules of the SMTP delivery agent share.
 *
 *   smtp.c          the daemon: one delivery request at a time, the route
 *                   to the next hop, the results, the cached session
 *   smtp_dns.c      MX and address lookups (libresolv or getaddrinfo)
 *   smtp_bind.c     the local address of outgoing connections
 *   smtp_session.c  one SMTP connection: connect, greeting, EHLO/HELO,
 *                   STARTTLS, replies, RSET, QUIT
 *   smtp_transaction.c  the mail transaction: MAIL, RCPT, DATA
 *   smtp_content.c  the message on the wire: CRLF, dot-stuffing, long
 *                   lines, 8-bit to quoted-printable (smtp_content.h)
 */
#ifndef POSTINO_SMTP_H
#define POSTINO_SMTP_H

#include <stddef.h>
#include <sys/socket.h>

#include "buf.h"
#include "config.h"
#include "delivery_request.h"
#include "stream.h"
#include "tls.h"

#define SMTP_HOST_MAX 256
#define SMTP_ADDR_TEXT_MAX 64
#define SMTP_REPLY_LINE_MAX 4096
#define SMTP_REPLY_MAX (16 * 1024)
#define SMTP_MX_MAX 100

/* ---- configuration (read once, at init) -------------------------------- */

/* A local address to bind to; len 0: none (the kernel chooses). */
struct smtp_bind {
    struct sockaddr_storage sa;
    socklen_t len;
    char text[SMTP_ADDR_TEXT_MAX];
};

struct smtp_config {
    const char *myhostname;
    const char *helo_name;
    int use_dns;                 /* smtp_host_lookup = dns */
    int want_ipv4, want_ipv6;    /* inet_protocols */
    enum tls_level tls_level;
    struct tls_context *tls;     /* NULL at level none */
    long connect_timeout, helo_timeout, starttls_timeout, mail_timeout,
        rcpt_timeout, data_init_timeout, data_xfer_timeout,
        data_done_timeout, quit_timeout, rset_timeout;
    long cache_time_limit;       /* smtp_connection_cache_time_limit */
    long line_length_limit;      /* smtp_line_length_limit */
    long mx_address_limit;
    long mx_session_limit;
    /* This host's own addresses (inet_interfaces, proxy_interfaces). */
    struct sockaddr_storage *own;
    size_t own_count;
    int own_all;                 /* inet_interfaces = all: ask the kernel */
    /* smtp_bind_address, smtp_bind_address6 (smtp_bind.c). */
    struct smtp_bind bind4, bind6;
};

/* ---- DNS (smtp_dns.c) ------------------------------------------------- */

/* Reads resolv.conf (before the privilege drop).  0 or -1. */
int smtp_dns_init(void);

/* One address to try, in order. */
struct smtp_target {
    char host[SMTP_HOST_MAX];           /* the MX host name */
    int pref;                           /* MX preference; -1: no MX */
    struct sockaddr_storage sa;
    socklen_t salen;
    char addr[SMTP_ADDR_TEXT_MAX];      /* "192.0.2.1", "2001:db8::1" */
};

enum smtp_dns_status {
    SMTP_DNS_OK = 0,
    SMTP_DNS_NOTFOUND,   /* NXDOMAIN or no address: bounce 5.1.2 */
    SMTP_DNS_TEMP,       /* try again later: defer 4.4.3 */
    SMTP_DNS_NULLMX,     /* RFC 7505: bounce 5.1.10 */
    SMTP_DNS_LOOP,       /* this host is the best MX: defer */
};

struct smtp_route {
    struct smtp_target *targets;
    size_t count;
};

/* The targets for host (a domain, or with no_mx a host name or address
 * literal), in order: MX by preference (equal ones shuffled), each
 * host's addresses; MX hosts that are this host, and all less preferred,
 * left out.  On failure why has Postfix's text ("Host or domain name not
 * found. Name service error for name=... type=MX: Host not found"). */
enum smtp_dns_status smtp_dns_route(const struct smtp_config *cfg,
                                    const char *host, int no_mx, int port,
                                    struct smtp_route *route,
                                    struct buf *why);
void smtp_route_free(struct smtp_route *route);
/* True when sa is one of this host's addresses. */
int smtp_dns_is_own_address(const struct smtp_config *cfg,
                            const struct sockaddr *sa);
/* Sets cfg->own from inet_interfaces and proxy_interfaces. */
void smtp_dns_own_addresses(struct smtp_config *cfg, struct config *conf);
/* A numeric address ("192.0.2.1", "[2001:db8::1]", "::1") as a
 * sockaddr; -1 when it is not one. */
int smtp_dns_parse_numeric(const char *text, struct sockaddr_storage *ss,
                           socklen_t *len);

/* ---- the local address (smtp_bind.c) ---------------------------------- */

/* Sets cfg->bind4 and cfg->bind6 from smtp_bind_address and
 * smtp_bind_address6, or inet_interfaces when they are empty.  A value
 * that is not an address of its family is fatal. */
void smtp_bind_init(struct smtp_config *cfg, struct config *conf);
/* Binds fd, a socket of family, to the local address set for family, if
 * any.  NULL when done (or nothing to do); else that address's text, with
 * errno set by bind(). */
const char *smtp_bind_socket(const struct smtp_config *cfg, int fd,
                             int family);

/* ---- one SMTP session (smtp_session.c) ---------------------------------- */

enum {
    SMTP_FEATURE_ESMTP = 1 << 0,
    SMTP_FEATURE_PIPELINING = 1 << 1,
    SMTP_FEATURE_SIZE = 1 << 2,
    SMTP_FEATURE_8BITMIME = 1 << 3,
    SMTP_FEATURE_SMTPUTF8 = 1 << 4,
    SMTP_FEATURE_DSN = 1 << 5,
    SMTP_FEATURE_STARTTLS = 1 << 6,
};

struct smtp_reply {
    int code;                 /* 0: none (connection lost or timed out) */
    char dsn[16];             /* "5.1.1", from the reply or made up */
    struct buf text;          /* every line, joined with spaces */
};

struct smtp_session {
    int fd;
    struct stream stream;
    struct tls_session *tls;
    char host[SMTP_HOST_MAX];
    char addr[SMTP_ADDR_TEXT_MAX];
    int port;
    char relay[SMTP_HOST_MAX + SMTP_ADDR_TEXT_MAX + 16]; /* host[addr]:port */
    char nexthop[SMTP_HOST_MAX + 16];  /* what the cache is keyed on */
    unsigned features;
    long size_limit;          /* SIZE from EHLO; 0: none */
    double idle_since;        /* when it went into the cache */
    int broken;               /* timed out or lost: not for reuse */
    int quick_quit;           /* QUIT without waiting long for 221 */
};

/* How a session failed before the mail transaction. */
enum smtp_stage_status {
    SMTP_STAGE_OK = 0,
    SMTP_STAGE_RETRY,        /* try the next address (4xx, connect) */
    SMTP_STAGE_FAIL_5XX,     /* 5xx: bounce if no other address */
    SMTP_STAGE_TLS_PLAIN,    /* TLS failed at "may": retry in plaintext */
};

/* Opens a session to t (connect, greeting, EHLO/HELO, STARTTLS).  On a
 * failure *session is NULL and why/reply say what happened. */
enum smtp_stage_status smtp_session_open(const struct smtp_config *cfg,
                                         const struct smtp_target *t,
                                         int port, int use_tls,
                                         struct smtp_session **session,
                                         struct smtp_reply *reply,
                                         struct buf *why);
/* Sends RSET on a cached session; 0 when it answered 250. */
int smtp_session_rset(const struct smtp_config *cfg, struct smtp_session *s);
/* QUIT (unless broken), close, free.  NULL is fine. */
void smtp_session_close(const struct smtp_config *cfg, struct smtp_session *s);

/* Sends one command (with CRLF) without flushing. */
int smtp_session_send(struct smtp_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Flushes and reads one reply, within timeout seconds. */
int smtp_session_reply(struct smtp_session *s, long timeout,
                       struct smtp_reply *reply);
/* "lost connection with H[A] while ..." or "conversation with H[A] timed
 * out while ..." for the stream's error. */
void smtp_session_io_error(const struct smtp_session *s, int rc,
                           const char *stage, struct buf *why);

/* "host H[A] said: REPLY (in reply to COMMAND command)". */
void smtp_session_said(const struct smtp_session *s,
                       const struct smtp_reply *r, const char *command,
                       struct buf *why);

void smtp_reply_init(struct smtp_reply *r);
void smtp_reply_free(struct smtp_reply *r);

/* ---- the mail transaction (smtp_transaction.c) ------------------------- */

struct smtp_message {
    struct delivery_request *req;
    struct delivery_content content;
    int eight_bit;            /* the content has 8-bit bytes */
    int smtputf8;             /* the request says smtputf8=1 */
    int envelope_utf8;        /* sender or a recipient is not ASCII */
};

/* What a transaction left undone: recipients without a result get it
 * from the caller (next MX, or deferred with why). */
enum smtp_tx_status {
    SMTP_TX_DONE = 0,        /* every recipient has its result */
    SMTP_TX_RETRY,           /* MAIL refused 4xx: try the next address */
    SMTP_TX_FAIL_5XX,        /* MAIL refused 5xx */
    SMTP_TX_BROKEN,          /* I/O failure; remaining deferred with why */
};

enum smtp_tx_status smtp_transaction(const struct smtp_config *cfg,
                                     struct smtp_session *s,
                                     struct smtp_message *msg,
                                     struct smtp_reply *reply,
                                     struct buf *why);

/* The whole content converted to 7-bit (smtp_content.h); an
 * smtp_mime_status. */
int smtp_message_downgrade(struct smtp_message *msg, struct buf *out);

/* A result for every recipient not yet answered. */
void smtp_reply_rest(struct smtp_message *msg, enum delivery_status status,
                     const char *dsn, const char *text,
                     const struct smtp_session *s, const char *diagnostic,
                     int destination_failure);

#endif
