/*
 * test_tls - unit tests of lib/tls.c: contexts and their errors, the
 * handshake on both sides over a socketpair, lines and a 1 MiB transfer
 * through struct stream, describe(), certificate verification by name,
 * handshake timeouts, garbage and closing peers, and the STARTTLS rule on
 * input sent before the handshake.
 *
 * The certificate (EC P-256, CN=localhost, subjectAltName DNS:localhost,
 * self-signed) and a second, unrelated key are made at start in a mkdtemp()
 * directory under $TMPDIR or /tmp.  The peer is either the other end of
 * the socketpair driven by hand, or a forked child that runs the other TLS
 * role.  Children never use cmocka: they report failure with a non-zero
 * exit status, which reap() returns; an alarm ends a stuck child.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "stream.h"
#include "tls.h"

#define IO_TIMEOUT_MS 3000
#define BIG_SIZE ((size_t)1024 * 1024)
#define CHILD_ALARM_S 5

struct certs {
    struct buf dir;
    struct buf cert;      /* self-signed, CN=localhost */
    struct buf key;       /* its key */
    struct buf other_key; /* a key that does not match */
    struct buf missing;   /* a path that does not exist */
};

/* ---- certificate generation ---- */

static int path_in(struct buf *path, const struct buf *dir, const char *name)
{
    buf_init(path, 4096);
    return buf_printf(path, "%s/%s", buf_cstr(dir), name);
}

static int write_key(EVP_PKEY *key, const char *path)
{
    BIO *out = BIO_new_file(path, "w");
    if (out == NULL)
        return -1;
    int ok = PEM_write_bio_PrivateKey(out, key, NULL, NULL, 0, NULL, NULL);
    BIO_free(out);
    return ok == 1 ? 0 : -1;
}

static int write_cert(X509 *cert, const char *path)
{
    BIO *out = BIO_new_file(path, "w");
    if (out == NULL)
        return -1;
    int ok = PEM_write_bio_X509(out, cert);
    BIO_free(out);
    return ok == 1 ? 0 : -1;
}

static int add_san(X509 *cert)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *ext =
        X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost");
    if (ext == NULL)
        return -1;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1 ? 0 : -1;
}

static X509 *make_cert(EVP_PKEY *key)
{
    X509 *cert = X509_new();
    if (cert == NULL)
        return NULL;
    X509_NAME *name = X509_get_subject_name(cert);
    if (X509_set_version(cert, X509_VERSION_3) != 1 ||
        ASN1_INTEGER_set(X509_get_serialNumber(cert), 1) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(cert), -3600) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(cert), 86400) == NULL ||
        X509_set_pubkey(cert, key) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   (const unsigned char *)"localhost", -1,
                                   -1, 0) != 1 ||
        X509_set_issuer_name(cert, name) != 1 || add_san(cert) != 0 ||
        X509_sign(cert, key, EVP_sha256()) <= 0) {
        X509_free(cert);
        return NULL;
    }
    return cert;
}

static int make_files(struct certs *c)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *cert = key ? make_cert(key) : NULL;
    int rc = cert && other && write_key(key, buf_cstr(&c->key)) == 0 &&
                     write_key(other, buf_cstr(&c->other_key)) == 0 &&
                     write_cert(cert, buf_cstr(&c->cert)) == 0
                 ? 0
                 : -1;
    X509_free(cert);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
    return rc;
}

static int group_setup(void **state)
{
    struct certs *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -1;
    const char *tmp = getenv("TMPDIR");
    buf_init(&c->dir, 4096);
    if (buf_printf(&c->dir, "%s/test_tls.XXXXXX",
                   tmp && *tmp ? tmp : "/tmp") != 0 ||
        mkdtemp(c->dir.data) == NULL ||
        path_in(&c->cert, &c->dir, "cert.pem") != 0 ||
        path_in(&c->key, &c->dir, "key.pem") != 0 ||
        path_in(&c->other_key, &c->dir, "other_key.pem") != 0 ||
        path_in(&c->missing, &c->dir, "missing.pem") != 0 ||
        make_files(c) != 0)
        return -1;
    *state = c;
    return 0;
}

static int group_teardown(void **state)
{
    struct certs *c = *state;
    unlink(buf_cstr(&c->cert));
    unlink(buf_cstr(&c->key));
    unlink(buf_cstr(&c->other_key));
    int rc = rmdir(buf_cstr(&c->dir));
    buf_free(&c->dir);
    buf_free(&c->cert);
    buf_free(&c->key);
    buf_free(&c->other_key);
    buf_free(&c->missing);
    free(c);
    return rc;
}

/* ---- peers ---- */

