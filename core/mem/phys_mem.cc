#include "mem/phys_mem.h"

namespace percpu {

Frame PhysMem::alloc(FrameUse use, Zone zone) {
  Area& a = zone == Zone::Scheme ? m_scheme : m_common;
  Frame f;
  if (!a.free_frames.empty()) {
    f = a.free_frames.back();
    a.free_frames.pop_back();
  } else {
    f = a.base + a.use.size();
    a.use.push_back(FrameUse::Free);
    a.table_of.push_back(0);
  }
  uint64_t i = f - a.base;
  a.use[i] = use;
  if (++m_count[static_cast<int>(use)] > m_peak[static_cast<int>(use)])
    m_peak[static_cast<int>(use)] = m_count[static_cast<int>(use)];
  if (use == FrameUse::PageTable || use == FrameUse::Root) {
    uint32_t t;
    if (!m_free_tables.empty()) {
      t = m_free_tables.back();
      m_free_tables.pop_back();
    } else {
      t = static_cast<uint32_t>(m_tables.size());
      m_tables.emplace_back();
    }
    m_tables[t].fill(0);
    a.table_of[i] = t;
  }
  return f;
}

void PhysMem::free(Frame f) {
  Area& a = area(f);
  uint64_t i = f - a.base;
  FrameUse use = a.use[i];
  if (use == FrameUse::Free) return;
  m_count[static_cast<int>(use)]--;
  // A freed table keeps its contents until the storage is reused (a stale
  // walker reading it sees old entries, which is what the checker must catch).
  if (use == FrameUse::PageTable || use == FrameUse::Root) m_free_tables.push_back(a.table_of[i]);
  a.use[i] = FrameUse::Free;
  a.free_frames.push_back(f);
}

}  // namespace percpu
