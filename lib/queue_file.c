/*
 * queue_file - writing, reading and marking queue files.  See queue_file.h
 * and docs/queue-format.md.
 */
#include "queue_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "safe_file.h"

#define QUEUE_WRITE_CHUNK (64 * 1024)
#define QUEUE_READ_CHUNK (64 * 1024)
#define QUEUE_SIZE_FORMAT "%15lld %15lld %15ld"
#define QUEUE_SIZE_LEN 47
#define QUEUE_PATH_MAX 4096

/* Where a file is in its record order; writer and reader share it. */
enum queue_stage {
    STAGE_START,      /* expecting V */
    STAGE_SIZE,       /* expecting S */
    STAGE_ENVELOPE,   /* T A F O N R D, then M */
    STAGE_CONTENT,    /* B, then X */
    STAGE_EXTRACTED,  /* A O N R D, then E */
    STAGE_END,        /* nothing more */
};

/* The stage after a record of this type in this stage, or -1 when the
 * record is out of order or unknown. */
static int queue_next_stage(int stage, int type)
{
    switch (stage) {
    case STAGE_START:
        return type == QUEUE_REC_VERSION ? STAGE_SIZE : -1;
    case STAGE_SIZE:
        return type == QUEUE_REC_SIZE ? STAGE_ENVELOPE : -1;
    case STAGE_ENVELOPE:
        if (type == QUEUE_REC_CONTENT)
            return STAGE_CONTENT;
        return strchr("TAFONRD", type) && type != 0 ? STAGE_ENVELOPE : -1;
    case STAGE_CONTENT:
        if (type == QUEUE_REC_END_CONTENT)
            return STAGE_EXTRACTED;
        return type == QUEUE_REC_BLOCK ? STAGE_CONTENT : -1;
    case STAGE_EXTRACTED:
        if (type == QUEUE_REC_END)
            return STAGE_END;
        return strchr("AONRD", type) && type != 0 ? STAGE_EXTRACTED : -1;
    default:
        return -1;
    }
}

/* --- Writing ------------------------------------------------------------ */

static int writer_flush(struct queue_writer *w)
{
    if (w->pending.len == 0)
        return 0;
    if (safe_file_write_all(w->fd, w->pending.data, w->pending.len) != 0)
        return -1;
    w->written += (off_t)w->pending.len;
    buf_reset(&w->pending);
    return 0;
}

int queue_record_append(struct buf *out, int type, const void *data,
                        size_t len)
{
    if (len > QUEUE_RECORD_MAX) {
        errno = EMSGSIZE;
        return -1;
    }
    unsigned char header[QUEUE_RECORD_HEADER] = {
        (unsigned char)type, (unsigned char)(len >> 24),
        (unsigned char)(len >> 16), (unsigned char)(len >> 8),
        (unsigned char)len,
    };
    size_t before = out->len;
    if (buf_append(out, header, sizeof(header)) != 0 ||
        buf_append(out, data, len) != 0) {
        int saved = errno;
        buf_truncate(out, before);
        errno = saved;
        return -1;
    }
    return 0;
}

static int writer_put(struct queue_writer *w, int type, const void *data,
                      size_t len)
{
    if (queue_record_append(&w->pending, type, data, len) != 0)
        return -1;
    if (w->pending.len >= QUEUE_WRITE_CHUNK)
        return writer_flush(w);
    return 0;
}

/* Offset the next record will have. */
static off_t writer_offset(const struct queue_writer *w)
{
    return w->written + (off_t)w->pending.len;
}

static void writer_release(struct queue_writer *w)
{
    buf_free(&w->temp_path);
    buf_free(&w->dir);
    buf_free(&w->pending);
    w->fd = -1;
}

/* Microseconds of the open time as 5 hex digits, then the inode: unique
 * among the files that exist at once, without a lock.  attempt moves the
 * time part after a name clash. */
static void queue_make_id(char id[QUEUE_ID_SIZE], const struct timeval *when,
                          ino_t inode, unsigned attempt)
{
    unsigned long usec = ((unsigned long)when->tv_usec + attempt) & 0xFFFFF;
    snprintf(id, QUEUE_ID_SIZE, "%05lX%llX", usec,
             (unsigned long long)inode);
}

/* 1 when an unnamed file can be linked later: through /proc. */
static int writer_can_link_anonymous(void)
{
#ifdef O_TMPFILE
    return access("/proc/self/fd", X_OK) == 0;
#else
    return 0;
#endif
}

/* An unnamed file in dir (or in the held directory dir_fd), when the
 * kernel, the file system and /proc (for the link at commit) allow it;
 * -1 otherwise. */
