/*
 * trigger - best-effort wakeups over a Unix socket, with a pause after the
 * service was found absent.  See trigger.h.
 */
#include "trigger.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "stream.h"
#include "text.h"

void trigger_init(struct trigger *t, const char *socket_path)
{
    t->socket_path = socket_path;
    t->absent_until = 0;
}

static int trigger_connect(const struct trigger *t)
{
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    if (text_copy(addr.sun_path, sizeof(addr.sun_path), t->socket_path) !=
        0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        int saved = errno;
        (void)close(fd); /* never connected: nothing to report */
        errno = saved;
        return -1;
    }
    return fd;
}

int trigger_send(struct trigger *t, const void *bytes, size_t len)
{
    if (t->absent_until != 0 && stream_now_ms() < t->absent_until) {
        errno = ENOENT;
        return -1;
    }
    t->absent_until = 0;
    int fd = trigger_connect(t);
    if (fd < 0) {
        int saved = errno;
        log_debug("wakeup %s: %s", t->socket_path, strerror(saved));
        if (saved == ENOENT || saved == ECONNREFUSED)
            t->absent_until = stream_now_ms() + TRIGGER_ABSENT_RETRY_MS;
        errno = saved;
        return -1;
    }
    ssize_t n = send(fd, bytes, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    int saved = errno;
    if (n != (ssize_t)len)
        log_debug("wakeup %s: %s", t->socket_path,
                  n < 0 ? strerror(saved) : "short write");
    (void)close(fd); /* a trigger: nothing to learn from close */
    if (n == (ssize_t)len)
        return 0;
    errno = n < 0 ? saved : EIO;
    return -1;
}
