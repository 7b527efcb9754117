/*
 * map_build - postino-map's write side: builds FILE.db from FILE (the
 * "key value" syntax of table_source.h, or aliases(5) in alias mode), adds
 * entries from standard input (-i) and deletes keys (-d).
 *
 *     rc = map_build(&opt, &spec);     // MAP_EXIT_*
 *
 * Every change goes through a table_db writer: a new file is built next to
 * FILE.db and renamed over it only when everything went well, so on any
 * error FILE.db stays exactly as it was and readers never see half a table.
 * Types that have no FILE.db (pcre, texthash, inline, static, unix) are
 * only opened, so that their errors are reported.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alias_source.h"
#include "log.h"
#include "map.h"
#include "table.h"
#include "table_db.h"
#include "table_source.h"

/* Bytes of source per entry, to size a new table from its source. */
#define MAP_BYTES_PER_ENTRY 32
#define MAP_STDIN_NAME "/dev/stdin"

/* What the source callbacks need. */
struct build {
    const struct map_options *opt;
    struct table_db_writer *writer;
    struct buf key;   /* the folded key */
    struct buf error; /* the writer's last message */
    int replace;      /* -i: a later entry replaces an earlier one */
    int entries;
    int duplicates;
    int write_failed; /* the writer failed: not a syntax error */
};

static void build_init(struct build *b, const struct map_options *opt,
                       int replace)
{
    memset(b, 0, sizeof(*b));
    b->opt = opt;
    b->replace = replace;
    buf_init(&b->key, TABLE_KEY_MAX);
    buf_init(&b->error, 4096);
}

static void build_free(struct build *b)
{
    table_db_writer_abort(b->writer); /* NULL after a commit */
    buf_free(&b->key);
    buf_free(&b->error);
}

/* The callback of both source parsers: one entry into the new table. */
static int build_put(void *ctx, const char *key, size_t key_len,
                     const char *value, size_t value_len, const char *file,
                     int line)
{
    struct build *b = ctx;
    if (map_fold_key(b->opt, key, key_len, &b->key) != 0) {
        log_error("%s:%d: key longer than %d bytes", file, line,
                  TABLE_KEY_MAX);
        b->write_failed = 1;
        return -1;
    }
    buf_reset(&b->error);
    int r = table_db_writer_put(b->writer, b->key.data, b->key.len, value,
                                value_len, b->replace, &b->error);
    if (r < 0) {
        log_error("%s:%d: %s", file, line, buf_cstr(&b->error));
        b->write_failed = 1;
        return -1;
    }
    if (r == 1) {
        log_warn("%s:%d: duplicate entry \"%.*s\" (first one kept)", file,
                 line, (int)key_len, key);
        b->duplicates++;
    }
    b->entries++;
    return 0;
}

static int db_path_of(const struct map_spec *spec, struct buf *path)
{
    buf_init(path, PATH_MAX);
    if (buf_printf(path, "%s.db", spec->name) != 0) {
        log_error("%s.db: %s", spec->name, strerror(errno));
        return -1;
    }
    return 0;
}

/* Starts the writer of spec's FILE.db.  0, or -1 (logged). */
static int build_start(struct build *b, const struct map_spec *spec,
                       const char *db_path, size_t expected, int copy)
{
    b->writer = table_db_writer_create(db_path, spec->type, expected, copy,
                                       &b->error);
    if (b->writer == NULL) {
        log_error("%s", buf_cstr(&b->error));
        return -1;
    }
    return 0;
}

/* Reads source (a file, or MAP_STDIN_NAME) into the writer: MAP_EXIT_*. */
static int build_read(struct build *b, const char *source)
{
    buf_reset(&b->error);
    int errors = b->opt->alias_mode
                     ? alias_source_read(source, build_put, b, &b->error)
                     : table_source_read(source, build_put, b, &b->error);
    if (errors < 0) {
        log_error("cannot read %s", buf_cstr(&b->error));
        return MAP_EXIT_ERROR;
    }
    if (b->write_failed)
        return MAP_EXIT_ERROR;
    if (errors > 0) {
        log_error("%s: %d error(s); the table was not changed", source,
                  errors);
        return MAP_EXIT_NO;
    }
    return MAP_EXIT_OK;
}

/* Renames the new table into place: MAP_EXIT_OK or MAP_EXIT_ERROR. */
static int build_commit(struct build *b)
{
    struct table_db_writer *w = b->writer;
    b->writer = NULL;
    buf_reset(&b->error);
    if (table_db_writer_commit(w, &b->error) != 0) {
        log_error("%s", buf_cstr(&b->error));
        return MAP_EXIT_ERROR;
    }
    return MAP_EXIT_OK;
}

