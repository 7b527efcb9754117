/*
 * sendmail - the Sendmail-compatible submission command (and mailq, the
 * same program under another name).  sendmail_options.h has the command
 * line; the modes:
 *
 *   deliver (-bm)  read the message on stdin (sendmail_input.h), hand it
 *                  with its envelope to postdrop (maildrop.h, "internal
 *                  form"), which queues it in maildrop/ for pickup
 *   -bs            SMTP on stdin/stdout (sendmail_smtp.c), each message
 *                  through postdrop the same way
 *   -bp, mailq     postdrop -p (the queue from showq)
 *   -q             postdrop -q (a queue run)
 *   -bi            newaliases
 * postdrop and newaliases are run from command_directory.  sendmail has no
 * privilege of its own; postdrop is the set-group-ID program.
 *
 * Without -f the sender is the login name of the real uid.  Exit codes
 * are those of sysexits.h: EX_USAGE for a bad command line or no
 * recipients, EX_DATAERR for a bad address or a message too large, and
 * postdrop's own code when it fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "postino_paths.h"
#include "sendmail.h"
#include "sendmail_input.h"
#include "sendmail_options.h"

#define SENDMAIL_READ_CHUNK (64 * 1024)

/* "sendmail: fatal: TEXT" on the terminal, as Postfix's sendmail says
 * it, and the sysexits.h code (log_fatal would exit with 1). */
static _Noreturn void fatal_exit(int code, const char *text)
{
    log_info("fatal: %s", text);
    exit(code);
}

static struct config *load_config(const char *dir)
{
    int errors = 0;
    struct config *cfg = config_load_dir_flags(dir, CONFIG_QUIET_UNUSED,
                                               &errors);
    if (cfg == NULL) {
        log_error("%s/main.cf: %d error(s)", dir, errors);
        exit(EX_CONFIG);
    }
    return cfg;
}

/* Runs PROGRAM from command_directory with args (argv[0] included) in
 * place of this process. */
static _Noreturn void exec_command(struct sendmail *sm, const char *program,
                                   char **args)
{
    struct buf path;
    buf_init(&path, 4096);
    if (buf_printf(&path, "%s/%s",
                   config_get_str(sm->cfg, "command_directory"),
                   program) != 0)
        fatal_exit(EX_SOFTWARE, "command_directory too long");
    execv(buf_cstr(&path), args);
    log_error("execute %s: %s", buf_cstr(&path), strerror(errno));
    exit(EX_UNAVAILABLE);
}

/* postdrop with -c when a configuration directory was named. */
static void postdrop_args(struct sendmail *sm, const char *mode,
                          char *args[6])
{
    int n = 0;
    args[n++] = (char *)"postdrop";
    if (sm->explicit_config) {
        args[n++] = (char *)"-c";
        args[n++] = (char *)sm->config_dir;
    }
    if (mode != NULL)
        args[n++] = (char *)mode;
    args[n] = NULL;
}

int sendmail_postdrop_start(struct sendmail *sm, struct sendmail_postdrop *p)
{
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0)
        return -1;
    if (pipe2(out, O_CLOEXEC) != 0) {
        (void)close(in[0]);
        (void)close(in[1]);
        return -1;
    }
    /* Nothing buffered may be written twice, by the child too. */
    if (fflush(stdout) != 0) {
        int saved = errno;
        (void)close(in[0]); (void)close(in[1]);
        (void)close(out[0]); (void)close(out[1]);
        errno = saved;
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        int saved = errno;
        (void)close(in[0]); (void)close(in[1]);
        (void)close(out[0]); (void)close(out[1]);
        errno = saved;
        return -1;
    }
    if (pid == 0) {
        if (dup2(in[0], STDIN_FILENO) < 0 || dup2(out[1], STDOUT_FILENO) < 0)
            _exit(EX_OSERR);
        char *args[6];
        postdrop_args(sm, NULL, args);
        exec_command(sm, "postdrop", args);
    }
    (void)close(in[0]);
    (void)close(out[1]);
    p->pid = pid;
    p->to_fd = in[1];
    p->from_fd = out[0];
    maildrop_out_init(&p->out, p->to_fd);
    return 0;
}

