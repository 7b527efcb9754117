/*
 * tls - TLS contexts and sessions on OpenSSL 3 for smtpd, pop3d and the
 * smtp client; see tls.h for the interface and its contract.
 *
 * Usage: create one context per role at start (tls_server_context_create
 * or tls_client_context_create), start a session on each connected socket
 * (tls_session_start_server/_client, or tls_session_start_on_stream for
 * STARTTLS), attach it to the connection's struct stream, and at the end
 * flush, tls_session_shutdown(), tls_session_free(), tls_context_free().
 *
 * How it works:
 *   - Policy, for every context: TLS 1.2 at least; for TLS 1.2 OpenSSL's
 *     DEFAULT list without aNULL, eNULL, EXPORT, RC4, 3DES and MD5 (TLS 1.3
 *     keeps OpenSSL's suites); no compression (CRIME); no renegotiation;
 *     no session cache and no session tickets.  Tickets are off because
 *     every Postino process would hold its own ticket key: a client would
 *     rarely come back to the process that issued its ticket, so tickets
 *     would cost a round of crypto and weaken forward secrecy (a stolen
 *     key decrypts all sessions since its start) for almost no resumption.
 *     A peer that closes without close_notify reads as end of file
 *     (SSL_OP_IGNORE_UNEXPECTED_EOF): SMTP and POP3 end their data with
 *     ".", so a truncation is seen by the protocol anyway.
 *   - I/O goes through a small BIO of our own on the socket: the same as
 *     OpenSSL's socket BIO but written with send(MSG_NOSIGNAL), like
 *     stream.c, so that a peer that went away gives EPIPE, never SIGPIPE,
 *     and it remembers end of file so that errors can say "lost connection".
 *   - Handshake and shutdown: the descriptor is non-blocking; on WANT_READ
 *     or WANT_WRITE poll() waits for that direction until the deadline
 *     (CLOCK_MONOTONIC, EINTR resumes with the time left), then retries.
 *   - Stream hooks: SSL_read/SSL_write; WANT in the stream's own direction
 *     becomes EAGAIN (the stream then polls for it); WANT in the other
 *     direction is waited for here, within the stream's timeout and
 *     deadline, and retried, because stream.c polls POLLIN after a read
 *     and POLLOUT after a write.
 *   - Errors: the queue is cleared before each OpenSSL call and emptied
 *     into the caller's buffer (or the session's last_error) after a
 *     failure.
 *   - A context counts its sessions: it is freed with the last of them,
 *     since each session's BIO uses the context's BIO_METHOD.
 */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define TLS_ERROR_LIMIT 2048
#define TLS_NAME_LIMIT 255
#define TLS_SESSION_ID_CONTEXT "postino"

struct tls_context {
    SSL_CTX *ssl_ctx;
    BIO_METHOD *bio_method;
    int is_server;
    enum tls_level level;
    int refs; /* the owner's, plus one per live session */
};

struct tls_session {
    SSL *ssl;
    struct tls_context *ctx;
    int fd;
    int peer_eof;           /* a read of the socket gave end of file */
    int failed;             /* fatal error: no more I/O, no close_notify */
    short wants;            /* POLLIN/POLLOUT of the last EAGAIN */
    struct stream *stream;  /* attached stream: its timeouts bound waits */
    struct buf servername;  /* client: the name the certificate must have */
    struct buf last_error;
};

/* ---- error text ---- */

/* Appends as much of text as fits in b's limit. */
static void tls_append_bounded(struct buf *b, const char *text)
{
    size_t len = strlen(text);
    size_t room = b->limit - b->len;
    if (len > room)
        len = room;
    if (len > 0 && buf_append(b, text, len) != 0)
        return; /* out of memory: the text stays shorter */
}

/* Moves OpenSSL's queued reasons to the end of b: ": r1; r2". */
static void tls_take_queue(struct buf *b)
{
    int first = 1;
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
        char text[256];
        ERR_error_string_n(e, text, sizeof text);
        tls_append_bounded(b, first ? ": " : "; ");
        tls_append_bounded(b, text);
        first = 0;
    }
}

/* Sets out (may be NULL) to the formatted reason followed by OpenSSL's
 * queued reasons, and empties the queue. */
