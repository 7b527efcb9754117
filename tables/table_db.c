/*
 * table_db - the hash: and btree: table types over Berkeley DB, and the
 * writer that builds their FILE.db files (see table_db.h).
 *
 * Reading: table_open("hash:FILE") opens FILE.db read-only (DB_RDONLY, no
 * environment).  Keys are folded (unless TABLE_FLAG_KEEP_CASE) and stored
 * without a NUL, values likewise.  Before a lookup, at most once a second
 * (CLOCK_MONOTONIC), FILE.db is stat()ed; when its device or inode
 * changed, postino-map renamed a new table over it, and the reader opens
 * the new file, keeping the old handle (with a warning) when that fails.
 * A reader's cache is small (4 MiB) unless TABLE_FLAG_BULK asks for more.
 *
 * Writing: table_db_writer_create() locks the directory of FILE.db with
 * flock, builds a temporary file next to it, and table_db_writer_commit()
 * renames it over FILE.db after fsync, so readers see whole tables only.
 * Files are written with page checksums (DB_CHKSUM): a damaged page then
 * gives a lookup error, where Berkeley DB would otherwise read wild
 * memory.  Berkeley DB's own messages go to the log, or into the error
 * when a file cannot be opened.
 */
#include "table_db.h"

#include <db.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "safe_file.h"
#include "table_driver.h"

/* How often a reader checks whether FILE.db was replaced. */
#define REOPEN_CHECK_NSEC 1000000000LL
/* Berkeley DB cache while building: at least this, more for big tables. */
#define WRITER_CACHE_MIN ((size_t)64 * 1024 * 1024)
#define WRITER_CACHE_MAX ((size_t)512 * 1024 * 1024)
/* Bytes of cache planned per expected entry. */
#define WRITER_CACHE_PER_ENTRY 128
#define WRITER_PAGE_SIZE 4096
/* A reader's cache: the size of FILE.db, within these bounds.  Daemons
 * keep it small (the kernel's page cache is shared, this one is not);
 * TABLE_FLAG_BULK (postino-map -q -) lets the whole table in. */
#define READER_CACHE_MIN ((size_t)256 * 1024)
#define READER_CACHE_MAX ((size_t)4 * 1024 * 1024)
#define READER_CACHE_BULK_MAX ((size_t)256 * 1024 * 1024)

struct db_reader {
    DBTYPE db_type;
    const char *type_name; /* "hash" or "btree" */
    size_t cache_max;      /* of the Berkeley DB cache */
    struct buf db_path;    /* NAME.db */
    DB *db;
    dev_t dev; /* of the file db reads */
    ino_t ino;
    long long last_check_ns; /* CLOCK_MONOTONIC of the last stat */
    struct buf key;          /* the folded key of the current lookup */
};

struct table_db_writer {
    DB *db;
    struct buf db_path;   /* the FILE.db the commit replaces */
    struct buf temp_path; /* the file being built; "" before it exists */
    int lock_fd; /* the directory, flock()ed */
};

/* Berkeley DB's own messages (corrupt pages, wrong format): while a file
 * is opened, the last one is kept in the buffer that the handle's
 * environment points to, for the error; otherwise they go to the log. */
static void db_message(const DB_ENV *env, const char *prefix,
                       const char *message)
{
    struct buf *keep = env ? env->app_private : NULL;
    if (keep != NULL) {
        (void)buf_set_str(keep, message);
        return;
    }
    log_warn("Berkeley DB: %s%s%s", prefix ? prefix : "", prefix ? ": " : "",
             message);
}

/* Sends db's messages to keep (NULL: to the log again). */
static void keep_db_messages(DB *db, struct buf *keep)
{
    DB_ENV *env = db->get_env(db);
    if (env != NULL)
        env->app_private = keep;
}

