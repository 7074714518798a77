/*
 * calib_syscall: system call entry and exit, getppid(2) in a loop (no work
 * inside the kernel; with PTI each call also switches CR3 twice).
 *
 *   calib syscall NS ns
 */
#include "calib.h"

#include <sys/syscall.h>
#include <unistd.h>


static struct opt opts[] = {CALIB_OPTS, COMMON_OPTS};

int main(int argc, char **argv)
{
    calib_iters = 200000;
    parse_opts("calib_syscall", "System call entry and exit (getppid).", opts, argc, argv);
    calib_pin(0);
    for (long s = 0; s < calib_samples; s++) {
        uint64_t t0 = now_ns();
        for (long i = 0; i < calib_iters; i++)
            syscall(SYS_getppid);
        uint64_t t1 = now_ns();
        calib_report("syscall", (double)(t1 - t0) / (double)calib_iters, "ns");
    }
    return 0;
}
