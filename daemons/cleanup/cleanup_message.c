/*
 * cleanup_message - the content of a message, as it streams in: lines
 * reassembled from the client's chunks, the header fields (RFC 5322: a
 * name, a colon, folded continuation lines) checked and counted, the
 * Received: field prepended, missing Message-ID:, Date: and From: added
 * for submissions, recipients taken from To:, Cc: and Bcc: for sendmail
 * -t, the addresses of From:, To: and the like completed with @myorigin
 * (local submissions) and rewritten through the canonical maps for mail
 * submitted here, body lines checked, and everything written as content
 * blocks.
 *
 * MIME: multipart boundaries are followed (part headers: MIME fields to
 * mime_header_checks), and the header of an attached message (after
 * "Content-Type: message/rfc822" and its empty line) is read like a part
 * header whose other fields go to nested_header_checks.
 *
 * The header ends at the first line that neither starts nor continues a
 * field; that line (usually the empty separator) begins the body.  When
 * it is not empty an empty line is put before it, so that the stored
 * message always has its separator.  A message with no header at all, or
 * no body, is fine.
 *
 * Bounds: one header field, and the whole header, at most
 * header_size_limit bytes (else 552 5.3.4); the content at most
 * message_size_limit (else 552 5.3.4); more than hopcount_limit Received:
 * fields: 554 5.4.6.  A body line longer than line_length_limit is handled
 * in pieces of that size, each checked by itself (as Postfix does).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cleanup.h"
#include "log.h"
#include "mail_address.h"
#include "mail_header.h"
#include "maildrop.h"

#define MESSAGE_ID_MAX 998

void cleanup_message_init(struct cleanup_state *st)
{
    const struct cleanup_config *cfg = st->cfg;
    size_t line_max = (size_t)(cfg->header_size_limit > cfg->line_length_limit
                                   ? cfg->header_size_limit
                                   : cfg->line_length_limit) + 2;
    buf_init(&st->out, 2 * QUEUE_BLOCK_MAX);
    buf_init(&st->line, line_max);
    buf_init(&st->field, (size_t)cfg->header_size_limit + 2);
    buf_init(&st->message_id, MESSAGE_ID_MAX);
    buf_init(&st->part_boundary, MAIL_BOUNDARY_MAX);
    for (size_t i = 0; i < CLEANUP_MIME_DEPTH; i++)
        buf_init(&st->boundaries[i], MAIL_BOUNDARY_MAX);
    st->in_header = 1;
}

void cleanup_message_free(struct cleanup_state *st)
{
    buf_free(&st->out);
    buf_free(&st->line);
    buf_free(&st->field);
    buf_free(&st->message_id);
    buf_free(&st->part_boundary);
    for (size_t i = 0; i < CLEANUP_MIME_DEPTH; i++)
        buf_free(&st->boundaries[i]);
    cleanup_recipients_free(&st->extracted);
    cleanup_recipients_free(&st->extracted_resent);
}

/* Content goes out in blocks of QUEUE_BLOCK_MAX (the last one shorter). */
static void flush_out(struct cleanup_state *st, int all)
{
    size_t done = 0;
    while (!cleanup_failed(st) && st->writer_open &&
           (st->out.len - done >= QUEUE_BLOCK_MAX ||
            (all && st->out.len > done))) {
        size_t n = st->out.len - done;
        if (n > QUEUE_BLOCK_MAX)
            n = QUEUE_BLOCK_MAX;
        if (queue_writer_add_content(&st->writer, st->out.data + done, n) !=
            0)
            cleanup_fail_write(st, errno);
        done += n;
    }
    buf_consume(&st->out, done);
    if (cleanup_failed(st))
        buf_reset(&st->out);
}

static void emit(struct cleanup_state *st, const char *data, size_t len)
{
    while (len > 0 && !cleanup_failed(st) && st->writer_open) {
        size_t room = QUEUE_BLOCK_MAX - st->out.len % QUEUE_BLOCK_MAX;
        size_t n = len < room ? len : room;
        if (buf_append(&st->out, data, n) != 0) {
            cleanup_fail(st, CLEANUP_DEFER, 451, "4.3.0",
                         "Error: out of memory");
            return;
        }
        data += n;
        len -= n;
        flush_out(st, 0);
    }
}