static long long monotonic_ns(void)
{
    struct timespec now;
    if (clock_gettime(CLOCK_MONOTONIC, &now) != 0)
        return 0;
    return (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
}

static int db_type_by_name(const char *name, DBTYPE *type)
{
    if (strcmp(name, "hash") == 0)
        *type = DB_HASH;
    else if (strcmp(name, "btree") == 0)
        *type = DB_BTREE;
    else
        return -1;
    return 0;
}

static void set_dbt(DBT *dbt, const void *data, size_t len)
{
    memset(dbt, 0, sizeof(*dbt));
    dbt->data = (void *)data;
    dbt->size = (u_int32_t)len;
}

static void close_db_quietly(DB *db)
{
    int ret = db->close(db, DB_NOSYNC);
    if (ret != 0)
        log_warn("Berkeley DB close: %s", db_strerror(ret));
}

static size_t reader_cache_size(off_t file_size, size_t max)
{
    size_t size = file_size > 0 ? (size_t)file_size : 0;
    if (size < READER_CACHE_MIN)
        return READER_CACHE_MIN;
    return size < max ? size : max;
}

/* Opens path read-only as a database of type (DB_UNKNOWN: any), with a
 * cache for a file of st->st_size bytes, up to cache_max; reports in st
 * the device and inode of the file it opened.  0, or -1 with error. */
static int open_db_file(const char *path, DBTYPE type, size_t cache_max,
                        DB **out, struct stat *st, struct buf *error)
{
    DB *db = NULL;
    int ret = db_create(&db, NULL, 0);
    if (ret != 0) {
        (void)buf_printf(error, "%s: db_create: %s", path, db_strerror(ret));
        return -1;
    }
    db->set_errcall(db, db_message);
    db->set_errpfx(db, path);
    size_t cache = reader_cache_size(st->st_size, cache_max);
    ret = db->set_cachesize(db, 0, (u_int32_t)cache, 1);
    if (ret != 0) {
        (void)buf_printf(error, "%s: cache size: %s", path, db_strerror(ret));
        close_db_quietly(db);
        return -1;
    }
    struct buf message;
    buf_init(&message, 1024);
    keep_db_messages(db, &message);
    ret = db->open(db, NULL, path, NULL, type, DB_RDONLY, 0);
    keep_db_messages(db, NULL);
    if (ret != 0) {
        (void)buf_printf(error, "%s: cannot open as a Berkeley DB %s file: %s",
                         path, type == DB_BTREE ? "btree"
                               : type == DB_HASH ? "hash" : "",
                         db_strerror(ret));
        if (message.len > 0)
            (void)buf_printf(error, " (%s)", buf_cstr(&message));
        buf_free(&message);
        close_db_quietly(db);
        return -1;
    }
    buf_free(&message);
    int fd = -1;
    ret = db->fd(db, &fd);
    if (ret != 0 || fstat(fd, st) != 0) {
        (void)buf_printf(error, "%s: %s", path,
                         ret ? db_strerror(ret) : strerror(errno));
        close_db_quietly(db);
        return -1;
    }
    *out = db;
    return 0;
}

/* ---------------------------------------------------------------- reader */

static void free_reader(struct db_reader *r)
{
    if (r->db != NULL)
        close_db_quietly(r->db);
    buf_free(&r->db_path);
    buf_free(&r->key);
    free(r);
}

static int db_open(struct table *t, const char *name, DBTYPE type,
                   const char *type_name, struct buf *error)
{
    struct db_reader *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        (void)buf_printf(error, "%s: %s", t->spec, strerror(ENOMEM));
        return -1;
    }
    r->db_type = type;
    r->type_name = type_name;
    buf_init(&r->db_path, PATH_MAX);
    buf_init(&r->key, TABLE_KEY_MAX);
    if (buf_printf(&r->db_path, "%s.db", name) != 0) {
        (void)buf_printf(error, "%s: %s", t->spec, strerror(errno));
        free_reader(r);
        return -1;
    }
    const char *path = buf_cstr(&r->db_path);
    struct stat st;
    if (stat(path, &st) != 0) {
        int err = errno;
        (void)buf_printf(error, "%s: %s", path, strerror(err));
        if (err == ENOENT)
            (void)buf_printf(error, " (run \"postino-map %s:%s\")", type_name,
                             name);
        free_reader(r);
        return -1;
    }
    r->cache_max = (t->flags & TABLE_FLAG_BULK) ? READER_CACHE_BULK_MAX
                                                : READER_CACHE_MAX;
    if (open_db_file(path, type, r->cache_max, &r->db, &st, error) != 0) {
        free_reader(r);
        return -1;
    }
    r->dev = st.st_dev;
    r->ino = st.st_ino;
    r->last_check_ns = monotonic_ns();
    t->state = r;
    return 0;
}

