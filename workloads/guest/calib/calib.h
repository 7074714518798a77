/*
 * calib.h: what the calibration microbenchmarks share (percpu calibrate).
 *
 * Each program times one operation ITERS times per sample and prints one line
 * per sample, "calib NAME VALUE UNIT" (VALUE in ns per iteration unless UNIT
 * says otherwise), which percpu/calibrate/measure.py reads; it repeats runs
 * until the median is stable. The programs build static (the gem5 guest runs
 * them from /sbin) and take the guest programs' options (common.h).
 */
#ifndef PERCPU_CALIB_H
#define PERCPU_CALIB_H

#include "../common.h"

/* Options every calibration program takes; put them before COMMON_OPTS. */
extern long calib_iters;   /* operations per sample */
extern long calib_samples; /* samples per run */
#define CALIB_OPTS                                                                   \
    {"iters", OPT_INT, &calib_iters, NULL, 1, 1000000000, "operations per sample"}, \
    {"samples", OPT_INT, &calib_samples, NULL, 1, 1000, "samples per run"}

/* One sample line: "calib NAME VALUE UNIT", flushed. */
void calib_report(const char *name, double value, const char *unit);
/* Pin or die: a calibration figure taken on the wrong CPU is wrong. Also asks
 * for nice -20 (granted to root), so that other load preempts fewer samples. */
void calib_pin(long cpu);
/* Private anonymous memory in 4 KiB pages (no THP: the engine models 4 KiB
 * pages), not yet touched. */
char *calib_map(size_t bytes);

#endif
