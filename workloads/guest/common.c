#include "common.h"

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "m5op.h"

long opt_cpus;
long opt_roi;
long opt_exit = 1;
long opt_m5_clock;

static void usage(FILE *f, const char *prog, const char *what, const struct opt *opts)
{
    fprintf(f, "usage: %s [options]\n%s\n", prog, what);
    for (const struct opt *o = opts; o->name; o++) {
        switch (o->type) {
        case OPT_INT:
            fprintf(f, "  --%-18s %s (%ld..%ld, default %ld)\n", o->name, o->help, o->min,
                    o->max, *o->ival);
            break;
        case OPT_BOOL:
            fprintf(f, "  --[no-]%-13s %s (default %s)\n", o->name, o->help,
                    *o->ival ? "on" : "off");
            break;
        case OPT_STR:
            fprintf(f, "  --%-18s %s (default %s)\n", o->name, o->help, *o->sval);
            break;
        }
    }
}

static void bad(const char *prog, const char *fmt, const char *arg)
{
    fprintf(stderr, "%s: ", prog);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (try --help)\n");
    exit(2);
}

/* Many processes times a few pipes each can pass the default 1024 descriptors. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* gem5's clock answers and moves on: a mapping that is not gem5's reads a constant. */
static int m5_clock_works(void)
{
    if (!m5op_init(1))
        return 0;
    uint64_t t0 = m5op_rpns();
    for (volatile int i = 0; i < 1000; i++)
        ;
    return m5op_active() && m5op_rpns() > t0;
}

void parse_opts(const char *prog, const char *what, struct opt *opts, int argc, char **argv)
{
    raise_fd_limit();
    opt_cpus = online_cpus();
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout, prog, what, opts);
            exit(0);
        }
        if (strncmp(arg, "--", 2) != 0)
            bad(prog, "unexpected argument '%s'", arg);
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        int negated = 0;
        struct opt *o = NULL;
        for (struct opt *p = opts; p->name && !o; p++) {
            if (strlen(p->name) == len && strncmp(p->name, name, len) == 0)
                o = p;
            else if (p->type == OPT_BOOL && len == strlen(p->name) + 3 &&
                     strncmp(name, "no-", 3) == 0 && strncmp(p->name, name + 3, len - 3) == 0) {
                o = p;
                negated = 1;
            }
        }
        if (!o)
            bad(prog, "unknown option '%s'", arg);
        if (o->type == OPT_BOOL) {
            if (eq)
                bad(prog, "option '%s' takes no value", arg);
            *o->ival = !negated;
            continue;
        }
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!val)
            bad(prog, "option '%s' needs a value", arg);
        if (o->type == OPT_STR) {
            *o->sval = val;
            continue;
        }
        char *end;
        errno = 0;
        long v = strtol(val, &end, 0);
        if (errno || *val == '\0' || *end != '\0')
            bad(prog, "'%s' is not an integer", val);
        if (v < o->min || v > o->max) {
            fprintf(stderr, "%s: --%s %ld is out of range %ld..%ld (try --help)\n", prog,
                    o->name, v, o->min, o->max);
            exit(2);
        }
        *o->ival = v;
    }
    /* The clock is checked now, not at the first timed sample: a guest without
     * gem5 gets one clear line instead of samples of 0 ns. */
    if (opt_m5_clock && !m5_clock_works()) {
        fprintf(stderr, "%s: --m5-clock: gem5's m5 op region is not reachable; run inside "
                "gem5 or drop --m5-clock\n", prog);
        exit(2);
    }
}

void die(const char *fmt, ...)
{
    va_list ap;
    int err = errno;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, ": %s\n", strerror(err));
    exit(1);
}

void warnx_once(int *flag, const char *fmt, ...)
{
    if (flag && *flag)
        return;
    if (flag)
        *flag = 1;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

long online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}

int pin_self(long cpu)
{
    cpu_set_t set;
    if (cpu < 0 || cpu >= CPU_SETSIZE) {
        errno = EINVAL;
        return -1;
    }
    CPU_ZERO(&set);
    CPU_SET((int)cpu, &set);
    return sched_setaffinity(0, sizeof(set), &set);
}

