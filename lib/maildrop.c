/*
 * maildrop - local submission files: writing, committing and checked
 * reading.  See maildrop.h and docs/queue-format.md, "Maildrop files".
 */
#include "maildrop.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "safe_file.h"
#include "text.h"

#define MAILDROP_PATH_MAX 4096
#define MAILDROP_OUT_CHUNK (64 * 1024)
#define MAILDROP_SIZE_ZEROS "              0               0               0"

/* --- Envelope ------------------------------------------------------------ */

void maildrop_envelope_init(struct maildrop_envelope *env)
{
    memset(env, 0, sizeof(*env));
    env->uid = -1;
    buf_init(&env->sender, MAILDROP_ADDRESS_MAX);
    buf_init(&env->full_name, MAILDROP_FULL_NAME_MAX);
    buf_init(&env->dsn_envid, MAILDROP_ENVID_MAX);
    buf_init(&env->dsn_ret, 8);
    buf_init(&env->encoding, 16);
    buf_init(&env->extract_notify, 64);
}

void maildrop_envelope_free(struct maildrop_envelope *env)
{
    for (size_t i = 0; i < env->rcpt_count; i++) {
        free(env->rcpt[i].address);
        free(env->rcpt[i].notify);
    }
    free(env->rcpt);
    buf_free(&env->sender);
    buf_free(&env->full_name);
    buf_free(&env->dsn_envid);
    buf_free(&env->dsn_ret);
    buf_free(&env->encoding);
    buf_free(&env->extract_notify);
    env->rcpt = NULL;
    env->rcpt_count = env->rcpt_cap = 0;
}

int maildrop_check_address(const char *address, size_t len, int null_ok,
                           struct buf *error)
{
    if (len == 0) {
        if (null_ok)
            return 0;
        buf_printf(error, "empty address");
        return -1;
    }
    if (len > MAILDROP_ADDRESS_MAX) {
        buf_printf(error, "address longer than %d bytes",
                   MAILDROP_ADDRESS_MAX);
        return -1;
    }
    int quoted = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)address[i];
        if (c < 0x20 || c == 0x7f) {
            buf_printf(error, "control character in address");
            return -1;
        }
        if (quoted && c == '\\' && i + 1 < len) {
            i++;
            continue;
        }
        if (c == '"') {
            quoted = !quoted;
            continue;
        }
        if (!quoted && (c == ' ' || c == '<' || c == '>' || c == ',' ||
                        c == '(' || c == ')' || c == ';')) {
            buf_printf(error, "bad character '%c' in address", c);
            return -1;
        }
    }
    if (quoted) {
        buf_printf(error, "unbalanced quote in address");
        return -1;
    }
    if (address[0] == '-') {
        buf_printf(error, "address starts with '-'");
        return -1;
    }
    return 0;
}

int maildrop_check_notify(const char *text, struct buf *out)
{
    static const char *const words[] = { "SUCCESS", "FAILURE", "DELAY" };
    buf_reset(out);
    if (text_equal_nocase(text, "never"))
        return buf_set_str(out, "NEVER");
    unsigned seen = 0;
    const char *p = text;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
        int found = -1;
        for (int i = 0; i < 3; i++)
            if (n == strlen(words[i]) && strncasecmp(p, words[i], n) == 0)
                found = i;
        if (found < 0 || (seen & (1u << found)))
            return -1;
        seen |= 1u << found;
        if (out->len > 0 && buf_append_char(out, ',') != 0)
            return -1;
        if (buf_append_str(out, words[found]) != 0)
            return -1;
        if (comma == NULL)
            break;
        p = comma + 1;
        if (*p == '\0')
            return -1;
    }
    return seen != 0 ? 0 : -1;
}

static char *maildrop_strdup(const char *s)
{
    char *copy = strdup(s);
    if (copy == NULL)
        errno = ENOMEM;
    return copy;
}

