/*
 * config - main.cf: the parameters of Postino, their types, defaults and
 * values, with $name expansion.
 *
 * Every parameter Postino knows is declared once, in config_params.c, with
 * its type, default and bounds (config_param_table).  A struct config holds
 * the values read from one main.cf plus the overrides that master.cf's
 * "-o name=value" options give a service.
 *
 * main.cf syntax (Postfix's):
 *   - "name = value" lines; white space around "=" and at the ends is
 *     dropped; a later line for the same name replaces an earlier one.
 *   - a line that starts with white space continues the previous line (the
 *     pieces are joined with one space);
 *   - blank lines and lines whose first non-space character is '#' are
 *     ignored (a '#' elsewhere is part of the value);
 *   - "$name", "${name}" and "$(name)" expand to the value of another
 *     parameter, "${name?text}" to text when name is not empty,
 *     "${name:text}" to text when name is empty, and "$$" to "$";
 *   - a logical line longer than CONFIG_LINE_MAX bytes is an error.
 *
 * Types: CONFIG_STRING; CONFIG_INT (decimal, within min..max);
 * CONFIG_TIME (a number with an optional unit s, m, h, d or w; a bare
 * number takes the parameter's default unit; values are returned in
 * seconds); CONFIG_SIZE (bytes, with an optional k, m or g suffix for
 * KiB, MiB, GiB); CONFIG_BOOL (yes/no, true/false, on/off, 1/0); CONFIG_LIST
 * (items separated by commas and/or white space).
 *
 * Problems are logged through log.h as "FILE:LINE: message" (the most
 * recent is also kept for config_last_error()); functions that find
 * problems return how many errors they found.
 *
 * Usage:
 *     struct config *cfg = config_create();
 *     if (config_load_file(cfg, "/etc/postino/main.cf") != 0) exit(1);
 *     config_set_override(cfg, "smtpd_timeout", "30s", "master.cf", 14);
 *     if (config_check(cfg) != 0) exit(1);     // every value well-typed
 *     long timeout = config_get_time(cfg, "smtpd_timeout");
 *     const char *host = config_get_str(cfg, "myhostname");
 *     config_free(cfg);
 *
 * The typed getters never fail for a parameter that config_check()
 * accepted; asked for an unknown name or a bad value they log_fatal()
 * with the file and line of the value, as Postfix does.
 */
#ifndef POSTINO_CONFIG_H
#define POSTINO_CONFIG_H

#include <stddef.h>

#define CONFIG_LINE_MAX 16384
#define CONFIG_EXPAND_DEPTH 100

enum config_type {
    CONFIG_STRING,
    CONFIG_INT,
    CONFIG_TIME,
    CONFIG_SIZE,
    CONFIG_BOOL,
    CONFIG_LIST,
};

struct config;

struct config_param_def {
    const char *name;
    enum config_type type;
    const char *default_value; /* may use $name; NULL: see default_fn */
    long min;                  /* CONFIG_INT, CONFIG_TIME (seconds), SIZE */
    long max;
    char time_unit;            /* CONFIG_TIME: unit of a bare number */
    /* A default computed at run time (myhostname from gethostname(),
     * mydomain from myhostname); writes into out (size bytes) and returns
     * 0, or -1 on failure. */
    int (*default_fn)(struct config *cfg, char *out, size_t size);
};

/* The table of every known parameter, ended by an entry with name NULL. */
extern const struct config_param_def config_param_table[];
const struct config_param_def *config_param_lookup(const char *name);

struct text_list {
    char **items;
    size_t count;
};
void text_list_free(struct text_list *list);

struct config *config_create(void);
void config_free(struct config *cfg);

/* Reads a main.cf.  Returns 0 when it had no errors, the number of errors
 * otherwise, and -1 when the file cannot be read (errno set; a missing
 * file is an error here: callers decide whether that is fatal, so this
 * one is not logged, only kept for config_last_error()). */
