// Follows arch/x86/mm/tlb.c, the switch half: switch_mm_irqs_off (with
// choose_new_asid, linux/asid.h), load_new_mm_cr3 and lazy TLB mode
// (enter_lazy_tlb; a lazy CPU leaving a dying mm for init_mm).
#include "engine/engine_state.h"

namespace percpu {

// The PCIDs of an ASID slot: none without PCID; kernel and user ones with PTI.
void Engine::set_pcids(Cpu& c, Asid asid) {
  c.kernel_cr3.pcid = m_pcid ? kern_pcid(asid) : 0;
  c.user_cr3.pcid = m_pcid ? (m_pti ? user_pcid(asid) : kern_pcid(asid)) : 0;
}

// load_new_mm_cr3: CR3 = root | pcid, with the no-flush bit unless flush.
void Engine::load_new_mm_cr3(Cpu& c, const RootSelection& sel, Asid asid, bool flush) {
  c.kernel_cr3.root = sel.kernel_root;
  c.user_cr3.root = sel.user_root;
  set_pcids(c, asid);
  c.n.cr3_writes++;
  if (flush) {
    c.n.cr3_flushes++;
    flush_current_asid(c);
    charge(c, Cat::CtxSwitch, m_cost.cr3_flush);
  } else {
    charge(c, Cat::CtxSwitch, m_cost.cr3_noflush);
  }
}

void Engine::enter_lazy_tlb(Cpu& c) {
  log_asid(AsidEvent::Lazy, c.id, 0);
  c.tlbstate.set_lazy(true);
}

// A lazy CPU leaves an mm whose tables are going away: it switches to init_mm and
// stays lazy. A kernel thread running there keeps its kmap_local mappings; with
// root-private kmaps they live in the old root and must follow it to the new one.
void Engine::switch_to_init_mm(Cpu& c) {
  switch_mm_irqs_off(c, m_init_mm);
  enter_lazy_tlb(c);
  if (m_private_kmaps && c.current && !c.current->kmap_local.empty())
    kmap_local_sched_in(c, c.current);
}

// Linux 6.15's choose_new_asid for an mm with a global ASID: that ASID, no flush
// (broadcast flushes keep its entries current on every CPU). The proposal's root for
// (cpu, global asid) is made at its first use there and kept for the mm's life.
void Engine::load_global_asid(Cpu& c, Mm* next, size_t ev) {
  Asid asid = next->global_asid;
  RootSelection sel = m_scheme->select_root(c.id, asid, next->view(), false);
  charge_root_copy(c, sel, NewAsidCause::FirstUse);
  if (ev) {
    AsidEvent& e = m_asid_events[ev - 1];
    e.asid = asid;
    e.need_flush = false;
    e.cause = static_cast<uint8_t>(NewAsidCause::None);
    e.allocated = sel.allocated;
  }
  c.tlbstate.set_loaded_asid(asid);
  if (!sel.allocated)
    check_root_matches_pgd(c, asid, *next, "a reused root differs from its mm's top-level table");
  load_new_mm_cr3(c, sel, asid, false);
}

void Engine::switch_mm_irqs_off(Cpu& c, Mm* next) {
  Mm* prev = c.loaded_mm;
  log_asid(AsidEvent::Switch, c.id, next->ctx_id, next->tlb_gen);
  size_t ev = m_record_asid_events ? m_asid_events.size() : 0;  // 1 + its index, or 0
  if (prev == next) {
    if (ev) m_asid_events[ev - 1].asid = c.tlbstate.loaded_asid();
    // Linux 6.15: reload if the mm is transitioning to a global ASID; a global ASID
    // is kept up to date by broadcast invalidation all the time.
    if (mm_needs_global_asid(*next, c.tlbstate.loaded_asid())) {
      c.tlbstate.set_lazy(false);
      c.n.asid_transitions++;
      load_global_asid(c, next, ev);
      return;
    }
    if (is_global_asid(c.tlbstate.loaded_asid())) {
      c.tlbstate.set_lazy(false);
      return;
    }
    if (!c.tlbstate.is_lazy()) return;
    c.tlbstate.set_lazy(false);
    // Same mm after lazy mode: flush if it changed meanwhile (same ASID, same root).
    Asid asid = c.tlbstate.loaded_asid();
    TlbContext& ctx = c.tlbstate.ctx(asid);
    if (ctx.ctx_id == next->ctx_id && ctx.tlb_gen < next->tlb_gen) {
      ctx.tlb_gen = next->tlb_gen;
      RootSelection same;
      same.kernel_root = c.kernel_cr3.root;
      same.user_root = c.user_cr3.root;
      load_new_mm_cr3(c, same, asid, true);
      if (ev) m_asid_events[ev - 1].need_flush = true;
    }
    return;
  }
  c.tlbstate.set_lazy(false);
  // The kernel's side of a switch to another mm, whether the CR3 write that ends it
  // flushes or not (the write itself: load_new_mm_cr3).
  charge(c, Cat::CtxSwitch, m_cost.switch_mm);
  if (!mutated(Mutation::NoCpumaskSet)) next->cpumask.set(c.id);
  if (m_global_asids_on && next->global_asid) {
    next->ever_on_cpu.set(c.id);
    c.loaded_mm = next;
    c.n.mm_switches++;
    load_global_asid(c, next, ev);
    return;
  }
  AsidChoice choice = c.tlbstate.choose_new_asid(next->ctx_id, next->tlb_gen, m_pcid,
                                                 next->ever_on_cpu.test(c.id));
  next->ever_on_cpu.set(c.id);
  // The root scheme picks the root for (cpu, asid); a new one costs its copy.
  RootSelection sel = m_scheme->select_root(c.id, choice.asid, next->view(), choice.need_flush);
  charge_root_copy(c, sel, choice.cause);
  if (ev) {
    AsidEvent& e = m_asid_events[ev - 1];
    e.asid = choice.asid;
    e.need_flush = choice.need_flush;
    e.cause = static_cast<uint8_t>(choice.cause);
    e.allocated = sel.allocated;
  }
  if (choice.need_flush) {
    c.tlbstate.ctx(choice.asid) = {next->ctx_id, next->tlb_gen};
  }
  c.tlbstate.set_loaded_asid(choice.asid);
  c.loaded_mm = next;
  c.n.mm_switches++;
  if (!sel.allocated)
    check_root_matches_pgd(c, choice.asid, *next,
                           "a reused root differs from its mm's top-level table");
  load_new_mm_cr3(c, sel, choice.asid, choice.need_flush);
}

}  // namespace percpu
