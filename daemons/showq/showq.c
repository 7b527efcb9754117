/*
 * showq - the queue listing behind mailq (sendmail -bp).  A public unix
 * service (public/showq, reached through postdrop -p, the set-group-ID
 * program: public/ is open to setgid_group only).  For each connection it
 * writes the listing in Postfix's mailq format and closes:
 *
 *   -Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------
 *   4F2A9C1B3D*    1234 Tue Dec  1 20:40:11  sender@example.com
 *                                            rcpt@example.org
 *
 *   -- 2 Kbytes in 1 Request.
 *
 * or "Mail queue is empty".  Queues in this order: maildrop, incoming,
 * active (marked "*"), deferred, hold (marked "!").  The size is the
 * message content; the null sender shows as MAILER-DAEMON; recipients
 * already done are left out; in the deferred queue each recipient's last
 * deferral reason from defer/ID (qmgr's log) comes first as "(reason)",
 * once for a run of recipients with the same reason.  A file that cannot be read (gone since the
 * directory was read, or corrupt) is skipped.  showq runs as mail_owner
 * and only reads.
 */
#include <dirent.h>
#include <stdio.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "queue_file.h"
#include "recipient_log.h"
#include "server.h"
#include "stream.h"

#define SHOWQ_TIMEOUT_MS (60 * 1000)
#define SHOWQ_RECIPIENT_INDENT 41
#define SHOWQ_NAMES_MAX 100000

struct showq_queue {
    const char *name;
    char mark;
};

static const struct showq_queue showq_queues[] = {
    { "maildrop", ' ' }, { "incoming", ' ' }, { "active", '*' },
    { "deferred", ' ' }, { "hold", '!' },
};

struct showq_totals {
    long long bytes;
    long requests;
};

struct showq_entry {
    time_t arrival;
    long long size;
    struct buf sender;
    struct buf recipients; /* lines, each ended by LF */
};

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The queue IDs in dir, sorted; NULL count 0 when it cannot be read. */
static char **read_names(const char *dir, size_t *count)
{
    *count = 0;
    DIR *d = opendir(dir);
    if (d == NULL) {
        if (errno != ENOENT)
            log_warn("open %s: %s", dir, strerror(errno));
        return NULL;
    }
    char **names = NULL;
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && *count < SHOWQ_NAMES_MAX) {
        if (!queue_id_valid(e->d_name))
            continue;
        if (*count == cap) {
            cap = cap ? cap * 2 : 64;
            char **grown = realloc(names, cap * sizeof(*names));
            if (grown == NULL)
                break;
            names = grown;
        }
        names[*count] = strdup(e->d_name);
        if (names[*count] == NULL)
            break;
        (*count)++;
    }
    (void)closedir(d);
    if (names != NULL)
        qsort(names, *count, sizeof(*names), compare_names);
    return names;
}

static void free_names(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

/* A "SECONDS.MICROSECONDS" time record; 0 when it is not one. */
static time_t parse_time(const char *text)
{
    char *end;
    errno = 0;
    long long sec = strtoll(text, &end, 10);
    if (errno != 0 || end == text || sec < 0)
        return 0;
    return (time_t)sec;
}

/* Bytes that are not printable ASCII or UTF-8 shown as '?', so that a
 * sender cannot put escape sequences on an admin's terminal. */
static void sanitize(struct buf *b)
{
    for (size_t i = 0; i < b->len; i++)
        if ((unsigned char)b->data[i] < 0x20 ||
            (unsigned char)b->data[i] == 0x7f)
            b->data[i] = '?';
}

/* The reason from defer/ID that qmgr last logged for a recipient, shown
 * as Postfix does: "(reason)" on a line of its own before the recipients
 * it holds for, once for a run of recipients with the same reason. */
static void add_reason(struct showq_entry *e, const struct recipient_log *log,
                       const char *recipient, struct buf *last)
{
    const struct recipient_log_entry *entry =
        recipient_log_last(log, recipient);
    if (entry == NULL || entry->text == NULL || entry->text[0] == '\0' ||
        strcmp(entry->text, buf_cstr(last)) == 0)
        return;
    buf_set_str(last, entry->text);
    struct buf shown;
    buf_init(&shown, RECIPIENT_LOG_ENTRY_MAX);
    buf_set_str(&shown, entry->text);
    sanitize(&shown);
    buf_printf(&e->recipients, "(%s)\n", buf_cstr(&shown));
    buf_free(&shown);
}

/* Reads one queue file; 0, or -1 to skip it.  log: the message's defer
 * log (deferred queue), or NULL. */
static int read_entry(const char *path, struct showq_entry *e,
                      const struct recipient_log *log)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        (void)close(fd);
        return -1;
    }
    e->arrival = st.st_mtime;
    struct queue_reader r;
    queue_reader_attach(&r, fd);
    struct queue_record rec;
    queue_record_init(&rec);
    struct buf error, last_reason;
    buf_init(&error, 512);
    buf_init(&last_reason, RECIPIENT_LOG_ENTRY_MAX);
    int rc;
    while ((rc = queue_reader_next(&r, &rec, &error)) == 1) {
        switch (rec.type) {
        case QUEUE_REC_TIME:
            if (parse_time(buf_cstr(&rec.data)) > 0)
                e->arrival = parse_time(buf_cstr(&rec.data));
            break;
        case QUEUE_REC_SENDER:
            buf_set(&e->sender, rec.data.data, rec.data.len);
            break;
        case QUEUE_REC_RCPT:
            if (log != NULL)
                add_reason(e, log, buf_cstr(&rec.data), &last_reason);
            sanitize(&rec.data);
            buf_printf(&e->recipients, "%*s%s\n", SHOWQ_RECIPIENT_INDENT, "",
                       buf_cstr(&rec.data));
            break;
        case QUEUE_REC_BLOCK:
            e->size += (long long)rec.data.len;
            break;
        default:
            break;
        }
    }
    if (rc < 0)
        log_debug("%s: %s", path, buf_cstr(&error));
    buf_free(&error);
    buf_free(&last_reason);
    queue_record_free(&rec);
    queue_reader_close(&r);
    (void)close(fd);
    return rc < 0 ? -1 : 0;
}

