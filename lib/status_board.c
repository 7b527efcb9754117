/*
 * status_board - the busy/idle state of a service's children in shared
 * memory.  See status_board.h.
 *
 * The memory is a memfd: a header (capacity, the highest slot ever
 * claimed, the master's "watching" flag, the children's directory fsync
 * group) and then one byte per slot.  Only the master claims and releases
 * slots; a child writes its own slot only.
 */
#include "status_board.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
    SLOT_FREE = 0,
    SLOT_IDLE = 1,
    SLOT_BUSY = 2,
};

struct status_board_shared {
    long capacity;
    atomic_long high;          /* slots 0 .. high-1 have been claimed */
    atomic_int watching;
    struct dir_sync_group dir_sync; /* for the children's own use */
    atomic_uchar slot[];
};

struct status_board {
    int fd;
    size_t size;
    struct status_board_shared *shared;
};

static size_t board_size(size_t capacity)
{
    return sizeof(struct status_board_shared) + capacity;
}

static struct status_board *board_map(int fd, size_t size)
{
    struct status_board *board = calloc(1, sizeof(*board));
    if (board == NULL)
        return NULL;
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mem == MAP_FAILED) {
        int saved = errno;
        free(board);
        errno = saved;
        return NULL;
    }
    board->fd = fd;
    board->size = size;
    board->shared = mem;
    return board;
}

struct status_board *status_board_create(size_t capacity)
{
    if (capacity == 0 || capacity > (size_t)1 << 20) {
        errno = EINVAL;
        return NULL;
    }
    int fd = memfd_create("postino-status-board", MFD_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t size = board_size(capacity);
    if (ftruncate(fd, (off_t)size) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return NULL;
    }
    struct status_board *board = board_map(fd, size);
    if (board == NULL) {
        int saved = errno;
        close(fd);
        errno = saved;
        return NULL;
    }
    /* ftruncate gave zeros: every slot free, nobody watching. */
    board->shared->capacity = (long)capacity;
    return board;
}

int status_board_fd(const struct status_board *board)
{
    return board->fd;
}

long status_board_claim(struct status_board *board)
{
    struct status_board_shared *s = board->shared;
    for (long i = 0; i < s->capacity; i++) {
        if (atomic_load(&s->slot[i]) != SLOT_FREE)
            continue;
        atomic_store(&s->slot[i], SLOT_IDLE);
        if (i >= atomic_load(&s->high))
            atomic_store(&s->high, i + 1);
        return i;
    }
    return -1;
}

void status_board_release(struct status_board *board, long slot)
{
    if (status_board_has_slot(board, slot))
        atomic_store(&board->shared->slot[slot], SLOT_FREE);
}

int status_board_is_idle(const struct status_board *board, long slot)
{
    return status_board_has_slot(board, slot) &&
           atomic_load(&board->shared->slot[slot]) == SLOT_IDLE;
}

void status_board_set_watching(struct status_board *board, int watching)
{
    atomic_store(&board->shared->watching, watching != 0);
}

void status_board_free(struct status_board *board)
{
    if (board == NULL)
        return;
    (void)munmap(board->shared, board->size);
    (void)close(board->fd);
    free(board);
}

struct status_board *status_board_attach(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return NULL;
    if (st.st_size < (off_t)board_size(1)) {
        errno = EINVAL;
        return NULL;
    }
    struct status_board *board = board_map(fd, (size_t)st.st_size);
    if (board == NULL)
        return NULL;
    long capacity = board->shared->capacity;
    if (capacity < 1 || board_size((size_t)capacity) > board->size) {
        status_board_free(board);
        errno = EINVAL;
        return NULL;
    }
    return board;
}

struct dir_sync_group *status_board_dir_sync(struct status_board *board)
{
    return &board->shared->dir_sync;
}

int status_board_has_slot(const struct status_board *board, long slot)
{
    return slot >= 0 && slot < board->shared->capacity;
}

int status_board_mark_busy(struct status_board *board, long slot)
{
    struct status_board_shared *s = board->shared;
    atomic_store(&s->slot[slot], SLOT_BUSY);
    long high = atomic_load(&s->high);
    if (high > s->capacity)
        high = s->capacity;
    for (long i = 0; i < high; i++)
        if (atomic_load(&s->slot[i]) == SLOT_IDLE)
            return 0;
    return 1;
}

int status_board_mark_idle(struct status_board *board, long slot)
{
    struct status_board_shared *s = board->shared;
    atomic_store(&s->slot[slot], SLOT_IDLE);
    return atomic_load(&s->watching) != 0;
}
