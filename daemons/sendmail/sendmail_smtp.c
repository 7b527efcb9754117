/*
 * sendmail_smtp - sendmail -bs: a small SMTP server (RFC 5321) on stdin
 * and stdout for programs that submit mail that way.  HELO, EHLO, MAIL,
 * RCPT, DATA, RSET, NOOP and QUIT, with RFC 3463 enhanced status codes;
 * each message goes through postdrop like one from plain sendmail, and
 * its 250 carries the maildrop queue ID.  Paths and their parameters are
 * parsed by smtp_address.h.  Every wait is bounded by smtpd_timeout.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "log.h"
#include "sendmail.h"
#include "smtp_address.h"
#include "stream.h"
#include "text.h"

#define SMTP_COMMAND_MAX 1000
#define SMTP_DATA_LINE_MAX (64 * 1024)
#define SMTP_EXTENSIONS (SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_DSN)

struct smtp_session {
    struct sendmail *sm;
    struct stream in;
    struct stream out;
    struct smtp_address addr;
    struct maildrop_envelope env;
    int have_mail;
    long long size_limit;
    const char *hostname;
};

static void reply(struct smtp_session *s, const char *text)
{
    stream_puts(&s->out, text);
    stream_puts(&s->out, "\r\n");
    (void)stream_flush(&s->out);
}

static void transaction_reset(struct smtp_session *s)
{
    maildrop_envelope_free(&s->env);
    maildrop_envelope_init(&s->env);
    s->have_mail = 0;
}

static int verb_is(const char *line, const char *verb)
{
    size_t n = strlen(verb);
    return strncasecmp(line, verb, n) == 0 &&
           (line[n] == '\0' || line[n] == ' ');
}

static void do_ehlo(struct smtp_session *s, int extended)
{
    transaction_reset(s);
    if (!extended) {
        stream_printf(&s->out, "250 %s\r\n", s->hostname);
        (void)stream_flush(&s->out);
        return;
    }
    stream_printf(&s->out, "250-%s\r\n250-PIPELINING\r\n250-SIZE %lld\r\n"
                  "250-8BITMIME\r\n250-DSN\r\n250 ENHANCEDSTATUSCODES\r\n",
                  s->hostname, s->size_limit);
    (void)stream_flush(&s->out);
}

static void reply_address_error(struct smtp_session *s)
{
    stream_printf(&s->out, "%d %s %s\r\n", s->addr.reply_code,
                  s->addr.status, buf_cstr(&s->addr.reason));
    (void)stream_flush(&s->out);
}

static void do_mail(struct smtp_session *s, const char *arg, size_t len)
{
    if (s->have_mail) {
        reply(s, "503 5.5.1 Error: nested MAIL command");
        return;
    }
    if (smtp_address_parse(&s->addr, SMTP_ADDRESS_MAIL, arg, len,
                           SMTP_EXTENSIONS) != SMTP_ADDRESS_OK) {
        reply_address_error(s);
        return;
    }
    if ((s->addr.seen & SMTP_PARAM_BIT(SMTP_PARAM_SIZE)) &&
        s->size_limit > 0 && s->addr.size > s->size_limit) {
        reply(s, "552 5.3.4 Message size exceeds fixed limit");
        return;
    }
    struct buf *sender = &s->env.sender;
    if (buf_set(sender, s->addr.address.data, s->addr.address.len) != 0 ||
        buf_set(&s->env.dsn_envid, s->addr.envid.data,
                s->addr.envid.len) != 0) {
        reply(s, "501 5.1.7 Bad sender address syntax");
        return;
    }
    if (s->addr.ret == SMTP_RET_FULL)
        buf_set_str(&s->env.dsn_ret, "FULL");
    else if (s->addr.ret == SMTP_RET_HDRS)
        buf_set_str(&s->env.dsn_ret, "HDRS");
    if (s->addr.body == SMTP_BODY_8BITMIME)
        buf_set_str(&s->env.encoding, "8bitmime");
    else if (s->addr.body == SMTP_BODY_7BIT)
        buf_set_str(&s->env.encoding, "7bit");
    s->env.have_sender = 1;
    s->have_mail = 1;
    reply(s, "250 2.1.0 Ok");
}

static void notify_text(unsigned notify, struct buf *out)
{
    buf_reset(out);
    if (notify & SMTP_NOTIFY_NEVER) {
        buf_set_str(out, "NEVER");
        return;
    }
    static const struct { unsigned bit; const char *word; } words[] = {
        { SMTP_NOTIFY_SUCCESS, "SUCCESS" },
        { SMTP_NOTIFY_FAILURE, "FAILURE" },
        { SMTP_NOTIFY_DELAY, "DELAY" },
    };
    for (size_t i = 0; i < 3; i++) {
        if (!(notify & words[i].bit))
            continue;
        if (out->len > 0)
            buf_append_char(out, ',');
        buf_append_str(out, words[i].word);
    }
}

static void do_rcpt(struct smtp_session *s, const char *arg, size_t len)
{
    if (!s->have_mail) {
        reply(s, "503 5.5.1 Error: need MAIL command");
        return;
    }
    if (smtp_address_parse(&s->addr, SMTP_ADDRESS_RCPT, arg, len,
                           SMTP_EXTENSIONS) != SMTP_ADDRESS_OK) {
        reply_address_error(s);
        return;
    }
    if (s->env.rcpt_count >= MAILDROP_RCPT_MAX) {
        reply(s, "452 4.5.3 Error: too many recipients");
        return;
    }
    struct buf notify, error;
    buf_init(&notify, 64);
    buf_init(&error, 256);
    int have_notify = (s->addr.seen & SMTP_PARAM_BIT(SMTP_PARAM_NOTIFY)) != 0;
    if (have_notify)
        notify_text(s->addr.notify, &notify);
    const char *address = s->addr.address.len > 0 ? buf_cstr(&s->addr.address)
                                                  : "postmaster";
    if (maildrop_envelope_add_recipient(&s->env, address,
                                        have_notify ? buf_cstr(&notify) : NULL,
                                        &error) != 0) {
        stream_printf(&s->out, "501 5.1.3 Bad recipient address: %s\r\n",
                      buf_cstr(&error));
        (void)stream_flush(&s->out);
    } else {
        reply(s, "250 2.1.5 Ok");
    }
    buf_free(&notify);
    buf_free(&error);
}

/* Reads the message up to the lone dot, dot-unstuffed, LF line ends, and
 * streams it to postdrop while postdrop takes it.  Returns the reply. */
