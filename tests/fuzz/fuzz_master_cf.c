/*
 * fuzz_master_cf - libFuzzer harness for the master.cf parser.  Build and
 * run with "make fuzz" (clang).
 */
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "master_cf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    log_init("fuzz", 0);
    struct master_cf cf;
    (void)master_cf_load_text("master.cf", (const char *)data, size, &cf);
    master_cf_free(&cf);
    return 0;
}
