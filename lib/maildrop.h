/*
 * maildrop - the files of local submission: what sendmail hands to
 * postdrop on a pipe, and what postdrop leaves in maildrop/ for pickup.
 *
 * Both are the record format of queue files (queue_file.h,
 * docs/queue-format.md, "Maildrop files"), with a narrower set of
 * records, every one checked, because a local user writes them:
 *
 *   V 1, S (zeros), [T arrival, A uid=N: the file only, postdrop's own],
 *   A flags=N | full_name= | dsn_envid= | dsn_ret= | encoding= |
 *     extract_notify=  (each once; extract_notify: the DSN NOTIFY of
 *     sendmail -N for the recipients that sendmail -t takes from the
 *     header, in the canonical form of maildrop_check_notify)
 *   F sender (exactly once, "" for the null sender)
 *   ([N notify] R recipient)*   at most MAILDROP_RCPT_MAX
 *   M, B content*, X, E         content at most max_content bytes
 *   (the internal form may end X, A abort=1, E instead: nothing to queue)
 *
 * Writing: a struct maildrop_out emits records on any descriptor (the
 * pipe to postdrop, a maildrop file).  A struct maildrop_file is a new
 * maildrop file: created without a name (O_TMPFILE; a "tmp.*" name where
 * that is refused), then commit = fsync, link to its queue ID (never over
 * another file), any temporary name removed, and the directory made
 * durable; when that last step fails the new name is removed again, since
 * the user hears "not queued".  postdrop runs with group write and search access to
 * maildrop/ but no read access, so it cannot open the directory to fsync
 * it; it then syncs the file system of the file instead (syncfs), which
 * includes the new directory entry.  That is why this module has its own
 * commit and does not use queue_writer_commit().
 *
 *     struct maildrop_file f;
 *     if (maildrop_file_create(&f, "maildrop", &error) != 0) ...
 *     maildrop_put_envelope(&f.out, &env, MAILDROP_FILE);
 *     maildrop_put_content(&f.out, data, len); ...
 *     maildrop_put_end(&f.out);
 *     if (maildrop_file_commit(&f, id, &error) != 0) ...
 *
 * Reading: a struct maildrop_reader takes the records from a descriptor,
 * first the whole envelope (through M), then the content block by block.
 * Anything out of the rules (an unknown attribute, a record out of order,
 * a control character in an address, too many recipients, too much
 * content) fails with the reason in error; too_large tells the size case.
 *
 *     maildrop_reader_attach(&r, fd, MAILDROP_FILE, max_content);
 *     if (maildrop_reader_envelope(&r, &env, &error) != 0) ... corrupt ...
 *     while ((rc = maildrop_reader_content(&r, &data, &len, &error)) == 1)
 *         ... data, len ...
 *     if (rc < 0) ... corrupt ...
 *     maildrop_reader_free(&r);
 */
#ifndef POSTINO_MAILDROP_H
#define POSTINO_MAILDROP_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "queue_file.h"

#define MAILDROP_RCPT_MAX 10000
#define MAILDROP_ADDRESS_MAX 1000
#define MAILDROP_FULL_NAME_MAX 256
#define MAILDROP_ENVID_MAX 100
/* The only flag a local user may ask for: CLEANUP_FLAG_EXTRACT. */
#define MAILDROP_FLAG_EXTRACT (1 << 3)

enum maildrop_source {
    MAILDROP_INPUT, /* sendmail to postdrop: no T, no uid */
    MAILDROP_FILE,  /* a file in maildrop/: T and uid from postdrop */
};

struct maildrop_recipient {
    char *address;
    char *notify; /* NULL or "NEVER" / "SUCCESS,FAILURE,DELAY" */
};

