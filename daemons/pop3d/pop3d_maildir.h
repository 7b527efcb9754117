/*
 * pop3d_maildir - one Maildir as a POP3 maildrop: the lock, the list of
 * messages, their sizes and UIDLs, the transfer form, and the UPDATE.
 *
 *   maildir_open()    takes MAILDIR/.pop3.lock (flock, held until
 *                     maildir_close) and lists new/ and cur/ once: mail
 *                     delivered later appears in the next session.  The
 *                     messages are numbered in the order of their unique
 *                     names (which start with the delivery time), at most
 *                     max_messages of them, oldest first.
 *   maildir_size()    the size in the transfer form (CRLF line ends, the
 *                     byte-stuffing not counted, as RFC 1939 sizes are),
 *                     from a ",W=N" in the name or else by reading the
 *                     file once; kept for the session.
 *   maildir_send()    the message in the transfer form and the final
 *                     ".", streamed in large blocks; body_lines >= 0 sends
 *                     only the header and that many body lines (TOP).
 *   maildir_update()  the UPDATE state: deleted messages are unlinked,
 *                     those left in new/ move to cur/ with ":2," (and the
 *                     S flag when retrieved), retrieved ones in cur/ get
 *                     the S flag.  Nothing changes on disk before it, so a
 *                     session that ends without QUIT deletes nothing.
 *
 * The UIDL of a message is the unique part of its name: up to the first
 * ':' (the flags) and then the first ',' (",S=" and other sizes), so a
 * move from new/ to cur/ or a flag change keeps it, across sessions and
 * restarts.  A unique part that is longer than 70 octets or holds an
 * octet outside 0x21..0x7E (RFC 1939) is replaced by "x" and a 64-bit FNV
 * hash of it in hex, which is as stable.
 *
 * The transfer form: each line of the file, LF or CRLF terminated, is sent
 * with CRLF; a last line without LF gets one; a line that starts with "."
 * gets another "." in front (RFC 1939 byte-stuffing).
 */
#ifndef POSTINO_POP3D_MAILDIR_H
#define POSTINO_POP3D_MAILDIR_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "stream.h"

#define MAILDIR_UIDL_MAX 70

enum maildir_status {
    MAILDIR_OK = 0,
    MAILDIR_IN_USE = 1,     /* another session holds the lock */
    MAILDIR_ERROR = -1,     /* reason in error */
};

struct maildir_msg {
    char *name;             /* file name in new/ or cur/ */
    long long file_size;
    long long size;         /* transfer size, -1 until known */
    unsigned char in_new;
    unsigned char deleted;
    unsigned char retrieved;
    char uidl[MAILDIR_UIDL_MAX + 1];
};

struct maildir {
    int dir_fd;             /* -1: no Maildir yet (an empty maildrop) */
    int sub_fd[2];          /* cur/, new/ (-1 when missing) */
    int lock_fd;
    struct maildir_msg *msgs;
    size_t count;
    size_t cap;
};

/* The transfer-form converter, for maildir_send and tests. */
struct maildir_transfer {
    int at_line_start;
    int last_cr;            /* the previous byte was a CR */
    long long line_len;     /* bytes of the current line so far */
    int in_body;
    long body_lines;        /* body lines sent so far */
    long body_limit;        /* -1: all */
    int done;               /* TOP: the limit is reached */
};

void maildir_transfer_init(struct maildir_transfer *t, long body_limit);
/* Converts in[0..n) and appends the result to out (NULL: only counts).
 * Returns the octets of the transfer form without the byte-stuffing, or
 * -1 when out cannot take them. */
long long maildir_transfer_chunk(struct maildir_transfer *t, const char *in,
                                 size_t n, struct buf *out);
/* The end of the message: a CRLF after an unterminated last line.  Same
 * return value. */
long long maildir_transfer_end(struct maildir_transfer *t, struct buf *out);

/* The UIDL for a file name (out: MAILDIR_UIDL_MAX + 1 bytes). */
void maildir_uidl(const char *name, char *out);

/* owner: the uid the Maildir must belong to. */
int maildir_open(struct maildir *m, const char *path, uid_t owner,
                 size_t max_messages, struct buf *error);
int maildir_size(struct maildir *m, size_t i, long long *size);
/* Writes first_line (the "+OK" reply) and the message.  0, or -1: the
 * file is gone or unreadable (nothing was written, errno set), or -2: the
 * stream failed or the file could not be read to its end. */
int maildir_send(struct maildir *m, size_t i, long body_lines,
                 const char *first_line, struct stream *out);
/* 0, or -1 with the problems in error (every message is tried). */
int maildir_update(struct maildir *m, struct buf *error);
void maildir_close(struct maildir *m);

#endif
