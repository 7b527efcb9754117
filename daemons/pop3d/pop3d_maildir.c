/*
 * pop3d_maildir - a Maildir as a POP3 maildrop (see pop3d_maildir.h).
 *
 * Every file is opened relative to descriptors of the Maildir and its
 * subdirectories, without following symbolic links, as the mailbox owner;
 * a name with a '/' never comes from the directory listing, so no path
 * leaves the Maildir.  Delivery agents write into tmp/ and rename into
 * new/, so a message is complete whenever it is seen; one delivered or
 * renamed by another program during the session is simply not in this
 * session's list, and one removed by another program reads as gone.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pop3d_maildir.h"

#define MAILDIR_BLOCK (128 * 1024)
#define MAILDIR_CUR 0
#define MAILDIR_NEW 1

static const char *const maildir_sub_name[2] = { "cur", "new" };

/* ---- the transfer form ---------------------------------------------- */

void maildir_transfer_init(struct maildir_transfer *t, long body_limit)
{
    memset(t, 0, sizeof(*t));
    t->at_line_start = 1;
    t->body_limit = body_limit;
}

static int transfer_put(struct buf *out, const char *p, size_t n)
{
    return out == NULL || n == 0 ? 0 : buf_append(out, p, n);
}

/* A line ended: the blank line ends the header; TOP counts body lines. */
static void transfer_line_end(struct maildir_transfer *t)
{
    int empty = t->line_len == 0 || (t->line_len == 1 && t->last_cr);
    if (!t->in_body) {
        if (empty) {
            t->in_body = 1;
            if (t->body_limit == 0)
                t->done = 1;
        }
    } else if (t->body_limit >= 0 && ++t->body_lines >= t->body_limit) {
        t->done = 1;
    }
    t->at_line_start = 1;
    t->last_cr = 0;
    t->line_len = 0;
}

long long maildir_transfer_chunk(struct maildir_transfer *t, const char *in,
                                 size_t n, struct buf *out)
{
    const char *p = in, *end = in + n;
    long long count = 0;
    while (p < end && !t->done) {
        if (t->at_line_start && *p == '.' && transfer_put(out, ".", 1) != 0)
            return -1;
        t->at_line_start = 0;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t seg = (size_t)((nl ? nl : end) - p);
        if (transfer_put(out, p, seg) != 0)
            return -1;
        count += (long long)seg;
        t->line_len += (long long)seg;
        if (seg > 0)
            t->last_cr = p[seg - 1] == '\r';
        if (nl == NULL)
            break;
        /* A CR already sent before this LF makes a CRLF as it stands. */
        const char *ending = t->last_cr ? "\n" : "\r\n";
        size_t elen = t->last_cr ? 1 : 2;
        if (transfer_put(out, ending, elen) != 0)
            return -1;
        count += (long long)elen;
        transfer_line_end(t);
        p = nl + 1;
    }
    return count;
}

long long maildir_transfer_end(struct maildir_transfer *t, struct buf *out)
{
    if (t->at_line_start || t->done)
        return 0;
    if (transfer_put(out, "\r\n", 2) != 0)
        return -1;
    transfer_line_end(t);
    return 2;
}

/* ---- UIDL ------------------------------------------------------------ */

void maildir_uidl(const char *name, char *out)
{
    size_t n = strcspn(name, ":");
    size_t unique = strcspn(name, ",:");
    int printable = unique > 0 && unique <= MAILDIR_UIDL_MAX;
    for (size_t i = 0; i < unique && printable; i++)
        if ((unsigned char)name[i] < 0x21 || (unsigned char)name[i] > 0x7e)
            printable = 0;
    if (printable) {
        memcpy(out, name, unique);
        out[unique] = '\0';
        return;
    }
    uint64_t h = 14695981039346656037ULL;  /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)name[i];
        h *= 1099511628211ULL;
    }
    static const char hex[] = "0123456789abcdef";
    out[0] = 'x';
    for (int i = 0; i < 16; i++)
        out[1 + i] = hex[(h >> (60 - 4 * i)) & 0xf];
    out[17] = '\0';
}

/* ---- opening and listing -------------------------------------------- */

static int maildir_add(struct maildir *m, const char *name, int sub,
                       const struct stat *st)
{
    if (m->count == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 256;
        struct maildir_msg *msgs = realloc(m->msgs, cap * sizeof(*msgs));
        if (msgs == NULL)
            return -1;
        m->msgs = msgs;
        m->cap = cap;
    }
    struct maildir_msg *msg = &m->msgs[m->count];
    memset(msg, 0, sizeof(*msg));
    msg->name = strdup(name);
    if (msg->name == NULL)
        return -1;
    msg->file_size = (long long)st->st_size;
    msg->size = -1;
    msg->in_new = sub == MAILDIR_NEW;
    maildir_uidl(name, msg->uidl);
    /* ",W=N" is the transfer size some delivery agents put in the name. */
    const char *w = strstr(name, ",W=");
    size_t info = strcspn(name, ":");
    if (w != NULL && (size_t)(w - name) < info) {
        char *endp;
        long long size = strtoll(w + 3, &endp, 10);
        if (endp != w + 3 && size >= 0 && (*endp == ',' || *endp == ':' ||
                                           *endp == '\0'))
            msg->size = size;
    }
    m->count++;
    return 0;
}