static void emit_line(struct cleanup_state *st, const struct buf *text)
{
    emit(st, text->data, text->len);
    emit(st, "\n", 1);
}

/* Logs "ID: reject: TEXT; from=<> to=<> ..." and sets the verdict. */
static void reject_message(struct cleanup_state *st, int code,
                           const char *dsn, const char *text)
{
    if (cleanup_failed(st))
        return;
    struct buf context;
    buf_init(&context, 4096);
    cleanup_log_context(st, &context);
    log_info("%s: reject: %s %s: %s %s", st->id, text, buf_cstr(&context),
             dsn, text);
    buf_free(&context);
    cleanup_fail(st, CLEANUP_REJECT, code, dsn, text);
}

static void header_too_large(struct cleanup_state *st)
{
    reject_message(st, 552, "5.3.4", "Message header size exceeds limit");
}

static const char *attr_or(const struct cleanup_state *st, const char *name,
                           const char *fallback)
{
    const char *v = cleanup_attr(st, name);
    return v != NULL && v[0] != '\0' ? v : fallback;
}

void cleanup_message_start(struct cleanup_state *st)
{
    if (st->envelope_written)
        return;
    st->envelope_written = 1;
    cleanup_envelope_rewrite(st, &st->rcpts);
    cleanup_envelope_write_recipients(st);
    if (!cleanup_failed(st) && st->writer_open &&
        queue_writer_add(&st->writer, QUEUE_REC_CONTENT, "", 0) != 0)
        cleanup_fail_write(st, errno);
    const struct cleanup_config *cfg = st->cfg;
    struct mail_received r = {
        .helo_name = cleanup_attr(st, "helo_name"),
        .client_name = cleanup_attr(st, "client_name"),
        .client_address = cleanup_attr(st, "client_address"),
        .tls = cleanup_attr(st, "tls"),
        .sasl_username = cleanup_attr(st, "sasl_username"),
        .local_user = cleanup_attr(st, "local_user"),
        .by_host = attr_or(st, "received_by", cfg->myhostname),
        .mail_name = cfg->mail_name,
        .protocol = attr_or(st, "protocol", "SMTP"),
        .queue_id = st->id,
        .recipient = st->rcpts.count == 1 ? st->rcpts.items[0].address
                                          : NULL,
        .date = st->arrival.tv_sec,
    };
    struct buf received;
    buf_init(&received, CLEANUP_RECORD_MAX);
    if (mail_received_format(&r, &received) != 0)
        cleanup_fail(st, CLEANUP_DEFER, 451, "4.3.0",
                     "Error: cannot format the Received: header");
    emit(st, received.data, received.len);
    buf_free(&received);
}

/* --- Recipients from headers (sendmail -t) ------------------------------ */

static int extract_one(void *ctx, const char *address)
{
    struct cleanup_recipients *list = ctx;
    if (cleanup_recipients_add(list, address, NULL, NULL) != 0)
        return -1;
    return 0;
}

/* Takes the addresses of To, Cc, Bcc (and their Resent- forms); returns
 * true when the field must be left out (Bcc). */
static int extract_field(struct cleanup_state *st, const char *field,
                         size_t len)
{
    static const char *const plain[] = { "To", "Cc", "Bcc" };
    static const char *const resent[] = {
        "Resent-To", "Resent-Cc", "Resent-Bcc",
    };
    for (int i = 0; i < 3; i++) {
        int is_plain = mail_header_name_is(field, len, plain[i]);
        int is_resent = mail_header_name_is(field, len, resent[i]);
        if (!is_plain && !is_resent)
            continue;
        size_t value_len;
        const char *value = mail_header_value(field, len, &value_len);
        struct cleanup_recipients *list =
            is_plain ? &st->extracted : &st->extracted_resent;
        if (mail_address_list(value, value_len, extract_one, list) != 0) {
            log_warn("%s: too many recipients in the message header",
                     st->id);
            cleanup_fail(st, CLEANUP_REJECT, 552, "5.5.3",
                         "Error: too many recipients");
        }
        return i == 2;
    }
    return 0;
}

/* --- Address fields: canonical rewriting --------------------------------- */

/* Which side's canonical maps rewrite the addresses of a field: 1 sender,
 * 0 recipient, -1 not an address field. */