/* Reads postdrop's answer (the queue ID) and its exit status.  Returns
 * EX_OK with id set, or postdrop's exit code. */
int sendmail_postdrop_finish(struct sendmail_postdrop *p,
                             char id[QUEUE_ID_SIZE])
{
    maildrop_out_free(&p->out);
    if (p->to_fd >= 0)
        (void)close(p->to_fd);
    p->to_fd = -1;
    size_t len = 0;
    id[0] = '\0';
    for (;;) {
        char c;
        ssize_t n = read(p->from_fd, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || c == '\n')
            break;
        if (len + 1 < QUEUE_ID_SIZE)
            id[len++] = c;
    }
    id[len] = '\0';
    (void)close(p->from_fd);
    int status;
    while (waitpid(p->pid, &status, 0) < 0) {
        if (errno != EINTR)
            return EX_OSERR;
    }
    if (WIFEXITED(status)) {
        if (WEXITSTATUS(status) == EX_OK && !queue_id_valid(id)) {
            log_error("postdrop gave no queue ID");
            return EX_SOFTWARE;
        }
        return WEXITSTATUS(status);
    }
    log_error("postdrop killed by signal %d", WTERMSIG(status));
    return EX_SOFTWARE;
}

/* The login name of the real uid: the sender without -f. */
static int login_sender(struct buf *out)
{
    struct passwd *pw = getpwuid(getuid());
    if (pw == NULL)
        return buf_printf(out, "#%ld", (long)getuid());
    return buf_set_str(out, pw->pw_name);
}

/* "<a@b>" and "a@b" are the same; "" and "<>" the null sender. */
static int strip_brackets(const char *in, struct buf *out)
{
    size_t len = strlen(in);
    if (len >= 2 && in[0] == '<' && in[len - 1] == '>')
        return buf_set(out, in + 1, len - 2);
    return buf_set(out, in, len);
}

/* Sender, full name and DSN options of the command line into env (no
 * recipients).  0, or -1 after logging why. */
static int command_line_envelope(const struct sendmail_options *opt,
                                 struct maildrop_envelope *env)
{
    struct buf error;
    buf_init(&error, 512);
    int rc = -1;
    if (opt->sender != NULL) {
        if (strip_brackets(opt->sender, &env->sender) != 0 ||
            maildrop_check_address(env->sender.data, env->sender.len, 1,
                                   &error) != 0) {
            log_error("bad sender address \"%.100s\": %s", opt->sender,
                      buf_cstr(&error));
            goto out;
        }
    } else if (login_sender(&env->sender) != 0) {
        log_error("cannot find the login name of uid %ld", (long)getuid());
        goto out;
    }
    env->have_sender = 1;
    if (opt->full_name != NULL &&
        buf_set_str(&env->full_name, opt->full_name) != 0) {
        log_error("full name longer than %d bytes", MAILDROP_FULL_NAME_MAX);
        goto out;
    }
    for (size_t i = 0; i < env->full_name.len; i++)
        if ((unsigned char)env->full_name.data[i] < 0x20) {
            log_error("control character in the full name");
            goto out;
        }
    if (opt->envid != NULL && buf_set_str(&env->dsn_envid, opt->envid) != 0) {
        log_error("-V: envid longer than %d bytes", MAILDROP_ENVID_MAX);
        goto out;
    }
    for (size_t i = 0; i < env->dsn_envid.len; i++)
        if ((unsigned char)env->dsn_envid.data[i] <= 0x20 ||
            (unsigned char)env->dsn_envid.data[i] >= 0x7f) {
            log_error("-V: envid must be printable ASCII");
            goto out;
        }
    if ((opt->ret != NULL && buf_set_str(&env->dsn_ret, opt->ret) != 0) ||
        (opt->body != NULL && buf_set_str(&env->encoding, opt->body) != 0))
        goto out;
    if (opt->extract)
        env->flags |= MAILDROP_FLAG_EXTRACT;
    /* -N holds for the recipients that -t finds in the header too. */
    if (opt->extract && opt->notify != NULL &&
        maildrop_check_notify(opt->notify, &env->extract_notify) != 0) {
        log_error("-N: bad DSN notify \"%.64s\"", opt->notify);
        goto out;
    }
    rc = 0;
out:
    buf_free(&error);
    return rc;
}

