// core/tlb/'s PCID-tagged TLB: what matches, what each invalidation drops, LRU.
#include <gtest/gtest.h>

#include "tlb/tlb.h"

using namespace percpu;

namespace {
Translation to(Frame f, bool global = false) {
  Translation t;
  t.frame = f;
  t.global = global;
  return t;
}
}  // namespace

TEST(Tlb, AnEntryHitsOnlyUnderItsPcid) {
  Tlb tlb(64, 4);
  tlb.insert(0x10, 1, to(100));
  ASSERT_NE(tlb.lookup(0x10, 1), nullptr);
  EXPECT_EQ(tlb.lookup(0x10, 1)->frame, 100u);
  EXPECT_EQ(tlb.lookup(0x10, 2), nullptr);
  EXPECT_EQ(tlb.lookup(0x11, 1), nullptr);
}

TEST(Tlb, TwoPcidsMapTheSamePageToDifferentFrames) {
  Tlb tlb(64, 4);
  tlb.insert(0x10, 1, to(100));
  tlb.insert(0x10, 2, to(200));
  EXPECT_EQ(tlb.lookup(0x10, 1)->frame, 100u);
  EXPECT_EQ(tlb.lookup(0x10, 2)->frame, 200u);
}

TEST(Tlb, AGlobalEntryHitsUnderEveryPcid) {
  Tlb tlb(64, 4);
  tlb.insert(0x20, 1, to(300, true));
  ASSERT_NE(tlb.lookup(0x20, 5), nullptr);
  EXPECT_EQ(tlb.lookup(0x20, 5)->frame, 300u);
}

TEST(Tlb, FlushPcidDropsThatPcidsNonGlobalEntriesOnly) {
  Tlb tlb(64, 4);
  tlb.insert(0x10, 1, to(100));
  tlb.insert(0x11, 2, to(101));
  tlb.insert(0x12, 1, to(102, true));
  tlb.flush_pcid(1);
  EXPECT_EQ(tlb.lookup(0x10, 1), nullptr);
  EXPECT_NE(tlb.lookup(0x11, 2), nullptr);
  EXPECT_NE(tlb.lookup(0x12, 1), nullptr);
}

TEST(Tlb, FlushNonglobalKeepsGlobalEntries) {
  Tlb tlb(64, 4);
  tlb.insert(0x10, 1, to(100));
  tlb.insert(0x11, 2, to(101));
  tlb.insert(0x12, 1, to(102, true));
  tlb.flush_nonglobal();
  EXPECT_EQ(tlb.lookup(0x10, 1), nullptr);
  EXPECT_EQ(tlb.lookup(0x11, 2), nullptr);
  EXPECT_NE(tlb.lookup(0x12, 1), nullptr);
}

TEST(Tlb, FlushEverythingDropsGlobalEntriesToo) {
  Tlb tlb(64, 4);
  tlb.insert(0x12, 1, to(102, true));
  tlb.flush_everything();
  EXPECT_EQ(tlb.lookup(0x12, 1), nullptr);
}

TEST(Tlb, InvlpgDropsThePageForThisPcidAndGlobalOnly) {
  Tlb tlb(64, 4);
  tlb.insert(0x10, 1, to(100));
  tlb.insert(0x10, 2, to(200));
  tlb.insert(0x11, 1, to(101));
  tlb.insert(0x30, 2, to(300, true));
  tlb.flush_page(0x10, 1);
  tlb.flush_page(0x30, 1);
  EXPECT_EQ(tlb.lookup(0x10, 1), nullptr);
  EXPECT_NE(tlb.lookup(0x10, 2), nullptr);
  EXPECT_NE(tlb.lookup(0x11, 1), nullptr);
  EXPECT_EQ(tlb.lookup(0x30, 2), nullptr);
}

TEST(Tlb, AFullSetEvictsItsLeastRecentlyUsedEntry) {
  Tlb tlb(8, 2);  // 4 sets: pages 0, 4, 8 share set 0
  tlb.insert(0, 1, to(10));
  tlb.insert(4, 1, to(14));
  ASSERT_NE(tlb.lookup(0, 1), nullptr);  // 4 is now the LRU
  tlb.insert(8, 1, to(18));
  EXPECT_NE(tlb.lookup(0, 1), nullptr);
  EXPECT_EQ(tlb.lookup(4, 1), nullptr);
  EXPECT_NE(tlb.lookup(8, 1), nullptr);
  EXPECT_NE(tlb.lookup(0, 1), nullptr);
}

TEST(Tlb, ReinsertingAPageReplacesItsEntry) {
  Tlb tlb(8, 2);
  tlb.insert(0, 1, to(10));
  tlb.insert(0, 1, to(11));
  tlb.insert(4, 1, to(14));
  EXPECT_EQ(tlb.lookup(0, 1)->frame, 11u);
  EXPECT_NE(tlb.lookup(4, 1), nullptr);  // the duplicate did not take a second way
}

TEST(Tlb, LruSurvivesTheStampClockWrapping) {
  Tlb tlb(8, 2);
  tlb.set_clock(0xfffffffeu);
  tlb.insert(0, 1, to(10));
  tlb.insert(4, 1, to(14));
  ASSERT_NE(tlb.lookup(0, 1), nullptr);  // wraps here
  tlb.insert(8, 1, to(18));
  EXPECT_EQ(tlb.lookup(4, 1), nullptr);
  EXPECT_NE(tlb.lookup(0, 1), nullptr);
}
