// Paging-structure caches: small fully-associative caches of non-leaf
// entries (Intel SDM 4.10.3), tagged by PCID. Each caches, for a prefix of the
// virtual address, the frame of the next-level table, so a walk can skip the
// upper levels. Not-present entries are never cached; INVLPG and CR3 writes
// drop the PCID's entries, as the SDM requires.
#pragma once
#include <cstdint>
#include <vector>

#include "common/types.h"

namespace percpu {

class PagingStructureCache {
 public:
  explicit PagingStructureCache(int entries) : m_entries(entries) {}

  // prefix: the virtual-address bits above the level the cached entry maps.
  Frame lookup(uint64_t prefix, Pcid pcid) {
    for (auto& e : m_entries)
      if (e.valid && e.prefix == prefix && e.pcid == pcid) {
        e.stamp = ++m_clock;
        return e.next_table;
      }
    return kNoFrame;
  }
  void insert(uint64_t prefix, Pcid pcid, Frame next_table);
  void flush_pcid(Pcid pcid) {
    for (auto& e : m_entries)
      if (e.pcid == pcid) e.valid = false;
  }
  void flush_all() {
    for (auto& e : m_entries) e.valid = false;
  }
  bool enabled() const { return !m_entries.empty(); }

 private:
  struct Entry {
    uint64_t prefix = 0;
    Frame next_table = kNoFrame;
    uint32_t stamp = 0;
    Pcid pcid = 0;
    bool valid = false;
  };
  std::vector<Entry> m_entries;
  uint32_t m_clock = 0;
};

}  // namespace percpu
