/*
 * recipient_log - append and read the defer, bounce and trace logs of a
 * message (interface and usage: recipient_log.h; the format:
 * docs/queue-format.md, "Recipient logs").
 */
#include "recipient_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "record.h"

static int recipient_log_path(struct buf *path, const char *log_dir,
                              const char *queue_id)
{
    buf_reset(path);
    return buf_printf(path, "%s/%s", log_dir, queue_id);
}

static int recipient_log_add(struct record *r, const char *name,
                             const char *value)
{
    if (value == NULL)
        return RECORD_OK;
    return record_add_str(r, name, value);
}

static int recipient_log_encode(const struct recipient_log_entry *e,
                                struct buf *out)
{
    struct record r;
    record_init(&r);
    int rc = record_add_str(&r, "recipient",
                            e->recipient != NULL ? e->recipient : "");
    if (rc == RECORD_OK)
        rc = recipient_log_add(&r, "orcpt", e->orcpt);
    if (rc == RECORD_OK)
        rc = recipient_log_add(&r, "notify", e->notify);
    if (rc == RECORD_OK && e->offset >= 0)
        rc = record_add_long(&r, "offset", e->offset);
    if (rc == RECORD_OK)
        rc = recipient_log_add(&r, "status", e->status);
    if (rc == RECORD_OK)
        rc = recipient_log_add(&r, "action", e->action);
    if (rc == RECORD_OK)
        rc = recipient_log_add(&r, "text", e->text);
    if (rc == RECORD_OK)
        rc = recipient_log_add(&r, "remote_mta", e->remote_mta);
    if (rc == RECORD_OK)
        rc = recipient_log_add(&r, "diagnostic", e->diagnostic);
    if (rc == RECORD_OK)
        rc = record_add_long(&r, "time", e->time);
    if (rc == RECORD_OK)
        rc = record_encode(&r, out);
    record_free(&r);
    return rc == RECORD_OK ? 0 : -1;
}

static int recipient_log_write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

int recipient_log_append(const char *log_dir, const char *queue_id,
                         const struct recipient_log_entry *entry,
                         struct buf *error)
{
    struct buf path, data;
    buf_init(&path, 4096);
    buf_init(&data, RECIPIENT_LOG_ENTRY_MAX);
    int rc = -1;
    if (recipient_log_path(&path, log_dir, queue_id) != 0 ||
        recipient_log_encode(entry, &data) != 0) {
        buf_printf(error, "%s/%s: entry too long", log_dir, queue_id);
        errno = EMSGSIZE;
        goto out;
    }
    int fd = open(buf_cstr(&path),
                  O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
                  0600);
    if (fd < 0) {
        buf_printf(error, "open %s: %s", buf_cstr(&path), strerror(errno));
        goto out;
    }
    if (recipient_log_write_all(fd, data.data, data.len) != 0 ||
        fsync(fd) != 0) {
        int saved = errno;
        buf_printf(error, "write %s: %s", buf_cstr(&path), strerror(saved));
        close(fd);
        errno = saved;
        goto out;
    }
    if (close(fd) != 0) {
        buf_printf(error, "close %s: %s", buf_cstr(&path), strerror(errno));
        goto out;
    }
    rc = 0;
out:
    buf_free(&path);
    buf_free(&data);
    return rc;
}

static char *recipient_log_copy(const struct record *r, const char *name)
{
    const char *value = record_get_str(r, name);
    return value != NULL ? strdup(value) : NULL;
}

static int recipient_log_decode(struct recipient_log_entry *e,
                                const struct record *r)
{
    memset(e, 0, sizeof(*e));
    e->offset = -1;
    if (record_get_str(r, "recipient") == NULL)
        return -1;
    e->recipient = recipient_log_copy(r, "recipient");
    e->orcpt = recipient_log_copy(r, "orcpt");
    e->notify = recipient_log_copy(r, "notify");
    e->status = recipient_log_copy(r, "status");
    e->action = recipient_log_copy(r, "action");
    e->text = recipient_log_copy(r, "text");
    e->remote_mta = recipient_log_copy(r, "remote_mta");
    e->diagnostic = recipient_log_copy(r, "diagnostic");
    if (record_find(r, "offset") != NULL &&
        record_get_long(r, "offset", &e->offset) != 0)
        return -1;
    if (record_find(r, "time") != NULL &&
        record_get_long(r, "time", &e->time) != 0)
        return -1;
    return e->recipient != NULL ? 0 : -1;
}

static void recipient_log_entry_free(struct recipient_log_entry *e)
{
    free(e->recipient);
    free(e->orcpt);
    free(e->notify);
    free(e->status);
    free(e->action);
    free(e->text);
    free(e->remote_mta);
    free(e->diagnostic);
}