static int maildir_list(struct maildir *m, int sub, struct buf *error)
{
    int fd = m->sub_fd[sub];
    if (fd < 0)
        return 0;
    int dup_fd = dup(fd);
    DIR *dir = dup_fd < 0 ? NULL : fdopendir(dup_fd);
    if (dir == NULL) {
        (void)buf_printf(error, "open %s/: %s", maildir_sub_name[sub],
                         strerror(errno));
        if (dup_fd >= 0)
            (void)close(dup_fd);
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    errno = 0;
    while (rc == 0 && (e = readdir(dir)) != NULL) {
        struct stat st;
        if (e->d_name[0] == '.')
            continue;
        if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode))
            continue;  /* gone since, or not a message */
        if (maildir_add(m, e->d_name, sub, &st) != 0) {
            (void)buf_printf(error, "out of memory");
            rc = -1;
        }
        errno = 0;
    }
    if (rc == 0 && errno != 0) {
        (void)buf_printf(error, "read %s/: %s", maildir_sub_name[sub],
                         strerror(errno));
        rc = -1;
    }
    (void)closedir(dir);
    return rc;
}

static int maildir_compare(const void *a, const void *b)
{
    const struct maildir_msg *x = a, *y = b;
    int c = strcmp(x->uidl, y->uidl);
    return c != 0 ? c : strcmp(x->name, y->name);
}

