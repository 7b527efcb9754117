/*
 * pop3d_io - what the login child and the mailbox process share: replies,
 * command lines, the client's name, CAPA.
 *
 * Replies are queued in the stream and sent when the client has no
 * further command buffered, so a pipelined burst (RFC 2449 PIPELINING)
 * gets its replies in as few writes as possible.  A command line may have
 * at most pop3d_max_line_length octets, CRLF not counted (RFC 2449: 255
 * with CRLF); a longer one is read to its end and answered "-ERR line too
 * long", never split.  A NUL byte gets "-ERR NUL byte in command".  A
 * bare LF ends a line too: POP3 has no smuggling hazard, and old clients
 * send it.  Every -ERR counts; after POP3D_ERROR_LIMIT the session ends.
 * A command must be complete within pop3d_timeout of the moment it was
 * awaited (a client that trickles bytes is cut off all the same); a reply
 * only has to make progress within each such wait.
 */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "pop3d.h"
#include "record.h"
#include "sasl.h"
#include "text.h"

#define POP3D_REPLY_MAX 1024

void pop3d_conn_init(struct pop3d_conn *c, int fd, int timeout_ms)
{
    memset(c, 0, sizeof(*c));
    stream_init(&c->stream, fd, timeout_ms);
    (void)text_copy(c->client_addr, sizeof(c->client_addr), "unknown");
    (void)text_copy(c->client_id, sizeof(c->client_id), "unknown[unknown]");
}

static void pop3d_reply(struct pop3d_conn *c, const char *status,
                        const char *fmt, va_list ap)
{
    char text[POP3D_REPLY_MAX];
    if (vsnprintf(text, sizeof(text), fmt, ap) < 0)
        log_panic("reply format error");
    (void)stream_puts(&c->stream, status);
    if (text[0] != '\0') {
        (void)stream_puts(&c->stream, " ");
        (void)stream_puts(&c->stream, text);
    }
    (void)stream_puts(&c->stream, "\r\n");
}

void pop3d_ok(struct pop3d_conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pop3d_reply(c, "+OK", fmt, ap);
    va_end(ap);
}

void pop3d_err(struct pop3d_conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pop3d_reply(c, "-ERR", fmt, ap);
    va_end(ap);
    c->errors++;
}

int pop3d_flush_if_idle(struct pop3d_conn *c)
{
    if (stream_pending(&c->stream) > 0 && c->stream.out.len < 65536)
        return 0;
    return stream_flush(&c->stream) == STREAM_OK ? 0 : -1;
}

int pop3d_read_command(struct pop3d_conn *c, struct buf *line, long limit,
                       const char *state)
{
    if (pop3d_flush_if_idle(c) != 0) {
        log_info("lost connection in %s from %s", state, c->client_id);
        return POP3D_GONE;
    }
    /* The whole command within the timeout, however slowly its bytes
     * trickle in; the replies (a long RETR) only by each wait. */
    stream_set_deadline(&c->stream, c->stream.timeout_ms / 1000);
    enum stream_line_ending ending;
    int rc = stream_read_line(&c->stream, line, (size_t)limit, &ending);
    stream_set_deadline(&c->stream, 0);
    if (rc == STREAM_TOO_LONG) {
        pop3d_err(c, "line too long");
        return POP3D_BAD_LINE;
    }
    if (rc == STREAM_TIMEOUT) {
        log_info("timeout in %s from %s", state, c->client_id);
        c->stream.error = STREAM_OK;
        stream_set_timeout(&c->stream, 10 * 1000);
        pop3d_err(c, "autologout timer expired");
        (void)stream_flush(&c->stream);
        return POP3D_GONE;
    }
    if (rc != STREAM_OK || ending == STREAM_LINE_EOF) {
        log_info("lost connection in %s from %s", state, c->client_id);
        return POP3D_GONE;
    }
    if (memchr(buf_cstr(line), '\0', line->len) != NULL) {
        pop3d_err(c, "NUL byte in command");
        return POP3D_BAD_LINE;
    }
    return POP3D_LINE;
}

const char *pop3d_split_command(const char *line, char *verb, size_t size)
{
    size_t n = strcspn(line, " ");
    if (n == 0 || n >= size) {
        verb[0] = '\0';
    } else {
        for (size_t i = 0; i < n; i++)
            verb[i] = (char)toupper((unsigned char)line[i]);
        verb[n] = '\0';
    }
    return line[n] == ' ' ? line + n + 1 : line + n;
}

void pop3d_identify_client(struct pop3d_conn *c, int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[NI_MAXHOST];
    if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0 &&
        getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), NULL,
                    0, NI_NUMERICHOST) == 0) {
        const char *shown = strncmp(host, "::ffff:", 7) == 0 &&
                            strchr(host + 7, ':') == NULL ? host + 7 : host;
        (void)text_copy(c->client_addr, sizeof(c->client_addr), shown);
    }
    const char *name = network_is_loopback(c->client_addr) ? "localhost"
                                                           : "unknown";
    struct buf id;
    buf_init(&id, sizeof(c->client_id) - 1);
    (void)buf_printf(&id, "%s[%s]", name, c->client_addr);
    (void)text_copy(c->client_id, sizeof(c->client_id), buf_cstr(&id));
    buf_free(&id);
}

void pop3d_capa(struct pop3d_conn *c, int login_state, int offer_stls,
                int offer_user)
{
    pop3d_ok(c, "Capability list follows");
    (void)stream_puts(&c->stream, "TOP\r\nUIDL\r\nRESP-CODES\r\n"
                                  "AUTH-RESP-CODE\r\nPIPELINING\r\n");
    if (login_state && offer_user)
        (void)stream_puts(&c->stream,
                          "USER\r\nSASL " SASL_MECHANISMS "\r\n");
    if (login_state && offer_stls)
        (void)stream_puts(&c->stream, "STLS\r\n");
    (void)stream_puts(&c->stream,
                      "IMPLEMENTATION " POP3D_IMPLEMENTATION "\r\n.\r\n");
}

int pop3d_valid_user_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > POP3D_NAME_MAX)
        return 0;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

void pop3d_record_wipe(struct record *r, const char *name)
{
    const struct record_attr *a = record_find(r, name);
    if (a != NULL && a->value.data != NULL)
        explicit_bzero(a->value.data, a->value.len);
}
