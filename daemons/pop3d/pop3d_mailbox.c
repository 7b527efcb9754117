/*
 * pop3d_mailbox - the mailbox process: the TRANSACTION and UPDATE states
 * of RFC 1939, as the mailbox owner with no capability.
 *
 * Its first reply answers the client's login command: "+OK" once the
 * Maildir is locked and listed, "-ERR [IN-USE]" when another session
 * holds the lock (RFC 2449), "-ERR [SYS/TEMP]" when it cannot be opened;
 * after an -ERR the session ends.
 *
 * Commands: STAT, LIST [n], UIDL [n], RETR n, TOP n k, DELE n, NOOP, RSET,
 * CAPA, QUIT.  A message number is decimal, 1 to the number of messages
 * listed at login; anything else is "-ERR invalid message number" or
 * "-ERR no such message", and a deleted message "-ERR message N already
 * deleted".  Nothing on disk changes before QUIT (maildir_update): a
 * connection that is lost or times out deletes nothing.
 *
 * Logged, with the user first: "user=<u>: maildrop has N messages" at
 * the start, "user=<u>: logout: retr=N, top=N, dele=N, kept=N" after
 * QUIT, or "user=<u>: session ended without QUIT: nothing deleted".
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "pop3d.h"
#include "pop3d_maildir.h"
#include "text.h"

struct mailbox {
    const struct pop3d *d;
    const struct pop3d_account *acct;
    struct pop3d_conn c;
    struct maildir m;
    unsigned long retr, top, dele;
};

static _Noreturn void mailbox_exit(struct mailbox *b)
{
    (void)stream_flush(&b->c.stream);
    (void)shutdown(b->c.stream.fd, SHUT_WR);
    maildir_close(&b->m);
    _exit(0);
}

/* A decimal number without sign, at most max; -1 otherwise. */
static long mailbox_number(const char *text, long max)
{
    long v;
    if (text[0] < '0' || text[0] > '9' || strlen(text) > 10 ||
        text_parse_long(text, 0, max, &v) != 0)
        return -1;
    return v;
}

/* The index of message "text", or -1 after the -ERR reply. */
static long mailbox_message(struct mailbox *b, const char *text,
                            int deleted_ok)
{
    long n = mailbox_number(text, 0x7fffffffL);
    if (n < 0) {
        pop3d_err(&b->c, "Invalid message number");
        return -1;
    }
    if (n < 1 || (size_t)n > b->m.count) {
        pop3d_err(&b->c, "No such message");
        return -1;
    }
    if (b->m.msgs[n - 1].deleted && !deleted_ok) {
        pop3d_err(&b->c, "Message %ld already deleted", n);
        return -1;
    }
    return n - 1;
}

static long long mailbox_size(struct mailbox *b, size_t i)
{
    long long size;
    return maildir_size(&b->m, i, &size) == 0 ? size : 0;
}

static void mailbox_stat(struct mailbox *b)
{
    unsigned long count = 0;
    long long total = 0;
    for (size_t i = 0; i < b->m.count; i++)
        if (!b->m.msgs[i].deleted) {
            count++;
            total += mailbox_size(b, i);
        }
    pop3d_ok(&b->c, "%lu %lld", count, total);
}

/* LIST and UIDL: one message, or every one that is not deleted. */
static void mailbox_listing(struct mailbox *b, const char *args, int uidl)
{
    if (args[0] != '\0') {
        long i = mailbox_message(b, args, 0);
        if (i < 0)
            return;
        if (uidl)
            pop3d_ok(&b->c, "%ld %s", i + 1, b->m.msgs[i].uidl);
        else
            pop3d_ok(&b->c, "%ld %lld", i + 1, mailbox_size(b, (size_t)i));
        return;
    }
    pop3d_ok(&b->c, uidl ? "Unique-ID listing follows"
                         : "Scan listing follows");
    struct stream *s = &b->c.stream;
    for (size_t i = 0; i < b->m.count; i++) {
        if (b->m.msgs[i].deleted)
            continue;
        if (uidl)
            (void)stream_printf(s, "%zu %s\r\n", i + 1, b->m.msgs[i].uidl);
        else
            (void)stream_printf(s, "%zu %lld\r\n", i + 1,
                                mailbox_size(b, i));
    }
    (void)stream_puts(s, ".\r\n");
}

