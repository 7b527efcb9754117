/*
 * anvil_client - smtpd's side of the anvil protocol.  See anvil_client.h
 * for the conversation and the contract.
 *
 * The socket is non-blocking, also for connect(): a Unix socket whose
 * listen queue is full answers EAGAIN at once, and then smtpd goes on
 * without limits rather than wait for a busy anvil.  Every later wait is
 * bounded by the stream's timeout.
 */
#include "anvil_client.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

void anvil_client_init(struct anvil_client *a)
{
    memset(a, 0, sizeof(*a));
    a->fd = -1;
    record_init(&a->record);
}

static void anvil_client_close(struct anvil_client *a)
{
    if (a->fd < 0)
        return;
    stream_free(&a->stream);
    (void)close(a->fd); /* nothing to recover: anvil counts it as gone */
    a->fd = -1;
}

static int anvil_client_fail(struct anvil_client *a, struct buf *error,
                             const char *what, const char *detail)
{
    buf_reset(error);
    (void)buf_printf(error, "%s: %s", what, detail);
    anvil_client_close(a);
    return -1;
}

static int anvil_client_open_socket(struct anvil_client *a,
                                    const char *socket_path,
                                    struct buf *error)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    size_t len = strlen(socket_path);
    if (len >= sizeof(sun.sun_path)) {
        buf_reset(error);
        (void)buf_printf(error, "connect to %s: path too long", socket_path);
        return -1;
    }
    memcpy(sun.sun_path, socket_path, len + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        buf_reset(error);
        (void)buf_printf(error, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
        buf_reset(error);
        (void)buf_printf(error, "connect to %s: %s", socket_path,
                         errno == EAGAIN ? "service busy" : strerror(errno));
        (void)close(fd);
        return -1;
    }
    a->fd = fd;
    return 0;
}

/* Sends a->record, reads the reply into a->record, checks status=ok. */
static int anvil_client_call(struct anvil_client *a, struct buf *error)
{
    int rc = record_write(&a->stream, &a->record);
    if (rc == RECORD_OK && stream_flush(&a->stream) != STREAM_OK)
        rc = RECORD_IO_ERROR;
    if (rc != RECORD_OK)
        return anvil_client_fail(a, error, "send to anvil",
                                 record_status_text(rc));
    record_reset(&a->record);
    rc = record_read(&a->stream, &a->record, ANVIL_RECORD_MAX);
    if (rc != RECORD_OK)
        return anvil_client_fail(a, error, "reply from anvil",
                                 record_status_text(rc));
    const char *status = record_get_str(&a->record, "status");
    if (status == NULL || strcmp(status, "ok") != 0) {
        const char *reason = record_get_str(&a->record, "reason");
        return anvil_client_fail(a, error, "anvil",
                                 reason != NULL ? reason : "bad reply");
    }
    return 0;
}

static int anvil_client_get(struct anvil_client *a, const char *name,
                            long *value, struct buf *error)
{
    if (record_get_long(&a->record, name, value) == 0 && *value >= 0)
        return 0;
    return anvil_client_fail(a, error, "reply from anvil",
                             name[0] == 'c' ? "bad count" : "bad rate");
}

int anvil_client_connect(struct anvil_client *a, const char *socket_path,
                         const char *service, const char *client_address,
                         int timeout_ms, long *count, long *rate,
                         struct buf *error)
{
    anvil_client_close(a);
    if (strlen(service) > ANVIL_SERVICE_MAX ||
        strlen(client_address) > ANVIL_ADDRESS_MAX) {
        buf_reset(error);
        (void)buf_append_str(error, "service or client address too long");
        return -1;
    }
    if (anvil_client_open_socket(a, socket_path, error) != 0)
        return -1;
    stream_init(&a->stream, a->fd, timeout_ms);
    record_reset(&a->record);
    if (record_add_str(&a->record, "request", "connect") != RECORD_OK ||
        record_add_str(&a->record, "service", service) != RECORD_OK ||
        record_add_str(&a->record, "client_address", client_address) !=
            RECORD_OK)
        return anvil_client_fail(a, error, "anvil request", "out of memory");
    if (anvil_client_call(a, error) != 0)
        return -1;
    if (anvil_client_get(a, "count", count, error) != 0 ||
        anvil_client_get(a, "rate", rate, error) != 0)
        return -1;
    return 0;
}

static int anvil_client_event(struct anvil_client *a, const char *request,
                              long *rate, struct buf *error)
{
    if (a->fd < 0) {
        buf_reset(error);
        (void)buf_append_str(error, "not connected to anvil");
        return -1;
    }
    record_reset(&a->record);
    if (record_add_str(&a->record, "request", request) != RECORD_OK)
        return anvil_client_fail(a, error, "anvil request", "out of memory");
    if (anvil_client_call(a, error) != 0)
        return -1;
    return anvil_client_get(a, "rate", rate, error);
}

int anvil_client_message(struct anvil_client *a, long *rate,
                         struct buf *error)
{
    return anvil_client_event(a, "message", rate, error);
}

int anvil_client_recipient(struct anvil_client *a, long *rate,
                           struct buf *error)
{
    return anvil_client_event(a, "recipient", rate, error);
}

void anvil_client_disconnect(struct anvil_client *a)
{
    if (a->fd >= 0) {
        /* Best effort: anvil counts a closed connection as a disconnect
         * anyway, so a failure here changes nothing. */
        record_reset(&a->record);
        if (record_add_str(&a->record, "request", "disconnect") ==
                RECORD_OK &&
            record_write(&a->stream, &a->record) == RECORD_OK)
            (void)stream_flush(&a->stream);
    }
    anvil_client_close(a);
    record_free(&a->record);
}
