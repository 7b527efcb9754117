/*
 * queue_listing - the mailq listing (interface and format:
 * queue_listing.h).
 */
#include "queue_listing.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "queue_file.h"
#include "recipient_log.h"

#define LISTING_RECIPIENT_INDENT 41
#define LISTING_NAMES_MAX 100000
#define LISTING_REASON_MAX 200

struct listing_queue {
    const char *name;
    char mark;
};

static const struct listing_queue listing_queues[] = {
    { "maildrop", ' ' }, { "incoming", ' ' }, { "active", '*' },
    { "deferred", ' ' }, { "hold", '!' },
};

struct listing_totals {
    long long bytes;
    long requests;
};

struct listing_entry {
    time_t arrival;
    long long size;
    struct buf sender;
    struct buf recipients; /* lines, each ended by LF */
    struct recipient_log defers;
    struct buf last_reason;
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
    while ((e = readdir(d)) != NULL && *count < LISTING_NAMES_MAX) {
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

/* One recipient line, after the reason of its last deferral when that
 * differs from the line before. */
static void add_recipient(struct listing_entry *e, struct buf *address)
{
    const struct recipient_log_entry *last =
        recipient_log_last(&e->defers, buf_cstr(address));
    if (last != NULL && last->text != NULL &&
        strcmp(last->text, buf_cstr(&e->last_reason)) != 0) {
        buf_set_str(&e->last_reason, last->text);
        struct buf reason;
        buf_init(&reason, LISTING_REASON_MAX);
        if (buf_set_str(&reason, last->text) != 0)
            buf_set(&reason, last->text, LISTING_REASON_MAX);
        sanitize(&reason);
        buf_printf(&e->recipients, "(%s)\n", buf_cstr(&reason));
        buf_free(&reason);
    }
    sanitize(address);
    buf_printf(&e->recipients, "%*s%s\n", LISTING_RECIPIENT_INDENT, "",
               buf_cstr(address));
}

/* Reads one queue file; 0, or -1 to skip it. */
static int read_entry(const char *path, struct listing_entry *e)
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
    struct buf error;
    buf_init(&error, 512);
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
            add_recipient(e, &rec.data);
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
    queue_record_free(&rec);
    queue_reader_close(&r);
    (void)close(fd);
    return rc < 0 ? -1 : 0;
}

static void list_queue(struct stream *out, const struct listing_queue *q,
                       struct listing_totals *totals)
{
    size_t count;
    char **names = read_names(q->name, &count);
    struct buf path;
    buf_init(&path, 4096);
    for (size_t i = 0; i < count; i++) {
        struct listing_entry e;
        memset(&e, 0, sizeof(e));
        buf_init(&e.sender, QUEUE_RECORD_MAX);
        buf_init(&e.recipients, 64L * 1024 * 1024);
        buf_init(&e.last_reason, RECIPIENT_LOG_ENTRY_MAX);
        struct buf error;
        buf_init(&error, 512);
        if (recipient_log_read(&e.defers, "defer", names[i], &error) != 0)
            log_debug("%s", buf_cstr(&error));
        buf_free(&error);
        buf_reset(&path);
        if (buf_printf(&path, "%s/%s", q->name, names[i]) == 0 &&
            read_entry(buf_cstr(&path), &e) == 0) {
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
        buf_free(&e.sender);
        buf_free(&e.recipients);
        buf_free(&e.last_reason);
        recipient_log_free(&e.defers);
    }
    buf_free(&path);
    free_names(names, count);
}

long queue_listing_write(struct stream *out)
{
    struct listing_totals totals = { 0, 0 };
    for (size_t i = 0; i < sizeof(listing_queues) / sizeof(listing_queues[0]);
         i++)
        list_queue(out, &listing_queues[i], &totals);
    if (totals.requests == 0)
        stream_puts(out, "Mail queue is empty\n");
    else
        stream_printf(out, "-- %lld Kbytes in %ld Request%s.\n",
                      (totals.bytes + 1023) / 1024, totals.requests,
                      totals.requests == 1 ? "" : "s");
    return totals.requests;
}
