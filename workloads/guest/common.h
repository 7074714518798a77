/*
 * common.h: what the percpu guest microbenchmarks share: long-option parsing
 * that mirrors workload.toml (ints with min/max, bools as --x / --no-x),
 * pinning, busy work, page touching, pipes, the region of interest and the
 * one-line summary.
 */
#ifndef PERCPU_GUEST_COMMON_H
#define PERCPU_GUEST_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum opt_type { OPT_INT, OPT_BOOL, OPT_STR };

struct opt {
    const char *name; /* long option without "--", words joined by '-' */
    enum opt_type type;
    long *ival;        /* OPT_INT, OPT_BOOL */
    const char **sval; /* OPT_STR */
    long min, max;     /* OPT_INT */
    const char *help;
};

/* Options every program takes; append COMMON_OPTS to a program's table. */
extern long opt_cpus;  /* CPUs the workload spreads over (default: online CPUs) */
extern long opt_roi;   /* bracket the region of interest with m5 ops */
extern long opt_exit;  /* with --roi: end the simulation after the summary */
extern long opt_m5_clock; /* now_ns reads gem5's simulated clock (m5 rpns) */
#define COMMON_OPTS                                                                     \
    {"m5-clock", OPT_BOOL, &opt_m5_clock, NULL, 0, 1,                                    \
     "time with gem5's simulated clock, not CLOCK_MONOTONIC"},                           \
    {"cpus", OPT_INT, &opt_cpus, NULL, 1, 4096, "CPUs to spread over (default: online)"}, \
    {"roi", OPT_BOOL, &opt_roi, NULL, 0, 1, "m5 resetstats/dumpstats around the ROI"},    \
    {"exit", OPT_BOOL, &opt_exit, NULL, 0, 1, "with --roi, m5 exit after the summary"},    \
    {NULL, OPT_INT, NULL, NULL, 0, 0, NULL}

/* Parse argv against opts (NULL-terminated); bad input: message, exit 2. */
void parse_opts(const char *prog, const char *what, struct opt *opts, int argc, char **argv);

void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void warnx_once(int *flag, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

long online_cpus(void);
/* Pin the calling thread to cpu; 0 on success, -1 (errno set) when refused. */
int pin_self(long cpu);

/* CLOCK_MONOTONIC in ns, or with --m5-clock gem5's simulated ns: a gem5 guest's
 * kernel marks its TSCs unsynchronised and falls back to jiffies, too coarse for
 * a microbenchmark, while gem5's own clock is exact. */
uint64_t now_ns(void);
void spin_cycles(long cycles);

/* Private anonymous memory, every page written once (populated). */
char *alloc_pages(long pages);
/* Read / write one byte in each of the first pages pages. */
uint64_t touch_read(const char *buf, long pages);
void touch_write(char *buf, long pages, int value);
/* Zero-filled memory shared with forked children (counters). */
void *alloc_shared(size_t bytes);

void xpipe(int fds[2]);
void write_full(int fd, const void *buf, size_t len);
/* Reads exactly len bytes; returns 0 on EOF before that, 1 when complete. */
int read_full(int fd, void *buf, size_t len);
/* Children block in start_wait until the parent calls start_release. */
void start_barrier_init(void);
void start_wait(void);     /* in a child, after fork */
void start_release(void);  /* in the parent, after every fork */
/* Wait for every child; returns how many did not exit with status 0. */
int wait_children(void);

/* Region of interest: m5 resetstats at begin, dumpstats at end (with --roi). */
void roi_begin(void);
void roi_end(void);
/* Print the summary line (flushed) and, with --roi --exit, end the simulation. */
void finish(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