static int hash_open(struct table *t, const char *name, struct buf *error)
{
    return db_open(t, name, DB_HASH, "hash", error);
}

static int btree_open(struct table *t, const char *name, struct buf *error)
{
    return db_open(t, name, DB_BTREE, "btree", error);
}

/* Opens FILE.db again when postino-map replaced it; at most once a second.
 * On any failure the reader keeps the table it has. */
static void reopen_if_replaced(struct table *t, struct db_reader *r)
{
    long long now = monotonic_ns();
    if (now - r->last_check_ns < REOPEN_CHECK_NSEC)
        return;
    r->last_check_ns = now;
    const char *path = buf_cstr(&r->db_path);
    struct stat st;
    if (stat(path, &st) != 0) {
        log_warn("%s: cannot check %s for a new version: %s; using the open "
                 "one", t->spec, path, strerror(errno));
        return;
    }
    if (st.st_dev == r->dev && st.st_ino == r->ino)
        return;
    struct buf why;
    buf_init(&why, 1024);
    DB *fresh = NULL;
    if (open_db_file(path, r->db_type, r->cache_max, &fresh, &st, &why) !=
        0) {
        log_warn("%s: cannot open the new version: %s; using the open one",
                 t->spec, buf_cstr(&why));
        buf_free(&why);
        return;
    }
    buf_free(&why);
    close_db_quietly(r->db);
    r->db = fresh;
    r->dev = st.st_dev;
    r->ino = st.st_ino;
    log_debug("%s: opened the new version of %s", t->spec, path);
}

static int db_lookup(struct table *t, const char *key, struct buf *value,
                     struct buf *error)
{
    struct db_reader *r = t->state;
    reopen_if_replaced(t, r);
    if (table_fold_key(t, key, &r->key) != 0) {
        (void)buf_printf(error, "%s: lookup key: %s", t->spec,
                         strerror(errno));
        return TABLE_ERROR;
    }
    DBT k, v;
    set_dbt(&k, r->key.data ? r->key.data : "", r->key.len);
    set_dbt(&v, NULL, 0);
    int ret = r->db->get(r->db, NULL, &k, &v, 0);
    if (ret == DB_NOTFOUND)
        return TABLE_NOT_FOUND;
    if (ret != 0) {
        (void)buf_printf(error, "%s: lookup of \"%.100s\": %s", t->spec, key,
                         db_strerror(ret));
        return TABLE_ERROR;
    }
    if (buf_set(value, v.data, v.size) != 0) {
        (void)buf_printf(error, "%s: value of \"%.100s\": %s", t->spec, key,
                         strerror(errno));
        return TABLE_ERROR;
    }
    return TABLE_FOUND;
}

/* Walks every entry of db with a cursor.  0 (also when fn stopped it), or
 * a Berkeley DB error number. */
static int walk_db(DB *db, table_entry_fn *fn, void *ctx)
{
    DBC *cursor = NULL;
    int ret = db->cursor(db, NULL, &cursor, 0);
    if (ret != 0)
        return ret;
    DBT k, v;
    set_dbt(&k, NULL, 0);
    set_dbt(&v, NULL, 0);
    while ((ret = cursor->get(cursor, &k, &v, DB_NEXT)) == 0) {
        if (fn(ctx, k.data, k.size, v.data, v.size) != 0)
            break;
    }
    if (ret == DB_NOTFOUND)
        ret = 0;
    int close_ret = cursor->close(cursor);
    return ret != 0 ? ret : close_ret;
}

static int db_iterate(struct table *t, table_entry_fn *fn, void *ctx,
                      struct buf *error)
{
    struct db_reader *r = t->state;
    reopen_if_replaced(t, r);
    int ret = walk_db(r->db, fn, ctx);
    if (ret != 0) {
        (void)buf_printf(error, "%s: listing: %s", t->spec, db_strerror(ret));
        return TABLE_ERROR;
    }
    return 0;
}

static void db_close(struct table *t)
{
    free_reader(t->state);
    t->state = NULL;
}

