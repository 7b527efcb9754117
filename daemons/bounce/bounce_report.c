/*
 * bounce_report - read what a notice needs from the queue file, choose its
 * recipients, and write the notice (interface and usage: bounce_report.h;
 * the contract: docs/protocol.md, "bounce").
 *
 * Every text that comes from outside (reasons, remote replies, addresses)
 * has its control characters turned into spaces and is folded at spaces so
 * that no line passes BOUNCE_LINE_MAX; a word longer than that is cut.
 * The attached original is copied as it is, except that a line longer
 * than BOUNCE_LINE_MAX is broken (as a folded field in the header).
 */
#include "bounce_report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail_header.h"
#include "queue_file.h"

/* Where folding starts to look for a space. */
#define BOUNCE_FOLD_WIDTH 76

int bounce_kind_parse(const char *text, enum bounce_kind *kind)
{
    static const char *const names[] = { "failure", "delay", "success" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (text != NULL && strcmp(text, names[i]) == 0) {
            *kind = (enum bounce_kind)i;
            return 0;
        }
    return -1;
}

/* --- The original message ----------------------------------------------- */

void bounce_original_init(struct bounce_original *o)
{
    memset(o, 0, sizeof(*o));
    buf_init(&o->sender, QUEUE_RECORD_MAX);
    buf_init(&o->envid, QUEUE_RECORD_MAX);
    buf_init(&o->header, BOUNCE_HEADER_MAX);
    buf_init(&o->body, BUF_LIMIT_MAX);
}

void bounce_original_free(struct bounce_original *o)
{
    buf_free(&o->sender);
    buf_free(&o->envid);
    buf_free(&o->header);
    buf_free(&o->body);
}

static void original_attribute(struct bounce_original *o, const char *attr)
{
    const char *eq = strchr(attr, '=');
    if (eq == NULL)
        return;
    size_t name_len = (size_t)(eq - attr);
    const char *value = eq + 1;
    if (name_len == 9 && strncmp(attr, "dsn_envid", 9) == 0)
        (void)buf_set_str(&o->envid, value);
    else if (name_len == 7 && strncmp(attr, "dsn_ret", 7) == 0)
        o->ret_hdrs = strcasecmp(value, "HDRS") == 0;
    else if (name_len == 8 && strncmp(attr, "smtputf8", 8) == 0)
        o->smtputf8 = strcmp(value, "1") == 0;
}

/* Where the header ends in content: the offset of the empty line that
 * separates it from the body, or -1 when it is not there yet. */
static long header_end(const struct buf *content)
{
    if (content->len > 0 && content->data[0] == '\n')
        return 0;
    const char *p = content->len > 1 ? memmem(content->data, content->len,
                                              "\n\n", 2)
                                     : NULL;
    return p != NULL ? (long)(p - content->data) + 1 : -1;
}

/* Splits the content read so far into header and body.  complete: the
 * whole content is there (no empty line then means all of it is header). */
static int original_split(struct bounce_original *o, struct buf *content,
                          int complete)
{
    long end = header_end(content);
    size_t header_len = end >= 0 ? (size_t)end : content->len;
    if (header_len > BOUNCE_HEADER_MAX) {
        /* A header that large is cut at its last whole line. */
        header_len = BOUNCE_HEADER_MAX;
        while (header_len > 0 && content->data[header_len - 1] != '\n')
            header_len--;
    }
    if (buf_set(&o->header, content->data, header_len) != 0)
        return -1;
    if (!complete || !o->body_kept)
        return 0;
    size_t body_start = end >= 0 ? (size_t)end + 1 : content->len;
    return buf_set(&o->body, content->data + body_start,
                   content->len - body_start);
}

static int original_size(struct bounce_original *o, const char *text)
{
    long offset, size;
    char *end;
    errno = 0;
    offset = strtol(text, &end, 10);
    if (errno != 0 || end == text || offset < 0)
        return -1;
    size = strtol(end, &end, 10);
    if (errno != 0 || size < 0)
        return -1;
    o->content_size = size;
    return 0;
}

int bounce_original_read(struct bounce_original *o, const char *path,
                         long body_limit, struct buf *error)
{
    struct queue_reader r;
    if (queue_reader_open(&r, path, error) != 0)
        return -1;
    struct queue_record rec;
    queue_record_init(&rec);
    struct buf content;
    buf_init(&content, (size_t)body_limit + BOUNCE_HEADER_MAX + 2);
    int rc, failed = 0, header_done = 0;
    while (!failed && (rc = queue_reader_next(&r, &rec, error)) == 1) {
        const char *data = buf_cstr(&rec.data);
        switch (rec.type) {
        case QUEUE_REC_SIZE:
            if (original_size(o, data) != 0) {
                buf_printf(error, "%s: bad size record", path);
                failed = 1;
            }
            o->body_kept = o->content_size <= body_limit;
            break;
        case QUEUE_REC_TIME:
            o->arrival = strtol(data, NULL, 10);
            break;
        case QUEUE_REC_ATTR:
            original_attribute(o, data);
            break;
        case QUEUE_REC_SENDER:
            if (buf_set(&o->sender, rec.data.data, rec.data.len) != 0)
                failed = 1;
            break;
        case QUEUE_REC_BLOCK:
            if (header_done)
                break;
            if (buf_append(&content, rec.data.data, rec.data.len) != 0) {
                /* Only a body beyond the limit gets here (the S record
                 * lied, or a huge header): keep the header. */
                o->body_kept = 0;
                header_done = 1;
                break;
            }
            if (!o->body_kept && header_end(&content) >= 0)
                header_done = 1;
            break;
        default:
            break;
        }
    }
    if (!failed && rc < 0)
        failed = 1;
    if (!failed && original_split(o, &content, 1) != 0) {
        buf_printf(error, "%s: out of memory", path);
        failed = 1;
    }
    buf_free(&content);
    queue_record_free(&rec);
    queue_reader_close(&r);
    return failed ? -1 : 0;
}

/* --- Choosing the recipients -------------------------------------------- */

int bounce_notify_wants(const char *notify, enum bounce_kind kind)
{
    static const char *const words[] = { "FAILURE", "DELAY", "SUCCESS" };
    if (notify == NULL || notify[0] == '\0')
        return kind != BOUNCE_SUCCESS;
    const char *want = words[kind];
    size_t want_len = strlen(want);
    for (const char *p = notify; *p != '\0';) {
        size_t len = strcspn(p, ", ");
        if (len == want_len && strncasecmp(p, want, len) == 0)
            return 1;
        p += len;
        p += strspn(p, ", ");
    }
    return 0;
}

struct select_item {
    const struct recipient_log_entry *entry;
    size_t index;
};

static int by_recipient_then_index(const void *a, const void *b)
{
    const struct select_item *x = a, *y = b;
    int c = strcmp(x->entry->recipient, y->entry->recipient);
    if (c != 0)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int by_index(const void *a, const void *b)
{
    const struct select_item *x = a, *y = b;
    return x->index < y->index ? -1 : x->index > y->index;
}

int bounce_report_select(const struct recipient_log *log,
                         enum bounce_kind kind, struct bounce_selection *sel)
{
    sel->items = NULL;
    sel->count = 0;
    if (log->count == 0)
        return 0;
    struct select_item *items = calloc(log->count, sizeof(*items));
    if (items == NULL)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < log->count; i++) {
        const struct recipient_log_entry *e = &log->entries[i];
        /* The marker of a delay notice sent is nobody's entry. */
        if (e->recipient == NULL || e->recipient[0] == '\0')
            continue;
        items[n].entry = e;
        items[n].index = i;
        n++;
    }
    /* Only the last entry of each recipient counts (a defer log has one
     * per attempt). */
    qsort(items, n, sizeof(*items), by_recipient_then_index);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        int last = i + 1 == n || strcmp(items[i].entry->recipient,
                                        items[i + 1].entry->recipient) != 0;
        if (last && bounce_notify_wants(items[i].entry->notify, kind))
            items[kept++] = items[i];
    }
    qsort(items, kept, sizeof(*items), by_index);
    if (kept > 0) {
        sel->items = calloc(kept, sizeof(*sel->items));
        if (sel->items == NULL) {
            free(items);
            return -1;
        }
    }
    for (size_t i = 0; i < kept; i++)
        sel->items[i] = items[i].entry;
    sel->count = kept;
    free(items);
    return 0;
}

