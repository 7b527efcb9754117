/*
 * network_match - matches a client against a list of networks and host
 * names, as Postfix's mynetworks, in any parameter that names clients.
 *
 * Items (one per list element; white space and commas separate them):
 *     192.0.2.0/24  10.1.2.3         IPv4 network or address
 *     2001:db8::/32  [2001:db8::]/32  IPv6 network, brackets optional
 *     [::1]/128  [::1]  ::1          IPv6 address
 *     mail.example.com               a client whose (verified) name is this
 *     .example.com                   a client whose name ends in it
 *     !192.0.2.7                     exclusion: a match here stops the scan
 *                                    with "no match"
 * The first item that matches decides.  An IPv4-mapped IPv6 client
 * (::ffff:192.0.2.1) is compared as the IPv4 address.  Host bits set in a
 * network ("192.0.2.1/24") are an error, as Postfix reports them, because
 * the administrator probably meant something else.  Names are compared
 * without regard to case and never looked up in DNS: a name item can only
 * match a client whose name the caller already verified.
 *
 * Usage:
 *     struct network_list *nets = network_list_create(items, count, &error);
 *     if (nets == NULL) ... log error: "bad mynetworks item ..." ...
 *     if (network_list_match(nets, "192.0.2.9", "unknown")) ... relay ...
 *     network_list_free(nets);
 */
#ifndef POSTINO_NETWORK_MATCH_H
#define POSTINO_NETWORK_MATCH_H

#include <stddef.h>

#include "buf.h"

struct network_list;

/* NULL on error, with the bad item and the reason appended to error. */
struct network_list *network_list_create(char *const *items, size_t count,
                                         struct buf *error);
/* 1 when the client (numeric address, and its name or "unknown") matches,
 * else 0.  An address that does not parse never matches an address item. */
int network_list_match(const struct network_list *list, const char *address,
                       const char *name);
void network_list_free(struct network_list *list);

/* Parses a numeric IPv4 or IPv6 address (brackets allowed; IPv4-mapped
 * IPv6 becomes IPv4) into 16 bytes: *family 4 or 6.  0, or -1. */
int network_parse_address(const char *text, unsigned char bytes[16],
                          int *family);
/* 1 for 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104, else 0. */
int network_is_loopback(const char *address);

#endif
