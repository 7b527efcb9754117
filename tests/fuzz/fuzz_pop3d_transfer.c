/*
 * fuzz_pop3d_transfer - libFuzzer harness for pop3d's transfer form
 * (daemons/pop3d/pop3d_maildir.c): any bytes as a message file.  The first
 * input byte chooses the chunk size and the TOP line count; the rest is
 * converted whole and in chunks, which must give the same bytes, a size
 * that counts the output without its byte-stuffing, and no line that is
 * not CRLF-terminated or that could end the multi-line reply early.
 * Build and run with "make fuzz" (clang).
 *
 * pop3d_maildir.c belongs to the pop3d daemon, not to the library that
 * "make fuzz" links, so it is compiled in here.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../daemons/pop3d/pop3d_maildir.c"

static long long convert(const uint8_t *data, size_t size, size_t step,
                         long lines, struct buf *out)
{
    struct maildir_transfer t;
    maildir_transfer_init(&t, lines);
    long long count = 0;
    for (size_t i = 0; i < size; i += step) {
        size_t n = size - i < step ? size - i : step;
        long long r = maildir_transfer_chunk(&t, (const char *)data + i, n,
                                             out);
        if (r < 0)
            abort();
        count += r;
    }
    return count + maildir_transfer_end(&t, out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t step = (size_t)(data[0] & 0x0f) + 1;
    long lines = (data[0] & 0x80) ? (long)((data[0] >> 4) & 0x07) : -1;
    data++;
    size--;
    struct buf whole, chunked;
    buf_init(&whole, 4 * size + 16);
    buf_init(&chunked, 4 * size + 16);
    long long a = convert(data, size, size ? size : 1, lines, &whole);
    long long b = convert(data, size, step, lines, &chunked);
    if (a != b || whole.len != chunked.len ||
        (whole.len && memcmp(whole.data, chunked.data, whole.len) != 0))
        abort();
    /* Every line ends with CRLF; no line is "." alone; the size is the
     * output less one octet per stuffed line. */
    long long stuffed = 0;
    const char *p = buf_cstr(&whole), *end = p + whole.len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL || nl == p || nl[-1] != '\r')
            abort();
        if (nl - p == 2 && p[0] == '.')
            abort();
        if (p[0] == '.')
            stuffed++;
        p = nl + 1;
    }
    if (a != (long long)whole.len - stuffed)
        abort();
    buf_free(&whole);
    buf_free(&chunked);
    return 0;
}