static void tls_vfail(struct buf *out, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void tls_vfail(struct buf *out, const char *fmt, va_list ap)
{
    struct buf text;
    buf_init(&text, TLS_ERROR_LIMIT);
    if (buf_vprintf(&text, fmt, ap) != 0)
        tls_append_bounded(&text, fmt); /* too long: at least the form */
    tls_take_queue(&text);
    if (out != NULL) {
        buf_reset(out);
        tls_append_bounded(out, buf_cstr(&text));
    }
    buf_free(&text);
}

static void tls_fail(struct buf *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void tls_fail(struct buf *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tls_vfail(out, fmt, ap);
    va_end(ap);
}

/* ---- deadlines ---- */

/* The absolute deadline timeout_ms from now; 0 (none) if negative. */
static long long tls_deadline(int timeout_ms)
{
    if (timeout_ms < 0)
        return 0;
    long long deadline = stream_now_ms() + timeout_ms;
    return deadline > 0 ? deadline : 1;
}

/* The earlier of two deadlines, 0 meaning none. */
static long long tls_earlier(long long a, long long b)
{
    if (a == 0)
        return b;
    if (b == 0)
        return a;
    return a < b ? a : b;
}

/* Waits until fd is ready for events or the deadline (0: none) passes;
 * TLS_OK, TLS_TIMEOUT, or TLS_ERROR with errno. */
static int tls_poll(int fd, short events, long long deadline)
{
    for (;;) {
        int ms = -1;
        if (deadline != 0) {
            long long left = deadline - stream_now_ms();
            if (left <= 0)
                return TLS_TIMEOUT;
            ms = left > INT_MAX ? INT_MAX : (int)left;
        }
        struct pollfd p = { .fd = fd, .events = events, .revents = 0 };
        int rc = poll(&p, 1, ms);
        if (rc > 0 && (p.revents & POLLNVAL)) {
            errno = EBADF;
            return TLS_ERROR;
        }
        if (rc > 0)
            return TLS_OK; /* ready, or POLLHUP/POLLERR: I/O will say */
        if (rc < 0 && errno != EINTR)
            return TLS_ERROR;
    }
}

/* ---- the socket BIO ---- */

static int tls_bio_write(BIO *bio, const char *data, size_t len,
                         size_t *written)
{
    struct tls_session *t = BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    ssize_t n = send(t->fd, data, len, MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK)
        n = write(t->fd, data, len);
    if (n >= 0) {
        *written = (size_t)n;
        return 1;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        BIO_set_retry_write(bio);
    return 0;
}

static int tls_bio_read(BIO *bio, char *data, size_t len, size_t *got)
{
    struct tls_session *t = BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    ssize_t n = read(t->fd, data, len);
    if (n > 0) {
        *got = (size_t)n;
        return 1;
    }
    if (n == 0) {
        t->peer_eof = 1;
        return 0;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        BIO_set_retry_read(bio);
    return 0;
}

static long tls_bio_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
    (void)num;
    struct tls_session *t = BIO_get_data(bio);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_EOF:
        return t != NULL && t->peer_eof;
    case BIO_C_GET_FD:
        if (t == NULL)
            return -1;
        if (ptr != NULL)
            *(int *)ptr = t->fd;
        return t->fd;
    default:
        return 0;
    }
}

static int tls_bio_create(BIO *bio)
{
    BIO_set_init(bio, 1);
    return 1;
}

static int tls_bio_destroy(BIO *bio)
{
    (void)bio; /* the data is the session, which frees itself */
    return 1;
}

static BIO_METHOD *tls_bio_method_new(void)
{
    int index = BIO_get_new_index();
    if (index == -1)
        return NULL;
    BIO_METHOD *m = BIO_meth_new(
        index | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR, "postino socket");
    if (m == NULL)
        return NULL;
    if (BIO_meth_set_write_ex(m, tls_bio_write) != 1 ||
        BIO_meth_set_read_ex(m, tls_bio_read) != 1 ||
        BIO_meth_set_ctrl(m, tls_bio_ctrl) != 1 ||
        BIO_meth_set_create(m, tls_bio_create) != 1 ||
        BIO_meth_set_destroy(m, tls_bio_destroy) != 1) {
        BIO_meth_free(m);
        return NULL;
    }
    return m;
}

/* ---- contexts ---- */

static void tls_context_release(struct tls_context *ctx)
{
    if (ctx == NULL || --ctx->refs > 0)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    BIO_meth_free(ctx->bio_method);
    free(ctx);
}

void tls_context_free(struct tls_context *ctx)
{
    tls_context_release(ctx);
}

/* The policy that every context shares; see the comment at the top. */
static int tls_context_policy(struct tls_context *ctx, const char *ciphers,
                              struct buf *error)
{
    SSL_CTX *c = ctx->ssl_ctx;
    uint64_t options = SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                       SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF;
    if (ctx->is_server)
        options |= SSL_OP_CIPHER_SERVER_PREFERENCE;
    SSL_CTX_set_options(c, options);
    SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    if (SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_num_tickets(c, 0) != 1) {
        tls_fail(error, "cannot set the TLS protocol policy");
        return -1;
    }
    if (SSL_CTX_set_cipher_list(c, ciphers ? ciphers : TLS_DEFAULT_CIPHERS)
        != 1) {
        tls_fail(error, "bad TLS cipher list \"%s\"",
                 ciphers ? ciphers : TLS_DEFAULT_CIPHERS);
        return -1;
    }
    return 0;
}

static struct tls_context *tls_context_new(int is_server, const char *ciphers,
                                          struct buf *error)
{
    ERR_clear_error();
    struct tls_context *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL) {
        tls_fail(error, "out of memory");
        return NULL;
    }
    ctx->is_server = is_server;
    ctx->refs = 1;
    ctx->ssl_ctx =
        SSL_CTX_new(is_server ? TLS_server_method() : TLS_client_method());
    ctx->bio_method = tls_bio_method_new();
    if (ctx->ssl_ctx == NULL || ctx->bio_method == NULL) {
        tls_fail(error, "cannot create a TLS context");
        tls_context_release(ctx);
        return NULL;
    }
    if (tls_context_policy(ctx, ciphers, error) != 0) {
        tls_context_release(ctx);
        return NULL;
    }
    return ctx;
}

/* A client certificate is asked for, not required: the handshake goes on
 * whatever the result, which tls_session_trust() reports. */
static int tls_accept_any_certificate(int ok, X509_STORE_CTX *store)
{
    (void)ok;
    (void)store;
    return 1;
}

static int tls_server_ask_certificate(struct tls_context *ctx,
                                      const char *ca_file, struct buf *error)
{
    if (SSL_CTX_load_verify_locations(ctx->ssl_ctx, ca_file, NULL) != 1) {
        tls_fail(error, "cannot load CA certificates from %s", ca_file);
        return -1;
    }
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca_file);
    if (names == NULL) {
        tls_fail(error, "cannot load CA names from %s", ca_file);
        return -1;
    }
    SSL_CTX_set_client_CA_list(ctx->ssl_ctx, names);
    SSL_CTX_set_verify(ctx->ssl_ctx, SSL_VERIFY_PEER,
                       tls_accept_any_certificate);
    return 0;
}

