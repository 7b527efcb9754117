/*
 * smtpd_command - the words of an SMTP command line (see smtpd_command.h).
 */
#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtpd_command.h"

static const char *const command_names[SMTPD_CMD_COUNT] = {
    "HELO", "EHLO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "BDAT",
    "RSET", "NOOP", "VRFY", "EXPN", "HELP", "QUIT", "UNKNOWN",
};

static const char *const counter_names[SMTPD_CMD_COUNT] = {
    "helo", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "bdat",
    "rset", "noop", "vrfy", "expn", "help", "quit", "unknown",
};

static const char *skip_spaces(const char *p)
{
    while (*p == ' ')
        p++;
    return p;
}

enum smtpd_command_id smtpd_command_parse(const char *line,
                                          const char **arg)
{
    size_t n = strcspn(line, " ");
    *arg = skip_spaces(line + n);
    for (int i = 0; i < SMTPD_CMD_UNKNOWN; i++)
        if (strlen(command_names[i]) == n &&
            strncasecmp(line, command_names[i], n) == 0)
            return (enum smtpd_command_id)i;
    return SMTPD_CMD_UNKNOWN;
}

const char *smtpd_command_name(enum smtpd_command_id id)
{
    return (unsigned)id < SMTPD_CMD_COUNT ? command_names[id] : "UNKNOWN";
}

const char *smtpd_command_counter_name(enum smtpd_command_id id)
{
    return (unsigned)id < SMTPD_CMD_COUNT ? counter_names[id] : "unknown";
}

const char *smtpd_command_path(const char *arg, const char *keyword)
{
    size_t klen = strlen(keyword);
    if (strncasecmp(arg, keyword, klen) != 0)
        return NULL;
    return skip_spaces(arg + klen);
}

int smtpd_command_bdat(const char *arg, long *size, int *last)
{
    size_t digits = strspn(arg, "0123456789");
    if (digits == 0 || digits > 15)
        return -1;
    *size = strtol(arg, NULL, 10);
    const char *rest = skip_spaces(arg + digits);
    *last = 0;
    if (rest == arg + digits && *rest != '\0')
        return -1; /* "10x" */
    if (*rest == '\0')
        return 0;
    size_t word = strcspn(rest, " ");
    if (word != 4 || strncasecmp(rest, "LAST", 4) != 0)
        return -1;
    if (*skip_spaces(rest + word) != '\0')
        return -1; /* "10 LAST extra" */
    *last = 1;
    return 0;
}

int smtpd_command_is_junk(enum smtpd_command_id id)
{
    return id == SMTPD_CMD_NOOP || id == SMTPD_CMD_RSET ||
           id == SMTPD_CMD_VRFY || id == SMTPD_CMD_HELO ||
           id == SMTPD_CMD_EHLO || id == SMTPD_CMD_HELP;
}

int smtpd_command_ends_group(enum smtpd_command_id id)
{
    return id == SMTPD_CMD_HELO || id == SMTPD_CMD_EHLO ||
           id == SMTPD_CMD_NOOP || id == SMTPD_CMD_VRFY ||
           id == SMTPD_CMD_EXPN || id == SMTPD_CMD_DATA ||
           id == SMTPD_CMD_QUIT;
}

int smtpd_command_forbidden(const char *line)
{
    static const char *const http[] = { "CONNECT", "GET", "POST" };
    if (line[0] != '\0' && !isalpha((unsigned char)line[0]))
        return 1; /* no verb starts otherwise */
    size_t n = strcspn(line, " ");
    for (size_t i = 0; i < sizeof(http) / sizeof(http[0]); i++)
        if (strlen(http[i]) == n && strncasecmp(line, http[i], n) == 0)
            return 1;
    /* "Label:" as in a header; "MAIL FROM:" has its colon later. */
    return n > 1 && line[n - 1] == ':' &&
           strcspn(line, ":") == n - 1;
}