static int address_field_side(const char *field, size_t len)
{
    static const char *const senders[] = {
        "From", "Sender", "Reply-To", "Resent-From", "Resent-Sender",
        "Resent-Reply-To",
    };
    static const char *const recipients[] = {
        "To", "Cc", "Bcc", "Resent-To", "Resent-Cc", "Resent-Bcc",
    };
    for (size_t i = 0; i < sizeof(senders) / sizeof(senders[0]); i++)
        if (mail_header_name_is(field, len, senders[i]))
            return 1;
    for (size_t i = 0; i < sizeof(recipients) / sizeof(recipients[0]); i++)
        if (mail_header_name_is(field, len, recipients[i]))
            return 0;
    return -1;
}

/* Header addresses are rewritten only for mail that is submitted here
 * (a submission, or no network client), as Postfix does by default
 * (local_header_rewrite_clients): others' headers are theirs. */
static int header_rewrite_applies(const struct cleanup_state *st)
{
    if (st->flags & CLEANUP_FLAG_NO_REWRITE)
        return 0;
    if (st->cfg->canonical.count == 0 && st->cfg->sender_canonical.count == 0 &&
        st->cfg->recipient_canonical.count == 0)
        return 0;
    return (st->flags & CLEANUP_FLAG_SUBMISSION) ||
           cleanup_attr(st, "client_address") == NULL;
}

/* Replaces the first occurrence of from at or after *pos in field by to;
 * display names, comments and folding stay as they were. */
static void replace_in_field(struct buf *field, size_t *pos, const char *from,
                             const char *to)
{
    size_t from_len = strlen(from), to_len = strlen(to);
    if (*pos >= field->len)
        return;
    const char *hit = memmem(field->data + *pos, field->len - *pos, from,
                             from_len);
    if (hit == NULL)
        return;
    size_t at = (size_t)(hit - field->data);
    struct buf out;
    buf_init(&out, field->limit);
    if (buf_append(&out, field->data, at) == 0 &&
        buf_append(&out, to, to_len) == 0 &&
        buf_append(&out, field->data + at + from_len,
                   field->len - at - from_len) == 0 &&
        buf_set(field, out.data, out.len) == 0)
        *pos = at + to_len;
    buf_free(&out);
}

/* --- Address fields: @myorigin for local submissions ---------------------- */

/* Where "@myorigin" goes into a field: offsets, in order. */
#define ORIGIN_INSERTS_MAX 1000
struct origin_inserts {
    size_t base;     /* offset of the value in the field */
    size_t at[ORIGIN_INSERTS_MAX];
    size_t count;
    const char *value;
};

static int note_bare_address(void *ctx, const char *address, size_t start,
                             size_t end)
{
    struct origin_inserts *ins = ctx;
    size_t len = strlen(address);
    /* Only an address written as one piece: "joe", not "joe (x) . y". */
    if (cleanup_address_has_domain(address, len) || end - start != len ||
        memcmp(ins->value + start, address, len) != 0 ||
        ins->count >= ORIGIN_INSERTS_MAX)
        return 0;
    ins->at[ins->count++] = ins->base + end;
    return 0;
}

/* Appends "@myorigin" to each bare local part in st->field; display
 * names, comments and folding stay as they were. */
static void qualify_address_field(struct cleanup_state *st)
{
    if (!cleanup_appends_origin(st) || st->cfg->myorigin[0] == '\0' ||
        address_field_side(st->field.data, st->field.len) < 0)
        return;
    size_t value_len;
    const char *value = mail_header_value(st->field.data, st->field.len,
                                          &value_len);
    struct origin_inserts *ins = calloc(1, sizeof(*ins));
    if (ins == NULL)
        return;
    ins->base = (size_t)(value - st->field.data);
    ins->value = value;
    (void)mail_address_spans(value, value_len, note_bare_address, ins);
    if (ins->count > 0) {
        struct buf out;
        buf_init(&out, st->field.limit);
        size_t from = 0;
        int rc = 0;
        for (size_t i = 0; i < ins->count && rc == 0; i++) {
            rc = buf_append(&out, st->field.data + from, ins->at[i] - from);
            if (rc == 0)
                rc = buf_printf(&out, "@%s", st->cfg->myorigin);
            from = ins->at[i];
        }
        if (rc == 0)
            rc = buf_append(&out, st->field.data + from,
                            st->field.len - from);
        if (rc == 0 && buf_set(&st->field, out.data, out.len) != 0)
            rc = -1;
        if (rc != 0)
            header_too_large(st);
        buf_free(&out);
    }
    free(ins);
}

