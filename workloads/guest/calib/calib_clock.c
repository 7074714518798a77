/*
 * calib_clock: the core clock, from a chain of dependent integer adds (one
 * cycle each on every x86 core since the P6), and the TSC rate against
 * CLOCK_MONOTONIC. Under a hypervisor the TSC runs at a fixed rate that need
 * not be the core clock, so cycles are counted with the add chain, not rdtsc.
 *
 *   calib core_mhz VALUE MHz
 *   calib tsc_mhz VALUE MHz
 */
#include "calib.h"

#include <stdint.h>


static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

static struct opt opts[] = {CALIB_OPTS, COMMON_OPTS};

int main(int argc, char **argv)
{
    calib_iters = 2000000;
    parse_opts("calib_clock", "Core clock (dependent-add chain) and TSC rate.", opts, argc,
               argv);
    calib_pin(0);
    for (long s = 0; s < calib_samples; s++) {
        long x = 0, n = calib_iters;
        const long one = 1;
        uint64_t c0 = rdtsc(), t0 = now_ns();
        /* 16 dependent adds per pass: 16 cycles; dec/jnz run beside them. */
        __asm__ volatile("1:\n\t.rept 16\n\tadd %[one], %[x]\n\t.endr\n\tdec %[n]\n\tjnz 1b"
                         : [x] "+r"(x), [n] "+r"(n)
                         : [one] "r"(one)
                         : "cc");
        uint64_t t1 = now_ns(), c1 = rdtsc();
        double ns = (double)(t1 - t0);
        calib_report("core_mhz", 16.0 * (double)calib_iters / ns * 1e3, "MHz");
        calib_report("tsc_mhz", (double)(c1 - c0) / ns * 1e3, "MHz");
    }
    return 0;
}
