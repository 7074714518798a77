// The CR3 write classes that the gem5 monitor counts, on the CR3 values a
// Linux 6.1 guest writes (arch/x86/mm/tlb.c: build_cr3, build_cr3_noflush;
// PTI's user half in arch/x86/entry/calling.h: SWITCH_TO_USER_CR3). Run by CI
// (tests/test_cxx.py) and by gem5's GTest build (src_patches/percpu_gem5/).
#include <gtest/gtest.h>

#include "cr3_write_classifier.hh"

using percpu::Cr3WriteClassifier;
using percpu::Cr3WriteKind;

namespace {

constexpr uint64_t kNoFlush = uint64_t(1) << 63;
constexpr uint64_t kPgdA = 0x10a000;  // 8 KiB aligned, as with PTI
constexpr uint64_t kPgdB = 0x23c000;
constexpr uint64_t kUserPgd = 1 << 12;
constexpr uint64_t kUserPcid = 1 << 11;

}  // namespace

TEST(Cr3WriteClassifierTest, AnotherPgdIsAnMmSwitch) {
  auto w = Cr3WriteClassifier::classify(kPgdA | 1, kPgdB | 2, true, true);
  EXPECT_EQ(w.kind, Cr3WriteKind::MmSwitch);
  EXPECT_TRUE(w.flushes());
  EXPECT_TRUE(w.nonzero_pcid);
  EXPECT_EQ(w.pcid, 2);
}

TEST(Cr3WriteClassifierTest, AnotherPcidOnTheSamePgdIsAnMmSwitch) {
  // One mm's pgd seen under two ASID slots is two address spaces.
  auto w = Cr3WriteClassifier::classify(kPgdA | 1, kPgdA | 2, true, true);
  EXPECT_EQ(w.kind, Cr3WriteKind::MmSwitch);
}

TEST(Cr3WriteClassifierTest, NoFlushBitCountsOnlyWithPcide) {
  auto with = Cr3WriteClassifier::classify(kPgdA | 1, kPgdB | 2 | kNoFlush, true, true);
  EXPECT_TRUE(with.no_flush);
  EXPECT_FALSE(with.flushes());
  auto without = Cr3WriteClassifier::classify(kPgdA, kPgdB | kNoFlush, false, true);
  EXPECT_FALSE(without.no_flush);
  EXPECT_TRUE(without.flushes());
}

TEST(Cr3WriteClassifierTest, WithoutPcideLowBitsAreNotAPcid) {
  // PWT/PCD (bits 3, 4) with PCIDE=0 are cache controls, not a PCID.
  auto w = Cr3WriteClassifier::classify(kPgdA, kPgdB | 0x18, false, true);
  EXPECT_EQ(w.kind, Cr3WriteKind::MmSwitch);
  EXPECT_FALSE(w.nonzero_pcid);
  EXPECT_EQ(w.pcid, 0);
  EXPECT_EQ(w.to.pcid, 0);
}

TEST(Cr3WriteClassifierTest, PtiKernelUserCrossingStaysInThePair) {
  const uint64_t kernel = kPgdA | 3;
  const uint64_t user = kPgdA | kUserPgd | 3 | kUserPcid;
  auto to_user = Cr3WriteClassifier::classify(kernel, user | kNoFlush, true, true);
  EXPECT_EQ(to_user.kind, Cr3WriteKind::PtiSwitch);
  EXPECT_TRUE(to_user.no_flush);
  auto to_kernel = Cr3WriteClassifier::classify(user, kernel | kNoFlush, true, true);
  EXPECT_EQ(to_kernel.kind, Cr3WriteKind::PtiSwitch);
  EXPECT_EQ(to_kernel.from, to_kernel.to);
}

TEST(Cr3WriteClassifierTest, SwitchFromUserHalfToAnotherMmIsAnMmSwitch) {
  const uint64_t user_a = kPgdA | kUserPgd | 3 | kUserPcid;
  auto w = Cr3WriteClassifier::classify(user_a, kPgdB | 4, true, true);
  EXPECT_EQ(w.kind, Cr3WriteKind::MmSwitch);
}

TEST(Cr3WriteClassifierTest, SameValueIsAReload) {
  auto w = Cr3WriteClassifier::classify(kPgdA | 5, kPgdA | 5, true, true);
  EXPECT_EQ(w.kind, Cr3WriteKind::Reload);
  EXPECT_TRUE(w.flushes());
  auto kept = Cr3WriteClassifier::classify(kPgdA | 5, kPgdA | 5 | kNoFlush, true, true);
  EXPECT_EQ(kept.kind, Cr3WriteKind::Reload);
  EXPECT_FALSE(kept.flushes());
  auto no_pcid = Cr3WriteClassifier::classify(kPgdA, kPgdA, false, true);
  EXPECT_EQ(no_pcid.kind, Cr3WriteKind::Reload);
}

TEST(Cr3WriteClassifierTest, AddressSpaceIgnoresBitsAbove51) {
  auto as = Cr3WriteClassifier::address_space(kNoFlush | kPgdB | kUserPgd | 0x805, true, true);
  EXPECT_EQ(as.pgd, kPgdB);
  EXPECT_EQ(as.pcid, 5);
}

TEST(Cr3WriteClassifierTest, WithoutPtiNeighbouringPgdsAreTwoMms) {
  // Without PTI a pgd is one page: the one 4 KiB above may be another mm's.
  auto w = Cr3WriteClassifier::classify(kPgdA | 1, kPgdA | kUserPgd | 2, true, false);
  EXPECT_EQ(w.kind, Cr3WriteKind::MmSwitch);
  auto pti = Cr3WriteClassifier::classify(kPgdA | 1, kPgdA | kUserPgd | 1 | kUserPcid, true, true);
  EXPECT_EQ(pti.kind, Cr3WriteKind::PtiSwitch);
}
