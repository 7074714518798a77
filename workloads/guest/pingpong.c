/*
 * pingpong: lat_ctx-like token passing over pipes between two processes.
 *
 * Pair i is a "ping" and a "pong" process. With --same-cpu both run on CPU
 * i mod cpus (every hand-off is a context switch between two mms on one
 * CPU: the common case that should cost nothing with per-(cpu, asid) roots);
 * without it they run on CPUs 2i and 2i+1 (mod cpus) and each hand-off is a
 * cross-CPU wake-up. Each side reads one byte of each of its --pages heap
 * pages per turn (lat_ctx's -s working set).
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common.h"

static long pairs = 1, same_cpu = 1, iterations = 1000, pages = 4;

static struct opt opts[] = {
    {"pairs", OPT_INT, &pairs, NULL, 1, 64, "ping-pong pairs"},
    {"same-cpu", OPT_BOOL, &same_cpu, NULL, 0, 1, "both ends on one CPU (else two CPUs)"},
    {"iterations", OPT_INT, &iterations, NULL, 1, 10000000, "round trips per pair"},
    {"pages", OPT_INT, &pages, NULL, 0, 65536, "heap pages read per turn"},
    COMMON_OPTS,
};

struct shared {
    volatile long roundtrips;
    volatile int pin_failures;
};

static void side(struct shared *sh, long cpu, int in, int out, int first)
{
    if (pin_self(cpu) < 0)
        __atomic_add_fetch(&sh->pin_failures, 1, __ATOMIC_RELAXED);
    char *heap = alloc_pages(pages);
    start_wait();
    char c = 'p';
    for (long i = 0; i < iterations; i++) {
        if (first) {
            touch_read(heap, pages);
            write_full(out, &c, 1);
            if (!read_full(in, &c, 1))
                _exit(3);
            __atomic_add_fetch(&sh->roundtrips, 1, __ATOMIC_RELAXED);
        } else {
            if (!read_full(in, &c, 1))
                _exit(3);
            touch_read(heap, pages);
            write_full(out, &c, 1);
        }
    }
    _exit(0);
}

int main(int argc, char **argv)
{
    parse_opts("pingpong", "Pairs of processes bounce a token over pipes (lat_ctx-like).", opts,
               argc, argv);
    struct shared *sh = alloc_shared(sizeof(*sh));
    start_barrier_init();
    for (long i = 0; i < pairs; i++) {
        int a2b[2], b2a[2];
        xpipe(a2b);
        xpipe(b2a);
        long cpu_a = same_cpu ? i % opt_cpus : (2 * i) % opt_cpus;
        long cpu_b = same_cpu ? cpu_a : (2 * i + 1) % opt_cpus;
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0)
            side(sh, cpu_a, b2a[0], a2b[1], 1);
        pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0)
            side(sh, cpu_b, a2b[0], b2a[1], 0);
        close(a2b[0]);
        close(a2b[1]);
        close(b2a[0]);
        close(b2a[1]);
    }
    start_release();
    roi_begin();
    uint64_t t0 = now_ns();
    int failed = wait_children();
    uint64_t t1 = now_ns();
    roi_end();
    if (sh->pin_failures)
        fprintf(stderr, "pingpong: warning: %d processes could not be pinned\n",
                sh->pin_failures);
    finish("pingpong: pairs=%ld procs=%ld cpus=%ld same_cpu=%ld iterations=%ld pages=%ld "
           "roundtrips=%ld failed=%d pin_failures=%d ns_per_roundtrip=%.0f",
           pairs, 2 * pairs, opt_cpus, same_cpu, iterations, pages, sh->roundtrips, failed,
           sh->pin_failures, (double)(t1 - t0) / (double)(pairs * iterations));
    return failed ? 1 : 0;
}
