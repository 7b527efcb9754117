/*
 * cleanup_checks - header_checks and body_checks, with Postfix's actions,
 * and the lists of lookup tables that checks and rewriting use.
 *
 * Each header field (unfolded, "Name: value") or body line is looked up
 * (header_checks: fields of the message header; mime_header_checks:
 * MIME-Version and Content-* fields there and in the headers of MIME
 * parts; body_checks: the other lines)
 * in the tables of the list in order; the first table that has a value
 * decides.  The value is an action word and an optional text:
 *   REJECT [text]   the message is refused: 550 5.7.1 text (a text that
 *                   starts with "5.X.Y " gives that status instead)
 *   DISCARD [text]  accepted (250) and dropped
 *   HOLD [text]     queued into hold/
 *   WARN [text]     logged, nothing else
 *   IGNORE          this header field or body line is left out
 *   PREPEND text    text is written before it
 *   REPLACE text    text is written instead of it
 *   DUNNO, OK       nothing
 * An unknown action is logged as a warning and ignored.  A table error
 * defers the message (451 4.3.0).  Log lines have Postfix's shape:
 *   ID: reject: header Subject: x from NAME[ADDR]; from=<S> to=<R>
 *       proto=ESMTP helo=<H>: 5.7.1 message content rejected
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address_lookup.h"
#include "cleanup.h"
#include "log.h"

#define CHECK_LOG_TEXT_MAX 200

void cleanup_tables_open(struct config *cfg, const char *param,
                         struct cleanup_tables *out)
{
    struct text_list names;
    config_get_list(cfg, param, &names);
    out->count = 0;
    out->tables = NULL;
    if (names.count > 0) {
        out->tables = calloc(names.count, sizeof(*out->tables));
        if (out->tables == NULL)
            log_fatal("%s: out of memory", param);
    }
    struct buf error;
    buf_init(&error, 4096);
    for (size_t i = 0; i < names.count; i++) {
        buf_reset(&error);
        struct table *t = table_open(names.items[i], 0, &error);
        if (t == NULL)
            log_fatal("%s: open %s: %s", param, names.items[i],
                      buf_cstr(&error));
        out->tables[out->count++] = t;
    }
    buf_free(&error);
    text_list_free(&names);
}

/* True when the address's domain is one of mydestination. */
static int domain_is_local(const struct cleanup_config *cfg,
                           const char *address)
{
    const char *at = strrchr(address, '@');
    if (at == NULL)
        return 1;
    for (size_t i = 0; i < cfg->mydestination.count; i++)
        if (strcasecmp(at + 1, cfg->mydestination.items[i]) == 0)
            return 1;
    return 0;
}

int cleanup_tables_lookup_address(const struct cleanup_state *st,
                                  const struct cleanup_tables *list,
                                  const char *address, struct buf *value,
                                  struct buf *error)
{
    int local = domain_is_local(st->cfg, address);
    for (size_t i = 0; i < list->count; i++) {
        int rc = address_lookup(list->tables[i], address,
                                st->cfg->recipient_delimiter, local, value,
                                NULL, error);
        if (rc != TABLE_NOT_FOUND)
            return rc;
    }
    return TABLE_NOT_FOUND;
}

/* First table of list with a value for key. */
static int tables_lookup(const struct cleanup_tables *list, const char *key,
                         struct buf *value, struct buf *error)
{
    for (size_t i = 0; i < list->count; i++) {
        int rc = table_lookup(list->tables[i], key, value, error);
        if (rc != TABLE_NOT_FOUND)
            return rc;
    }
    return TABLE_NOT_FOUND;
}

/* The parameter's name without "_checks". */
static const char *check_name(enum cleanup_check_kind kind)
{
    return kind == CLEANUP_CHECK_HEADER ? "header"
           : kind == CLEANUP_CHECK_MIME ? "mime_header"
           : kind == CLEANUP_CHECK_NESTED ? "nested_header"
                                          : "body";
}

/* "ID: ACTION: header|body TEXT from ...: TEXT" */
static void log_action(struct cleanup_state *st, const char *action,
                       enum cleanup_check_kind kind, const char *text,
                       size_t len, const char *detail)
{
    struct buf context;
    buf_init(&context, 4096);
    cleanup_log_context(st, &context);
    int shown = len > CHECK_LOG_TEXT_MAX ? CHECK_LOG_TEXT_MAX : (int)len;
    log_info("%s: %s: %s %.*s%s %s%s%s", st->id, action,
             kind == CLEANUP_CHECK_BODY ? "body" : "header", shown, text,
             (size_t)shown < len ? "..." : "", buf_cstr(&context),
             detail[0] != '\0' ? ": " : "", detail);
    buf_free(&context);
}

/* Splits "WORD rest" into the word (upper-cased into word) and the rest. */
static const char *split_action(const char *value, char *word, size_t size)
{
    size_t n = 0;
    while (*value != '\0' && !isspace((unsigned char)*value)) {
        if (n + 1 < size)
            word[n++] = (char)toupper((unsigned char)*value);
        value++;
    }
    word[n] = '\0';
    while (isspace((unsigned char)*value))
        value++;
    return value;
}