/* Rewrites the addresses of From:, To: and the like in st->field. */
static void rewrite_address_field(struct cleanup_state *st)
{
    qualify_address_field(st);
    int side = address_field_side(st->field.data, st->field.len);
    if (side < 0 || !header_rewrite_applies(st) || cleanup_failed(st))
        return;
    struct cleanup_recipients found = { 0 };
    size_t value_len;
    const char *value = mail_header_value(st->field.data, st->field.len,
                                          &value_len);
    (void)mail_address_list(value, value_len, extract_one, &found);
    size_t pos = (size_t)(value - st->field.data);
    struct buf address;
    buf_init(&address, CLEANUP_ADDRESS_MAX);
    for (size_t i = 0; i < found.count && !cleanup_failed(st); i++) {
        const char *original = found.items[i].address;
        if (buf_set_str(&address, original) != 0 ||
            cleanup_rewrite_address(st, side, &address) != 0)
            break;
        if (strcmp(buf_cstr(&address), original) != 0)
            replace_in_field(&st->field, &pos, original, buf_cstr(&address));
    }
    buf_free(&address);
    cleanup_recipients_free(&found);
}

/* --- Header fields ------------------------------------------------------ */

static void note_message_id(struct cleanup_state *st, const char *field,
                            size_t len)
{
    size_t value_len;
    const char *value = mail_header_value(field, len, &value_len);
    buf_reset(&st->message_id);
    struct buf unfolded;
    buf_init(&unfolded, MESSAGE_ID_MAX);
    if (mail_header_unfold(value, value_len, &unfolded) == 0)
        (void)buf_set(&st->message_id, unfolded.data, unfolded.len);
    buf_free(&unfolded);
    st->seen_message_id = 1;
}

/* Counts and remembers what later steps need to know about a field. */
static void note_field(struct cleanup_state *st, const char *field,
                       size_t len)
{
    if (mail_header_name_is(field, len, "Received") &&
        ++st->hops > st->cfg->hopcount_limit)
        reject_message(st, 554, "5.4.6", "Too many hops");
    if (mail_header_name_is(field, len, "Message-ID"))
        note_message_id(st, field, len);
    if (mail_header_name_is(field, len, "Date"))
        st->seen_date = 1;
    if (mail_header_name_is(field, len, "From"))
        st->seen_from = 1;
    if (mail_header_name_len(field, len) > 7 &&
        strncasecmp(field, "Resent-", 7) == 0)
        st->seen_resent = 1;
}

/* Which checks see a field: MIME fields go to mime_header_checks, the
 * others of the message header to header_checks, those of an attached
 * message's header to nested_header_checks; other fields of a part
 * header get none.  -1: none. */
static int field_check_kind(const struct cleanup_state *st, const char *field,
                            size_t len)
{
    if (mail_header_is_mime(field, len))
        return CLEANUP_CHECK_MIME;
    if (st->in_header)
        return CLEANUP_CHECK_HEADER;
    return st->in_nested_header ? CLEANUP_CHECK_NESTED : -1;
}

/* The field being assembled is complete: check it and write it. */
static void flush_field(struct cleanup_state *st)
{
    if (st->field.len == 0)
        return;
    const char *field = st->field.data;
    size_t len = st->field.len;
    int primary = st->in_header;
    if (primary) {
        st->header_size += (long long)len;
        if (st->header_size > st->cfg->header_size_limit) {
            header_too_large(st);
            buf_reset(&st->field);
            return;
        }
        note_field(st, field, len);
    }
    if (mail_header_boundary(field, len, &st->part_boundary) != 1 &&
        mail_header_name_is(field, len, "Content-Type"))
        buf_reset(&st->part_boundary);
    if (mail_header_name_is(field, len, "Content-Type"))
        st->part_is_message = mail_header_is_message(field, len);
    int drop = 0;
    if (primary && (st->flags & CLEANUP_FLAG_EXTRACT))
        drop = extract_field(st, field, len);
    struct buf unfolded, prepend, replacement;
    buf_init(&unfolded, (size_t)st->cfg->header_size_limit + 2);
    buf_init(&prepend, CLEANUP_RECORD_MAX);
    buf_init(&replacement, CLEANUP_RECORD_MAX);
    enum cleanup_check_result check = CHECK_KEEP;
    int kind = field_check_kind(st, field, len);
    if (kind >= 0 && !cleanup_failed(st) &&
        mail_header_unfold(field, len, &unfolded) == 0)
        check = cleanup_check(st, (enum cleanup_check_kind)kind,
                              unfolded.data, unfolded.len, &prepend,
                              &replacement);
    if (prepend.len > 0)
        emit_line(st, &prepend);
    if (check == CHECK_REPLACE) {
        emit_line(st, &replacement);
    } else if (check == CHECK_KEEP && !drop) {
        if (primary)
            rewrite_address_field(st);
        emit(st, st->field.data, st->field.len);
    }
    buf_free(&unfolded);
    buf_free(&prepend);
    buf_free(&replacement);
    buf_reset(&st->field);
}

