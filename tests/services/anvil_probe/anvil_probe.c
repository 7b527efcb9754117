/*
 * anvil_probe - drives lib/anvil_client.c against a running anvil, for the
 * integration tests.
 *
 * Usage: anvil_probe SOCKET SERVICE ADDRESS [STEP]...
 * It connects and prints "count=N rate=M", then runs each step:
 *   message     prints "message rate=M"
 *   recipient   prints "recipient rate=M"
 *   hold        prints "holding", then waits until standard input closes
 *               (so a test can keep a session open, or kill it)
 * and disconnects.  A failed call prints "error: REASON" and exits 1.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "anvil_client.h"
#include "buf.h"

static int probe_fail(struct anvil_client *a, struct buf *error)
{
    printf("error: %s\n", buf_cstr(error));
    anvil_client_disconnect(a);
    buf_free(error);
    return 1;
}

static void probe_hold(void)
{
    printf("holding\n");
    if (fflush(stdout) != 0)
        return;
    char byte;
    while (read(0, &byte, 1) > 0)
        continue;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: anvil_probe socket service address [step]...\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct buf error;
    buf_init(&error, 1000);
    struct anvil_client a;
    anvil_client_init(&a);
    long count, rate;
    if (anvil_client_connect(&a, argv[1], argv[2], argv[3], 5000, &count,
                             &rate, &error) != 0)
        return probe_fail(&a, &error);
    printf("count=%ld rate=%ld\n", count, rate);
    for (int i = 4; i < argc; i++) {
        if (strcmp(argv[i], "hold") == 0) {
            probe_hold();
            continue;
        }
        int recipient = strcmp(argv[i], "recipient") == 0;
        if (!recipient && strcmp(argv[i], "message") != 0) {
            fprintf(stderr, "anvil_probe: unknown step %s\n", argv[i]);
            anvil_client_disconnect(&a);
            buf_free(&error);
            return 2;
        }
        int rc = recipient ? anvil_client_recipient(&a, &rate, &error)
                           : anvil_client_message(&a, &rate, &error);
        if (rc != 0)
            return probe_fail(&a, &error);
        printf("%s rate=%ld\n", recipient ? "recipient" : "message", rate);
    }
    anvil_client_disconnect(&a);
    anvil_client_disconnect(&a); /* twice is harmless */
    buf_free(&error);
    return 0;
}
