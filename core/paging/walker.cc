#include "paging/walker.h"

#include "paging/pte.h"

namespace percpu {

bool Walker::walk(VirtAddr va, Pcid pcid, Frame root, bool user, IWalkHooks& hooks,
                  Translation& out, Cycles* spent_out) {
  stats.walks++;
  Cycles spent = m_base;
  Frame table = root;
  int level = m_levels;
  // Paging-structure caches, deepest first.
  if (Frame t = m_psc.pde.lookup(pte::prefix(va, 2), pcid)) {
    table = t;
    level = 1;
  } else if ((t = m_psc.upper.lookup(pte::prefix(va, 3) | (3ull << 42), pcid))) {
    table = t;
    level = 2;
  } else if (m_levels == 5 && (t = m_psc.upper.lookup(pte::prefix(va, 4) | (4ull << 42), pcid))) {
    table = t;  // PML4E cached under 5-level: continue at the PDPT
    level = 3;
  } else if ((t = m_psc.top.lookup(pte::prefix(va, m_levels), pcid))) {
    table = t;
    level = m_levels - 1;
  }
  if (level != m_levels) stats.psc_hits++;
  bool ok = true;
  for (; level >= 1; --level) {
    if (!m_mem.holds_table(table)) {
      hooks.freed_table_read(va);
      ok = false;
      break;
    }
    int idx = pte::index(va, level);
    PhysAddr addr = (table << kPageShift) + static_cast<uint64_t>(idx) * 8;
    Cycles lat = m_path.access(addr);
    spent += lat;
    stats.reads++;
    if (lat > m_l1_latency) stats.l1_misses++;
    uint64_t e = m_mem.read(table, idx);
    if (!pte::present(e) && level == m_levels && idx < pte::kFirstKernelSlot && user &&
        hooks.user_top_level_entry_empty(va, idx, addr))
      e = m_mem.read(table, idx);
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
    if (level == m_levels) m_psc.top.insert(pte::prefix(va, level), pcid, next);
    else if (level == 2) m_psc.pde.insert(pte::prefix(va, 2), pcid, next);
    else m_psc.upper.insert(pte::prefix(va, level) | (static_cast<uint64_t>(level) << 42), pcid, next);
    table = next;
  }
  stats.cycles += spent;
  *spent_out = spent;
  return ok;
}

}  // namespace percpu
