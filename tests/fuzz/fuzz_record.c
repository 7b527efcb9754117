/*
 * fuzz_record - libFuzzer harness for the record protocol decoder: any
 * bytes are decoded; whatever decodes must encode back to the same bytes.
 * Build and run with "make fuzz" (clang).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    log_init("fuzz", 0);
    struct record r;
    record_init(&r);
    if (record_decode(&r, data, size, 1 << 20) == RECORD_OK) {
        struct buf again;
        buf_init(&again, 2 << 20);
        if (record_encode(&r, &again) != RECORD_OK || again.len != size ||
            memcmp(again.data, data, size) != 0)
            abort();
        buf_free(&again);
    }
    record_free(&r);
    return 0;
}
