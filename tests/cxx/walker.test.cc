// core/paging/'s hardware walker: leaves, the paging-structure caches it fills and
// skips by, and its hooks (the lazy top-level fault, a read of a freed table).
#include <gtest/gtest.h>

#include <vector>

#include "cache/cache.h"
#include "mem/phys_mem.h"
#include "paging/page_table.h"
#include "paging/pte.h"
#include "paging/walker.h"

using namespace percpu;

namespace {

class RecordingHooks final : public IWalkHooks {
 public:
  // fill: what the root gets when its user top-level entry is found empty (0: nothing).
  uint64_t fill = 0;
  Frame root = kNoFrame;
  PhysMem* mem = nullptr;
  std::vector<int> empty_slots;
  std::vector<VirtAddr> freed_reads;
  bool user_top_level_entry_empty(VirtAddr, int slot, PhysAddr) override {
    empty_slots.push_back(slot);
    if (!fill) return false;
    mem->write(root, slot, fill);
    return true;
  }
  void freed_table_read(VirtAddr va) override { freed_reads.push_back(va); }
};

struct Machine {
  Machine()
      : l1(32 * 1024, 8), l2(256 * 1024, 8), llc(1024 * 1024, 16),
        path(&l1, &l2, &llc, CacheLatencies{}, true), pt(mem, 4), top(2), upper(4), pde(32),
        walker(mem, 4, Walker::Caches{top, upper, pde}, path, 20, CacheLatencies{}.l1) {
    root = mem.alloc(FrameUse::PageTable);
    hooks.mem = &mem;
    hooks.root = root;
  }
  Frame map(VirtAddr va) {
    Frame data = mem.alloc(FrameUse::Data);
    uint64_t tables = 0;
    pt.map(root, va, data, pte::kUser | pte::kWritable, &tables);
    return data;
  }
  bool walk(VirtAddr va, Translation& out, Pcid pcid = 1, bool user = true) {
    Cycles spent = 0;
    return walker.walk(va, pcid, root, user, hooks, out, &spent);
  }
  PhysMem mem;
  Cache l1, l2, llc;
  CachePath path;
  PageTable pt;
  PagingStructureCache top, upper, pde;
  Walker walker;
  Frame root;
  RecordingHooks hooks;
};

constexpr VirtAddr kVa = 0x7f0000401000;

}  // namespace

TEST(Walker, AMappedPageWalksToItsFrameAndFlags) {
  Machine m;
  Frame data = m.map(kVa);
  Translation t;
  ASSERT_TRUE(m.walk(kVa, t));
  EXPECT_EQ(t.frame, data);
  EXPECT_TRUE(t.writable);
  EXPECT_TRUE(t.user);
  EXPECT_EQ(m.walker.stats.walks, 1u);
  EXPECT_EQ(m.walker.stats.reads, 4u);  // one entry per level
}

TEST(Walker, AnUnmappedAddressFailsTheWalk) {
  Machine m;
  m.map(kVa);
  Translation t;
  EXPECT_FALSE(m.walk(kVa + 0x1000, t));
}

TEST(Walker, ANeighbourInTheSameLeafTableSkipsTheUpperLevels) {
  Machine m;
  m.map(kVa);
  m.map(kVa + 0x1000);
  Translation t;
  ASSERT_TRUE(m.walk(kVa, t));
  ASSERT_TRUE(m.walk(kVa + 0x1000, t));
  EXPECT_EQ(m.walker.stats.psc_hits, 1u);
  EXPECT_EQ(m.walker.stats.reads, 5u);  // the second walk reads the PTE only
}

TEST(Walker, PagingStructureCachesAreTaggedByPcid) {
  Machine m;
  m.map(kVa);
  m.map(kVa + 0x1000);
  Translation t;
  ASSERT_TRUE(m.walk(kVa, t, 1));
  ASSERT_TRUE(m.walk(kVa + 0x1000, t, 2));
  EXPECT_EQ(m.walker.stats.psc_hits, 0u);
}

TEST(Walker, AUserWalkOfAnEmptyTopLevelEntryAsksTheHookAndRereads) {
  // The proposal's lazy top-level fault: the hook fills the root's entry, the walk goes on.
  Machine m;
  Frame pgd = m.mem.alloc(FrameUse::PageTable);
  uint64_t tables = 0;
  Frame data = m.mem.alloc(FrameUse::Data);
  m.pt.map(pgd, kVa, data, pte::kUser, &tables);
  const int slot = pte::index(kVa, 4);
  m.hooks.fill = m.mem.read(pgd, slot);
  Translation t;
  ASSERT_TRUE(m.walk(kVa, t));
  EXPECT_EQ(t.frame, data);
  EXPECT_EQ(m.hooks.empty_slots, std::vector<int>{slot});
}

TEST(Walker, AKernelModeWalkNeverTakesALazyFault) {
  Machine m;
  Translation t;
  EXPECT_FALSE(m.walk(kVa, t, 1, false));
  EXPECT_TRUE(m.hooks.empty_slots.empty());
}

TEST(Walker, AnEmptyKernelHalfEntryIsNoLazyFault) {
  Machine m;
  Translation t;
  EXPECT_FALSE(m.walk(pte::kernel_va(4, 300, 0), t));
  EXPECT_TRUE(m.hooks.empty_slots.empty());
}

TEST(Walker, AReadOfAFreedTableIsReportedAndFailsTheWalk) {
  // A root entry left pointing at a table the mm freed: the use after free roots must not allow.
  Machine m;
  m.map(kVa);
  const uint64_t top = m.mem.read(m.root, pte::index(kVa, 4));
  m.pt.unmap(m.root, kVa & ~(pte::level_span(4) - 1), (kVa & ~(pte::level_span(4) - 1)) + pte::level_span(4), true);
  m.mem.write(m.root, pte::index(kVa, 4), top);  // the stale entry
  Translation t;
  EXPECT_FALSE(m.walk(kVa, t));
  EXPECT_EQ(m.hooks.freed_reads, std::vector<VirtAddr>{kVa});
}
