// core/linux/asid.h: choose_new_asid's rules (arch/x86/mm/tlb.c) and the PCIDs of a slot.
#include <gtest/gtest.h>

#include "linux/asid.h"

using namespace percpu;

namespace {
// switch_mm's use of a choice: the slot takes the mm's ctx_id and tlb_gen when flushed.
AsidChoice switch_to(CpuTlbState& s, uint64_t ctx, uint64_t gen, bool pcid = true,
                     bool ever = false) {
  AsidChoice c = s.choose_new_asid(ctx, gen, pcid, ever);
  if (c.need_flush) s.ctx(c.asid) = {ctx, gen};
  s.set_loaded_asid(c.asid);
  return c;
}
}  // namespace

TEST(ChooseNewAsid, AnMmBackAtAnUnchangedGenerationKeepsItsSlotWithoutFlush) {
  CpuTlbState s;
  AsidChoice first = switch_to(s, 7, 1);
  switch_to(s, 8, 1);
  AsidChoice back = switch_to(s, 7, 1);
  EXPECT_EQ(back.asid, first.asid);
  EXPECT_FALSE(back.need_flush);
  EXPECT_EQ(back.cause, NewAsidCause::None);
}

TEST(ChooseNewAsid, AnMmWhoseTlbGenMovedWhileAwayIsFlushedInItsSlot) {
  CpuTlbState s;
  AsidChoice first = switch_to(s, 7, 1);
  switch_to(s, 8, 1);
  AsidChoice back = switch_to(s, 7, 2);
  EXPECT_EQ(back.asid, first.asid);
  EXPECT_TRUE(back.need_flush);
  EXPECT_EQ(back.cause, NewAsidCause::FlushedInactive);
}

TEST(ChooseNewAsid, NewMmsTakeSlotsRoundRobinFromOneAndWrapToZero) {
  CpuTlbState s;  // init_mm holds slot 0, next_asid 1
  for (Asid want = 1; want < kTlbNrDynAsids; ++want)
    EXPECT_EQ(switch_to(s, 100 + want, 1).asid, want);
  AsidChoice wrapped = switch_to(s, 200, 1);
  EXPECT_EQ(wrapped.asid, 0);
  EXPECT_EQ(wrapped.cause, NewAsidCause::FirstUse);
  EXPECT_EQ(switch_to(s, 201, 1).asid, 1);
}

TEST(ChooseNewAsid, AnMmWhoseSlotWasTakenIsEvicted) {
  CpuTlbState s;
  switch_to(s, 7, 1);  // slot 1
  for (int i = 0; i < kTlbNrDynAsids; ++i) switch_to(s, 100 + i, 1);  // slot 1 goes to another
  AsidChoice back = switch_to(s, 7, 1, true, true);
  EXPECT_TRUE(back.need_flush);
  EXPECT_EQ(back.cause, NewAsidCause::Evicted);
}

TEST(ChooseNewAsid, WithoutPcidEverySwitchFlushesSlotZero) {
  CpuTlbState s;
  switch_to(s, 7, 1, false);
  AsidChoice back = switch_to(s, 7, 1, false);
  EXPECT_EQ(back.asid, 0);
  EXPECT_TRUE(back.need_flush);
  EXPECT_EQ(back.cause, NewAsidCause::NoPcid);
}

TEST(ChooseNewAsid, InvalidateOtherEmptiesEverySlotButTheLoadedOne) {
  CpuTlbState s;
  AsidChoice a = switch_to(s, 7, 1);
  switch_to(s, 8, 1);
  s.set_invalidate_other();
  AsidChoice back = switch_to(s, 7, 1);
  EXPECT_NE(back.asid, a.asid);  // 7's slot was emptied: a fresh one
  EXPECT_TRUE(back.need_flush);
}

TEST(AsidPcids, KernPcidIsAsidPlusOneAndUserPcidSetsBit11) {
  EXPECT_EQ(kern_pcid(0), 1);
  EXPECT_EQ(kern_pcid(kTlbNrDynAsids - 1), kTlbNrDynAsids);
  EXPECT_EQ(user_pcid(0), 1 | kPtiUserPcidBit);
  EXPECT_EQ(kPtiUserPcidBit, 1 << 11);
}