int maildrop_envelope_add_recipient(struct maildrop_envelope *env,
                                    const char *address, const char *notify,
                                    struct buf *error)
{
    if (maildrop_check_address(address, strlen(address), 0, error) != 0)
        return -1;
    if (env->rcpt_count >= MAILDROP_RCPT_MAX) {
        buf_printf(error, "more than %d recipients", MAILDROP_RCPT_MAX);
        return -1;
    }
    struct buf canon;
    buf_init(&canon, 64);
    if (notify != NULL && maildrop_check_notify(notify, &canon) != 0) {
        buf_free(&canon);
        buf_printf(error, "bad DSN notify \"%.64s\"", notify);
        return -1;
    }
    if (env->rcpt_count == env->rcpt_cap) {
        size_t cap = env->rcpt_cap ? env->rcpt_cap * 2 : 8;
        struct maildrop_recipient *grown =
            realloc(env->rcpt, cap * sizeof(*grown));
        if (grown == NULL) {
            buf_free(&canon);
            buf_printf(error, "out of memory");
            return -1;
        }
        env->rcpt = grown;
        env->rcpt_cap = cap;
    }
    struct maildrop_recipient *r = &env->rcpt[env->rcpt_count];
    r->address = maildrop_strdup(address);
    r->notify = notify != NULL ? maildrop_strdup(buf_cstr(&canon)) : NULL;
    buf_free(&canon);
    if (r->address == NULL || (notify != NULL && r->notify == NULL)) {
        free(r->address);
        free(r->notify);
        buf_printf(error, "out of memory");
        return -1;
    }
    env->rcpt_count++;
    return 0;
}

/* --- Writing records ------------------------------------------------------ */

void maildrop_out_init(struct maildrop_out *o, int fd)
{
    o->fd = fd;
    buf_init(&o->pending, MAILDROP_OUT_CHUNK + QUEUE_RECORD_MAX +
                              QUEUE_RECORD_HEADER);
}

void maildrop_out_free(struct maildrop_out *o)
{
    buf_free(&o->pending);
}

int maildrop_out_flush(struct maildrop_out *o)
{
    if (o->pending.len == 0)
        return 0;
    if (safe_file_write_all(o->fd, o->pending.data, o->pending.len) != 0)
        return -1;
    buf_reset(&o->pending);
    return 0;
}

int maildrop_out_put(struct maildrop_out *o, int type, const void *data,
                     size_t len)
{
    if (queue_record_append(&o->pending, type, data, len) != 0)
        return -1;
    if (o->pending.len >= MAILDROP_OUT_CHUNK)
        return maildrop_out_flush(o);
    return 0;
}

static int put_str(struct maildrop_out *o, int type, const char *s)
{
    return maildrop_out_put(o, type, s, strlen(s));
}

/* An A record "name=value", when value is not empty. */
static int put_attr(struct maildrop_out *o, const char *name,
                    const struct buf *value)
{
    if (value->len == 0)
        return 0;
    struct buf attr;
    buf_init(&attr, QUEUE_RECORD_MAX);
    int rc = buf_printf(&attr, "%s=", name) == 0 &&
                     buf_append(&attr, value->data, value->len) == 0
                 ? maildrop_out_put(o, QUEUE_REC_ATTR, attr.data, attr.len)
                 : -1;
    buf_free(&attr);
    return rc;
}

static int put_long_attr(struct maildrop_out *o, const char *name, long v)
{
    char text[64];
    snprintf(text, sizeof(text), "%s=%ld", name, v);
    return put_str(o, QUEUE_REC_ATTR, text);
}

int maildrop_put_envelope(struct maildrop_out *o,
                          const struct maildrop_envelope *env,
                          enum maildrop_source source)
{
    if (put_str(o, QUEUE_REC_VERSION, QUEUE_FORMAT_VERSION) != 0 ||
        put_str(o, QUEUE_REC_SIZE, MAILDROP_SIZE_ZEROS) != 0)
        return -1;
    if (source == MAILDROP_FILE) {
        char when[64];
        snprintf(when, sizeof(when), "%lld.%06ld", env->time_sec,
                 env->time_usec);
        if (put_str(o, QUEUE_REC_TIME, when) != 0 ||
            put_long_attr(o, "uid", env->uid) != 0)
            return -1;
    }
    if ((env->flags != 0 && put_long_attr(o, "flags", env->flags) != 0) ||
        put_attr(o, "full_name", &env->full_name) != 0 ||
        put_attr(o, "dsn_envid", &env->dsn_envid) != 0 ||
        put_attr(o, "dsn_ret", &env->dsn_ret) != 0 ||
        put_attr(o, "encoding", &env->encoding) != 0 ||
        put_attr(o, "extract_notify", &env->extract_notify) != 0)
        return -1;
    if (maildrop_out_put(o, QUEUE_REC_SENDER, env->sender.data,
                         env->sender.len) != 0)
        return -1;
    for (size_t i = 0; i < env->rcpt_count; i++) {
        const struct maildrop_recipient *r = &env->rcpt[i];
        if (r->notify != NULL && put_str(o, QUEUE_REC_NOTIFY, r->notify) != 0)
            return -1;
        if (put_str(o, QUEUE_REC_RCPT, r->address) != 0)
            return -1;
    }
    return maildrop_out_put(o, QUEUE_REC_CONTENT, "", 0);
}

