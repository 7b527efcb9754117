/*
 * test_password - unit tests for lib/password (crypt(3) hashes in a table).
 *
 * The group setup makes hashes (yescrypt by password_hash, SHA-512, SHA-256
 * and bcrypt by crypt_rn directly, MD5 and DES for the refused forms) and
 * puts them in an inline: table and in a texthash: file in a mkdtemp
 * folder.  Table-driven: right and wrong passwords, unknown users, extra
 * fields after the hash, locked accounts, refused and invalid hashes, case
 * folding by the table type, an over-long password, a table lookup error
 * (over-long key) and a hash: table whose .db is missing; password_hash
 * and password_hash_usable; and a loose timing check that an unknown user
 * costs about as much as a known one.
 *
 * Run: build/<cc>/tests/test_password (no arguments; writes only under
 * $TMPDIR or /tmp, and removes what it wrote).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "password.h"
#include "table.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The passwords behind the hashes of the fixture. */
#define PW_ALICE "correct horse battery staple"
#define PW_BOB "s\xc3\xa9same ouvre-toi"
#define PW_CAROL "bcrypt-pw"
#define PW_DAN "sha256 pw"
#define PW_LEGACY "legacy"

struct fixture {
    struct buf dir;      /* the mkdtemp folder */
    struct buf file;     /* dir/users, the texthash source */
    struct buf spec;     /* inline:{ ... } */
    struct buf hash_y;   /* password_hash(PW_ALICE) */
    struct buf hash_6;   /* crypt_rn(PW_BOB, "$6$...") */
    struct buf hash_2b;  /* crypt_rn(PW_CAROL, "$2b$04$...") */
    struct buf hash_5;   /* crypt_rn(PW_DAN, "$5$...") */
    struct buf hash_1;   /* crypt_rn(PW_LEGACY, "$1$...") */
    struct buf hash_des; /* crypt_rn(PW_LEGACY, "ab") */
    struct table *inline_table;
    struct table *texthash_table;
};

/* ------------------------------------------------------------- fixture */

static void crypt_into(struct buf *out, const char *password,
                       const char *prefix, unsigned long count)
{
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    assert_non_null(crypt_gensalt_rn(prefix, count, NULL, 0, salt,
                                     (int)sizeof(salt)));
    struct crypt_data *data = calloc(1, sizeof(*data));
    assert_non_null(data);
    const char *hash = crypt_rn(password, salt, data, (int)sizeof(*data));
    assert_non_null(hash);
    buf_init(out, PASSWORD_HASH_MAX);
    assert_int_equal(buf_set_str(out, hash), 0);
    free(data);
}

static void make_hashes(struct fixture *f)
{
    buf_init(&f->hash_y, PASSWORD_HASH_MAX);
    assert_int_equal(password_hash(PW_ALICE, &f->hash_y), 0);
    crypt_into(&f->hash_6, PW_BOB, "$6$", 0);
    crypt_into(&f->hash_2b, PW_CAROL, "$2b$", 4);
    crypt_into(&f->hash_5, PW_DAN, "$5$", 0);
    crypt_into(&f->hash_1, PW_LEGACY, "$1$", 0);
    crypt_into(&f->hash_des, PW_LEGACY, "", 0); /* gensalt "" gives DES */
    assert_int_equal(f->hash_des.len, 13);
}

/* The entries, in "key value" form; inline: and texthash: get the same.
 * The hashes hold no commas, braces or white space, so inline: splits
 * them right. */
