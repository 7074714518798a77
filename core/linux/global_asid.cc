// Follows arch/x86/mm/tlb.c of Linux 6.15, Rik van Riel's "AMD broadcast TLB
// invalidation" series (tip x86/mm, March 2025; docs/linux-2025.md cites each
// patch): consider_global_asid, mm_active_cpus_exceeds, use_global_asid,
// mm_free_global_asid, broadcast_tlb_flush and finish_asid_transition. And
// what the proposal's roots need there: a broadcast flush runs no handler on
// any CPU, so root.broadcast_fix says how roots learn of freed tables.
#include <algorithm>

#include "engine/engine_state.h"

namespace percpu {

// "Check every once in a while": (current->pid & 0x1f) == (jiffies & 0x1f), then
// more than 3 CPUs running the mm, not lazily (4 or more at once).
void Engine::consider_global_asid(Cpu& self, Mm& mm) {
  uint64_t pid = self.current ? static_cast<uint64_t>(self.current->id) : 0;
  uint64_t jiffies = self.clock / m_cycles_per_jiffy;
  if ((pid & 0x1f) != (jiffies & 0x1f)) return;
  if (mm_active_cpus_exceeds(mm, 3)) use_global_asid(self, mm);
  if (m_record_asid_events) {
    AsidEvent ev{AsidEvent::ConsiderGlobalAsid, self.id, mm.ctx_id, jiffies, pid};
    ev.asid = mm.global_asid;
    m_asid_events.push_back(ev);
  }
}

bool Engine::mm_active_cpus_exceeds(const Mm& mm, int threshold) const {
  if (static_cast<int>(mm.cpumask.count()) <= threshold) return false;
  int count = 0;
  for (const auto& cp : m_cpus) {
    const Cpu& c = *cp;
    if (!mm.cpumask.test(c.id) || c.loaded_mm != &mm || c.tlbstate.is_lazy()) continue;
    if (++count > threshold) return true;
  }
  return false;
}

void Engine::use_global_asid(Cpu& self, Mm& mm) {
  if (mm.global_asid || m_global_asids.available() == 0) return;
  uint64_t resets = m_global_asids.resets();
  Asid asid = m_global_asids.allocate();
  if (m_global_asids.resets() != resets) {
    // reset_global_asid_space: invlpgb_flush_all_nonglobals, then TLBSYNC.
    m_global_asid_resets++;
    for (auto& cp : m_cpus)
      if (cp->online) flush_all_nonglobal(*cp);
    self.n.invlpgbs++;
    self.n.tlbsyncs++;
    charge(self, Cat::Flush, m_cost.invlpgb + m_cost.tlbsync);
  }
  if (!asid) return;
  mm.global_asid = asid;
  mm.asid_transition = true;
  m_global_asids_assigned++;
  m_global_asids_peak = std::max(m_global_asids_peak, m_global_asids.in_use());
}

// At the mm's end; the ASID is reusable after the next reset's flush.
void Engine::mm_free_global_asid(Mm& mm) {
  if (!mm.global_asid) return;
  log_asid(AsidEvent::GlobalAsidFree, -1, mm.ctx_id, static_cast<uint64_t>(mm.global_asid));
  m_global_asids.free(mm.global_asid);
  mm.global_asid = 0;
}

// INVLPGB of the range (one per page; one per PCID for a full flush; the user PCID
// too under PTI) on every CPU, no IPI and no flush_tlb_func anywhere; then the IPIs
// of an unfinished transition; then TLBSYNC.
void Engine::broadcast_tlb_flush(Cpu& self, Mm& mm, uint64_t new_gen, VirtAddr start,
                                 VirtAddr end, bool full, bool freed_tables,
                                 const std::vector<int>& cleared_slots) {
  self.n.broadcast_flushes++;
  const Pcid kpcid = kern_pcid(mm.global_asid), upcid = user_pcid(mm.global_asid);
  const uint64_t pages = (end - start) >> kPageShift;
  for (auto& cp : m_cpus) {
    Cpu& c = *cp;
    if (!c.online) continue;
    if (full) {
      flush_pcid(c, kpcid);
      if (m_pti) flush_pcid(c, upcid);
      continue;
    }
    for (uint64_t i = 0; i < pages; ++i) {
      VirtAddr va = start + (i << kPageShift);
      flush_page(c, va, kpcid);
      if (m_pti) flush_page(c, va, upcid);
    }
  }
  uint64_t invlpgbs = (full ? 1 : std::max<uint64_t>(pages, 1)) * (m_pti ? 2 : 1);
  self.n.invlpgbs += invlpgbs;
  Cycles cost = invlpgbs * m_cost.invlpgb;
  if (!cleared_slots.empty()) cost += fix_roots_after_broadcast(self, mm, cleared_slots);
  charge(self, Cat::Flush, cost);
  finish_asid_transition(self, mm, new_gen, start, end, full, freed_tables, cleared_slots);
  self.n.tlbsyncs++;
  charge(self, Cat::Flush, m_cost.tlbsync);
}

// While a CPU still runs the mm under its dynamic ASID, the whole cpumask gets the
// ordinary flush IPIs; their handler moves it to the global ASID.
void Engine::finish_asid_transition(Cpu& self, Mm& mm, uint64_t new_gen, VirtAddr start,
                                    VirtAddr end, bool full, bool freed_tables,
                                    const std::vector<int>& cleared_slots) {
  if (!mm.asid_transition) return;
  for (auto& cp : m_cpus) {
    Cpu& c = *cp;
    if (!mm.cpumask.test(c.id) || c.loaded_mm != &mm) continue;
    if (c.tlbstate.loaded_asid() != mm.global_asid) {
      flush_tlb_multi(self, mm, new_gen, start, end, full, freed_tables, cleared_slots, false);
      return;
    }
  }
  mm.asid_transition = false;
}

// The proposal's roots after a broadcast that freed page tables (cleared_slots):
// every CPU's root of (cpu, global asid) may hold the entry, active or not, and a
// global ASID never needs a flush, so no later switch discards the root either.
//  0: nothing (the proposal as written: its drop lives in the flush handler);
//  1: the flushing CPU drops its own and IPIs every other CPU holding a root of the
//     mm, whose handler drops them (an offline CPU's root is cleared directly);
//  2: the flushing CPU clears the entries in every root of the mm itself, through its
//     own caches, before the INVLPGB: no IPI.
// Returns the flushing CPU's cycles; the checker then compares every root of the mm.
Cycles Engine::fix_roots_after_broadcast(Cpu& self, Mm& mm, const std::vector<int>& cleared_slots) {
  const Asid asid = mm.global_asid;
  Cycles spent = 0;
  int targets = 0;
  for (auto& cp : m_cpus) {
    Cpu& c = *cp;
    Frame root = m_scheme->inspector().root_table(c.id, asid);
    if (root == kNoFrame || m_broadcast_fix == 0) continue;
    if (m_broadcast_fix == 1 && &c != &self && c.online) {
      targets++;
      c.n.ipis_received++;
      if (c.current == nullptr) idle_until(c, self.clock);
      int dropped = m_scheme->on_flush(c.id, asid, mm.view(), cleared_slots);
      c.n.root_entries_dropped += dropped;
      charge(c, Cat::Ipi, m_cost.ipi_receive + dropped * m_cost.pte_write);
      continue;
    }
    // Cleared here: the local root, an offline CPU's, or every root under variant 2.
    for (int slot : cleared_slots) spent += self.path.access((root << kPageShift) + slot * 8);
    int dropped = m_scheme->on_flush(c.id, asid, mm.view(), cleared_slots);
    c.n.root_entries_dropped += dropped;
    if (&c != &self) self.n.root_fix_remote_drops += dropped;
    spent += dropped * m_cost.pte_write;
  }
  if (targets > 0) {
    self.n.ipis_sent += targets;
    self.n.root_fix_ipis += targets;
    spent += m_cost.flush_ipi_send + targets * m_cost.flush_ipi_send_per_cpu;
  }
  if (m_check)
    for (auto& cp : m_cpus)
      check_root_matches_pgd(*cp, asid, mm,
                             "the root keeps a top-level entry its mm freed, after the flush");
  return spent;
}

}  // namespace percpu