/* Whether the last queued error says that key and certificate differ. */
static int tls_key_mismatch(void)
{
    unsigned long e = ERR_peek_last_error();
    return ERR_GET_LIB(e) == ERR_LIB_X509 &&
           ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH;
}

static int tls_server_load_identity(struct tls_context *ctx,
                                    const char *cert_file,
                                    const char *key_file, struct buf *error)
{
    SSL_CTX *c = ctx->ssl_ctx;
    if (SSL_CTX_use_certificate_chain_file(c, cert_file) != 1) {
        tls_fail(error, "cannot load the certificate chain from %s",
                 cert_file);
        return -1;
    }
    /* Loading the key also checks it against the certificate. */
    if (SSL_CTX_use_PrivateKey_file(c, key_file, SSL_FILETYPE_PEM) != 1 &&
        !tls_key_mismatch()) {
        tls_fail(error, "cannot load the private key from %s", key_file);
        return -1;
    }
    if (tls_key_mismatch() || SSL_CTX_check_private_key(c) != 1) {
        tls_fail(error, "the private key in %s does not match the "
                        "certificate in %s", key_file, cert_file);
        return -1;
    }
    return 0;
}

/* Needed by OpenSSL when client certificates are asked for. */
static int tls_server_session_id(struct tls_context *ctx, struct buf *error)
{
    if (SSL_CTX_set_session_id_context(
            ctx->ssl_ctx, (const unsigned char *)TLS_SESSION_ID_CONTEXT,
            sizeof TLS_SESSION_ID_CONTEXT - 1) == 1)
        return 0;
    tls_fail(error, "cannot set the TLS session ID context");
    return -1;
}

