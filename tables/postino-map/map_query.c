/*
 * map_query - postino-map's read side: -q KEY, -q - (keys from standard
 * input) and -s (list every entry), through table.h, so that every table
 * type answers exactly as the daemons will see it.
 *
 *     rc = map_query_stdin(&opt, specs, count);   // MAP_EXIT_*
 *
 * The -q - path is the batch path: standard input is read in 1 MiB chunks
 * and split with memchr, each key is looked up in place (NUL-terminated in
 * the input buffer), and "key<TAB>value" lines collect in one 1 MiB output
 * buffer.  Nothing is allocated per key.  -q - and -s open their tables
 * with TABLE_FLAG_BULK, so that a Berkeley DB table keeps most of its file
 * in memory instead of reading a page for every key.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "map.h"
#include "table.h"

#define MAP_IO_BUFFER (1024 * 1024)

/* The tables of one query, open, with the buffers their lookups share. */
struct query {
    struct table **tables;
    int count;
    struct buf value;
    struct buf error;
};

/* bulk: many lookups or a listing to come, so the tables may keep more
 * of their files in memory. */
static unsigned table_flags(const struct map_options *opt, int bulk)
{
    return (opt->keep_case ? TABLE_FLAG_KEEP_CASE : 0) |
           (bulk ? TABLE_FLAG_BULK : 0);
}

static void query_close(struct query *q)
{
    for (int i = 0; i < q->count; i++)
        table_close(q->tables[i]);
    free(q->tables);
    buf_free(&q->value);
    buf_free(&q->error);
}

/* Opens every table.  0, or -1 (logged; q is then freed). */
static int query_open(struct query *q, const struct map_options *opt,
                      const struct map_spec *specs, int count, int bulk)
{
    q->count = 0;
    buf_init(&q->value, TABLE_VALUE_MAX);
    buf_init(&q->error, 4096);
    q->tables = calloc((size_t)count, sizeof(*q->tables));
    if (q->tables == NULL) {
        log_error("out of memory");
        query_close(q);
        return -1;
    }
    for (int i = 0; i < count; i++) {
        buf_reset(&q->error);
        q->tables[i] = table_open(buf_cstr(&specs[i].full),
                                  table_flags(opt, bulk),
                                  &q->error);
        if (q->tables[i] == NULL) {
            map_log_open_error(&specs[i], &q->error);
            query_close(q);
            return -1;
        }
        q->count = i + 1;
    }
    return 0;
}

/* Looks key up in each table in turn: TABLE_FOUND (value in q->value),
 * TABLE_NOT_FOUND or TABLE_ERROR (logged). */
static int query_lookup(struct query *q, const char *key)
{
    for (int i = 0; i < q->count; i++) {
        int r = table_lookup(q->tables[i], key, &q->value, &q->error);
        if (r == TABLE_NOT_FOUND)
            continue;
        if (r == TABLE_ERROR) {
            log_error("%s", buf_cstr(&q->error));
            buf_reset(&q->error);
        }
        return r;
    }
    return TABLE_NOT_FOUND;
}

int map_query(const struct map_options *opt, const char *key,
              const struct map_spec *specs, int count)
{
    struct query q;
    if (query_open(&q, opt, specs, count, 0) != 0)
        return MAP_EXIT_ERROR;
    int r = query_lookup(&q, key);
    int rc = r == TABLE_FOUND ? MAP_EXIT_OK
           : r == TABLE_NOT_FOUND ? MAP_EXIT_NO : MAP_EXIT_ERROR;
    if (r == TABLE_FOUND) {
        struct map_out out;
        if (map_out_init(&out, STDOUT_FILENO, q.value.len + 1) != 0 ||
            map_out_put(&out, q.value.data, q.value.len) != 0 ||
            map_out_put(&out, "\n", 1) != 0)
            rc = MAP_EXIT_ERROR;
        if (out.data != NULL && map_out_finish(&out) != 0)
            rc = MAP_EXIT_ERROR;
    }
    query_close(&q);
    return rc;
}

/* One key of the batch: "key<TAB>value" when found.  Returns the lookup's
 * result, or TABLE_ERROR when the output failed. */
static int batch_key(struct query *q, struct map_out *out, const char *key,
                     size_t len)
{
    if (len > TABLE_KEY_MAX) {
        log_warn("key longer than %d bytes skipped: \"%.40s...\"",
                 TABLE_KEY_MAX, key);
        return TABLE_NOT_FOUND;
    }
    int r = query_lookup(q, key);
    if (r != TABLE_FOUND)
        return r;
    if (map_out_put(out, key, len) != 0 || map_out_put(out, "\t", 1) != 0 ||
        map_out_put(out, q->value.data, q->value.len) != 0 ||
        map_out_put(out, "\n", 1) != 0)
        return TABLE_ERROR;
    return TABLE_FOUND;
}

static int batch(struct query *q, struct map_in *in, struct map_out *out)
{
    int found = 0;
    char *key;
    size_t len;
    int more;
    while ((more = map_in_next(in, &key, &len)) == 1) {
        if (len == 0)
            continue;
        int r = batch_key(q, out, key, len);
        if (r == TABLE_ERROR)
            return MAP_EXIT_ERROR;
        found |= r == TABLE_FOUND;
    }
    if (more < 0)
        return MAP_EXIT_ERROR;
    return found ? MAP_EXIT_OK : MAP_EXIT_NO;
}

int map_query_stdin(const struct map_options *opt,
                    const struct map_spec *specs, int count)
{
    struct query q;
    if (query_open(&q, opt, specs, count, 1) != 0)
        return MAP_EXIT_ERROR;
    struct map_in in;
    struct map_out out;
    int rc = MAP_EXIT_ERROR;
    if (map_in_init(&in, STDIN_FILENO, MAP_IO_BUFFER) == 0) {
        if (map_out_init(&out, STDOUT_FILENO, MAP_IO_BUFFER) == 0) {
            rc = batch(&q, &in, &out);
            if (map_out_finish(&out) != 0)
                rc = MAP_EXIT_ERROR;
        }
        map_in_free(&in);
    }
    query_close(&q);
    return rc;
}

static int list_entry(void *ctx, const char *key, size_t key_len,
                      const char *value, size_t value_len)
{
    struct map_out *out = ctx;
    if (map_out_put(out, key, key_len) != 0 || map_out_put(out, "\t", 1) != 0 ||
        map_out_put(out, value, value_len) != 0 ||
        map_out_put(out, "\n", 1) != 0)
        return 1;
    return 0;
}

int map_list(const struct map_options *opt, const struct map_spec *specs,
             int count)
{
    struct query q;
    if (query_open(&q, opt, specs, count, 1) != 0)
        return MAP_EXIT_ERROR;
    struct map_out out;
    if (map_out_init(&out, STDOUT_FILENO, MAP_IO_BUFFER) != 0) {
        query_close(&q);
        return MAP_EXIT_ERROR;
    }
    int rc = MAP_EXIT_OK;
    for (int i = 0; i < q.count && rc == MAP_EXIT_OK; i++) {
        if (table_iterate(q.tables[i], list_entry, &out, &q.error) != 0) {
            log_error("%s", buf_cstr(&q.error));
            rc = MAP_EXIT_ERROR;
        } else if (out.failed) {
            rc = MAP_EXIT_ERROR;
        }
    }
    if (map_out_finish(&out) != 0)
        rc = MAP_EXIT_ERROR;
    query_close(&q);
    return rc;
}