static unsigned char pattern_byte(size_t i)
{
    return (unsigned char)((i * 7 + i / 1024) & 0xff);
}

static int pattern_ok(const struct buf *b)
{
    for (size_t i = 0; i < b->len; i++)
        if ((unsigned char)b->data[i] != pattern_byte(i))
            return 0;
    return 1;
}

static int pattern_fill(struct buf *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (buf_append_char(b, (char)pattern_byte(i)) != 0)
            return -1;
    return 0;
}

typedef int (*peer_fn)(int fd, const struct certs *c, const char *arg);

/* Forks a child that runs fn on one end of a socketpair; returns the pid
 * and sets *fd to the parent's end. */
static pid_t spawn(peer_fn fn, const struct certs *c, const char *arg,
                   int *fd)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(sv[0]);
        alarm(CHILD_ALARM_S);
        _exit(fn(sv[1], c, arg));
    }
    assert_int_equal(close(sv[1]), 0);
    *fd = sv[0];
    return pid;
}

/* The child's exit status, or 100 + the signal that ended it. */
static int reap(pid_t pid)
{
    int status;
    pid_t got;
    do
        got = waitpid(pid, &status, 0);
    while (got < 0 && errno == EINTR);
    assert_int_equal(got, pid);
    if (WIFSIGNALED(status))
        return 100 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

/* A line exchange: "QUIT" ends it, "BIG n" takes n bytes of the pattern,
 * answers "SUM ok" and sends n bytes back, anything else is echoed. */
static int serve_lines(struct stream *s)
{
    struct buf line, data;
    buf_init(&line, 1000);
    buf_init(&data, BIG_SIZE);
    int rc = 0;
    while (rc == 0) {
        enum stream_line_ending ending;
        int got = stream_read_line(s, &line, 1000, &ending);
        if (got == STREAM_EOF)
            break;
        if (got != STREAM_OK) {
            rc = 20;
        } else if (strcmp(buf_cstr(&line), "QUIT") == 0) {
            rc = stream_puts(s, "BYE\r\n") == 0 && stream_flush(s) == 0
                     ? -1
                     : 21;
        } else if (strncmp(buf_cstr(&line), "BIG ", 4) == 0) {
            size_t n = strtoul(buf_cstr(&line) + 4, NULL, 10);
            buf_reset(&data);
            if (stream_read_exact(s, &data, n) != 0 || !pattern_ok(&data))
                rc = 22;
            else if (stream_puts(s, "SUM ok\r\n") != 0 ||
                     stream_write(s, data.data, data.len) != 0 ||
                     stream_flush(s) != 0)
                rc = 23;
        } else if (stream_printf(s, "ECHO %s\r\n", buf_cstr(&line)) != 0 ||
                   stream_flush(s) != 0) {
            rc = 24;
        }
    }
    buf_free(&line);
    buf_free(&data);
    return rc == -1 ? 0 : rc;
}

/* A TLS server: arg "lines" serves lines and closes cleanly, "abrupt"
 * sends one line and exits without close_notify. */
static int peer_server(int fd, const struct certs *c, const char *arg)
{
    struct buf err;
    buf_init(&err, 4096);
    struct tls_context *ctx = tls_server_context_create(
        buf_cstr(&c->cert), buf_cstr(&c->key), NULL, &err);
    struct tls_session *t = NULL;
    int rc = ctx ? 0 : 10;
    if (rc == 0 &&
        tls_session_start_server(ctx, fd, IO_TIMEOUT_MS, &t, &err) != TLS_OK)
        rc = 11;
    struct stream s;
    stream_init(&s, fd, IO_TIMEOUT_MS);
    if (rc == 0) {
        tls_session_attach(t, &s);
        if (strcmp(arg, "abrupt") == 0)
            rc = stream_puts(&s, "one\r\n") == 0 && stream_flush(&s) == 0
                     ? 0
                     : 12;
        else
            rc = serve_lines(&s);
        if (rc == 0 && strcmp(arg, "abrupt") != 0 &&
            tls_session_shutdown(t, IO_TIMEOUT_MS, &err) != TLS_OK)
            rc = 13;
    }
    stream_free(&s);
    tls_session_free(t);
    tls_context_free(ctx);
    buf_free(&err);
    close(fd);
    return rc;
}

/* A TLS client (level encrypt): says "hello", expects "ECHO hello". */
static int peer_client(int fd, const struct certs *c, const char *arg)
{
    (void)c;
    (void)arg;
    struct buf err, line;
    buf_init(&err, 4096);
    buf_init(&line, 1000);
    struct tls_context *ctx =
        tls_client_context_create(NULL, TLS_LEVEL_ENCRYPT, &err);
    struct tls_session *t = NULL;
    int rc = ctx ? 0 : 30;
    if (rc == 0 && tls_session_start_client(ctx, fd, "localhost",
                                            IO_TIMEOUT_MS, &t, &err) != 0)
        rc = 31;
    struct stream s;
    stream_init(&s, fd, IO_TIMEOUT_MS);
    enum stream_line_ending ending;
    if (rc == 0) {
        tls_session_attach(t, &s);
        if (stream_puts(&s, "hello\r\n") != 0 || stream_flush(&s) != 0 ||
            stream_read_line(&s, &line, 1000, &ending) != 0 ||
            strcmp(buf_cstr(&line), "ECHO hello") != 0)
            rc = 32;
        else if (stream_read_line(&s, &line, 1000, &ending) != STREAM_EOF)
            rc = 33;
    }
    stream_free(&s);
    tls_session_free(t);
    tls_context_free(ctx);
    buf_free(&err);
    buf_free(&line);
    close(fd);
    return rc;
}

/* A STARTTLS client that pipelines "RSET" after STARTTLS, then says NOOP
 * over TLS and expects "250 ok". */
static int peer_starttls_client(int fd, const struct certs *c,
                                const char *arg)
{
    (void)c;
    (void)arg;
    static const char hello[] = "STARTTLS\r\nRSET\r\n";
    struct buf err, line;
    buf_init(&err, 4096);
    buf_init(&line, 1000);
    struct stream s;
    stream_init(&s, fd, IO_TIMEOUT_MS);
    struct tls_context *ctx =
        tls_client_context_create(NULL, TLS_LEVEL_ENCRYPT, &err);
    struct tls_session *t = NULL;
    enum stream_line_ending ending;
    int rc = ctx ? 0 : 40;
    if (rc == 0 && (stream_write(&s, hello, sizeof hello - 1) != 0 ||
                    stream_flush(&s) != 0 ||
                    stream_read_line(&s, &line, 1000, &ending) != 0 ||
                    strncmp(buf_cstr(&line), "220 ", 4) != 0))
        rc = 41;
    if (rc == 0 && tls_session_start_on_stream(
                       ctx, &s, "localhost", IO_TIMEOUT_MS,
                       TLS_PENDING_REFUSE, NULL, &t, &err) != TLS_OK)
        rc = 42;
    if (rc == 0 && (stream_puts(&s, "NOOP\r\n") != 0 ||
                    stream_flush(&s) != 0 ||
                    stream_read_line(&s, &line, 1000, &ending) != 0 ||
                    strcmp(buf_cstr(&line), "250 ok") != 0))
        rc = 43;
    stream_free(&s);
    tls_session_free(t);
    tls_context_free(ctx);
    buf_free(&err);
    buf_free(&line);
    close(fd);
    return rc;
}

/* ---- parent-side helpers ---- */

static int contains(const struct buf *b, const char *text)
{
    return strstr(buf_cstr(b), text) != NULL;
}

static void assert_queue_empty(void)
{
    assert_int_equal(ERR_peek_error(), 0);
}

static struct tls_context *client_ctx(const char *ca, enum tls_level level)
{
    struct buf err;
    buf_init(&err, 4096);
    struct tls_context *ctx = tls_client_context_create(ca, level, &err);
    if (ctx == NULL)
        print_error("%s\n", buf_cstr(&err));
    assert_non_null(ctx);
    buf_free(&err);
    return ctx;
}

static struct tls_context *server_ctx(const struct certs *c,
                                      const struct tls_server_options *o)
{
    struct buf err;
    buf_init(&err, 4096);
    struct tls_context *ctx = tls_server_context_create(
        buf_cstr(&c->cert), buf_cstr(&c->key), o, &err);
    if (ctx == NULL)
        print_error("%s\n", buf_cstr(&err));
    assert_non_null(ctx);
    buf_free(&err);
    return ctx;
}

static struct tls_session *connect_client(struct tls_context *ctx, int fd,
                                          const char *name)
{
    struct buf err;
    buf_init(&err, 4096);
    struct tls_session *t = NULL;
    int rc = tls_session_start_client(ctx, fd, name, IO_TIMEOUT_MS, &t,
                                      &err);
    if (rc != TLS_OK)
        print_error("%s\n", buf_cstr(&err));
    assert_int_equal(rc, TLS_OK);
    assert_non_null(t);
    buf_free(&err);
    return t;
}

static void expect_line(struct stream *s, const char *want)
{
    struct buf line;
    buf_init(&line, 1000);
    enum stream_line_ending ending;
    assert_int_equal(stream_read_line(s, &line, 1000, &ending), STREAM_OK);
    assert_string_equal(buf_cstr(&line), want);
    assert_int_equal(ending, STREAM_LINE_CRLF);
    buf_free(&line);
}

static void say(struct stream *s, const char *text)
{
    assert_int_equal(stream_puts(s, text), STREAM_OK);
    assert_int_equal(stream_flush(s), STREAM_OK);
}

/* Ends a client session whose server child was told QUIT. */
static void finish(struct stream *s, struct tls_session *t, int fd)
{
    struct buf line;
    buf_init(&line, 100);
    enum stream_line_ending ending;
    int rc = stream_read_line(s, &line, 100, &ending);
    if (rc != STREAM_EOF)
        print_error("read: %d %s\n", rc, tls_session_last_error(t));
    assert_int_equal(rc, STREAM_EOF);
    assert_int_equal(tls_session_shutdown(t, 1000, NULL), TLS_OK);
    buf_free(&line);
    tls_session_free(t);
    stream_free(s);
    assert_int_equal(close(fd), 0);
}

/* ---- tests: contexts ---- */

static void test_server_context_errors(void **state)
{
    const struct certs *c = *state;
    struct buf err;
    buf_init(&err, 4096);
    assert_null(tls_server_context_create(buf_cstr(&c->missing),
                                          buf_cstr(&c->key), NULL, &err));
    assert_true(contains(&err, buf_cstr(&c->missing)));
    assert_true(contains(&err, "No such file"));
    assert_queue_empty();

    assert_null(tls_server_context_create(buf_cstr(&c->cert),
                                          buf_cstr(&c->missing), NULL, &err));
    assert_true(contains(&err, buf_cstr(&c->missing)));
    assert_queue_empty();

    assert_null(tls_server_context_create(
        buf_cstr(&c->cert), buf_cstr(&c->other_key), NULL, &err));
    assert_true(contains(&err, buf_cstr(&c->other_key)));
    assert_true(contains(&err, "does not match"));
    assert_queue_empty();

    /* A key file is not a certificate. */
    assert_null(tls_server_context_create(buf_cstr(&c->key),
                                          buf_cstr(&c->key), NULL, &err));
    assert_true(contains(&err, "certificate chain"));
    assert_queue_empty();

    struct tls_server_options bad = { .ca_file = buf_cstr(&c->missing),
                                      .ciphers = NULL };
    assert_null(tls_server_context_create(buf_cstr(&c->cert),
                                          buf_cstr(&c->key), &bad, &err));
    assert_true(contains(&err, buf_cstr(&c->missing)));
    struct tls_server_options ciphers = { .ca_file = NULL,
                                          .ciphers = "NO-SUCH-CIPHER" };
    assert_null(tls_server_context_create(buf_cstr(&c->cert),
                                          buf_cstr(&c->key), &ciphers, &err));
    assert_true(contains(&err, "cipher list"));
    assert_queue_empty();

    tls_context_free(server_ctx(c, NULL));
    tls_context_free(NULL);
    buf_free(&err);
}

static void test_client_context_and_names(void **state)
{
    const struct certs *c = *state;
    struct buf err;
    buf_init(&err, 4096);
    assert_null(tls_client_context_create(buf_cstr(&c->missing),
                                          TLS_LEVEL_VERIFY, &err));
    assert_true(contains(&err, buf_cstr(&c->missing)));
    assert_queue_empty();

    static const char *const names[] = { "none", "may", "encrypt", "verify" };
    for (size_t i = 0; i < 4; i++) {
        enum tls_level level;
        assert_int_equal(tls_level_from_name(names[i], &level), 0);
        assert_int_equal(level, (enum tls_level)i);
        assert_string_equal(tls_level_name(level), names[i]);
    }
    enum tls_level level;
    assert_int_equal(tls_level_from_name("dane", &level), -1);
    assert_string_equal(tls_trust_name(TLS_TRUST_VERIFIED), "Verified");
    assert_string_equal(tls_trust_name(TLS_TRUST_ANONYMOUS), "Anonymous");

    /* Level none: a context, but no session. */
    struct tls_context *none = client_ctx(NULL, TLS_LEVEL_NONE);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct tls_session *t = NULL;
    assert_int_equal(tls_session_start_client(none, sv[0], "localhost", 100,
                                              &t, &err),
                     TLS_ERROR);
    assert_null(t);
    assert_true(contains(&err, "none"));
    /* verify without a name is refused before any byte is sent. */
    struct tls_context *verify = client_ctx(buf_cstr(&c->cert),
                                            TLS_LEVEL_VERIFY);
    assert_int_equal(
        tls_session_start_client(verify, sv[0], NULL, 100, &t, &err),
        TLS_ERROR);
    assert_true(contains(&err, "server name"));
    /* A server context is not a client. */
    struct tls_context *server = server_ctx(c, NULL);
    assert_int_equal(tls_session_start_client(server, sv[0], "localhost",
                                              100, &t, &err),
                     TLS_ERROR);
    struct pollfd p = { .fd = sv[1], .events = POLLIN, .revents = 0 };
    assert_int_equal(poll(&p, 1, 0), 0);
    assert_queue_empty();
    tls_context_free(none);
    tls_context_free(verify);
    tls_context_free(server);
    close(sv[0]);
    close(sv[1]);
    buf_free(&err);
}

/* ---- tests: sessions ---- */

static void test_client_lines_describe(void **state)
{
    const struct certs *c = *state;
    int fd;
    pid_t pid = spawn(peer_server, c, "lines", &fd);
    struct tls_context *ctx = client_ctx(NULL, TLS_LEVEL_ENCRYPT);
    struct tls_session *t = connect_client(ctx, fd, "localhost");

    struct buf text;
    buf_init(&text, 1000);
    assert_int_equal(tls_session_describe(t, &text), 0);
    char version[32], cipher[100];
    int bits, alg_bits;
    assert_int_equal(sscanf(buf_cstr(&text),
                            "%31s with cipher %99s (%d/%d bits)", version,
                            cipher, &bits, &alg_bits),
                     4);
    assert_string_equal(version, "TLSv1.3");
    assert_true(bits >= 128 && alg_bits >= bits);
    buf_reset(&text);
    assert_int_equal(tls_session_peer_cn(t, &text), 0);
    assert_string_equal(buf_cstr(&text), "localhost");
    assert_int_equal(tls_session_trust(t), TLS_TRUST_UNTRUSTED);
    assert_string_equal(tls_session_verify_text(t),
                        "self-signed certificate");

    struct stream s;
    stream_init(&s, fd, IO_TIMEOUT_MS);
    tls_session_attach(t, &s);
    /* Nothing to read yet: EAGAIN, and the session says it wants POLLIN. */
    char byte;
    errno = 0;
    assert_int_equal(s.read_fn(s.io_ctx, &byte, 1), -1);
    assert_int_equal(errno, EAGAIN);
    assert_int_equal(tls_session_wants(t), POLLIN);

    say(&s, "hello\r\nsecond line\r\n");
    expect_line(&s, "ECHO hello");
    expect_line(&s, "ECHO second line");
    say(&s, "QUIT\r\n");
    expect_line(&s, "BYE");
    assert_string_equal(tls_session_last_error(t), "");
    finish(&s, t, fd);
    assert_int_equal(reap(pid), 0);
    tls_context_free(ctx);
    buf_free(&text);
    assert_queue_empty();
}

static void test_large_transfer(void **state)
{
    const struct certs *c = *state;
    int fd;
    pid_t pid = spawn(peer_server, c, "lines", &fd);
    struct tls_context *ctx = client_ctx(NULL, TLS_LEVEL_MAY);
    struct tls_session *t = connect_client(ctx, fd, "localhost");
    struct stream s;
    stream_init(&s, fd, IO_TIMEOUT_MS);
    tls_session_attach(t, &s);

    struct buf data;
    buf_init(&data, BIG_SIZE);
    assert_int_equal(pattern_fill(&data, BIG_SIZE), 0);
    assert_int_equal(stream_printf(&s, "BIG %zu\r\n", BIG_SIZE), STREAM_OK);
    assert_int_equal(stream_write(&s, data.data, data.len), STREAM_OK);
    assert_int_equal(stream_flush(&s), STREAM_OK);
    expect_line(&s, "SUM ok");
    buf_reset(&data);
    assert_int_equal(stream_read_exact(&s, &data, BIG_SIZE), STREAM_OK);
    assert_int_equal(data.len, BIG_SIZE);
    assert_true(pattern_ok(&data));
    say(&s, "QUIT\r\n");
    expect_line(&s, "BYE");
    finish(&s, t, fd);
    assert_int_equal(reap(pid), 0);
    tls_context_free(ctx);
    buf_free(&data);
}

static void test_verify_by_name(void **state)
{
    const struct certs *c = *state;
    struct tls_context *ctx = client_ctx(buf_cstr(&c->cert),
                                         TLS_LEVEL_VERIFY);
    int fd;
    pid_t pid = spawn(peer_server, c, "lines", &fd);
    struct tls_session *t = connect_client(ctx, fd, "localhost");
    assert_int_equal(tls_session_trust(t), TLS_TRUST_VERIFIED);
    assert_string_equal(tls_session_verify_text(t), "ok");
    struct stream s;
    stream_init(&s, fd, IO_TIMEOUT_MS);
    tls_session_attach(t, &s);
    say(&s, "QUIT\r\n");
    expect_line(&s, "BYE");
    finish(&s, t, fd);
    assert_int_equal(reap(pid), 0);

    /* The same certificate for another name: refused in the handshake. */
    pid = spawn(peer_server, c, "lines", &fd);
    struct buf err;
    buf_init(&err, 4096);
    t = NULL;
    assert_int_equal(tls_session_start_client(ctx, fd, "example.org",
                                              IO_TIMEOUT_MS, &t, &err),
                     TLS_ERROR);
    assert_null(t);
    assert_true(contains(&err, "certificate verify failed"));
    assert_true(contains(&err, "mismatch"));
    assert_queue_empty();
    assert_int_equal(close(fd), 0);
    assert_int_not_equal(reap(pid), 0); /* its handshake failed too */
    tls_context_free(ctx);

    /* A name that matches but no CA that knows the certificate. */
    ctx = client_ctx(NULL, TLS_LEVEL_VERIFY);
    pid = spawn(peer_server, c, "lines", &fd);
    assert_int_equal(tls_session_start_client(ctx, fd, "localhost",
                                              IO_TIMEOUT_MS, &t, &err),
                     TLS_ERROR);
    assert_true(contains(&err, "not verified"));
    assert_int_equal(close(fd), 0);
    assert_int_not_equal(reap(pid), 0);
    tls_context_free(ctx);
    buf_free(&err);
}

static void test_server_side(void **state)
{
    const struct certs *c = *state;
    /* Ask for a client certificate; this client sends none. */
    struct tls_server_options o = { .ca_file = buf_cstr(&c->cert),
                                    .ciphers = NULL };
    struct tls_context *ctx = server_ctx(c, &o);
    int fd;
    pid_t pid = spawn(peer_client, c, "", &fd);
    struct buf err, text;
    buf_init(&err, 4096);
    buf_init(&text, 1000);
    struct tls_session *t = NULL;
    assert_int_equal(
        tls_session_start_server(ctx, fd, IO_TIMEOUT_MS, &t, &err), TLS_OK);
    tls_context_free(ctx); /* the session keeps it alive */
    assert_int_equal(tls_session_describe(t, &text), 0);
    assert_true(strncmp(buf_cstr(&text), "TLSv1.3 with cipher TLS_", 24) ==
                0);
    assert_int_equal(tls_session_trust(t), TLS_TRUST_ANONYMOUS);
    assert_int_equal(tls_session_peer_cn(t, &text), -1);
    assert_string_equal(tls_session_verify_text(t), "no certificate");
    struct stream s;
    stream_init(&s, fd, IO_TIMEOUT_MS);
    tls_session_attach(t, &s);
    expect_line(&s, "hello");
    say(&s, "ECHO hello\r\n");
    assert_int_equal(tls_session_shutdown(t, 1000, &err), TLS_OK);
    assert_int_equal(reap(pid), 0);
    /* After detach the stream fails instead of going back to plaintext. */
    tls_session_detach(&s);
    assert_int_equal(stream_puts(&s, "x\r\n"), STREAM_OK);
    assert_int_equal(stream_flush(&s), STREAM_ERROR);
    tls_session_free(t);
    stream_free(&s);
    assert_int_equal(close(fd), 0);
    buf_free(&err);
    buf_free(&text);
}

/* Starts a handshake with a peer that sends nothing; checks the time. */
static void expect_timeout(struct tls_context *ctx, int server)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct buf err;
    buf_init(&err, 4096);
    struct tls_session *t = NULL;
    long long start = stream_now_ms();
    int rc = server ? tls_session_start_server(ctx, sv[0], 300, &t, &err)
                    : tls_session_start_client(ctx, sv[0], "localhost", 300,
                                               &t, &err);
    long long took = stream_now_ms() - start;
    assert_int_equal(rc, TLS_TIMEOUT);
    assert_null(t);
    assert_true(took >= 290 && took < 1500);
    assert_true(contains(&err, "timed out"));
    assert_queue_empty();
    close(sv[0]);
    close(sv[1]);
    buf_free(&err);
}

