// Operations on a radix page table held in PhysMem: the software side of
// paging (what the kernel does), not the hardware walk (paging/walker.h).
#pragma once
#include <functional>
#include <vector>

#include "common/types.h"
#include "mem/phys_mem.h"
#include "paging/pte.h"

namespace percpu {

struct UnmapResult {
  uint64_t pages = 0;                // leaf mappings removed
  uint64_t tables_freed = 0;         // page-table pages freed
  std::vector<int> top_slots_cleared;  // top-level entries that were cleared
  bool freed_tables() const { return tables_freed > 0; }
};

class PageTable {
 public:
  PageTable(PhysMem& mem, int levels) : m_mem(mem), m_levels(levels) {}

  int levels() const { return m_levels; }

  // Software walk from root (no caches, no side effects): the leaf entry or 0.
  uint64_t lookup(Frame root, VirtAddr va) const;

  // Maps va -> frame with leaf flags, allocating missing tables.
  // Returns true when a top-level entry of root was filled (a new second-level table).
  bool map(Frame root, VirtAddr va, Frame frame, uint64_t flags, uint64_t* tables_allocated);

  // The leaf (level-1) table covering va, allocating missing tables;
  // *top_filled says whether a top-level entry of root was filled.
  Frame leaf_table(Frame root, VirtAddr va, uint64_t* tables_allocated,
                   bool* top_filled = nullptr);

  // Removes leaves in [start, end) (page aligned), frees the data frames when
  // free_frames, and frees tables left empty (never root itself).
  UnmapResult unmap(Frame root, VirtAddr start, VirtAddr end, bool free_frames);

  // Rewrites leaf flags in [start, end); returns the number of leaves changed.
  uint64_t protect(Frame root, VirtAddr start, VirtAddr end, uint64_t flags);

  // Frees every table below root's user half (exit_mmap), data frames too.
  UnmapResult destroy_user_half(Frame root);

 private:
  bool unmap_level(Frame table, int level, VirtAddr base, VirtAddr start, VirtAddr end,
                   bool free_frames, UnmapResult& out);
  uint64_t protect_level(Frame table, int level, VirtAddr base, VirtAddr start, VirtAddr end,
                         uint64_t flags);
  PhysMem& m_mem;
  int m_levels;
};

}  // namespace percpu
