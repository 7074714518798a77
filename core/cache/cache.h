// Tag-only set-associative caches with LRU, and the hierarchy that data
// accesses and page walks share (private L1D and L2 per CPU, one shared LLC,
// then DRAM), so the extra lines that per-CPU roots touch show up as misses.
// Not modelled: coherence traffic, write-backs, prefetchers.
#pragma once
#include <cstdint>
#include <vector>

#include "common/lru_stamp.h"
#include "common/types.h"

namespace percpu {

// A cache's counters (counted by CachePath), each declared once with the word
// of its stat, <cache>.<word> (engine/stats.cc reports them for every cache).
#define PERCPU_CACHE_COUNTERS(X) \
  X(misses, "misses")            \
  X(hits, "hits")

enum class CacheCounter : uint8_t {
#define PERCPU_CACHE_COUNTER_ENUM(field, word) field,
  PERCPU_CACHE_COUNTERS(PERCPU_CACHE_COUNTER_ENUM)
#undef PERCPU_CACHE_COUNTER_ENUM
  Count
};
// Which of a cache's counters its stats report: a set of CacheCounter bits.
constexpr uint32_t cache_counter_bit(CacheCounter k) { return 1u << static_cast<int>(k); }
constexpr uint32_t kAllCacheCounters = (1u << static_cast<int>(CacheCounter::Count)) - 1;

class Cache {
 public:
  Cache(uint64_t size_bytes, int ways);
  // True on a hit; a miss fills the line (LRU victim). A set's ways sit
  // together (8 bytes each) so a lookup touches one or two host cache lines.
  bool access(uint64_t line) {
    Way* set = &m_ways[set_of(line) * m_nways];
    uint32_t tag = static_cast<uint32_t>(tag_of(line)) + 1;  // 0 marks an empty way
    // Branch-free search: which way hits is unpredictable, a mispredicted
    // early exit costs more than scanning every way.
    int hit = -1;
    for (int w = 0; w < m_nways; ++w) hit = set[w].tag == tag ? w : hit;
    if (hit >= 0) {
      set[hit].stamp = tick();
      return true;
    }
    // Miss: the least recently used way (empty ways have stamp 0) takes the line.
    int victim = 0;
    uint32_t oldest = set[0].stamp;
    for (int w = 1; w < m_nways; ++w) {
      if (set[w].stamp < oldest) {
        oldest = set[w].stamp;
        victim = w;
      }
    }
    set[victim].tag = tag;
    set[victim].stamp = tick();
    return false;
  }
  // Starts loading the set of `line` into the host's caches: the model's big
  // arrays miss in the host's caches, and overlapping those misses matters.
  void prefetch(uint64_t line) const { __builtin_prefetch(&m_ways[set_of(line) * m_nways]); }
  void set_clock(uint32_t start) { m_clock = start; }  // tests: see Tlb::set_clock
#define PERCPU_DECLARE_CACHE_COUNTER(field, word) uint64_t field = 0;
  PERCPU_CACHE_COUNTERS(PERCPU_DECLARE_CACHE_COUNTER)
#undef PERCPU_DECLARE_CACHE_COUNTER

 private:
  struct Way {
    uint32_t tag = 0;
    uint32_t stamp = 0;
  };
  std::vector<Way> m_ways;
  int m_nways;
  uint64_t m_sets;
  // A power-of-two set count indexes by the line's low bits. Any other count (a
  // sliced LLC as sysfs reports it: 105 MiB, 15 ways is 114,688 sets) indexes by
  // the line modulo the sets, standing in for the slice hash; the branch always
  // goes one way for a given cache.
  bool m_pow2;
  int m_set_bits;
  uint64_t m_set_mask;
  uint64_t set_of(uint64_t line) const { return m_pow2 ? (line & m_set_mask) : line % m_sets; }
  uint64_t tag_of(uint64_t line) const { return m_pow2 ? (line >> m_set_bits) : line / m_sets; }
  uint32_t m_clock = 0;
  uint32_t tick() {
    if (m_clock == kLruStampMax) rebase();
    return ++m_clock;
  }
  void rebase();  // common/lru_stamp.h
};

struct CacheLatencies {
  Cycles l1 = 4, l2 = 12, llc = 42, dram = 200;
};

// The path from one CPU to memory. The LLC is shared by all CPUs' paths.
class CachePath {
 public:
  CachePath(Cache* l1d, Cache* l2, Cache* llc, CacheLatencies lat, bool enabled)
      : m_l1d(l1d), m_l2(l2), m_llc(llc), m_lat(lat), m_enabled(enabled) {}

  bool enabled() const { return m_enabled; }
  Cycles access(PhysAddr addr) {
    if (!m_enabled) return m_lat.l1;
    uint64_t line = addr >> kLineShift;
    if (m_l1d->access(line)) {
      m_l1d->hits++;
      return m_lat.l1;
    }
    m_l1d->misses++;
    m_llc->prefetch(line);
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
