/*
 * calib_shootdown: TLB shootdowns. The main thread, on CPU 0, flips one page
 * between read-only and read-write with mprotect(2) --iters times; each call
 * changes the PTE and flushes it (x86 flushes on any change of the RW bit).
 * With --remote a second thread of the process spins on CPU 1, so every
 * flush also sends it an IPI; the spinner adds up the gaps in its loop
 * (time it lost to interrupts, up to 50 us each: a longer gap is another
 * task running, not an IPI), minus the gaps of an equally long quiet period
 * after, per iteration: what the flushes cost the receiving CPU.
 *
 *   calib mprotect_local|mprotect_remote NS ns   (per pair of calls)
 *   calib ipi_lost NS ns                         (with --remote)
 */
#include "calib.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mman.h>


#define PAGE 4096L
#define GAP_NS 200      /* a loop pass longer than this was interrupted */
#define MAX_GAP_NS 50000 /* longer than this: preempted by another task, not an IPI */

static long remote = 0;

static struct opt opts[] = {
    {"remote", OPT_BOOL, &remote, NULL, 0, 1, "a thread of the process spins on CPU 1"},
    CALIB_OPTS,
    COMMON_OPTS,
};

static volatile int phase; /* 0 starting, 1 quiet, 2 measuring, 3 stop */
static volatile int spinner_phase;
static volatile uint64_t lost[3];

static void *spin(void *arg)
{
    (void)arg;
    calib_pin(1);
    uint64_t prev = now_ns();
    for (;;) {
        int p = phase;
        if (p == 3)
            break;
        spinner_phase = p;
        uint64_t t = now_ns();
        if (t - prev > GAP_NS && t - prev < MAX_GAP_NS && p > 0)
            lost[p] += t - prev;
        prev = t;
    }
    return NULL;
}

/* Yields while it waits: under SCHED_FIFO (percpu calibrate --realtime) the new
 * spinner thread starts on this CPU and runs only when this thread gives way. */
static void wait_spinner(int p)
{
    phase = p;
    while (spinner_phase != p)
        sched_yield();
}

int main(int argc, char **argv)
{
    calib_iters = 5000;
    parse_opts("calib_shootdown", "TLB shootdown by mprotect, with a remote thread or without.",
               opts, argc, argv);
    calib_pin(0);
    /* One page between two PROT_NONE guards, so that mprotect never splits or
     * merges a VMA. */
    char *area = mmap(NULL, 3 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED)
        die("mmap");
    char *page = area + PAGE;
    if (mprotect(page, PAGE, PROT_READ | PROT_WRITE) < 0)
        die("mprotect");
    page[0] = 1;
    pthread_t th;
    /* The spinner starts on CPU 1: created on this CPU it would wait, at nice 0, behind
     * this thread's nice -20 yields in wait_spinner for hundreds of ms before it could
     * pin itself away. */
    pthread_attr_t attr;
    cpu_set_t on1;
    pthread_attr_init(&attr);
    CPU_ZERO(&on1);
    CPU_SET(1, &on1);
    if (online_cpus() > 1) /* else the spinner's calib_pin names the missing CPU */
        pthread_attr_setaffinity_np(&attr, sizeof(on1), &on1);
    if (remote && pthread_create(&th, &attr, spin, NULL) != 0)
        die("pthread_create");
    pthread_attr_destroy(&attr);
    for (long s = 0; s < calib_samples; s++) {
        uint64_t q0 = 0;
        if (remote) {
            lost[1] = lost[2] = 0;
            wait_spinner(1);
            q0 = now_ns();
        }
        uint64_t t0 = now_ns();
        for (long i = 0; i < calib_iters; i++) {
            if (mprotect(page, PAGE, PROT_READ) < 0 || mprotect(page, PAGE, PROT_READ | PROT_WRITE) < 0)
                die("mprotect");
        }
        uint64_t t1 = now_ns();
        if (remote) {
            /* The quiet period: as long as the measured one, nothing sent. */
            wait_spinner(2);
            uint64_t m = lost[1];
            lost[1] = 0;
            wait_spinner(1);
            uint64_t q1 = now_ns();
            while (now_ns() - q1 < t1 - q0)
                ;
            wait_spinner(2);
            double quiet = (double)lost[1];
            calib_report("mprotect_remote", (double)(t1 - t0) / (double)calib_iters, "ns");
            calib_report("ipi_lost", ((double)m - quiet) / (double)calib_iters, "ns");
        } else {
            calib_report("mprotect_local", (double)(t1 - t0) / (double)calib_iters, "ns");
        }
    }
    if (remote) {
        phase = 3;
        pthread_join(th, NULL);
    }
    return 0;
}
