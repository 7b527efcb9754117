/*
 * queue_file - the on-disk format of a queued message: typed, length-
 * prefixed records ending with a mandatory end record (docs/queue-format.md
 * has the records, their order and the states of a message).
 *
 * Writing (cleanup): the file is created without a name where the system
 * allows it (O_TMPFILE in the queue directory; a kill at any moment leaves
 * nothing behind), else under a temporary name tmp.* in that directory.
 * Its queue ID is known from the open on (the open time and the file's
 * inode), so that the receiving daemon can log it at once.  Records are
 * buffered and written in order; commit writes the end record, fills in
 * the size record, links the file to its queue ID (never replacing a
 * file; in the rare case of a name clash the ID changes), fsyncs it,
 * removes the temporary name if any and fsyncs the directory; a failure
 * after the link removes the ID again.  Only after a
 * successful commit is the message accepted.  Any failure removes the
 * temporary file and keeps errno (ENOSPC, EDQUOT: "452 4.3.1").
 *
 *     struct queue_writer w;
 *     if (queue_writer_open(&w, "incoming", &error) != 0) ...
 *     log_info("%s: ...", queue_writer_id(&w));
 *     queue_writer_add(&w, QUEUE_REC_SENDER, sender, strlen(sender));
 *     ...
 *     char id[QUEUE_ID_SIZE];
 *     if (queue_writer_commit(&w, id, &error) != 0) ... 452 ...
 *     (or queue_writer_commit_in(&w, "hold", id, &error): another queue
 *     directory of the same file system)
 *
 * A writer that makes many files in one directory (cleanup) holds the
 * directory open for its life: files are then created in it and it is
 * fsynced through that one descriptor, with no path lookup or directory
 * open per message (the durability steps are the same):
 *
 *     struct queue_dir incoming;
 *     if (queue_dir_open(&incoming, "incoming", &error) != 0) ... fatal ...
 *     queue_writer_open_in(&w, &incoming, &error); ... commit as above ...
 *     queue_dir_close(&incoming);
 *
 * Reading (qmgr, delivery agents): records come back one by one with their
 * offset; anything out of order, unknown, too long, or a file that ends
 * before its end record is reported as corrupt with the reason.
 *
 *     struct queue_reader r;
 *     queue_reader_open(&r, "active/4F2A9C1B3D", &error);
 *     while ((rc = queue_reader_next(&r, &rec, &error)) == 1) use(&rec);
 *     if (rc < 0) ... move to corrupt/ ...
 *     queue_reader_close(&r);
 *
 * Marking a recipient done: queue_file_mark_done(fd, rec.offset) turns
 * its R into D in place and fsyncs.
 */
#ifndef POSTINO_QUEUE_FILE_H
#define POSTINO_QUEUE_FILE_H

#include <stddef.h>
#include <sys/time.h>
#include <sys/types.h>

#include "buf.h"
#include "dir_sync.h"

#define QUEUE_FORMAT_VERSION "1"
#define QUEUE_RECORD_MAX (1024 * 1024)
#define QUEUE_BLOCK_MAX (64 * 1024)
#define QUEUE_RECORD_HEADER 5
#define QUEUE_ID_SIZE 32 /* room for an ID and its NUL */

enum queue_record_type {
    QUEUE_REC_VERSION = 'V',
    QUEUE_REC_SIZE = 'S',
    QUEUE_REC_TIME = 'T',
    QUEUE_REC_ATTR = 'A',
    QUEUE_REC_SENDER = 'F',
    QUEUE_REC_ORCPT = 'O',
    QUEUE_REC_NOTIFY = 'N',
    QUEUE_REC_RCPT = 'R',
    QUEUE_REC_DONE = 'D',
    QUEUE_REC_CONTENT = 'M',
    QUEUE_REC_BLOCK = 'B',
    QUEUE_REC_END_CONTENT = 'X',
    QUEUE_REC_END = 'E',
};

/* A queue directory held open (see above). */
struct queue_dir {
    int fd;
    int anonymous_ok;        /* O_TMPFILE files can be linked (/proc) */
    struct buf name;         /* as given to queue_dir_open */
    /* Shared with the other writers of the directory, or NULL (each
     * commit fsyncs the directory itself): dir_sync.h.  Set by the
     * caller after queue_dir_open. */
    struct dir_sync_group *sync_group;
};

