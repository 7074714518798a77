// The hardware side of translation (TLBs, paging-structure caches, the walk
// through the cache hierarchy) and the Linux side that manages it
// (switch_mm, flush_tlb_mm_range, page faults), around the root scheme.
#include <algorithm>
#include <sstream>

#include "engine/engine_state.h"
#include "paging/pte.h"

namespace percpu {

namespace {
constexpr int kMaxViolationText = 200;
}

void Engine::charge(Cpu& c, Cat cat, Cycles cycles) {
  c.clock += cycles;
  c.cycles[static_cast<int>(cat)] += cycles;
}

void Engine::violation(Cpu& c, const std::string& what, VirtAddr va) {
  m_violation_count++;
  if (m_violations.size() >= static_cast<size_t>(m_params.get_int("check.max_reports"))) return;
  Violation v;
  v.what = what.substr(0, kMaxViolationText);
  v.cpu = c.id;
  v.task = task_label(c.current);
  v.op_index = m_current_op;
  v.va = va;
  m_violations.push_back(v);
}

// ---------------------------------------------------------------- TLB flushes

// Every PCID's non-global entries (a CR3 write without PCID; INVPCID type 3).
void Engine::flush_all_nonglobal(Cpu& c) {
  c.l1d.flush_nonglobal();
  c.l1i.flush_nonglobal();
  c.stlb.flush_nonglobal();
  c.psc_top.flush_all();
  c.psc_upper.flush_all();
  c.psc_pde.flush_all();
}

void Engine::flush_pcid(Cpu& c, Pcid pcid) {
  if (!m_pcid) {
    flush_all_nonglobal(c);
    return;
  }
  c.l1d.flush_pcid(pcid);
  c.l1i.flush_pcid(pcid);
  c.stlb.flush_pcid(pcid);
  c.psc_top.flush_pcid(pcid);
  c.psc_upper.flush_pcid(pcid);
  c.psc_pde.flush_pcid(pcid);
}

// INVLPG: the page's entries for pcid and its global entries, plus every
// paging-structure-cache entry of pcid (Intel SDM 4.10.4.1).
void Engine::flush_page(Cpu& c, VirtAddr va, Pcid pcid) {
  uint64_t vpn = va >> kPageShift;
  c.l1d.flush_page(vpn, pcid);
  c.l1i.flush_page(vpn, pcid);
  c.stlb.flush_page(vpn, pcid);
  c.psc_top.flush_pcid(pcid);
  c.psc_upper.flush_pcid(pcid);
  c.psc_pde.flush_pcid(pcid);
}

// Every entry of every PCID, global ones too (CR4.PGE toggle, or a CPU going down).
void Engine::flush_everything(Cpu& c) {
  c.l1d.flush_everything();
  c.l1i.flush_everything();
  c.stlb.flush_everything();
  c.psc_top.flush_all();
  c.psc_upper.flush_all();
  c.psc_pde.flush_all();
}

void Engine::flush_current_asid(Cpu& c) {
  flush_pcid(c, c.kpcid);
  if (m_pti && m_pcid) flush_pcid(c, c.upcid);
}

// ---------------------------------------------------------------- switch_mm

// The PCIDs of an ASID slot: none without PCID; kernel and user ones with PTI.
void Engine::set_pcids(Cpu& c, Asid asid) {
  c.kpcid = m_pcid ? kern_pcid(asid) : 0;
  c.upcid = m_pcid ? (m_pti ? user_pcid(asid) : kern_pcid(asid)) : 0;
}

void Engine::load_cr3(Cpu& c, const RootSelection& sel, Asid asid, bool flush) {
  c.kroot = sel.kernel_root;
  c.uroot = sel.user_root;
  set_pcids(c, asid);
  c.cr3_writes++;
  if (flush) {
    c.cr3_flushes++;
    flush_current_asid(c);
    charge(c, Cat::CtxSwitch, m_cost.cr3_flush);
  } else {
    charge(c, Cat::CtxSwitch, m_cost.cr3_noflush);
  }
}

void Engine::charge_root_selection(Cpu& c, const RootSelection& sel, NewAsidCause cause) {
  if (!sel.allocated) return;
  c.root_allocs[static_cast<int>(cause)]++;
  Cycles spent = m_cost.root_alloc;
  // The copy runs through the caches: read the source lines, write the root's.
  for (const auto& copy : sel.copies) {
    uint64_t first_byte = static_cast<uint64_t>(copy.first) * 8;
    uint64_t bytes = static_cast<uint64_t>(copy.count) * 8;
    c.root_copy_bytes += bytes;
    for (uint64_t off = first_byte & ~(kLineSize - 1); off < first_byte + bytes; off += kLineSize) {
      spent += c.path.access((copy.src << kPageShift) + off);
      spent += c.path.access((copy.dst << kPageShift) + off);
    }
  }
  c.root_copy_cycles += spent;
  charge(c, Cat::RootCopy, spent);
  uint64_t live = m_scheme->root_pages_live();
  m_root_pool_peak_pages = std::max(m_root_pool_peak_pages, live);
  uint64_t bound = static_cast<uint64_t>(m_ncpus) * kTlbNrDynAsids * (m_pti ? 2 : 1);
  if (live > bound) {
    m_bound_violations++;
    if (m_check) violation(c, "root pool exceeds ncpus x 6 pages (x2 with PTI)", 0);
  }
}

void Engine::enter_lazy(Cpu& c) { c.tlbstate.set_lazy(true); }

// Kernel entry and exit (syscall, page fault, lazy fault). With PTI each switches
// CR3 between the user and kernel tables: two CR3 writes, with the no-flush bit when
// there is PCID, and flushing every non-global entry when there is not.
void Engine::kernel_entry_exit(Cpu& c, Cat cat) {
  if (!m_pti) return;
  charge(c, cat, 2 * (m_pcid ? m_cost.cr3_noflush : m_cost.cr3_flush));
  if (!m_pcid) flush_current_asid(c);
}

// A lazy CPU leaves an mm whose tables are going away: it switches to init_mm and
// stays lazy. A kernel thread running there keeps its kmap_local mappings; with
// root-private kmaps they live in the old root and must follow it to the new one.
void Engine::switch_to_init_mm(Cpu& c) {
  switch_mm(c, m_init_mm);
  enter_lazy(c);
  if (m_private_kmaps && c.current && !c.current->kmap_local.empty())
    kmap_sched_in(c, c.current);
}

void Engine::switch_mm(Cpu& c, Mm* next) {
  Mm* prev = c.loaded_mm;
  if (prev == next) {
    if (!c.tlbstate.is_lazy()) return;
    c.tlbstate.set_lazy(false);
    // Same mm after lazy mode: flush if it changed meanwhile (same ASID, same root).
    Asid asid = c.tlbstate.loaded_asid();
    TlbContext& ctx = c.tlbstate.ctx(asid);
    if (ctx.ctx_id == next->ctx_id && ctx.tlb_gen < next->tlb_gen) {
      ctx.tlb_gen = next->tlb_gen;
      RootSelection same;
      same.kernel_root = c.kroot;
      same.user_root = c.uroot;
      load_cr3(c, same, asid, true);
    }
    return;
  }
  c.tlbstate.set_lazy(false);
  next->cpumask.set(c.id);
  AsidChoice choice = c.tlbstate.choose_new_asid(next->ctx_id, next->tlb_gen, m_pcid,
                                                 next->ever_on_cpu.test(c.id));
  next->ever_on_cpu.set(c.id);
  RootSelection sel = m_scheme->select_root(c.id, choice.asid, next->view(), choice.need_flush);
  charge_root_selection(c, sel, choice.cause);
  if (choice.need_flush) {
    c.tlbstate.ctx(choice.asid) = {next->ctx_id, next->tlb_gen};
  }
  c.tlbstate.set_loaded_asid(choice.asid);
  c.loaded_mm = next;
  c.mm_switches++;
  if (m_check && !sel.allocated && m_scheme->stale_user_slots(c.id, choice.asid, next->view()) > 0)
    violation(c, "a reused root differs from its mm's top-level table", 0);
  load_cr3(c, sel, choice.asid, choice.need_flush);
}

// ---------------------------------------------------------------- flushes

void Engine::flush_on_cpu(Cpu& c, Mm& mm, uint64_t new_gen, VirtAddr start, VirtAddr end,
                          bool full, const std::vector<int>& cleared_slots, bool local) {
  Cat cat = local ? Cat::Flush : Cat::Ipi;
  if (!local) {
    c.ipis_received++;
    charge(c, Cat::Ipi, m_cost.ipi_receive);
    if (c.loaded_mm != &mm) {
      // Not using the mm any more: clear its cpumask bit (Linux does it lazily, here).
      mm.cpumask.reset(c.id);
      return;
    }
    if (c.tlbstate.is_lazy()) {
      // A lazy CPU must stop walking freed tables: it switches to init_mm.
      c.lazy_switch_to_init++;
      switch_to_init_mm(c);
      return;
    }
  }
  Asid asid = c.tlbstate.loaded_asid();
  if (!cleared_slots.empty()) {
    // The root must not keep a freed table past this flush, whatever the generations say.
    // A real implementation learns the slots from the flush request: one read each.
    int dropped = m_scheme->on_flush(c.id, asid, mm.view(), cleared_slots);
    c.stale_root_drops += dropped;
    Cycles spent = dropped * m_cost.pte_write;
    if (m_scheme->has_private_slots())
      for (int slot : cleared_slots) spent += c.path.access((c.kroot << kPageShift) + slot * 8);
    charge(c, cat, spent);
    if (m_check && m_scheme->stale_user_slots(c.id, asid, mm.view()) > 0)
      violation(c, "the root keeps a top-level entry its mm freed, after the flush", 0);
  }
  TlbContext& ctx = c.tlbstate.ctx(asid);
  uint64_t local_gen = ctx.tlb_gen;
  if (new_gen <= local_gen) return;
  uint64_t pages = (end - start) >> kPageShift;
  if (!full && new_gen == local_gen + 1 && mm.tlb_gen == new_gen) {
    c.flushes_partial++;
    for (uint64_t i = 0; i < pages; ++i) {
      VirtAddr va = start + (i << kPageShift);
      flush_page(c, va, c.kpcid);
      if (m_pti && m_pcid) flush_page(c, va, c.upcid);
      c.invlpgs++;
    }
    charge(c, cat, pages * m_cost.invlpg);
  } else {
    c.flushes_full++;
    flush_current_asid(c);
    charge(c, cat, m_cost.cr3_flush);
  }
  ctx.tlb_gen = mm.tlb_gen;
}

void Engine::flush_tlb_mm_range(Cpu& self, Mm& mm, VirtAddr start, VirtAddr end,
                                bool freed_tables, const std::vector<int>& cleared_slots) {
  self.flush_requests++;
  uint64_t new_gen = ++mm.tlb_gen;
  uint64_t pages = (end - start) >> kPageShift;
  bool full = pages > static_cast<uint64_t>(kTlbSingleFlushCeiling);
  if (self.loaded_mm == &mm && !self.tlbstate.is_lazy())
    flush_on_cpu(self, mm, new_gen, start, end, full, cleared_slots, true);
  // should_trim_cpumask: about once a second per mm, CPUs that left the mm get the
  // IPI anyway so that they clear their bit in mm_cpumask.
  bool trim = self.clock >= mm.next_cpumask_trim;
  if (trim) mm.next_cpumask_trim = self.clock + m_cycles_per_second;
  int targets = 0;
  for (auto& cp : m_cpus) {
    Cpu& c = *cp;
    if (&c == &self || !mm.cpumask.test(c.id) || !c.online) continue;
    // native_flush_tlb_multi: freed tables go to every CPU in the mask; otherwise
    // should_flush_tlb skips lazy CPUs and those running another mm (unless trimming).
    if (!freed_tables && c.tlbstate.is_lazy()) {
      self.ipis_skipped_lazy++;
      continue;
    }
    if (!freed_tables && c.loaded_mm != &mm && !trim) {
      self.ipis_skipped_other++;
      continue;
    }
    targets++;
    if (c.current == nullptr) {
      // An idle CPU takes the IPI when it is sent.
      c.cycles[static_cast<int>(Cat::Idle)] += self.clock > c.clock ? self.clock - c.clock : 0;
      c.clock = std::max(c.clock, self.clock);
    }
    flush_on_cpu(c, mm, new_gen, start, end, full, cleared_slots, false);
  }
  if (targets > 0) {
    self.ipis_sent += targets;
    Cycles cost = m_cost.flush_ipi_send + targets * m_cost.flush_ipi_send_per_cpu;
    if (full) cost += m_cost.flush_full_extra;
    charge(self, Cat::Ipi, cost);
  }
}

// flush_tlb_kernel_range over the pkmap pool: more than 33 pages, so every
// online CPU flushes everything, global entries included.
void Engine::flush_kernel_range_all(Cpu& self) {
  int targets = 0;
  for (auto& cp : m_cpus) {
    Cpu& c = *cp;
    if (!c.online) continue;
    flush_everything(c);
    Cat cat = &c == &self ? Cat::Kmap : Cat::Ipi;
    if (&c != &self) {
      targets++;
      c.ipis_received++;
      if (c.current == nullptr) {
        c.cycles[static_cast<int>(Cat::Idle)] += self.clock > c.clock ? self.clock - c.clock : 0;
        c.clock = std::max(c.clock, self.clock);
      }
      charge(c, Cat::Ipi, m_cost.ipi_receive);
    }
    charge(c, cat, m_cost.cr3_flush);
  }
  self.ipis_sent += targets;
  if (targets > 0)
    charge(self, Cat::Kmap,
           m_cost.flush_ipi_send +
               targets * m_cost.flush_ipi_send_per_cpu +
               m_cost.flush_full_extra);
}

// ---------------------------------------------------------------- page faults

bool Engine::handle_page_fault(Cpu& c, Mm& mm, VirtAddr va, Access kind) {
  c.page_faults++;
  charge(c, Cat::PageFault, m_cost.page_fault);
  kernel_entry_exit(c, Cat::PageFault);
  const Vma* vma = mm.find_vma(va);
  bool allowed = vma != nullptr;
  if (allowed && kind == Access::Store) allowed = vma->prot & kProtWrite;
  if (allowed && kind == Access::Fetch) allowed = vma->prot & kProtExec;
  if (!allowed) {
    c.segfaults++;
    return false;
  }
  uint64_t leaf = m_pt.lookup(mm.pgd, va);
  if (pte::present(leaf)) {
    bool pte_permits = !(kind == Access::Store && !(leaf & pte::kWritable)) &&
                       !(kind == Access::Fetch && (leaf & pte::kNoExec));
    // The canonical table permits the access but the hardware walk did not see
    // it: a stale root, TLB or PSC entry, a bug in the scheme.
    if (pte_permits) violation(c, "the walk missed a mapping the canonical table has", va);
    c.segfaults++;
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
    int slot = pte::index(va, m_levels);
    mm.top_slots_populated++;
    if (m_pti) m_mem.write(mm.user_pgd, slot, m_mem.read(mm.pgd, slot));
    int writes = m_scheme->on_pgd_populated(c.id, c.tlbstate.loaded_asid(), mm.view(), slot);
    charge(c, Cat::PageFault, writes * pte_write);
  }
  return true;
}

// ---------------------------------------------------------------- translation

bool Engine::walk(Cpu& c, VirtAddr va, Pcid pcid, Frame root, Mode mode, Translation& out) {
  c.walks++;
  Cycles spent = m_cost.walk_base;
  Frame table = root;
  int level = m_levels;
  // Paging-structure caches, deepest first.
  if (Frame t = c.psc_pde.lookup(pte::prefix(va, 2), pcid)) {
    table = t;
    level = 1;
  } else if ((t = c.psc_upper.lookup(pte::prefix(va, 3) | (3ull << 42), pcid))) {
    table = t;
    level = 2;
  } else if (m_levels == 5 && (t = c.psc_upper.lookup(pte::prefix(va, 4) | (4ull << 42), pcid))) {
    table = t;  // PML4E cached under 5-level: continue at the PDPT
    level = 3;
  } else if ((t = c.psc_top.lookup(pte::prefix(va, m_levels), pcid))) {
    table = t;
    level = m_levels - 1;
  }
  if (level != m_levels) c.psc_hits++;
  bool ok = true;
  for (; level >= 1; --level) {
    if (!m_mem.holds_table(table)) {
      violation(c, "walk read a freed page-table frame (use after free)", va);
      ok = false;
      break;
    }
    int idx = pte::index(va, level);
    PhysAddr addr = (table << kPageShift) + static_cast<uint64_t>(idx) * 8;
    Cycles lat = c.path.access(addr);
    spent += lat;
    c.walk_reads++;
    if (lat > m_cost.l1_latency) c.walk_l1_misses++;
    uint64_t e = m_mem.read(table, idx);
    if (!pte::present(e) && level == m_levels && idx < pte::kFirstKernelSlot && mode == Mode::User &&
        c.loaded_mm && m_scheme->lazy_fill(c.id, c.tlbstate.loaded_asid(), c.loaded_mm->view(), idx)) {
      // The proposal's lazy top-level fault: fault entry/exit plus one entry copy.
      c.lazy_faults++;
      c.loaded_mm->lazy_faults++;
      m_max_mm_lazy_faults = std::max(m_max_mm_lazy_faults, c.loaded_mm->lazy_faults);
      charge(c, Cat::LazyFault, m_cost.lazy_fault + m_cost.pte_write + c.path.access(addr));
      kernel_entry_exit(c, Cat::LazyFault);
      if (m_scheme->max_lazy_faults_per_generation() > static_cast<uint64_t>(pte::kUserSlots)) {
        m_bound_violations++;
        if (m_check) violation(c, "more lazy faults in one root generation than 256 user slots", va);
      }
      e = m_mem.read(table, idx);
    }
    if (!pte::present(e)) {
      ok = false;
      break;
    }
    if (level == 1) {
      out.frame = pte::frame(e);
      out.writable = e & pte::kWritable;
      out.user = e & pte::kUser;
      out.global = e & pte::kGlobal;
      out.executable = !(e & pte::kNoExec);
      break;
    }
    Frame next = pte::frame(e);
    if (level == m_levels) c.psc_top.insert(pte::prefix(va, level), pcid, next);
    else if (level == 2) c.psc_pde.insert(pte::prefix(va, 2), pcid, next);
    else c.psc_upper.insert(pte::prefix(va, level) | (static_cast<uint64_t>(level) << 42), pcid, next);
    table = next;
  }
  c.walk_cycles += spent;
  charge(c, Cat::Walk, spent);
  return ok;
}

void Engine::check_translation(Cpu& c, VirtAddr va, const Translation& got) {
  // The authority for the address: the mm's canonical table for user
  // addresses, the root itself for its private kernel slots, init_mm else.
  int slot = pte::index(va, m_levels);
  Frame authority;
  if (slot < pte::kFirstKernelSlot) authority = c.loaded_mm ? c.loaded_mm->pgd : kNoFrame;
  else if (m_scheme->has_private_slots() && (slot == kPercpuDataSlot || slot == kPrivateKmapSlot))
    authority = c.kroot;
  else authority = m_init_mm->pgd;
  uint64_t want = authority ? m_pt.lookup(authority, va) : 0;
  bool want_writable = want & pte::kWritable;
  bool want_exec = !(want & pte::kNoExec);
  bool want_user = want & pte::kUser;
  if (!pte::present(want) || pte::frame(want) != got.frame || want_writable != got.writable ||
      want_exec != got.executable || want_user != got.user) {
    std::ostringstream msg;
    auto bits = [](bool w, bool x, bool u) {
      return std::string(w ? " rw" : " ro") + (x ? "x" : "") + (u ? " user" : " kernel");
    };
    msg << "stale translation: va 0x" << std::hex << va << " -> frame 0x" << got.frame
        << bits(got.writable, got.executable, got.user) << ", canonical table says ";
    if (pte::present(want))
      msg << "frame 0x" << pte::frame(want) << bits(want_writable, want_exec, want_user);
    else
      msg << "not mapped";
    violation(c, msg.str(), va);
  }
}

namespace {
bool permits(const Translation& t, Access kind, bool user) {
  return !(kind == Access::Store && !t.writable) && !(user && !t.user) &&
         !(kind == Access::Fetch && !t.executable);
}
}  // namespace

// The common case, an L1 TLB hit that permits the access, kept small enough to inline.
inline bool Engine::translate(Cpu& c, VirtAddr va, Access kind, Mode mode, Translation& out) {
  bool user = mode == Mode::User;
  Pcid pcid = user ? c.upcid : c.kpcid;
  Tlb& l1 = kind == Access::Fetch ? c.l1i : c.l1d;
  if (kind == Access::Fetch) c.itb_acc++;
  else if (kind == Access::Load) c.dtb_rd_acc++;
  else c.dtb_wr_acc++;
  const Translation* hit = l1.lookup(va >> kPageShift, pcid);
  if (hit && permits(*hit, kind, user)) {
    out = *hit;
    if (m_check) check_translation(c, va, out);
    return true;
  }
  return translate_slow(c, va, kind, mode, out);
}

// Everything else: STLB, walks, page faults. Repeating the L1 lookup has no side
// effect the fast path did not already have (a miss changes nothing; a hit that did
// not permit the access is flushed below).
bool Engine::translate_slow(Cpu& c, VirtAddr va, Access kind, Mode mode, Translation& out) {
  bool user = mode == Mode::User;
  Pcid pcid = user ? c.upcid : c.kpcid;
  uint64_t vpn = va >> kPageShift;
  Tlb& l1 = kind == Access::Fetch ? c.l1i : c.l1d;
  for (int attempt = 0; attempt < 4; ++attempt) {
    const Translation* hit = l1.lookup(vpn, pcid);
    if (!hit) {
      if (attempt == 0) {
        if (kind == Access::Fetch) c.itb_miss++;
        else if (kind == Access::Load) c.dtb_rd_miss++;
        else c.dtb_wr_miss++;
      }
      hit = c.stlb.lookup(vpn, pcid);
      if (hit) {
        c.stlb_hits++;
        charge(c, Cat::Walk, m_cost.stlb_hit);
        l1.insert(vpn, pcid, *hit);
      }
    }
    if (hit) {
      if (permits(*hit, kind, user)) {
        out = *hit;
        if (m_check) check_translation(c, va, out);
        return true;
      }
      // Permission fault on a cached entry: the hardware re-walks in the fault path.
      flush_page(c, va, pcid);
    } else {
      c.stlb_misses++;
    }
    Translation t;
    Frame root = user ? c.uroot : c.kroot;
    if (walk(c, va, pcid, root, mode, t)) {
      if (permits(t, kind, user)) {
        c.stlb.insert(vpn, pcid, t);
        l1.insert(vpn, pcid, t);
        out = t;
        if (m_check) check_translation(c, va, out);
        return true;
      }
    }
    if (!user || c.loaded_mm == nullptr) {
      violation(c, "kernel address not mapped", va);
      return false;
    }
    if (!handle_page_fault(c, *c.loaded_mm, va, kind)) return false;
  }
  violation(c, "translation did not settle after a page fault", va);
  return false;
}

Cycles Engine::memory_access(Cpu& c, VirtAddr va, Access kind, Mode mode, Cat cat, bool* segv,
                             Translation* used) {
  m_mem_refs++;
  if (mode == Mode::User) c.user_refs++;
  else c.kernel_refs++;
  Translation t;
  bool ok = translate(c, va, kind, mode, t);
  if (segv) *segv = !ok;
  if (m_record_log && mode == Mode::User && c.loaded_mm) {
    LogRecord r{};
    r.kind = LogRecord::Access;
    r.mm = c.loaded_mm->id;
    r.va = va;
    r.access = static_cast<uint8_t>(kind);
    r.frame = ok ? static_cast<int64_t>(t.frame) : -1;
    r.writable = t.writable;
    m_log.push_back(r);
  }
  if (!ok) return 0;
  if (used) *used = t;
  PhysAddr pa = (t.frame << kPageShift) | (va & (kPageSize - 1));
  Cycles lat = c.path.access(pa);
  if (lat > m_cost.l1_latency) c.data_l1_misses++;
  charge(c, cat, lat);
  return lat;
}

// n user references va, va + stride, ... inside one page. After the first, the
// translation is the L1 TLB's most recently used entry and nothing runs in
// between, so the rest are L1 TLB hits with the same result: they are counted
// as such without repeating the lookup (exact, not an approximation). With the
// checker or the log on, every reference takes the full path.
void Engine::memory_access_run(Cpu& c, VirtAddr va, uint64_t stride, uint64_t n, Access kind,
                               Cat cat, bool* segv) {
  Translation t;
  memory_access(c, va, kind, Mode::User, cat, segv, &t);
  if (*segv || n <= 1) return;
  if (m_check || m_record_log) {
    for (uint64_t i = 1; i < n; ++i) memory_access(c, va + i * stride, kind, Mode::User, cat, segv);
    return;
  }
  uint64_t rest = n - 1;
  m_mem_refs += rest;
  c.user_refs += rest;
  if (kind == Access::Fetch) c.itb_acc += rest;
  else if (kind == Access::Load) c.dtb_rd_acc += rest;
  else c.dtb_wr_acc += rest;
  if (!c.path.enabled()) {
    charge(c, cat, rest * m_cost.l1_latency);
    return;
  }
  PhysAddr base = t.frame << kPageShift;
  Cycles total = 0;
  for (uint64_t i = 1; i < n; ++i) {
    Cycles lat = c.path.access(base | ((va + i * stride) & (kPageSize - 1)));
    if (lat > m_cost.l1_latency) c.data_l1_misses++;
    total += lat;
  }
  charge(c, cat, total);
}

}  // namespace percpu