static volatile sig_atomic_t ticks;

static void on_tick(int sig)
{
    (void)sig;
    ticks++;
}

static void test_handshake_timeout(void **state)
{
    const struct certs *c = *state;
    struct tls_context *server = server_ctx(c, NULL);
    struct tls_context *client = client_ctx(NULL, TLS_LEVEL_ENCRYPT);
    expect_timeout(server, 1);
    expect_timeout(client, 0);

    /* Signals every 50 ms (no SA_RESTART) neither end nor stretch it. */
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_tick;
    assert_int_equal(sigemptyset(&sa.sa_mask), 0);
    assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
    struct itimerval every = { { 0, 50000 }, { 0, 50000 } };
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    ticks = 0;
    assert_int_equal(setitimer(ITIMER_REAL, &every, NULL), 0);
    expect_timeout(server, 1);
    assert_int_equal(setitimer(ITIMER_REAL, &off, NULL), 0);
    assert_int_equal(sigaction(SIGALRM, &old, NULL), 0);
    assert_true(ticks >= 3);
    tls_context_free(server);
    tls_context_free(client);
}

/* The peer's end gets text (and is closed if close_peer) before the
 * handshake; returns the status and leaves the reason in err. */
static int handshake_against(struct tls_context *ctx, int server,
                             const char *text, int close_peer,
                             struct buf *err)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    size_t len = strlen(text);
    assert_int_equal(write(sv[1], text, len), (ssize_t)len);
    if (close_peer)
        assert_int_equal(close(sv[1]), 0);
    struct tls_session *t = NULL;
    long long start = stream_now_ms();
    int rc = server ? tls_session_start_server(ctx, sv[0], IO_TIMEOUT_MS, &t,
                                               err)
                    : tls_session_start_client(ctx, sv[0], "localhost",
                                               IO_TIMEOUT_MS, &t, err);
    assert_true(stream_now_ms() - start < 1000);
    assert_null(t);
    assert_true(err->len > 0);
    assert_queue_empty();
    close(sv[0]);
    if (!close_peer)
        close(sv[1]);
    return rc;
}

