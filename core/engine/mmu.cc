// The hardware side of translation: L1 TLBs and the STLB, the walk (through
// paging/walker.h, with the kernel's lazy-fault and the checker's hooks), the
// memory access through the caches, and the TLB invalidation instructions
// (CR3 write, INVLPG, INVPCID) the kernel side issues.
#include "engine/engine_state.h"
#include "paging/pte.h"

namespace percpu {

// ---------------------------------------------------------------- invalidation

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

// The loaded ASID's PCIDs: the kernel one, and PTI's user one.
void Engine::flush_current_asid(Cpu& c) {
  flush_pcid(c, c.kernel_cr3.pcid);
  if (m_pti && m_pcid) flush_pcid(c, c.user_cr3.pcid);
}

// ---------------------------------------------------------------- the walk

// The walker's hooks for one walk on one CPU: the kernel's lazy top-level
// fault (linux/fault.cc) and the checker's use-after-free report.
class Engine::LazyFaultHooks final : public IWalkHooks {
 public:
  LazyFaultHooks(Engine& e, Cpu& c) : m_e(e), m_c(c) {}
  bool user_top_level_entry_empty(VirtAddr va, int slot, PhysAddr entry_pa) override {
    return m_e.lazy_top_level_fault(m_c, va, slot, entry_pa);
  }
  void freed_table_read(VirtAddr va) override {
    m_e.violation(m_c, "walk read a freed page-table frame (use after free)", va);
  }

 private:
  Engine& m_e;
  Cpu& m_c;
};

bool Engine::walk(Cpu& c, VirtAddr va, Pcid pcid, Frame root, Mode mode, Translation& out) {
  LazyFaultHooks hooks(*this, c);
  Cycles spent = 0;
  bool ok = c.walker.walk(va, pcid, root, mode == Mode::User, hooks, out, &spent);
  charge(c, Cat::Walk, spent);
  return ok;
}

// ---------------------------------------------------------------- translation

namespace {
bool permits(const Translation& t, Access kind, bool user) {
  return !(kind == Access::Store && !t.writable) && !(user && !t.user) &&
         !(kind == Access::Fetch && !t.executable);
}
}  // namespace

// The common case, an L1 TLB hit that permits the access, kept small enough to inline.
inline bool Engine::translate(Cpu& c, VirtAddr va, Access kind, Mode mode, Translation& out) {
  bool user = mode == Mode::User;
  Pcid pcid = user ? c.user_cr3.pcid : c.kernel_cr3.pcid;
  Tlb& l1 = kind == Access::Fetch ? c.l1i : c.l1d;
  if (kind == Access::Fetch) c.n.itb_acc++;
  else if (kind == Access::Load) c.n.dtb_rd_acc++;
  else c.n.dtb_wr_acc++;
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
  const Cr3& cr3 = user ? c.user_cr3 : c.kernel_cr3;
  Pcid pcid = cr3.pcid;
  uint64_t vpn = va >> kPageShift;
  Tlb& l1 = kind == Access::Fetch ? c.l1i : c.l1d;
  for (int attempt = 0; attempt < 4; ++attempt) {
    const Translation* hit = l1.lookup(vpn, pcid);
    if (!hit) {
      if (attempt == 0) {
        if (kind == Access::Fetch) c.n.itb_miss++;
        else if (kind == Access::Load) c.n.dtb_rd_miss++;
        else c.n.dtb_wr_miss++;
      }
      hit = c.stlb.lookup(vpn, pcid);
      if (hit) {
        c.n.stlb_hits++;
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
      c.n.stlb_misses++;
    }
    Translation t;
    if (walk(c, va, pcid, cr3.root, mode, t)) {
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
    if (!do_user_addr_fault(c, *c.loaded_mm, va, kind)) return false;
  }
  violation(c, "translation did not settle after a page fault", va);
  return false;
}

Cycles Engine::memory_access(Cpu& c, VirtAddr va, Access kind, Mode mode, Cat cat, bool* segv,
                             Translation* used) {
  m_mem_refs++;
  if (mode == Mode::User) c.n.user_refs++;
  else c.n.kernel_refs++;
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
  if (lat > m_cost.l1_latency) c.n.data_l1_misses++;
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
  c.n.user_refs += rest;
  if (kind == Access::Fetch) c.n.itb_acc += rest;
  else if (kind == Access::Load) c.n.dtb_rd_acc += rest;
  else c.n.dtb_wr_acc += rest;
  if (!c.path.enabled()) {
    charge(c, cat, rest * m_cost.l1_latency);
    return;
  }
  PhysAddr base = t.frame << kPageShift;
  Cycles total = 0;
  for (uint64_t i = 1; i < n; ++i) {
    Cycles lat = c.path.access(base | ((va + i * stride) & (kPageSize - 1)));
    if (lat > m_cost.l1_latency) c.n.data_l1_misses++;
    total += lat;
  }
  charge(c, cat, total);
}

}  // namespace percpu