/* 0, or -1 with errno and a message in error. */
int queue_dir_open(struct queue_dir *d, const char *name, struct buf *error);
void queue_dir_close(struct queue_dir *d);

struct queue_writer {
    int fd;
    int dir_fd;              /* the held directory, or -1: by name */
    struct dir_sync_group *sync_group; /* the held directory's */
    int anonymous;           /* O_TMPFILE: no name until the commit */
    char id[QUEUE_ID_SIZE];  /* from the open time and the inode */
    struct timeval opened;
    ino_t inode;
    struct buf temp_path;    /* tmp.* when not anonymous */
    struct buf dir;
    struct buf pending;      /* records not yet written */
    off_t written;           /* bytes already in the file */
    off_t size_offset;       /* where the S record's data starts */
    off_t content_offset;    /* offset of the M record, 0: not yet */
    off_t content_end;       /* offset of the X record */
    long recipients;
    int stage;               /* enforces the record order */
};

int queue_writer_open(struct queue_writer *w, const char *dir,
                      struct buf *error);
/* The same in a held directory (d stays the caller's and must outlive
 * the writer); a commit into that directory links and fsyncs through it. */
int queue_writer_open_in(struct queue_writer *w, const struct queue_dir *d,
                         struct buf *error);
/* Adds one record; the version, size and end records are the writer's
 * own.  Long content is split into QUEUE_BLOCK_MAX blocks by the caller or
 * by queue_writer_add_content().  0, or -1 (errno; a record out of order
 * is EINVAL). */
int queue_writer_add(struct queue_writer *w, int type, const void *data,
                     size_t len);
/* Adds content bytes as B records (M is written before the first). */
int queue_writer_add_content(struct queue_writer *w, const void *data,
                             size_t len);
/* Makes the file durable under its queue ID (see above).  0 and id set,
 * or -1 with errno and a message in error; the temporary file is gone
 * either way (after a failure the queue ID too) and w is released. */
int queue_writer_commit(struct queue_writer *w, char id[QUEUE_ID_SIZE],
                        struct buf *error);
/* The same, linked into dir (another queue directory, e.g. "hold") instead
 * of the directory given to open. */
int queue_writer_commit_in(struct queue_writer *w, const char *dir,
                           char id[QUEUE_ID_SIZE], struct buf *error);
/* The queue ID the file will have (known from the open). */
const char *queue_writer_id(const struct queue_writer *w);
/* Removes the files tmp.* in dir whose last change is older than max_age
 * seconds (left by a writer that was killed); returns how many. */
int queue_remove_stale_temps(const char *dir, long max_age);
/* Removes the temporary file and releases w. */
void queue_writer_abort(struct queue_writer *w);

struct queue_record {
    int type;
    off_t offset;            /* of the type byte */
    struct buf data;         /* NUL-terminated */
};

struct queue_reader {
    int fd;
    int owns_fd;
    struct buf in;           /* read-ahead */
    size_t in_pos;
    off_t in_offset;         /* file offset of in.data[0] */
    int stage;
    int done;
};

int queue_reader_open(struct queue_reader *r, const char *path,
                      struct buf *error);
/* Reads from fd, which stays the caller's (positioned at the start). */
void queue_reader_attach(struct queue_reader *r, int fd);
/* 1 and rec filled, 0 after the end record, -1 corrupt or I/O error
 * (reason in error). */
int queue_reader_next(struct queue_reader *r, struct queue_record *rec,
                      struct buf *error);
void queue_reader_close(struct queue_reader *r);
void queue_record_init(struct queue_record *rec);
void queue_record_free(struct queue_record *rec);

/* Turns the R record at offset into D and fsyncs.  0 or -1 (errno). */
int queue_file_mark_done(int fd, off_t record_offset);
/* Appends one record (type, big-endian length, data) to out: what the
 * queue writer and the maildrop writer put in their files.  0, or -1 with
 * errno (EMSGSIZE over QUEUE_RECORD_MAX or out's limit) and out as it was. */
int queue_record_append(struct buf *out, int type, const void *data,
                        size_t len);

/* True when name is a queue ID (what the queue scanners pick up). */
int queue_id_valid(const char *name);

#endif