static const char *read_data(struct smtp_session *s,
                             struct sendmail_postdrop *p, int *postdrop_ok,
                             int *eof)
{
    struct buf line;
    buf_init(&line, SMTP_DATA_LINE_MAX + 1);
    long long total = 0;
    const char *problem = NULL;
    for (;;) {
        enum stream_line_ending ending;
        int rc = stream_read_line(&s->in, &line, SMTP_DATA_LINE_MAX, &ending);
        if (rc == STREAM_TOO_LONG) {
            problem = "500 5.5.2 Error: line too long";
            continue;
        }
        if (rc != STREAM_OK) {
            *eof = 1;
            problem = "421 4.4.2 Error: lost connection in DATA";
            break;
        }
        if (line.len == 1 && line.data[0] == '.')
            break;
        const char *data = line.len > 0 && line.data[0] == '.'
                               ? line.data + 1 : buf_cstr(&line);
        size_t len = line.len > 0 && line.data[0] == '.' ? line.len - 1
                                                         : line.len;
        total += (long long)len + 1;
        if (s->size_limit > 0 && total > s->size_limit && problem == NULL)
            problem = "552 5.3.4 Error: message file too big";
        if (problem != NULL || !*postdrop_ok)
            continue;
        if (maildrop_put_content(&p->out, data, len) != 0 ||
            maildrop_put_content(&p->out, "\n", 1) != 0)
            *postdrop_ok = 0;
    }
    buf_free(&line);
    return problem;
}

