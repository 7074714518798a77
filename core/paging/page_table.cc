#include "paging/page_table.h"

#include <algorithm>

namespace percpu {

uint64_t PageTable::lookup(Frame root, VirtAddr va) const {
  Frame table = root;
  for (int level = m_levels; level >= 1; --level) {
    if (!m_mem.holds_table(table)) return 0;
    uint64_t e = m_mem.read(table, pte::index(va, level));
    if (!pte::present(e)) return 0;
    if (level == 1) return e;
    table = pte::frame(e);
  }
  return 0;
}

bool PageTable::map(Frame root, VirtAddr va, Frame frame, uint64_t flags,
                    uint64_t* tables_allocated) {
  bool top_filled = false;
  Frame table = leaf_table(root, va, tables_allocated, &top_filled);
  m_mem.write(table, pte::index(va, 1), pte::make(frame, flags));
  return top_filled;
}

Frame PageTable::leaf_table(Frame root, VirtAddr va, uint64_t* tables_allocated,
                            bool* top_filled) {
  Frame table = root;
  for (int level = m_levels; level > 1; --level) {
    int idx = pte::index(va, level);
    uint64_t e = m_mem.read(table, idx);
    if (!pte::present(e)) {
      Frame child = m_mem.alloc(FrameUse::PageTable);
      if (tables_allocated) ++*tables_allocated;
      e = pte::make_table(child);
      m_mem.write(table, idx, e);
      if (level == m_levels && top_filled) *top_filled = true;
    }
    table = pte::frame(e);
  }
  return table;
}

static bool table_empty(const PhysMem& mem, Frame t) {
  const auto& tab = mem.table(t);
  return std::none_of(tab.begin(), tab.end(), [](uint64_t e) { return pte::present(e); });
}

// The entries of a table at `level` covering base.. that overlap [start, end).
static bool entries_in_range(int level, VirtAddr base, VirtAddr start, VirtAddr end, int* first,
                             int* last) {
  uint64_t span = pte::level_span(level);
  VirtAddr lo = std::max(start, base);
  VirtAddr hi = std::min(end, base + span * kEntriesPerTable);
  if (lo >= hi) return false;
  *first = static_cast<int>((lo - base) / span);
  *last = static_cast<int>((hi - 1 - base) / span);
  return true;
}

bool PageTable::unmap_level(Frame table, int level, VirtAddr base, VirtAddr start, VirtAddr end,
                            bool free_frames, UnmapResult& out) {
  uint64_t span = pte::level_span(level);
  int first, last;
  if (!entries_in_range(level, base, start, end, &first, &last)) return false;
  for (int idx = first; idx <= last; ++idx) {
    uint64_t e = m_mem.read(table, idx);
    if (!pte::present(e)) continue;
    if (level == 1) {
      if (free_frames) m_mem.free(pte::frame(e));
      m_mem.write(table, idx, 0);
      out.pages++;
      continue;
    }
    Frame child = pte::frame(e);
    VirtAddr child_base = base + span * static_cast<uint64_t>(idx);
    unmap_level(child, level - 1, child_base, start, end, free_frames, out);
    if (table_empty(m_mem, child)) {
      m_mem.write(table, idx, 0);
      m_mem.free(child);
      out.tables_freed++;
      if (level == m_levels) out.top_slots_cleared.push_back(idx);
    }
  }
  return true;
}

UnmapResult PageTable::unmap(Frame root, VirtAddr start, VirtAddr end, bool free_frames) {
  UnmapResult out;
  unmap_level(root, m_levels, 0, start, end, free_frames, out);
  return out;
}

uint64_t PageTable::protect_level(Frame table, int level, VirtAddr base, VirtAddr start,
                                  VirtAddr end, uint64_t flags) {
  uint64_t span = pte::level_span(level);
  int first, last;
  if (!entries_in_range(level, base, start, end, &first, &last)) return 0;
  uint64_t changed = 0;
  for (int idx = first; idx <= last; ++idx) {
    uint64_t e = m_mem.read(table, idx);
    if (!pte::present(e)) continue;
    if (level == 1) {
      m_mem.write(table, idx, pte::make(pte::frame(e), flags));
      changed++;
    } else {
      changed += protect_level(pte::frame(e), level - 1, base + span * static_cast<uint64_t>(idx),
                               start, end, flags);
    }
  }
  return changed;
}

uint64_t PageTable::protect(Frame root, VirtAddr start, VirtAddr end, uint64_t flags) {
  return protect_level(root, m_levels, 0, start, end, flags);
}

UnmapResult PageTable::destroy_user_half(Frame root) {
  UnmapResult out;
  VirtAddr user_end = pte::level_span(m_levels) * pte::kUserSlots;
  unmap_level(root, m_levels, 0, 0, user_end, true, out);
  return out;
}

}  // namespace percpu