/* The source must be a readable regular file before anything is touched. */
static int check_source(const char *path, struct stat *st)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        log_error("cannot open source %s: %s", path, strerror(errno));
        return -1;
    }
    int rc = fstat(fd, st);
    int saved = errno;
    (void)close(fd);
    if (rc != 0) {
        log_error("cannot stat source %s: %s", path, strerror(saved));
        return -1;
    }
    if (!S_ISREG(st->st_mode)) {
        log_error("source %s is not a regular file", path);
        return -1;
    }
    return 0;
}

/* pcre, texthash, inline, static, unix: nothing to build, but the table
 * must open (a bad pattern or line is reported with its position). */
static int build_nothing(const struct map_options *opt,
                         const struct map_spec *spec)
{
    struct stat st;
    int file_based = strcmp(spec->type, "pcre") == 0 ||
                     strcmp(spec->type, "texthash") == 0;
    if (file_based && check_source(spec->name, &st) != 0)
        return MAP_EXIT_ERROR;
    struct buf error;
    buf_init(&error, 4096);
    struct table *t = table_open(buf_cstr(&spec->full),
                                 opt->keep_case ? TABLE_FLAG_KEEP_CASE : 0,
                                 &error);
    if (t == NULL) {
        map_log_open_error(spec, &error);
        buf_free(&error);
        return MAP_EXIT_NO;
    }
    table_close(t);
    buf_free(&error);
    log_info("%s: nothing to build", spec->type);
    return MAP_EXIT_OK;
}

/*
 * FILE.db gives group and others no more than FILE does (a 0600 password
 * table gives a 0600 FILE.db), as postmap does.  The writer gives the new
 * file the mode of the current FILE.db, so that one is narrowed first, or,
 * when there is none yet, created empty with the narrower mode.  Returns
 * 0, 1 when it created that empty file, or -1 (logged).
 */
static int restrict_db_mode(const char *db_path, mode_t source_mode)
{
    mode_t deny = ~source_mode & 077;
    struct stat st;
    if (stat(db_path, &st) == 0) {
        if (!S_ISREG(st.st_mode) || (st.st_mode & deny) == 0)
            return 0;
        if (chmod(db_path, st.st_mode & 07777 & ~deny) == 0)
            return 0;
    } else if (errno == ENOENT) {
        if ((0644 & deny) == 0)
            return 0;
        int fd = open(db_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno == EEXIST)
            return 0; /* a concurrent build made it */
        if (fd >= 0 && fchmod(fd, 0644 & ~deny) == 0 && close(fd) == 0)
            return 1;
        if (fd >= 0) {
            (void)close(fd);
            (void)unlink(db_path);
        }
    }
    log_error("%s: %s", db_path, strerror(errno));
    return -1;
}

