/*
 * showq - the queue listing behind mailq (sendmail -bp).  A public unix
 * service (public/showq, reached through postdrop -p, the set-group-ID
 * program: public/ is open to setgid_group only).  For each connection it
 * writes the listing in Postfix's mailq format (lib/queue_listing.h) and
 * closes.  showq runs as mail_owner and only reads.
 */
#include "log.h"
#include "queue_listing.h"
#include "server.h"
#include "stream.h"

#define SHOWQ_TIMEOUT_MS (60 * 1000)

static void showq_service(struct server *srv, int fd)
{
    (void)srv;
    struct stream out;
    stream_init(&out, fd, SHOWQ_TIMEOUT_MS);
    queue_listing_write(&out);
    if (stream_flush(&out) != STREAM_OK)
        log_warn("write queue listing: the client went away");
    stream_free(&out);
}

int main(int argc, char **argv)
{
    static const struct server_spec spec = {
        .mode = SERVER_SINGLE,
        .service = showq_service,
    };
    return server_main(argc, argv, &spec);
}
