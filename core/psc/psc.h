// Paging-structure caches: small fully-associative caches of non-leaf
// entries (Intel SDM 4.10.3), tagged by PCID. Each caches, for a prefix of the
// virtual address, the frame of the next-level table, so a walk can skip the
// upper levels. Not-present entries are never cached; INVLPG and CR3 writes
// drop the PCID's entries, as the SDM requires.
#pragma once
#include <cstdint>
#include <algorithm>
#include <vector>

#include "common/lru_stamp.h"
#include "common/types.h"

namespace percpu {

class PagingStructureCache {
 public:
  explicit PagingStructureCache(int entries)
      : m_key(entries, 0), m_next(entries, kNoFrame), m_stamp(entries, 0) {}

  // prefix: the virtual-address bits above the level the cached entry maps
  // (callers fold the level into its top bits where one cache serves two).
  Frame lookup(uint64_t prefix, Pcid pcid) {
    uint64_t key = make_key(prefix, pcid);
    for (size_t i = 0; i < m_key.size(); ++i)
      if (m_key[i] == key) {
        m_stamp[i] = tick();
        return m_next[i];
      }
    return kNoFrame;
  }
  void insert(uint64_t prefix, Pcid pcid, Frame next_table);
  void flush_pcid(Pcid pcid) {
    for (auto& k : m_key)
      if (k && static_cast<Pcid>(k & 0xfff) == pcid) k = 0;
  }
  void flush_all() { std::fill(m_key.begin(), m_key.end(), 0); }
  void set_clock(uint32_t start) { m_clock = start; }  // tests: see Tlb::set_clock

 private:
  // prefix (at most 45 bits, level folded in at bits 42..44) above a 12-bit PCID,
  // plus bit 63 so that a valid key is never 0.
  static uint64_t make_key(uint64_t prefix, Pcid pcid) {
    return (1ull << 63) | (prefix << 12) | (pcid & 0xfff);
  }
  std::vector<uint64_t> m_key;  // 0: empty
  std::vector<Frame> m_next;
  std::vector<uint32_t> m_stamp;
  uint32_t m_clock = 0;
  uint32_t tick() {
    if (m_clock == kLruStampMax) rebase();
    return ++m_clock;
  }
  void rebase();  // common/lru_stamp.h
};

}  // namespace percpu