void bounce_selection_free(struct bounce_selection *sel)
{
    free(sel->items);
    sel->items = NULL;
    sel->count = 0;
}

/* --- Writing the notice ------------------------------------------------- */

int bounce_report_8bit(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] >= 0x80)
            return 1;
    return 0;
}

static int is_control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

static int is_separator(char c)
{
    return c == ' ' || is_control((unsigned char)c);
}

/* Appends text folded: a break (cont, "\n" and an indent such as "\t")
 * goes before a word that would take the line past BOUNCE_FOLD_WIDTH, and
 * inside a word that alone would pass BOUNCE_LINE_MAX.  column: bytes
 * already on the line.  Runs of spaces and control characters become one
 * space; those at either end are dropped. */
static int append_folded(struct buf *out, const char *text, size_t len,
                         size_t column, const char *cont)
{
    size_t indent = strlen(cont) - 1;
    int first = 1;
    size_t i = 0;
    while (i < len) {
        while (i < len && is_separator(text[i]))
            i++;
        size_t start = i;
        while (i < len && !is_separator(text[i]))
            i++;
        size_t word = i - start;
        if (word == 0)
            break;
        if (!first && column + 1 + word > BOUNCE_FOLD_WIDTH) {
            if (buf_append_str(out, cont) != 0)
                return -1;
            column = indent;
        } else if (!first) {
            if (buf_append_char(out, ' ') != 0)
                return -1;
            column++;
        }
        first = 0;
        const char *w = text + start;
        while (word > 0) {
            if (column >= BOUNCE_LINE_MAX) {
                if (buf_append_str(out, cont) != 0)
                    return -1;
                column = indent;
            }
            size_t room = BOUNCE_LINE_MAX - column;
            size_t n = word < room ? word : room;
            if (buf_append(out, w, n) != 0)
                return -1;
            column += n;
            w += n;
            word -= n;
        }
    }
    return 0;
}

