/*
 * map - what the parts of postino-map share: the options, the table names
 * given on the command line, the exit codes, and the buffered I/O of the
 * query paths.
 *
 *   map_build.c   builds FILE.db from FILE (table or aliases syntax), -i, -d
 *   map_query.c   -q KEY, -q -, -s
 *   map_io.c      big-buffer line reader and writer (no stdio)
 *   postino_map.c options, main.cf, newaliases, dispatch
 */
#ifndef POSTINO_MAP_H
#define POSTINO_MAP_H

#include <stddef.h>

#include "buf.h"

/* Exit codes, as documented in docs/TABLES.md. */
enum {
    MAP_EXIT_OK = 0,     /* done; found; deleted */
    MAP_EXIT_NO = 1,     /* not found; syntax errors; usage */
    MAP_EXIT_ERROR = 2,  /* cannot read, write, open: nothing was done */
};

struct map_options {
    int keep_case;  /* -f: keys are not folded to lower case */
    int alias_mode; /* -a, postalias, newaliases: aliases(5) syntax */
};

/* "TYPE:NAME" as given, or "NAME" alone meaning hash:NAME. */
struct map_spec {
    char type[32];
    const char *name; /* points into the argument */
    struct buf full;  /* "TYPE:NAME", for table_open */
};

/* Fills spec from arg.  0, or -1 (logged) when arg is unusable. */
int map_spec_parse(const char *arg, struct map_spec *spec);
void map_spec_free(struct map_spec *spec);
/* 1 for hash and btree, the types that postino-map builds. */
int map_spec_is_db(const struct map_spec *spec);

/* Logs why table_open failed, unless the driver already logged it: the
 * drivers that read a file (pcre, texthash) log every "FILE:LINE: ..."
 * error themselves and also put the first one in error. */
void map_log_open_error(const struct map_spec *spec, const struct buf *error);

/* Folds ASCII upper case to lower case into out unless keep_case.  0 or
 * -1 (too long). */
int map_fold_key(const struct map_options *opt, const char *key, size_t len,
                 struct buf *out);

/* Builds spec from its source file.  MAP_EXIT_*. */
int map_build(const struct map_options *opt, const struct map_spec *spec);
/* -i: adds entries from standard input, replacing existing keys. */
int map_insert(const struct map_options *opt, const struct map_spec *spec);
/* -d KEY ("-": keys from standard input, one a line). */
int map_delete(const struct map_options *opt, const char *key,
               const struct map_spec *specs, int count);

/* -q KEY: the first table that has key prints its value. */
int map_query(const struct map_options *opt, const char *key,
              const struct map_spec *specs, int count);
/* -q -: keys from standard input; "key<TAB>value" per found key. */
int map_query_stdin(const struct map_options *opt,
                    const struct map_spec *specs, int count);
/* -s: every entry of every table, "key<TAB>value". */
int map_list(const struct map_options *opt, const struct map_spec *specs,
             int count);

/* Buffered output to a descriptor. */
struct map_out {
    int fd;
    char *data;
    size_t len;
    size_t cap;
    int failed; /* a write failed: errno was logged once */
};
int map_out_init(struct map_out *out, int fd, size_t cap);
int map_out_put(struct map_out *out, const void *data, size_t len);
int map_out_flush(struct map_out *out);
/* Flushes and frees; returns -1 when any write failed. */
int map_out_finish(struct map_out *out);

/* Lines from a descriptor, read in big chunks; each line is handed out
 * NUL-terminated in place, without its newline (and a trailing CR). */
struct map_in {
    int fd;
    char *data;
    size_t cap;
    size_t start; /* next unread byte */
    size_t end;   /* end of the bytes read */
    int eof;
    int skipping; /* dropping the rest of an over-long line */
};
int map_in_init(struct map_in *in, int fd, size_t cap);
/* 1 with a line, 0 at the end, -1 on a read error (logged).  Lines longer
 * than cap are reported (logged) and skipped. */
int map_in_next(struct map_in *in, char **line, size_t *len);
void map_in_free(struct map_in *in);

#endif