uint64_t now_ns(void)
{
    if (opt_m5_clock)
        return m5op_rpns();
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline uint64_t cycles_now(void)
{
#if defined(__x86_64__) || defined(__i386__)
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
#else
    return now_ns() * 2; /* about 2 GHz */
#endif
}

void spin_cycles(long cycles)
{
    if (cycles <= 0)
        return;
    uint64_t end = cycles_now() + (uint64_t)cycles;
    while (cycles_now() < end)
        __asm__ volatile("pause" ::: "memory");
}

char *alloc_pages(long pages)
{
    size_t len = (size_t)(pages > 0 ? pages : 1) * 4096;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        die("mmap %zu bytes", len);
    touch_write(p, pages, 1);
    return p;
}

uint64_t touch_read(const char *buf, long pages)
{
    uint64_t sum = 0;
    for (long i = 0; i < pages; i++)
        sum += ((const volatile char *)buf)[i * 4096];
    return sum;
}

void touch_write(char *buf, long pages, int value)
{
    for (long i = 0; i < pages; i++)
        ((volatile char *)buf)[i * 4096] = (char)value;
}

void *alloc_shared(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        die("mmap shared %zu bytes", bytes);
    return p;
}

void xpipe(int fds[2])
{
    if (pipe(fds) < 0)
        die("pipe");
}

void write_full(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("write");
        p += n;
        len -= (size_t)n;
    }
}

int read_full(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("read");
        if (n == 0)
            return 0;
        p += n;
        len -= (size_t)n;
    }
    return 1;
}

static int start_fds[2] = {-1, -1};

void start_barrier_init(void)
{
    xpipe(start_fds);
}

void start_wait(void)
{
    char c;
    close(start_fds[1]);
    /* EOF once the parent closes its write end: everyone starts together. */
    if (read(start_fds[0], &c, 1) < 0 && errno != EINTR)
        die("start barrier");
    close(start_fds[0]);
}

void start_release(void)
{
    close(start_fds[0]);
    close(start_fds[1]);
}

int wait_children(void)
{
    int bad = 0, status;
    for (;;) {
        pid_t pid = wait(&status);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            bad++;
    }
    return bad;
}

/*
 * The percpu kernel's counters over the region of interest (docs/kernel.md): the
 * "name value" lines of /proc/percpu_roots ($PERCPU_ROOTS_PROC in tests) read just
 * before the ROI starts and just after it ends, outside what gem5 measures, and
 * printed by finish() as "percpu-roots: <name> <value>": counters as the ROI's
 * difference, the peaks and bounds as read at the end. Nothing on other kernels.
 */
#define ROOTS_MAX 48 /* /proc/percpu_roots prints 33 lines */
struct roots_snapshot {
    int n;
    char name[ROOTS_MAX][48];
    unsigned long long value[ROOTS_MAX];
};
static struct roots_snapshot roots_before, roots_after;

static void roots_read(struct roots_snapshot *s)
{
    const char *path = getenv("PERCPU_ROOTS_PROC");
    FILE *f = fopen(path ? path : "/proc/percpu_roots", "r");
    s->n = 0;
    if (!f)
        return;
    while (s->n < ROOTS_MAX &&
           fscanf(f, "%47s %llu", s->name[s->n], &s->value[s->n]) == 2)
        s->n++;
    fclose(f);
}

/* Read as it is at the end, not as a difference: peaks, bounds, the switches
 * (enabled, timing: percpu_roots=time, kmap.private: percpu_roots=nokmap). */
static int roots_absolute(const char *name)
{
    return !strcmp(name, "enabled") || !strcmp(name, "timing") ||
           !strcmp(name, "kmap.private") || strstr(name, "Peak") || strstr(name, "Bound") ||
           !strncmp(name, "max", 3);
}

static void roots_print(void)
{
    for (int i = 0; i < roots_after.n; i++) {
        unsigned long long v = roots_after.value[i];
        if (!roots_absolute(roots_after.name[i]))
            for (int j = 0; j < roots_before.n; j++)
                if (!strcmp(roots_before.name[j], roots_after.name[i]))
                    v -= roots_before.value[j];
        printf("percpu-roots: %s %llu\n", roots_after.name[i], v);
    }
}

void roi_begin(void)
{
    roots_read(&roots_before);
    fflush(stdout);
    if (opt_roi && m5op_init(1))
        m5op_reset_stats();
}

void roi_end(void)
{
    if (opt_roi)
        m5op_dump_stats();
    roots_read(&roots_after);
}

void finish(const char *fmt, ...)
{
    va_list ap;
    roots_print();
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    fflush(stderr);
    if (opt_roi && opt_exit)
        m5op_exit();
}