struct maildrop_envelope {
    long long time_sec;    /* T, MAILDROP_FILE only */
    long time_usec;
    long uid;              /* A uid=, MAILDROP_FILE only; -1: none */
    long flags;            /* MAILDROP_FLAG_* */
    int have_sender;
    struct buf sender;     /* "" for the null sender */
    struct buf full_name;  /* sendmail -F, "" when not given */
    struct buf dsn_envid;
    struct buf dsn_ret;    /* "", "FULL" or "HDRS" */
    struct buf encoding;   /* "", "7bit" or "8bitmime" */
    struct buf extract_notify; /* "" or NOTIFY for recipients from the
                                * header (sendmail -t -N) */
    struct maildrop_recipient *rcpt;
    size_t rcpt_count;
    size_t rcpt_cap;
};

void maildrop_envelope_init(struct maildrop_envelope *env);
void maildrop_envelope_free(struct maildrop_envelope *env);
/* Checks and adds a recipient.  0, or -1 with the reason in error. */
int maildrop_envelope_add_recipient(struct maildrop_envelope *env,
                                    const char *address, const char *notify,
                                    struct buf *error);

/* An address as a local user may give it: 1..MAILDROP_ADDRESS_MAX bytes
 * (0 allowed when null_ok), printable ASCII or UTF-8, no control
 * character, no white space or angle bracket outside a quoted string.
 * 0, or -1 with the reason in error. */
int maildrop_check_address(const char *address, size_t len, int null_ok,
                           struct buf *error);
/* NEVER, or a comma list of SUCCESS, FAILURE, DELAY (any case); the
 * canonical upper-case form goes to out.  0 or -1. */
int maildrop_check_notify(const char *text, struct buf *out);

struct maildrop_out {
    int fd;
    struct buf pending;
};

void maildrop_out_init(struct maildrop_out *o, int fd);
void maildrop_out_free(struct maildrop_out *o);
int maildrop_out_put(struct maildrop_out *o, int type, const void *data,
                     size_t len);
int maildrop_out_flush(struct maildrop_out *o);
/* V S [T A uid] A... F (N R)... M.  0 or -1 (errno). */
int maildrop_put_envelope(struct maildrop_out *o,
                          const struct maildrop_envelope *env,
                          enum maildrop_source source);
/* Content as B records of at most QUEUE_BLOCK_MAX.  0 or -1. */
int maildrop_put_content(struct maildrop_out *o, const void *data,
                         size_t len);
/* X E, flushed.  0 or -1. */
int maildrop_put_end(struct maildrop_out *o);
/* The internal form only: the sender gave up (it said why itself); X,
 * A abort=1, E.  The reader then fails with aborted set. */
int maildrop_put_abort(struct maildrop_out *o);

struct maildrop_file {
    struct maildrop_out out;
    struct buf temp_path;  /* "" for a file without a name */
    struct buf dir;
    int anonymous;
};

/* A new file in dir, mode 0644 (pickup runs as another user). */
int maildrop_file_create(struct maildrop_file *f, const char *dir,
                         struct buf *error);
/* See above.  0 with id set, or -1 with error; the temporary name is gone
 * either way and f released. */
int maildrop_file_commit(struct maildrop_file *f, char id[QUEUE_ID_SIZE],
                         struct buf *error);
void maildrop_file_abort(struct maildrop_file *f);

struct maildrop_reader {
    struct queue_reader queue;
    struct queue_record rec;
    enum maildrop_source source;
    long long max_content;   /* 0: no limit */
    long long content;       /* bytes of content so far */
    int too_large;           /* the failure was max_content */
    int aborted;             /* the failure was maildrop_put_abort() */
    int in_content;
    int done;
};

void maildrop_reader_attach(struct maildrop_reader *r, int fd,
                            enum maildrop_source source,
                            long long max_content);
void maildrop_reader_free(struct maildrop_reader *r);
/* Reads and checks every record through M.  0 or -1 (error). */
int maildrop_reader_envelope(struct maildrop_reader *r,
                             struct maildrop_envelope *env,
                             struct buf *error);
/* 1 and one block of content, 0 after X and E (and nothing after them),
 * -1 with error.  data stays valid until the next call. */
int maildrop_reader_content(struct maildrop_reader *r, const char **data,
                            size_t *len, struct buf *error);

#endif