/* "Name: value\n", the value folded. */
static int put_field(struct buf *out, const char *name, const char *value)
{
    if (buf_printf(out, "%s: ", name) != 0 ||
        append_folded(out, value, strlen(value), strlen(name) + 2,
                      "\n\t") != 0)
        return -1;
    return buf_append_char(out, '\n');
}

static int put_date_field(struct buf *out, const char *name, time_t when)
{
    struct buf date;
    buf_init(&date, 128);
    int rc = mail_date_format(when, &date) == 0
                 ? put_field(out, name, buf_cstr(&date))
                 : -1;
    buf_free(&date);
    return rc;
}

/* A type and an address ("rfc822; bob@example.net"); ORCPT's form
 * "rfc822;bob@example.net" gets its space. */
static int put_address_field(struct buf *out, const char *name,
                             const char *typed)
{
    struct buf value;
    buf_init(&value, RECIPIENT_LOG_ENTRY_MAX);
    const char *semi = strchr(typed, ';');
    int rc;
    if (semi != NULL) {
        const char *addr = semi + 1;
        while (*addr == ' ')
            addr++;
        rc = buf_printf(&value, "%.*s; %s", (int)(semi - typed), typed, addr);
    } else {
        rc = buf_printf(&value, "rfc822; %s", typed);
    }
    if (rc == 0)
        rc = put_field(out, name, buf_cstr(&value));
    buf_free(&value);
    return rc;
}

static const char *entry_address_type(const struct bounce_original *o,
                                      const struct recipient_log_entry *e)
{
    return o->smtputf8 && bounce_report_8bit(e->recipient,
                                             strlen(e->recipient))
               ? "utf-8"
               : "rfc822";
}

/* A d.d.d code of RFC 3463 (class 2, 4 or 5, at most 3 digits each). */
static int status_valid(const char *s)
{
    if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5') ||
        s[1] != '.')
        return 0;
    const char *p = s + 2;
    for (int part = 0; part < 2; part++) {
        size_t digits = strspn(p, "0123456789");
        if (digits == 0 || digits > 3)
            return 0;
        p += digits;
        if (part == 0 && *p++ != '.')
            return 0;
    }
    return *p == '\0';
}

