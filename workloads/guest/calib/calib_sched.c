/*
 * calib_sched: context switches and wake-ups between two tasks.
 *
 *   --bench yield   each task calls sched_yield() --iters times: a switch
 *                   per call, no wake-up
 *   --bench pipe    a one-byte token over two pipes (lat_ctx): per round
 *                   trip two writes that wake the other side and two reads
 *                   that block
 *   --threads       the two tasks are threads of one process (no mm switch);
 *                   otherwise two processes
 *   --cross         the second task runs on CPU 1 (a cross-CPU wake-up per
 *                   hand-off); otherwise both are pinned to CPU 0
 *
 *   calib yield_proc|yield_thread|pipe_proc|pipe_thread|pipe_cross NS ns
 *   (per iteration of one task's loop)
 */
#include "calib.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>


static const char *bench = "pipe";
static long threads = 0, cross = 0;

static struct opt opts[] = {
    {"bench", OPT_STR, NULL, &bench, 0, 0, "yield or pipe"},
    {"threads", OPT_BOOL, &threads, NULL, 0, 1, "threads of one process (else processes)"},
    {"cross", OPT_BOOL, &cross, NULL, 0, 1, "second task on CPU 1 (else both on CPU 0)"},
    CALIB_OPTS,
    COMMON_OPTS,
};

struct side {
    int id, in, out, yield;
    pthread_barrier_t *go;
    volatile uint64_t *t0, *t1;
};

static void *run_side(void *arg)
{
    struct side *s = arg;
    calib_pin(s->id == 1 && cross ? 1 : 0);
    /* A blocking start: a side that spun here with sched_yield at nice -20 would starve
     * the other, still at nice 0 and not yet on its CPU, for hundreds of ms (CFS scales
     * the yield's wake-up granularity by the spinner's weight): minutes in gem5. */
    pthread_barrier_wait(s->go);
    char c = 'x';
    s->t0[s->id] = now_ns();
    for (long i = 0; i < calib_iters; i++) {
        if (s->yield) {
            sched_yield();
        } else if (s->id == 0) {
            write_full(s->out, &c, 1);
            if (!read_full(s->in, &c, 1))
                die("calib_sched: pipe closed");
        } else {
            if (!read_full(s->in, &c, 1))
                die("calib_sched: pipe closed");
            write_full(s->out, &c, 1);
        }
    }
    s->t1[s->id] = now_ns();
    return NULL;
}

static double sample(int yield)
{
    int a2b[2], b2a[2];
    xpipe(a2b);
    xpipe(b2a);
    size_t shared = 4 * sizeof(uint64_t) + sizeof(pthread_barrier_t);
    uint64_t *times = alloc_shared(shared);
    pthread_barrier_t *go = (pthread_barrier_t *)(times + 4);
    pthread_barrierattr_t attr;
    pthread_barrierattr_init(&attr);
    pthread_barrierattr_setpshared(&attr, PTHREAD_PROCESS_SHARED); /* threads or processes */
    if (pthread_barrier_init(go, &attr, 2) != 0)
        die("pthread_barrier_init");
    pthread_barrierattr_destroy(&attr);
    struct side sides[2] = {
        {0, b2a[0], a2b[1], yield, go, times, times + 2},
        {1, a2b[0], b2a[1], yield, go, times, times + 2},
    };
    if (threads) {
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
            if (pthread_create(&th[i], NULL, run_side, &sides[i]) != 0)
                die("pthread_create");
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
    } else {
        for (int i = 0; i < 2; i++) {
            pid_t pid = fork();
            if (pid < 0)
                die("fork");
            if (pid == 0) {
                run_side(&sides[i]);
                _exit(0);
            }
        }
        if (wait_children())
            die("calib_sched: a side failed");
    }
    uint64_t start = times[0] < times[1] ? times[0] : times[1];
    uint64_t end = times[2] > times[3] ? times[2] : times[3];
    for (int i = 0; i < 2; i++) {
        close(a2b[i]);
        close(b2a[i]);
    }
    pthread_barrier_destroy(go);
    munmap(times, shared);
    return (double)(end - start) / (double)calib_iters;
}

int main(int argc, char **argv)
{
    calib_iters = 20000;
    parse_opts("calib_sched", "Context switches (sched_yield, pipe ping-pong) and wake-ups.",
               opts, argc, argv);
    int yield = strcmp(bench, "yield") == 0;
    if (!yield && strcmp(bench, "pipe") != 0) {
        fprintf(stderr, "calib_sched: unknown --bench '%s': use yield or pipe\n", bench);
        return 2;
    }
    if (yield && cross) {
        fprintf(stderr, "calib_sched: --bench yield takes no --cross (a yield switches on one CPU)\n");
        return 2;
    }
    char name[32];
    snprintf(name, sizeof(name), "%s_%s", bench, cross ? "cross" : threads ? "thread" : "proc");
    for (long s = 0; s < calib_samples; s++)
        calib_report(name, sample(yield), "ns");
    return 0;
}
