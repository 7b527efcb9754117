/*
 * fuzz_config - libFuzzer harness for the main.cf parser: any bytes are
 * loaded as main.cf, checked, and every known parameter read back through
 * the non-fatal getter.  Build and run with "make fuzz" (clang).
 */
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    log_init("fuzz", 0);
    struct config *cfg = config_create();
    if (cfg == NULL)
        return 0;
    if (config_load_text(cfg, "main.cf", (const char *)data, size) == 0 &&
        config_check(cfg) == 0) {
        for (const struct config_param_def *p = config_param_table; p->name;
             p++)
            (void)config_try_get_str(cfg, p->name);
    }
    config_free(cfg);
    return 0;
}
