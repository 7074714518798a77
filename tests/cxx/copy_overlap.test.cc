// core/cache/overlap.h: a root allocation's copy, its line misses overlapped up to the
// L1D's MSHRs, one access issued every `issue` cycles. Worked examples; the property
// tests against a reference model are tests/core/test_copy_overlap.py.
#include <gtest/gtest.h>

#include <vector>

#include "cache/overlap.h"

using namespace percpu;

namespace {

std::vector<Cycles> repeat(Cycles latency, int n) { return std::vector<Cycles>(n, latency); }

}  // namespace

TEST(CopyOverlap, NoAccessCostsNothing) {
  EXPECT_EQ(overlapped_cycles({}, 10, 1), 0u);
}

TEST(CopyOverlap, OneRegisterIsTheSerialSum) {
  // The charge before issue 25: every line's latency in turn.
  EXPECT_EQ(overlapped_cycles({4, 200, 12, 42, 200}, 1, 1), 4u + 200 + 12 + 42 + 200);
  EXPECT_EQ(overlapped_cycles(repeat(200, 64), 1, 1), 64u * 200);
}

TEST(CopyOverlap, ColdMissesGoInRoundsOfTheRegisters) {
  // 64 DRAM misses, 10 registers, one issued a cycle: rounds of 10 every 200 cycles; the
  // seventh round (accesses 60-63) issues at 1,200-1,203.
  EXPECT_EQ(overlapped_cycles(repeat(200, 64), 10, 1), 1203u + 200);
  // gem5's walk cache has 20: four rounds, the last (accesses 60-63) at 570-573.
  EXPECT_EQ(overlapped_cycles(repeat(190, 64), 20, 1), 573u + 190);
}

TEST(CopyOverlap, HotLinesAreIssueBound) {
  // L1 hits a cycle apart never fill the registers: 63 issues, then the last hit.
  EXPECT_EQ(overlapped_cycles(repeat(4, 64), 10, 1), 63u + 4);
  // With no issue gap the registers are the limit again: 7 rounds of 4 cycles.
  EXPECT_EQ(overlapped_cycles(repeat(4, 64), 10, 0), 7u * 4);
}

TEST(CopyOverlap, AMissOverlapsTheHitsAfterIt) {
  // A miss, then hits: the hits issue under the miss, which ends the burst.
  EXPECT_EQ(overlapped_cycles({200, 4, 4, 4}, 2, 1), 200u);
  // A full set of registers delays the next access until the first one frees.
  EXPECT_EQ(overlapped_cycles({100, 100, 4}, 2, 1), 100u + 4);
}

TEST(CopyOverlap, ResetStartsANewBurst) {
  OverlappedAccesses burst(10, 1);
  for (int i = 0; i < 64; ++i) burst.add(200);
  burst.reset();
  burst.add(4);
  EXPECT_EQ(burst.cycles(), 4u);
}
