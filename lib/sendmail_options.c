/*
 * sendmail_options - sendmail's command line.  See sendmail_options.h.
 */
#include "sendmail_options.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "text.h"

static int fail(char *error, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *error, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error, size, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

/* Options that take a value: the value is the rest of the word, or the
 * next word. */
static const char *options_with_value = "BCFNRVXbcefhLOopr";

static int set_mode(struct sendmail_options *opt, const char *value,
                    char *error, size_t size)
{
    if (strcmp(value, "m") == 0)
        opt->mode = SENDMAIL_DELIVER;
    else if (strcmp(value, "p") == 0)
        opt->mode = SENDMAIL_LIST;
    else if (strcmp(value, "i") == 0)
        opt->mode = SENDMAIL_NEWALIASES;
    else if (strcmp(value, "s") == 0)
        opt->mode = SENDMAIL_SMTP;
    else
        return fail(error, size, "unsupported: -b%.20s", value);
    return 0;
}

static int set_value(struct sendmail_options *opt, char letter,
                     const char *value, char *error, size_t size)
{
    switch (letter) {
    case 'B':
        if (text_equal_nocase(value, "7bit"))
            opt->body = "7bit";
        else if (text_equal_nocase(value, "8bitmime"))
            opt->body = "8bitmime";
        else
            return fail(error, size, "-B: 7BIT or 8BITMIME, not \"%.40s\"",
                        value);
        return 0;
    case 'C':
    case 'c':
        opt->config_dir = value;
        return 0;
    case 'F':
        opt->full_name = value;
        return 0;
    case 'N':
        opt->notify = value;
        return 0;
    case 'R':
        if (text_equal_nocase(value, "full"))
            opt->ret = "FULL";
        else if (text_equal_nocase(value, "hdrs"))
            opt->ret = "HDRS";
        else
            return fail(error, size, "-R: FULL or HDRS, not \"%.40s\"",
                        value);
        return 0;
    case 'V':
        opt->envid = value;
        return 0;
    case 'b':
        return set_mode(opt, value, error, size);
    case 'f':
    case 'r':
        opt->sender = value;
        return 0;
    case 'o':
        if (strcmp(value, "i") == 0)
            opt->ignore_dots = 1;
        return 0; /* -oem, -odb, -om ...: ignored, as in Postfix */
    default:
        return 0; /* -e -h -L -O -p -X: ignored */
    }
}

/* One word of options: "-ti", "-fuser", "-f" (value in the next word).
 * Returns how many words it used, or -1. */
static int parse_word(struct sendmail_options *opt, char **argv, int argc,
                      int i, char *error, size_t size)
{
    const char *p = argv[i] + 1;
    while (*p != '\0') {
        char letter = *p++;
        if (strchr(options_with_value, letter) != NULL) {
            if (*p != '\0')
                return set_value(opt, letter, p, error, size) ? -1 : 1;
            if (i + 1 >= argc)
                return fail(error, size, "option requires an argument -- "
                            "'%c'", letter);
            return set_value(opt, letter, argv[i + 1], error, size) ? -1 : 2;
        }
        switch (letter) {
        case 't': opt->extract = 1; break;
        case 'i': opt->ignore_dots = 1; break;
        case 'v': opt->verbose = 1; break;
        case 'q':
            /* -q, -q30m: one queue run now; the rest of the word is the
             * interval of a queue daemon, which there is none of. */
            opt->mode = SENDMAIL_FLUSH;
            return 1;
        case 'I':
            opt->mode = SENDMAIL_NEWALIASES; /* Sendmail's -I */
            break;
        case 'G': case 'm': case 'n': case 'U': case 'x':
            break;
        default:
            return fail(error, size, "invalid option -- '%c'", letter);
        }
    }
    return 1;
}

int sendmail_options_parse(struct sendmail_options *opt, int argc,
                           char **argv, char *error, size_t error_size)
{
    memset(opt, 0, sizeof(*opt));
    error[0] = '\0';
    if (argc > 0 && strcmp(base_name(argv[0]), "mailq") == 0)
        opt->mode = SENDMAIL_LIST;
    int i = 1;
    while (i < argc && argv[i][0] == '-' && argv[i][1] != '\0') {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        int used = parse_word(opt, argv, argc, i, error, error_size);
        if (used < 0)
            return -1;
        i += used;
    }
    opt->recipients = argv + i;
    opt->recipient_count = argc - i;
    return 0;
}
