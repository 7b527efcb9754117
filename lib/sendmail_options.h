/*
 * sendmail_options - the command line of sendmail (and mailq), as
 * Sendmail and Postfix read it.
 *
 *   -t            recipients from the To:, Cc: and Bcc: headers (Bcc
 *                 removed, by cleanup); recipients on the command line
 *                 are added; with none there, sendmail itself checks that
 *                 the header names one (sendmail_input.h)
 *   -f SENDER, -r SENDER   envelope sender; "" or "<>" is the null sender
 *   -F NAME       full name for a From: header that cleanup adds
 *   -i, -oi       a line with a single dot does not end the message
 *   -bm (default) deliver; -bp list the queue (= mailq); -bi or -I
 *                 rebuild the aliases (= newaliases); -bs SMTP on stdin/stdout
 *   -q            ask the queue manager for a queue run
 *   -C DIR, -c DIR   configuration directory
 *   -N DSN        NEVER or a comma list of SUCCESS, FAILURE, DELAY
 *   -R RET        FULL or HDRS;  -V ENVID;  -B 7BIT|8BITMIME
 *   -v            verbose
 *   ignored, as Postfix ignores them: -G -m -n -U -x, -o with any
 *   option but i (-oem, -oee, -oep, -odb, -odi, -om, ...), -e X, -h N,
 *   -L X, -O X, -p X, -X X;  -- ends the options.
 * The program name "mailq" means -bp.
 *
 * Usage:
 *     struct sendmail_options opt;
 *     char error[256];
 *     if (sendmail_options_parse(&opt, argc, argv, error, sizeof(error)))
 *         ... "sendmail: fatal: %s", error; exit(EX_USAGE) ...
 *     ... opt.recipients[0 .. opt.recipient_count) ...
 * Values point into argv.  The parser keeps no state between calls.
 */
#ifndef POSTINO_SENDMAIL_OPTIONS_H
#define POSTINO_SENDMAIL_OPTIONS_H

#include <stddef.h>

enum sendmail_mode {
    SENDMAIL_DELIVER,    /* -bm */
    SENDMAIL_LIST,       /* -bp, mailq */
    SENDMAIL_NEWALIASES, /* -bi */
    SENDMAIL_SMTP,       /* -bs */
    SENDMAIL_FLUSH,      /* -q */
};

struct sendmail_options {
    enum sendmail_mode mode;
    int extract;            /* -t */
    int ignore_dots;        /* -i, -oi */
    int verbose;            /* -v */
    const char *sender;     /* -f, -r; NULL: the invoking user */
    const char *full_name;  /* -F */
    const char *config_dir; /* -C, -c */
    const char *notify;     /* -N, as given */
    const char *ret;        /* -R: "FULL" or "HDRS" */
    const char *envid;      /* -V */
    const char *body;       /* -B: "7bit" or "8bitmime" */
    char **recipients;
    int recipient_count;
};

int sendmail_options_parse(struct sendmail_options *opt, int argc,
                           char **argv, char *error, size_t error_size);

#endif
