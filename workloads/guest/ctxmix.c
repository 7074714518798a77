/*
 * ctxmix: P processes per CPU take turns in strict round-robin.
 *
 * Process p belongs to ring p mod cpus (and, with --pinned, runs on that
 * CPU). A one-byte token circulates through each ring over pipes, so the
 * processes of a CPU run one after the other: from 7 per CPU on, Linux's 6
 * ASID slots per CPU (TLB_NR_DYN_ASIDS) are evicted on every switch.
 * Each turn reads one byte of each of its heap pages, busy-waits
 * --work-cycles and passes the token on (the engine's ctxmix turn).
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common.h"

static long procs_per_cpu = 4, pinned = 1, rounds = 200, pages = 16, work_cycles = 20000;

static struct opt opts[] = {
    {"procs-per-cpu", OPT_INT, &procs_per_cpu, NULL, 1, 64, "processes per CPU"},
    {"pinned", OPT_BOOL, &pinned, NULL, 0, 1, "pin process i to CPU i mod cpus"},
    {"rounds", OPT_INT, &rounds, NULL, 1, 1000000, "turns each process takes"},
    {"pages", OPT_INT, &pages, NULL, 1, 65536, "heap pages read per turn"},
    {"work-cycles", OPT_INT, &work_cycles, NULL, 0, 1000000000, "busy cycles per turn"},
    COMMON_OPTS,
};

struct shared {
    volatile long turns;
    volatile int pin_failures;
};

int main(int argc, char **argv)
{
    parse_opts("ctxmix", "P processes per CPU pass a token in strict round-robin.", opts, argc,
               argv);
    long nprocs = procs_per_cpu * opt_cpus;
    struct shared *sh = alloc_shared(sizeof(*sh));
    int (*tok)[2] = calloc((size_t)nprocs, sizeof(*tok));
    if (!tok)
        die("calloc");
    for (long p = 0; p < nprocs; p++)
        xpipe(tok[p]);
    start_barrier_init();
    for (long p = 0; p < nprocs; p++) {
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid > 0)
            continue;
        if (pinned && pin_self(p % opt_cpus) < 0)
            __atomic_add_fetch(&sh->pin_failures, 1, __ATOMIC_RELAXED);
        char *heap = alloc_pages(pages);
        long next = p + opt_cpus < nprocs ? p + opt_cpus : p % opt_cpus;
        start_wait();
        char c;
        for (long r = 0; r < rounds; r++) {
            if (!read_full(tok[p][0], &c, 1))
                _exit(3);
            touch_read(heap, pages);
            spin_cycles(work_cycles);
            __atomic_add_fetch(&sh->turns, 1, __ATOMIC_RELAXED);
            write_full(tok[next][1], &c, 1);
        }
        _exit(0);
    }
    start_release();
    roi_begin();
    uint64_t t0 = now_ns();
    for (long c = 0; c < opt_cpus && c < nprocs; c++)
        write_full(tok[c][1], "t", 1);
    int failed = wait_children();
    uint64_t t1 = now_ns();
    roi_end();
    if (pinned && sh->pin_failures)
        fprintf(stderr, "ctxmix: warning: %d processes could not be pinned\n", sh->pin_failures);
    finish("ctxmix: procs=%ld cpus=%ld procs_per_cpu=%ld pinned=%ld rounds=%ld pages=%ld "
           "work_cycles=%ld turns=%ld failed=%d pin_failures=%d ns_per_turn=%.0f",
           nprocs, opt_cpus, procs_per_cpu, pinned, rounds, pages, work_cycles, sh->turns, failed,
           sh->pin_failures, (double)(t1 - t0) / (double)(nprocs * rounds));
    return failed ? 1 : 0;
}
