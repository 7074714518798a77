// What every host of per-(cpu, asid) roots says the same way: the stats'
// names, the allocation causes, the CR3 bits and the bounds. The engine
// (engine/stats.cc) and the gem5 plugin (src_patches/percpu_gem5/) include this
// header; the percpu kernel's /proc/percpu_roots (src_patches/linux-6.1/0007)
// prints the same names, one "name value" line each; Python reads them from the
// binding (percpu._core.ROOT_STAT_NAMES). docs/names.md lists them.
//
// Each fact is written once, here or in the header this one includes:
//   - the causes (rootAllocs::<cause>) and kern_pcid: linux/asid.h;
//   - the bounds (rootPoolBoundBytes, lazyFaultBound): root/bounds.h;
//   - TLB_NR_DYN_ASIDS and the PTI user PCID bit: common/types.h;
//   - the CR3 bits a write carries and the stat names: below.
#pragma once
#include <cstdint>

#include "common/types.h"
#include "linux/asid.h"
#include "root/bounds.h"

namespace percpu {

// CR3 as Linux writes it (Intel SDM vol. 3A 4.10.4.1; docs/names.md).
constexpr uint64_t kCr3NoFlushBit = 1ull << 63;  // with CR4.PCIDE: keep the PCID's entries
constexpr uint64_t kPtiUserPgdBit = 1ull << 12;  // PTI's user pgd = kernel pgd + 4 KiB

// The group the root stats live in: <cpu>.percpu.<name> per CPU (the engine's
// system.cpuN.percpu.*, gem5's cpu.percpu monitor) and <system>.percpu.<name>
// system-wide (the engine's system.percpu.*, gem5's board.percpu root model).
#define PERCPU_ROOT_STAT_GROUP "percpu"

// Each root stat's name, once, as a string macro, so that the engine's counter
// tables can paste the group in front: PERCPU_ROOT_STAT_GROUP "." PERCPU_STAT_...
#define PERCPU_STAT_RootAllocs "rootAllocs"  // a vector: ::<cause> (NewAsidCause but none), ::total
#define PERCPU_STAT_LazyFaults "lazyFaults"
#define PERCPU_STAT_RootCopyBytes "rootCopyBytes"
#define PERCPU_STAT_RootCopyCycles "rootCopyCycles"
#define PERCPU_STAT_RootEntriesDropped "rootEntriesDropped"
#define PERCPU_STAT_KernelSyncs "kernelSyncs"
#define PERCPU_STAT_RootPoolPeakBytes "rootPoolPeakBytes"
#define PERCPU_STAT_RootPoolBoundBytes "rootPoolBoundBytes"
#define PERCPU_STAT_MaxLazyFaultsPerRoot "maxLazyFaultsPerRoot"
#define PERCPU_STAT_LazyFaultBound "lazyFaultBound"
#define PERCPU_STAT_CheckerViolations "checkerViolations"

// A root stat's name in its group: "percpu.lazyFaults".
#define PERCPU_ROOT_STAT(id) PERCPU_ROOT_STAT_GROUP "." PERCPU_STAT_##id

// The list of them. Per CPU in both hosts: rootAllocs, lazyFaults, rootCopyBytes,
// rootCopyCycles, rootEntriesDropped; system-wide: the pool, the bounds and what
// the checker found; kernelSyncs is per CPU in gem5 (the walk that found the
// entry) and system-wide in the engine (sync_global_pgds), as in the kernel.
#define PERCPU_ROOT_STATS(X)                                                                    \
  X(RootAllocs) X(LazyFaults) X(RootCopyBytes) X(RootCopyCycles) X(RootEntriesDropped)          \
      X(KernelSyncs) X(RootPoolPeakBytes) X(RootPoolBoundBytes) X(MaxLazyFaultsPerRoot)          \
          X(LazyFaultBound) X(CheckerViolations)

namespace stat {
// percpu::stat::kLazyFaults ... for code that wants a const char*.
#define PERCPU_STAT_CONSTANT(id) constexpr const char k##id[] = PERCPU_STAT_##id;
PERCPU_ROOT_STATS(PERCPU_STAT_CONSTANT)
#undef PERCPU_STAT_CONSTANT
constexpr const char kGroup[] = PERCPU_ROOT_STAT_GROUP;
}  // namespace stat

}  // namespace percpu