/* The Status of an entry in a notice of this kind: a failure is
 * permanent (a deferred recipient that expired becomes 5.x.x). */
static int put_status(struct buf *out, enum bounce_kind kind,
                      const char *status)
{
    static const char *const fallback[] = { "5.0.0", "4.0.0", "2.0.0" };
    if (!status_valid(status))
        return put_field(out, "Status", fallback[kind]);
    if (kind == BOUNCE_FAILURE && status[0] != '5')
        return buf_printf(out, "Status: 5%s\n", status + 1);
    return put_field(out, "Status", status);
}

static const char *entry_action(enum bounce_kind kind,
                                const struct recipient_log_entry *e)
{
    if (kind == BOUNCE_FAILURE)
        return "failed";
    if (kind == BOUNCE_DELAY)
        return "delayed";
    if (e->action != NULL && (strcmp(e->action, "expanded") == 0 ||
                              strcmp(e->action, "relayed") == 0))
        return e->action;
    return "delivered";
}

static int put_recipient_fields(struct buf *out, const struct bounce_report *r,
                                const struct bounce_original *o,
                                const struct recipient_log_entry *e)
{
    struct buf final;
    buf_init(&final, RECIPIENT_LOG_ENTRY_MAX);
    int rc = buf_printf(&final, "%s; %s", entry_address_type(o, e),
                        e->recipient);
    if (rc == 0)
        rc = buf_append_char(out, '\n');
    if (rc == 0)
        rc = put_field(out, "Final-Recipient", buf_cstr(&final));
    buf_free(&final);
    if (rc == 0 && e->orcpt != NULL && e->orcpt[0] != '\0')
        rc = put_address_field(out, "Original-Recipient", e->orcpt);
    if (rc == 0)
        rc = put_field(out, "Action", entry_action(r->kind, e));
    if (rc == 0)
        rc = put_status(out, r->kind, e->status);
    if (rc == 0 && e->remote_mta != NULL && e->remote_mta[0] != '\0')
        rc = put_field(out, "Remote-MTA", e->remote_mta);
    if (rc == 0 && e->diagnostic != NULL && e->diagnostic[0] != '\0')
        rc = put_field(out, "Diagnostic-Code", e->diagnostic);
    else if (rc == 0 && e->text != NULL && e->text[0] != '\0') {
        struct buf diag;
        buf_init(&diag, RECIPIENT_LOG_ENTRY_MAX + 16);
        rc = buf_printf(&diag, "X-Postino; %s", e->text);
        if (rc == 0)
            rc = put_field(out, "Diagnostic-Code", buf_cstr(&diag));
        buf_free(&diag);
    }
    if (rc == 0 && e->time > 0)
        rc = put_date_field(out, "Last-Attempt-Date", (time_t)e->time);
    if (rc == 0 && r->kind == BOUNCE_DELAY && o->arrival > 0)
        rc = put_date_field(out, "Will-Retry-Until",
                            (time_t)(o->arrival + r->queue_lifetime));
    return rc;
}

static int put_delivery_status(struct buf *out, const struct bounce_report *r,
                               const struct bounce_original *o,
                               const struct bounce_selection *sel)
{
    struct buf mta;
    buf_init(&mta, 1024);
    int rc = buf_printf(&mta, "dns; %s", r->myhostname);
    if (rc == 0)
        rc = put_field(out, "Reporting-MTA", buf_cstr(&mta));
    buf_free(&mta);
    if (rc == 0)
        rc = put_field(out, "X-Postino-Queue-ID", r->queue_id);
    if (rc == 0 && o->sender.len > 0) {
        struct buf sender;
        buf_init(&sender, QUEUE_RECORD_MAX + 16);
        rc = buf_printf(&sender, "%s; %s",
                        o->smtputf8 && bounce_report_8bit(o->sender.data,
                                                          o->sender.len)
                            ? "utf-8"
                            : "rfc822",
                        buf_cstr(&o->sender));
        if (rc == 0)
            rc = put_field(out, "X-Postino-Sender", buf_cstr(&sender));
        buf_free(&sender);
    }
    if (rc == 0 && o->envid.len > 0)
        rc = put_field(out, "Original-Envelope-Id", buf_cstr(&o->envid));
    if (rc == 0 && o->arrival > 0)
        rc = put_date_field(out, "Arrival-Date", (time_t)o->arrival);
    for (size_t i = 0; rc == 0 && i < sel->count; i++)
        rc = put_recipient_fields(out, r, o, sel->items[i]);
    return rc;
}

