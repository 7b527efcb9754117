/*
 * tls - TLS for smtpd (STARTTLS, RFC 3207; implicit TLS on submissions,
 * RFC 8314), pop3d (STLS, RFC 2595) and the smtp client, on OpenSSL 3.
 *
 * A context holds what every session of one role shares (certificate,
 * key, CA file, policy); create it once per process, before the first
 * connection.  A session is one TLS connection on a connected socket that
 * the caller owns (it is never closed here).  The handshake runs with a
 * deadline on a descriptor that the session puts in non-blocking mode;
 * after it, tls_session_attach() makes a struct stream read and write
 * through TLS, so the protocol code is the same with and without TLS.
 *
 * Server (implicit TLS, e.g. submissions on 465 or POP3S on 995):
 *     struct tls_context *ctx = tls_server_context_create(cert, key, NULL,
 *                                                         &err);
 *     struct tls_session *t;
 *     if (tls_session_start_server(ctx, fd, 60000, &t, &err) != TLS_OK)
 *         ... log "TLS handshake failed: %s", buf_cstr(&err) ...
 *     tls_session_attach(t, &stream);
 *     tls_session_describe(t, &text);  (for the log and Received:)
 *     ... stream_read_line(), stream_printf(), stream_flush() ...
 *     stream_flush(&stream); tls_session_shutdown(t, 1000, NULL);
 *     tls_session_free(t); stream_free(&stream); close(fd);
 *     tls_context_free(ctx);
 *
 * STARTTLS / STLS: see tls_session_start_on_stream() below; it refuses or
 * discards input that the client sent ahead of the handshake (the
 * plaintext command injection of CVE-2011-0411).
 *
 * Client: tls_client_context_create(ca_file, level, &err), then
 * tls_session_start_client(ctx, fd, "mx.example.org", ...) or
 * tls_session_start_on_stream(); tls_session_trust() and
 * tls_session_peer_cn() tell what was verified.
 *
 * Errors: every call that can fail writes a one-line reason into the
 * caller's struct buf (which may be NULL), with OpenSSL's own reasons taken
 * off its error queue, so that nothing is left there for the next call.
 * Once attached, a failed read or write makes the stream return
 * STREAM_ERROR with errno EIO; tls_session_last_error() then says why.
 *
 * Not thread-safe: a context and its sessions belong to one thread.
 */
#ifndef POSTINO_TLS_H
#define POSTINO_TLS_H

#include <stddef.h>

#include "buf.h"
#include "stream.h"

enum tls_status {
    TLS_OK = 0,
    TLS_ERROR = -1,     /* protocol, certificate or system error */
    TLS_TIMEOUT = -2,   /* the deadline passed */
    TLS_EOF = -3,       /* the peer closed the connection */
    TLS_PIPELINED = -4, /* input was buffered before the handshake */
};

/* The client's policy, named as Postfix's smtp_tls_security_level. */
enum tls_level {
    TLS_LEVEL_NONE,    /* no TLS: a session cannot be started */
    TLS_LEVEL_MAY,     /* opportunistic: any certificate, logged */
    TLS_LEVEL_ENCRYPT, /* mandatory encryption, certificate not checked */
    TLS_LEVEL_VERIFY,  /* chain to ca_file (or the system's) + host name */
};

/* What the peer's certificate proved, as Postfix logs it:
 * "Anonymous", "Untrusted", "Trusted" or "Verified" TLS connection. */
enum tls_trust {
    TLS_TRUST_ANONYMOUS, /* no certificate */
    TLS_TRUST_UNTRUSTED, /* a certificate that does not chain to a CA */
    TLS_TRUST_TRUSTED,   /* chains to a CA; name not matched */
    TLS_TRUST_VERIFIED,  /* chains to a CA and matches the host name */
};

/* What to do with input buffered in the stream before the handshake. */
enum tls_pending_policy {
    TLS_PENDING_REFUSE,  /* fail with TLS_PIPELINED, touch nothing */
    TLS_PENDING_DISCARD, /* throw it away, report the count, go on */
};

struct tls_server_options {
    /* PEM CA certificates for client certificates; NULL: do not ask. A
     * client certificate is asked for, never required; see trust(). */
    const char *ca_file;
    /* OpenSSL cipher list for TLS 1.2; NULL: TLS_DEFAULT_CIPHERS.  TLS 1.3
     * uses OpenSSL's default suites. */
    const char *ciphers;
};

#define TLS_DEFAULT_CIPHERS "DEFAULT:!aNULL:!eNULL:!EXPORT:!RC4:!3DES:!MD5"

struct tls_context;
struct tls_session;

/* cert_file: PEM chain, leaf first; key_file: its PEM key (may be the same
 * file); options may be NULL.  NULL on failure, error naming the file. */
struct tls_context *tls_server_context_create(
    const char *cert_file, const char *key_file,
    const struct tls_server_options *options, struct buf *error);
/* ca_file NULL: the system's CA store, loaded for TLS_LEVEL_VERIFY only. */
struct tls_context *tls_client_context_create(const char *ca_file,
                                              enum tls_level level,
                                              struct buf *error);
