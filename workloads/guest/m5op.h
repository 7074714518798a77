/*
 * m5op.h: gem5 pseudo-ops for the percpu guest microbenchmarks.
 *
 * x86 address-based interface (gem5 util/m5/src/abi/x86/m5op_addr.S): the
 * guest maps physical 0xFFFF0000 (64 KiB) through /dev/mem and reads offset
 * (op << 8) with a 64-bit load; the op's arguments are in rdi, rsi, ...
 * (src/arch/x86/pseudo_inst_abi.hh). A 32-bit access aborts gem5 v24, so
 * every op is one 64-bit read. Op numbers: include/gem5/asm/generic/m5ops.h.
 *
 * Outside gem5 the helper does nothing: without --roi it never opens the
 * device; with --roi but no device (or a mapping that faults) it prints one
 * warning line to stderr and every later op is a no-op. PERCPU_M5OP_DEV
 * overrides the device path (tests point it at files that cannot work).
 */
#ifndef PERCPU_M5OP_H
#define PERCPU_M5OP_H

#include <stdint.h>

#define M5OP_RPNS 0x07
#define M5OP_EXIT 0x21
#define M5OP_RESET_STATS 0x40
#define M5OP_DUMP_STATS 0x41
#define M5OP_CHECKPOINT 0x43
#define M5OP_READ_FILE 0x50

#define M5OP_PHYS_BASE 0xFFFF0000UL
#define M5OP_MAP_SIZE 0x10000UL

/* Map the m5 op region if enabled; returns 1 when ops will reach gem5. */
int m5op_init(int enabled);
/* 1 after a successful m5op_init and while no op has faulted. */
int m5op_active(void);
void m5op_reset_stats(void);
void m5op_dump_stats(void);
void m5op_exit(void);
/* Ask gem5 for a checkpoint now (no delay, no period). */
void m5op_checkpoint(void);
/* Copy up to len bytes of the host's readfile at offset into buf (a guest
 * virtual address, already touched: gem5 translates it with the current page
 * table); returns the bytes copied, 0 at the end or outside gem5. */
uint64_t m5op_read_file(void *buf, uint64_t len, uint64_t offset);
/* gem5's simulated time in ns (curTick / 1 ns), 0 outside gem5. After the first
 * call has proven the mapping it is one load, no signal handlers: it sits inside
 * timed loops (calibration with --m5-clock). */
uint64_t m5op_rpns(void);

#endif
