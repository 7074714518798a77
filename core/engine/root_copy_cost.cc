// What a root allocation costs (docs/references.md, "The model"): a fixed allocation
// cost plus the copy the scheme reports (its kernel half, and under
// percpu-eager the user entries), read from the source and written into the
// root through this CPU's caches, its line misses overlapped as the L1D's MSHRs allow
// (cache/overlap.h); and the root pool against its bound. Only the engine charges the
// copy so: the gem5 plugin sends the same lines (for_each_copy_line) through gem5's
// caches as walker traffic and charges what that took.
#include <algorithm>

#include "engine/engine_state.h"
#include "root/bounds.h"

namespace percpu {

void Engine::charge_root_copy(Cpu& c, const RootSelection& sel, NewAsidCause cause) {
  if (!sel.allocated) return;
  c.n.root_allocs[static_cast<int>(cause)]++;
  Cycles spent = m_cost.root_alloc;
  for (const auto& copy : sel.copies) c.n.root_copy_bytes += static_cast<uint64_t>(copy.count) * 8;
  // Each line read then written, through this CPU's caches; the accesses do not wait
  // for one another, so their misses overlap up to the L1D's MSHRs (cache/overlap.h).
  m_copy_burst.reset();
  for_each_copy_line(sel.copies, [&](PhysAddr src, PhysAddr dst) {
    m_copy_burst.add(c.path.access(src));
    m_copy_burst.add(c.path.access(dst));
  });
  spent += m_copy_burst.cycles();
  c.n.root_copy_cycles += spent;
  charge(c, Cat::RootCopy, spent);
  uint64_t live = m_scheme->inspector().root_pages_live();
  m_root_pool_peak_pages = std::max(m_root_pool_peak_pages, live);
  // Linux 6.15: roots of global ASIDs come on top of the proposal's 6 per CPU, at most
  // one per (cpu, global asid in use) (docs/linux-2025.md, "The pool bound").
  uint64_t global = m_scheme->inspector().global_root_pages_live();
  m_global_root_pages_peak = std::max(m_global_root_pages_peak, global);
  check_bound(c, live - global <= root_pool_bound_pages(m_ncpus, m_pti),
              "root pool exceeds ncpus x 6 pages (x2 with PTI)", 0);
  check_bound(c, global <= m_global_asids.in_use() * m_ncpus * (m_pti ? 2 : 1),
              "roots of global ASIDs exceed ncpus x global ASIDs in use (x2 with PTI)", 0);
}

}  // namespace percpu