/* --- The text part ------------------------------------------------------ */

static int full_original(const struct bounce_report *r,
                         const struct bounce_original *o)
{
    return r->kind == BOUNCE_FAILURE && !r->postmaster_copy &&
           !o->ret_hdrs && o->body_kept;
}

static int put_paragraph(struct buf *out, const char *text)
{
    if (append_folded(out, text, strlen(text), 0, "\n") != 0)
        return -1;
    return buf_append_str(out, "\n\n");
}

static int put_intro(struct buf *out, const struct bounce_report *r,
                     const struct bounce_original *o)
{
    struct buf line;
    buf_init(&line, 4096);
    int rc = buf_printf(&line, "This is the %s mail system at host %s.",
                        r->mail_name, r->myhostname);
    if (rc == 0)
        rc = put_paragraph(out, buf_cstr(&line));
    buf_reset(&line);
    const char *attached = full_original(r, o)
                               ? "The message is attached below."
                               : "The header of the message is attached "
                                 "below.";
    if (rc != 0) {
        buf_free(&line);
        return rc;
    }
    switch (r->kind) {
    case BOUNCE_FAILURE:
        if (r->postmaster_copy)
            rc = buf_printf(&line, "This is the postmaster's copy: a "
                                   "message from <%s> could not be "
                                   "delivered to one or more recipients, "
                                   "for the reasons below. %s",
                            buf_cstr(&o->sender), attached);
        else
            rc = buf_printf(&line, "%s could not be delivered to one or "
                                   "more recipients, for the reasons "
                                   "below. %s",
                            r->postmaster ? "A notice from the mail system"
                                          : "Your message",
                            attached);
        if (rc == 0)
            rc = put_paragraph(out, buf_cstr(&line));
        if (rc == 0 && !r->postmaster && !r->postmaster_copy)
            rc = put_paragraph(out, "If you need help, write to postmaster "
                                    "and include this report; you may "
                                    "remove your own text from the "
                                    "attached message first.");
        break;
    case BOUNCE_DELAY: {
        rc = put_paragraph(out, "This is a warning only: you do not need "
                                "to send your message again.");
        struct buf until;
        buf_init(&until, 128);
        if (rc == 0)
            rc = mail_date_format((time_t)(o->arrival + r->queue_lifetime),
                                  &until);
        if (rc == 0)
            rc = buf_printf(&line, "Your message could not be delivered "
                                   "yet to one or more recipients, for the "
                                   "reasons below. Delivery will be tried "
                                   "again until %s. %s",
                            buf_cstr(&until), attached);
        buf_free(&until);
        if (rc == 0)
            rc = put_paragraph(out, buf_cstr(&line));
        break;
    }
    case BOUNCE_SUCCESS:
        rc = buf_printf(&line, "Your message was delivered to the "
                               "recipients below, as you asked. %s",
                        attached);
        if (rc == 0)
            rc = put_paragraph(out, buf_cstr(&line));
        break;
    }
    buf_free(&line);
    return rc;
}

/* "<bob@example.net> (expanded from <b@example.net>): reason" */
static int put_recipient_text(struct buf *out,
                              const struct recipient_log_entry *e)
{
    struct buf line;
    buf_init(&line, 3 * RECIPIENT_LOG_ENTRY_MAX);
    int rc = buf_printf(&line, "<%s>", e->recipient);
    const char *orig = e->orcpt != NULL ? strchr(e->orcpt, ';') : NULL;
    if (orig != NULL) {
        orig++;
        while (*orig == ' ')
            orig++;
    }
    if (rc == 0 && orig != NULL && orig[0] != '\0' &&
        strcmp(orig, e->recipient) != 0)
        rc = buf_printf(&line, " (expanded from <%s>)", orig);
    if (rc == 0)
        rc = buf_printf(&line, ": %s",
                        e->text != NULL && e->text[0] != '\0'
                            ? e->text
                            : (e->status != NULL ? e->status : "unknown"));
    if (rc == 0)
        rc = append_folded(out, line.data, line.len, 0, "\n    ");
    if (rc == 0)
        rc = buf_append_str(out, "\n\n");
    buf_free(&line);
    return rc;
}

