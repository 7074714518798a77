#include "cache/cache.h"

#include <algorithm>
#include <stdexcept>

namespace percpu {

Cache::Cache(uint64_t size_bytes, int ways) : m_nways(ways) {
  uint64_t lines = size_bytes / kLineSize;
  uint64_t sets = ways > 0 ? lines / static_cast<uint64_t>(ways) : 0;
  if (ways <= 0 || sets == 0 || sets * static_cast<uint64_t>(ways) != lines ||
      lines * kLineSize != size_bytes)
    throw std::invalid_argument(
        "cache geometry: size must be a whole number of 64 B x ways sets");
  m_ways.assign(lines, Way{});
  m_sets = sets;
  m_pow2 = (sets & (sets - 1)) == 0;
  m_set_mask = sets - 1;
  m_set_bits = 0;
  while ((1ull << m_set_bits) < sets) m_set_bits++;
}

void Cache::rebase() {
  uint32_t top = 0;
  std::vector<uint32_t*> set;
  for (size_t base = 0; base < m_ways.size(); base += static_cast<size_t>(m_nways)) {
    set.clear();
    for (int w = 0; w < m_nways; ++w) set.push_back(&m_ways[base + w].stamp);  // empty: 0
    top = std::max(top, rerank_stamps(set));
  }
  m_clock = top;
}

}  // namespace percpu