int config_load_file(struct config *cfg, const char *path);
/* Reads CONFIG_DIR/main.cf, sets config_directory to CONFIG_DIR and checks
 * every value: what every program does first.  Returns the configuration,
 * or NULL after logging every problem; *errors (may be NULL) receives their
 * number, a file that cannot be read counting as one. */
struct config *config_load_dir(const char *config_dir, int *errors);
/* The same with flags: CONFIG_QUIET_UNUSED leaves the "unused parameter"
 * warnings to postino check and postino start, so that daemons do not
 * repeat them at every start. */
#define CONFIG_QUIET_UNUSED 1u
struct config *config_load_dir_flags(const char *config_dir, unsigned flags,
                                     int *errors);
/* Same as config_load_file for text in memory; name is used in messages. */
int config_load_text(struct config *cfg, const char *name, const char *text,
                     size_t len);

/* Sets a value as if read at file:line (master.cf -o, command line; line
 * 0 when there is no line).  An override beats any value from a file.
 * Return 0, or 1 (an error, logged) when name is not a parameter name. */
int config_set(struct config *cfg, const char *name, const char *value,
               const char *file, int line);
int config_set_override(struct config *cfg, const char *name,
                        const char *value, const char *file, int line);

/* Checks every value that was set, and every default, against its type;
 * warns about parameters that are neither known nor used in another
 * value's $expansion ("unused parameter", as Postfix says).  Returns the
 * number of errors (warnings do not count). */
int config_check(struct config *cfg);

/* Raw (unexpanded) value, or NULL when neither set nor known. */
const char *config_get_raw(struct config *cfg, const char *name);
/* Where the value came from: file and line, or "default" and 0. */
void config_get_origin(struct config *cfg, const char *name,
                       const char **file, int *line);

/* Expanded values.  config_get_str's result stays valid until cfg is
 * freed or the parameter set again. */
const char *config_get_str(struct config *cfg, const char *name);
/* Like config_get_str, but returns NULL instead of exiting when name is
 * unknown or its value cannot be expanded ($expansion loop, bad $ syntax);
 * config_last_error() then says why (nothing is logged).  For default_fn
 * functions, which must not exit. */
const char *config_try_get_str(struct config *cfg, const char *name);
long config_get_int(struct config *cfg, const char *name);
long config_get_time(struct config *cfg, const char *name);
long config_get_size(struct config *cfg, const char *name);
int config_get_bool(struct config *cfg, const char *name);
/* Fills list; the caller frees it with text_list_free(). */
void config_get_list(struct config *cfg, const char *name,
                     struct text_list *list);

/* Value parsers, exposed for master.cf and tests.  Return 0 or -1. */
int config_parse_time(const char *text, char default_unit, long *seconds);
int config_parse_size(const char *text, long *bytes);
int config_parse_bool(const char *text, int *value);

/* The most recent problem message, for tests and callers that report it. */
const char *config_last_error(const struct config *cfg);

/* Calls fn for each parameter set in the file or by override, in the order
 * they were first set (postino check and tests use it). */
void config_foreach(struct config *cfg,
                    void (*fn)(void *ctx, const char *name, const char *raw,
                               const char *file, int line),
                    void *ctx);

/*
 * Shared with master_cf.c: the file reader and the logical-line rules of
 * both files.  config_read_file() fills text (initialized here, freed by
 * the caller with buf_free) with the whole file; -1 with errno set when it
 * cannot be read or is larger than 64 MiB (EFBIG).
 *
 * config_read_lines() splits text into logical lines (continuations
 * joined with one space, white space trimmed, blank and '#' lines
 * skipped) and calls fn once per logical line with its first line number.
 * When a line cannot be used, fn gets line NULL and problem says why
 * (a NUL byte, longer than CONFIG_LINE_MAX, a continuation with nothing
 * to continue); line_no is then the line to report.  fn may modify line.
 * Both are thin wrappers around line_source.h, which has the rules.
 */
struct buf;
typedef void config_line_fn(void *ctx, int line_no, char *line,
                            const char *problem);
int config_read_file(const char *path, struct buf *text);
void config_read_lines(const char *text, size_t len, config_line_fn *fn,
                       void *ctx);

#endif