struct tls_context *tls_server_context_create(
    const char *cert_file, const char *key_file,
    const struct tls_server_options *options, struct buf *error)
{
    if (cert_file == NULL || key_file == NULL) {
        tls_fail(error, "a TLS server needs a certificate and a key file");
        return NULL;
    }
    const char *ciphers = options ? options->ciphers : NULL;
    struct tls_context *ctx = tls_context_new(1, ciphers, error);
    if (ctx == NULL)
        return NULL;
    if (tls_server_load_identity(ctx, cert_file, key_file, error) != 0 ||
        tls_server_session_id(ctx, error) != 0 ||
        (options && options->ca_file &&
         tls_server_ask_certificate(ctx, options->ca_file, error) != 0)) {
        tls_context_release(ctx);
        return NULL;
    }
    return ctx;
}

static int tls_client_trust_store(struct tls_context *ctx,
                                  const char *ca_file, struct buf *error)
{
    if (ca_file != NULL) {
        if (SSL_CTX_load_verify_locations(ctx->ssl_ctx, ca_file, NULL) == 1)
            return 0;
        tls_fail(error, "cannot load CA certificates from %s", ca_file);
        return -1;
    }
    if (ctx->level != TLS_LEVEL_VERIFY ||
        SSL_CTX_set_default_verify_paths(ctx->ssl_ctx) == 1)
        return 0;
    tls_fail(error, "cannot load the system's CA certificates");
    return -1;
}

struct tls_context *tls_client_context_create(const char *ca_file,
                                              enum tls_level level,
                                              struct buf *error)
{
    if (level < TLS_LEVEL_NONE || level > TLS_LEVEL_VERIFY) {
        tls_fail(error, "unknown TLS security level %d", (int)level);
        return NULL;
    }
    struct tls_context *ctx = tls_context_new(0, NULL, error);
    if (ctx == NULL)
        return NULL;
    ctx->level = level;
    SSL_CTX_set_verify(ctx->ssl_ctx,
                       level == TLS_LEVEL_VERIFY ? SSL_VERIFY_PEER
                                                 : SSL_VERIFY_NONE,
                       NULL);
    if (tls_client_trust_store(ctx, ca_file, error) != 0) {
        tls_context_release(ctx);
        return NULL;
    }
    return ctx;
}

/* ---- names ---- */

static const char *const tls_level_names[] = { "none", "may", "encrypt",
                                               "verify" };

int tls_level_from_name(const char *name, enum tls_level *level)
{
    for (size_t i = 0; i < sizeof tls_level_names / sizeof *tls_level_names;
         i++) {
        if (name != NULL && strcmp(name, tls_level_names[i]) == 0) {
            *level = (enum tls_level)i;
            return 0;
        }
    }
    return -1;
}

const char *tls_level_name(enum tls_level level)
{
    if (level < TLS_LEVEL_NONE || level > TLS_LEVEL_VERIFY)
        return "unknown";
    return tls_level_names[level];
}

const char *tls_trust_name(enum tls_trust trust)
{
    switch (trust) {
    case TLS_TRUST_ANONYMOUS:
        return "Anonymous";
    case TLS_TRUST_UNTRUSTED:
        return "Untrusted";
    case TLS_TRUST_TRUSTED:
        return "Trusted";
    case TLS_TRUST_VERIFIED:
        return "Verified";
    }
    return "Unknown";
}

/* ---- sessions ---- */

static int tls_is_ip_literal(const char *name)
{
    unsigned char addr[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, name, addr) == 1 ||
           inet_pton(AF_INET6, name, addr) == 1;
}

static int tls_set_nonblocking(int fd, struct buf *error)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
        tls_fail(error, "cannot make the socket non-blocking: %s",
                 strerror(errno));
        return -1;
    }
    return 0;
}

void tls_session_free(struct tls_session *t)
{
    if (t == NULL)
        return;
    SSL_free(t->ssl); /* and the BIO, before the context's BIO_METHOD */
    buf_free(&t->servername);
    buf_free(&t->last_error);
    tls_context_release(t->ctx);
    free(t);
}

