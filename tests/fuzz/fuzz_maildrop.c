/*
 * fuzz_maildrop - libFuzzer harness for the maildrop reader (what pickup
 * and postdrop read from local users): any bytes, read as a maildrop file
 * and as the internal form; what is accepted must stay within the limits.
 * Build and run with "make fuzz" (clang).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"
#include "maildrop.h"
#include "safe_file.h"

static void read_as(int fd, enum maildrop_source source)
{
    if (lseek(fd, 0, SEEK_SET) != 0)
        abort();
    struct maildrop_reader r;
    maildrop_reader_attach(&r, fd, source, 4096);
    struct maildrop_envelope env;
    maildrop_envelope_init(&env);
    struct buf error;
    buf_init(&error, 1024);
    if (maildrop_reader_envelope(&r, &env, &error) == 0) {
        if (!env.have_sender || env.rcpt_count > MAILDROP_RCPT_MAX)
            abort();
        const char *data;
        size_t len;
        while (maildrop_reader_content(&r, &data, &len, &error) == 1)
            if (r.content > 4096)
                abort();
    }
    buf_free(&error);
    maildrop_envelope_free(&env);
    maildrop_reader_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    log_init("fuzz", 0);
    int fd = memfd_create("maildrop", MFD_CLOEXEC);
    if (fd < 0 || safe_file_write_all(fd, data, size) != 0)
        abort();
    read_as(fd, MAILDROP_FILE);
    read_as(fd, MAILDROP_INPUT);
    close(fd);
    return 0;
}
