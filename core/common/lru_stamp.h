// LRU stamps that stay correct past 2^32 accesses. Each structure keeps a
// 32-bit access clock and stamps an entry with it on every use; replacement
// compares stamps within one set. Before the clock would wrap, every set's
// stamps are renumbered 1..k in the same order (empty entries keep 0) and the
// clock restarts above them, so the order within each set, which is all LRU
// reads, is exactly what 64-bit stamps would give, at 4 bytes per entry.
#pragma once
#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

namespace percpu {

constexpr uint32_t kLruStampMax = 0xffffffffu;

// Renumbers the non-zero stamps of one set 1..k keeping their order; returns k.
inline uint32_t rerank_stamps(std::vector<uint32_t*>& set) {
  std::vector<std::pair<uint32_t, uint32_t*>> live;
  live.reserve(set.size());
  for (uint32_t* s : set)
    if (*s != 0) live.emplace_back(*s, s);
  std::sort(live.begin(), live.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  uint32_t rank = 0;
  for (auto& [stamp, where] : live) *where = ++rank;
  return rank;
}

}  // namespace percpu
