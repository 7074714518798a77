// Simulated physical memory: frame allocation plus the contents of frames
// that hold page tables (data frames have no contents: only their addresses
// matter to TLBs and caches). Freed frames are recycled, so a stale pointer to
// a freed page table reads whatever the frame holds next, as on real hardware;
// the checker flags every read of a frame that is not a live page table.
//
// Two zones: what every scheme allocates (data, the canonical page tables)
// and what only a root scheme allocates (its roots and private tables), far
// above. Keeping the scheme's frames apart keeps every other frame number,
// and so every cache set, identical across schemes: differences in cache
// misses then come from the scheme's own lines, not from page colouring.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "common/types.h"

namespace percpu {

enum class FrameUse : uint8_t { Free, Data, PageTable, Root };
enum class Zone : uint8_t { Common, Scheme };

class PhysMem {
 public:
  using Table = std::array<uint64_t, kEntriesPerTable>;
  static constexpr Frame kSchemeZoneBase = 1ull << 30;  // 4 TiB up

  Frame alloc(FrameUse use, Zone zone = Zone::Common);
  void free(Frame f);
  FrameUse use_of(Frame f) const {
    const Area& a = area(f);
    uint64_t i = f - a.base;
    return i < a.use.size() ? a.use[i] : FrameUse::Free;
  }
  bool holds_table(Frame f) const {
    FrameUse u = use_of(f);
    return u == FrameUse::PageTable || u == FrameUse::Root;
  }

  // Entry access for page-table frames (tables are zeroed when allocated).
  uint64_t read(Frame f, int index) const { return table(f)[index]; }
  void write(Frame f, int index, uint64_t value) { table(f)[index] = value; }
  Table& table(Frame f) {
    Area& a = area(f);
    return m_tables[a.table_of[f - a.base]];
  }
  const Table& table(Frame f) const {
    const Area& a = area(f);
    return m_tables[a.table_of[f - a.base]];
  }

  uint64_t frames_in_use(FrameUse use) const { return m_count[static_cast<int>(use)]; }
  uint64_t peak_in_use(FrameUse use) const { return m_peak[static_cast<int>(use)]; }

 private:
  struct Area {
    Frame base;
    std::vector<FrameUse> use;
    std::vector<uint32_t> table_of;  // frame - base -> index into m_tables
    std::vector<Frame> free_frames;
  };
  Area& area(Frame f) { return f >= kSchemeZoneBase ? m_scheme : m_common; }
  const Area& area(Frame f) const { return f >= kSchemeZoneBase ? m_scheme : m_common; }

  // Frame 0 is never handed out (it means "no frame").
  Area m_common{0, {FrameUse::Free}, {0}, {}};
  Area m_scheme{kSchemeZoneBase, {}, {}, {}};
  std::vector<Table> m_tables;
  std::vector<uint32_t> m_free_tables;
  uint64_t m_count[4] = {0, 0, 0, 0};
  uint64_t m_peak[4] = {0, 0, 0, 0};
};

}  // namespace percpu
