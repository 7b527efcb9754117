/*
 * map_io - the plumbing of postino-map: "TYPE:NAME" arguments, key
 * folding, and the big-buffer line reader and writer that the query paths
 * use instead of stdio (see map.h).
 *
 *     struct map_in in;  map_in_init(&in, 0, 1 << 20);
 *     struct map_out out; map_out_init(&out, 1, 1 << 20);
 *     while (map_in_next(&in, &line, &len) == 1)
 *         map_out_put(&out, line, len);
 *     map_out_finish(&out); map_in_free(&in);
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "map.h"
#include "safe_file.h"
#include "table.h"

static int is_type_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* Length of the "TYPE" in "TYPE:NAME", or 0 when arg has no type prefix
 * (no ':', or characters before it that a type name cannot hold, as in a
 * path "/etc/a:b"). */
static size_t type_length(const char *arg)
{
    const char *colon = strchr(arg, ':');
    if (colon == NULL || colon == arg)
        return 0;
    for (const char *c = arg; c < colon; c++)
        if (!is_type_char(*c))
            return 0;
    return (size_t)(colon - arg);
}

int map_spec_parse(const char *arg, struct map_spec *spec)
{
    size_t type_len = type_length(arg);
    buf_init(&spec->full, PATH_MAX + sizeof(spec->type));
    if (type_len >= sizeof(spec->type)) {
        log_error("\"%s\": table type name too long", arg);
        return -1;
    }
    if (type_len == 0) {
        memcpy(spec->type, "hash", 5);
        spec->name = arg;
    } else {
        memcpy(spec->type, arg, type_len);
        spec->type[type_len] = '\0';
        spec->name = arg + type_len + 1;
    }
    if (spec->name[0] == '\0') {
        log_error("\"%s\": no table name after the type", arg);
        return -1;
    }
    if (buf_printf(&spec->full, "%s:%s", spec->type, spec->name) != 0) {
        log_error("\"%s\": %s", arg, strerror(errno));
        return -1;
    }
    return 0;
}

void map_spec_free(struct map_spec *spec)
{
    buf_free(&spec->full);
}

int map_spec_is_db(const struct map_spec *spec)
{
    return strcmp(spec->type, "hash") == 0 || strcmp(spec->type, "btree") == 0;
}

void map_log_open_error(const struct map_spec *spec, const struct buf *error)
{
    const char *text = buf_cstr(error);
    size_t name_len = strlen(spec->name);
    if (strncmp(text, spec->name, name_len) == 0 && text[name_len] == ':' &&
        text[name_len + 1] >= '0' && text[name_len + 1] <= '9')
        return;
    log_error("%s", text);
}

int map_fold_key(const struct map_options *opt, const char *key, size_t len,
                 struct buf *out)
{
    if (buf_set(out, key, len) != 0)
        return -1;
    if (opt->keep_case)
        return 0;
    char *s = out->data;
    for (size_t i = 0; i < len; i++)
        if (s[i] >= 'A' && s[i] <= 'Z')
            s[i] = (char)(s[i] - 'A' + 'a');
    return 0;
}

/* ---------------------------------------------------------------- output */

int map_out_init(struct map_out *out, int fd, size_t cap)
{
    out->fd = fd;
    out->len = 0;
    out->cap = cap;
    out->failed = 0;
    out->data = malloc(cap);
    if (out->data == NULL) {
        log_error("output buffer: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static int write_out(struct map_out *out, const void *data, size_t len)
{
    if (out->failed)
        return -1;
    if (safe_file_write_all(out->fd, data, len) != 0) {
        log_error("write to the output: %s", strerror(errno));
        out->failed = 1;
        return -1;
    }
    return 0;
}

int map_out_flush(struct map_out *out)
{
    size_t len = out->len;
    out->len = 0;
    return len > 0 ? write_out(out, out->data, len) : (out->failed ? -1 : 0);
}

int map_out_put(struct map_out *out, const void *data, size_t len)
{
    if (len > out->cap - out->len && map_out_flush(out) != 0)
        return -1;
    if (len >= out->cap)
        return write_out(out, data, len);
    memcpy(out->data + out->len, data, len);
    out->len += len;
    return 0;
}

int map_out_finish(struct map_out *out)
{
    int rc = map_out_flush(out);
    free(out->data);
    out->data = NULL;
    return rc;
}

/* ----------------------------------------------------------------- input */

int map_in_init(struct map_in *in, int fd, size_t cap)
{
    in->fd = fd;
    in->cap = cap;
    in->start = 0;
    in->end = 0;
    in->eof = 0;
    in->skipping = 0;
    in->data = malloc(cap + 1); /* + 1: the NUL after a last line */
    if (in->data == NULL) {
        log_error("input buffer: %s", strerror(errno));
        return -1;
    }
    return 0;
}

void map_in_free(struct map_in *in)
{
    free(in->data);
    in->data = NULL;
}

/* Moves the unread bytes to the front and reads more.  0, or -1. */
static int fill(struct map_in *in)
{
    size_t left = in->end - in->start;
    if (in->start > 0 && left > 0)
        memmove(in->data, in->data + in->start, left);
    in->start = 0;
    in->end = left;
    for (;;) {
        ssize_t n = read(in->fd, in->data + in->end, in->cap - in->end);
        if (n > 0) {
            in->end += (size_t)n;
            return 0;
        }
        if (n == 0) {
            in->eof = 1;
            return 0;
        }
        if (errno != EINTR) {
            log_error("read from the input: %s", strerror(errno));
            return -1;
        }
    }
}

/* Hands out the line at start..stop (exclusive), consuming through
 * next. */
static int take_line(struct map_in *in, size_t stop, size_t next, char **line,
                     size_t *len)
{
    char *s = in->data + in->start;
    size_t n = stop - in->start;
    if (n > 0 && s[n - 1] == '\r')
        n--;
    s[n] = '\0';
    *line = s;
    *len = n;
    in->start = next;
    return 1;
}

int map_in_next(struct map_in *in, char **line, size_t *len)
{
    for (;;) {
        char *s = in->data + in->start;
        char *nl = memchr(s, '\n', in->end - in->start);
        if (nl != NULL) {
            size_t stop = (size_t)(nl - in->data);
            if (!in->skipping)
                return take_line(in, stop, stop + 1, line, len);
            in->skipping = 0;
            in->start = stop + 1;
            continue;
        }
        if (in->eof) {
            if (in->start == in->end || in->skipping)
                return 0;
            return take_line(in, in->end, in->end, line, len);
        }
        if (in->start == 0 && in->end == in->cap) {
            if (!in->skipping)
                log_warn("input line longer than %zu bytes skipped", in->cap);
            in->skipping = 1;
            in->start = in->end;
        }
        if (fill(in) != 0)
            return -1;
    }
}