/* Frees the context once its last session is freed too; NULL is fine. */
void tls_context_free(struct tls_context *ctx);

/* "none", "may", "encrypt", "verify" -> 0 and *level; -1 if unknown. */
int tls_level_from_name(const char *name, enum tls_level *level);
const char *tls_level_name(enum tls_level level);
const char *tls_trust_name(enum tls_trust trust);

/*
 * The handshake on a connected socket, bounded by timeout_ms for the whole
 * of it (EINTR does not end it early; it never waits past the deadline;
 * a negative timeout_ms means no limit).
 * The descriptor is left in non-blocking mode.  On TLS_OK *session is set;
 * otherwise it is NULL and error says why.  servername (client): the name
 * sent as SNI and, at TLS_LEVEL_VERIFY, required in the certificate; may
 * be NULL except at TLS_LEVEL_VERIFY.
 */
int tls_session_start_server(struct tls_context *ctx, int fd, int timeout_ms,
                             struct tls_session **session, struct buf *error);
int tls_session_start_client(struct tls_context *ctx, int fd,
                             const char *servername, int timeout_ms,
                             struct tls_session **session, struct buf *error);

/*
 * STARTTLS / STLS on a stream that has spoken plaintext so far; the role
 * comes from ctx, servername as above (ignored by a server).  Contract:
 *   1. Input already read from the peer but not yet used by the protocol
 *      (stream_pending() > 0) was sent before the TLS handshake and must
 *      never be taken as if it came over TLS.  *pending (may be NULL) is
 *      set to its size.  TLS_PENDING_REFUSE: if there is any, return
 *      TLS_PIPELINED at once, having sent, read and discarded nothing (the
 *      caller logs e.g. "discarding pipelined commands after STARTTLS" or
 *      replies an error and disconnects).  TLS_PENDING_DISCARD: throw it
 *      away and go on; the caller should log the count when it is not 0.
 *   2. Output queued in the stream (e.g. "220 2.0.0 Ready to start TLS")
 *      is flushed in plaintext before the handshake, within the stream's
 *      own timeouts; a failed flush returns TLS_ERROR.
 *   3. The handshake, bounded by timeout_ms and by the stream's deadline.
 *   4. On TLS_OK the session is attached to the stream.
 */
int tls_session_start_on_stream(struct tls_context *ctx, struct stream *s,
                                const char *servername, int timeout_ms,
                                enum tls_pending_policy policy,
                                size_t *pending,
                                struct tls_session **session,
                                struct buf *error);

/*
 * Installs read_fn/write_fn/io_ctx on the stream: from now on it reads and
 * writes through TLS.  These functions never block: a record that cannot
 * be read or written yet gives -1 with errno EAGAIN, and the stream polls
 * as stream.c does (POLLIN after a read, POLLOUT after a write).  When TLS
 * needs the other direction (a read that must first write, or the reverse)
 * the function waits for that itself, within the stream's timeout_ms and
 * deadline, and retries; if that wait times out it fails with ETIMEDOUT.
 * End of file (close_notify, or the peer closing without one: SMTP and
 * POP3 detect truncation themselves) reads as 0.  Any other failure is -1
 * with errno EIO, the reason in tls_session_last_error().
 * The stream must outlive its use through the session, and the session
 * must outlive the stream's use: call tls_session_detach() before
 * tls_session_free() if the stream is used again after.
 */
void tls_session_attach(struct tls_session *session, struct stream *s);
/* Makes the stream's reads and writes fail with EIO from now on. */
void tls_session_detach(struct stream *s);

/* POLLIN or POLLOUT: what the last call that failed with EAGAIN waited
 * for; 0 if none did.  For a stream.c that polls for what TLS wants. */
short tls_session_wants(const struct tls_session *session);

/* The reason of the last failed read or write ("" if none). */
const char *tls_session_last_error(const struct tls_session *session);

/* Appends e.g. "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)"
 * to out, as Postfix logs it and puts in Received:.  0, or -1 (too long). */
int tls_session_describe(const struct tls_session *session, struct buf *out);
/* Appends the peer certificate's subject CN to out; -1 if there is none. */
int tls_session_peer_cn(const struct tls_session *session, struct buf *out);
enum tls_trust tls_session_trust(const struct tls_session *session);
/* OpenSSL's certificate verification result, e.g. "ok" or "self-signed
 * certificate"; "no certificate" when the peer sent none. */
const char *tls_session_verify_text(const struct tls_session *session);

/*
 * Sends close_notify, waiting at most timeout_ms, and does not wait for
 * the peer's: it never hangs.  Flush the stream first.  TLS_OK, or an
 * error status (e.g. after a failed read or write, nothing is sent).
 */
int tls_session_shutdown(struct tls_session *session, int timeout_ms,
                         struct buf *error);
/* Frees the session (not the descriptor, not the stream); NULL is fine. */
void tls_session_free(struct tls_session *session);

#endif
