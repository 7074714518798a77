/*
 * forkexec: short-lived address spaces.
 *
 * --forkers-per-cpu processes per CPU each fork --forks children one at a
 * time and wait for each. With --exec the child execs this program again
 * with --child (falling back to /bin/true): a fresh mm that lives for a few
 * page touches. Without it the child writes one byte of each of the
 * parent's --pages heap pages (copy-on-write faults in the copied mm) and
 * exits. Every child is a new mm, so every CPU it runs on needs a new ASID
 * slot and, with per-(cpu, asid) roots, a new root.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

static long forkers_per_cpu = 1, forks = 50, do_exec = 1, pages = 64, pinned = 1, child;

static struct opt opts[] = {
    {"forkers-per-cpu", OPT_INT, &forkers_per_cpu, NULL, 1, 64, "forking processes per CPU"},
    {"forks", OPT_INT, &forks, NULL, 1, 1000000, "fork (+exec) + wait rounds per forker"},
    {"exec", OPT_BOOL, &do_exec, NULL, 0, 1, "child execs (self --child, else /bin/true)"},
    {"pages", OPT_INT, &pages, NULL, 0, 65536, "forker heap pages (copied mm size)"},
    {"pinned", OPT_BOOL, &pinned, NULL, 0, 1, "pin forker i (and its children) to CPU i mod cpus"},
    {"child", OPT_BOOL, &child, NULL, 0, 1, "internal: run as the exec'd child"},
    COMMON_OPTS,
};

enum { TARGET_SELF = 1, TARGET_TRUE = 2 };

struct shared {
    volatile long forks_done;
    volatile long failed;
    volatile int pin_failures;
    volatile int targets; /* TARGET_* bits seen */
};

static char self_path[4096];

static void run_child(void)
{
    /* A tiny fresh mm: a few stack pages written, then exit. */
    volatile char stack[4 * 4096];
    for (size_t i = 0; i < sizeof(stack); i += 4096)
        stack[i] = 1;
    _exit(0);
}

static void do_child(struct shared *sh, char *heap)
{
    if (!do_exec) {
        touch_write(heap, pages, 2);
        _exit(0);
    }
    char *self_argv[] = {"forkexec", "--child", NULL};
    if (self_path[0]) {
        execv(self_path, self_argv);
    }
    __atomic_or_fetch(&sh->targets, TARGET_TRUE, __ATOMIC_RELAXED);
    char *true_argv[] = {"true", NULL};
    execv("/bin/true", true_argv);
    _exit(127);
}

static void forker(struct shared *sh, long f)
{
    if (pinned && pin_self(f % opt_cpus) < 0)
        __atomic_add_fetch(&sh->pin_failures, 1, __ATOMIC_RELAXED);
    char *heap = alloc_pages(pages);
    start_wait();
    for (long i = 0; i < forks; i++) {
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0)
            do_child(sh, heap);
        int status;
        while (waitpid(pid, &status, 0) < 0)
            ;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            __atomic_add_fetch(&sh->failed, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&sh->forks_done, 1, __ATOMIC_RELAXED);
    }
    _exit(0);
}

int main(int argc, char **argv)
{
    parse_opts("forkexec", "Processes fork (and exec) short-lived children.", opts, argc, argv);
    if (child)
        run_child();
    ssize_t n = readlink("/proc/self/exe", self_path, sizeof(self_path) - 1);
    if (n > 0)
        self_path[n] = '\0';
    else if (argv[0][0] == '/')
        snprintf(self_path, sizeof(self_path), "%s", argv[0]);
    else
        self_path[0] = '\0';
    struct shared *sh = alloc_shared(sizeof(*sh));
    if (do_exec && self_path[0])
        sh->targets = TARGET_SELF;
    long nforkers = forkers_per_cpu * opt_cpus;
    start_barrier_init();
    for (long f = 0; f < nforkers; f++) {
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0)
            forker(sh, f);
    }
    start_release();
    roi_begin();
    uint64_t t0 = now_ns();
    int bad = wait_children();
    uint64_t t1 = now_ns();
    roi_end();
    const char *target = !do_exec                    ? "none"
                         : sh->targets & TARGET_TRUE ? "true"
                                                     : "self";
    if (sh->pin_failures)
        fprintf(stderr, "forkexec: warning: %d forkers could not be pinned\n", sh->pin_failures);
    finish("forkexec: forkers=%ld cpus=%ld forkers_per_cpu=%ld forks=%ld total_forks=%ld exec=%ld "
           "pages=%ld "
           "pinned=%ld exec_target=%s children_failed=%ld failed=%d pin_failures=%d "
           "ns_per_fork=%.0f",
           nforkers, opt_cpus, forkers_per_cpu, forks, sh->forks_done, do_exec, pages, pinned, target,
           sh->failed, bad, sh->pin_failures,
           (double)(t1 - t0) / (double)(sh->forks_done ? sh->forks_done : 1));
    return bad || sh->failed ? 1 : 0;
}