static void test_garbage_and_closed_peer(void **state)
{
    const struct certs *c = *state;
    struct tls_context *server = server_ctx(c, NULL);
    struct tls_context *client = client_ctx(NULL, TLS_LEVEL_MAY);
    struct buf err;
    buf_init(&err, 4096);
    assert_int_equal(handshake_against(server, 1,
                                       "EHLO client.example.org\r\n", 0,
                                       &err),
                     TLS_ERROR);
    assert_true(contains(&err, "TLS handshake failed"));
    assert_int_equal(handshake_against(client, 0,
                                       "220 mx.example.org ESMTP\r\n", 0,
                                       &err),
                     TLS_ERROR);
    assert_true(contains(&err, "TLS handshake failed"));
    assert_int_equal(handshake_against(server, 1, "", 1, &err), TLS_EOF);
    assert_true(contains(&err, "lost connection"));
    assert_int_equal(handshake_against(client, 0, "", 1, &err), TLS_EOF);
    tls_context_free(server);
    tls_context_free(client);
    buf_free(&err);
}

static void test_peer_closes_mid_session(void **state)
{
    const struct certs *c = *state;
    struct tls_context *ctx = client_ctx(NULL, TLS_LEVEL_ENCRYPT);
    int fd;
    pid_t pid = spawn(peer_server, c, "abrupt", &fd);
    struct tls_session *t = connect_client(ctx, fd, "localhost");
    struct stream s;
    stream_init(&s, fd, IO_TIMEOUT_MS);
    tls_session_attach(t, &s);
    expect_line(&s, "one");
    assert_int_equal(reap(pid), 0);
    struct buf line;
    buf_init(&line, 100);
    enum stream_line_ending ending;
    long long start = stream_now_ms();
    /* No close_notify: end of file all the same (see tls.h). */
    assert_int_equal(stream_read_line(&s, &line, 100, &ending), STREAM_EOF);
    /* Writing to the vanished peer: an error, not SIGPIPE, not a hang. */
    (void)stream_puts(&s, "anyone there?\r\n");
    (void)stream_flush(&s);
    (void)tls_session_shutdown(t, 500, NULL);
    assert_true(stream_now_ms() - start < 1000);
    assert_queue_empty();
    buf_free(&line);
    tls_session_free(t);
    stream_free(&s);
    assert_int_equal(close(fd), 0);
    tls_context_free(ctx);
}

