/*
 * postino-queue - the admin's view of the queue and the operations on it,
 * by queue ID, safe while the mail system runs.
 *
 *     postino-queue [-c config_dir] [-p]    list the queue, with the reason
 *                                           of each deferral (as mailq)
 *     postino-queue [-c config_dir] [-h ID] [-H ID] [-r ID] [-d ID] [-f]
 *
 *   -h ID   hold: the message leaves incoming/, active/ or deferred/ for
 *           hold/, where nothing is tried until it is released
 *   -H ID   release a held message: back to incoming/, tried at once
 *   -r ID   requeue: a message in deferred/ (or active/) goes back to
 *           incoming/ and is tried at once, its recipients resolved again
 *           (new transport_maps entries apply)
 *   -d ID   delete the message from any queue, with its recipient logs;
 *           nobody is told
 *   -f      flush: every deferred message is tried now (as postino flush)
 *
 * ID is a queue ID, "ALL" for every message of the queues the operation
 * applies to, or "-" for IDs read one per line from standard input.  The
 * options may be repeated and combined; they run in the order -d, -h, -H,
 * -r, -f, as Postfix's postsuper does.  Each moved or removed message is
 * logged (`ID: removed`, `ID: placed on hold`, `ID: released from hold`,
 * `ID: requeued`) and a summary is printed.
 *
 * Why it is safe: every operation is one rename(2) or unlink(2) of the
 * queue file, atomic against qmgr; the inode, and so qmgr's open
 * descriptor and its marks of done recipients, moves with the name.  A
 * message qmgr has in active/ when it is held or deleted is dropped by
 * qmgr when it next touches the name (docs/queue-format.md); a delivery
 * already handed to an agent may still complete.  Runs as root or as
 * mail_owner.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "log.h"
#include "postino_paths.h"
#include "privilege.h"
#include "queue_file.h"
#include "queue_listing.h"
#include "recipient_log.h"
#include "stream.h"
#include "trigger.h"

#define QUEUE_OP_MAX 64

enum queue_op_kind { OP_DELETE, OP_HOLD, OP_RELEASE, OP_REQUEUE };

struct queue_op {
    enum queue_op_kind kind;
    const char *id;            /* a queue ID, "ALL" or "-" */
};

struct queue_op_rule {
    const char *verb;          /* for the summary: "Deleted" */
    const char *log_text;      /* "removed" */
    const char *from[6];       /* the queues searched, NULL-terminated */
    const char *to;            /* NULL: unlink */
};

static const struct queue_op_rule queue_op_rules[] = {
    [OP_DELETE] = { "Deleted", "removed",
                    { "maildrop", "incoming", "active", "deferred", "hold",
                      "corrupt" }, NULL },
    [OP_HOLD] = { "Placed on hold", "placed on hold",
                  { "incoming", "active", "deferred", NULL }, "hold" },
    [OP_RELEASE] = { "Released from hold", "released from hold",
                     { "hold", NULL }, "incoming" },
    [OP_REQUEUE] = { "Requeued", "requeued",
                     { "active", "deferred", NULL }, "incoming" },
};

static _Noreturn void queue_usage(void)
{
    log_fatal("usage: postino-queue [-c config_dir] [-p] [-d ID] [-h ID] "
              "[-H ID] [-r ID] [-f]  (ID: a queue ID, ALL, or - for "
              "standard input)");
}

static void queue_remove_logs(const char *id)
{
    static const char *const logs[] = { "defer", "bounce", "trace" };
    for (size_t i = 0; i < sizeof(logs) / sizeof(logs[0]); i++)
        if (recipient_log_remove(logs[i], id) != 0)
            log_warn("remove %s/%s: %s", logs[i], id, strerror(errno));
}

/* Applies rule to the message id if it is in one of the rule's queues.
 * 1 done, 0 not there, -1 error (logged). */
