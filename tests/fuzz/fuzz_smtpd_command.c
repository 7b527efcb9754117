/*
 * fuzz_smtpd_command - libFuzzer harness for smtpd's command-line parsing:
 * the verb and argument split, the forbidden-line test, BDAT's count and
 * the MAIL FROM / RCPT TO path with its ESMTP parameters
 * (lib/smtp_address.h), as smtpd runs them on one line.  The first input
 * byte chooses the announced extensions; the rest is the line.  Build and
 * run with "make fuzz" (clang).
 *
 * smtpd_command.c belongs to the smtpd daemon, not to the library that
 * "make fuzz" links, so it is compiled in here.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../daemons/smtpd/smtpd_command.c"
#include "buf.h"
#include "log.h"
#include "smtp_address.h"

static void check_path(const char *line, size_t len, const char *arg,
                       enum smtp_address_command cmd, unsigned extensions)
{
    const char *path = smtpd_command_path(arg, cmd == SMTP_ADDRESS_MAIL
                                                   ? "FROM:" : "TO:");
    if (path == NULL)
        return;
    if (path < line || path > line + len)
        abort();
    static struct smtp_address a;
    static int ready;
    if (!ready) {
        smtp_address_init(&a);
        ready = 1;
    }
    size_t rest = len - (size_t)(path - line);
    enum smtp_address_result r =
        smtp_address_parse(&a, cmd, path, rest, extensions);
    if (r == SMTP_ADDRESS_OK) {
        /* What smtpd hands on: bounded and free of NUL and line breaks. */
        if (a.address.len > SMTP_LOCAL_PART_MAX + 1 + SMTP_DOMAIN_MAX ||
            strlen(buf_cstr(&a.address)) != a.address.len ||
            strpbrk(buf_cstr(&a.address), "\r\n") != NULL ||
            a.envid.len > SMTP_ENVID_MAX || a.reply_code != 0)
            abort();
    } else if (a.reply_code < 400 || a.reply_code > 599 ||
               a.status == NULL || a.status[0] == '\0' ||
               strpbrk(buf_cstr(&a.reason), "\r\n") != NULL) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    log_init("fuzz", 0);
    if (size == 0)
        return 0;
    unsigned extensions = data[0];
    if (extensions & 0x80)
        extensions |= SMTP_UTF8_TRANSACTION;
    extensions &= SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_BINARYMIME |
                  SMTP_EXT_DSN | SMTP_EXT_SMTPUTF8 | SMTP_EXT_AUTH |
                  SMTP_UTF8_TRANSACTION;
    /* smtpd's reader hands over lines without CR, LF or NUL. */
    size_t len = size - 1;
    if (memchr(data + 1, '\0', len) || memchr(data + 1, '\r', len) ||
        memchr(data + 1, '\n', len))
        return 0;
    char *line = malloc(len + 1);
    if (line == NULL)
        return 0;
    memcpy(line, data + 1, len);
    line[len] = '\0';

    const char *arg;
    enum smtpd_command_id id = smtpd_command_parse(line, &arg);
    if ((unsigned)id >= SMTPD_CMD_COUNT || arg < line || arg > line + len)
        abort();
    (void)smtpd_command_forbidden(line);
    (void)smtpd_command_name(id);
    (void)smtpd_command_counter_name(id);
    if (id == SMTPD_CMD_BDAT) {
        long count;
        int last;
        if (smtpd_command_bdat(arg, &count, &last) == 0 &&
            (count < 0 || count > 999999999999999L))
            abort();
    }
    if (id == SMTPD_CMD_MAIL)
        check_path(line, len, arg, SMTP_ADDRESS_MAIL, extensions);
    if (id == SMTPD_CMD_RCPT)
        check_path(line, len, arg, SMTP_ADDRESS_RCPT, extensions);
    free(line);
    return 0;
}
