// The hardware page walker: from the root CR3 points at down to the leaf,
// skipping upper levels through the paging-structure caches (deepest first,
// Intel SDM 4.10.3), every entry read going through the cache hierarchy the
// data accesses use. What the walker cannot decide alone goes to its hooks:
// the root scheme's lazy top-level fault and the checker's use-after-free.
#pragma once
#include <cstdint>

#include "cache/cache.h"
#include "common/types.h"
#include "mem/phys_mem.h"
#include "psc/psc.h"
#include "tlb/tlb.h"

namespace percpu {

// Called during a walk, at the point named.
class IWalkHooks {
 public:
  virtual ~IWalkHooks() = default;
  // A user-mode walk found the root's user top-level entry `slot` empty.
  // Return true when it was filled meanwhile (the proposal's lazy top-level
  // fault): the walker reads the entry again. entry_pa: the entry's address.
  virtual bool user_top_level_entry_empty(VirtAddr va, int slot, PhysAddr entry_pa) = 0;
  // The next table to read is no live page table (a use after free); the walk fails.
  virtual void freed_table_read(VirtAddr va) = 0;
};

// system.cpuN.mmu.walker.<name>
#define PERCPU_WALKER_STATS(X)                                                 \
  X(walks, "walks", "page walks", "Count")                                     \
  X(cycles, "walkCycles", "cycles spent walking", "Cycle")                     \
  X(reads, "memReads", "page-table entries read by walks", "Count")            \
  X(l1_misses, "l1dMisses", "walk reads that missed the L1D", "Count")         \
  X(psc_hits, "pscHits", "walks that skipped levels via the PSCs", "Count")

struct WalkerStats {
#define PERCPU_DECLARE_WALKER_STAT(field, name, desc, unit) uint64_t field = 0;
  PERCPU_WALKER_STATS(PERCPU_DECLARE_WALKER_STAT)
#undef PERCPU_DECLARE_WALKER_STAT
};

class Walker {
 public:
  struct Caches {
    PagingStructureCache& top;    // PML4E (PML5E under 5-level)
    PagingStructureCache& upper;  // PDPTE, and PML4E under 5-level
    PagingStructureCache& pde;
  };
  Walker(const PhysMem& mem, int levels, Caches psc, CachePath& path, Cycles base_cycles,
         Cycles l1_latency)
      : m_mem(mem), m_levels(levels), m_psc(psc), m_path(path), m_base(base_cycles),
        m_l1_latency(l1_latency) {}

  // Walks va for pcid from root. Returns true with `out` filled at a present
  // leaf; *spent gets the walk's cycles (its reads' latencies plus the base).
  bool walk(VirtAddr va, Pcid pcid, Frame root, bool user, IWalkHooks& hooks, Translation& out,
            Cycles* spent);

  WalkerStats stats;

 private:
  const PhysMem& m_mem;
  int m_levels;
  Caches m_psc;
  CachePath& m_path;
  Cycles m_base;
  Cycles m_l1_latency;
};

}  // namespace percpu