/* A REJECT text may start with its own RFC 3463 status "5.X.Y ", which
 * then replaces 5.7.1; returns the text after it. */
static const char *reject_dsn(const char *text, char *dsn, size_t size)
{
    const char *p = text;
    if (p[0] != '5' || p[1] != '.')
        return text;
    p += 2;
    for (int part = 0; part < 2; part++) {
        size_t digits = strspn(p, "0123456789");
        if (digits == 0 || digits > 3)
            return text;
        p += digits;
        if (part == 0 && *p++ != '.')
            return text;
    }
    if (*p != ' ' && *p != '\0')
        return text;
    size_t n = (size_t)(p - text);
    if (n >= size)
        return text;
    memcpy(dsn, text, n);
    dsn[n] = '\0';
    while (*p == ' ')
        p++;
    return p;
}

static enum cleanup_check_result apply_action(
    struct cleanup_state *st, enum cleanup_check_kind kind, const char *text,
    size_t len, const char *value, struct buf *prepend,
    struct buf *replacement)
{
    char word[32];
    const char *rest = split_action(value, word, sizeof(word));
    struct buf detail;
    buf_init(&detail, 4096);
    enum cleanup_check_result result = CHECK_KEEP;
    if (strcmp(word, "REJECT") == 0) {
        char dsn[16] = "5.7.1";
        const char *reason = reject_dsn(rest, dsn, sizeof(dsn));
        if (reason[0] == '\0')
            reason = "message content rejected";
        (void)buf_printf(&detail, "%s %s", dsn, reason);
        log_action(st, "reject", kind, text, len, buf_cstr(&detail));
        cleanup_fail(st, CLEANUP_REJECT, 550, dsn, reason);
    } else if (strcmp(word, "DISCARD") == 0) {
        log_action(st, "discard", kind, text, len, rest);
        cleanup_fail(st, CLEANUP_DISCARD, 250, "2.0.0", "Ok");
    } else if (strcmp(word, "HOLD") == 0) {
        log_action(st, "hold", kind, text, len, rest);
        st->hold = 1;
    } else if (strcmp(word, "WARN") == 0) {
        log_action(st, "warning", kind, text, len, rest);
    } else if (strcmp(word, "IGNORE") == 0) {
        result = CHECK_DROP;
    } else if (strcmp(word, "PREPEND") == 0 && rest[0] != '\0') {
        if (buf_set_str(prepend, rest) != 0)
            log_warn("%s: PREPEND text too long: ignored", st->id);
    } else if (strcmp(word, "REPLACE") == 0 && rest[0] != '\0') {
        if (buf_set_str(replacement, rest) == 0)
            result = CHECK_REPLACE;
        else
            log_warn("%s: REPLACE text too long: ignored", st->id);
    } else if (strcmp(word, "DUNNO") != 0 && strcmp(word, "OK") != 0) {
        log_warn("%s: unknown %s_checks action \"%s\": ignored", st->id,
                 check_name(kind), value);
    }
    buf_free(&detail);
    return result;
}

enum cleanup_check_result cleanup_check(struct cleanup_state *st,
                                        enum cleanup_check_kind kind,
                                        const char *text, size_t len,
                                        struct buf *prepend,
                                        struct buf *replacement)
{
    const struct cleanup_tables *list =
        kind == CLEANUP_CHECK_HEADER ? &st->cfg->header_checks
        : kind == CLEANUP_CHECK_MIME ? &st->cfg->mime_header_checks
        : kind == CLEANUP_CHECK_NESTED ? &st->cfg->nested_header_checks
                                       : &st->cfg->body_checks;
    if (list->count == 0 || (st->flags & CLEANUP_FLAG_NO_CHECKS))
        return CHECK_KEEP;
    /* Keys are C strings: a NUL byte in the content ends the key. */
    struct buf key, value, error;
    buf_init(&key, TABLE_KEY_MAX);
    buf_init(&value, TABLE_VALUE_MAX);
    buf_init(&error, 4096);
    size_t key_len = strnlen(text, len);
    if (key_len > TABLE_KEY_MAX)
        key_len = TABLE_KEY_MAX;
    enum cleanup_check_result result = CHECK_KEEP;
    if (buf_set(&key, text, key_len) != 0) {
        cleanup_fail(st, CLEANUP_DEFER, 451, "4.3.0", "Out of memory");
    } else {
        int rc = tables_lookup(list, buf_cstr(&key), &value, &error);
        if (rc == TABLE_ERROR) {
            log_warn("%s: %s_checks lookup error: %s", st->id,
                     check_name(kind), buf_cstr(&error));
            cleanup_fail(st, CLEANUP_DEFER, 451, "4.3.0",
                         "Error: lookup table unavailable");
        } else if (rc == TABLE_FOUND) {
            result = apply_action(st, kind, text, len, buf_cstr(&value),
                                  prepend, replacement);
        }
    }
    buf_free(&key);
    buf_free(&value);
    buf_free(&error);
    return result;
}
