/*
 * mailbox_output - the buffered writer behind lib/maildir and lib/mbox:
 * bytes go to a descriptor in blocks of MAILBOX_OUTPUT_BLOCK, the bytes
 * written are counted (a Maildir name's S=, an mbox's rollback point), and
 * the first write error is kept (errno) so that the caller checks once at
 * the end.  mailbox_error_dsn() turns such an errno into the RFC 3463 code
 * and text of a deferral, the same for every mailbox writer.
 *
 * Usage:
 *     struct mailbox_output out;
 *     mailbox_output_init(&out, fd);
 *     mailbox_output_write(&out, "Return-Path: <a@b>\n", 19);
 *     switch (mailbox_output_copy(&out, &src, MAILBOX_QUOTE_FROM, &why)) ...
 *     if (mailbox_output_flush(&out) != 0)
 *         dsn = mailbox_error_dsn(out.error, &why) ...
 *     mailbox_output_free(&out);
 */
#ifndef POSTINO_MAILBOX_OUTPUT_H
#define POSTINO_MAILBOX_OUTPUT_H

#include <stddef.h>

#include "buf.h"
#include "delivery_source.h"

#define MAILBOX_OUTPUT_BLOCK (64 * 1024)

struct mailbox_output {
    int fd;
    struct buf pending;
    unsigned long long size;  /* bytes handed to write, pending included */
    int error;                /* errno of the first failure, 0 if none */
    char last;                /* the last byte written, '\n' at the start */
};

void mailbox_output_init(struct mailbox_output *out, int fd);
/* 0, or -1 once a write failed (out->error says why; later writes do
 * nothing). */
int mailbox_output_write(struct mailbox_output *out, const void *data,
                         size_t len);
/* Writes what is pending.  0 or -1 (out->error). */
int mailbox_output_flush(struct mailbox_output *out);
void mailbox_output_free(struct mailbox_output *out);

/* Copies the whole content of src.  With MAILBOX_QUOTE_FROM each line that
 * matches /^>*From / gets one more '>' (mboxrd quoting).  A content that
 * does not end with a line end gets one.  0; -1 on a write error
 * (out->error); -2 when the source failed (its reason in error). */
enum { MAILBOX_COPY_PLAIN = 0, MAILBOX_QUOTE_FROM = 1 };
int mailbox_output_copy(struct mailbox_output *out,
                        struct delivery_source *src, int flags,
                        struct buf *error);

/* The deferral code for a failed file operation with err: 4.2.2 for a
 * full quota ("mailbox full"), 4.3.1 for a full disk ("insufficient
 * system storage"), 4.3.0 otherwise; why gets WHAT: the strerror text,
 * appended.  Returns the code, a static string. */
const char *mailbox_error_dsn(int err, const char *what, struct buf *why);

#endif