static void do_data(struct smtp_session *s, int *eof)
{
    if (!s->have_mail) {
        reply(s, "503 5.5.1 Error: need MAIL command");
        return;
    }
    if (s->env.rcpt_count == 0) {
        reply(s, "554 5.5.1 Error: no valid recipients");
        return;
    }
    struct sendmail_postdrop p;
    int postdrop_ok = sendmail_postdrop_start(s->sm, &p) == 0;
    if (!postdrop_ok) {
        log_error("start postdrop: %s", strerror(errno));
        reply(s, "451 4.3.0 Error: queue file write error");
        transaction_reset(s);
        return;
    }
    if (maildrop_put_envelope(&p.out, &s->env, MAILDROP_INPUT) != 0)
        postdrop_ok = 0;
    reply(s, "354 End data with <CR><LF>.<CR><LF>");
    const char *problem = read_data(s, &p, &postdrop_ok, eof);
    if (problem != NULL || !postdrop_ok) {
        /* postdrop drops the message without a word; the reply says it. */
        (void)maildrop_put_abort(&p.out);
    } else if (maildrop_put_end(&p.out) != 0) {
        postdrop_ok = 0;
    }
    char id[QUEUE_ID_SIZE];
    int rc = sendmail_postdrop_finish(&p, id);
    if (problem != NULL) {
        if (!*eof)
            reply(s, problem);
    } else if (!postdrop_ok || rc != EX_OK) {
        reply(s, "451 4.3.0 Error: queue file write error");
    } else {
        stream_printf(&s->out, "250 2.0.0 Ok: queued as %s\r\n", id);
        (void)stream_flush(&s->out);
    }
    transaction_reset(s);
}

/* One command; returns 0 to go on, 1 after QUIT or end of input. */
static int command(struct smtp_session *s, struct buf *line)
{
    const char *text = buf_cstr(line);
    if (memchr(line->data, '\0', line->len) != NULL) {
        reply(s, "500 5.5.2 Error: bad syntax");
        return 0;
    }
    int eof = 0;
    if (verb_is(text, "HELO") || verb_is(text, "EHLO")) {
        if (line->len < 6) {
            reply(s, "501 5.5.4 Syntax: HELO hostname");
            return 0;
        }
        do_ehlo(s, text[0] == 'E' || text[0] == 'e');
    } else if (strncasecmp(text, "MAIL FROM:", 10) == 0) {
        do_mail(s, text + 10, line->len - 10);
    } else if (strncasecmp(text, "RCPT TO:", 8) == 0) {
        do_rcpt(s, text + 8, line->len - 8);
    } else if (verb_is(text, "DATA")) {
        do_data(s, &eof);
    } else if (verb_is(text, "RSET")) {
        transaction_reset(s);
        reply(s, "250 2.0.0 Ok");
    } else if (verb_is(text, "NOOP")) {
        reply(s, "250 2.0.0 Ok");
    } else if (verb_is(text, "QUIT")) {
        reply(s, "221 2.0.0 Bye");
        return 1;
    } else if (verb_is(text, "VRFY")) {
        reply(s, "502 5.5.1 VRFY command is disabled");
    } else {
        reply(s, "502 5.5.2 Error: command not recognized");
    }
    return eof;
}

int sendmail_smtp(struct sendmail *sm, const struct sendmail_options *opt)
{
    (void)opt;
    struct smtp_session s;
    memset(&s, 0, sizeof(s));
    s.sm = sm;
    int timeout_ms = (int)config_get_time(sm->cfg, "smtpd_timeout") * 1000;
    stream_init(&s.in, STDIN_FILENO, timeout_ms);
    stream_init(&s.out, STDOUT_FILENO, timeout_ms);
    smtp_address_init(&s.addr);
    maildrop_envelope_init(&s.env);
    s.size_limit = config_get_size(sm->cfg, "message_size_limit");
    s.hostname = config_get_str(sm->cfg, "myhostname");
    stream_printf(&s.out, "220 %s\r\n",
                  config_get_str(sm->cfg, "smtpd_banner"));
    (void)stream_flush(&s.out);
    struct buf line;
    buf_init(&line, SMTP_COMMAND_MAX + 1);
    for (;;) {
        enum stream_line_ending ending;
        int rc = stream_read_line(&s.in, &line, SMTP_COMMAND_MAX, &ending);
        if (rc == STREAM_TOO_LONG) {
            reply(&s, "500 5.5.2 Error: line too long");
            continue;
        }
        if (rc != STREAM_OK)
            break;
        if (command(&s, &line) != 0)
            break;
    }
    buf_free(&line);
    maildrop_envelope_free(&s.env);
    smtp_address_free(&s.addr);
    stream_free(&s.in);
    stream_free(&s.out);
    return EX_OK;
}
