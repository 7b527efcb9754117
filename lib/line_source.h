/*
 * line_source - reads a file, or text in memory, as logical lines with
 * FILE:LINE numbers: the one implementation of the line rules that main.cf,
 * master.cf, table sources, pcre tables and aliases files share.
 *
 * The rules:
 *   - lines end with "\n"; white space (space, tab, CR, VT, FF) is trimmed
 *     at both ends of every line, so CRLF files read like LF files;
 *   - a line that starts with white space continues the logical line
 *     above it: the pieces are joined with one space;
 *   - blank lines and lines whose first non-space character is '#' are
 *     ignored and do not end a logical line (a continuation may follow);
 *   - problems: a NUL byte in a line, a logical line longer than max_len
 *     bytes (once joined), a continuation line with no logical line above
 *     it.  A logical line with a problem is not handed out as text.
 *
 * The text is parsed in place: physical lines are found with memchr and
 * continuations are moved up behind the line they continue (memmove), so
 * nothing is allocated per line.  The logical line handed to the callback
 * is NUL-terminated in the buffer and may be modified by the callback.
 *
 * By default a logical line with problems is reported once, when it ends,
 * as its first problem in line order (on one line: a NUL byte first, then
 * no line to continue, then too long); each continuation line with
 * nothing above it is a problem of its own.  The flags change that where
 * file formats differ (see below).
 *
 * Usage:
 *     static int one(void *ctx, const struct line_source_line *l)
 *     {
 *         if (l->problem != LINE_SOURCE_OK)
 *             ... report "FILE:%d", l->problem == LINE_SOURCE_TOO_LONG
 *                 ? l->line : l->where ...; return 0;
 *         ... use l->text, l->len (logical line starting on l->line) ...
 *         return 0;  // nonzero: stop reading
 *     }
 *     struct buf text;
 *     if (line_source_read_file(path, 64 << 20, &text) != 0) ... errno ...
 *     struct line_source src = { .max_len = 16384, .flags = 0,
 *                                .fn = one, .ctx = ctx };
 *     int stopped = line_source_parse(&src, text.data, text.len);
 *     buf_free(&text);
 */
#ifndef POSTINO_LINE_SOURCE_H
#define POSTINO_LINE_SOURCE_H

#include <stddef.h>

struct buf;

enum line_source_problem {
    LINE_SOURCE_OK = 0,   /* a logical line: text, len */
    LINE_SOURCE_NUL,      /* a NUL byte on line where */
    LINE_SOURCE_ORPHAN,   /* where starts with white space, but there is
                           * no logical line above it to continue */
    LINE_SOURCE_TOO_LONG, /* longer than max_len; where: the line that
                           * made it too long */
};

struct line_source_line {
    char *text;  /* the logical line, NUL-terminated; NULL on a problem */
    size_t len;
    int line;    /* the first physical line of the logical line */
    int where;   /* the physical line of the problem (line when none) */
    enum line_source_problem problem;
};

/* Called for each logical line and each problem.  0 goes on; anything
 * else stops the read after the current physical line (the logical line
 * still open then is dropped). */
typedef int line_source_fn(void *ctx, const struct line_source_line *l);

/* Rules on which the file formats differ. */
/* A NUL byte in a comment line is a problem too (main.cf, master.cf). */
#define LINE_SOURCE_COMMENT_NUL 0x1u
/* Too long beats a NUL byte anywhere in the same logical line, whatever
 * comes first (table sources, pcre tables). */
#define LINE_SOURCE_LENGTH_FIRST 0x2u
/* Problems are reported as soon as they are found, and after the first
 * one of a logical line every further line of it with a NUL byte is
 * reported as well (aliases files). */
#define LINE_SOURCE_EACH_NUL 0x4u
/* Continuation lines with nothing above them form one logical line,
 * reported once as LINE_SOURCE_ORPHAN (aliases files). */
#define LINE_SOURCE_ORPHAN_GROUP 0x8u

struct line_source {
    size_t max_len; /* the longest logical line allowed */
    unsigned flags; /* LINE_SOURCE_* */
    line_source_fn *fn;
    void *ctx;
};

/* Reads the whole file at path into text (initialized here; the caller
 * frees it with buf_free, also after a failure).  0, or -1 with errno set;
 * EFBIG when the file is larger than max_size bytes. */
int line_source_read_file(const char *path, size_t max_size,
                          struct buf *text);

/* Parses text[0..len) in place; text[len] must be writable too (as in a
 * struct buf, whose data is followed by a NUL).  Returns 0, or 1 when the
 * callback stopped the read. */
int line_source_parse(const struct line_source *src, char *text, size_t len);

/* The same for text that may not be changed: it is copied once first.
 * Returns 0, 1 (stopped), or -1 when there is no memory for the copy. */
int line_source_parse_copy(const struct line_source *src, const char *text,
                           size_t len);

#endif