static int writer_open_anonymous(const char *dir, int dir_fd, int can_link)
{
#ifdef O_TMPFILE
    if (!can_link) {
        errno = EOPNOTSUPP; /* no way to link it later: use a name */
        return -1;
    }
    if (dir_fd >= 0)
        return openat(dir_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    return open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
#else
    (void)dir;
    (void)dir_fd;
    (void)can_link;
    errno = EOPNOTSUPP;
    return -1;
#endif
}

static int writer_create(struct queue_writer *w, const char *dir,
                         int can_link)
{
    w->fd = writer_open_anonymous(dir, w->dir_fd, can_link);
    if (w->fd >= 0) {
        w->anonymous = 1;
        return 0;
    }
    /* Errors that a named file would meet as well are reported as such. */
    if (errno == ENOSPC || errno == EDQUOT || errno == EIO ||
        errno == EACCES || errno == ENOENT || errno == EROFS)
        return -1;
    w->fd = safe_file_create_temp(dir, "tmp.", 0600, &w->temp_path);
    return w->fd >= 0 ? 0 : -1;
}

int queue_dir_open(struct queue_dir *d, const char *name, struct buf *error)
{
    buf_init(&d->name, QUEUE_PATH_MAX);
    d->anonymous_ok = writer_can_link_anonymous();
    d->fd = -1;
    d->sync_group = NULL;
    if (buf_set_str(&d->name, name) != 0) {
        buf_printf(error, "queue directory name too long");
        buf_free(&d->name);
        errno = ENAMETOOLONG;
        return -1;
    }
    d->fd = open(name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d->fd < 0) {
        int saved = errno;
        buf_printf(error, "open queue directory %s: %s", name,
                   strerror(errno));
        buf_free(&d->name);
        errno = saved;
        return -1;
    }
    return 0;
}

void queue_dir_close(struct queue_dir *d)
{
    if (d->fd >= 0)
        (void)close(d->fd); /* read-only directory handle */
    d->fd = -1;
    buf_free(&d->name);
}

static int writer_open(struct queue_writer *w, const char *dir, int dir_fd,
                       int can_link, struct buf *error)
{
    memset(w, 0, sizeof(*w));
    w->fd = -1;
    w->dir_fd = dir_fd;
    buf_init(&w->temp_path, QUEUE_PATH_MAX);
    buf_init(&w->dir, QUEUE_PATH_MAX);
    buf_init(&w->pending, QUEUE_WRITE_CHUNK + QUEUE_RECORD_MAX +
                              QUEUE_RECORD_HEADER);
    if (buf_set_str(&w->dir, dir) != 0) {
        buf_printf(error, "queue directory name too long");
        writer_release(w);
        return -1;
    }
    gettimeofday(&w->opened, NULL);
    struct stat st;
    if (writer_create(w, dir, can_link) != 0 || fstat(w->fd, &st) != 0) {
        int saved = errno;
        buf_printf(error, "create queue file in %s: %s", dir,
                   strerror(errno));
        queue_writer_abort(w);
        errno = saved;
        return -1;
    }
    w->inode = st.st_ino;
    queue_make_id(w->id, &w->opened, w->inode, 0);
    char size[QUEUE_SIZE_LEN + 1];
    snprintf(size, sizeof(size), QUEUE_SIZE_FORMAT, 0LL, 0LL, 0L);
    w->stage = STAGE_START;
    if (writer_put(w, QUEUE_REC_VERSION, QUEUE_FORMAT_VERSION, 1) != 0)
        goto fail;
    w->size_offset = writer_offset(w) + QUEUE_RECORD_HEADER;
    if (writer_put(w, QUEUE_REC_SIZE, size, QUEUE_SIZE_LEN) != 0)
        goto fail;
    w->stage = STAGE_ENVELOPE;
    return 0;
fail:
    buf_printf(error, "write queue file: %s", strerror(errno));
    queue_writer_abort(w);
    return -1;
}

int queue_writer_open(struct queue_writer *w, const char *dir,
                      struct buf *error)
{
    return writer_open(w, dir, -1, writer_can_link_anonymous(), error);
}

int queue_writer_open_in(struct queue_writer *w, const struct queue_dir *d,
                         struct buf *error)
{
    if (writer_open(w, buf_cstr(&d->name), d->fd, d->anonymous_ok, error) != 0)
        return -1;
    w->sync_group = d->sync_group;
    return 0;
}

const char *queue_writer_id(const struct queue_writer *w)
{
    return w->id;
}

int queue_writer_add(struct queue_writer *w, int type, const void *data,
                     size_t len)
{
    if (type == QUEUE_REC_VERSION || type == QUEUE_REC_SIZE ||
        type == QUEUE_REC_END || type == QUEUE_REC_DONE) {
        errno = EINVAL;
        return -1;
    }
    int next = queue_next_stage(w->stage, type);
    if (next < 0) {
        errno = EINVAL;
        return -1;
    }
    if (type == QUEUE_REC_CONTENT)
        w->content_offset = writer_offset(w);
    if (type == QUEUE_REC_END_CONTENT)
        w->content_end = writer_offset(w);
    if (type == QUEUE_REC_RCPT)
        w->recipients++;
    if (writer_put(w, type, data, len) != 0)
        return -1;
    w->stage = next;
    return 0;
}

int queue_writer_add_content(struct queue_writer *w, const void *data,
                             size_t len)
{
    if (w->stage == STAGE_ENVELOPE &&
        queue_writer_add(w, QUEUE_REC_CONTENT, "", 0) != 0)
        return -1;
    const char *p = data;
    while (len > 0) {
        size_t n = len < QUEUE_BLOCK_MAX ? len : QUEUE_BLOCK_MAX;
        if (queue_writer_add(w, QUEUE_REC_BLOCK, p, n) != 0)
            return -1;
        p += n;
        len -= n;
    }
    return 0;
}

static int writer_finish_records(struct queue_writer *w)
{
    if (w->stage == STAGE_ENVELOPE &&
        queue_writer_add(w, QUEUE_REC_CONTENT, "", 0) != 0)
        return -1;
    if (w->stage == STAGE_CONTENT &&
        queue_writer_add(w, QUEUE_REC_END_CONTENT, "", 0) != 0)
        return -1;
    if (w->stage != STAGE_EXTRACTED) {
        errno = EINVAL;
        return -1;
    }
    if (writer_put(w, QUEUE_REC_END, "", 0) != 0)
        return -1;
    w->stage = STAGE_END;
    char size[QUEUE_SIZE_LEN + 1];
    long long content_size = (long long)(w->content_end - w->content_offset);
    snprintf(size, sizeof(size), QUEUE_SIZE_FORMAT,
             (long long)w->content_offset, content_size, w->recipients);
    /* A small file is still all in memory: the size goes into it before
     * the one write, else into the file after it. */
    if (w->written == 0) {
        memcpy(w->pending.data + w->size_offset, size, QUEUE_SIZE_LEN);
        return writer_flush(w);
    }
    if (writer_flush(w) != 0)
        return -1;
    if (pwrite(w->fd, size, QUEUE_SIZE_LEN, w->size_offset) != QUEUE_SIZE_LEN)
        return -1;
    return 0;
}

/* One link attempt of the file to final (relative to dir_fd, or to the
 * working directory when dir_fd is AT_FDCWD). */
static int writer_link_once(struct queue_writer *w, int dir_fd,
                            const char *final)
{
    if (!w->anonymous)
        return linkat(AT_FDCWD, buf_cstr(&w->temp_path), dir_fd, final, 0);
    return safe_file_link_unnamed(w->fd, dir_fd, final);
}

/* Links the file to its queue ID in dir (through dir_fd when that is not
 * AT_FDCWD), never over another file. */
static int writer_link(struct queue_writer *w, const char *dir, int dir_fd,
                       char id[QUEUE_ID_SIZE])
{
    struct buf final;
    buf_init(&final, QUEUE_PATH_MAX);
    for (unsigned attempt = 0; attempt < 16; attempt++) {
        queue_make_id(id, &w->opened, w->inode, attempt);
        buf_reset(&final);
        int rc = dir_fd == AT_FDCWD ? buf_printf(&final, "%s/%s", dir, id)
                                    : buf_set_str(&final, id);
        if (rc != 0)
            break;
        if (writer_link_once(w, dir_fd, buf_cstr(&final)) == 0) {
            buf_free(&final);
            return 0;
        }
        if (errno != EEXIST)
            break;
    }
    int saved = errno;
    buf_free(&final);
    errno = saved;
    return -1;
}

/* fsync of the directory that now holds the name, unless another writer
 * of the held directory did one since the name was made (ticket, 0 for
 * any other directory: then a plain fsync). */
static int writer_sync_dir(const struct queue_writer *w, const char *dir,
                           int dir_fd, unsigned long long ticket)
{
    if (dir_fd != AT_FDCWD)
        return dir_sync_fsync(w->sync_group, ticket, dir_fd);
    return safe_file_fsync_dir(dir);
}

int queue_writer_commit(struct queue_writer *w, char id[QUEUE_ID_SIZE],
                        struct buf *error)
{
    return queue_writer_commit_in(w, NULL, id, error);
}

int queue_writer_commit_in(struct queue_writer *w, const char *dir,
                           char id[QUEUE_ID_SIZE], struct buf *error)
{
    id[0] = '\0';
    struct buf target;
    buf_init(&target, QUEUE_PATH_MAX);
    if (buf_set_str(&target, dir != NULL ? dir : buf_cstr(&w->dir)) != 0) {
        buf_printf(error, "queue directory name too long");
        queue_writer_abort(w);
        buf_free(&target);
        errno = ENAMETOOLONG;
        return -1;
    }
    /* The link comes before the fsync: every record is written by then,
     * so anybody who sees the name sees the whole file, and one fsync then
     * makes the data, the inode and the new name durable together, where
     * a file system journals them as one (ext4, xfs), instead of one
     * journal commit for the data and a second for the name.  The
     * directory fsync below makes the name durable everywhere else (or
     * another writer's, begun after the link: dir_sync.h).  A
     * crash before both return can leave the file under its ID without a
     * 250 having been sent: the client retries, and the message may come
     * twice, never not at all. */
    int dir_fd = w->dir_fd >= 0 && (dir == NULL ||
                                     strcmp(dir, buf_cstr(&w->dir)) == 0)
        ? w->dir_fd : AT_FDCWD;
    if (writer_finish_records(w) != 0 ||
        writer_link(w, buf_cstr(&target), dir_fd, id) != 0) {
        int saved = errno;
        buf_printf(error, "write queue file %s: %s", w->id, strerror(errno));
        queue_writer_abort(w);
        buf_free(&target);
        id[0] = '\0';
        errno = saved;
        return -1;
    }
    /* From the link on the message exists under its ID; what is left is
     * to make it durable and remove the temporary name.  If that fails the
     * ID goes again: the client is told "not queued", so a file that
     * stayed would be delivered twice. */
    unsigned long long ticket =
        dir_fd == w->dir_fd ? dir_sync_ticket(w->sync_group) : 0;
    int rc = 0;
    if (fsync(w->fd) != 0 ||
        (!w->anonymous && unlink(buf_cstr(&w->temp_path)) != 0) ||
        writer_sync_dir(w, buf_cstr(&target), dir_fd, ticket) != 0) {
        buf_printf(error, "commit queue file %s: %s", id, strerror(errno));
        rc = -1;
    }
    int saved = errno;
    if (close(w->fd) != 0 && rc == 0) {
        buf_printf(error, "close queue file %s: %s", id, strerror(errno));
        saved = errno;
        rc = -1;
    }
    if (rc != 0) {
        buf_reset(&w->pending);
        if (buf_printf(&w->pending, "%s/%s", buf_cstr(&target), id) == 0)
            (void)unlink(buf_cstr(&w->pending)); /* best effort */
        id[0] = '\0';
    }
    buf_free(&target);
    writer_release(w);
    errno = saved;
    return rc;
}

void queue_writer_abort(struct queue_writer *w)
{
    if (w->fd >= 0) {
        (void)close(w->fd); /* the file is dropped: nothing to keep */
        if (!w->anonymous && w->temp_path.len > 0)
            (void)unlink(buf_cstr(&w->temp_path));
    }
    writer_release(w);
}

int queue_remove_stale_temps(const char *dir, long max_age)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    time_t now = time(NULL);
    int removed = 0;
    struct buf path;
    buf_init(&path, QUEUE_PATH_MAX);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "tmp.", 4) != 0)
            continue;
        buf_reset(&path);
        struct stat st;
        if (buf_printf(&path, "%s/%s", dir, e->d_name) != 0 ||
            lstat(buf_cstr(&path), &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (now - st.st_mtime > max_age && unlink(buf_cstr(&path)) == 0)
            removed++;
    }
    buf_free(&path);
    (void)closedir(d); /* read-only directory handle */
    return removed;
}

