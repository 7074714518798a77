/*
 * roots_stress: a stress of per-(cpu, asid) page-table roots (the percpu kernel,
 * src_patches/linux-6.1/) that checks its own data. Three parts run at once for
 * --seconds:
 *
 *   procs   --procs-per-cpu processes per CPU, pinned, each mapping and unmapping
 *           buffers in --slots distinct top-level (512 GiB) slots of its own: an
 *           unmap that empties a slot frees its page tables and clears the pgd
 *           entry, the next map allocates new ones, which each root must fault in
 *           anew. Every page is written with (process, generation, page) and
 *           read back before the unmap. More processes per CPU than ASIDs (6)
 *           evict roots; without PCID every switch makes one.
 *   threads --threads threads of one process, one per CPU in turn. Thread 0
 *           remaps a shared buffer in its own top-level slot again and again
 *           (freeing its tables each time) while the others read it on other
 *           CPUs under a read lock and check they see the current generation:
 *           a root that kept the freed table's entry would show an old one, or
 *           crash.
 *   forks   --forkers processes that fork children which exec this program with
 *           --child: the child touches two slots, checks them and exits.
 *
 * Summary: "roots_stress: ... errors=0" and exit status 0 when every check held.
 */
#include "common.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define SLOT_SIZE (1UL << 39)  /* one top-level entry of 4-level paging */
#define PAGE 4096UL

static long opt_seconds = 10, opt_procs_per_cpu = 8, opt_slots = 4, opt_pages = 4;
static long opt_threads = 0, opt_forkers = 1, opt_child = 0;
static const char *opt_self = "/sbin/roots_stress";

/* A distinct user slot for (owner, k): slots 1..250, clear of text (0), the
 * mmap area and the stack (253..255). */
static void *slot_addr(long owner, long k) {
    long slot = 1 + (owner * 7 + k * 31) % 250;
    return (void *)(slot * SLOT_SIZE + (unsigned long)k * 64 * PAGE);
}

static void *map_at(void *addr, long pages) {
    void *p = mmap(addr, pages * PAGE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED || p != addr)
        die("mmap at %p: %s", addr, p == MAP_FAILED ? strerror(errno) : "moved");
    return p;
}

static void fill(uint64_t *base, long pages, uint64_t tag) {
    for (long i = 0; i < pages; i++)
        base[i * PAGE / 8] = tag ^ (uint64_t)i;
}

static long check(const uint64_t *base, long pages, uint64_t tag) {
    long bad = 0;
    for (long i = 0; i < pages; i++)
        bad += base[i * PAGE / 8] != (tag ^ (uint64_t)i);
    return bad;
}

/* --- procs ------------------------------------------------------------------ */
static long proc_loop(long id, uint64_t deadline) {
    long errors = 0;
    uint64_t gen = 0;
    while (now_ns() < deadline) {
        uint64_t *buf[64];
        long slots = opt_slots < 64 ? opt_slots : 64;
        gen++;
        for (long k = 0; k < slots; k++) {
            buf[k] = map_at(slot_addr(id, k), opt_pages);
            fill(buf[k], opt_pages, ((uint64_t)id << 40) ^ (gen << 8) ^ (uint64_t)k);
        }
        sched_yield();  /* let the CPU's other processes take their roots */
        for (long k = 0; k < slots; k++) {
            errors += check(buf[k], opt_pages, ((uint64_t)id << 40) ^ (gen << 8) ^ (uint64_t)k);
            if (munmap(buf[k], opt_pages * PAGE))
                die("munmap: %s", strerror(errno));
        }
    }
    return errors;
}

/* --- threads ---------------------------------------------------------------- */
static pthread_rwlock_t shared_lock;
static uint64_t *volatile shared_buf;
static volatile uint64_t shared_gen;
static volatile int threads_stop;
static long thread_errors[256], thread_reads[256];

static void *thread_main(void *arg) {
    long id = (long)arg;
    long cpus = opt_cpus > 0 ? opt_cpus : online_cpus();
    pin_self(id % cpus);
    void *addr = slot_addr(1000, 0);
    while (!threads_stop) {
        if (id == 0) {
            pthread_rwlock_wrlock(&shared_lock);
            if (shared_buf && munmap(shared_buf, opt_pages * PAGE))
                die("munmap: %s", strerror(errno));
            shared_gen++;
            shared_buf = map_at(addr, opt_pages);
            fill(shared_buf, opt_pages, shared_gen * 0x9e3779b97f4a7c15ULL);
            pthread_rwlock_unlock(&shared_lock);
            sched_yield();
        } else {
            pthread_rwlock_rdlock(&shared_lock);
            if (shared_buf) {
                thread_errors[id] += check(shared_buf, opt_pages,
                                           shared_gen * 0x9e3779b97f4a7c15ULL);
                thread_reads[id]++;
            }
            pthread_rwlock_unlock(&shared_lock);
            spin_cycles(2000);  /* let the remapper in */
        }
    }
    return NULL;
}