/* ---- tests: STARTTLS ---- */

static void test_starttls_refuses_pipelined(void **state)
{
    const struct certs *c = *state;
    struct tls_context *ctx = server_ctx(c, NULL);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    static const char in[] = "STARTTLS\r\nMAIL FROM:<a@b>\r\n";
    assert_int_equal(write(sv[1], in, sizeof in - 1),
                     (ssize_t)(sizeof in - 1));
    struct stream s;
    stream_init(&s, sv[0], IO_TIMEOUT_MS);
    expect_line(&s, "STARTTLS");
    assert_int_equal(stream_puts(&s, "220 2.0.0 Ready to start TLS\r\n"),
                     STREAM_OK);
    struct buf err;
    buf_init(&err, 4096);
    size_t pending = 0;
    struct tls_session *t = NULL;
    assert_int_equal(tls_session_start_on_stream(ctx, &s, NULL,
                                                 IO_TIMEOUT_MS,
                                                 TLS_PENDING_REFUSE,
                                                 &pending, &t, &err),
                     TLS_PIPELINED);
    assert_null(t);
    assert_int_equal(pending, strlen("MAIL FROM:<a@b>\r\n"));
    assert_true(contains(&err, "before the TLS handshake"));
    /* Nothing was touched: the input is still there, nothing was sent. */
    assert_int_equal(stream_pending(&s), pending);
    assert_null(s.read_fn);
    char byte;
    assert_int_equal(recv(sv[1], &byte, 1, MSG_DONTWAIT), -1);
    assert_int_equal(errno, EAGAIN);
    stream_free(&s);
    close(sv[0]);
    close(sv[1]);
    tls_context_free(ctx);
    buf_free(&err);
}