static struct tls_session *tls_session_new(struct tls_context *ctx, int fd,
                                          struct buf *error)
{
    struct tls_session *t = calloc(1, sizeof *t);
    if (t == NULL) {
        tls_fail(error, "out of memory");
        return NULL;
    }
    t->fd = fd;
    t->ctx = ctx;
    ctx->refs++;
    buf_init(&t->servername, TLS_NAME_LIMIT);
    buf_init(&t->last_error, TLS_ERROR_LIMIT);
    t->ssl = SSL_new(ctx->ssl_ctx);
    BIO *bio = t->ssl ? BIO_new(ctx->bio_method) : NULL;
    if (bio == NULL) {
        tls_fail(error, "cannot create a TLS session");
        tls_session_free(t);
        return NULL;
    }
    BIO_set_data(bio, t);
    SSL_set_bio(t->ssl, bio, bio);
    return t;
}

/* SNI, and at TLS_LEVEL_VERIFY the name the certificate must match. */
static int tls_client_setup(struct tls_session *t, const char *servername,
                            struct buf *error)
{
    SSL_set_connect_state(t->ssl);
    if (servername == NULL || servername[0] == '\0') {
        if (t->ctx->level != TLS_LEVEL_VERIFY)
            return 0;
        tls_fail(error, "TLS security level verify needs a server name");
        return -1;
    }
    if (buf_set_str(&t->servername, servername) != 0) {
        tls_fail(error, "TLS server name too long");
        return -1;
    }
    if (!tls_is_ip_literal(servername) &&
        SSL_set_tlsext_host_name(t->ssl, servername) != 1) {
        tls_fail(error, "cannot set the TLS server name %s", servername);
        return -1;
    }
    if (t->ctx->level != TLS_LEVEL_VERIFY)
        return 0;
    SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (SSL_set1_host(t->ssl, servername) != 1) {
        tls_fail(error, "cannot set the TLS host name to verify %s",
                 servername);
        return -1;
    }
    return 0;
}

/* Reports why SSL_do_handshake failed with err; sys_errno is errno just
 * after it.  Returns TLS_EOF or TLS_ERROR. */
static int tls_handshake_failed(struct tls_session *t, int err, int sys_errno,
                                struct buf *error)
{
    t->failed = 1;
    long verify = SSL_get_verify_result(t->ssl);
    int gone = t->peer_eof || err == SSL_ERROR_ZERO_RETURN ||
               (err == SSL_ERROR_SYSCALL &&
                (sys_errno == EPIPE || sys_errno == ECONNRESET));
    if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && !gone) {
        tls_fail(error, "TLS handshake failed: %s",
                 sys_errno ? strerror(sys_errno) : "unexpected end of file");
        return TLS_ERROR;
    }
    if (gone) {
        tls_fail(error, "lost connection during the TLS handshake");
        return TLS_EOF;
    }
    if (!t->ctx->is_server && t->ctx->level == TLS_LEVEL_VERIFY &&
        verify != X509_V_OK) {
        tls_fail(error, "TLS handshake failed: server certificate not "
                        "verified: %s",
                 X509_verify_cert_error_string(verify));
        return TLS_ERROR;
    }
    tls_fail(error, "TLS handshake failed");
    return TLS_ERROR;
}

static int tls_handshake(struct tls_session *t, long long deadline,
                         struct buf *error)
{
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int rc = SSL_do_handshake(t->ssl);
        int sys_errno = errno;
        if (rc == 1)
            return TLS_OK;
        int err = SSL_get_error(t->ssl, rc);
        short events = err == SSL_ERROR_WANT_READ    ? POLLIN
                       : err == SSL_ERROR_WANT_WRITE ? POLLOUT
                                                     : 0;
        if (events == 0)
            return tls_handshake_failed(t, err, sys_errno, error);
        int waited = tls_poll(t->fd, events, deadline);
        if (waited == TLS_TIMEOUT) {
            t->failed = 1;
            tls_fail(error, "TLS handshake timed out");
            return TLS_TIMEOUT;
        }
        if (waited != TLS_OK) {
            t->failed = 1;
            tls_fail(error, "TLS handshake failed: poll: %s",
                     strerror(errno));
            return TLS_ERROR;
        }
    }
}

