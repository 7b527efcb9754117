/*
 * line_source - splits a file, or text in memory, into logical lines
 * (continuations joined, comments and blank lines skipped) with their
 * FILE:LINE numbers, and reports NUL bytes, overlong lines and
 * continuations of nothing.  line_source.h has the rules and the flags.
 *
 * Usage: line_source_read_file() once, then line_source_parse() on the
 * buffer with a struct line_source naming the callback; or
 * line_source_parse_copy() for text that must stay as it is.
 *
 * Inside, a physical line is trimmed and either ignored, or opens a new
 * logical line at its place in the buffer, or has its text moved up behind
 * the open logical line.  The open logical line remembers the first line
 * on which it got a NUL byte and on which it got too long; once it has a
 * problem its text is no longer moved (it will never be handed out), only
 * its length is counted.
 */
#include "line_source.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "safe_file.h"

/* The logical line being collected, and how the read goes. */
struct scan {
    const struct line_source *src;
    int has_nul;    /* the text holds a NUL byte somewhere */
    int stopped;    /* the callback returned nonzero */
    char *start;    /* the open logical line; NULL: none */
    size_t len;
    int line;       /* its first physical line */
    int orphan;     /* it is continuation lines with nothing above them */
    int nul_where;  /* its first line with a NUL byte, or 0 */
    int long_where; /* the line on which it got too long, or 0 */
    int reported;   /* LINE_SOURCE_EACH_NUL: its problem was reported */
};

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static int has_flag(const struct scan *s, unsigned flag)
{
    return (s->src->flags & flag) != 0;
}

static int has_problem(const struct scan *s)
{
    return s->orphan || s->nul_where != 0 || s->long_where != 0;
}

static void call(struct scan *s, const struct line_source_line *l)
{
    if (s->src->fn(s->src->ctx, l) != 0)
        s->stopped = 1;
}

static void report(struct scan *s, enum line_source_problem problem,
                   int line, int where)
{
    struct line_source_line l = {
        .text = NULL, .len = 0, .line = line, .where = where,
        .problem = problem,
    };
    call(s, &l);
}

/* The first problem of the open logical line, in line order; on one line
 * a NUL byte comes first, then the orphan, then the length. */
static enum line_source_problem first_problem(const struct scan *s,
                                              int *where)
{
    if (s->long_where != 0 && has_flag(s, LINE_SOURCE_LENGTH_FIRST)) {
        *where = s->long_where;
        return LINE_SOURCE_TOO_LONG;
    }
    enum line_source_problem problem = LINE_SOURCE_OK;
    *where = 0;
    if (s->long_where != 0) {
        problem = LINE_SOURCE_TOO_LONG;
        *where = s->long_where;
    }
    if (s->orphan && (*where == 0 || s->line <= *where)) {
        problem = LINE_SOURCE_ORPHAN;
        *where = s->line;
    }
    if (s->nul_where != 0 && (*where == 0 || s->nul_where <= *where)) {
        problem = LINE_SOURCE_NUL;
        *where = s->nul_where;
    }
    return problem;
}

static void report_first_problem(struct scan *s)
{
    int where;
    enum line_source_problem problem = first_problem(s, &where);
    report(s, problem, s->line, where);
}

/* Hands out the open logical line, or its problem, and closes it. */
static void finish(struct scan *s)
{
    if (s->start == NULL)
        return;
    if (!has_problem(s)) {
        s->start[s->len] = '\0';
        struct line_source_line l = {
            .text = s->start, .len = s->len, .line = s->line,
            .where = s->line, .problem = LINE_SOURCE_OK,
        };
        call(s, &l);
    } else if (!s->reported) {
        report_first_problem(s);
    }
    s->start = NULL;
}

/* The slow part of note_problems(): something is wrong. */
static void note_new_problems(struct scan *s, int nul, int line_no)
{
    int had_problem = has_problem(s);
    if (nul && s->nul_where == 0)
        s->nul_where = line_no;
    if (s->len > s->src->max_len && s->long_where == 0)
        s->long_where = line_no;
    if (!has_flag(s, LINE_SOURCE_EACH_NUL))
        return;
    if (!s->reported && has_problem(s)) {
        report_first_problem(s);
        s->reported = 1;
    } else if (had_problem && nul) {
        report(s, LINE_SOURCE_NUL, s->line, line_no);
    }
}