int maildrop_put_content(struct maildrop_out *o, const void *data,
                         size_t len)
{
    const char *p = data;
    while (len > 0) {
        size_t n = len < QUEUE_BLOCK_MAX ? len : QUEUE_BLOCK_MAX;
        if (maildrop_out_put(o, QUEUE_REC_BLOCK, p, n) != 0)
            return -1;
        p += n;
        len -= n;
    }
    return 0;
}

int maildrop_put_end(struct maildrop_out *o)
{
    if (maildrop_out_put(o, QUEUE_REC_END_CONTENT, "", 0) != 0 ||
        maildrop_out_put(o, QUEUE_REC_END, "", 0) != 0)
        return -1;
    return maildrop_out_flush(o);
}

int maildrop_put_abort(struct maildrop_out *o)
{
    if (maildrop_out_put(o, QUEUE_REC_END_CONTENT, "", 0) != 0 ||
        put_str(o, QUEUE_REC_ATTR, "abort=1") != 0 ||
        maildrop_out_put(o, QUEUE_REC_END, "", 0) != 0)
        return -1;
    return maildrop_out_flush(o);
}

/* --- Maildrop files -------------------------------------------------------- */

static void file_release(struct maildrop_file *f)
{
    maildrop_out_free(&f->out);
    buf_free(&f->temp_path);
    buf_free(&f->dir);
    f->out.fd = -1;
}

/* A file without a name in dir; it gets one only at commit, so a postdrop
 * killed before that leaves nothing behind.  -1 (errno) when the kernel or
 * file system cannot, or /proc is missing (the link goes through it). */
static int file_open_anonymous(const char *dir)
{
#ifdef O_TMPFILE
    if (access("/proc/self/fd", X_OK) != 0) {
        errno = EOPNOTSUPP;
        return -1;
    }
    return open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
#else
    (void)dir;
    errno = EOPNOTSUPP;
    return -1;
#endif
}

static int file_open(struct maildrop_file *f, const char *dir)
{
    int fd = file_open_anonymous(dir);
    if (fd >= 0) {
        f->anonymous = 1;
        return fd;
    }
    /* What a named file would meet as well is reported as it is. */
    if (errno == ENOSPC || errno == EDQUOT || errno == EIO ||
        errno == EACCES || errno == ENOENT || errno == EROFS)
        return -1;
    return safe_file_create_temp(dir, "tmp.", 0644, &f->temp_path);
}

int maildrop_file_create(struct maildrop_file *f, const char *dir,
                         struct buf *error)
{
    buf_init(&f->temp_path, MAILDROP_PATH_MAX);
    buf_init(&f->dir, MAILDROP_PATH_MAX);
    maildrop_out_init(&f->out, -1);
    f->anonymous = 0;
    if (buf_set_str(&f->dir, dir) != 0) {
        buf_printf(error, "directory name too long");
        file_release(f);
        return -1;
    }
    int fd = file_open(f, dir);
    if (fd < 0) {
        int saved = errno;
        buf_printf(error, "create file in %s: %s", dir, strerror(saved));
        file_release(f);
        errno = saved;
        return -1;
    }
    f->out.fd = fd;
    /* The umask must not take pickup's read access away. */
    if (fchmod(fd, 0644) != 0) {
        int saved = errno;
        buf_printf(error, "chmod in %s: %s", dir, strerror(saved));
        maildrop_file_abort(f);
        errno = saved;
        return -1;
    }
    return 0;
}

