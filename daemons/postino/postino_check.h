/*
 * postino_check - "postino check": everything that can be wrong with an
 * instance before it starts, each problem printed once with the file and
 * line it comes from.
 *
 * It reads main.cf and checks every value against its type; reads
 * master.cf and checks each service (command present and executable,
 * address valid, -o overrides well-typed); checks that mail_owner and
 * setgid_group exist; and checks the queue directories: those missing are
 * created (as "postfix check" does), those with the wrong owner or mode are
 * reported with the command that fixes them.
 *
 * Usage:
 *     struct config *cfg;
 *     int errors = postino_check(config_dir, &cfg);  // cfg: NULL on errors
 */
#ifndef POSTINO_CHECK_H
#define POSTINO_CHECK_H

#include "config.h"

/* Returns the number of errors.  When main.cf is readable and valid,
 * *cfg_out receives it (the caller frees it); otherwise NULL. */
int postino_check(const char *config_dir, struct config **cfg_out);

#endif
