/*
 * delivery_source - the content a mailbox writer streams from (interface
 * and usage: delivery_source.h).
 */
#include "delivery_source.h"

static int delivery_source_content_next(void *ctx, const char **data,
                                        size_t *len, struct buf *error)
{
    struct delivery_source_content *state = ctx;
    return delivery_content_next(state->content, data, len, error);
}

static void delivery_source_content_rewind(void *ctx)
{
    struct delivery_source_content *state = ctx;
    delivery_content_rewind(state->content, state->offset);
}

void delivery_source_from_content(struct delivery_source *src,
                                  struct delivery_source_content *state,
                                  struct delivery_content *c,
                                  off_t content_offset)
{
    state->content = c;
    state->offset = content_offset;
    src->next = delivery_source_content_next;
    src->rewind = delivery_source_content_rewind;
    src->ctx = state;
}

static int delivery_source_memory_next(void *ctx, const char **data,
                                       size_t *len, struct buf *error)
{
    (void)error;
    struct delivery_source_memory *state = ctx;
    if (state->given || state->len == 0)
        return 0;
    state->given = 1;
    *data = state->data;
    *len = state->len;
    return 1;
}

static void delivery_source_memory_rewind(void *ctx)
{
    struct delivery_source_memory *state = ctx;
    state->given = 0;
}

void delivery_source_from_memory(struct delivery_source *src,
                                 struct delivery_source_memory *state,
                                 const char *data, size_t len)
{
    state->data = data;
    state->len = len;
    state->given = 0;
    src->next = delivery_source_memory_next;
    src->rewind = delivery_source_memory_rewind;
    src->ctx = state;
}

int delivery_source_next(struct delivery_source *src, const char **data,
                         size_t *len, struct buf *error)
{
    return src->next(src->ctx, data, len, error);
}

void delivery_source_rewind(struct delivery_source *src)
{
    if (src->rewind != NULL)
        src->rewind(src->ctx);
}