void maildrop_file_abort(struct maildrop_file *f)
{
    if (f->out.fd >= 0) {
        (void)close(f->out.fd);
        if (!f->anonymous)
            (void)unlink(buf_cstr(&f->temp_path));
    }
    file_release(f);
}

/* Gives the file the name final: a hard link, which never replaces. */
static int file_link_to(struct maildrop_file *f, const char *final)
{
    if (!f->anonymous)
        return link(buf_cstr(&f->temp_path), final);
    return safe_file_link_unnamed(f->out.fd, AT_FDCWD, final);
}

/* The queue ID rule of docs/queue-format.md: microseconds, then inode. */
static int file_link(struct maildrop_file *f, char id[QUEUE_ID_SIZE])
{
    struct stat st;
    if (fstat(f->out.fd, &st) != 0)
        return -1;
    struct buf final;
    buf_init(&final, MAILDROP_PATH_MAX);
    for (unsigned attempt = 0; attempt < 16; attempt++) {
        struct timeval now;
        gettimeofday(&now, NULL);
        unsigned long usec = ((unsigned long)now.tv_usec + attempt) & 0xFFFFF;
        snprintf(id, QUEUE_ID_SIZE, "%05lX%llX", usec,
                 (unsigned long long)st.st_ino);
        buf_reset(&final);
        if (buf_printf(&final, "%s/%s", buf_cstr(&f->dir), id) != 0)
            break;
        if (file_link_to(f, buf_cstr(&final)) == 0) {
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

/* The directory entry made durable: an fsync of the directory where it
 * can be opened, else of the whole file system (see maildrop.h). */
static int file_sync_dir(struct maildrop_file *f)
{
    if (safe_file_fsync_dir(buf_cstr(&f->dir)) == 0)
        return 0;
    if (errno != EACCES)
        return -1;
    return syncfs(f->out.fd);
}

int maildrop_file_commit(struct maildrop_file *f, char id[QUEUE_ID_SIZE],
                         struct buf *error)
{
    id[0] = '\0';
    if (maildrop_out_flush(&f->out) != 0 || fsync(f->out.fd) != 0 ||
        file_link(f, id) != 0) {
        int saved = errno;
        buf_printf(error, "write a file in %s: %s", buf_cstr(&f->dir),
                   strerror(saved));
        maildrop_file_abort(f);
        id[0] = '\0';
        errno = saved;
        return -1;
    }
    int rc = 0;
    if ((!f->anonymous && unlink(buf_cstr(&f->temp_path)) != 0) ||
        file_sync_dir(f) != 0) {
        int saved = errno;
        buf_printf(error, "commit %s/%s: %s", buf_cstr(&f->dir), id,
                   strerror(saved));
        /* Not durable, so not queued: the name goes again. */
        char final[MAILDROP_PATH_MAX];
        snprintf(final, sizeof(final), "%s/%s", buf_cstr(&f->dir), id);
        (void)unlink(final);
        id[0] = '\0';
        errno = saved;
        rc = -1;
    }
    int saved = errno;
    if (close(f->out.fd) != 0 && rc == 0) {
        saved = errno;
        buf_printf(error, "close %s/%s: %s", buf_cstr(&f->dir), id,
                   strerror(saved));
        rc = -1;
    }
    f->out.fd = -1;
    file_release(f);
    errno = saved;
    return rc;
}

/* --- Reading ---------------------------------------------------------------- */

void maildrop_reader_attach(struct maildrop_reader *r, int fd,
                            enum maildrop_source source,
                            long long max_content)
{
    memset(r, 0, sizeof(*r));
    queue_reader_attach(&r->queue, fd);
    queue_record_init(&r->rec);
    r->source = source;
    r->max_content = max_content;
}

void maildrop_reader_free(struct maildrop_reader *r)
{
    queue_reader_close(&r->queue);
    queue_record_free(&r->rec);
}

static int reader_fail(struct buf *error, const char *text)
{
    buf_append_str(error, text);
    return -1;
}

/* A "SECONDS.MICROSECONDS" T record. */
static int reader_time(struct maildrop_envelope *env, const char *text)
{
    const char *dot = strchr(text, '.');
    if (dot == NULL || dot - text > 18 || strlen(dot + 1) != 6)
        return -1;
    char seconds[20];
    memcpy(seconds, text, (size_t)(dot - text));
    seconds[dot - text] = '\0';
    long sec, usec;
    if (text_parse_long(seconds, 0, 1L << 40, &sec) != 0 ||
        text_parse_long(dot + 1, 0, 999999, &usec) != 0 || seconds[0] == '+' ||
        dot[1] == '+' || dot[1] == '-')
        return -1;
    env->time_sec = sec;
    env->time_usec = usec;
    return 0;
}

/* Printable ASCII only, for envid and the fixed words. */
static int printable(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return 1;
}

/* No control characters (the full name goes into a From: header). */
static int no_controls(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
            return 0;
    return 1;
}

static int set_once(struct buf *b, const char *value, size_t len,
                    unsigned *seen, unsigned bit)
{
    if ((*seen & bit) || len == 0 || buf_set(b, value, len) != 0)
        return -1;
    *seen |= bit;
    return 0;
}

static int reader_attr(struct maildrop_reader *r,
                       struct maildrop_envelope *env, unsigned *seen,
                       struct buf *error)
{
    const char *text = buf_cstr(&r->rec.data);
    const char *eq = memchr(text, '=', r->rec.data.len);
    if (eq == NULL || memchr(text, '\0', r->rec.data.len) != NULL)
        return reader_fail(error, "malformed attribute record");
    size_t name_len = (size_t)(eq - text);
    const char *value = eq + 1;
    size_t len = r->rec.data.len - name_len - 1;
#define NAME_IS(n) (name_len == strlen(n) && memcmp(text, n, name_len) == 0)
    if (NAME_IS("uid") && r->source == MAILDROP_FILE) {
        long uid;
        if ((*seen & 1u) || text_parse_long(value, 0, 0x7fffffffL, &uid) != 0)
            return reader_fail(error, "bad uid attribute");
        *seen |= 1u;
        env->uid = uid;
        return 0;
    }
    if (NAME_IS("flags")) {
        long flags;
        if ((*seen & 2u) || text_parse_long(value, 0, 0x7fffffffL, &flags) ||
            (flags & ~(long)MAILDROP_FLAG_EXTRACT) != 0)
            return reader_fail(error, "bad flags attribute");
        *seen |= 2u;
        env->flags = flags;
        return 0;
    }
    if (NAME_IS("full_name")) {
        if (!no_controls(value, len) ||
            set_once(&env->full_name, value, len, seen, 4u) != 0)
            return reader_fail(error, "bad full_name attribute");
        return 0;
    }
    if (NAME_IS("dsn_envid")) {
        if (!printable(value, len) ||
            set_once(&env->dsn_envid, value, len, seen, 8u) != 0)
            return reader_fail(error, "bad dsn_envid attribute");
        return 0;
    }
    if (NAME_IS("dsn_ret")) {
        if ((strcmp(value, "FULL") != 0 && strcmp(value, "HDRS") != 0) ||
            set_once(&env->dsn_ret, value, len, seen, 16u) != 0)
            return reader_fail(error, "bad dsn_ret attribute");
        return 0;
    }
    if (NAME_IS("encoding")) {
        if ((strcmp(value, "7bit") != 0 && strcmp(value, "8bitmime") != 0) ||
            set_once(&env->encoding, value, len, seen, 32u) != 0)
            return reader_fail(error, "bad encoding attribute");
        return 0;
    }
    if (NAME_IS("extract_notify")) {
        struct buf canon;
        buf_init(&canon, 64);
        int bad = !printable(value, len) ||
                  maildrop_check_notify(value, &canon) != 0 ||
                  set_once(&env->extract_notify, canon.data, canon.len, seen,
                           64u) != 0;
        buf_free(&canon);
        return bad ? reader_fail(error, "bad extract_notify attribute") : 0;
    }
#undef NAME_IS
    buf_printf(error, "unknown attribute \"%.40s\"", text);
    return -1;
}

static int reader_next(struct maildrop_reader *r, struct buf *error)
{
    int rc = queue_reader_next(&r->queue, &r->rec, error);
    if (rc == 0 && !r->done)
        return reader_fail(error, "file ends early");
    return rc;
}

int maildrop_reader_envelope(struct maildrop_reader *r,
                             struct maildrop_envelope *env,
                             struct buf *error)
{
    unsigned seen = 0;
    int have_time = 0;
    struct buf notify;
    buf_init(&notify, 64);
    int pending_notify = 0;
    int rc = -1;
    for (;;) {
        if (reader_next(r, error) != 1)
            goto out;
        const char *data = buf_cstr(&r->rec.data);
        size_t len = r->rec.data.len;
        switch (r->rec.type) {
        case QUEUE_REC_VERSION:
        case QUEUE_REC_SIZE:
            break;
        case QUEUE_REC_TIME:
            if (r->source != MAILDROP_FILE || have_time ||
                reader_time(env, data) != 0) {
                reader_fail(error, "unexpected or bad time record");
                goto out;
            }
            have_time = 1;
            break;
        case QUEUE_REC_ATTR:
            if (env->have_sender) {
                reader_fail(error, "attribute after the sender");
                goto out;
            }
            if (reader_attr(r, env, &seen, error) != 0)
                goto out;
            break;
        case QUEUE_REC_SENDER:
            if (env->have_sender ||
                maildrop_check_address(data, len, 1, error) != 0 ||
                buf_set(&env->sender, data, len) != 0) {
                reader_fail(error, env->have_sender ? "second sender"
                                                    : " (sender)");
                goto out;
            }
            env->have_sender = 1;
            break;
        case QUEUE_REC_NOTIFY:
            if (!env->have_sender || pending_notify ||
                memchr(data, '\0', len) != NULL ||
                maildrop_check_notify(data, &notify) != 0) {
                reader_fail(error, "bad notify record");
                goto out;
            }
            pending_notify = 1;
            break;
        case QUEUE_REC_RCPT:
            if (!env->have_sender || memchr(data, '\0', len) != NULL) {
                reader_fail(error, "recipient before the sender");
                goto out;
            }
            if (maildrop_envelope_add_recipient(
                    env, data, pending_notify ? buf_cstr(&notify) : NULL,
                    error) != 0)
                goto out;
            pending_notify = 0;
            break;
        case QUEUE_REC_CONTENT:
            if (!env->have_sender || pending_notify ||
                (r->source == MAILDROP_FILE && (!have_time || !(seen & 1u)))) {
                reader_fail(error, "incomplete envelope");
                goto out;
            }
            r->in_content = 1;
            rc = 0;
            goto out;
        default:
            buf_printf(error, "record type '%c' not allowed here",
                       r->rec.type);
            goto out;
        }
    }
out:
    buf_free(&notify);
    return rc;
}

int maildrop_reader_content(struct maildrop_reader *r, const char **data,
                            size_t *len, struct buf *error)
{
    if (!r->in_content)
        return reader_fail(error, "content read before the envelope");
    int rc = reader_next(r, error);
    if (rc != 1)
        return rc;
    switch (r->rec.type) {
    case QUEUE_REC_BLOCK:
        r->content += (long long)r->rec.data.len;
        if (r->max_content > 0 && r->content > r->max_content) {
            r->too_large = 1;
            buf_printf(error, "message larger than %lld bytes",
                       r->max_content);
            return -1;
        }
        *data = r->rec.data.data != NULL ? r->rec.data.data : "";
        *len = r->rec.data.len;
        return 1;
    case QUEUE_REC_END_CONTENT:
        r->done = 1;
        rc = queue_reader_next(&r->queue, &r->rec, error);
        if (rc < 0)
            return -1;
        if (rc == 1 && r->source == MAILDROP_INPUT &&
            r->rec.type == QUEUE_REC_ATTR &&
            strcmp(buf_cstr(&r->rec.data), "abort=1") == 0) {
            r->aborted = 1;
            rc = queue_reader_next(&r->queue, &r->rec, error);
            if (rc < 0)
                return -1;
            if (rc == 0)
                return reader_fail(error, "the sender gave up");
        }
        if (rc != 0 || r->rec.type != QUEUE_REC_END)
            return reader_fail(error, "records after the content");
        r->in_content = 0;
        return 0;
    default:
        buf_printf(error, "record type '%c' inside the content",
                   r->rec.type);
        return -1;
    }
}