static int tls_start(struct tls_context *ctx, int fd, const char *servername,
                     long long deadline, struct tls_session **session,
                     struct buf *error)
{
    *session = NULL;
    ERR_clear_error();
    if (ctx == NULL) {
        tls_fail(error, "no TLS context");
        return TLS_ERROR;
    }
    if (!ctx->is_server && ctx->level == TLS_LEVEL_NONE) {
        tls_fail(error, "TLS is off (security level none)");
        return TLS_ERROR;
    }
    if (tls_set_nonblocking(fd, error) != 0)
        return TLS_ERROR;
    struct tls_session *t = tls_session_new(ctx, fd, error);
    if (t == NULL)
        return TLS_ERROR;
    if (ctx->is_server)
        SSL_set_accept_state(t->ssl);
    else if (tls_client_setup(t, servername, error) != 0) {
        tls_session_free(t);
        return TLS_ERROR;
    }
    int rc = tls_handshake(t, deadline, error);
    if (rc != TLS_OK) {
        tls_session_free(t);
        return rc;
    }
    *session = t;
    return TLS_OK;
}

static int tls_check_role(struct tls_context *ctx, int server,
                          struct tls_session **session, struct buf *error)
{
    *session = NULL;
    if (ctx != NULL && ctx->is_server != server) {
        tls_fail(error, "a TLS %s context used for a %s session",
                 ctx->is_server ? "server" : "client",
                 server ? "server" : "client");
        return -1;
    }
    return 0;
}

int tls_session_start_server(struct tls_context *ctx, int fd, int timeout_ms,
                             struct tls_session **session, struct buf *error)
{
    if (tls_check_role(ctx, 1, session, error) != 0)
        return TLS_ERROR;
    return tls_start(ctx, fd, NULL, tls_deadline(timeout_ms), session, error);
}

int tls_session_start_client(struct tls_context *ctx, int fd,
                             const char *servername, int timeout_ms,
                             struct tls_session **session, struct buf *error)
{
    if (tls_check_role(ctx, 0, session, error) != 0)
        return TLS_ERROR;
    return tls_start(ctx, fd, servername, tls_deadline(timeout_ms), session,
                     error);
}

/* Sends what the stream holds (e.g. "220 Ready to start TLS") in the
 * clear, before the handshake. */
static int tls_flush_plaintext(struct stream *s, struct buf *error)
{
    int rc = stream_flush(s);
    if (rc == STREAM_OK)
        return TLS_OK;
    tls_fail(error, "cannot send before the TLS handshake: %s",
             rc == STREAM_TIMEOUT ? "timeout" : strerror(errno));
    return rc == STREAM_TIMEOUT ? TLS_TIMEOUT : TLS_ERROR;
}

int tls_session_start_on_stream(struct tls_context *ctx, struct stream *s,
                                const char *servername, int timeout_ms,
                                enum tls_pending_policy policy,
                                size_t *pending,
                                struct tls_session **session,
                                struct buf *error)
{
    *session = NULL;
    size_t n = stream_pending(s);
    if (pending != NULL)
        *pending = n;
    if (n > 0 && policy != TLS_PENDING_DISCARD) {
        tls_fail(error, "%zu bytes of input sent before the TLS handshake",
                 n);
        return TLS_PIPELINED;
    }
    if (s->read_fn != NULL || s->write_fn != NULL) {
        tls_fail(error, "the stream already has an I/O layer");
        return TLS_ERROR;
    }
    if (s->error != 0) {
        tls_fail(error, "the stream has already failed");
        return s->error == STREAM_TIMEOUT ? TLS_TIMEOUT : TLS_ERROR;
    }
    if (n > 0 && stream_discard_pending(s) != n) {
        tls_fail(error, "cannot discard input before the TLS handshake");
        return TLS_ERROR;
    }
    int rc = tls_flush_plaintext(s, error);
    if (rc != TLS_OK)
        return rc;
    long long deadline = tls_earlier(tls_deadline(timeout_ms), s->deadline_ms);
    rc = tls_start(ctx, s->fd, servername, deadline, session, error);
    if (rc == TLS_OK)
        tls_session_attach(*session, s);
    return rc;
}

/* ---- I/O through the stream ---- */

/* Sets the session's last error from a failed SSL_read/SSL_write. */
static void tls_io_failed(struct tls_session *t, const char *what, int err,
                          int sys_errno)
{
    t->failed = 1;
    if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
        tls_fail(&t->last_error, "TLS %s failed: %s", what,
                 sys_errno ? strerror(sys_errno) : "unexpected end of file");
    else
        tls_fail(&t->last_error, "TLS %s failed", what);
}

