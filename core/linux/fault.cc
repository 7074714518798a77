// Follows arch/x86/mm/fault.c (do_user_addr_fault, access_error) and
// mm/memory.c (handle_mm_fault: a demand fault maps a fresh zeroed page,
// allocating page tables on the way), plus the proposal's lazy top-level
// fault: a walk from a per-(cpu, asid) root found a user top-level entry
// empty that the mm's pgd has; the kernel copies that one entry.
#include <algorithm>

#include "engine/engine_state.h"
#include "paging/pte.h"
#include "root/bounds.h"

namespace percpu {

bool Engine::do_user_addr_fault(Cpu& c, Mm& mm, VirtAddr va, Access kind) {
  c.n.page_faults++;
  charge(c, Cat::PageFault, kernel_cost(c.current, m_cost.page_fault));
  kernel_entry_exit(c, Cat::PageFault);
  const Vma* vma = mm.find_vma(va);
  bool allowed = vma != nullptr;
  if (allowed && kind == Access::Store) allowed = vma->prot & kProtWrite;
  if (allowed && kind == Access::Fetch) allowed = vma->prot & kProtExec;
  if (!allowed) {
    c.n.segfaults++;
    return false;
  }
  uint64_t leaf = m_pt.lookup(mm.pgd, va);
  if (pte::present(leaf)) {
    bool pte_permits = !(kind == Access::Store && !(leaf & pte::kWritable)) &&
                       !(kind == Access::Fetch && (leaf & pte::kNoExec));
    // The canonical table permits the access but the hardware walk did not see
    // it: a stale root, TLB or PSC entry, a bug in the scheme.
    if (pte_permits) violation(c, "the walk missed a mapping the canonical table has", va);
    c.n.segfaults++;
    return false;
  }
  uint64_t flags = pte::kUser;
  if (vma->prot & kProtWrite) flags |= pte::kWritable;
  if (!(vma->prot & kProtExec)) flags |= pte::kNoExec;
  Frame frame = m_mem.alloc(FrameUse::Data);
  uint64_t tables = 0;
  bool top_filled = m_pt.map(mm.pgd, va & ~(kPageSize - 1), frame, flags, &tables);
  Cycles zero = m_cost.zero_page;
  Cycles pte_write = m_cost.pte_write;
  charge(c, Cat::PageFault, zero * (1 + tables) + pte_write * (1 + tables));
  if (top_filled) {
    // A new user top-level entry: PTI's user pgd and the root scheme learn it.
    int slot = pte::index(va, m_levels);
    mm.top_slots_populated++;
    if (m_pti) m_mem.write(mm.user_pgd, slot, m_mem.read(mm.pgd, slot));
    int writes = m_scheme->on_pgd_populated(c.id, c.tlbstate.loaded_asid(), mm.view(), slot);
    charge(c, Cat::PageFault, writes * pte_write);
  }
  return true;
}

// The walker's hook (paging/walker.h): true when the scheme filled the slot.
// Costs a fault entry and exit plus one entry copy (read through the caches).
bool Engine::lazy_top_level_fault(Cpu& c, VirtAddr va, int slot, PhysAddr entry_pa) {
  if (!c.loaded_mm) return false;
  Mm& mm = *c.loaded_mm;
  if (!m_scheme->lazy_fill(c.id, c.tlbstate.loaded_asid(), mm.view(), slot)) return false;
  c.n.lazy_faults++;
  mm.lazy_faults++;
  m_max_mm_lazy_faults = std::max(m_max_mm_lazy_faults, mm.lazy_faults);
  charge(c, Cat::LazyFault, m_cost.lazy_fault + m_cost.pte_write + c.path.access(entry_pa));
  kernel_entry_exit(c, Cat::LazyFault);
  check_bound(c, m_scheme->inspector().max_lazy_faults_per_generation() <= kLazyFaultBound,
              "more lazy faults in one root generation than 256 user slots", va);
  return true;
}

}  // namespace percpu
