// Follows arch/x86/mm/tlb.c, the flush half: flush_tlb_mm_range (the sender:
// a new tlb_gen, IPIs to the CPUs in mm_cpumask that need them),
// flush_tlb_func (what each CPU does, the sender locally and every IPI
// receiver remotely) and flush_tlb_kernel_range (the pkmap pool's flush).
#include <algorithm>

#include "engine/engine_state.h"

namespace percpu {

void Engine::flush_tlb_func(Cpu& c, Mm& mm, uint64_t new_gen, VirtAddr start, VirtAddr end,
                            bool full, const std::vector<int>& cleared_slots, bool local) {
  Cat cat = local ? Cat::Flush : Cat::Ipi;
  if (!local) {
    c.n.ipis_received++;
    charge(c, Cat::Ipi, m_cost.ipi_receive);
    if (c.loaded_mm != &mm) {
      // Not using the mm any more: clear its cpumask bit (Linux does it lazily, here).
      mm.cpumask.reset(c.id);
      return;
    }
    if (c.tlbstate.is_lazy()) {
      // A lazy CPU must stop walking freed tables: it switches to init_mm.
      c.n.lazy_switch_to_init++;
      switch_to_init_mm(c);
      return;
    }
  }
  // Linux 6.15: reload the ASID if the mm is transitioning to its global one.
  if (mm_needs_global_asid(mm, c.tlbstate.loaded_asid())) switch_mm_irqs_off(c, &mm);
  Asid asid = c.tlbstate.loaded_asid();
  if (!cleared_slots.empty()) {
    // The root must not keep a freed table past this flush, whatever the generations say.
    // A real implementation learns the slots from the flush request: one read each.
    int dropped = m_scheme->on_flush(c.id, asid, mm.view(), cleared_slots);
    c.n.root_entries_dropped += dropped;
    Cycles spent = dropped * m_cost.pte_write;
    if (m_scheme->has_private_slots())
      for (int slot : cleared_slots)
        spent += c.path.access((c.kernel_cr3.root << kPageShift) + slot * 8);
    charge(c, cat, spent);
    check_root_matches_pgd(c, asid, mm,
                           "the root keeps a top-level entry its mm freed, after the flush");
  }
  if (is_global_asid(asid)) return;  // broadcast ASIDs are always kept up to date
  TlbContext& ctx = c.tlbstate.ctx(asid);
  uint64_t local_gen = ctx.tlb_gen;
  if (new_gen <= local_gen) return;
  uint64_t pages = (end - start) >> kPageShift;
  if (!full && new_gen == local_gen + 1 && mm.tlb_gen == new_gen) {
    c.n.flushes_partial++;
    for (uint64_t i = 0; i < pages; ++i) {
      VirtAddr va = start + (i << kPageShift);
      flush_page(c, va, c.kernel_cr3.pcid);
      if (m_pti && m_pcid) flush_page(c, va, c.user_cr3.pcid);
      c.n.invlpgs++;
    }
    charge(c, cat, pages * m_cost.invlpg);
  } else {
    c.n.flushes_full++;
    flush_current_asid(c);
    charge(c, cat, m_cost.cr3_flush);
  }
  if (!mutated(Mutation::NoLocalGen)) ctx.tlb_gen = mm.tlb_gen;
}

void Engine::flush_tlb_mm_range(Cpu& self, Mm& mm, VirtAddr start, VirtAddr end,
                                bool freed_tables, const std::vector<int>& cleared_slots) {
  self.n.flush_requests++;
  uint64_t new_gen = ++mm.tlb_gen;
  uint64_t pages = (end - start) >> kPageShift;
  bool full = pages > static_cast<uint64_t>(kTlbSingleFlushCeiling);
  if (mm.global_asid) {  // only ever set under Linux 6.15's rules
    if (m_record_asid_events)
      m_asid_events.push_back({AsidEvent::Flush, self.id, mm.ctx_id, new_gen, pages, freed_tables,
                               false});
    broadcast_tlb_flush(self, mm, new_gen, start, end, full, freed_tables, cleared_slots);
    return;
  }
  bool trim = self.clock >= mm.next_cpumask_trim;
  if (m_record_asid_events) {
    AsidEvent ev{AsidEvent::Flush, self.id, mm.ctx_id, new_gen, pages, freed_tables, trim};
    m_asid_events.push_back(ev);
  }
  // should_trim_cpumask: about once a second per mm, CPUs that left the mm get the
  // IPI anyway so that they clear their bit in mm_cpumask.
  if (trim) mm.next_cpumask_trim = self.clock + m_cycles_per_second;
  // Linux 6.15: a flush that goes to other CPUs (cpumask_any_but) may earn the mm a
  // global ASID, considered after the IPIs.
  std::bitset<kMaxCpus> others = mm.cpumask;
  others.reset(self.id);
  flush_tlb_multi(self, mm, new_gen, start, end, full, freed_tables, cleared_slots, trim);
  if (m_global_asids_on && others.any()) consider_global_asid(self, mm);
}

void Engine::flush_tlb_multi(Cpu& self, Mm& mm, uint64_t new_gen, VirtAddr start, VirtAddr end,
                             bool full, bool freed_tables, const std::vector<int>& cleared_slots,
                             bool trim) {
  if (self.loaded_mm == &mm && !self.tlbstate.is_lazy())
    flush_tlb_func(self, mm, new_gen, start, end, full, cleared_slots, true);
  int targets = 0;
  for (auto& cp : m_cpus) {
    Cpu& c = *cp;
    if (&c == &self || !mm.cpumask.test(c.id) || !c.online) continue;
    // native_flush_tlb_multi: freed tables go to every CPU in the mask; otherwise
    // should_flush_tlb skips lazy CPUs and those running another mm (unless trimming).
    if ((!freed_tables || mutated(Mutation::SkipLazyFreed)) && c.tlbstate.is_lazy()) {
      self.n.ipis_skipped_lazy++;
      continue;
    }
    if (!freed_tables && c.loaded_mm != &mm && !trim) {
      self.n.ipis_skipped_other++;
      continue;
    }
    targets++;
    if (c.current == nullptr) idle_until(c, self.clock);  // an idle CPU takes it when sent
    flush_tlb_func(c, mm, new_gen, start, end, full, cleared_slots, false);
  }
  if (targets > 0) {
    self.n.ipis_sent += targets;
    Cycles cost = m_cost.flush_ipi_send + targets * m_cost.flush_ipi_send_per_cpu;
    if (full) cost += m_cost.flush_full_extra;
    charge(self, Cat::Ipi, cost);
  }
}

// flush_tlb_kernel_range over the pkmap pool: more than 33 pages, so every
// online CPU flushes everything, global entries included.
void Engine::flush_tlb_kernel_range(Cpu& self) {
  int targets = 0;
  for (auto& cp : m_cpus) {
    Cpu& c = *cp;
    if (!c.online) continue;
    flush_everything(c);
    Cat cat = &c == &self ? Cat::Kmap : Cat::Ipi;
    if (&c != &self) {
      targets++;
      c.n.ipis_received++;
      if (c.current == nullptr) idle_until(c, self.clock);
      charge(c, Cat::Ipi, m_cost.ipi_receive);
    }
    charge(c, cat, m_cost.cr3_flush);
  }
  self.n.ipis_sent += targets;
  if (targets > 0)
    charge(self, Cat::Kmap,
           m_cost.flush_ipi_send + targets * m_cost.flush_ipi_send_per_cpu +
               m_cost.flush_full_extra);
}

}  // namespace percpu
