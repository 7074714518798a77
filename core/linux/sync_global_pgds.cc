// Follows arch/x86/mm/init_64.c (sync_global_pgds) for the kernel_pgd_add op:
// a new kernel top-level entry (vmalloc or percpu growth) is written into
// init_mm and every live mm's pgd and, with per-CPU roots, into every root.
#include "engine/engine_state.h"
#include "linux/kernel_layout.h"
#include "paging/pte.h"

namespace percpu {

void Engine::sync_global_pgds(Cpu& c, Task* t) {
  int slot = -1;
  for (int s = layout::kFirstVmallocSlot; s < layout::kLastVmallocSlot && slot < 0; ++s)
    if (!pte::present(m_mem.read(m_init_mm->pgd, s))) slot = s;
  if (slot < 0) workload_error(t, "no free kernel top-level slot left for kernel_pgd_add");
  uint64_t entry = pte::make_table(m_mem.alloc(FrameUse::PageTable));
  Cycles spent = m_cost.zero_page;
  uint64_t pgds = 0;
  for (auto& m : m_mms) {
    if (!m->alive) continue;
    m_mem.write(m->pgd, slot, entry);
    spent += m_cost.pte_write + c.path.access((m->pgd << kPageShift) + slot * 8);
    pgds++;
  }
  int roots = m_scheme->on_kernel_slot_added(slot, entry);
  spent += roots * m_cost.pte_write;
  m_kernel_slot_adds++;
  m_kernel_slot_pgd_writes += pgds;
  m_kernel_slot_root_writes += static_cast<uint64_t>(roots);
  charge(c, Cat::Kernel, spent);
}

}  // namespace percpu
