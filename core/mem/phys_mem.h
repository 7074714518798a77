// Simulated physical memory: frame allocation plus the contents of frames
// that hold page tables (data frames have no contents: only their addresses
// matter to TLBs and caches). Freed frames are recycled, so a stale pointer to
// a freed page table reads whatever the frame holds next, as on real hardware;
// the checker flags every read of a frame that is not a live page table.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "common/types.h"

namespace percpu {

enum class FrameUse : uint8_t { Free, Data, PageTable, Root };

class PhysMem {
 public:
  using Table = std::array<uint64_t, kEntriesPerTable>;

  Frame alloc(FrameUse use);
  void free(Frame f);
  FrameUse use_of(Frame f) const { return f < m_use.size() ? m_use[f] : FrameUse::Free; }
  bool holds_table(Frame f) const {
    FrameUse u = use_of(f);
    return u == FrameUse::PageTable || u == FrameUse::Root;
  }

  // Entry access for page-table frames (tables are zeroed when allocated).
  uint64_t read(Frame f, int index) const { return m_tables[m_table_of[f]][index]; }
  void write(Frame f, int index, uint64_t value) { m_tables[m_table_of[f]][index] = value; }
  Table& table(Frame f) { return m_tables[m_table_of[f]]; }
  const Table& table(Frame f) const { return m_tables[m_table_of[f]]; }

  uint64_t frames_in_use(FrameUse use) const { return m_count[static_cast<int>(use)]; }
  uint64_t frames_ever() const { return m_use.size(); }

 private:
  std::vector<FrameUse> m_use{FrameUse::Free};  // frame 0 is never handed out
  std::vector<uint32_t> m_table_of{0};          // frame -> index into m_tables
  std::vector<Frame> m_free_frames;
  std::vector<Table> m_tables;
  std::vector<uint32_t> m_free_tables;
  uint64_t m_count[4] = {0, 0, 0, 0};
};

}  // namespace percpu
