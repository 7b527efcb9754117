/*
 * table_pcre - pcre:FILE, a lookup table of PCRE2 regular expressions in
 * Postfix's pcre_table(5) syntax.  The key is matched against each rule in
 * the order of FILE; the first rule that matches gives the result.
 *
 *     table_open("pcre:/etc/postino/virtual.pcre", 0, &error);
 *
 * FILE:
 *     # comment                 (blank lines and comments are ignored)
 *     /^(\w+)@example\.com$/    $1@example.org
 *     !/@example\.org$/         relay          (matches when it does NOT)
 *     if /@example\.net$/                      (rules inside apply only
 *     /^postmaster@/i           admin           when the key matches)
 *     endif
 *     |^/path/(.*)$|            ${1}           (any delimiter that is not
 *                                               a letter, digit, white
 *                                               space or backslash)
 * A line that starts with white space continues the line above it (joined
 * with one space).  Flags follow the closing delimiter: i (toggles the
 * default case-insensitive matching), m, s, x, A (anchored), E (dollar end
 * only), U (ungreedy), X (accepted and ignored).  In the result, $1 to $9,
 * ${n} and $(n) give group n (empty when the group took no part in the
 * match) and $$ gives "$".  Every error in FILE is logged as "FILE:LINE:
 * ..." and the first one is appended to the error buffer; table_open then
 * fails.  A match-time error (e.g. the match limit) is TABLE_ERROR, never
 * "not found".  A table keeps one match data block for its lookups, so one
 * table must not be used by two threads at once.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <errno.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "line_source.h"
#include "log.h"
#include "table_driver.h"

/* How much of a pattern an error message shows. */
#define PATTERN_SHOWN_MAX 200
/* The largest group number ${n} may name (two digits). */
#define GROUP_MAX 99
/* The JIT stack a table's matches may use, at most. */
#define JIT_STACK_START (32 * 1024)
#define JIT_STACK_MAX (1024 * 1024)
/* No open if: the end of the chain of open ifs while parsing. */
#define NO_RULE SIZE_MAX

/* One piece of a result: literal text, or a group of the match. */
struct result_part {
    unsigned group; /* 0: literal[offset .. offset+len) */
    size_t offset;
    size_t len;
};

struct pcre_rule {
    pcre2_code *code; /* NULL only in a table that failed to load */
    char *pattern;    /* as written, for messages */
    size_t pattern_len;
    int line;
    int negate;
    int is_if;
    size_t skip; /* if: the rule after its endif (while parsing: the
                  * enclosing open if, or NO_RULE) */
    struct buf literal;
    struct result_part *parts;
    size_t part_count;
};

struct pcre_table {
    struct pcre_rule *rules;
    size_t count;
    size_t capacity;
    pcre2_match_data *match;
    pcre2_match_context *context;
    pcre2_jit_stack *jit_stack; /* NULL: none (no JIT, or no memory) */
    struct buf result;          /* scratch for substitution */
};

/* What a pattern "!/text/flags" says. */
struct pattern {
    const char *text;
    size_t len;
    uint32_t options;
    int negate;
};

struct parser {
    const char *path;
    struct buf *error;
    struct pcre_table *table;
    int line;       /* of the logical line being parsed */
    int errors;
    size_t open_if; /* innermost open if, or NO_RULE */
};

/* ------------------------------------------------------------ messages */

/* Appends a formatted message to error, cut to fit rather than lost when
 * error's limit is near. */
