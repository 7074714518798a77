/*
 * calib_chase: memory latency by pointer chasing, and a 2 KiB copy.
 *
 *   --bench chase --size BYTES  a random cyclic chain through every 64-byte
 *                               line of a BYTES buffer (4 KiB pages): each
 *                               load depends on the one before, so the time
 *                               per load is the latency of where the buffer
 *                               lives (L1D, L2, LLC or DRAM), TLB misses
 *                               included
 *   --bench copy --size BYTES   memcpy of 2 KiB from a warm source into the
 *                               upper half of the next page of a cold BYTES
 *                               buffer: what copying a root's kernel half
 *                               into a fresh page costs
 *
 *   calib chase_<KiB>k NS ns   (per load)
 *   calib copy_2k NS ns        (per copy)
 */
#include "calib.h"

#include <stdio.h>
#include <string.h>


#define LINE 64
#define PAGE 4096L

static const char *bench = "chase";
static long size = 1 << 20;

static struct opt opts[] = {
    {"bench", OPT_STR, NULL, &bench, 0, 0, "chase or copy"},
    {"size", OPT_INT, &size, NULL, 8192, 1L << 34, "buffer bytes"},
    CALIB_OPTS,
    COMMON_OPTS,
};

static uint64_t rng = 88172645463325252ULL;

static uint64_t next_random(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

int main(int argc, char **argv)
{
    calib_iters = 200000;
    parse_opts("calib_chase", "Memory latency by pointer chasing; a 2 KiB copy.", opts, argc, argv);
    calib_pin(0);
    int copy = strcmp(bench, "copy") == 0;
    if (!copy && strcmp(bench, "chase") != 0) {
        fprintf(stderr, "calib_chase: unknown --bench '%s': use chase or copy\n", bench);
        return 2;
    }
    size = size / PAGE * PAGE;
    char *buf = calib_map((size_t)size);
    touch_write(buf, size / PAGE, 1);
    if (copy) {
        static char src[2048];
        memset(src, 7, sizeof(src));
        long npages = size / PAGE;
        long next = 0;
        for (long s = 0; s < calib_samples; s++) {
            uint64_t t0 = now_ns();
            for (long i = 0; i < calib_iters; i++) {
                memcpy(buf + next * PAGE + 2048, src, sizeof(src));
                __asm__ volatile("" ::"r"(buf) : "memory");
                next = next + 1 == npages ? 0 : next + 1;
            }
            calib_report("copy_2k", (double)(now_ns() - t0) / (double)calib_iters, "ns");
        }
        return 0;
    }
    /* Sattolo's algorithm: one cycle through every line. */
    long lines = size / LINE;
    long *order = (long *)calib_map((size_t)lines * sizeof(long));
    for (long i = 0; i < lines; i++)
        order[i] = i;
    for (long i = lines - 1; i > 0; i--) {
        long j = (long)(next_random() % (uint64_t)i);
        long t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (long i = 0; i < lines; i++)
        *(void **)(buf + order[i] * LINE) = buf + order[(i + 1) % lines] * LINE;
    void **p = (void **)buf;
    for (long i = 0; i < lines; i++) /* one pass to warm the caches and TLBs */
        p = *p;
    char name[32];
    snprintf(name, sizeof(name), "chase_%ldk", size / 1024);
    for (long s = 0; s < calib_samples; s++) {
        uint64_t t0 = now_ns();
        for (long i = 0; i < calib_iters; i++)
            p = *p;
        uint64_t t1 = now_ns();
        __asm__ volatile("" ::"r"(p));
        calib_report(name, (double)(t1 - t0) / (double)calib_iters, "ns");
    }
    return 0;
}
