/*
 * password - password checks against a table of crypt(3) hashes, and new
 * yescrypt hashes, with libxcrypt's crypt_rn and crypt_gensalt_rn.  See
 * password.h for the table format and the hashes taken or refused.
 *
 *     r = password_check(users, name, pass, &error);   PASSWORD_OK, ...
 *     password_hash("secret", &hash);                  "$y$j9T$..."
 *     password_hash_usable(hash, &why);                0 or -1
 *
 * Every path that does not compute the real hash computes a dummy one,
 * so that the time taken does not show whether the user exists; the
 * struct crypt_data (32 KiB, on the heap) and the copy of the hash are
 * wiped before they are freed.
 */
#include "password.h"

#include <crypt.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

/* A yescrypt hash at libxcrypt's default cost of a password nobody knows,
 * checked against when there is no real hash to check against. */
static const char dummy_hash[] =
    "$y$j9T$EU9e1NXUK3mtU2QmdCy06.$DiawF9LrL6RmktjzW1UpNcJ4stkyhZDGyW0FHUhw98B";

/* The prefixes of the hashes taken.  Order does not matter. */
static const char *const strong_prefixes[] = {
    "$y$", "$gy$", "$7$", "$2b$", "$2y$", "$2a$", "$6$", "$5$",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ----------------------------------------------------------------- crypt */

/* crypt_rn into a fresh heap struct crypt_data; *data must be wiped and
 * freed by the caller (crypt_free) whatever the result.  NULL with errno
 * set on failure. */
static const char *crypt_with(const char *password, const char *setting,
                              struct crypt_data **data)
{
    *data = calloc(1, sizeof(**data));
    if (*data == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    return crypt_rn(password, setting, *data, (int)sizeof(**data));
}

static void crypt_free(struct crypt_data *data)
{
    if (data == NULL)
        return;
    explicit_bzero(data, sizeof(*data));
    free(data);
}

/* Spends the time of one default-cost check; the result is ignored. */
static void dummy_check(const char *password)
{
    struct crypt_data *data = NULL;
    (void)crypt_with(password, dummy_hash, &data);
    crypt_free(data);
}

/* ---------------------------------------------------------- hash checks */

static int has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int is_locked(const char *hash)
{
    return hash[0] == '!' || hash[0] == '*';
}

static int is_strong(const char *hash)
{
    for (size_t i = 0; i < COUNT(strong_prefixes); i++)
        if (has_prefix(hash, strong_prefixes[i]))
            return 1;
    return 0;
}

/* The name of a refused legacy form, for the message; NULL if unknown. */
static const char *legacy_name(const char *hash)
{
    if (has_prefix(hash, "$1$"))
        return "MD5-crypt (\"$1$\")";
    if (hash[0] == '_')
        return "BSDi extended DES";
    if (hash[0] != '$' && strlen(hash) == 13 &&
        crypt_checksalt(hash) == CRYPT_SALT_METHOD_LEGACY)
        return "traditional DES";
    if (hash[0] == '$' && crypt_checksalt(hash) == CRYPT_SALT_METHOD_LEGACY)
        return "a legacy method";
    return NULL;
}

int password_hash_usable(const char *hash, struct buf *why)
{
    if (hash[0] == '\0') {
        (void)buf_append_str(why, "no password hash");
        return -1;
    }
    if (is_locked(hash))
        return 0; /* a locked account: valid, never matches */
    if (is_strong(hash) && crypt_checksalt(hash) != CRYPT_SALT_INVALID)
        return 0;
    const char *legacy = legacy_name(hash);
    if (legacy != NULL) {
        (void)buf_printf(why, "password hash uses %s, refused as too "
                              "weak: replace it with a yescrypt hash "
                              "(\"$y$\", e.g. from mkpasswd -m yescrypt)",
                         legacy);
        return -1;
    }
    (void)buf_append_str(why, "password hash of an unknown or invalid form "
                              "(expected yescrypt \"$y$\", bcrypt \"$2b$\" "
                              "or SHA-512 \"$6$\")");
    return -1;
}

/* ---------------------------------------------------------------- check */

/* Appends "user NAME in TABLE: " with the name cut at 100 octets and its
 * non-printable octets shown as '?' (error text goes to logs).  An inline
 * table shows as "inline:{...}": its name holds every hash. */
static void describe_user(struct buf *error, const struct table *t,
                          const char *user)
{
    (void)buf_append_str(error, "user ");
    for (size_t i = 0; user[i] != '\0' && i < 100; i++) {
        unsigned char c = (unsigned char)user[i];
        (void)buf_append_char(error, c < 0x20 || c == 0x7f ? '?' : (char)c);
    }
    const char *spec = table_spec(t);
    const char *brace = strchr(spec, '{');
    if (brace == NULL)
        (void)buf_printf(error, " in %s: ", spec);
    else
        (void)buf_printf(error, " in %.*s{...}: ", (int)(brace - spec), spec);
}

/* Compares computed with hash in time that depends on their lengths only
 * (which the hash form fixes), not on where they differ. */
static int same_hash(const char *computed, const char *hash)
{
    size_t len = strlen(hash);
    if (strlen(computed) != len)
        return 0;
    return CRYPTO_memcmp(computed, hash, len) == 0;
}

/* Computes the hash of password with hash's setting and compares. */
static int crypt_and_compare(const struct table *t, const char *user,
                             const char *hash, const char *password,
                             struct buf *error)
{
    struct crypt_data *data = NULL;
    const char *computed = crypt_with(password, hash, &data);
    if (computed == NULL) {
        int saved = errno;
        crypt_free(data);
        describe_user(error, t, user);
        (void)buf_printf(error, "cannot check the password hash: %s",
                         saved == EINVAL ? "invalid hash" : strerror(saved));
        return PASSWORD_ERROR;
    }
    int ok = same_hash(computed, hash);
    crypt_free(data);
    return ok ? PASSWORD_OK : PASSWORD_BAD;
}

/* Checks password against hash, the first field of the user's value. */
static int verify(const struct table *t, const char *user, const char *hash,
                  const char *password, struct buf *error)
{
    if (is_locked(hash)) {
        dummy_check(password);
        describe_user(error, t, user);
        (void)buf_append_str(error, "account locked");
        return PASSWORD_BAD;
    }
    struct buf why;
    buf_init(&why, 1024);
    if (password_hash_usable(hash, &why) != 0) {
        dummy_check(password);
        describe_user(error, t, user);
        (void)buf_append_str(error, buf_cstr(&why));
        buf_free(&why);
        return PASSWORD_ERROR;
    }
    buf_free(&why);
    return crypt_and_compare(t, user, hash, password, error);
}

/* Cuts value to its first white-space-separated field, in place. */
static void keep_first_field(struct buf *value)
{
    if (value->data == NULL)
        return;
    buf_truncate(value, strcspn(value->data, " \t\r\n"));
}

static void wipe_buf(struct buf *b)
{
    if (b->data != NULL)
        explicit_bzero(b->data, b->cap);
    buf_free(b);
}

int password_check(struct table *t, const char *user, const char *password,
                   struct buf *error)
{
    if (strnlen(password, PASSWORD_MAX + 1) > PASSWORD_MAX) {
        (void)buf_printf(error, "password longer than %d octets",
                         PASSWORD_MAX);
        return PASSWORD_BAD; /* before any lookup: the same for everyone */
    }
    struct buf value;
    buf_init(&value, TABLE_VALUE_MAX);
    int found = table_lookup(t, user, &value, error);
    int rc;
    if (found == TABLE_FOUND) {
        keep_first_field(&value);
        rc = verify(t, user, buf_cstr(&value), password, error);
    } else if (found == TABLE_NOT_FOUND) {
        dummy_check(password);
        rc = PASSWORD_UNKNOWN_USER;
    } else {
        rc = PASSWORD_ERROR; /* the table said why */
    }
    wipe_buf(&value);
    return rc;
}

/* ----------------------------------------------------------------- hash */

int password_hash(const char *password, struct buf *out)
{
    if (strnlen(password, PASSWORD_MAX + 1) > PASSWORD_MAX) {
        errno = ERANGE;
        return -1;
    }
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    if (crypt_gensalt_rn("$y$", 0, NULL, 0, salt, (int)sizeof(salt)) ==
        NULL)
        return -1;
    struct crypt_data *data = NULL;
    const char *hash = crypt_with(password, salt, &data);
    int rc = hash == NULL ? -1 : buf_set_str(out, hash);
    int saved = errno;
    crypt_free(data);
    explicit_bzero(salt, sizeof(salt));
    errno = saved;
    return rc;
}

int password_check_maps(const struct map_list *maps, const char *user,
                        const char *password, struct buf *error)
{
    for (size_t i = 0; i < map_list_count(maps); i++) {
        const char *why = NULL;
        struct table *t = map_list_table(maps, i, &why);
        if (t == NULL) {
            (void)buf_printf(error, "password table unavailable: %s", why);
            return PASSWORD_ERROR;
        }
        int r = password_check(t, user, password, error);
        if (r != PASSWORD_UNKNOWN_USER)
            return r;
    }
    return PASSWORD_UNKNOWN_USER;
}