static int recipient_log_load(struct buf *data, const char *path,
                              struct buf *error)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        buf_printf(error, "open %s: %s", path, strerror(errno));
        return -1;
    }
    char chunk[8192];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || (n > 0 && buf_append(data, chunk, (size_t)n) != 0)) {
            buf_printf(error, "read %s: %s", path,
                       n < 0 ? strerror(errno) : "log too large");
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
    }
    close(fd);
    return 0;
}

static int recipient_log_push(struct recipient_log *log,
                              const struct record *r)
{
    struct recipient_log_entry *grown =
        realloc(log->entries, (log->count + 1) * sizeof(*grown));
    if (grown == NULL)
        return -1;
    log->entries = grown;
    if (recipient_log_decode(&log->entries[log->count], r) != 0) {
        recipient_log_entry_free(&log->entries[log->count]);
        return -1;
    }
    log->count++;
    return 0;
}

int recipient_log_read(struct recipient_log *log, const char *log_dir,
                       const char *queue_id, struct buf *error)
{
    memset(log, 0, sizeof(*log));
    struct buf path, data;
    buf_init(&path, 4096);
    buf_init(&data, RECIPIENT_LOG_MAX);
    int rc = recipient_log_path(&path, log_dir, queue_id);
    if (rc == 0)
        rc = recipient_log_load(&data, buf_cstr(&path), error);
    struct record r;
    record_init(&r);
    size_t pos = 0;
    while (rc == 0 && pos < data.len) {
        const unsigned char *p = (const unsigned char *)data.data + pos;
        if (data.len - pos < 4) {
            log->truncated = 1;
            break;
        }
        uint32_t length = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
                          ((uint32_t)p[2] << 8) | p[3];
        if (length > RECIPIENT_LOG_ENTRY_MAX) {
            buf_printf(error, "%s: entry too long", buf_cstr(&path));
            rc = -1;
            break;
        }
        if (data.len - pos - 4 < length) {
            log->truncated = 1;
            break;
        }
        if (record_decode(&r, p, 4 + (size_t)length,
                          RECIPIENT_LOG_ENTRY_MAX) != RECORD_OK ||
            recipient_log_push(log, &r) != 0) {
            buf_printf(error, "%s: malformed entry at offset %zu",
                       buf_cstr(&path), pos);
            rc = -1;
            break;
        }
        pos += 4 + (size_t)length;
    }
    record_free(&r);
    buf_free(&path);
    buf_free(&data);
    if (rc != 0)
        recipient_log_free(log);
    return rc;
}

void recipient_log_free(struct recipient_log *log)
{
    for (size_t i = 0; i < log->count; i++)
        recipient_log_entry_free(&log->entries[i]);
    free(log->entries);
    memset(log, 0, sizeof(*log));
}

const struct recipient_log_entry *
recipient_log_last(const struct recipient_log *log, const char *recipient)
{
    for (size_t i = log->count; i > 0; i--)
        if (strcmp(log->entries[i - 1].recipient, recipient) == 0)
            return &log->entries[i - 1];
    return NULL;
}

int recipient_log_has_warning(const struct recipient_log *log)
{
    for (size_t i = 0; i < log->count; i++)
        if (log->entries[i].action != NULL &&
            strcmp(log->entries[i].action, "warned") == 0)
            return 1;
    return 0;
}

int recipient_log_remove(const char *log_dir, const char *queue_id)
{
    struct buf path;
    buf_init(&path, 4096);
    int rc = recipient_log_path(&path, log_dir, queue_id);
    if (rc == 0 && unlink(buf_cstr(&path)) != 0 && errno != ENOENT)
        rc = -1;
    buf_free(&path);
    return rc;
}

int recipient_log_probe(const char *log_dir, const char *queue_id)
{
    struct buf path;
    buf_init(&path, 4096);
    struct stat st;
    int rc = -1;
    if (recipient_log_path(&path, log_dir, queue_id) != 0)
        errno = ENAMETOOLONG;
    else if (stat(buf_cstr(&path), &st) == 0)
        rc = st.st_size > 0 ? 1 : -1;
    else if (errno == ENOENT)
        rc = 0;
    buf_free(&path);
    return rc;
}

int recipient_log_exists(const char *log_dir, const char *queue_id)
{
    struct buf path;
    buf_init(&path, 4096);
    struct stat st;
    int exists = recipient_log_path(&path, log_dir, queue_id) == 0 &&
                 stat(buf_cstr(&path), &st) == 0 && st.st_size > 0;
    buf_free(&path);
    return exists;
}
