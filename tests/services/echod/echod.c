/*
 * echod - a tiny service for testing the master and the server skeleton.
 *
 * Arguments (after the skeleton's own options, from master.cf):
 *   (none)    line echo: greets "200 echod <pid> ready", answers each line
 *             with "250 <line>", "pid" with "250 <pid>", "quit" with
 *             "221 bye" and closes; an overlong line gets "500 line too long".
 *   crash     aborts during start-up, before serving anything, as a daemon
 *             with a fatal bug would (the master must throttle it).
 *   trigger   a wakeup service: logs "trigger: <bytes>" for each trigger.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "server.h"
#include "stream.h"

#define ECHO_LINE_MAX 1000

static void echo_init(struct server *srv)
{
    if (srv->argc > 0 && strcmp(srv->argv[0], "crash") == 0) {
        log_warn("crashing on purpose, as asked");
        abort();
    }
}

static void echo_service(struct server *srv, int fd)
{
    (void)srv;
    struct stream s;
    stream_init(&s, fd, 30 * 1000);
    struct buf line;
    buf_init(&line, ECHO_LINE_MAX);
    stream_printf(&s, "200 echod %ld ready\r\n", (long)getpid());
    while (stream_flush(&s) == STREAM_OK) {
        enum stream_line_ending ending;
        buf_reset(&line);
        int rc = stream_read_line(&s, &line, ECHO_LINE_MAX, &ending);
        if (rc == STREAM_TOO_LONG) {
            stream_puts(&s, "500 line too long\r\n");
            continue;
        }
        if (rc != STREAM_OK)
            break;
        if (strcmp(buf_cstr(&line), "quit") == 0) {
            stream_puts(&s, "221 bye\r\n");
            stream_flush(&s);
            break;
        }
        if (strcmp(buf_cstr(&line), "pid") == 0)
            stream_printf(&s, "250 %ld\r\n", (long)getpid());
        else
            stream_printf(&s, "250 %s\r\n", buf_cstr(&line));
    }
    buf_free(&line);
    stream_free(&s);
}

static void echo_trigger(struct server *srv, const char *data, size_t len)
{
    (void)srv;
    log_info("trigger: %.*s", (int)len, data);
}

int main(int argc, char **argv)
{
    /* The daemon's own arguments come last on the command line. */
    int trigger = argc > 1 && strcmp(argv[argc - 1], "trigger") == 0;
    static const struct server_spec echo_spec = {
        .mode = SERVER_SINGLE,
        .init = echo_init,
        .service = echo_service,
    };
    static const struct server_spec trigger_spec = {
        .mode = SERVER_TRIGGER,
        .trigger = echo_trigger,
    };
    return server_main(argc, argv, trigger ? &trigger_spec : &echo_spec);
}