static void append_message(struct buf *error, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void append_message(struct buf *error, const char *fmt, va_list ap)
{
    struct buf text;
    buf_init(&text, 64 * 1024);
    if (buf_vprintf(&text, fmt, ap) == 0 && error->limit > error->len) {
        size_t room = error->limit - error->len;
        (void)buf_append(error, text.data,
                         text.len < room ? text.len : room);
    }
    buf_free(&text);
}

static void report(struct buf *error, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void report(struct buf *error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    append_message(error, fmt, ap);
    va_end(ap);
}

static void syntax_error(struct parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Logs "FILE:LINE: ..." and keeps the first one in the caller's error. */
static void syntax_error(struct parser *p, const char *fmt, ...)
{
    struct buf what;
    buf_init(&what, 4096);
    va_list ap;
    va_start(ap, fmt);
    append_message(&what, fmt, ap);
    va_end(ap);
    log_error("%s:%d: %s", p->path, p->line, buf_cstr(&what));
    if (p->errors == 0)
        report(p->error, "%s:%d: %s", p->path, p->line, buf_cstr(&what));
    buf_free(&what);
    p->errors++;
}

static int shown_len(size_t len)
{
    return (int)(len > PATTERN_SHOWN_MAX ? PATTERN_SHOWN_MAX : len);
}

static const char *shown_more(size_t len)
{
    return len > PATTERN_SHOWN_MAX ? "..." : "";
}

/* PCRE2's text for an error code, appended to out. */
static void pcre_error_text(int code, struct buf *out)
{
    PCRE2_UCHAR message[256];
    int n = pcre2_get_error_message(code, message, sizeof(message));
    if (n == PCRE2_ERROR_BADDATA)
        (void)buf_printf(out, "PCRE2 error %d", code);
    else /* the text, cut if it did not fit (PCRE2_ERROR_NOMEMORY) */
        (void)buf_append_str(out, (const char *)message);
}

/* --------------------------------------------------------- characters */

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Whether s[0..len) is word, ignoring ASCII case. */
static int is_word(const char *s, size_t len, const char *word)
{
    if (strlen(word) != len)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (lower(s[i]) != word[i])
            return 0;
    return 1;
}

static size_t skip_blanks(const char *s, size_t len, size_t pos)
{
    while (pos < len && is_blank(s[pos]))
        pos++;
    return pos;
}

/* ------------------------------------------------------------- rules */

static void free_rule(struct pcre_rule *r)
{
    pcre2_code_free(r->code);
    free(r->pattern);
    buf_free(&r->literal);
    free(r->parts);
}

static void free_table(struct pcre_table *tbl)
{
    for (size_t i = 0; i < tbl->count; i++)
        free_rule(&tbl->rules[i]);
    free(tbl->rules);
    pcre2_match_data_free(tbl->match);
    pcre2_match_context_free(tbl->context);
    pcre2_jit_stack_free(tbl->jit_stack);
    buf_free(&tbl->result);
    free(tbl);
}

/* A new rule at the end of the table, zeroed, or NULL (out of memory). */
static struct pcre_rule *add_rule(struct pcre_table *tbl)
{
    if (tbl->count == tbl->capacity) {
        size_t capacity = tbl->capacity ? tbl->capacity * 2 : 16;
        struct pcre_rule *rules =
            realloc(tbl->rules, capacity * sizeof(*rules));
        if (rules == NULL)
            return NULL;
        tbl->rules = rules;
        tbl->capacity = capacity;
    }
    struct pcre_rule *r = &tbl->rules[tbl->count++];
    memset(r, 0, sizeof(*r));
    buf_init(&r->literal, TABLE_VALUE_MAX);
    r->skip = NO_RULE;
    return r;
}

/* Drops the last rule again (one whose line had an error). */
static void drop_last_rule(struct pcre_table *tbl)
{
    free_rule(&tbl->rules[--tbl->count]);
}

static int set_pattern_text(struct pcre_rule *r, const struct pattern *pat)
{
    r->pattern = malloc(pat->len + 1);
    if (r->pattern == NULL)
        return -1;
    memcpy(r->pattern, pat->text, pat->len);
    r->pattern[pat->len] = '\0';
    r->pattern_len = pat->len;
    r->negate = pat->negate;
    return 0;
}

/* ---------------------------------------------------------- patterns */

/* Applies one flag letter to the compile options; -1 if unknown. */
static int apply_flag(char flag, uint32_t *options)
{
    switch (flag) {
    case 'i': *options ^= PCRE2_CASELESS; return 0;
    case 'm': *options ^= PCRE2_MULTILINE; return 0;
    case 's': *options ^= PCRE2_DOTALL; return 0;
    case 'x': *options ^= PCRE2_EXTENDED; return 0;
    case 'A': *options ^= PCRE2_ANCHORED; return 0;
    case 'E': *options ^= PCRE2_DOLLAR_ENDONLY; return 0;
    case 'U': *options ^= PCRE2_UNGREEDY; return 0;
    case 'X': return 0; /* PCRE_EXTRA: gone in PCRE2, accepted as Postfix */
    default: return -1;
    }
}

/* The position of the unescaped delim at or after pos, or len. */
static size_t find_delimiter(const char *s, size_t len, size_t pos, char delim)
{
    while (pos < len && s[pos] != delim)
        pos += (s[pos] == '\\' && pos + 1 < len) ? 2 : 1;
    return pos;
}

/*
 * Parses "[!...]/text/flags" at s[*pos]; *pos then points after the flags.
 * Negation marks and white space before the pattern toggle and are skipped,
 * as in Postfix.  0, or -1 after reporting the error.
 */
static int parse_pattern(struct parser *p, const char *s, size_t len,
                         size_t *pos, struct pattern *pat)
{
    size_t i = *pos;
    pat->negate = 0;
    for (; i < len && (s[i] == '!' || is_blank(s[i])); i++)
        if (s[i] == '!')
            pat->negate = !pat->negate;
    if (i == len) {
        syntax_error(p, "missing pattern");
        return -1;
    }
    char delim = s[i];
    if (is_alnum(delim) || delim == '\\') {
        syntax_error(p, "pattern must start with a delimiter such as '/', "
                        "not '%c'", delim);
        return -1;
    }
    size_t close = find_delimiter(s, len, i + 1, delim);
    if (close == len) {
        syntax_error(p, "missing closing '%c' of the pattern", delim);
        return -1;
    }
    pat->text = s + i + 1;
    pat->len = close - (i + 1);
    pat->options = PCRE2_CASELESS;
    for (i = close + 1; i < len && !is_blank(s[i]); i++) {
        if (apply_flag(s[i], &pat->options) != 0) {
            syntax_error(p, "unknown flag '%c' after the pattern \"%.*s%s\"",
                         s[i], shown_len(pat->len), pat->text,
                         shown_more(pat->len));
            return -1;
        }
    }
    *pos = i;
    return 0;
}

/* Compiles the pattern into r->code (JIT too, when it can).  0 or -1. */
static int compile_pattern(struct parser *p, const struct pattern *pat,
                           struct pcre_rule *r)
{
    int code;
    PCRE2_SIZE offset;
    r->code = pcre2_compile((PCRE2_SPTR)pat->text, pat->len, pat->options,
                            &code, &offset, NULL);
    if (r->code == NULL) {
        struct buf why;
        buf_init(&why, 1024);
        pcre_error_text(code, &why);
        syntax_error(p, "bad pattern \"%.*s%s\": %s at offset %zu",
                     shown_len(pat->len), pat->text, shown_more(pat->len),
                     buf_cstr(&why), (size_t)offset);
        buf_free(&why);
        return -1;
    }
    (void)pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE); /* optional */
    return 0;
}

/* ----------------------------------------------------------- results */

static int add_part(struct pcre_rule *r, unsigned group, size_t offset,
                    size_t len)
{
    struct result_part *parts =
        realloc(r->parts, (r->part_count + 1) * sizeof(*parts));
    if (parts == NULL)
        return -1;
    r->parts = parts;
    r->parts[r->part_count++] =
        (struct result_part){.group = group, .offset = offset, .len = len};
    return 0;
}

/* Adds literal text to the result, joined to a literal part before it. */
static int add_literal(struct pcre_rule *r, const char *s, size_t len)
{
    if (len == 0)
        return 0;
    size_t offset = r->literal.len;
    if (buf_append(&r->literal, s, len) != 0)
        return -1;
    if (r->part_count > 0 && r->parts[r->part_count - 1].group == 0) {
        r->parts[r->part_count - 1].len += len;
        return 0;
    }
    return add_part(r, 0, offset, len);
}

/*
 * Reads the group reference at s[0] == '$': "$n" (one digit), "${n}" or
 * "$(n)" (one or two digits).  Returns its length with the number in
 * *group, or 0 when s does not start with one.
 */
static size_t parse_reference(const char *s, size_t len, unsigned *group)
{
    if (len >= 2 && is_digit(s[1])) {
        *group = (unsigned)(s[1] - '0');
        return 2;
    }
    if (len < 3 || (s[1] != '{' && s[1] != '('))
        return 0;
    char close = s[1] == '{' ? '}' : ')';
    unsigned n = 0;
    size_t i = 2;
    for (; i < len && i < 4 && is_digit(s[i]); i++)
        n = n * 10 + (unsigned)(s[i] - '0');
    if (i == 2 || i == len || s[i] != close)
        return 0;
    *group = n;
    return i + 1;
}

/* Whether the reference s[0..len) to group may stand in r's result. */
static int check_reference(struct parser *p, const struct pcre_rule *r,
                           uint32_t groups, const char *s, size_t len,
                           unsigned group)
{
    if (group == 0) {
        syntax_error(p, "%.*s is not a group: groups are numbered from 1",
                     (int)len, s);
        return -1;
    }
    if (r->negate) {
        syntax_error(p, "%.*s in the result of a negated pattern: a "
                        "pattern that does not match has no groups",
                     (int)len, s);
        return -1;
    }
    if (group > groups) {
        syntax_error(p, "%.*s refers to a group the pattern does not have "
                        "(it has %u)", (int)len, s, (unsigned)groups);
        return -1;
    }
    return 0;
}

static int result_out_of_memory(struct parser *p)
{
    syntax_error(p, "%s", strerror(ENOMEM));
    return -1;
}

/* Splits the result s[0..len) into literal parts and group references. */
static int parse_result(struct parser *p, struct pcre_rule *r,
                        const char *s, size_t len, uint32_t groups)
{
    size_t start = 0;
    size_t i = 0;
    while (i < len) {
        if (s[i] != '$') {
            i++;
            continue;
        }
        if (add_literal(r, s + start, i - start) != 0)
            return result_out_of_memory(p);
        size_t used = 2;
        unsigned group = 0;
        if (i + 1 < len && s[i + 1] == '$') {
            if (add_literal(r, "$", 1) != 0)
                return result_out_of_memory(p);
        } else if ((used = parse_reference(s + i, len - i, &group)) == 0) {
            syntax_error(p, "\"$\" in the result must be followed by a "
                            "group number, {n} or (n); write $$ for a "
                            "literal \"$\"");
            return -1;
        } else if (check_reference(p, r, groups, s + i, used, group) != 0) {
            return -1;
        } else if (add_part(r, group, 0, 0) != 0) {
            return result_out_of_memory(p);
        }
        i += used;
        start = i;
    }
    if (add_literal(r, s + start, len - start) != 0)
        return result_out_of_memory(p);
    return 0;
}

/* --------------------------------------------------------- the lines */

/* A new rule for the line being parsed, or NULL after reporting. */
static struct pcre_rule *new_rule(struct parser *p)
{
    struct pcre_rule *r = add_rule(p->table);
    if (r == NULL) {
        syntax_error(p, "%s", strerror(ENOMEM));
        return NULL;
    }
    r->line = p->line;
    return r;
}

/* "[!]/pattern/flags result" */
static void parse_rule(struct parser *p, const char *s, size_t len)
{
    size_t pos = 0;
    struct pattern pat;
    if (parse_pattern(p, s, len, &pos, &pat) != 0)
        return;
    size_t start = skip_blanks(s, len, pos);
    if (start == len) {
        syntax_error(p, "missing result after the pattern \"%.*s%s\"",
                     shown_len(pat.len), pat.text, shown_more(pat.len));
        return;
    }
    struct pcre_rule *r = new_rule(p);
    if (r == NULL)
        return;
    if (set_pattern_text(r, &pat) != 0) {
        drop_last_rule(p->table);
        syntax_error(p, "%s", strerror(ENOMEM));
        return;
    }
    uint32_t groups = 0;
    if (compile_pattern(p, &pat, r) != 0 ||
        pcre2_pattern_info(r->code, PCRE2_INFO_CAPTURECOUNT, &groups) != 0 ||
        parse_result(p, r, s + start, len - start, groups) != 0)
        drop_last_rule(p->table);
}

/* "if [!]/pattern/flags".  The if is kept even when its pattern is bad,
 * so that its endif does not count as one without an if. */
static void parse_if(struct parser *p, const char *s, size_t len)
{
    struct pcre_rule *r = new_rule(p);
    if (r == NULL)
        return;
    r->is_if = 1;
    r->skip = p->open_if;
    p->open_if = p->table->count - 1;
    size_t pos = 0;
    struct pattern pat;
    if (parse_pattern(p, s, len, &pos, &pat) != 0)
        return;
    if (skip_blanks(s, len, pos) != len) {
        syntax_error(p, "text after the pattern of an if");
        return;
    }
    if (set_pattern_text(r, &pat) != 0) {
        syntax_error(p, "%s", strerror(ENOMEM));
        return;
    }
    (void)compile_pattern(p, &pat, r);
}

/* "endif": the open if now knows where its block ends. */
static void parse_endif(struct parser *p, const char *s, size_t len)
{
    if (p->open_if == NO_RULE) {
        syntax_error(p, "endif without if");
        return;
    }
    struct pcre_rule *r = &p->table->rules[p->open_if];
    p->open_if = r->skip;
    r->skip = p->table->count;
    if (skip_blanks(s, len, 0) != len)
        syntax_error(p, "text after endif");
}

/* One logical line: a rule, an if or an endif. */
static void parse_logical(struct parser *p, const char *s, size_t len)
{
    size_t word = 0;
    while (word < len && is_alnum(s[word]))
        word++;
    if (is_word(s, word, "if"))
        parse_if(p, s + word, len - word);
    else if (is_word(s, word, "endif"))
        parse_endif(p, s + word, len - word);
    else if (word > 0)
        syntax_error(p, "expected \"/pattern/flags result\", "
                        "\"if /pattern/flags\" or \"endif\"");
    else
        parse_rule(p, s, len);
}

/* One logical line from line_source, or its problem. */
static int source_line(void *ctx, const struct line_source_line *l)
{
    struct parser *p = ctx;
    p->line = l->problem == LINE_SOURCE_ORPHAN ? l->where : l->line;
    switch (l->problem) {
    case LINE_SOURCE_OK:
        parse_logical(p, l->text, l->len);
        break;
    case LINE_SOURCE_NUL:
        syntax_error(p, "NUL byte in line");
        break;
    case LINE_SOURCE_ORPHAN:
        syntax_error(p, "continuation line (starting with white space) "
                        "without a line before it");
        break;
    case LINE_SOURCE_TOO_LONG:
        syntax_error(p, "line longer than %d bytes", TABLE_VALUE_MAX);
        break;
    }
    return 0;
}

/* Reports every if that has no endif, innermost first. */
static void check_open_ifs(struct parser *p)
{
    while (p->open_if != NO_RULE) {
        struct pcre_rule *r = &p->table->rules[p->open_if];
        p->line = r->line;
        syntax_error(p, "if without endif");
        p->open_if = r->skip;
        r->skip = p->table->count;
    }
}

/* Reads and compiles FILE.  0, or -1 with the (first) reason in error. */
static int load_file(struct pcre_table *tbl, const char *path,
                     struct buf *error)
{
    struct buf text;
    if (line_source_read_file(path, BUF_LIMIT_MAX, &text) != 0) {
        report(error, "%s: %s", path, strerror(errno));
        buf_free(&text);
        return -1;
    }
    struct parser p = {
        .path = path,
        .error = error,
        .table = tbl,
        .line = 0,
        .errors = 0,
        .open_if = NO_RULE,
    };
    const struct line_source src = {
        .max_len = TABLE_VALUE_MAX,
        .flags = LINE_SOURCE_LENGTH_FIRST,
        .fn = source_line,
        .ctx = &p,
    };
    (void)line_source_parse(&src, text.data, text.len); /* never stopped */
    check_open_ifs(&p);
    buf_free(&text);
    return p.errors == 0 ? 0 : -1;
}

/* ---------------------------------------------------------- matching */

/* One match data block for the rule with the most groups, and a JIT stack
 * larger than the default 32 KiB when JIT is there.  0 or -1. */
static int prepare_matching(struct pcre_table *tbl, const char *path,
                            struct buf *error)
{
    uint32_t most = 0;
    for (size_t i = 0; i < tbl->count; i++) {
        uint32_t groups = 0;
        if (pcre2_pattern_info(tbl->rules[i].code, PCRE2_INFO_CAPTURECOUNT,
                               &groups) == 0 && groups > most)
            most = groups;
    }
    tbl->match = pcre2_match_data_create(most + 1, NULL);
    tbl->context = pcre2_match_context_create(NULL);
    if (tbl->match == NULL || tbl->context == NULL) {
        report(error, "%s: %s", path, strerror(ENOMEM));
        return -1;
    }
    tbl->jit_stack =
        pcre2_jit_stack_create(JIT_STACK_START, JIT_STACK_MAX, NULL);
    if (tbl->jit_stack != NULL) /* NULL: no JIT here; PCRE2 copes */
        pcre2_jit_stack_assign(tbl->context, NULL, tbl->jit_stack);
    return 0;
}

/* The number of ovector pairs set when the rule's pattern matches key, 0
 * when it does not, or a negative PCRE2 error code. */
static int match_rule(struct pcre_table *tbl, const struct pcre_rule *r,
                      const char *key, size_t key_len)
{
    int rc = pcre2_match(r->code, (PCRE2_SPTR)key, key_len, 0, 0,
                         tbl->match, tbl->context);
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    if (rc == 0) /* more groups than pairs: cannot happen, all are there */
        return (int)pcre2_get_ovector_count(tbl->match);
    return rc;
}

static void report_match_error(const struct table *t,
                               const struct pcre_rule *r, int code,
                               struct buf *error)
{
    struct buf why;
    buf_init(&why, 1024);
    pcre_error_text(code, &why);
    report(error, "%s:%d: matching the pattern \"%.*s%s\" failed: %s",
           t->name, r->line, shown_len(r->pattern_len), r->pattern,
           shown_more(r->pattern_len), buf_cstr(&why));
    buf_free(&why);
}

/* Appends group n of the match (nothing when it took no part). */
static int append_group(struct buf *out, pcre2_match_data *match, int pairs,
                        unsigned group, const char *key)
{
    if ((int)group >= pairs)
        return 0;
    PCRE2_SIZE *ovector = pcre2_get_ovector_pointer(match);
    PCRE2_SIZE start = ovector[2 * group];
    PCRE2_SIZE end = ovector[2 * group + 1];
    if (start == PCRE2_UNSET || end < start)
        return 0;
    return buf_append(out, key + start, end - start);
}

/* The rule's result with the groups of the match put in, into value. */
static int substitute(const struct table *t, struct pcre_table *tbl,
                      const struct pcre_rule *r, const char *key, int pairs,
                      struct buf *value, struct buf *error)
{
    struct buf *out = &tbl->result;
    buf_reset(out);
    for (size_t i = 0; i < r->part_count; i++) {
        const struct result_part *part = &r->parts[i];
        int rc = part->group == 0
                     ? buf_append(out, r->literal.data + part->offset,
                                  part->len)
                     : append_group(out, tbl->match, pairs, part->group, key);
        if (rc != 0 && errno == EMSGSIZE) {
            report(error, "%s:%d: result longer than %d bytes", t->name,
                   r->line, TABLE_VALUE_MAX);
            return TABLE_ERROR;
        }
        if (rc != 0) {
            report(error, "%s:%d: result: %s", t->name, r->line,
                   strerror(errno));
            return TABLE_ERROR;
        }
    }
    if (buf_set(value, buf_cstr(out), out->len) != 0) {
        report(error, "%s:%d: result: %s", t->name, r->line, strerror(errno));
        return TABLE_ERROR;
    }
    return TABLE_FOUND;
}

/* ----------------------------------------------------------- the ops */

static int pcre_open(struct table *t, const char *name, struct buf *error)
{
    struct pcre_table *tbl = calloc(1, sizeof(*tbl));
    if (tbl == NULL) {
        report(error, "%s: %s", name, strerror(ENOMEM));
        return -1;
    }
    buf_init(&tbl->result, TABLE_VALUE_MAX);
    if (load_file(tbl, name, error) != 0 ||
        prepare_matching(tbl, name, error) != 0) {
        free_table(tbl);
        return -1;
    }
    t->state = tbl;
    return 0;
}

/* Rules in order; an if whose condition fails skips to its endif. */
static int pcre_lookup(struct table *t, const char *key, struct buf *value,
                       struct buf *error)
{
    struct pcre_table *tbl = t->state;
    size_t key_len = strlen(key);
    size_t i = 0;
    while (i < tbl->count) {
        const struct pcre_rule *r = &tbl->rules[i];
        int pairs = match_rule(tbl, r, key, key_len);
        if (pairs < 0) {
            report_match_error(t, r, pairs, error);
            return TABLE_ERROR;
        }
        int hit = (pairs > 0) != r->negate;
        if (r->is_if)
            i = hit ? i + 1 : r->skip;
        else if (hit)
            return substitute(t, tbl, r, key, pairs, value, error);
        else
            i++;
    }
    return TABLE_NOT_FOUND;
}

static void pcre_close(struct table *t)
{
    if (t->state != NULL)
        free_table(t->state);
    t->state = NULL;
}

const struct table_ops table_pcre_ops = {
    .type = "pcre",
    .open = pcre_open,
    .lookup = pcre_lookup,
    .iterate = NULL,
    .close = pcre_close,
};