/* --- Reading ------------------------------------------------------------ */

void queue_record_init(struct queue_record *rec)
{
    rec->type = 0;
    rec->offset = 0;
    buf_init(&rec->data, QUEUE_RECORD_MAX);
}

void queue_record_free(struct queue_record *rec)
{
    buf_free(&rec->data);
}

void queue_reader_attach(struct queue_reader *r, int fd)
{
    memset(r, 0, sizeof(*r));
    r->fd = fd;
    buf_init(&r->in, QUEUE_READ_CHUNK + QUEUE_RECORD_MAX +
                         QUEUE_RECORD_HEADER);
    r->stage = STAGE_START;
}

int queue_reader_open(struct queue_reader *r, const char *path,
                      struct buf *error)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        buf_printf(error, "open %s: %s", path, strerror(errno));
        return -1;
    }
    queue_reader_attach(r, fd);
    r->owns_fd = 1;
    return 0;
}

void queue_reader_close(struct queue_reader *r)
{
    if (r->owns_fd && r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    buf_free(&r->in);
}

/* Makes at least need bytes available from in_pos; 1, 0 at end of file
 * with fewer, -1 on error. */
static int reader_fill(struct queue_reader *r, size_t need)
{
    while (r->in.len - r->in_pos < need) {
        if (r->in_pos > 0) {
            r->in_offset += (off_t)r->in_pos;
            buf_consume(&r->in, r->in_pos);
            r->in_pos = 0;
        }
        size_t want = need - r->in.len;
        if (want < QUEUE_READ_CHUNK)
            want = QUEUE_READ_CHUNK;
        if (buf_reserve(&r->in, want) != 0)
            return -1;
        ssize_t n = read(r->fd, r->in.data + r->in.len, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        r->in.len += (size_t)n;
        r->in.data[r->in.len] = '\0';
    }
    return 1;
}

static int reader_corrupt(struct buf *error, off_t offset, const char *why)
{
    buf_printf(error, "corrupt queue file at offset %lld: %s",
               (long long)offset, why);
    return -1;
}

int queue_reader_next(struct queue_reader *r, struct queue_record *rec,
                      struct buf *error)
{
    if (r->done)
        return 0;
    off_t offset = r->in_offset + (off_t)r->in_pos;
    int got = reader_fill(r, QUEUE_RECORD_HEADER);
    if (got < 0) {
        buf_printf(error, "read queue file: %s", strerror(errno));
        return -1;
    }
    if (got == 0)
        return reader_corrupt(error, offset,
                              r->in.len == r->in_pos
                                  ? "file ends before its end record"
                                  : "file ends inside a record header");
    const unsigned char *h = (const unsigned char *)r->in.data + r->in_pos;
    int type = h[0];
    size_t len = ((size_t)h[1] << 24) | ((size_t)h[2] << 16) |
                 ((size_t)h[3] << 8) | (size_t)h[4];
    int next = queue_next_stage(r->stage, type);
    if (next < 0) {
        char why[64];
        snprintf(why, sizeof(why), "record type 0x%02x out of order", type);
        return reader_corrupt(error, offset, why);
    }
    if (len > QUEUE_RECORD_MAX)
        return reader_corrupt(error, offset, "record too long");
    got = reader_fill(r, QUEUE_RECORD_HEADER + len);
    if (got <= 0)
        return got < 0 ? -1 : reader_corrupt(error, offset,
                                             "file ends inside a record");
    rec->type = type;
    rec->offset = offset;
    if (buf_set(&rec->data, r->in.data + r->in_pos + QUEUE_RECORD_HEADER,
                len) != 0) {
        buf_printf(error, "read queue file: %s", strerror(errno));
        return -1;
    }
    r->in_pos += QUEUE_RECORD_HEADER + len;
    r->stage = next;
    if (type == QUEUE_REC_VERSION &&
        strcmp(buf_cstr(&rec->data), QUEUE_FORMAT_VERSION) != 0)
        return reader_corrupt(error, offset, "unknown format version");
    if (next == STAGE_END) {
        r->done = 1;
        if (reader_fill(r, 1) != 0)
            return reader_corrupt(error, offset + QUEUE_RECORD_HEADER,
                                  "data after the end record");
        return 0;
    }
    return 1;
}

/* --- Marking and names --------------------------------------------------- */

int queue_file_mark_done(int fd, off_t record_offset)
{
    char type;
    if (pread(fd, &type, 1, record_offset) != 1)
        return -1;
    if (type == QUEUE_REC_DONE)
        return 0;
    if (type != QUEUE_REC_RCPT) {
        errno = EINVAL;
        return -1;
    }
    type = QUEUE_REC_DONE;
    if (pwrite(fd, &type, 1, record_offset) != 1 || fdatasync(fd) != 0)
        return -1;
    return 0;
}

int queue_id_valid(const char *name)
{
    size_t n = 0;
    for (; name[n] != '\0'; n++)
        if (!((name[n] >= '0' && name[n] <= '9') ||
              (name[n] >= 'A' && name[n] <= 'F')))
            return 0;
    return n >= 6 && n < QUEUE_ID_SIZE;
}
