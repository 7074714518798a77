#include "calib.h"

#include <stdio.h>
#include <sys/mman.h>
#include <sys/resource.h>

long calib_iters = 1000;
long calib_samples = 5;

void calib_report(const char *name, double value, const char *unit)
{
    printf("calib %s %.3f %s\n", name, value, unit);
    fflush(stdout);
}

void calib_pin(long cpu)
{
    if (cpu >= online_cpus())
        die("calib: CPU %ld is not online (%ld online)", cpu, online_cpus());
    if (pin_self(cpu) < 0)
        die("calib: cannot pin to CPU %ld", cpu);
    /* Favoured over other load when allowed (root): fewer samples are preempted.
     * Linux applies it to the calling thread only, so every task pins itself. */
    (void)setpriority(PRIO_PROCESS, 0, -20);
}

char *calib_map(size_t bytes)
{
    char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        die("calib: mmap %zu bytes", bytes);
#ifdef MADV_NOHUGEPAGE
    madvise(p, bytes, MADV_NOHUGEPAGE);
#endif
    return p;
}