static long threads_run(uint64_t deadline, long *reads) {
    pthread_t tid[256];
    long n = opt_threads < 256 ? opt_threads : 256, errors = 0;
    pthread_rwlockattr_t attr;
    /* Writer first: glibc's default lets steady readers starve the remapper. */
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&shared_lock, &attr);
    for (long i = 0; i < n; i++)
        if (pthread_create(&tid[i], NULL, thread_main, (void *)i))
            die("pthread_create failed");
    while (now_ns() < deadline)
        usleep(10000);
    threads_stop = 1;
    for (long i = 0; i < n; i++) {
        pthread_join(tid[i], NULL);
        errors += thread_errors[i];
        *reads += thread_reads[i];
    }
    return errors;
}

/* --- forks ------------------------------------------------------------------ */
static int child_main(void) {
    long errors = 0;
    for (long k = 0; k < 2; k++) {
        uint64_t *b = map_at(slot_addr(getpid() % 997, k), 2);
        fill(b, 2, (uint64_t)getpid() << 8 | (uint64_t)k);
        errors += check(b, 2, (uint64_t)getpid() << 8 | (uint64_t)k);
    }
    return errors ? 1 : 0;
}

static long fork_loop(uint64_t deadline, long *forks) {
    long failed = 0;
    while (now_ns() < deadline) {
        pid_t pid = fork();
        if (pid < 0)
            die("fork: %s", strerror(errno));
        if (pid == 0) {
            execl(opt_self, opt_self, "--child", (char *)NULL);
            _exit(127);
        }
        int status;
        if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
            failed++;
        (*forks)++;
    }
    return failed;
}

int main(int argc, char **argv) {
    struct opt opts[] = {
        {"seconds", OPT_INT, &opt_seconds, NULL, 1, 86400, "how long to run"},
        {"procs-per-cpu", OPT_INT, &opt_procs_per_cpu, NULL, 0, 64,
         "mapping processes per CPU (more than 6 evicts roots)"},
        {"slots", OPT_INT, &opt_slots, NULL, 1, 64, "top-level slots each process uses"},
        {"pages", OPT_INT, &opt_pages, NULL, 1, 512, "pages per buffer"},
        {"threads", OPT_INT, &opt_threads, NULL, 0, 256,
         "threads of one process remapping and reading a shared buffer (0: one per CPU)"},
        {"forkers", OPT_INT, &opt_forkers, NULL, 0, 64, "processes forking and exec'ing"},
        {"self", OPT_STR, NULL, &opt_self, 0, 0, "this program's path, for exec"},
        {"child", OPT_BOOL, &opt_child, NULL, 0, 1, "(internal) the exec'd child"},
        COMMON_OPTS};
    parse_opts("roots_stress", "stress per-(cpu, asid) roots, checking every page",
               opts, argc, argv);
    if (opt_child)
        return child_main();

    long cpus = opt_cpus > 0 ? opt_cpus : online_cpus();
    if (opt_threads == 0)
        opt_threads = cpus < 2 ? 2 : cpus;
    long nprocs = opt_procs_per_cpu * cpus;
    long *shared = alloc_shared(sizeof(long) * 4);  /* errors, forks, fork failures */
    uint64_t start = now_ns();
    uint64_t deadline = start + (uint64_t)opt_seconds * 1000000000ULL;

    roi_begin();
    for (long i = 0; i < nprocs; i++) {
        if (fork() == 0) {
            pin_self(i % cpus);
            __atomic_add_fetch(&shared[0], proc_loop(i, deadline), __ATOMIC_RELAXED);
            _exit(0);
        }
    }
    for (long i = 0; i < opt_forkers; i++) {
        if (fork() == 0) {
            pin_self(i % cpus);
            long forks = 0, failed = fork_loop(deadline, &forks);
            __atomic_add_fetch(&shared[1], forks, __ATOMIC_RELAXED);
            __atomic_add_fetch(&shared[2], failed, __ATOMIC_RELAXED);
            _exit(0);
        }
    }
    long reads = 0;
    long thread_errs = threads_run(deadline, &reads);
    int crashed = wait_children();
    roi_end();

    long errors = shared[0] + thread_errs + shared[2] + crashed;
    finish("roots_stress: cpus=%ld seconds=%ld procs=%ld slots=%ld threads=%ld forkers=%ld "
           "data_errors=%ld thread_errors=%ld thread_reads=%ld remaps=%llu forks=%ld "
           "fork_failures=%ld "
           "crashed=%d elapsed_s=%.1f errors=%ld",
           cpus, opt_seconds, nprocs, opt_slots, opt_threads, opt_forkers, shared[0],
           thread_errs, reads, (unsigned long long)shared_gen, shared[1], shared[2], crashed,
           (double)(now_ns() - start) / 1e9, errors);
    return errors ? 1 : 0;
}
