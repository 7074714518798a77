/*
 * threads_munmap: N threads of one process on N CPUs churn mappings.
 *
 * Each thread, --iterations times: mmap --map-pages pages, write one byte
 * of each, munmap. Every munmap flushes the TLBs of all CPUs running the
 * mm, and (freed page tables) even lazy ones. With --fresh-slot thread t
 * maps at (32 + t) << 39, alone in its own 512 GiB top-level slot, so each
 * mmap/munmap also sets and clears a pgd entry: the case where every active
 * per-(cpu, asid) root must learn the change through the flush IPI.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common.h"

static long threads = 4, iterations = 200, map_pages = 16, fresh_slot = 1, pinned = 1;

static struct opt opts[] = {
    {"threads", OPT_INT, &threads, NULL, 1, 128, "threads (thread t on CPU t mod cpus)"},
    {"iterations", OPT_INT, &iterations, NULL, 1, 1000000, "mmap/touch/munmap rounds per thread"},
    {"map-pages", OPT_INT, &map_pages, NULL, 1, 262144, "pages per mapping"},
    {"fresh-slot", OPT_BOOL, &fresh_slot, NULL, 0, 1, "map alone in a 512 GiB pgd slot"},
    {"pinned", OPT_BOOL, &pinned, NULL, 0, 1, "pin thread t to CPU t mod cpus"},
    COMMON_OPTS,
};

static pthread_barrier_t start;
static long maps_done, slot_hits;
static int pin_failures;

static void *worker(void *arg)
{
    long t = (long)arg;
    if (pinned && pin_self(t % opt_cpus) < 0)
        __atomic_add_fetch(&pin_failures, 1, __ATOMIC_RELAXED);
    size_t len = (size_t)map_pages * 4096;
    void *hint = fresh_slot ? (void *)((uintptr_t)(32 + t) << 39) : NULL;
    pthread_barrier_wait(&start);
    for (long i = 0; i < iterations; i++) {
        char *p = mmap(hint, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            die("mmap %zu bytes", len);
        if (hint && p == hint)
            __atomic_add_fetch(&slot_hits, 1, __ATOMIC_RELAXED);
        touch_write(p, map_pages, (int)i);
        if (munmap(p, len) < 0)
            die("munmap");
        __atomic_add_fetch(&maps_done, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    parse_opts("threads_munmap", "Threads of one process churn mmap/touch/munmap.", opts, argc,
               argv);
    pthread_t *tids = calloc((size_t)threads, sizeof(*tids));
    if (!tids)
        die("calloc");
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    for (long t = 0; t < threads; t++) {
        int err = pthread_create(&tids[t], NULL, worker, (void *)t);
        if (err) {
            fprintf(stderr, "threads_munmap: pthread_create: error %d\n", err);
            return 1;
        }
    }
    roi_begin();
    uint64_t t0 = now_ns();
    pthread_barrier_wait(&start);
    for (long t = 0; t < threads; t++)
        pthread_join(tids[t], NULL);
    uint64_t t1 = now_ns();
    roi_end();
    if (pin_failures)
        fprintf(stderr, "threads_munmap: warning: %d threads could not be pinned\n",
                pin_failures);
    finish("threads_munmap: threads=%ld cpus=%ld iterations=%ld map_pages=%ld fresh_slot=%ld "
           "pinned=%ld maps=%ld slot_hits=%ld pin_failures=%d ns_per_map=%.0f",
           threads, opt_cpus, iterations, map_pages, fresh_slot, pinned, maps_done, slot_hits,
           pin_failures, (double)(t1 - t0) / (double)(threads * iterations));
    return 0;
}