/* Notes the problems that the piece on line_no brings; with
 * LINE_SOURCE_EACH_NUL reports them at once. */
static void note_problems(struct scan *s, int nul, int line_no)
{
    if (!nul && s->len <= s->src->max_len && !s->orphan)
        return; /* nothing new: the common case, kept cheap */
    note_new_problems(s, nul, line_no);
}

static void open_line(struct scan *s, char *text, size_t len, int line_no,
                      int orphan)
{
    s->start = text;
    s->len = len;
    s->line = line_no;
    s->orphan = orphan;
    s->nul_where = 0;
    s->long_where = 0;
    s->reported = 0;
}

/* Joins a continuation behind the open logical line with one space.  The
 * text always lies after the line, so memmove is safe. */
static void join(struct scan *s, const char *text, size_t len)
{
    if (!has_problem(s)) {
        s->start[s->len] = ' ';
        memmove(s->start + s->len + 1, text, len);
    }
    s->len += 1 + len;
}

static void continuation(struct scan *s, char *text, size_t len, int nul,
                         int line_no)
{
    if (s->start != NULL) {
        join(s, text, len);
        note_problems(s, nul, line_no);
        return;
    }
    if (!has_flag(s, LINE_SOURCE_ORPHAN_GROUP)) {
        report(s, LINE_SOURCE_ORPHAN, line_no, line_no);
        return;
    }
    open_line(s, text, len, line_no, 1);
    note_problems(s, nul, line_no);
}

/* One physical line, without its newline. */
static void physical_line(struct scan *s, char *p, size_t n, int line_no)
{
    size_t skip = 0;
    while (skip < n && is_blank(p[skip]))
        skip++;
    if (skip == n)
        return; /* blank */
    while (is_blank(p[n - 1]))
        n--;
    int nul = s->has_nul && memchr(p + skip, '\0', n - skip) != NULL;
    if (p[skip] == '#') {
        if (nul && has_flag(s, LINE_SOURCE_COMMENT_NUL))
            report(s, LINE_SOURCE_NUL, line_no, line_no);
        return;
    }
    if (skip > 0) {
        continuation(s, p + skip, n - skip, nul, line_no);
        return;
    }
    finish(s);
    open_line(s, p, n, line_no, 0);
    note_problems(s, nul, line_no);
}

int line_source_parse(const struct line_source *src, char *text, size_t len)
{
    if (len == 0)
        return 0;
    struct scan s = {
        .src = src,
        .has_nul = memchr(text, '\0', len) != NULL,
        .stopped = 0,
        .start = NULL,
    };
    char *end = text + len;
    int line_no = 0;
    for (char *p = text; p < end && !s.stopped;) {
        char *newline = memchr(p, '\n', (size_t)(end - p));
        char *line_end = newline != NULL ? newline : end;
        physical_line(&s, p, (size_t)(line_end - p), ++line_no);
        p = newline != NULL ? newline + 1 : end;
    }
    if (!s.stopped)
        finish(&s);
    return s.stopped;
}

int line_source_parse_copy(const struct line_source *src, const char *text,
                           size_t len)
{
    if (len == 0)
        return 0;
    struct buf copy;
    buf_init(&copy, len);
    if (buf_set(&copy, text, len) != 0) {
        buf_free(&copy);
        return -1;
    }
    int rc = line_source_parse(src, copy.data, copy.len);
    buf_free(&copy);
    return rc;
}

int line_source_read_file(const char *path, size_t max_size,
                          struct buf *text)
{
    buf_init(text, max_size);
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    int sized = S_ISREG(st.st_mode) && st.st_size > 0;
    if (sized && (uintmax_t)st.st_size > max_size) {
        errno = EFBIG;
        return -1;
    }
    if ((sized && buf_reserve(text, (size_t)st.st_size) != 0) ||
        safe_file_read_all(path, text) != 0) {
        if (errno == EMSGSIZE)
            errno = EFBIG;
        return -1;
    }
    return 0;
}
