/*
 * calib_proc: process and thread life cycle, all on CPU 0.
 *
 *   --bench fork    fork(); the child _exit(0)s at once; waitpid()
 *   --bench exec    fork(); the child execs this (static) program, which
 *                   exits at once; waitpid()
 *   --bench thread  pthread_create() of a thread that returns; pthread_join()
 *   --bench exit    the child's last moment before _exit(0) to the parent's
 *                   return from waitpid(): exit, the parent's wake-up and
 *                   the switch back to it
 *
 *   calib fork_exit|fork_exec_exit|thread_create_join|exit_to_wait NS ns
 */
#include "calib.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>


#define EXEC_CHILD "--exec-child"

static const char *bench = "fork";
static const char *self = "/proc/self/exe";

static struct opt opts[] = {
    {"bench", OPT_STR, NULL, &bench, 0, 0, "fork, exec, thread or exit"},
    {"self", OPT_STR, NULL, &self, 0, 0, "path of this program, for exec"},
    CALIB_OPTS,
    COMMON_OPTS,
};

static void *nothing(void *arg)
{
    return arg;
}

static void reap(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("calib_proc: child failed (status %#x)", status);
}

static double sample(int kind, volatile uint64_t *stamp)
{
    double exit_ns = 0;
    uint64_t t0 = now_ns();
    for (long i = 0; i < calib_iters; i++) {
        if (kind == 2) {
            pthread_t th;
            if (pthread_create(&th, NULL, nothing, NULL) != 0)
                die("pthread_create");
            pthread_join(th, NULL);
            continue;
        }
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0) {
            if (kind == 1) {
                execl(self, "calib_proc", EXEC_CHILD, (char *)NULL);
                _exit(127);
            }
            if (kind == 3)
                *stamp = now_ns();
            _exit(0);
        }
        reap(pid);
        if (kind == 3)
            exit_ns += (double)(now_ns() - *stamp);
    }
    if (kind == 3)
        return exit_ns / (double)calib_iters;
    return (double)(now_ns() - t0) / (double)calib_iters;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], EXEC_CHILD) == 0)
        _exit(0);
    calib_iters = 300;
    parse_opts("calib_proc", "fork, exec, exit and thread creation.", opts, argc, argv);
    static const char *const kinds[] = {"fork", "exec", "thread", "exit"};
    static const char *const names[] = {"fork_exit", "fork_exec_exit", "thread_create_join",
                                        "exit_to_wait"};
    int kind = -1;
    for (int k = 0; k < 4; k++)
        if (strcmp(bench, kinds[k]) == 0)
            kind = k;
    if (kind < 0) {
        fprintf(stderr, "calib_proc: unknown --bench '%s': use fork, exec, thread or exit\n",
                bench);
        return 2;
    }
    if (kind == 1 && access(self, X_OK) != 0)
        die("calib_proc: cannot exec %s (give --self PATH)", self);
    calib_pin(0);
    volatile uint64_t *stamp = alloc_shared(sizeof(uint64_t));
    for (long s = 0; s < calib_samples; s++)
        calib_report(names[kind], sample(kind, stamp), "ns");
    return 0;
}
