/*
 * address_resolve - where one recipient address goes: its address class
 * and the (transport, nexthop) pair that qmgr hands it to, as Postfix's
 * trivial-rewrite resolves it.
 *
 * The domain is what follows the last '@' outside a quoted local part,
 * folded to lower case, with one trailing dot removed; an address without
 * one is local.  The class comes from the domain:
 *     mydestination, or an address literal [ip] of this host (loopback,
 *     the inet_interfaces addresses)    local    local_transport
 *     virtual_mailbox_domains           virtual  virtual_transport
 *     relay_domains (and subdomains)    relay    relay_transport
 *     anything else                     default  default_transport
 * A class transport is written "transport[:nexthop]"; without a nexthop
 * the nexthop is $myhostname (local), the domain (virtual, relay), or
 * relayhost when set and else the domain (default).
 *
 * transport_maps is consulted first, for every class, with the keys
 * "user@domain", "domain", ".parent.domain" for each parent domain, and
 * "*"; the first table with an entry decides.  A value "transport:nexthop"
 * replaces the class's transport and nexthop; an empty transport keeps
 * the class's transport and an empty nexthop the default nexthop, as in
 * Postfix ("error:5.1.2 text", "retry:", "local:", ":[host]:25",
 * "smtp:[host]:port").  A table error is reported (the caller defers),
 * never guessed around.
 *
 * Usage:
 *     struct address_resolver *r = address_resolver_create(cfg, &error);
 *     if (error.len) log_warn(...);          (broken tables: lookups fail)
 *     struct address_resolution res;
 *     address_resolution_init(&res);
 *     if (address_resolve(r, "joe@example.com", &res, &error) != 0)
 *         ... defer 4.3.0, error says why ...
 *     use(res.cls, res.transport.data, res.nexthop.data);
 *     address_resolution_free(&res);
 *     address_resolver_free(r);
 */
#ifndef POSTINO_ADDRESS_RESOLVE_H
#define POSTINO_ADDRESS_RESOLVE_H

#include "buf.h"
#include "config.h"

enum address_class {
    ADDRESS_CLASS_LOCAL,
    ADDRESS_CLASS_VIRTUAL,
    ADDRESS_CLASS_RELAY,
    ADDRESS_CLASS_DEFAULT,
};

struct address_resolution {
    enum address_class cls;
    struct buf transport;  /* "local", "smtp", "error" ... */
    struct buf nexthop;    /* "example.com", "[host]:port", error text */
    struct buf domain;     /* folded; "" when the address has none */
};

struct address_resolver;

/* Opens the tables and domain lists the configuration names.  NULL only
 * when out of memory; problems opening tables are appended to error and
 * make the lookups that reach them fail. */
struct address_resolver *address_resolver_create(struct config *cfg,
                                                 struct buf *error);
void address_resolver_free(struct address_resolver *r);

void address_resolution_init(struct address_resolution *res);
void address_resolution_free(struct address_resolution *res);
/* 0 and res filled, or -1 with the reason appended to error (a table
 * failed; res is then not to be used). */
int address_resolve(struct address_resolver *r, const char *address,
                    struct address_resolution *res, struct buf *error);
/* The class of a domain (folded, without a trailing dot; "" is local)
 * from mydestination, the [ip] literals of this host,
 * virtual_mailbox_domains and relay_domains alone: what smtpd's relay and
 * recipient checks need.  0, or -1 with the reason appended to error. */
int address_resolve_class(struct address_resolver *r, const char *domain,
                          enum address_class *cls, struct buf *error);
/* The folded domain of address into out ("" for none).  0, or -1 when too
 * long. */
int address_resolve_domain(const char *address, struct buf *out);
const char *address_class_name(enum address_class cls);

#endif
