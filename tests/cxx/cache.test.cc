// core/cache/'s set-associative LRU cache against a reference: each set an LRU
// list of line numbers, the set being the line modulo the set count. Power-of-two
// set counts take the mask path; others (a sliced LLC as sysfs reports it, 105 MiB
// in 15 ways) the modulo path, and both must behave as the reference does.
#include <gtest/gtest.h>

#include <list>
#include <map>
#include <random>
#include <stdexcept>
#include <string>

#include "cache/cache.h"

using namespace percpu;

namespace {

constexpr uint64_t kLine = 64;

class ReferenceLru {
 public:
  ReferenceLru(uint64_t size, int ways) : m_sets(size / kLine / ways), m_ways(ways) {}
  bool access(uint64_t line) {
    std::list<uint64_t>& set = m_lru[line % m_sets];
    for (auto it = set.begin(); it != set.end(); ++it)
      if (*it == line) {
        set.erase(it);
        set.push_back(line);
        return true;
      }
    if (static_cast<int>(set.size()) == m_ways) set.pop_front();
    set.push_back(line);
    return false;
  }

 private:
  uint64_t m_sets;
  int m_ways;
  std::map<uint64_t, std::list<uint64_t>> m_lru;
};

}  // namespace

TEST(Cache, HitsAndMissesMatchTheReferenceLruForAnySetCount) {
  std::mt19937_64 rng(1);
  for (int round = 0; round < 300; ++round) {
    const int sets = 1 + static_cast<int>(rng() % 12), ways = 1 + static_cast<int>(rng() % 16);
    const uint64_t size = static_cast<uint64_t>(sets) * ways * kLine;
    Cache cache(size, ways);
    ReferenceLru ref(size, ways);
    for (int i = 0; i < 300; ++i) {
      const uint64_t line = rng() % 201;
      ASSERT_EQ(cache.access(line), ref.access(line))
          << sets << " sets x " << ways << " ways, reference " << i << " (line " << line << ")";
    }
  }
}

TEST(Cache, ASlicedLlcGeometryKeepsItsCapacity) {
  // 107,520 KiB in 15 ways (a Xeon's LLC in sysfs): 114,688 sets, not a power of two.
  const uint64_t size = 107520ull * 1024;
  const int ways = 15;
  const uint64_t sets = size / kLine / ways;
  Cache cache(size, ways);
  for (int k = 0; k < ways; ++k)
    for (uint64_t s : {uint64_t{0}, uint64_t{1}, sets - 1}) EXPECT_FALSE(cache.access(s + k * sets));
  // `ways` lines per set fit; one more in set 0 evicts its least recently used (line
  // `sets`, since line 0 was just touched again).
  EXPECT_TRUE(cache.access(0));
  EXPECT_TRUE(cache.access(1));
  EXPECT_TRUE(cache.access(sets - 1));
  EXPECT_FALSE(cache.access(ways * sets));
  EXPECT_TRUE(cache.access(0));
  EXPECT_FALSE(cache.access(sets));
}

TEST(Cache, AGeometryThatIsNotWholeSetsIsRefused) {
  for (auto [size, ways] : {std::pair<uint64_t, int>{100, 1}, {64 * 10, 3}, {0, 4}, {64 * 8, 0}}) {
    try {
      Cache cache(size, ways);
      ADD_FAILURE() << size << " bytes in " << ways << " ways was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_STREQ(e.what(), "cache geometry: size must be a whole number of 64 B x ways sets");
    }
  }
}