static int queue_apply_one(const struct queue_op_rule *rule, const char *id)
{
    struct buf from, to;
    buf_init(&from, PATH_MAX);
    buf_init(&to, PATH_MAX);
    int result = 0;
    for (size_t i = 0; i < 6 && rule->from[i] != NULL && result == 0; i++) {
        buf_reset(&from);
        buf_printf(&from, "%s/%s", rule->from[i], id);
        int rc;
        if (rule->to == NULL) {
            rc = unlink(buf_cstr(&from));
        } else {
            buf_reset(&to);
            buf_printf(&to, "%s/%s", rule->to, id);
            rc = rename(buf_cstr(&from), buf_cstr(&to));
        }
        if (rc == 0) {
            if (rule->to == NULL)
                queue_remove_logs(id);
            log_info("%s: %s", id, rule->log_text);
            result = 1;
        } else if (errno != ENOENT) {
            log_error("%s: %s", buf_cstr(&from), strerror(errno));
            result = -1;
        }
    }
    buf_free(&from);
    buf_free(&to);
    return result;
}

static int compare_ids(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void queue_push_id(char ***ids, size_t *count, size_t *cap,
                          const char *id)
{
    if (*count == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        char **grown = realloc(*ids, *cap * sizeof(**ids));
        if (grown == NULL)
            log_fatal("out of memory");
        *ids = grown;
    }
    if (((*ids)[*count] = strdup(id)) == NULL)
        log_fatal("out of memory");
    (*count)++;
}

/* Every queue ID in the rule's queues. */
static size_t queue_all_ids(const struct queue_op_rule *rule, char ***ids)
{
    size_t count = 0, cap = 0;
    *ids = NULL;
    for (size_t i = 0; i < 6 && rule->from[i] != NULL; i++) {
        DIR *d = opendir(rule->from[i]);
        if (d == NULL)
            continue;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (!queue_id_valid(e->d_name))
                continue;
            queue_push_id(ids, &count, &cap, e->d_name);
        }
        closedir(d);
    }
    if (count > 0)
        qsort(*ids, count, sizeof(**ids), compare_ids);
    return count;
}

/* IDs one per line from standard input. */
static size_t queue_stdin_ids(char ***ids)
{
    size_t count = 0, cap = 0;
    *ids = NULL;
    struct stream in;
    stream_init(&in, 0, -1);
    struct buf line;
    buf_init(&line, 256);
    while (stream_read_line(&in, &line, 200, NULL) == STREAM_OK) {
        while (line.len > 0 && (line.data[line.len - 1] == '\n' ||
                                line.data[line.len - 1] == '\r' ||
                                line.data[line.len - 1] == ' '))
            buf_truncate(&line, line.len - 1);
        if (line.len == 0)
            continue;
        queue_push_id(ids, &count, &cap, buf_cstr(&line));
    }
    buf_free(&line);
    stream_free(&in);
    return count;
}

static void queue_free_ids(char **ids, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(ids[i]);
    free(ids);
}

/* Runs one operation; adds to *done, returns the number of errors. */
static int queue_run_op(const struct queue_op *op, long *done)
{
    const struct queue_op_rule *rule = &queue_op_rules[op->kind];
    char **ids = NULL;
    size_t count;
    char *single[1];
    if (strcmp(op->id, "ALL") == 0) {
        count = queue_all_ids(rule, &ids);
    } else if (strcmp(op->id, "-") == 0) {
        count = queue_stdin_ids(&ids);
    } else {
        single[0] = (char *)op->id;
        count = 1;
    }
    char **list = ids != NULL ? ids : single;
    int errors = 0;
    for (size_t i = 0; i < count; i++) {
        if (!queue_id_valid(list[i])) {
            log_error("%s: not a queue ID", list[i]);
            errors++;
            continue;
        }
        int rc = queue_apply_one(rule, list[i]);
        if (rc > 0)
            (*done)++;
        else if (rc < 0)
            errors++;
        else if (ids == NULL)
            log_warn("%s: no such message in %s", list[i],
                     op->kind == OP_RELEASE ? "the hold queue"
                     : op->kind == OP_REQUEUE ? "the active or deferred queue"
                                              : "the queue");
    }
    if (ids != NULL)
        queue_free_ids(ids, count);
    return errors;
}

static int queue_list(void)
{
    struct stream out;
    stream_init(&out, 1, -1);
    queue_listing_write(&out);
    int rc = stream_flush(&out) == STREAM_OK ? 0 : 1;
    stream_free(&out);
    return rc;
}

