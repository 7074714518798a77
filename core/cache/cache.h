// Tag-only set-associative caches with LRU, and the hierarchy that data
// accesses and page walks share (private L1D and L2 per CPU, one shared LLC,
// then DRAM), so the extra lines that per-CPU roots touch show up as misses.
// Not modelled: coherence traffic, write-backs, prefetchers.
#pragma once
#include <cstdint>
#include <vector>

#include "common/types.h"

namespace percpu {

class Cache {
 public:
  Cache(uint64_t size_bytes, int ways);
  // True on a hit; a miss fills the line (LRU victim).
  bool access(uint64_t line) {
    uint64_t* tags = &m_tags[(line & m_set_mask) * m_ways];
    uint32_t* stamps = &m_stamps[(line & m_set_mask) * m_ways];
    uint64_t tag = line + 1;  // 0 marks an empty way
    int victim = 0;
    for (int w = 0; w < m_ways; ++w) {
      if (tags[w] == tag) {
        stamps[w] = ++m_clock;
        return true;
      }
      if (stamps[w] < stamps[victim]) victim = w;
    }
    tags[victim] = tag;
    stamps[victim] = ++m_clock;
    return false;
  }
  uint64_t hits = 0;
  uint64_t misses = 0;

 private:
  std::vector<uint64_t> m_tags;
  std::vector<uint32_t> m_stamps;
  int m_ways;
  uint64_t m_set_mask;
  uint32_t m_clock = 0;
};

struct CacheLatencies {
  Cycles l1 = 4, l2 = 12, llc = 42, dram = 200;
};

// The path from one CPU to memory. The LLC is shared by all CPUs' paths.
class CachePath {
 public:
  CachePath(Cache* l1d, Cache* l2, Cache* llc, CacheLatencies lat, bool enabled)
      : m_l1d(l1d), m_l2(l2), m_llc(llc), m_lat(lat), m_enabled(enabled) {}

  Cycles access(PhysAddr addr) {
    if (!m_enabled) return m_lat.l1;
    uint64_t line = addr >> kLineShift;
    if (m_l1d->access(line)) {
      m_l1d->hits++;
      return m_lat.l1;
    }
    m_l1d->misses++;
    if (m_l2->access(line)) {
      m_l2->hits++;
      return m_lat.l2;
    }
    m_l2->misses++;
    if (m_llc->access(line)) {
      m_llc->hits++;
      return m_lat.llc;
    }
    m_llc->misses++;
    return m_lat.dram;
  }

 private:
  Cache* m_l1d;
  Cache* m_l2;
  Cache* m_llc;
  CacheLatencies m_lat;
  bool m_enabled;
};

}  // namespace percpu
