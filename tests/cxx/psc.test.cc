// core/psc/'s paging-structure caches: keyed by prefix and PCID, fully associative, LRU.
#include <gtest/gtest.h>

#include "psc/psc.h"

using namespace percpu;

TEST(PagingStructureCache, AnEntryHitsOnlyUnderItsPcidAndPrefix) {
  PagingStructureCache psc(4);
  psc.insert(0x123, 1, 500);
  EXPECT_EQ(psc.lookup(0x123, 1), 500u);
  EXPECT_EQ(psc.lookup(0x123, 2), kNoFrame);
  EXPECT_EQ(psc.lookup(0x124, 1), kNoFrame);
}

TEST(PagingStructureCache, FlushPcidDropsOnlyThatPcid) {
  PagingStructureCache psc(4);
  psc.insert(0x123, 1, 500);
  psc.insert(0x123, 2, 600);
  psc.flush_pcid(1);
  EXPECT_EQ(psc.lookup(0x123, 1), kNoFrame);
  EXPECT_EQ(psc.lookup(0x123, 2), 600u);
}

TEST(PagingStructureCache, FlushAllDropsEverything) {
  PagingStructureCache psc(4);
  psc.insert(0x123, 1, 500);
  psc.insert(0x9, 3, 700);
  psc.flush_all();
  EXPECT_EQ(psc.lookup(0x123, 1), kNoFrame);
  EXPECT_EQ(psc.lookup(0x9, 3), kNoFrame);
}

TEST(PagingStructureCache, PcidZeroIsATagLikeAnyOther) {
  // A key of prefix 0 under PCID 0 must not read as an empty entry.
  PagingStructureCache psc(2);
  psc.insert(0, 0, 42);
  EXPECT_EQ(psc.lookup(0, 0), 42u);
}

TEST(PagingStructureCache, WhenFullTheLeastRecentlyUsedEntryGoes) {
  PagingStructureCache psc(2);
  psc.insert(1, 1, 10);
  psc.insert(2, 1, 20);
  EXPECT_EQ(psc.lookup(1, 1), 10u);  // 2 is now the LRU
  psc.insert(3, 1, 30);
  EXPECT_EQ(psc.lookup(2, 1), kNoFrame);
  EXPECT_EQ(psc.lookup(1, 1), 10u);
  EXPECT_EQ(psc.lookup(3, 1), 30u);
}

TEST(PagingStructureCache, ReinsertingAKeyUpdatesIt) {
  PagingStructureCache psc(2);
  psc.insert(1, 1, 10);
  psc.insert(1, 1, 11);
  psc.insert(2, 1, 20);
  EXPECT_EQ(psc.lookup(1, 1), 11u);
  EXPECT_EQ(psc.lookup(2, 1), 20u);
}

TEST(PagingStructureCache, ZeroEntriesCachesNothing) {
  PagingStructureCache psc(0);
  psc.insert(1, 1, 10);
  EXPECT_EQ(psc.lookup(1, 1), kNoFrame);
}
