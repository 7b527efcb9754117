/*
 * sendmail - what the parts of the sendmail command share: the loaded
 * configuration, and a running postdrop that takes one message in the internal form (maildrop.h).
 *
 *     struct sendmail_postdrop p;
 *     if (sendmail_postdrop_start(sm, &p) != 0) ...
 *     maildrop_put_envelope(&p.out, &env, MAILDROP_INPUT); ... content ...
 *     maildrop_put_end(&p.out);
 *     int rc = sendmail_postdrop_finish(&p, id);   EX_OK and the queue ID
 */
#ifndef POSTINO_SENDMAIL_H
#define POSTINO_SENDMAIL_H

#include <sys/types.h>

#include "config.h"
#include "maildrop.h"
#include "sendmail_options.h"

struct sendmail {
    struct config *cfg;
    const char *config_dir;
    int explicit_config;  /* -C or MAIL_CONFIG: passed on to postdrop */
};

struct sendmail_postdrop {
    pid_t pid;
    int to_fd;            /* postdrop's stdin */
    int from_fd;          /* postdrop's stdout: the queue ID */
    struct maildrop_out out;
};

int sendmail_postdrop_start(struct sendmail *sm, struct sendmail_postdrop *p);
int sendmail_postdrop_finish(struct sendmail_postdrop *p,
                             char id[QUEUE_ID_SIZE]);
/* -bs: an SMTP session on stdin/stdout.  Returns the exit code. */
int sendmail_smtp(struct sendmail *sm, const struct sendmail_options *opt);

#endif
