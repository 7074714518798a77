/*
 * server: a dispatcher process wakes worker processes through pipes.
 *
 * Each of --requests dispatch rounds writes one byte to every worker's
 * request pipe, then collects one reply byte per worker from a shared reply
 * pipe. A worker (pinned to CPU w mod cpus with --pinned) wakes, reads one
 * byte of each of its --pages heap pages, busy-waits --work-cycles and
 * replies. Many mms sleep and wake on every CPU: ASID slots turn over at
 * the rate of wake-ups, not of time slices.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common.h"

static long workers = 8, requests = 50, pages = 8, work_cycles = 5000, pinned = 1;

static struct opt opts[] = {
    {"workers", OPT_INT, &workers, NULL, 1, 256, "worker processes"},
    {"requests", OPT_INT, &requests, NULL, 1, 1000000, "dispatch rounds (each wakes every worker)"},
    {"pages", OPT_INT, &pages, NULL, 0, 65536, "heap pages a worker reads per request"},
    {"work-cycles", OPT_INT, &work_cycles, NULL, 0, 1000000000, "busy cycles per request"},
    {"pinned", OPT_BOOL, &pinned, NULL, 0, 1, "pin worker w to CPU w mod cpus"},
    COMMON_OPTS,
};

struct shared {
    volatile long handled;
    volatile int pin_failures;
};

int main(int argc, char **argv)
{
    parse_opts("server", "A dispatcher wakes worker processes through pipes.", opts, argc, argv);
    struct shared *sh = alloc_shared(sizeof(*sh));
    int (*req)[2] = calloc((size_t)workers, sizeof(*req));
    int reply[2];
    if (!req)
        die("calloc");
    xpipe(reply);
    for (long w = 0; w < workers; w++)
        xpipe(req[w]);
    for (long w = 0; w < workers; w++) {
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid > 0)
            continue;
        if (pinned && pin_self(w % opt_cpus) < 0)
            __atomic_add_fetch(&sh->pin_failures, 1, __ATOMIC_RELAXED);
        char *heap = alloc_pages(pages);
        char c;
        for (long r = 0; r < requests; r++) {
            if (!read_full(req[w][0], &c, 1))
                _exit(3);
            touch_read(heap, pages);
            spin_cycles(work_cycles);
            __atomic_add_fetch(&sh->handled, 1, __ATOMIC_RELAXED);
            write_full(reply[1], &c, 1);
        }
        _exit(0);
    }
    char *buf = malloc((size_t)workers);
    if (!buf)
        die("malloc");
    roi_begin();
    uint64_t t0 = now_ns();
    for (long r = 0; r < requests; r++) {
        for (long w = 0; w < workers; w++)
            write_full(req[w][1], "r", 1);
        if (!read_full(reply[0], buf, (size_t)workers)) {
            fprintf(stderr, "server: a worker died\n");
            break;
        }
    }
    uint64_t t1 = now_ns();
    roi_end();
    int failed = wait_children();
    if (sh->pin_failures)
        fprintf(stderr, "server: warning: %d workers could not be pinned\n", sh->pin_failures);
    finish("server: workers=%ld cpus=%ld requests=%ld pages=%ld work_cycles=%ld pinned=%ld "
           "handled=%ld failed=%d pin_failures=%d ns_per_round=%.0f",
           workers, opt_cpus, requests, pages, work_cycles, pinned, sh->handled, failed,
           sh->pin_failures, (double)(t1 - t0) / (double)requests);
    return failed ? 1 : 0;
}