static int put_text(struct buf *out, const struct bounce_report *r,
                    const struct bounce_original *o,
                    const struct bounce_selection *sel)
{
    int rc = put_intro(out, r, o);
    if (rc == 0)
        rc = buf_printf(out, "%*sThe mail system\n\n", 19, "");
    for (size_t i = 0; rc == 0 && i < sel->count; i++)
        rc = put_recipient_text(out, sel->items[i]);
    return rc;
}

/* --- The attached original ---------------------------------------------- */

/* Copies data, breaking lines longer than BOUNCE_LINE_MAX with cont. */
static int put_lines(struct buf *out, const char *data, size_t len,
                     const char *cont)
{
    size_t column = 0, start = 0;
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\n') {
            column = 0;
            continue;
        }
        if (++column > BOUNCE_LINE_MAX) {
            if (buf_append(out, data + start, i - start) != 0 ||
                buf_append_str(out, cont) != 0)
                return -1;
            start = i;
            column = strlen(cont);
        }
    }
    if (buf_append(out, data + start, len - start) != 0)
        return -1;
    if (len > 0 && data[len - 1] != '\n')
        return buf_append_char(out, '\n');
    return 0;
}

static int put_original(struct buf *out, const struct bounce_report *r,
                        const struct bounce_original *o)
{
    if (put_lines(out, o->header.data, o->header.len, "\n\t") != 0)
        return -1;
    if (!full_original(r, o))
        return 0;
    if (buf_append_char(out, '\n') != 0)
        return -1;
    return put_lines(out, o->body.data, o->body.len, "\n");
}

/* --- The whole notice --------------------------------------------------- */

static const char *subject(const struct bounce_report *r)
{
    switch (r->kind) {
    case BOUNCE_DELAY:
        return "Delayed Mail (still being retried)";
    case BOUNCE_SUCCESS:
        return "Successful Mail Delivery Report";
    default:
        return r->postmaster_copy ? "Postmaster Copy: Undelivered Mail"
                                  : "Undelivered Mail Returned to Sender";
    }
}

static const char *original_description(const struct bounce_report *r,
                                        const struct bounce_original *o)
{
    if (full_original(r, o))
        return "Undelivered Message";
    switch (r->kind) {
    case BOUNCE_DELAY:
        return "Delayed Message Headers";
    case BOUNCE_SUCCESS:
        return "Delivered Message Headers";
    default:
        return "Undelivered Message Headers";
    }
}

static const char *original_type(const struct bounce_report *r,
                                 const struct bounce_original *o)
{
    if (full_original(r, o))
        return o->smtputf8 ? "message/global" : "message/rfc822";
    return o->smtputf8 ? "message/global-headers" : "text/rfc822-headers";
}

static int contains(const struct buf *b, const char *text)
{
    return b->len > 0 && memmem(b->data, b->len, text, strlen(text)) != NULL;
}

/* A boundary that the attached original does not hold. */
static int choose_boundary(const struct bounce_report *r,
                           const struct bounce_original *o,
                           struct buf *boundary)
{
    for (int n = 0; n < 1000; n++) {
        buf_reset(boundary);
        if (buf_printf(boundary, "%s.%ld/%s", r->new_queue_id, (long)r->now,
                       r->myhostname) != 0 ||
            (n > 0 && buf_printf(boundary, "/%d", n) != 0))
            return -1;
        if (!contains(&o->header, buf_cstr(boundary)) &&
            !contains(&o->body, buf_cstr(boundary)))
            return 0;
    }
    errno = EEXIST;
    return -1;
}

static int put_part_header(struct buf *out, const char *boundary,
                           const char *description, const char *type,
                           const char *body, size_t body_len)
{
    if (buf_printf(out, "\n--%s\n", boundary) != 0 ||
        put_field(out, "Content-Description", description) != 0 ||
        put_field(out, "Content-Type", type) != 0)
        return -1;
    if (bounce_report_8bit(body, body_len) &&
        put_field(out, "Content-Transfer-Encoding", "8bit") != 0)
        return -1;
    return buf_append_char(out, '\n');
}