/* RETR (body_lines -1) and TOP. */
static int mailbox_send(struct mailbox *b, long i, long body_lines)
{
    struct maildir_msg *msg = &b->m.msgs[i];
    char first[64];
    struct buf line;
    buf_init(&line, sizeof(first) - 1);
    if (body_lines >= 0)
        (void)buf_printf(&line, "+OK Top of message follows\r\n");
    else if (msg->size >= 0)
        (void)buf_printf(&line, "+OK %lld octets\r\n", msg->size);
    else
        (void)buf_printf(&line, "+OK Message follows\r\n");
    (void)text_copy(first, sizeof(first), buf_cstr(&line));
    buf_free(&line);
    int rc = maildir_send(&b->m, (size_t)i, body_lines, first, &b->c.stream);
    if (rc == -1) {
        log_warn("user=<%s>: message %s: %s", b->acct->user, msg->name,
                 strerror(errno));
        pop3d_err(&b->c, "[SYS/TEMP] Message %ld is gone", i + 1);
        return 0;
    }
    if (rc != 0) {
        log_info("user=<%s>: lost connection in RETR from %s",
                 b->acct->user, b->c.client_id);
        return -1;
    }
    if (body_lines < 0) {
        msg->retrieved = 1;
        b->retr++;
    } else {
        b->top++;
    }
    return 0;
}

static int mailbox_retr(struct mailbox *b, const char *args)
{
    long i = mailbox_message(b, args, 0);
    return i < 0 ? 0 : mailbox_send(b, i, -1);
}

static int mailbox_top(struct mailbox *b, const char *args)
{
    char number[16];
    size_t n = strcspn(args, " ");
    if (n == 0 || n >= sizeof(number) || args[n] != ' ') {
        pop3d_err(&b->c, "Usage: TOP message lines");
        return 0;
    }
    memcpy(number, args, n);
    number[n] = '\0';
    long lines = mailbox_number(args + n + 1, 0x7fffffffL);
    if (lines < 0) {
        pop3d_err(&b->c, "Invalid line count");
        return 0;
    }
    long i = mailbox_message(b, number, 0);
    return i < 0 ? 0 : mailbox_send(b, i, lines);
}

static void mailbox_dele(struct mailbox *b, const char *args)
{
    long i = mailbox_message(b, args, 0);
    if (i < 0)
        return;
    b->m.msgs[i].deleted = 1;
    b->dele++;
    pop3d_ok(&b->c, "Message %ld deleted", i + 1);
}

static void mailbox_rset(struct mailbox *b)
{
    for (size_t i = 0; i < b->m.count; i++)
        b->m.msgs[i].deleted = 0;
    b->dele = 0;
    pop3d_ok(&b->c, "Maildrop has %zu messages", b->m.count);
}

static void mailbox_quit(struct mailbox *b)
{
    struct buf error;
    buf_init(&error, 4096);
    unsigned long kept = (unsigned long)b->m.count - b->dele;
    if (maildir_update(&b->m, &error) != 0) {
        log_error("user=<%s>: update: %s", b->acct->user, buf_cstr(&error));
        pop3d_err(&b->c, "[SYS/TEMP] Some deleted messages were not "
                         "removed");
    } else {
        pop3d_ok(&b->c, "Bye");
    }
    log_info("user=<%s>: logout: retr=%lu, top=%lu, dele=%lu, kept=%lu",
             b->acct->user, b->retr, b->top, b->dele, kept);
    buf_free(&error);
}

