/*
 * smtpd_auth - AUTH (RFC 4954) with the mechanisms of lib/sasl.h (PLAIN,
 * LOGIN), checked against smtpd_sasl_password_maps (crypt(3) hashes,
 * lib/password.h).
 *
 * AUTH is offered and taken only with smtpd_sasl_auth_enable = yes and,
 * with smtpd_tls_auth_only = yes (the default here, unlike Postfix:
 * plaintext passwords never cross an unencrypted connection), only after
 * STARTTLS or on an implicit-TLS port; before that the answer is
 * "538 5.7.11 Encryption required for requested authentication
 * mechanism".  One successful AUTH per session; not inside a
 * transaction.  Replies: 235 2.7.0 on success, 535 5.7.8 for a wrong
 * password or an unknown user (the same answer), 454 4.7.0 when the table
 * fails, and lib/sasl.h's codes for malformed exchanges.
 *
 * Logged as Postfix does: "warning: NAME[ADDR]: SASL PLAIN authentication
 * failed: ..." (never the password); success shows in the
 * "ID: client=..., sasl_method=PLAIN, sasl_username=u" line.
 */
#include <ctype.h>
#include <string.h>

#include "log.h"
#include "password.h"
#include "smtpd.h"

/* Checks the password in each table in turn: the first that knows the
 * user decides. */
static int auth_check(struct smtpd_session *s, const char *user,
                      const char *password, struct buf *error)
{
    const struct map_list *maps = s->smtpd->sasl_passwords;
    return password_check_maps(maps, user, password, error);
}

/* Runs the challenge-response exchange; returns the sasl status. */
static int auth_exchange(struct smtpd_session *s, struct sasl *sasl,
                         int r, int *lost, int *too_long)
{
    struct buf line;
    buf_init(&line, SASL_LINE_MAX + 1);
    while (r == SASL_CHALLENGE) {
        smtpd_reply(s, "334 %s", sasl_challenge(sasl));
        if (stream_flush(&s->stream) != STREAM_OK) {
            *lost = 1;
            break;
        }
        /* Each response has its own smtpd_timeout deadline, as each
         * command line has (smtpd_session.c). */
        stream_set_deadline(&s->stream, s->smtpd->timeout_ms / 1000);
        enum stream_line_ending ending;
        int rc = stream_read_line(&s->stream, &line, SASL_LINE_MAX, &ending);
        if (rc == STREAM_TOO_LONG) {
            *too_long = 1;
            break;
        }
        if (rc != STREAM_OK || ending != STREAM_LINE_CRLF) {
            *lost = rc == STREAM_TIMEOUT ? STREAM_TIMEOUT : 1;
            break;
        }
        if (memchr(line.data ? line.data : "", '\0', line.len))
            (void)buf_set_str(&line, "\001"); /* not base64: refused */
        r = sasl_step(sasl, buf_cstr(&line));
    }
    if (line.data)
        explicit_bzero(line.data, line.len);
    buf_free(&line);
    return r;
}

static void auth_upper(struct buf *out, const char *mechanism)
{
    buf_reset(out);
    for (const char *p = mechanism; *p; p++)
        (void)buf_append_char(out, (char)toupper((unsigned char)*p));
}

static int auth_refuse_state(struct smtpd_session *s)
{
    const struct smtpd *d = s->smtpd;
    if (!d->sasl_enable)
        smtpd_reply(s, "503 5.5.1 Error: authentication not enabled");
    else if (!s->esmtp)
        smtpd_reply(s, "503 5.5.1 Error: send EHLO first");
    else if (d->tls_auth_only && s->tls == NULL)
        smtpd_reply(s, "538 5.7.11 Encryption required for requested "
                       "authentication mechanism");
    else if (s->sasl_done)
        smtpd_reply(s, "503 5.5.1 Error: already authenticated");
    else if (s->in_mail)
        smtpd_reply(s, "503 5.5.1 Error: MAIL transaction in progress");
    else
        return 0;
    return 1;
}

void smtpd_auth_command(struct smtpd_session *s, const char *arg)
{
    if (auth_refuse_state(s))
        return;
    char mechanism[32];
    size_t mlen = strcspn(arg, " ");
    if (mlen == 0 || mlen >= sizeof(mechanism)) {
        smtpd_reply(s, "501 5.5.4 Syntax: AUTH mechanism");
        return;
    }
    memcpy(mechanism, arg, mlen);
    mechanism[mlen] = '\0';
    const char *initial = arg[mlen] == ' ' ? arg + mlen + 1 : NULL;
    struct sasl sasl;
    sasl_init(&sasl);
    int lost = 0, too_long = 0;
    int r = auth_exchange(s, &sasl, sasl_start(&sasl, mechanism, initial),
                          &lost, &too_long);
    if (lost) {
        sasl_reset(&sasl);
        if (lost == STREAM_TIMEOUT)
            smtpd_timeout_reply(s);
        else
            log_info("lost connection after AUTH from %s", s->client_id);
        s->quit = 1;
        return;
    }
    if (too_long) {
        sasl_reset(&sasl);
        smtpd_reply(s, "%s", sasl_error_reply(SASL_ERR_TOO_LONG));
        return;
    }
    if (r == SASL_ERROR) {
        log_warn("%s: SASL %s authentication failed: %s", s->client_id,
                 mechanism, sasl_error_text(sasl_error(&sasl)));
        smtpd_reply(s, "%s", sasl_error_reply(sasl_error(&sasl)));
        sasl_reset(&sasl);
        return;
    }
    struct buf error;
    buf_init(&error, 1024);
    int ok = auth_check(s, sasl_username(&sasl), sasl_password(&sasl),
                        &error);
    if (ok == PASSWORD_OK) {
        s->sasl_done = 1;
        auth_upper(&s->sasl_method, mechanism);
        (void)buf_set_str(&s->sasl_username, sasl_username(&sasl));
        smtpd_reply(s, "235 2.7.0 Authentication successful");
    } else if (ok == PASSWORD_ERROR) {
        log_warn("%s: SASL %s authentication failed: %s", s->client_id,
                 mechanism, buf_cstr(&error));
        smtpd_reply(s, "454 4.7.0 Temporary authentication failure");
    } else {
        log_warn("%s: SASL %s authentication failed: authentication "
                 "failure%s%s", s->client_id, mechanism,
                 error.len ? ": " : "", buf_cstr(&error));
        smtpd_reply(s, "535 5.7.8 Error: authentication failed: "
                       "authentication failure");
    }
    sasl_reset(&sasl);
    buf_free(&error);
}