/* Each argument may be a comma list; "Name <a@b>" gives a@b. */
static int add_recipients(const struct sendmail_options *opt,
                          struct maildrop_envelope *env)
{
    struct buf error, one;
    buf_init(&error, 512);
    buf_init(&one, MAILDROP_ADDRESS_MAX + 2);
    int rc = 0;
    for (int i = 0; i < opt->recipient_count && rc == 0; i++) {
        const char *p = opt->recipients[i];
        for (const char *c = p; *c != '\0'; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f) {
                log_error("bad recipient address \"%.100s\": control "
                          "character", p);
                rc = -1;
                break;
            }
        if (rc != 0)
            break;
        while (*p != '\0' && rc == 0) {
            const char *comma = strchr(p, ',');
            size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
            while (n > 0 && (*p == ' ' || *p == '\t')) { p++; n--; }
            while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
            const char *open = memchr(p, '<', n);
            const char *close_bracket = open != NULL
                ? memchr(open, '>', n - (size_t)(open - p)) : NULL;
            if (open != NULL && close_bracket != NULL) {
                n = (size_t)(close_bracket - open - 1);
                p = open + 1;
            }
            buf_reset(&error);
            if (n > 0) {
                if (buf_set(&one, p, n) != 0 ||
                    maildrop_envelope_add_recipient(env, buf_cstr(&one),
                                                    opt->notify,
                                                    &error) != 0) {
                    log_error("bad recipient address \"%.100s\": %s",
                              opt->recipients[i],
                              error.len ? buf_cstr(&error) : "too long");
                    rc = -1;
                }
            }
            if (comma == NULL)
                break;
            p = comma + 1;
        }
    }
    buf_free(&one);
    buf_free(&error);
    return rc;
}

/* Streams stdin as content to postdrop.  EX_OK or an exit code. */
static int copy_message(struct sendmail *sm, const struct sendmail_options *opt,
                        struct sendmail_postdrop *p)
{
    long long limit = config_get_size(sm->cfg, "message_size_limit");
    long long total = 0;
    struct sendmail_input in;
    sendmail_input_init(&in, opt->ignore_dots);
    struct sendmail_rcpt_scan scan;
    sendmail_rcpt_scan_init(&scan);
    struct buf out;
    buf_init(&out, 2 * SENDMAIL_READ_CHUNK + 16);
    static char chunk[SENDMAIL_READ_CHUNK];
    int rc = EX_OK;
    while (!in.ended) {
        ssize_t n = read(STDIN_FILENO, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            log_error("read message: %s", strerror(errno));
            rc = EX_IOERR;
            break;
        }
        if (n == 0)
            break;
        if (sendmail_input_feed(&in, chunk, (size_t)n, &out) == SIZE_MAX) {
            rc = EX_SOFTWARE;
            break;
        }
        sendmail_rcpt_scan_feed(&scan, out.data, out.len);
        total += (long long)out.len;
        if (limit > 0 && total > limit) {
            log_error("message file too big (limit %lld bytes)", limit);
            rc = EX_DATAERR;
            break;
        }
        if (maildrop_put_content(&p->out, out.data, out.len) != 0) {
            rc = EX_TEMPFAIL; /* postdrop went away: it says why */
            break;
        }
        buf_reset(&out);
    }
    if (rc == EX_OK && sendmail_input_finish(&in, &out) != 0)
        rc = EX_SOFTWARE;
    if (rc == EX_OK) {
        sendmail_rcpt_scan_feed(&scan, out.data, out.len);
        if (opt->extract && opt->recipient_count == 0 && !scan.found) {
            log_info("fatal: No recipient addresses found in message "
                     "header");
            rc = EX_USAGE;
        }
    }
    if (rc == EX_OK && (maildrop_put_content(&p->out, out.data, out.len) != 0 ||
                        maildrop_put_end(&p->out) != 0))
        rc = EX_TEMPFAIL;
    buf_free(&out);
    return rc;
}