static int put_parts(struct buf *out, const struct bounce_report *r,
                     const struct bounce_original *o, const char *boundary,
                     const struct bounce_selection *sel)
{
    struct buf part;
    buf_init(&part, out->limit);
    int rc = buf_append_str(out, "This is a MIME-encapsulated message.\n");
    if (rc == 0)
        rc = put_text(&part, r, o, sel);
    /* One empty line before the boundary, not two. */
    if (rc == 0 && part.len > 1 && part.data[part.len - 2] == '\n')
        buf_truncate(&part, part.len - 1);
    if (rc == 0)
        rc = put_part_header(out, boundary, "Notification",
                             bounce_report_8bit(part.data, part.len)
                                 ? "text/plain; charset=utf-8"
                                 : "text/plain; charset=us-ascii",
                             part.data, part.len);
    if (rc == 0)
        rc = buf_append(out, part.data, part.len);
    buf_reset(&part);
    if (rc == 0)
        rc = put_delivery_status(&part, r, o, sel);
    if (rc == 0)
        rc = put_part_header(out, boundary, "Delivery report",
                             o->smtputf8 ? "message/global-delivery-status"
                                         : "message/delivery-status",
                             part.data, part.len);
    if (rc == 0)
        rc = buf_append(out, part.data, part.len);
    buf_reset(&part);
    if (rc == 0)
        rc = put_original(&part, r, o);
    if (rc == 0)
        rc = put_part_header(out, boundary, original_description(r, o),
                             original_type(r, o), part.data, part.len);
    if (rc == 0)
        rc = buf_append(out, part.data, part.len);
    if (rc == 0)
        rc = buf_printf(out, "\n--%s--\n", boundary);
    buf_free(&part);
    return rc;
}

static int put_message_id(struct buf *out, const struct bounce_report *r)
{
    struct tm tm;
    char stamp[32];
    if (gmtime_r(&r->now, &tm) == NULL ||
        strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm) == 0)
        return -1;
    return buf_printf(out, "Message-ID: <%s.%s@%s>\n", stamp,
                      r->new_queue_id, r->myhostname);
}

int bounce_report_compose(const struct bounce_report *r,
                          const struct bounce_original *o,
                          const struct bounce_selection *sel,
                          struct buf *out)
{
    struct buf boundary, body, from;
    buf_init(&boundary, 2048);
    buf_init(&body, out->limit);
    buf_init(&from, 2048);
    int rc = choose_boundary(r, o, &boundary);
    if (rc == 0)
        rc = put_parts(&body, r, o, buf_cstr(&boundary), sel);
    if (rc == 0)
        rc = buf_printf(&from, "MAILER-DAEMON@%s (Mail Delivery System)",
                        r->myhostname);
    if (rc == 0)
        rc = put_field(out, "From", buf_cstr(&from));
    if (rc == 0)
        rc = put_field(out, "To", r->to);
    if (rc == 0)
        rc = put_field(out, "Subject", subject(r));
    if (rc == 0)
        rc = put_date_field(out, "Date", r->now);
    if (rc == 0)
        rc = put_message_id(out, r);
    if (rc == 0)
        rc = put_field(out, "Auto-Submitted", "auto-replied");
    if (rc == 0)
        rc = put_field(out, "MIME-Version", "1.0");
    if (rc == 0)
        rc = buf_printf(out, "Content-Type: multipart/report; "
                             "report-type=%s;\n\tboundary=\"%s\"\n",
                        o->smtputf8 ? "global-delivery-status"
                                    : "delivery-status",
                        buf_cstr(&boundary));
    if (rc == 0)
        rc = put_field(out, "Content-Transfer-Encoding",
                       bounce_report_8bit(body.data, body.len) ? "8bit"
                                                               : "7bit");
    if (rc == 0)
        rc = buf_append_char(out, '\n');
    if (rc == 0)
        rc = buf_append(out, body.data, body.len);
    buf_free(&boundary);
    buf_free(&body);
    buf_free(&from);
    return rc;
}
