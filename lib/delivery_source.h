/*
 * delivery_source - where a mailbox writer (lib/maildir, lib/mbox) reads
 * the message from: a callback that hands out the content chunk by chunk,
 * so that a message is streamed from the queue file and never held in
 * memory whole.  Two sources are built in: the content of a queue file
 * (lib/delivery_request.h's delivery_content) and a memory block (tests,
 * and short texts).
 *
 * A source's next() returns 1 with the next chunk in *data and *len (valid
 * until the following call), 0 at the end, or -1 with the reason in error.
 * A writer that must start over (a retry) calls rewind(), when set.
 *
 * Usage:
 *     struct delivery_content content;            (opened by the agent)
 *     struct delivery_source src;
 *     delivery_source_from_content(&src, &content, req.content_offset);
 *     maildir_deliver(&rq, &src, ...);
 *
 *     struct delivery_source_memory mem;
 *     delivery_source_from_memory(&src, &mem, "Subject: x\n\nhi\n", 15);
 */
#ifndef POSTINO_DELIVERY_SOURCE_H
#define POSTINO_DELIVERY_SOURCE_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "delivery_request.h"

struct delivery_source {
    int (*next)(void *ctx, const char **data, size_t *len,
                struct buf *error);
    void (*rewind)(void *ctx);   /* may be NULL */
    void *ctx;
};

/* The memory source's state (the caller's, alive while the source is). */
struct delivery_source_memory {
    const char *data;
    size_t len;
    int given;
};

/* The content state behind delivery_source_from_content. */
struct delivery_source_content {
    struct delivery_content *content;
    off_t offset;
};

/* Reads the whole content of c, which starts at content_offset.  state
 * holds what the callbacks need and must live as long as src. */
void delivery_source_from_content(struct delivery_source *src,
                                  struct delivery_source_content *state,
                                  struct delivery_content *c,
                                  off_t content_offset);
/* Hands out data[0..len) as one chunk. */
void delivery_source_from_memory(struct delivery_source *src,
                                 struct delivery_source_memory *state,
                                 const char *data, size_t len);
/* Calls src->next, which gives 1, 0 or -1 as above. */
int delivery_source_next(struct delivery_source *src, const char **data,
                         size_t *len, struct buf *error);
void delivery_source_rewind(struct delivery_source *src);

#endif