static int maildir_open_dirs(struct maildir *m, const char *path,
                             uid_t owner, struct buf *error)
{
    m->dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (m->dir_fd < 0) {
        if (errno == ENOENT)
            return 0;  /* nothing delivered yet: an empty maildrop */
        (void)buf_printf(error, "open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(m->dir_fd, &st) != 0 || st.st_uid != owner) {
        (void)buf_printf(error, "%s does not belong to uid %ld", path,
                         (long)owner);
        return -1;
    }
    for (int sub = 0; sub < 2; sub++) {
        m->sub_fd[sub] = openat(m->dir_fd, maildir_sub_name[sub],
                                O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                                O_CLOEXEC);
        if (m->sub_fd[sub] < 0 && errno != ENOENT) {
            (void)buf_printf(error, "open %s%s: %s", path,
                             maildir_sub_name[sub], strerror(errno));
            return -1;
        }
    }
    return 0;
}

static int maildir_lock(struct maildir *m, struct buf *error)
{
    if (m->dir_fd < 0)
        return MAILDIR_OK;
    m->lock_fd = openat(m->dir_fd, ".pop3.lock",
                        O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (m->lock_fd < 0) {
        (void)buf_printf(error, "open .pop3.lock: %s", strerror(errno));
        return MAILDIR_ERROR;
    }
    while (flock(m->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR)
            continue;
        if (errno == EWOULDBLOCK)
            return MAILDIR_IN_USE;
        (void)buf_printf(error, "lock .pop3.lock: %s", strerror(errno));
        return MAILDIR_ERROR;
    }
    return MAILDIR_OK;
}

int maildir_open(struct maildir *m, const char *path, uid_t owner,
                 size_t max_messages, struct buf *error)
{
    memset(m, 0, sizeof(*m));
    m->dir_fd = m->lock_fd = m->sub_fd[0] = m->sub_fd[1] = -1;
    if (maildir_open_dirs(m, path, owner, error) != 0)
        return MAILDIR_ERROR;
    int rc = maildir_lock(m, error);
    if (rc != MAILDIR_OK)
        return rc;
    if (maildir_list(m, MAILDIR_NEW, error) != 0 ||
        maildir_list(m, MAILDIR_CUR, error) != 0)
        return MAILDIR_ERROR;
    if (m->count > 1)
        qsort(m->msgs, m->count, sizeof(*m->msgs), maildir_compare);
    while (m->count > max_messages)
        free(m->msgs[--m->count].name);
    return MAILDIR_OK;
}

/* ---- reading messages ----------------------------------------------- */

static int maildir_open_message(const struct maildir *m, size_t i)
{
    const struct maildir_msg *msg = &m->msgs[i];
    int dir = m->sub_fd[msg->in_new ? MAILDIR_NEW : MAILDIR_CUR];
    return openat(dir, msg->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
}

int maildir_size(struct maildir *m, size_t i, long long *size)
{
    struct maildir_msg *msg = &m->msgs[i];
    if (msg->size >= 0) {
        *size = msg->size;
        return 0;
    }
    int fd = maildir_open_message(m, i);
    if (fd < 0)
        return -1;
    static char block[MAILDIR_BLOCK];
    struct maildir_transfer t;
    maildir_transfer_init(&t, -1);
    long long total = 0;
    ssize_t n;
    while ((n = read(fd, block, sizeof(block))) > 0 ||
           (n < 0 && errno == EINTR))
        if (n > 0)
            total += maildir_transfer_chunk(&t, block, (size_t)n, NULL);
    int saved = errno;
    (void)close(fd);
    if (n < 0) {
        errno = saved;
        return -1;
    }
    total += maildir_transfer_end(&t, NULL);
    msg->size = total;
    *size = total;
    return 0;
}

int maildir_send(struct maildir *m, size_t i, long body_lines,
                 const char *first_line, struct stream *out)
{
    int fd = maildir_open_message(m, i);
    if (fd < 0)
        return -1;
    if (stream_puts(out, first_line) != STREAM_OK) {
        (void)close(fd);
        return -2;
    }
    static char block[MAILDIR_BLOCK];
    struct buf conv;
    buf_init(&conv, 2 * MAILDIR_BLOCK + 16);
    struct maildir_transfer t;
    maildir_transfer_init(&t, body_lines);
    int rc = 0;
    long long total = 0;
    while (rc == 0 && !t.done) {
        ssize_t n = read(fd, block, sizeof(block));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -2 : 0;  /* a read error mid-way: cut off */
            break;
        }
        buf_reset(&conv);
        total += maildir_transfer_chunk(&t, block, (size_t)n, &conv);
        if (stream_write(out, conv.data, conv.len) != STREAM_OK)
            rc = -2;
    }
    (void)close(fd);
    if (rc == 0) {
        buf_reset(&conv);
        total += maildir_transfer_end(&t, &conv);
        (void)buf_append(&conv, ".\r\n", 3);
        if (stream_write(out, conv.data, conv.len) != STREAM_OK)
            rc = -2;
        if (body_lines < 0)
            m->msgs[i].size = total;
    }
    buf_free(&conv);
    return rc;
}

/* ---- UPDATE ----------------------------------------------------------- */

/* name with the S flag: "u:2,FR" -> "u:2,FRS"; "u" -> "u:2,S". */
static int maildir_seen_name(const char *name, struct buf *out)
{
    const char *info = strstr(name, ":2,");
    if (info == NULL)
        return buf_printf(out, "%s:2,S", name);
    const char *flags = info + 3;
    if (strchr(flags, 'S') != NULL)
        return buf_set_str(out, name);
    if (buf_append(out, name, (size_t)(flags - name)) != 0)
        return -1;
    const char *p = flags;
    while (*p && (unsigned char)*p < 'S')
        if (buf_append_char(out, *p++) != 0)
            return -1;
    if (buf_append_char(out, 'S') != 0)
        return -1;
    return buf_append_str(out, p);
}

static int maildir_update_one(struct maildir *m, struct maildir_msg *msg,
                              struct buf *error)
{
    int from = m->sub_fd[msg->in_new ? MAILDIR_NEW : MAILDIR_CUR];
    if (msg->deleted) {
        if (unlinkat(from, msg->name, 0) != 0 && errno != ENOENT) {
            (void)buf_printf(error, "delete %s: %s; ", msg->name,
                             strerror(errno));
            return -1;
        }
        return 0;
    }
    if (!msg->in_new && !msg->retrieved)
        return 0;
    struct buf to;
    buf_init(&to, 4096);
    int rc = msg->in_new && !msg->retrieved
        ? buf_printf(&to, "%s:2,", msg->name)
        : maildir_seen_name(msg->name, &to);
    if (rc == 0 && strcmp(buf_cstr(&to), msg->name) == 0 && !msg->in_new) {
        buf_free(&to);
        return 0;
    }
    if (rc != 0 || m->sub_fd[MAILDIR_CUR] < 0 ||
        renameat(from, msg->name, m->sub_fd[MAILDIR_CUR], buf_cstr(&to)) != 0) {
        if (errno != ENOENT)
            (void)buf_printf(error, "move %s to cur/: %s; ", msg->name,
                             strerror(errno));
        rc = errno == ENOENT ? 0 : -1;
    }
    buf_free(&to);
    return rc;
}

int maildir_update(struct maildir *m, struct buf *error)
{
    int rc = 0;
    for (size_t i = 0; i < m->count; i++)
        if (maildir_update_one(m, &m->msgs[i], error) != 0)
            rc = -1;
    for (int sub = 0; sub < 2; sub++)
        if (m->sub_fd[sub] >= 0 && fsync(m->sub_fd[sub]) != 0 && rc == 0) {
            (void)buf_printf(error, "fsync %s/: %s", maildir_sub_name[sub],
                             strerror(errno));
            rc = -1;
        }
    return rc;
}

void maildir_close(struct maildir *m)
{
    for (size_t i = 0; i < m->count; i++)
        free(m->msgs[i].name);
    free(m->msgs);
    m->msgs = NULL;
    m->count = m->cap = 0;
    int *fds[] = { &m->sub_fd[0], &m->sub_fd[1], &m->lock_fd, &m->dir_fd };
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (*fds[i] >= 0) {
            (void)close(*fds[i]);
            *fds[i] = -1;
        }
}