static void test_starttls_discards_pipelined(void **state)
{
    const struct certs *c = *state;
    struct tls_context *ctx = server_ctx(c, NULL);
    int fd;
    pid_t pid = spawn(peer_starttls_client, c, "", &fd);
    struct stream s;
    stream_init(&s, fd, IO_TIMEOUT_MS);
    expect_line(&s, "STARTTLS");
    /* The child wrote both lines in one send(): "RSET" is buffered. */
    struct buf err;
    buf_init(&err, 4096);
    assert_int_equal(stream_puts(&s, "220 2.0.0 Ready to start TLS\r\n"),
                     STREAM_OK);
    size_t pending = 0;
    struct tls_session *t = NULL;
    int rc = tls_session_start_on_stream(ctx, &s, NULL, IO_TIMEOUT_MS,
                                         TLS_PENDING_DISCARD, &pending, &t,
                                         &err);
    if (rc != TLS_OK)
        print_error("%s\n", buf_cstr(&err));
    assert_int_equal(rc, TLS_OK);
    assert_int_equal(pending, strlen("RSET\r\n"));
    assert_ptr_equal(s.io_ctx, t);
    expect_line(&s, "NOOP"); /* not RSET: that one came in the clear */
    say(&s, "250 ok\r\n");
    /* The child may already be gone: then close_notify meets EPIPE. */
    int down = tls_session_shutdown(t, 1000, &err);
    assert_true(down == TLS_OK || down == TLS_EOF);
    assert_int_equal(reap(pid), 0);
    tls_session_free(t);
    stream_free(&s);
    assert_int_equal(close(fd), 0);
    tls_context_free(ctx);
    buf_free(&err);
}