static void queue_wake_qmgr(const char *bytes)
{
    struct trigger qmgr;
    trigger_init(&qmgr, "public/qmgr");
    if (trigger_send(&qmgr, bytes, strlen(bytes)) != 0)
        log_warn("the queue manager is not running (public/qmgr: %s); the "
                 "change takes effect when it starts", strerror(errno));
}

/* Only root and mail_owner may touch the queue. */
static void queue_check_user(struct config *cfg)
{
    uid_t owner;
    gid_t group;
    const char *mail_owner = config_get_str(cfg, "mail_owner");
    if (geteuid() == 0)
        return;
    if (privilege_lookup_user(mail_owner, &owner, &group) == 0 &&
        owner == geteuid())
        return;
    log_fatal("only root or %s may change the queue (use mailq to see it)",
              mail_owner);
}

static void queue_open_log(struct config *cfg)
{
    const char *file = config_get_str(cfg, "maillog_file");
    unsigned dest = LOG_TO_TTY;
    if (file[0] != '\0' && log_open_file(file) == 0)
        dest |= LOG_TO_FILE;
    else if (file[0] == '\0')
        dest |= LOG_TO_SYSLOG;
    log_set_destinations(dest);
}

int main(int argc, char **argv)
{
    log_init("postino-queue", LOG_TO_TTY);
    const char *dir = getenv("MAIL_CONFIG");
    if (dir == NULL || dir[0] == '\0')
        dir = POSTINO_CONFIG_DIR;
    struct queue_op ops[QUEUE_OP_MAX];
    size_t op_count = 0;
    int list = 0, flush = 0, c;
    while ((c = getopt(argc, argv, "c:pd:h:H:r:f")) != -1) {
        if (strchr("dhHr", c) != NULL && op_count == QUEUE_OP_MAX)
            log_fatal("too many operations (at most %d)", QUEUE_OP_MAX);
        switch (c) {
        case 'c': dir = optarg; break;
        case 'p': list = 1; break;
        case 'd': ops[op_count++] = (struct queue_op){ OP_DELETE, optarg }; break;
        case 'h': ops[op_count++] = (struct queue_op){ OP_HOLD, optarg }; break;
        case 'H': ops[op_count++] = (struct queue_op){ OP_RELEASE, optarg }; break;
        case 'r': ops[op_count++] = (struct queue_op){ OP_REQUEUE, optarg }; break;
        case 'f': flush = 1; break;
        default: queue_usage();
        }
    }
    if (optind != argc)
        queue_usage();
    struct config *cfg = config_load_dir_flags(dir, CONFIG_QUIET_UNUSED, NULL);
    if (cfg == NULL)
        log_fatal("%s/main.cf has errors; run \"postino check\"", dir);
    const char *queue_dir = config_get_str(cfg, "queue_directory");
    if (chdir(queue_dir) != 0)
        log_fatal("chdir %s: %s", queue_dir, strerror(errno));
    if (op_count == 0 && !flush) {
        config_free(cfg);
        return queue_list();
    }
    queue_check_user(cfg);
    queue_open_log(cfg);
    int errors = 0;
    long wake = 0;
    static const enum queue_op_kind order[] = { OP_DELETE, OP_HOLD,
                                                OP_RELEASE, OP_REQUEUE };
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
        long done = 0;
        int ran = 0;
        for (size_t i = 0; i < op_count; i++) {
            if (ops[i].kind != order[k])
                continue;
            ran = 1;
            errors += queue_run_op(&ops[i], &done);
        }
        if (ran) {
            log_set_destinations(LOG_TO_TTY);
            log_info("%s: %ld message%s", queue_op_rules[order[k]].verb, done,
                     done == 1 ? "" : "s");
            queue_open_log(cfg);
        }
        if (order[k] == OP_RELEASE || order[k] == OP_REQUEUE)
            wake += done;
    }
    if (flush)
        queue_wake_qmgr("FDI");
    else if (wake > 0)
        queue_wake_qmgr("I");
    if (list)
        errors += queue_list();
    config_free(cfg);
    return errors == 0 ? 0 : 1;
}
