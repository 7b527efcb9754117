/*
 * smtpd_peer - who is on the other end: the numeric address and port, and
 * a name that may be trusted.
 *
 * Loopback clients are "localhost" without any lookup.  For the others,
 * with smtpd_peername_lookup = yes (Postfix's default) the name comes from
 * a reverse lookup that a forward lookup of that name confirms (the name
 * must resolve back to the client's address, else anybody who controls a
 * reverse zone could claim any name); it is "unknown" when either step
 * fails or the lookup is off.  How each step ended is kept for
 * reject_unknown_client_hostname (name_status: OK, TEMP, PERM or FORGED)
 * and reject_unknown_reverse_client_hostname (reverse_status: was there a
 * PTR name at all).  The result also says whether the client is in
 * mynetworks.
 *
 * The lookups happen before the greeting, so a name server that does not
 * answer would keep the client waiting as long as the resolver's defaults
 * say (5 s a try, 2 tries, for each step: 20 s and more).
 * smtpd_peer_init(), called once before the privilege drop, reads
 * resolv.conf and caps the timeouts: PEER_DNS_TIMEOUT seconds a try,
 * PEER_DNS_TRIES tries, so an unanswered step costs about 2 s and the
 * client is "unknown" after that.  resolv.conf may ask for less, never for
 * more.  The C library would drop the cap when it reloads a changed
 * resolv.conf, so reloading is off: a change is picked up by the next
 * smtpd process (max_use, max_idle), as with the lookup tables.
 */
#include <errno.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "network_match.h"
#include "smtpd.h"
#include "text.h"

/* Seconds a try of one query, and the number of tries. */
#define PEER_DNS_TIMEOUT 1
#define PEER_DNS_TRIES 2

/* The resolver state is the C library's (per process); see above. */
void smtpd_peer_init(void)
{
    if (res_init() != 0) {
        log_warn("cannot initialize the resolver: client name lookups use "
                 "its defaults");
        return;
    }
    if (_res.retrans > PEER_DNS_TIMEOUT)
        _res.retrans = PEER_DNS_TIMEOUT;
    if (_res.retry > PEER_DNS_TRIES)
        _res.retry = PEER_DNS_TRIES;
#ifdef RES_NORELOAD
    _res.options |= RES_NORELOAD;
#endif
}

/* Lookup errors that may go away by themselves (Postfix's TEMP_AI_ERROR). */
static int smtpd_peer_temporary(int gai_error)
{
    return gai_error == EAI_AGAIN || gai_error == EAI_MEMORY ||
           gai_error == EAI_SYSTEM;
}

/* 1 when one of the addresses in res is addr. */
static int smtpd_peer_has_address(const struct addrinfo *res,
                                  const char *addr)
{
    unsigned char want[16], got[16];
    int want_family, got_family;
    if (network_parse_address(addr, want, &want_family) != 0)
        return 0;
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        char text[NI_MAXHOST];
        if (getnameinfo(ai->ai_addr, ai->ai_addrlen, text, sizeof(text),
                        NULL, 0, NI_NUMERICHOST) != 0)
            continue;
        if (network_parse_address(text, got, &got_family) == 0 &&
            got_family == want_family &&
            memcmp(got, want, want_family == 4 ? 4 : 16) == 0)
            return 1;
    }
    return 0;
}

/* OK when one of name's addresses is the client's, TEMP when the lookup
 * failed for now, FORGED otherwise. */
static enum smtpd_peer_status smtpd_peer_forward_confirms(const char *name,
                                                          const char *addr)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    int err = getaddrinfo(name, NULL, &hints, &res);
    if (err != 0) {
        log_warn("hostname %s does not resolve to address %s: %s", name,
                 addr, err == EAI_SYSTEM ? strerror(errno)
                                         : gai_strerror(err));
        return smtpd_peer_temporary(err) ? SMTPD_PEER_TEMP
                                         : SMTPD_PEER_FORGED;
    }
    int found = smtpd_peer_has_address(res, addr);
    freeaddrinfo(res);
    if (!found) {
        log_warn("hostname %s does not resolve to address %s", name, addr);
        return SMTPD_PEER_FORGED;
    }
    return SMTPD_PEER_OK;
}

static void smtpd_peer_lookup_name(struct smtpd_session *s,
                                   const struct sockaddr *sa, socklen_t len)
{
    char name[NI_MAXHOST];
    int err = getnameinfo(sa, len, name, sizeof(name), NULL, 0,
                          NI_NAMEREQD);
    if (err != 0) {
        s->name_status = s->reverse_status = smtpd_peer_temporary(err)
                                                 ? SMTPD_PEER_TEMP
                                                 : SMTPD_PEER_PERM;
        return;
    }
    if (!smtpd_policy_valid_hostname(name)) {
        log_warn("%s: hostname %s has invalid syntax", s->client_addr, name);
        s->name_status = s->reverse_status = SMTPD_PEER_PERM;
        return;
    }
    s->reverse_status = SMTPD_PEER_OK;
    s->name_status = smtpd_peer_forward_confirms(name, s->client_addr);
    if (s->name_status == SMTPD_PEER_OK)
        (void)text_copy(s->client_name, sizeof(s->client_name), name);
}

void smtpd_peer_identify(struct smtpd_session *s)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    (void)text_copy(s->client_addr, sizeof(s->client_addr), "unknown");
    (void)text_copy(s->client_port, sizeof(s->client_port), "0");
    (void)text_copy(s->client_name, sizeof(s->client_name), "unknown");
    s->name_status = s->reverse_status = SMTPD_PEER_PERM;
    if (getpeername(s->fd, (struct sockaddr *)&ss, &len) == 0) {
        char host[NI_MAXHOST], port[NI_MAXSERV];
        if (getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host),
                        port, sizeof(port),
                        NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
            /* "::ffff:192.0.2.1" is logged as Postfix does: 192.0.2.1 */
            const char *shown = strncmp(host, "::ffff:", 7) == 0 &&
                                strchr(host + 7, ':') == NULL
                                    ? host + 7 : host;
            (void)text_copy(s->client_addr, sizeof(s->client_addr), shown);
            (void)text_copy(s->client_port, sizeof(s->client_port), port);
        }
        if (network_is_loopback(s->client_addr)) {
            (void)text_copy(s->client_name, sizeof(s->client_name),
                            "localhost");
            s->name_status = s->reverse_status = SMTPD_PEER_OK;
        } else if (s->smtpd->peername_lookup) {
            smtpd_peer_lookup_name(s, (struct sockaddr *)&ss, len);
        }
    } else {
        log_warn("getpeername: %s", strerror(errno));
    }
    struct buf id;
    buf_init(&id, sizeof(s->client_id) - 1);
    (void)buf_printf(&id, "%s[%s]", s->client_name, s->client_addr);
    (void)text_copy(s->client_id, sizeof(s->client_id), buf_cstr(&id));
    buf_free(&id);
    s->in_mynetworks = s->smtpd->mynetworks != NULL &&
        network_list_match(s->smtpd->mynetworks, s->client_addr,
                           s->client_name);
}