/* One command; 1 after QUIT or a lost connection. */
static int mailbox_command(struct mailbox *b, const char *line)
{
    char verb[8];
    const char *args = pop3d_split_command(line, verb, sizeof(verb));
    if (strcmp(verb, "STAT") == 0)
        mailbox_stat(b);
    else if (strcmp(verb, "LIST") == 0)
        mailbox_listing(b, args, 0);
    else if (strcmp(verb, "UIDL") == 0)
        mailbox_listing(b, args, 1);
    else if (strcmp(verb, "RETR") == 0)
        return mailbox_retr(b, args) != 0;
    else if (strcmp(verb, "TOP") == 0)
        return mailbox_top(b, args) != 0;
    else if (strcmp(verb, "DELE") == 0)
        mailbox_dele(b, args);
    else if (strcmp(verb, "NOOP") == 0)
        pop3d_ok(&b->c, "%s", "");
    else if (strcmp(verb, "RSET") == 0)
        mailbox_rset(b);
    else if (strcmp(verb, "CAPA") == 0)
        pop3d_capa(&b->c, 0, 0, 0);
    else if (strcmp(verb, "QUIT") == 0) {
        mailbox_quit(b);
        return 1;
    } else if (strcmp(verb, "USER") == 0 || strcmp(verb, "PASS") == 0 ||
               strcmp(verb, "AUTH") == 0 || strcmp(verb, "STLS") == 0 ||
               strcmp(verb, "APOP") == 0)
        pop3d_err(&b->c, "Already logged in");
    else
        pop3d_err(&b->c, "Unknown command");
    return 0;
}

static void mailbox_open(struct mailbox *b)
{
    struct buf error;
    buf_init(&error, 4096);
    int rc = maildir_open(&b->m, buf_cstr(&b->acct->maildir), geteuid(),
                          (size_t)b->d->max_messages, &error);
    if (rc == MAILDIR_IN_USE) {
        log_info("user=<%s>: mailbox in use by another session",
                 b->acct->user);
        pop3d_err(&b->c, "[IN-USE] Mailbox is locked by another session");
        mailbox_exit(b);
    }
    if (rc != MAILDIR_OK) {
        log_error("user=<%s>: %s", b->acct->user, buf_cstr(&error));
        pop3d_err(&b->c, "[SYS/TEMP] Cannot open the mailbox");
        mailbox_exit(b);
    }
    buf_free(&error);
    log_info("user=<%s>: maildrop has %zu messages", b->acct->user,
             b->m.count);
    pop3d_ok(&b->c, "Logged in, maildrop has %zu messages", b->m.count);
}

_Noreturn void pop3d_mailbox_run(const struct pop3d *d,
                                 const struct pop3d_account *acct, int fd,
                                 int client_fd, const char *pending,
                                 size_t pending_len)
{
    struct mailbox b;
    memset(&b, 0, sizeof(b));
    b.d = d;
    b.acct = acct;
    b.m.dir_fd = b.m.lock_fd = b.m.sub_fd[0] = b.m.sub_fd[1] = -1;
    pop3d_conn_init(&b.c, fd, d->timeout_ms);
    pop3d_identify_client(&b.c, client_fd);
    if (client_fd != fd)
        (void)close(client_fd);
    if (pending_len > 0 &&
        buf_append(&b.c.stream.in, pending, pending_len) != 0)
        mailbox_exit(&b);
    mailbox_open(&b);
    struct buf line;
    buf_init(&line, (size_t)d->line_limit + 1);
    for (;;) {
        int rc = pop3d_read_command(&b.c, &line, d->line_limit,
                                    "TRANSACTION");
        if (rc == POP3D_GONE) {
            log_info("user=<%s>: session ended without QUIT: nothing "
                     "deleted", acct->user);
            break;
        }
        if (rc == POP3D_LINE && mailbox_command(&b, buf_cstr(&line)))
            break;
        if (b.c.errors >= POP3D_ERROR_LIMIT) {
            pop3d_err(&b.c, "Too many errors");
            break;
        }
    }
    buf_free(&line);
    mailbox_exit(&b);
}