/* --- MIME structure ----------------------------------------------------- */

/* A header (the message's or a part's) ended: a multipart Content-Type in
 * it opens a level whose boundary lines start part headers. */
static void mime_open_level(struct cleanup_state *st)
{
    if (st->part_boundary.len == 0)
        return;
    if (st->mime_depth < CLEANUP_MIME_DEPTH &&
        buf_set(&st->boundaries[st->mime_depth], st->part_boundary.data,
                st->part_boundary.len) == 0)
        st->mime_depth++;
    else
        log_debug("%s: MIME nesting over %d levels: deeper parts are body",
                  st->id, CLEANUP_MIME_DEPTH);
    buf_reset(&st->part_boundary);
}

/* True when text (a body line without LF) is a boundary of an open
 * multipart: "--B" starts a part header, "--B--" closes the multipart
 * (and any inside it). */
static int mime_boundary_line(struct cleanup_state *st, const char *text,
                              size_t len)
{
    if (st->mime_depth == 0 || len < 3 || text[0] != '-' || text[1] != '-')
        return 0;
    while (len > 2 && (text[len - 1] == ' ' || text[len - 1] == '\t' ||
                       text[len - 1] == '\r'))
        len--;
    for (size_t level = st->mime_depth; level-- > 0;) {
        const struct buf *b = &st->boundaries[level];
        if (len < 2 + b->len || memcmp(text + 2, b->data, b->len) != 0)
            continue;
        size_t rest = len - 2 - b->len;
        if (rest == 2 && text[len - 2] == '-' && text[len - 1] == '-') {
            st->mime_depth = level;
            return 1;
        }
        if (rest == 0) {
            st->mime_depth = level + 1;
            st->in_part_header = 1;
            st->in_nested_header = 0;
            st->part_is_message = 0;
            buf_reset(&st->part_boundary);
            return 1;
        }
    }
    return 0;
}

/* A header (the message's or a part's) ended with the line blank or
 * not: after "Content-Type: message/rfc822" and its empty line comes the
 * header of the attached message, read as a part header whose other
 * fields nested_header_checks sees (and so on, attachment in
 * attachment). */
static void begin_nested_header(struct cleanup_state *st, int blank)
{
    int nested = st->part_is_message && blank;
    st->part_is_message = 0;
    st->in_part_header = nested;
    st->in_nested_header = nested;
}

static void end_part_header(struct cleanup_state *st, int blank)
{
    flush_field(st);
    mime_open_level(st);
    begin_nested_header(st, blank);
}

/* "From: Full Name <sender>" (sendmail -F) or "From: sender"; the null
 * sender is MAILER-DAEMON. */
static void add_from(struct cleanup_state *st, struct buf *h)
{
    struct buf address;
    buf_init(&address, CLEANUP_ADDRESS_MAX + 64);
    if (buf_set_str(&address, st->sender.len > 0 ? buf_cstr(&st->sender)
                                                 : "MAILER-DAEMON") != 0 ||
        (st->sender.len == 0 && cleanup_append_origin(st, &address) != 0)) {
        buf_free(&address);
        return;
    }
    const char *full_name = cleanup_attr(st, "full_name");
    const char *utf8 = cleanup_attr(st, "smtputf8");
    buf_reset(h);
    int rc = buf_append_str(h, "From: ");
    size_t before = h->len;
    if (rc == 0 && full_name != NULL &&
        mail_header_phrase(full_name, strlen(full_name),
                           utf8 != NULL && strcmp(utf8, "1") == 0, h) != 0) {
        log_warn("%s: full name not usable in From: (%s)", st->id,
                 strerror(errno));
        buf_truncate(h, before); /* the address alone */
    }
    if (rc == 0)
        rc = h->len > before ? buf_printf(h, " <%s>", buf_cstr(&address))
                             : buf_append_str(h, buf_cstr(&address));
    if (rc == 0)
        emit_line(st, h);
    buf_free(&address);
}

