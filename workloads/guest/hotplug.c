/*
 * hotplug: take a CPU offline under tasks that sleep on it.
 *
 * The question of the proposal's mail: what happens if a task does
 * migrate_disable(), holds kmap_local mappings and sleeps for a long time,
 * and someone offlines its CPU? User space cannot hold kmap_local mappings
 * or call migrate_disable(); the nearest it can do is what this program
 * does: --holders processes pinned to the last CPU (cpus - 1) each read
 * --maps pages of a shmem file (kernel copies through kmap_local), then
 * sleep --sleep-us while the controller writes 0 to
 * /sys/devices/system/cpu/cpuN/online, waits --offline-us and writes 1;
 * --cycles times. CPU 0 is never offlined. When the file cannot be written
 * (no permission, no hotplug support, one CPU) the program says so once on
 * stderr and runs the cycles without offlining.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static long holders = 2, maps = 4, cycles = 3, sleep_us = 2000, offline_us = 1000;
static const char *sysfs = "/sys/devices/system/cpu";

static struct opt opts[] = {
    {"holders", OPT_INT, &holders, NULL, 1, 64, "tasks sleeping on the CPU that goes offline"},
    {"maps", OPT_INT, &maps, NULL, 1, 16, "pages each holder has the kernel map per cycle"},
    {"cycles", OPT_INT, &cycles, NULL, 1, 1000, "offline/online cycles"},
    {"sleep-us", OPT_INT, &sleep_us, NULL, 0, 10000000, "holder sleep per cycle (us)"},
    {"offline-us", OPT_INT, &offline_us, NULL, 0, 10000000, "time the CPU stays offline (us)"},
    {"sysfs", OPT_STR, NULL, &sysfs, 0, 0, "CPU sysfs directory (tests point it elsewhere)"},
    COMMON_OPTS,
};

struct shared {
    volatile long moved;
    volatile long mapped_pages;
    volatile int pin_failures;
};

static void sleep_for_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int data_file(long pages)
{
    int fd = memfd_create("hotplug", 0);
    if (fd < 0) {
        char path[] = "/tmp/hotplug.XXXXXX";
        fd = mkstemp(path);
        if (fd < 0)
            die("hotplug: data file");
        unlink(path);
    }
    char page[4096];
    memset(page, 'h', sizeof(page));
    for (long i = 0; i < pages; i++)
        write_full(fd, page, sizeof(page));
    return fd;
}

static void holder(struct shared *sh, long target, int go, int held, int fd)
{
    char *buf = alloc_pages(maps);
    char c;
    for (long i = 0; i < cycles; i++) {
        if (!read_full(go, &c, 1))
            _exit(3);
        /* Back onto the target CPU (offlining broke the affinity). */
        if (pin_self(target) < 0)
            __atomic_add_fetch(&sh->pin_failures, 1, __ATOMIC_RELAXED);
        if (pread(fd, buf, (size_t)maps * 4096, 0) != maps * 4096)
            die("pread");
        __atomic_add_fetch(&sh->mapped_pages, maps, __ATOMIC_RELAXED);
        write_full(held, "h", 1);
        sleep_for_us(sleep_us);
        if (sched_getcpu() != target)
            __atomic_add_fetch(&sh->moved, 1, __ATOMIC_RELAXED);
    }
    _exit(0);
}

/* Write "0" or "1" to the online file; 0 on success, else errno. */
static int set_online(const char *path, int on)
{
    int fd = open(path, O_WRONLY | O_TRUNC);
    if (fd < 0)
        return errno;
    const char *val = on ? "1\n" : "0\n";
    ssize_t n = write(fd, val, 2);
    int err = n == 2 ? 0 : (n < 0 ? errno : EIO);
    if (close(fd) < 0 && !err)
        err = errno;
    return err;
}

int main(int argc, char **argv)
{
    parse_opts("hotplug", "Offline a CPU under tasks sleeping on it.", opts, argc, argv);
    long target = opt_cpus - 1;
    char path[4096];
    snprintf(path, sizeof(path), "%s/cpu%ld/online", sysfs, target);
    const char *state = "ok";
    if (target < 1) {
        state = "single-cpu";
        fprintf(stderr, "hotplug: one CPU: nothing can go offline; running without hotplug\n");
    } else if (access(path, W_OK) < 0) {
        state = "unavailable";
        fprintf(stderr, "hotplug: cannot write %s (%s); running without offlining cpu%ld\n",
                path, strerror(errno), target);
    }
    int fd = data_file(maps);
    struct shared *sh = alloc_shared(sizeof(*sh));
    int held[2];
    xpipe(held);
    int (*go)[2] = calloc((size_t)holders, sizeof(*go));
    if (!go)
        die("calloc");
    for (long h = 0; h < holders; h++) {
        xpipe(go[h]);
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0)
            holder(sh, target, go[h][0], held[1], fd);
    }
    long offlined = 0, onlined = 0;
    pin_self(0); /* the controller stays on CPU 0, which never goes offline */
    roi_begin();
    uint64_t t0 = now_ns();
    for (long i = 0; i < cycles; i++) {
        char c;
        for (long h = 0; h < holders; h++)
            write_full(go[h][1], "g", 1);
        for (long h = 0; h < holders; h++)
            if (!read_full(held[0], &c, 1))
                die("hotplug: a holder died");
        int down = 0;
        if (strcmp(state, "ok") == 0) {
            int err = set_online(path, 0);
            if (err == 0) {
                offlined++;
                down = 1;
            } else {
                state = "unavailable";
                fprintf(stderr, "hotplug: cannot offline cpu%ld via %s (%s); continuing "
                        "without hotplug\n", target, path, strerror(err));
            }
        }
        sleep_for_us(offline_us);
        if (down) {
            int err = 0;
            for (int tries = 0; tries < 100; tries++) {
                err = set_online(path, 1);
                if (err != EBUSY && err != EAGAIN)
                    break;
                sleep_for_us(10000);
            }
            if (err) {
                fprintf(stderr, "hotplug: ERROR: cannot bring cpu%ld back online via %s (%s)\n",
                        target, path, strerror(err));
                return 1;
            }
            onlined++;
        }
    }
    int failed = wait_children();
    uint64_t t1 = now_ns();
    roi_end();
    if (sh->pin_failures)
        fprintf(stderr, "hotplug: warning: %d holder pins failed\n", sh->pin_failures);
    finish("hotplug: holders=%ld cpus=%ld target_cpu=%ld maps=%ld cycles=%ld sleep_us=%ld "
           "offline_us=%ld offlined=%ld onlined=%ld moved=%ld mapped_pages=%ld hotplug=%s "
           "failed=%d pin_failures=%d ns_per_cycle=%.0f",
           holders, opt_cpus, target, maps, cycles, sleep_us, offline_us, offlined, onlined,
           sh->moved, sh->mapped_pages, state, failed, sh->pin_failures,
           (double)(t1 - t0) / (double)cycles);
    return failed ? 1 : 0;
}
