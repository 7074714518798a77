// The engine's side of the root seam: ITableMemory over PhysMem. A scheme's
// tables come from PhysMem's scheme zone, so every other frame number (and
// cache set) stays the same whichever scheme runs.
#pragma once
#include <algorithm>

#include "mem/phys_mem.h"
#include "root/i_table_memory.h"

namespace percpu {

class PhysTableMemory final : public ITableMemory {
 public:
  explicit PhysTableMemory(PhysMem& mem) : m_mem(mem) {}

  uint64_t read_entry(Frame table, int index) const override { return m_mem.read(table, index); }
  void write_entry(Frame table, int index, uint64_t value) override {
    m_mem.write(table, index, value);
  }
  Frame alloc_table(TableKind kind) override {
    return m_mem.alloc(kind == TableKind::Root ? FrameUse::Root : FrameUse::PageTable,
                       Zone::Scheme);
  }
  void free_table(Frame table) override { m_mem.free(table); }
  void copy_entries(Frame src, Frame dst, int first, int count) override {
    const auto& from = m_mem.table(src);
    std::copy(from.begin() + first, from.begin() + first + count, m_mem.table(dst).begin() + first);
  }
  void zero_table(Frame table) override { m_mem.table(table).fill(0); }

 private:
  PhysMem& m_mem;
};

}  // namespace percpu