/* Message-ID:, Date:, From: for submissions that lack them. */
static void add_missing_headers(struct cleanup_state *st)
{
    if (!(st->flags & CLEANUP_FLAG_SUBMISSION))
        return;
    struct buf h;
    buf_init(&h, CLEANUP_RECORD_MAX);
    if (!st->seen_message_id) {
        struct tm tm;
        char stamp[32] = "";
        time_t t = st->arrival.tv_sec;
        if (gmtime_r(&t, &tm) != NULL)
            strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
        buf_reset(&st->message_id);
        (void)buf_printf(&st->message_id, "<%s.%s@%s>", stamp, st->id,
                         st->cfg->myhostname);
        buf_reset(&h);
        if (buf_printf(&h, "Message-ID: %s", buf_cstr(&st->message_id)) == 0)
            emit_line(st, &h);
        st->seen_message_id = 1;
    }
    if (!st->seen_date) {
        buf_reset(&h);
        if (buf_append_str(&h, "Date: ") == 0 &&
            mail_date_format(st->arrival.tv_sec, &h) == 0)
            emit_line(st, &h);
    }
    if (!st->seen_from)
        add_from(st, &h);
    buf_free(&h);
}

static void end_header(struct cleanup_state *st)
{
    flush_field(st);
    st->in_header = 0;
    mime_open_level(st);
    add_missing_headers(st);
    if (!cleanup_failed(st))
        log_info("%s: message-id=%s", st->id,
                 st->message_id.len > 0 ? buf_cstr(&st->message_id) : "<>");
}

/* --- Body lines --------------------------------------------------------- */

/* One body line or piece: text without its LF; newline says whether it
 * had one. */
static void body_line(struct cleanup_state *st, const char *text, size_t len,
                      int newline)
{
    if (cleanup_failed(st))
        return;
    struct buf prepend, replacement;
    buf_init(&prepend, CLEANUP_RECORD_MAX);
    buf_init(&replacement, CLEANUP_RECORD_MAX);
    enum cleanup_check_result check = cleanup_check(
        st, CLEANUP_CHECK_BODY, text, len, &prepend, &replacement);
    if (prepend.len > 0)
        emit_line(st, &prepend);
    if (check == CHECK_REPLACE) {
        emit_line(st, &replacement);
    } else if (check == CHECK_KEEP) {
        emit(st, text, len);
        if (newline)
            emit(st, "\n", 1);
    }
    buf_free(&prepend);
    buf_free(&replacement);
}

/* The first line after the header: the separator, or a body line that
 * needs one before it. */
static void first_body_line(struct cleanup_state *st, const char *text,
                            size_t len, int newline)
{
    int blank = len == 0 || (len == 1 && text[0] == '\r');
    emit(st, "\n", 1);
    if (!blank)
        body_line(st, text, len, newline);
}

/* --- Lines -------------------------------------------------------------- */

/* A line in the body: a MIME boundary, or a line for body_checks. */
static void body_text_line(struct cleanup_state *st, const char *text,
                           size_t len, int newline)
{
    size_t text_len = newline ? len - 1 : len;
    if (newline && mime_boundary_line(st, text, text_len)) {
        emit(st, text, len);
        return;
    }
    body_line(st, text, text_len, newline);
}

