/*
 * smtpd_command - the words of an SMTP command line, apart from any I/O:
 * which command it is, where its argument starts, the "FROM:"/"TO:" of
 * MAIL and RCPT, the count of BDAT, and the facts about each command that
 * the session loop needs (junk, end of a pipelined group, forbidden).
 *
 *     const char *arg;
 *     enum smtpd_command_id id = smtpd_command_parse(line, &arg);
 *     if (id == SMTPD_CMD_MAIL)
 *         path = smtpd_command_path(arg, "FROM:");  NULL: 501 5.5.4
 *
 * Tolerance is Postfix's, not RFC 5321's letter: the verb is matched
 * without regard to case; spaces between verb, keyword and path may be
 * doubled ("MAIL  FROM: <a@b>"), as many clients send them; a TAB is
 * not a separator (lib/smtp_address.h refuses it as a control).
 * Everything here works on NUL-terminated lines that the reader already
 * checked for bare CR, LF and NUL.
 */
#ifndef POSTINO_SMTPD_COMMAND_H
#define POSTINO_SMTPD_COMMAND_H

/* Per command: how many were given, and how many succeeded (for the
 * "disconnect from" line). */
enum smtpd_command_id {
    SMTPD_CMD_HELO, SMTPD_CMD_EHLO, SMTPD_CMD_STARTTLS, SMTPD_CMD_AUTH,
    SMTPD_CMD_MAIL, SMTPD_CMD_RCPT, SMTPD_CMD_DATA, SMTPD_CMD_BDAT,
    SMTPD_CMD_RSET, SMTPD_CMD_NOOP, SMTPD_CMD_VRFY, SMTPD_CMD_EXPN,
    SMTPD_CMD_HELP, SMTPD_CMD_QUIT, SMTPD_CMD_UNKNOWN, SMTPD_CMD_COUNT,
};

/* The command of line, and in *arg what follows the verb and its spaces
 * ("" when nothing does). */
enum smtpd_command_id smtpd_command_parse(const char *line,
                                          const char **arg);

/* "HELO", ... "UNKNOWN" (for the log), and "helo", ... "unknown" (for the
 * "disconnect from" counters). */
const char *smtpd_command_name(enum smtpd_command_id id);
const char *smtpd_command_counter_name(enum smtpd_command_id id);

/* The path after keyword ("FROM:" or "TO:", any case) at the start of
 * arg, spaces after the colon skipped; NULL when the keyword is missing. */
const char *smtpd_command_path(const char *arg, const char *keyword);

/* BDAT's "count [LAST]": 0 with *size and *last, or -1 (no count, a count
 * of more than 15 digits, a sign, or anything but LAST after it). */
int smtpd_command_bdat(const char *arg, long *size, int *last);

/* NOOP, RSET and VRFY (Postfix's junk commands; ETRN is not implemented),
 * and HELO, EHLO and HELP, which a client needs once or twice: past
 * smtpd_junk_command_limit each one counts as an error, so that no
 * command can be repeated for ever. */
int smtpd_command_is_junk(enum smtpd_command_id id);

/* RFC 2920 3.1: commands after which the client must wait for the reply
 * before it sends more (EHLO, HELO, NOOP, VRFY, EXPN, DATA, QUIT). */
int smtpd_command_ends_group(enum smtpd_command_id id);

/* 1 for a line that is no SMTP at all: an HTTP or proxy request (CONNECT,
 * GET, POST) or a message header ("Subject: ...", a verb ending in ':'),
 * which a client sends when it talks to the wrong port or when its
 * content leaked into the command stream, and a line that does not start
 * with a letter.  Postfix's smtpd_forbidden_commands with its default
 * value. */
int smtpd_command_forbidden(const char *line);

#endif