/* Waits for the direction that TLS wants but the stream does not poll
 * for, within the attached stream's timeout and deadline.  0 when ready;
 * -1 with errno (ETIMEDOUT) otherwise. */
static int tls_wait_other(struct tls_session *t, short events)
{
    long long deadline = 0;
    if (t->stream != NULL)
        deadline = tls_earlier(tls_deadline(t->stream->timeout_ms),
                               t->stream->deadline_ms);
    int rc = tls_poll(t->fd, events, deadline);
    if (rc == TLS_OK)
        return 0;
    if (rc == TLS_TIMEOUT)
        errno = ETIMEDOUT;
    tls_fail(&t->last_error, "TLS: waiting to %s: %s",
             events == POLLIN ? "read" : "write", strerror(errno));
    return -1;
}

/* After SSL_read/SSL_write failed with err: 1 to call it again, 0 for end
 * of file (reads), -1 with errno for the stream.  own: the direction the
 * stream polls for after EAGAIN from this call. */
static int tls_io_result(struct tls_session *t, short own, int err,
                         int sys_errno)
{
    const char *what = own == POLLIN ? "read" : "write";
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        short events = err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
        if (events != own)
            return tls_wait_other(t, events) == 0 ? 1 : -1;
        t->wants = events;
        errno = EAGAIN;
        return -1;
    }
    if (err == SSL_ERROR_ZERO_RETURN && own == POLLIN)
        return 0;
    if (err == SSL_ERROR_ZERO_RETURN) {
        t->failed = 1;
        tls_fail(&t->last_error, "TLS write failed: the peer closed TLS");
    } else {
        tls_io_failed(t, what, err, sys_errno);
    }
    errno = EIO;
    return -1;
}

static ssize_t tls_read_fn(void *io_ctx, void *data, size_t len)
{
    struct tls_session *t = io_ctx;
    for (;;) {
        if (t->failed) {
            errno = EIO;
            return -1;
        }
        ERR_clear_error();
        errno = 0;
        size_t n = 0;
        int ok = SSL_read_ex(t->ssl, data, len, &n);
        int sys_errno = errno;
        if (ok == 1) {
            t->wants = 0;
            return (ssize_t)n;
        }
        int rc = tls_io_result(t, POLLIN, SSL_get_error(t->ssl, ok),
                               sys_errno);
        if (rc != 1)
            return rc;
    }
}

static ssize_t tls_write_fn(void *io_ctx, const void *data, size_t len)
{
    struct tls_session *t = io_ctx;
    for (;;) {
        if (t->failed) {
            errno = EIO;
            return -1;
        }
        ERR_clear_error();
        errno = 0;
        size_t n = 0;
        int ok = SSL_write_ex(t->ssl, data, len, &n);
        int sys_errno = errno;
        if (ok == 1) {
            t->wants = 0;
            return (ssize_t)n;
        }
        int rc = tls_io_result(t, POLLOUT, SSL_get_error(t->ssl, ok),
                               sys_errno);
        if (rc != 1)
            return rc;
    }
}

void tls_session_attach(struct tls_session *t, struct stream *s)
{
    t->stream = s;
    s->read_fn = tls_read_fn;
    s->write_fn = tls_write_fn;
    s->io_ctx = t;
}

static ssize_t tls_detached_read(void *io_ctx, void *data, size_t len)
{
    (void)io_ctx;
    (void)data;
    (void)len;
    errno = EIO;
    return -1;
}

static ssize_t tls_detached_write(void *io_ctx, const void *data, size_t len)
{
    (void)io_ctx;
    (void)data;
    (void)len;
    errno = EIO;
    return -1;
}

void tls_session_detach(struct stream *s)
{
    if (s->io_ctx != NULL && s->read_fn == tls_read_fn) {
        struct tls_session *t = s->io_ctx;
        t->stream = NULL;
    }
    s->read_fn = tls_detached_read;
    s->write_fn = tls_detached_write;
    s->io_ctx = NULL;
}

short tls_session_wants(const struct tls_session *t)
{
    return t->wants;
}

const char *tls_session_last_error(const struct tls_session *t)
{
    return buf_cstr(&t->last_error);
}

/* ---- what the logs say ---- */