const struct table_ops table_hash_ops = {
    .type = "hash",
    .open = hash_open,
    .lookup = db_lookup,
    .iterate = db_iterate,
    .close = db_close,
};

const struct table_ops table_btree_ops = {
    .type = "btree",
    .open = btree_open,
    .lookup = db_lookup,
    .iterate = db_iterate,
    .close = db_close,
};

/* ---------------------------------------------------------------- writer */

/* "a/b/c.db" -> "a/b", "c.db" -> ".", "/c.db" -> "/". */
static int parent_dir(const char *path, struct buf *out)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return buf_set_str(out, ".");
    if (slash == path)
        return buf_set_str(out, "/");
    return buf_set(out, path, (size_t)(slash - path));
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static void free_writer(struct table_db_writer *w)
{
    if (w->lock_fd >= 0 && close(w->lock_fd) != 0)
        log_warn("%s: closing the directory lock: %s", buf_cstr(&w->db_path),
                 strerror(errno));
    buf_free(&w->db_path);
    buf_free(&w->temp_path);
    free(w);
}

/* Waits for an exclusive flock on dir; the descriptor stays in w. */
static int lock_directory(struct table_db_writer *w, const char *dir,
                          struct buf *error)
{
    w->lock_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (w->lock_fd < 0) {
        (void)buf_printf(error, "%s: %s", dir, strerror(errno));
        return -1;
    }
    while (flock(w->lock_fd, LOCK_EX) != 0) {
        if (errno == EINTR)
            continue;
        (void)buf_printf(error, "%s: cannot lock: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* The mode of the existing FILE.db, or 0644 when there is none. */
static int new_file_mode(const char *db_path, mode_t *mode, struct buf *error)
{
    struct stat st;
    if (stat(db_path, &st) == 0) {
        *mode = st.st_mode & 07777;
        return 0;
    }
    if (errno == ENOENT) {
        *mode = 0644;
        return 0;
    }
    (void)buf_printf(error, "%s: %s", db_path, strerror(errno));
    return -1;
}

static size_t writer_cache_size(size_t expected)
{
    if (expected >= WRITER_CACHE_MAX / WRITER_CACHE_PER_ENTRY)
        return WRITER_CACHE_MAX;
    size_t cache = expected * WRITER_CACHE_PER_ENTRY;
    return cache > WRITER_CACHE_MIN ? cache : WRITER_CACHE_MIN;
}

/* Cache, page size, page checksums (so that a damaged page gives an error
 * instead of wild reads), and for hash the expected size.  0 or a Berkeley
 * DB error. */
static int configure_new_db(DB *db, DBTYPE type, size_t expected)
{
    size_t cache = writer_cache_size(expected);
    int ret = db->set_cachesize(db, (u_int32_t)(cache >> 30),
                                (u_int32_t)(cache & ((1u << 30) - 1)), 1);
    if (ret == 0)
        ret = db->set_pagesize(db, WRITER_PAGE_SIZE);
    if (ret == 0)
        ret = db->set_flags(db, DB_CHKSUM);
    if (ret == 0 && type == DB_HASH && expected > 0)
        ret = db->set_h_nelem(db, expected < UINT32_MAX ? (u_int32_t)expected
                                                        : UINT32_MAX);
    return ret;
}

static int open_new_db(struct table_db_writer *w, DBTYPE type,
                       size_t expected, mode_t mode, struct buf *error)
{
    const char *path = buf_cstr(&w->temp_path);
    int ret = db_create(&w->db, NULL, 0);
    if (ret != 0) {
        w->db = NULL;
        (void)buf_printf(error, "%s: db_create: %s", path, db_strerror(ret));
        return -1;
    }
    w->db->set_errcall(w->db, db_message);
    w->db->set_errpfx(w->db, path);
    if ((ret = configure_new_db(w->db, type, expected)) != 0 ||
        (ret = w->db->open(w->db, NULL, path, NULL, type,
                           DB_CREATE | DB_EXCL, (int)mode)) != 0) {
        (void)buf_printf(error, "%s: cannot create: %s", path,
                         db_strerror(ret));
        return -1;
    }
    int fd = -1;
    if ((ret = w->db->fd(w->db, &fd)) != 0) {
        (void)buf_printf(error, "%s: %s", path, db_strerror(ret));
        return -1;
    }
    if (fchmod(fd, mode) != 0) { /* the mode asked for, whatever the umask */
        (void)buf_printf(error, "%s: chmod: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

struct copy_context {
    DB *to;
    int ret;
};

static int copy_entry(void *ctx, const char *key, size_t key_len,
                      const char *value, size_t value_len)
{
    struct copy_context *copy = ctx;
    DBT k, v;
    set_dbt(&k, key, key_len);
    set_dbt(&v, value, value_len);
    copy->ret = copy->to->put(copy->to, NULL, &k, &v, 0);
    return copy->ret != 0;
}

/* Copies every entry of the current FILE.db, if there is one.  An empty
 * file (a placeholder made to set the mode) has no entries. */
static int copy_existing_entries(struct table_db_writer *w, DBTYPE type,
                                 struct buf *error)
{
    const char *path = buf_cstr(&w->db_path);
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        (void)buf_printf(error, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (S_ISREG(st.st_mode) && st.st_size == 0)
        return 0;
    DB *old = NULL;
    if (open_db_file(path, type, READER_CACHE_MAX, &old, &st, error) != 0)
        return -1;
    struct copy_context copy = {.to = w->db, .ret = 0};
    int ret = walk_db(old, copy_entry, &copy);
    if (ret == 0)
        ret = copy.ret;
    close_db_quietly(old);
    if (ret != 0) {
        (void)buf_printf(error, "%s: copying the entries: %s", path,
                         db_strerror(ret));
        return -1;
    }
    return 0;
}

/* A unique name for the new file, in the directory of FILE.db.  The name
 * is made by creating a file, which is removed again at once: Berkeley DB
 * creates the file itself (DB_EXCL), and builds in the directory wait for
 * each other, so no one else takes the name in between. */
static int reserve_temp_name(struct table_db_writer *w, const char *dir,
                             const char *prefix, struct buf *error)
{
    int fd = safe_file_create_temp(dir, prefix, 0600, &w->temp_path);
    if (fd < 0) {
        (void)buf_printf(error, "%s: cannot create a temporary file: %s",
                         dir, strerror(errno));
        buf_reset(&w->temp_path); /* a name this writer did not create */
        return -1;
    }
    if (close(fd) != 0 || unlink(buf_cstr(&w->temp_path)) != 0) {
        (void)buf_printf(error, "%s: %s", buf_cstr(&w->temp_path),
                         strerror(errno));
        return -1;
    }
    return 0;
}

static int start_writer(struct table_db_writer *w, DBTYPE type,
                        size_t expected, int copy_existing, struct buf *error)
{
    const char *db_path = buf_cstr(&w->db_path);
    struct buf dir, prefix;
    buf_init(&dir, PATH_MAX);
    buf_init(&prefix, PATH_MAX);
    int rc = -1;
    mode_t mode = 0644;
    if (parent_dir(db_path, &dir) != 0 ||
        buf_printf(&prefix, ".%s.tmp.", base_name(db_path)) != 0)
        (void)buf_printf(error, "%s: %s", db_path, strerror(errno));
    else if (lock_directory(w, buf_cstr(&dir), error) != 0 ||
             new_file_mode(db_path, &mode, error) != 0)
        ;
    else if (reserve_temp_name(w, buf_cstr(&dir), buf_cstr(&prefix),
                               error) != 0)
        ;
    else if (open_new_db(w, type, expected, mode, error) == 0 &&
             (!copy_existing || copy_existing_entries(w, type, error) == 0))
        rc = 0;
    buf_free(&dir);
    buf_free(&prefix);
    return rc;
}

struct table_db_writer *table_db_writer_create(const char *db_path,
                                               const char *type,
                                               size_t expected,
                                               int copy_existing,
                                               struct buf *error)
{
    DBTYPE db_type;
    if (db_type_by_name(type, &db_type) != 0) {
        (void)buf_printf(error, "%s: unsupported database type \"%s\" "
                                "(hash, btree)", db_path, type);
        return NULL;
    }
    struct table_db_writer *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        (void)buf_printf(error, "%s: %s", db_path, strerror(ENOMEM));
        return NULL;
    }
    w->lock_fd = -1;
    buf_init(&w->db_path, PATH_MAX);
    buf_init(&w->temp_path, PATH_MAX);
    if (buf_set_str(&w->db_path, db_path) != 0) {
        (void)buf_printf(error, "%s: %s", db_path, strerror(errno));
        free_writer(w);
        return NULL;
    }
    if (start_writer(w, db_type, expected, copy_existing, error) != 0) {
        table_db_writer_abort(w);
        return NULL;
    }
    return w;
}

/* How much of a key an error message shows. */
static int shown_length(size_t key_len)
{
    return key_len < 100 ? (int)key_len : 100;
}

static int check_sizes(struct table_db_writer *w, size_t key_len,
                       size_t value_len, struct buf *error)
{
    if (key_len > TABLE_KEY_MAX) {
        (void)buf_printf(error, "%s: key longer than %d bytes",
                         buf_cstr(&w->db_path), TABLE_KEY_MAX);
        return -1;
    }
    if (value_len > TABLE_VALUE_MAX) {
        (void)buf_printf(error, "%s: value longer than %d bytes",
                         buf_cstr(&w->db_path), TABLE_VALUE_MAX);
        return -1;
    }
    return 0;
}

int table_db_writer_put(struct table_db_writer *w, const char *key,
                        size_t key_len, const char *value, size_t value_len,
                        int replace, struct buf *error)
{
    if (check_sizes(w, key_len, value_len, error) != 0)
        return -1;
    DBT k, v;
    set_dbt(&k, key, key_len);
    set_dbt(&v, value, value_len);
    int ret = w->db->put(w->db, NULL, &k, &v, replace ? 0 : DB_NOOVERWRITE);
    if (ret == DB_KEYEXIST)
        return 1;
    if (ret != 0) {
        (void)buf_printf(error, "%s: cannot store \"%.*s\": %s",
                         buf_cstr(&w->temp_path), shown_length(key_len), key,
                         db_strerror(ret));
        return -1;
    }
    return 0;
}

int table_db_writer_delete(struct table_db_writer *w, const char *key,
                           size_t key_len, struct buf *error)
{
    if (check_sizes(w, key_len, 0, error) != 0)
        return -1;
    DBT k;
    set_dbt(&k, key, key_len);
    int ret = w->db->del(w->db, NULL, &k, 0);
    if (ret == DB_NOTFOUND)
        return 1;
    if (ret != 0) {
        (void)buf_printf(error, "%s: cannot delete \"%.*s\": %s",
                         buf_cstr(&w->temp_path), shown_length(key_len), key,
                         db_strerror(ret));
        return -1;
    }
    return 0;
}

int table_db_writer_commit(struct table_db_writer *w, struct buf *error)
{
    int ret = w->db->close(w->db, 0);
    w->db = NULL;
    if (ret != 0) {
        (void)buf_printf(error, "%s: %s", buf_cstr(&w->temp_path),
                         db_strerror(ret));
        table_db_writer_abort(w);
        return -1;
    }
    int fd = open(buf_cstr(&w->temp_path), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        (void)buf_printf(error, "%s: %s", buf_cstr(&w->temp_path),
                         strerror(errno));
        table_db_writer_abort(w);
        return -1;
    }
    if (safe_file_commit(fd, buf_cstr(&w->temp_path),
                         buf_cstr(&w->db_path)) != 0) {
        (void)buf_printf(error, "%s: cannot replace with %s: %s",
                         buf_cstr(&w->db_path), buf_cstr(&w->temp_path),
                         strerror(errno));
        free_writer(w); /* safe_file_commit removed the temporary file */
        return -1;
    }
    free_writer(w);
    return 0;
}

void table_db_writer_abort(struct table_db_writer *w)
{
    if (w == NULL)
        return;
    if (w->db != NULL)
        close_db_quietly(w->db);
    if (w->temp_path.len > 0 && unlink(buf_cstr(&w->temp_path)) != 0 &&
        errno != ENOENT)
        log_warn("%s: cannot remove: %s", buf_cstr(&w->temp_path),
                 strerror(errno));
    free_writer(w);
}
