#include "mem/phys_mem.h"

namespace percpu {

Frame PhysMem::alloc(FrameUse use) {
  Frame f;
  if (!m_free_frames.empty()) {
    f = m_free_frames.back();
    m_free_frames.pop_back();
  } else {
    f = m_use.size();
    m_use.push_back(FrameUse::Free);
    m_table_of.push_back(0);
  }
  m_use[f] = use;
  m_count[static_cast<int>(use)]++;
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
    m_table_of[f] = t;
  }
  return f;
}

void PhysMem::free(Frame f) {
  FrameUse use = m_use[f];
  if (use == FrameUse::Free) return;
  m_count[static_cast<int>(use)]--;
  // A freed table keeps its contents until the frame is reused (a stale
  // walker reading it sees old entries, which is what the checker must catch).
  if (use == FrameUse::PageTable || use == FrameUse::Root) m_free_tables.push_back(m_table_of[f]);
  m_use[f] = FrameUse::Free;
  m_free_frames.push_back(f);
}

}  // namespace percpu