int tls_session_describe(const struct tls_session *t, struct buf *out)
{
    const SSL_CIPHER *cipher = SSL_get_current_cipher(t->ssl);
    if (cipher == NULL)
        return buf_append_str(out, "no TLS cipher");
    int alg_bits = 0;
    int bits = SSL_CIPHER_get_bits(cipher, &alg_bits);
    return buf_printf(out, "%s with cipher %s (%d/%d bits)",
                      SSL_get_version(t->ssl), SSL_CIPHER_get_name(cipher),
                      bits, alg_bits);
}

/* Appends s, with anything but printable ASCII as '?', for the logs. */
static int tls_append_printable(struct buf *out, const unsigned char *s,
                                int len)
{
    for (int i = 0; i < len; i++) {
        char c = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
        if (buf_append_char(out, c) != 0)
            return -1;
    }
    return 0;
}

int tls_session_peer_cn(const struct tls_session *t, struct buf *out)
{
    X509 *cert = SSL_get0_peer_certificate(t->ssl);
    if (cert == NULL)
        return -1;
    X509_NAME *subject = X509_get_subject_name(cert);
    int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (index < 0)
        return -1;
    ASN1_STRING *data =
        X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
    unsigned char *utf8 = NULL;
    int len = data ? ASN1_STRING_to_UTF8(&utf8, data) : -1;
    if (len < 0) {
        ERR_clear_error();
        return -1;
    }
    int rc = tls_append_printable(out, utf8, len);
    OPENSSL_free(utf8);
    return rc;
}

/* Whether the certificate names the host we meant to reach. */
static int tls_name_matches(const struct tls_session *t, X509 *cert)
{
    const char *name = buf_cstr(&t->servername);
    if (t->servername.len == 0)
        return 0;
    if (tls_is_ip_literal(name))
        return X509_check_ip_asc(cert, name, 0) == 1;
    return X509_check_host(cert, name, t->servername.len,
                           X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1;
}

enum tls_trust tls_session_trust(const struct tls_session *t)
{
    X509 *cert = SSL_get0_peer_certificate(t->ssl);
    if (cert == NULL)
        return TLS_TRUST_ANONYMOUS;
    if (SSL_get_verify_result(t->ssl) != X509_V_OK)
        return TLS_TRUST_UNTRUSTED;
    return tls_name_matches(t, cert) ? TLS_TRUST_VERIFIED
                                     : TLS_TRUST_TRUSTED;
}

const char *tls_session_verify_text(const struct tls_session *t)
{
    if (SSL_get0_peer_certificate(t->ssl) == NULL)
        return "no certificate";
    return X509_verify_cert_error_string(SSL_get_verify_result(t->ssl));
}

/* ---- the end ---- */

int tls_session_shutdown(struct tls_session *t, int timeout_ms,
                         struct buf *error)
{
    if (t->failed) {
        tls_fail(error, "no TLS shutdown after a failed connection");
        return TLS_ERROR;
    }
    long long deadline = tls_deadline(timeout_ms);
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int rc = SSL_shutdown(t->ssl);
        int sys_errno = errno;
        if (rc >= 0)
            return TLS_OK; /* ours is sent; we do not wait for theirs */
        int err = SSL_get_error(t->ssl, rc);
        if (err == SSL_ERROR_WANT_READ)
            return TLS_OK; /* only the peer's close_notify is missing */
        if (err == SSL_ERROR_WANT_WRITE) {
            int waited = tls_poll(t->fd, POLLOUT, deadline);
            if (waited == TLS_OK)
                continue;
            t->failed = 1;
            tls_fail(error, "TLS shutdown: %s",
                     waited == TLS_TIMEOUT ? "timeout" : strerror(errno));
            return waited;
        }
        t->failed = 1;
        int gone = sys_errno == EPIPE || sys_errno == ECONNRESET;
        if (gone && (SSL_get_shutdown(t->ssl) & SSL_RECEIVED_SHUTDOWN)) {
            ERR_clear_error();
            return TLS_OK; /* the peer closed first, and is gone */
        }
        if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
            tls_fail(error, "TLS shutdown failed: %s",
                     sys_errno ? strerror(sys_errno) : "end of file");
        else
            tls_fail(error, "TLS shutdown failed");
        return gone ? TLS_EOF : TLS_ERROR;
    }
}