static void append_entries(struct buf *b, const struct fixture *f,
                           const char *between, const char *after)
{
    const struct {
        const char *user;
        const char *value;
        const char *extra;
    } entries[] = {
        { "alice", buf_cstr(&f->hash_y), "" },
        { "bob", buf_cstr(&f->hash_6), " uid=1000 home=/home/bob" },
        { "carol", buf_cstr(&f->hash_2b), "\tquota=10M" },
        { "dan", buf_cstr(&f->hash_5), "" },
        { "mallory", buf_cstr(&f->hash_1), "" },
        { "oscar", buf_cstr(&f->hash_des), "" },
        { "locked", "!", buf_cstr(&f->hash_y) }, /* "!$y$..." */
        { "disabled", "*", "" },
        { "junk", "plaintext-password", "" },
        { "broken", "$y$invalid", "" },
    };
    for (size_t i = 0; i < COUNT(entries); i++)
        assert_int_equal(buf_printf(b, "%s%s%s%s%s", entries[i].user,
                                    between, entries[i].value,
                                    entries[i].extra, after),
                         0);
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    const char *tmp = getenv("TMPDIR");
    buf_init(&f->dir, 4096);
    assert_int_equal(buf_printf(&f->dir, "%s/test_password.XXXXXX",
                                tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp"),
                     0);
    assert_non_null(mkdtemp(f->dir.data));
    make_hashes(f);

    buf_init(&f->spec, 65536);
    assert_int_equal(buf_append_str(&f->spec, "inline:{ "), 0);
    append_entries(&f->spec, f, " = ", ", ");
    assert_int_equal(buf_append_str(&f->spec, "}"), 0);

    struct buf text, error;
    buf_init(&text, 65536);
    buf_init(&error, 4096);
    assert_int_equal(buf_append_str(&text, "# users\n"), 0);
    append_entries(&text, f, "  ", "\n");
    buf_init(&f->file, 256);
    assert_int_equal(buf_printf(&f->file, "%s/users", f->dir.data), 0);
    write_file(f->file.data, text.data);

    f->inline_table = table_open(f->spec.data, 0, &error);
    if (f->inline_table == NULL)
        fail_msg("%s", buf_cstr(&error));
    buf_reset(&text);
    assert_int_equal(buf_printf(&text, "texthash:%s", f->file.data), 0);
    f->texthash_table = table_open(text.data, 0, &error);
    if (f->texthash_table == NULL)
        fail_msg("%s", buf_cstr(&error));
    buf_free(&text);
    buf_free(&error);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    table_close(f->inline_table);
    table_close(f->texthash_table);
    if (unlink(f->file.data) != 0 || rmdir(f->dir.data) != 0)
        return -1;
    buf_free(&f->dir);
    buf_free(&f->file);
    buf_free(&f->spec);
    buf_free(&f->hash_y);
    buf_free(&f->hash_6);
    buf_free(&f->hash_2b);
    buf_free(&f->hash_5);
    buf_free(&f->hash_1);
    buf_free(&f->hash_des);
    free(f);
    return 0;
}

/* --------------------------------------------------------------- checks */

struct check_case {
    const char *user;
    const char *password;
    int result;
    const char *error; /* a part of the error text; NULL: error stays "" */
};

static const struct check_case check_cases[] = {
    /* right and wrong, for each strong form */
    { "alice", PW_ALICE, PASSWORD_OK, NULL },
    { "alice", PW_ALICE " ", PASSWORD_BAD, NULL },
    { "alice", "correct horse battery stapl", PASSWORD_BAD, NULL },
    { "alice", "", PASSWORD_BAD, NULL },
    { "bob", PW_BOB, PASSWORD_OK, NULL }, /* extra fields after the hash */
    { "bob", "sesame ouvre-toi", PASSWORD_BAD, NULL },
    { "carol", PW_CAROL, PASSWORD_OK, NULL },
    { "carol", "bcrypt-PW", PASSWORD_BAD, NULL },
    { "dan", PW_DAN, PASSWORD_OK, NULL },
    { "dan", PW_ALICE, PASSWORD_BAD, NULL },
    /* not there */
    { "nobody", PW_ALICE, PASSWORD_UNKNOWN_USER, NULL },
    { "alice2", PW_ALICE, PASSWORD_UNKNOWN_USER, NULL },
    { "", PW_ALICE, PASSWORD_UNKNOWN_USER, NULL },
    /* both table types fold keys */
    { "ALICE", PW_ALICE, PASSWORD_OK, NULL },
    { "Bob", PW_BOB, PASSWORD_OK, NULL },
    /* locked accounts never match, even with the password behind them */
    { "locked", PW_ALICE, PASSWORD_BAD, "account locked" },
    { "disabled", "*", PASSWORD_BAD, "account locked" },
    /* refused forms: an error (454), with a message for the admin, even
     * with the right password */
    { "mallory", PW_LEGACY, PASSWORD_ERROR, "MD5-crypt (\"$1$\")" },
    { "mallory", "wrong", PASSWORD_ERROR, "mkpasswd -m yescrypt" },
    { "oscar", PW_LEGACY, PASSWORD_ERROR, "traditional DES" },
    { "junk", "plaintext-password", PASSWORD_ERROR, "unknown or invalid" },
    { "broken", "x", PASSWORD_ERROR, "invalid hash" },
};

static void run_check_cases(struct table *t)
{
    for (size_t i = 0; i < COUNT(check_cases); i++) {
        const struct check_case *c = &check_cases[i];
        struct buf error;
        buf_init(&error, 4096);
        int rc = password_check(t, c->user, c->password, &error);
        if (rc != c->result)
            fail_msg("%s case %zu (%s): got %d, expected %d: %s",
                     table_spec(t), i, c->user, rc, c->result,
                     buf_cstr(&error));
        if (c->error == NULL)
            assert_string_equal(buf_cstr(&error), "");
        else if (strstr(buf_cstr(&error), c->error) == NULL)
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, buf_cstr(&error),
                     c->error);
        /* Never the password in a message. */
        if (strlen(c->password) >= 6)
            assert_null(strstr(buf_cstr(&error), c->password));
        buf_free(&error);
    }
}

