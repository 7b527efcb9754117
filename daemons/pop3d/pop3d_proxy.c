/*
 * pop3d_proxy - after a login over TLS, the login child keeps the TLS
 * session (its state cannot move to another process) and copies the
 * plaintext both ways between it and the mailbox process's socketpair.
 *
 * Both directions are non-blocking with a bounded buffer each, so neither
 * side can stall the other: a client that does not read its RETR output
 * only stops the mailbox process from writing more, while its commands
 * still get through.  The TLS read and write functions the stream holds
 * (lib/tls.h) never block; every pass tries each direction, and only a
 * pass that moved nothing waits in poll() for what they asked for.  The
 * session ends when the mailbox process closes its end (after QUIT, or
 * its own timeout), with every byte it sent delivered first, or when the
 * client goes away or is silent and blocked for timeout_ms.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "pop3d.h"

#define PROXY_BUFFER (256 * 1024)

struct proxy_dir {
    char data[PROXY_BUFFER];
    size_t start, end;
    int eof;
};

/* -1 with errno EAGAIN means "try later". */
static ssize_t proxy_client_read(struct stream *s, void *p, size_t n)
{
    if (s->read_fn)
        return s->read_fn(s->io_ctx, p, n);
    return recv(s->fd, p, n, MSG_DONTWAIT);
}

static ssize_t proxy_client_write(struct stream *s, const void *p, size_t n)
{
    if (s->write_fn)
        return s->write_fn(s->io_ctx, p, n);
    return send(s->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static ssize_t proxy_data_read(int fd, void *p, size_t n)
{
    return recv(fd, p, n, MSG_DONTWAIT);
}

static ssize_t proxy_data_write(int fd, const void *p, size_t n)
{
    return send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* Result of one step: 1 moved bytes, 0 nothing to do now, -1 failed. */
static int proxy_fill(struct proxy_dir *d, ssize_t n)
{
    if (n > 0) {
        d->end += (size_t)n;
        return 1;
    }
    if (n == 0) {
        d->eof = 1;
        return 1;
    }
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0
                                                                     : -1;
}

static int proxy_drain(struct proxy_dir *d, ssize_t n)
{
    if (n > 0) {
        d->start += (size_t)n;
        if (d->start == d->end)
            d->start = d->end = 0;
        return 1;
    }
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
                     errno == EINTR) ? 0 : -1;
}

int pop3d_proxy_run(struct stream *client, int client_fd, int data_fd,
                    int timeout_ms)
{
    static struct proxy_dir up, down;  /* client->mailbox, mailbox->client */
    memset(&up, 0, sizeof(up));
    memset(&down, 0, sizeof(down));
    int up_shut = 0;
    for (;;) {
        int moved = 0, rc;
        if (!up.eof && up.end < PROXY_BUFFER) {
            rc = proxy_fill(&up, proxy_client_read(client, up.data + up.end,
                                                   PROXY_BUFFER - up.end));
            if (rc < 0)
                return -1;
            moved |= rc;
        }
        if (up.end > up.start) {
            rc = proxy_drain(&up, proxy_data_write(data_fd,
                                                   up.data + up.start,
                                                   up.end - up.start));
            if (rc < 0)
                return -1;
            moved |= rc;
        }
        if (up.eof && up.end == up.start && !up_shut) {
            (void)shutdown(data_fd, SHUT_WR);
            up_shut = 1;
        }
        if (!down.eof && down.end < PROXY_BUFFER) {
            rc = proxy_fill(&down, proxy_data_read(data_fd,
                                                   down.data + down.end,
                                                   PROXY_BUFFER - down.end));
            if (rc < 0)
                return -1;
            moved |= rc;
        }
        if (down.end > down.start) {
            rc = proxy_drain(&down, proxy_client_write(
                                 client, down.data + down.start,
                                 down.end - down.start));
            if (rc < 0)
                return -1;
            moved |= rc;
        }
        if (down.eof && down.end == down.start)
            return 0;
        if (moved)
            continue;
        struct pollfd p[2] = {
            { .fd = client_fd, .events = 0, .revents = 0 },
            { .fd = data_fd, .events = 0, .revents = 0 },
        };
        if (!up.eof && up.end < PROXY_BUFFER)
            p[0].events |= POLLIN;
        if (down.end > down.start)
            p[0].events |= POLLOUT;
        if (!down.eof && down.end < PROXY_BUFFER)
            p[1].events |= POLLIN;
        if (up.end > up.start)
            p[1].events |= POLLOUT;
        int n = poll(p, 2, timeout_ms);
        if (n == 0)
            return -1;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}