static void list_queue(struct stream *out, const struct showq_queue *q,
                       struct showq_totals *totals)
{
    size_t count;
    char **names = read_names(q->name, &count);
    struct buf path;
    buf_init(&path, 4096);
    for (size_t i = 0; i < count; i++) {
        struct showq_entry e;
        memset(&e, 0, sizeof(e));
        buf_init(&e.sender, QUEUE_RECORD_MAX);
        buf_init(&e.recipients, 64L * 1024 * 1024);
        buf_reset(&path);
        struct recipient_log log;
        struct buf error;
        buf_init(&error, 4096);
        int have_log = strcmp(q->name, "deferred") == 0 &&
                       recipient_log_read(&log, "defer", names[i],
                                          &error) == 0;
        buf_free(&error);
        if (buf_printf(&path, "%s/%s", q->name, names[i]) == 0 &&
            read_entry(buf_cstr(&path), &e, have_log ? &log : NULL) == 0) {
            if (totals->requests == 0)
                stream_printf(out, "%-11s %7s %-20s %s\n", "-Queue ID-",
                              "--Size--", "----Arrival Time----",
                              "-Sender/Recipient-------");
            char id[QUEUE_ID_SIZE + 1];
            snprintf(id, sizeof(id), "%s%c", names[i], q->mark);
            struct tm tm;
            char when[32] = "";
            if (localtime_r(&e.arrival, &tm) != NULL)
                strftime(when, sizeof(when), "%a %b %e %H:%M:%S", &tm);
            sanitize(&e.sender);
            stream_printf(out, "%-11s %7lld %-20.20s %s\n", id, e.size, when,
                          e.sender.len ? buf_cstr(&e.sender)
                                       : "MAILER-DAEMON");
            stream_printf(out, "%s\n", buf_cstr(&e.recipients));
            totals->bytes += e.size;
            totals->requests++;
        }
        if (have_log)
            recipient_log_free(&log);
        buf_free(&e.sender);
        buf_free(&e.recipients);
    }
    buf_free(&path);
    free_names(names, count);
}

static void showq_service(struct server *srv, int fd)
{
    (void)srv;
    struct stream out;
    stream_init(&out, fd, SHOWQ_TIMEOUT_MS);
    struct showq_totals totals = { 0, 0 };
    for (size_t i = 0; i < sizeof(showq_queues) / sizeof(showq_queues[0]);
         i++)
        list_queue(&out, &showq_queues[i], &totals);
    if (totals.requests == 0)
        stream_puts(&out, "Mail queue is empty\n");
    else
        stream_printf(&out, "-- %lld Kbytes in %ld Request%s.\n",
                      (totals.bytes + 1023) / 1024, totals.requests,
                      totals.requests == 1 ? "" : "s");
    if (stream_flush(&out) != STREAM_OK)
        log_warn("write queue listing: the client went away");
    stream_free(&out);
}

int main(int argc, char **argv)
{
    static const struct server_spec spec = {
        .mode = SERVER_SINGLE,
        .service = showq_service,
    };
    return server_main(argc, argv, &spec);
}