/* The empty FILE.db of restrict_db_mode goes when the build failed. */
static void remove_placeholder(const char *db_path)
{
    struct stat st;
    if (stat(db_path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0)
        (void)unlink(db_path);
}

int map_build(const struct map_options *opt, const struct map_spec *spec)
{
    if (!map_spec_is_db(spec))
        return build_nothing(opt, spec);
    struct stat st;
    if (check_source(spec->name, &st) != 0)
        return MAP_EXIT_ERROR;
    struct buf db_path;
    if (db_path_of(spec, &db_path) != 0) {
        buf_free(&db_path);
        return MAP_EXIT_ERROR;
    }
    int placeholder = restrict_db_mode(buf_cstr(&db_path), st.st_mode);
    if (placeholder < 0) {
        buf_free(&db_path);
        return MAP_EXIT_ERROR;
    }
    struct build b;
    build_init(&b, opt, 0);
    size_t expected = (size_t)st.st_size / MAP_BYTES_PER_ENTRY + 1;
    int rc = MAP_EXIT_ERROR;
    if (build_start(&b, spec, buf_cstr(&db_path), expected, 0) == 0 &&
        (rc = build_read(&b, spec->name)) == MAP_EXIT_OK)
        rc = build_commit(&b);
    if (rc != MAP_EXIT_OK && placeholder)
        remove_placeholder(buf_cstr(&db_path));
    if (rc == MAP_EXIT_OK)
        log_debug("%s: %d entries, %d duplicate(s)", buf_cstr(&db_path),
                  b.entries, b.duplicates);
    build_free(&b);
    buf_free(&db_path);
    return rc;
}

static int need_db_type(const struct map_spec *spec, const char *what)
{
    if (map_spec_is_db(spec))
        return 0;
    log_error("%s: %s works on hash and btree tables only",
              buf_cstr(&spec->full), what);
    return -1;
}

/* Entries expected in an existing FILE.db, from its size. */
static size_t existing_entries(const char *db_path)
{
    struct stat st;
    if (stat(db_path, &st) != 0)
        return 0;
    return (size_t)st.st_size / (2 * MAP_BYTES_PER_ENTRY) + 1;
}

int map_insert(const struct map_options *opt, const struct map_spec *spec)
{
    if (need_db_type(spec, "-i") != 0)
        return MAP_EXIT_ERROR;
    struct buf db_path;
    if (db_path_of(spec, &db_path) != 0) {
        buf_free(&db_path);
        return MAP_EXIT_ERROR;
    }
    struct build b;
    build_init(&b, opt, 1);
    int rc = MAP_EXIT_ERROR;
    if (build_start(&b, spec, buf_cstr(&db_path),
                    existing_entries(buf_cstr(&db_path)), 1) == 0 &&
        (rc = build_read(&b, MAP_STDIN_NAME)) == MAP_EXIT_OK)
        rc = build_commit(&b);
    build_free(&b);
    buf_free(&db_path);
    return rc;
}

/* The keys to delete: the one given, or the lines of standard input. */
struct key_list {
    struct buf text; /* the keys, each followed by a NUL */
    size_t count;
};

static int read_keys(const char *key, struct key_list *keys)
{
    buf_init(&keys->text, BUF_LIMIT_MAX);
    keys->count = 0;
    if (strcmp(key, "-") != 0) {
        keys->count = 1;
        return buf_append(&keys->text, key, strlen(key) + 1);
    }
    struct map_in in;
    if (map_in_init(&in, STDIN_FILENO, 1024 * 1024) != 0)
        return -1;
    char *line;
    size_t len;
    int more;
    while ((more = map_in_next(&in, &line, &len)) == 1) {
        if (len == 0)
            continue;
        if (buf_append(&keys->text, line, len + 1) != 0) {
            more = -1;
            break;
        }
        keys->count++;
    }
    map_in_free(&in);
    return more < 0 ? -1 : 0;
}

/* Deletes every key from one table: MAP_EXIT_OK when at least one was
 * there (and the table was rewritten), MAP_EXIT_NO when none. */
static int delete_from(const struct map_options *opt,
                       const struct map_spec *spec,
                       const struct key_list *keys)
{
    struct buf db_path;
    struct stat st;
    if (db_path_of(spec, &db_path) != 0 ||
        stat(buf_cstr(&db_path), &st) != 0) {
        log_error("%s: %s", buf_cstr(&db_path), strerror(errno));
        buf_free(&db_path);
        return MAP_EXIT_ERROR;
    }
    struct build b;
    build_init(&b, opt, 0);
    int rc = MAP_EXIT_ERROR;
    if (build_start(&b, spec, buf_cstr(&db_path),
                    existing_entries(buf_cstr(&db_path)), 1) == 0) {
        rc = MAP_EXIT_NO;
        const char *k = keys->text.data, *end = k + keys->text.len;
        for (; k < end && rc != MAP_EXIT_ERROR; k += strlen(k) + 1) {
            int r = map_fold_key(opt, k, strlen(k), &b.key) != 0 ? 1
                  : table_db_writer_delete(b.writer, b.key.data, b.key.len,
                                           &b.error);
            if (r < 0)
                log_error("%s", buf_cstr(&b.error));
            rc = r < 0 ? MAP_EXIT_ERROR : r == 0 ? MAP_EXIT_OK : rc;
        }
        if (rc == MAP_EXIT_OK)
            rc = build_commit(&b);
    }
    build_free(&b);
    buf_free(&db_path);
    return rc;
}

int map_delete(const struct map_options *opt, const char *key,
               const struct map_spec *specs, int count)
{
    for (int i = 0; i < count; i++)
        if (need_db_type(&specs[i], "-d") != 0)
            return MAP_EXIT_ERROR;
    struct key_list keys;
    if (read_keys(key, &keys) != 0) {
        log_error("reading the keys: %s", strerror(errno));
        buf_free(&keys.text);
        return MAP_EXIT_ERROR;
    }
    int rc = MAP_EXIT_NO;
    for (int i = 0; i < count && rc != MAP_EXIT_ERROR; i++) {
        int r = delete_from(opt, &specs[i], &keys);
        if (r != MAP_EXIT_NO)
            rc = r;
    }
    buf_free(&keys.text);
    return rc;
}