static void test_check_inline(void **state)
{
    struct fixture *f = *state;
    run_check_cases(f->inline_table);
}

static void test_check_texthash(void **state)
{
    struct fixture *f = *state;
    run_check_cases(f->texthash_table);
}

static void test_error_names_user_and_table(void **state)
{
    struct fixture *f = *state;
    struct buf error;
    buf_init(&error, 4096);
    assert_int_equal(password_check(f->inline_table, "MALLORY", PW_LEGACY,
                                    &error),
                     PASSWORD_ERROR);
    assert_non_null(strstr(buf_cstr(&error), "user MALLORY in inline:{...}: "));
    /* No hash is shown, not even through the inline table's name. */
    assert_null(strstr(buf_cstr(&error), buf_cstr(&f->hash_1) + 3));
    assert_null(strstr(buf_cstr(&error), buf_cstr(&f->hash_y) + 3));
    buf_reset(&error);
    assert_int_equal(password_check(f->texthash_table, "oscar", PW_LEGACY,
                                    &error),
                     PASSWORD_ERROR);
    assert_non_null(strstr(buf_cstr(&error), "user oscar in texthash:"));
    assert_null(strstr(buf_cstr(&error), buf_cstr(&f->hash_des)));
    buf_free(&error);
}

static void test_too_long_password(void **state)
{
    struct fixture *f = *state;
    char password[PASSWORD_MAX + 2];
    memset(password, 'x', sizeof(password) - 1);
    password[sizeof(password) - 1] = '\0';
    struct buf error;
    buf_init(&error, 4096);
    assert_int_equal(password_check(f->inline_table, "alice", password,
                                    &error),
                     PASSWORD_BAD);
    assert_non_null(strstr(buf_cstr(&error), "longer than 511"));
    /* At the limit it is an ordinary wrong password. */
    password[PASSWORD_MAX] = '\0';
    buf_reset(&error);
    assert_int_equal(password_check(f->inline_table, "alice", password,
                                    &error),
                     PASSWORD_BAD);
    assert_string_equal(buf_cstr(&error), "");
    buf_free(&error);
}

/* A failing lookup is an error, never "bad password" nor "unknown". */
static void test_lookup_error(void **state)
{
    struct fixture *f = *state;
    char user[TABLE_KEY_MAX + 2];
    memset(user, 'a', sizeof(user) - 1);
    user[sizeof(user) - 1] = '\0';
    struct buf error;
    buf_init(&error, 4096);
    assert_int_equal(password_check(f->texthash_table, user, PW_ALICE,
                                    &error),
                     PASSWORD_ERROR);
    assert_non_null(strstr(buf_cstr(&error), "longer than"));
    buf_free(&error);
}

/* A hash: table without its .db cannot even be opened: the caller has no
 * table and answers 454 4.7.0. */
static void test_missing_db(void **state)
{
    struct fixture *f = *state;
    struct buf spec, error;
    buf_init(&spec, 256);
    buf_init(&error, 4096);
    assert_int_equal(buf_printf(&spec, "hash:%s", f->file.data), 0);
    struct table *t = table_open(spec.data, 0, &error);
    assert_null(t);
    assert_true(error.len > 0);
    buf_free(&spec);
    buf_free(&error);
}

/* ----------------------------------------------------------------- hash */

static void test_hash(void **state)
{
    (void)state;
    struct buf a, b;
    buf_init(&a, PASSWORD_HASH_MAX);
    buf_init(&b, PASSWORD_HASH_MAX);
    assert_int_equal(password_hash("secret", &a), 0);
    assert_int_equal(password_hash("secret", &b), 0);
    assert_memory_equal(a.data, "$y$", 3);
    assert_string_not_equal(a.data, b.data); /* a new salt each time */
    assert_null(strpbrk(a.data, " \t,{}:"));  /* fits every table type */
    struct crypt_data *data = calloc(1, sizeof(*data));
    assert_non_null(data);
    assert_string_equal(crypt_rn("secret", a.data, data, (int)sizeof(*data)),
                        a.data);
    free(data);
    struct buf why;
    buf_init(&why, 1024);
    assert_int_equal(password_hash_usable(a.data, &why), 0);
    /* Replaces, does not append. */
    assert_int_equal(password_hash("other", &a), 0);
    assert_memory_equal(a.data, "$y$", 3);
    assert_null(strstr(a.data + 1, "$y$"));
    buf_free(&a);
    buf_free(&b);
    buf_free(&why);
}

