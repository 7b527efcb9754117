/*
 * password - checks a user's password against a table of crypt(3) hashes
 * (libxcrypt), and makes new hashes; smtpd's AUTH and pop3d's USER/PASS
 * and AUTH use it.
 *
 * The table maps a user name to a value whose first white-space-separated
 * field is the hash; any further fields are ignored (kept for later use):
 *     alice   $y$j9T$...$...
 *     bob     $6$salt$...   some other field
 * The user name is looked up as given: the table type decides whether case
 * is folded (hash, btree, texthash and inline fold; see tables/table.h).
 *
 * Hashes taken: yescrypt "$y$", gost-yescrypt "$gy$", scrypt "$7$",
 * bcrypt "$2b$" "$2y$" "$2a$", SHA-512 "$6$", SHA-256 "$5$".
 * Refused with PASSWORD_ERROR and a message telling the administrator to
 * rehash (postino answers 454, so clients retry rather than give up, and
 * the log says what to fix): MD5 "$1$", traditional and extended DES, and
 * anything else libxcrypt counts as legacy or does not know.  A value
 * that starts with "!" or "*" (a locked account, as in shadow(5)) gives
 * PASSWORD_BAD.
 *
 * Timing: an unknown user, a locked account and a refused hash still cost
 * one yescrypt computation (at libxcrypt's default cost, the one
 * password_hash uses), so that the time an answer takes does not tell
 * which users exist.  Hashes are compared in constant time.
 *
 * Secrets: nothing here logs.  Messages in error name the user and the
 * table, never the password or the hash.  Working copies of the hash and
 * of crypt's state are wiped before they are freed.
 *
 * Usage:
 *     struct buf error;
 *     buf_init(&error, 1024);
 *     switch (password_check(users, name, pass, &error)) {
 *     case PASSWORD_OK:           ... 235 2.7.0 ...
 *     case PASSWORD_BAD:
 *     case PASSWORD_UNKNOWN_USER: ... 535 5.7.8 (the same answer) ...
 *     case PASSWORD_ERROR:        ... 454 4.7.0, log error.data ...
 *     }
 *
 *     struct buf hash;
 *     buf_init(&hash, PASSWORD_HASH_MAX);
 *     if (password_hash("secret", &hash) != 0) ... errno ...
 */
#ifndef POSTINO_PASSWORD_H
#define POSTINO_PASSWORD_H

#include "buf.h"
#include "map_list.h"
#include "table.h"

/* The longest hash crypt(3) makes (CRYPT_OUTPUT_SIZE less its NUL). */
#define PASSWORD_HASH_MAX 383
/* The longest password crypt(3) takes (CRYPT_MAX_PASSPHRASE_SIZE less its
 * NUL); a longer one is never right. */
#define PASSWORD_MAX 511

enum password_result {
    PASSWORD_OK = 0,
    PASSWORD_BAD = 1,           /* wrong password, or account locked */
    PASSWORD_UNKNOWN_USER = 2,
    PASSWORD_ERROR = -1,        /* table error, refused or invalid hash, out
                                 * of memory: the reason is in error */
};

/* Looks user up in t and checks password against the hash found.  error
 * gets the reason (appended) for PASSWORD_ERROR, and for PASSWORD_BAD when
 * there is more to say than a wrong password (locked, too long).  A
 * password longer than PASSWORD_MAX is PASSWORD_BAD before any lookup.
 * user longer than TABLE_KEY_MAX is a lookup error (PASSWORD_ERROR). */
int password_check(struct table *t, const char *user, const char *password,
                   struct buf *error);

/* The same over a list of tables: the first table that knows user
 * decides; a table that cannot be opened is PASSWORD_ERROR. */
int password_check_maps(const struct map_list *maps, const char *user,
                        const char *password, struct buf *error);

/* Replaces out's contents with a new yescrypt hash of password (libxcrypt
 * default cost, random salt).  0, or -1 with errno set (ERANGE: password
 * longer than PASSWORD_MAX; EMSGSIZE: out's limit is too small). */
int password_hash(const char *password, struct buf *out);

/* 0 when hash is a form password_check takes, else -1 with the reason
 * appended to why (for postino check and postino-map). */
int password_hash_usable(const char *hash, struct buf *why);

#endif