/* One physical line (text includes its LF when newline). */
static void process_line(struct cleanup_state *st, const char *text,
                         size_t len, int newline)
{
    if (!st->in_header && !st->in_part_header) {
        body_text_line(st, text, len, newline);
        return;
    }
    int continues = mail_header_continues(text, len);
    int starts = !continues && mail_header_starts(text, len);
    if (!newline && (continues || starts) &&
        len > (size_t)st->cfg->header_size_limit) {
        header_too_large(st);
        return;
    }
    if (continues && st->field.len > 0) {
        if (buf_append(&st->field, text, len) != 0)
            header_too_large(st);
        return;
    }
    flush_field(st);
    if (starts) {
        if (buf_set(&st->field, text, len) != 0)
            header_too_large(st);
        if (!newline && buf_append_char(&st->field, '\n') != 0)
            header_too_large(st);
        return;
    }
    int blank = newline && (len == 1 || (len == 2 && text[0] == '\r'));
    if (st->in_header) {
        end_header(st);
        first_body_line(st, text, newline ? len - 1 : len, newline);
        begin_nested_header(st, blank);
        return;
    }
    /* The end of a part header: usually its empty line. */
    end_part_header(st, blank);
    if (blank)
        emit(st, text, len);
    else
        body_text_line(st, text, len, newline);
}

void cleanup_message_data(struct cleanup_state *st, const char *data,
                          size_t len)
{
    st->content_size += (long long)len;
    if (st->cfg->message_size_limit > 0 &&
        st->content_size > st->cfg->message_size_limit)
        reject_message(st, 552, "5.3.4", "Message size exceeds fixed limit");
    while (len > 0 && !cleanup_failed(st)) {
        size_t limit = st->in_header || st->in_part_header
                           ? (size_t)st->cfg->header_size_limit + 1
                           : (size_t)st->cfg->line_length_limit;
        const char *lf = memchr(data, '\n', len);
        size_t take = lf != NULL ? (size_t)(lf - data) + 1 : len;
        size_t room = limit > st->line.len ? limit - st->line.len : 0;
        int complete = lf != NULL && take <= room;
        if (take > room)
            take = room;
        if (buf_append(&st->line, data, take) != 0) {
            cleanup_fail(st, CLEANUP_DEFER, 451, "4.3.0",
                         "Error: out of memory");
            return;
        }
        data += take;
        len -= take;
        if (complete || st->line.len >= limit) {
            process_line(st, st->line.data, st->line.len, complete);
            buf_reset(&st->line);
        }
    }
}

/* The open request's extract_notify (sendmail -t -N) becomes the NOTIFY
 * of each recipient taken from the header. */
static void extracted_notify(struct cleanup_state *st,
                             struct cleanup_recipients *list)
{
    const char *notify = cleanup_attr(st, "extract_notify");
    if (notify == NULL)
        return;
    struct buf canon;
    buf_init(&canon, 64);
    if (maildrop_check_notify(notify, &canon) != 0) {
        log_warn("%s: bad extract_notify \"%.64s\": ignored", st->id, notify);
        buf_free(&canon);
        return;
    }
    for (size_t i = 0; i < list->count; i++) {
        struct cleanup_recipient *r = &list->items[i];
        if (r->notify != NULL)
            continue;
        r->notify = strdup(buf_cstr(&canon));
        if (r->notify == NULL) {
            cleanup_fail(st, CLEANUP_DEFER, 451, "4.3.0",
                         "Error: out of memory");
            break;
        }
    }
    buf_free(&canon);
}

void cleanup_message_end(struct cleanup_state *st)
{
    if (!cleanup_failed(st) && st->line.len > 0) {
        /* The last line had no LF: it gets one. */
        if (buf_append_char(&st->line, '\n') == 0)
            process_line(st, st->line.data, st->line.len, 1);
        buf_reset(&st->line);
    }
    if (st->in_header && !cleanup_failed(st))
        end_header(st);
    if (st->in_part_header && !cleanup_failed(st))
        end_part_header(st, 0);
    flush_out(st, 1);
    if (cleanup_failed(st))
        return;
    if (st->flags & CLEANUP_FLAG_EXTRACT) {
        struct cleanup_recipients *list =
            st->seen_resent && st->extracted_resent.count > 0
                ? &st->extracted_resent : &st->extracted;
        extracted_notify(st, list);
        if (list->count > 0 && st->writer_open &&
            queue_writer_add(&st->writer, QUEUE_REC_END_CONTENT, "", 0) != 0)
            cleanup_fail_write(st, errno);
        cleanup_envelope_rewrite(st, list);
        cleanup_envelope_write_recipients(st);
    }
    if (!cleanup_failed(st) && st->final.count == 0)
        reject_message(st, 554, "5.5.1",
                       (st->flags & CLEANUP_FLAG_EXTRACT)
                           ? "No recipient addresses found in message header"
                           : "Error: no recipients specified");
}