static int deliver(struct sendmail *sm, const struct sendmail_options *opt)
{
    if (!opt->extract && opt->recipient_count == 0)
        fatal_exit(EX_USAGE, "no recipients specified");
    struct maildrop_envelope env;
    maildrop_envelope_init(&env);
    if (command_line_envelope(opt, &env) != 0 ||
        add_recipients(opt, &env) != 0) {
        maildrop_envelope_free(&env);
        return EX_DATAERR;
    }
    struct sendmail_postdrop p;
    if (sendmail_postdrop_start(sm, &p) != 0) {
        log_error("start postdrop: %s", strerror(errno));
        maildrop_envelope_free(&env);
        return EX_OSERR;
    }
    int rc = maildrop_put_envelope(&p.out, &env, MAILDROP_INPUT) == 0
                 ? copy_message(sm, opt, &p) : EX_TEMPFAIL;
    maildrop_envelope_free(&env);
    if (rc != EX_OK && rc != EX_TEMPFAIL) {
        /* Our own refusal, already reported: postdrop drops the message
         * without a word. */
        (void)maildrop_put_abort(&p.out);
    }
    char id[QUEUE_ID_SIZE];
    int drop = sendmail_postdrop_finish(&p, id);
    if (rc != EX_OK && rc != EX_TEMPFAIL)
        return rc;
    if (drop != EX_OK)
        return drop;
    if (rc != EX_OK)
        return rc;
    log_debug("%s: queued in maildrop", id);
    return EX_OK;
}

int main(int argc, char **argv)
{
    log_init("sendmail", LOG_TO_TTY);
    signal(SIGPIPE, SIG_IGN);
    struct sendmail_options opt;
    char error[256];
    if (sendmail_options_parse(&opt, argc, argv, error, sizeof(error)) != 0) {
        fatal_exit(EX_USAGE, error);
    }
    log_set_verbose(opt.verbose);
    struct sendmail sm;
    memset(&sm, 0, sizeof(sm));
    sm.config_dir = opt.config_dir;
    if (sm.config_dir == NULL) {
        const char *env = getenv("MAIL_CONFIG");
        sm.config_dir = env != NULL && env[0] != '\0' ? env : NULL;
    }
    sm.explicit_config = sm.config_dir != NULL;
    if (sm.config_dir == NULL)
        sm.config_dir = POSTINO_CONFIG_DIR;
    sm.cfg = load_config(sm.config_dir);

    char *args[6];
    int rc;
    switch (opt.mode) {
    case SENDMAIL_LIST:
        postdrop_args(&sm, "-p", args);
        exec_command(&sm, "postdrop", args);
    case SENDMAIL_FLUSH:
        postdrop_args(&sm, "-q", args);
        exec_command(&sm, "postdrop", args);
    case SENDMAIL_NEWALIASES:
        args[0] = (char *)"newaliases";
        args[1] = (char *)"-c";
        args[2] = (char *)sm.config_dir;
        args[3] = NULL;
        exec_command(&sm, "newaliases", args);
    case SENDMAIL_SMTP:
        rc = sendmail_smtp(&sm, &opt);
        break;
    default:
        rc = deliver(&sm, &opt);
        break;
    }
    config_free(sm.cfg);
    return rc;
}