static void test_client_refuses_injected_reply(void **state)
{
    (void)state;
    struct tls_context *ctx = client_ctx(NULL, TLS_LEVEL_ENCRYPT);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    static const char in[] = "220 Ready\r\n250 injected\r\n";
    assert_int_equal(write(sv[1], in, sizeof in - 1),
                     (ssize_t)(sizeof in - 1));
    struct stream s;
    stream_init(&s, sv[0], IO_TIMEOUT_MS);
    expect_line(&s, "220 Ready");
    size_t pending = 0;
    struct tls_session *t = NULL;
    assert_int_equal(tls_session_start_on_stream(ctx, &s, "localhost",
                                                 IO_TIMEOUT_MS,
                                                 TLS_PENDING_REFUSE,
                                                 &pending, &t, NULL),
                     TLS_PIPELINED);
    assert_int_equal(pending, strlen("250 injected\r\n"));
    assert_null(t);
    stream_free(&s);
    close(sv[0]);
    close(sv[1]);
    tls_context_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_context_errors),
        cmocka_unit_test(test_client_context_and_names),
        cmocka_unit_test(test_client_lines_describe),
        cmocka_unit_test(test_large_transfer),
        cmocka_unit_test(test_verify_by_name),
        cmocka_unit_test(test_server_side),
        cmocka_unit_test(test_handshake_timeout),
        cmocka_unit_test(test_garbage_and_closed_peer),
        cmocka_unit_test(test_peer_closes_mid_session),
        cmocka_unit_test(test_starttls_refuses_pipelined),
        cmocka_unit_test(test_starttls_discards_pipelined),
        cmocka_unit_test(test_client_refuses_injected_reply),
    };
    int failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    OPENSSL_cleanup();
    return failed;
}