static void test_hash_limits(void **state)
{
    (void)state;
    char password[PASSWORD_MAX + 2];
    memset(password, 'p', sizeof(password) - 1);
    password[sizeof(password) - 1] = '\0';
    struct buf out;
    buf_init(&out, PASSWORD_HASH_MAX);
    errno = 0;
    assert_int_equal(password_hash(password, &out), -1);
    assert_int_equal(errno, ERANGE);
    password[PASSWORD_MAX] = '\0';
    assert_int_equal(password_hash(password, &out), 0);
    assert_int_equal(password_hash("", &out), 0); /* hashable; SASL refuses */
    buf_free(&out);
    buf_init(&out, 10);
    errno = 0;
    assert_int_equal(password_hash("secret", &out), -1);
    assert_int_equal(errno, EMSGSIZE);
    assert_int_equal(out.len, 0);
    buf_free(&out);
}

struct usable_case {
    const char *hash;
    int rc;
    const char *why;
};

static const struct usable_case usable_cases[] = {
    { "$y$j9T$EU9e1NXUK3mtU2QmdCy06.$DiawF9LrL6RmktjzW1UpNcJ4stkyhZDGyW0FHUhw98B",
      0, NULL },
    { "$2b$04$abcdefghijklmnopqrstuu", 0, NULL },
    { "$6$salt$AkOOBO38SQQ8T8Q46KuCONe.8zg41nvCDKDq7pVQd2n2hy8sf8aR3G89VY."
      "57up0eSIa/69odCCcLT4hx7FpW/", 0, NULL },
    { "$5$salt$", 0, NULL },
    { "!$6$salt$x", 0, NULL }, /* locked: valid, never matches */
    { "*", 0, NULL },
    { "", -1, "no password hash" },
    { "$1$abcdefgh$IQtUouv7y7Q9dRWkQEPCc.", -1, "MD5-crypt" },
    { "abzlUXK5ed5rs", -1, "traditional DES" },
    { "_J9..CCCCaxLHlwiamg2", -1, "BSDi extended DES" },
    { "$md5$$xkRuLyPTcJszIXBC6nfo.0", -1, "legacy method" },
    { "$3$$8cc19b6a8cfeac299c2871c86b38de28", -1, "legacy method" },
    { "plaintext", -1, "unknown or invalid" },
    { "$9$whatever", -1, "unknown or invalid" },
    { "y$j9T$", -1, "unknown or invalid" },
};

static void test_hash_usable(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(usable_cases); i++) {
        const struct usable_case *c = &usable_cases[i];
        struct buf why;
        buf_init(&why, 1024);
        int rc = password_hash_usable(c->hash, &why);
        if (rc != c->rc)
            fail_msg("case %zu \"%s\": %d (%s)", i, c->hash, rc,
                     buf_cstr(&why));
        if (c->why == NULL)
            assert_int_equal(why.len, 0);
        else if (strstr(buf_cstr(&why), c->why) == NULL)
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, buf_cstr(&why),
                     c->why);
        buf_free(&why);
    }
}

/* --------------------------------------------------------------- timing */

static double seconds_of_check(struct table *t, const char *user)
{
    double best = 1e9;
    for (int i = 0; i < 3; i++) {
        struct timespec a, b;
        struct buf error;
        buf_init(&error, 4096);
        assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &a), 0);
        (void)password_check(t, user, "not the password", &error);
        assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &b), 0);
        buf_free(&error);
        double s = (double)(b.tv_sec - a.tv_sec) +
                   (double)(b.tv_nsec - a.tv_nsec) / 1e9;
        if (s < best)
            best = s;
    }
    return best;
}

/* Loose on purpose (a loaded machine must not make it fail): an unknown
 * user, a locked account and a refused hash each cost at least a quarter
 * of a real yescrypt check, not the microseconds of a table lookup. */
static void test_timing(void **state)
{
    struct fixture *f = *state;
    double known = seconds_of_check(f->inline_table, "alice");
    const char *others[] = { "nobody", "locked", "mallory" };
    for (size_t i = 0; i < COUNT(others); i++) {
        double t = seconds_of_check(f->inline_table, others[i]);
        if (t < known / 4)
            fail_msg("%s: %.6f s against %.6f s for a known user",
                     others[i], t, known);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_inline),
        cmocka_unit_test(test_check_texthash),
        cmocka_unit_test(test_error_names_user_and_table),
        cmocka_unit_test(test_too_long_password),
        cmocka_unit_test(test_lookup_error),
        cmocka_unit_test(test_missing_db),
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_hash_limits),
        cmocka_unit_test(test_hash_usable),
        cmocka_unit_test(test_timing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
