/*
 * error - the error and retry delivery agents: one program, two services.
 *
 * Under the master.cf service name "retry" every recipient of a request is
 * deferred; under any other name ("error") every recipient is bounced.
 * The reason is the request's nexthop, which transport_maps wrote as
 * "error:5.1.2 text" or "retry:4.4.1 text": a leading X.Y.Z status (X 4
 * or 5) gives the detail, its class made 5 for error and 4 for retry,
 * and the rest is the text.  Without a status: 5.0.0 (error) or 4.0.0
 * (retry); without a text: "mail for this destination is refused"
 * (error) or "mail for this destination is delayed" (retry).
 *
 *     error  unix  -  -  n  -  -  error
 *     retry  unix  -  -  n  -  -  error
 *
 * The log line is the delivery agent's (lib/delivery_request.c):
 *     ID: to=<a@b>, relay=none, delay=0.1, ..., dsn=5.1.2, status=bounced (text)
 */
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "delivery_request.h"
#include "log.h"
#include "server.h"

/* Length of a leading "D.D{1,3}.D{1,3}" status, 0 when there is none. */
static size_t error_status_length(const char *text)
{
    const char *p = text;
    if (*p != '4' && *p != '5')
        return 0;
    p++;
    for (int part = 0; part < 2; part++) {
        if (*p++ != '.')
            return 0;
        int digits = 0;
        while (isdigit((unsigned char)*p) && digits < 3) {
            p++;
            digits++;
        }
        if (digits == 0)
            return 0;
    }
    if (*p != '\0' && *p != ' ' && *p != '\t')
        return 0;
    return (size_t)(p - text);
}

/* Splits nexthop into dsn (class forced) and text. */
static void error_reason(const char *nexthop, int bounce, struct buf *dsn,
                         struct buf *text)
{
    size_t len = error_status_length(nexthop);
    if (len > 0) {
        buf_set(dsn, nexthop, len);
        dsn->data[0] = bounce ? '5' : '4';
        nexthop += len;
    } else {
        buf_set_str(dsn, bounce ? "5.0.0" : "4.0.0");
    }
    while (*nexthop == ' ' || *nexthop == '\t')
        nexthop++;
    buf_set_str(text, *nexthop != '\0' ? nexthop
                      : bounce ? "mail for this destination is refused"
                               : "mail for this destination is delayed");
}

static void error_serve(void *ctx, struct delivery_request *req)
{
    const struct server *srv = ctx;
    int bounce = strcmp(srv->service_name, "retry") != 0;
    struct buf dsn, text;
    buf_init(&dsn, 32);
    buf_init(&text, DELIVERY_RECORD_MAX);
    error_reason(req->nexthop, bounce, &dsn, &text);
    struct delivery_result res = {
        .status = bounce ? DELIVERY_BOUNCED : DELIVERY_DEFERRED,
        .dsn = buf_cstr(&dsn), .text = buf_cstr(&text), .relay = "none",
    };
    (void)delivery_request_reply_all(req, &res);
    buf_free(&dsn);
    buf_free(&text);
}

static void error_service(struct server *srv, int client_fd)
{
    delivery_request_serve_all(srv, client_fd, srv->service_name,
                               error_serve, NULL, srv);
}

int main(int argc, char **argv)
{
    static const struct server_spec spec = {
        .mode = SERVER_SINGLE,
        .service = error_service,
    };
    return server_main(argc, argv, &spec);
}
