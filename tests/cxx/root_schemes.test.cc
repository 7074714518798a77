// The root schemes (core/root/) against a small fake memory, with core/root/,
// core/common/ and core/paging/pte.h alone: the seam the gem5 plugin builds on.
// Run by CI (tests/test_cxx.py) and by gem5's GTest build (src_patches/percpu_gem5/).
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "paging/pte.h"
#include "root/registry.h"

using namespace percpu;

namespace {

// Table frames as a map; frames are handed out in order from 1000 up and never
// reused, so a read of a freed frame is caught.
class FakeMemory final : public ITableMemory {
 public:
  uint64_t read_entry(Frame t, int i) const override {
    EXPECT_EQ(live.count(t), 1u) << "read of table " << t << ", not live";
    auto it = tables.find(t);
    return it == tables.end() ? 0 : it->second[i];
  }
  void write_entry(Frame t, int i, uint64_t v) override {
    EXPECT_EQ(live.count(t), 1u) << "write to table " << t << ", not live";
    EXPECT_TRUE(i >= 0 && i < kEntriesPerTable);
    tables[t][i] = v;
    writes++;
  }
  Frame alloc_table(TableKind kind) override {
    (kind == TableKind::Root ? roots : privates)++;
    return host_table();
  }
  void free_table(Frame t) override {
    EXPECT_EQ(live.erase(t), 1u) << "free of table " << t << ", not live";
    freed++;
  }
  // A zeroed table; called directly, one the host owns (a pgd), not the scheme.
  Frame host_table() {
    Frame f = next++;
    tables[f].assign(kEntriesPerTable, 0);
    live.insert(f);
    return f;
  }

  std::map<Frame, std::vector<uint64_t>> tables;
  std::set<Frame> live;
  Frame next = 1000;
  int roots = 0, privates = 0, freed = 0;
  uint64_t writes = 0;
};

// The engine's host: init_mm's kernel half, per-CPU data tables (private slots), one mm.
struct Host {
  explicit Host(bool pti = false, bool private_slots = true, int ncpus = 2)
      : env{.mem = mem, .levels = 4, .pti = pti, .ncpus = ncpus} {
    env.init_pgd = mem.host_table();
    for (int s = pte::kFirstKernelSlot; s < kEntriesPerTable; s += 17)
      mem.write_entry(env.init_pgd, s, pte::make_table(50 + s));
    if (pti) {
      env.init_user_pgd = mem.host_table();
      mem.write_entry(env.init_user_pgd, 300, pte::make_table(7));
    }
    if (private_slots)
      for (int c = 0; c < ncpus; ++c) env.percpu_data_top.push_back(mem.host_table());
    mm.ctx_id = 2;
    mm.pgd = mem.host_table();
    mm.user_pgd = pti ? mem.host_table() : kNoFrame;
    mem.write_entry(mm.pgd, 3, pte::make_table(77));
    // PTI: Linux's kernel-pgd copy of a user entry has NX (pti_set_user_pgtbl).
    if (pti) mem.write_entry(mm.user_pgd, 3, pte::make_table(77) & ~pte::kNoExec);
    if (pti) mem.write_entry(mm.pgd, 3, pte::make_table(77) | pte::kNoExec);
  }
  FakeMemory mem;
  RootEnv env;
  MmView mm;
};

}  // namespace

TEST(RootSchemeRegistry, ListsEveryScheme) {
  auto names = root_scheme_names();
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()),
            (std::set<std::string>{"percpu", "percpu-eager", "shared"}));
}

TEST(RootSchemeRegistry, RefusesAnUnknownName) {
  Host h;
  EXPECT_THROW(make_root_scheme("nope", h.env), std::invalid_argument);
}

TEST(SharedRoots, WalkFromTheMmPgd) {
  Host h(true);
  auto s = make_root_scheme("shared", h.env);
  RootSelection sel = s->select_root(0, 1, h.mm, true);
  EXPECT_EQ(sel.kernel_root, h.mm.pgd);
  EXPECT_EQ(sel.user_root, h.mm.user_pgd);
  EXPECT_FALSE(sel.allocated);
  EXPECT_FALSE(s->has_private_slots());
  EXPECT_EQ(s->inspector().root_pages_live(), 0u);
  EXPECT_EQ(h.mem.roots, 0);
}

TEST(PerCpuRoots, ANewRootHoldsTheKernelHalfAndThisCpusPrivateSlot) {
  Host h;
  auto s = make_root_scheme("percpu", h.env);
  RootSelection sel = s->select_root(1, 2, h.mm, true);
  EXPECT_TRUE(sel.allocated);
  EXPECT_EQ(sel.kernel_root, sel.user_root);
  EXPECT_EQ(h.mem.roots, 1);
  for (int slot = pte::kFirstKernelSlot; slot < kEntriesPerTable; ++slot) {
    uint64_t want = slot == kPercpuDataSlot ? pte::make_table(h.env.percpu_data_top[1])
                                            : h.mem.read_entry(h.env.init_pgd, slot);
    EXPECT_EQ(h.mem.read_entry(sel.kernel_root, slot), want) << "slot " << slot;
  }
  EXPECT_EQ(h.mem.read_entry(sel.kernel_root, 3), 0u);  // user entries come lazily
  ASSERT_EQ(sel.copies.size(), 1u);
  EXPECT_EQ(sel.copies[0].count, pte::kUserSlots);
  EXPECT_EQ(s->inspector().root_pages_live(), 1u);
}

TEST(PerCpuRoots, ARootIsReusedWhileItsGenerationLasts) {
  Host h;
  auto s = make_root_scheme("percpu", h.env);
  RootSelection sel = s->select_root(1, 2, h.mm, true);
  RootSelection again = s->select_root(1, 2, h.mm, false);
  EXPECT_FALSE(again.allocated);
  EXPECT_EQ(again.kernel_root, sel.kernel_root);
}

TEST(PerCpuRoots, ANewGenerationReusesTheFrameZeroed) {
  Host h;
  auto s = make_root_scheme("percpu", h.env);
  Frame root = s->select_root(1, 2, h.mm, true).kernel_root;
  ASSERT_TRUE(s->lazy_fill(1, 2, h.mm, 3));
  uint64_t gen = s->inspector().root_generation(1, 2);
  RootSelection fresh = s->select_root(1, 2, h.mm, true);
  EXPECT_TRUE(fresh.allocated);
  EXPECT_EQ(fresh.kernel_root, root);
  EXPECT_EQ(h.mem.roots, 1);
  EXPECT_NE(s->inspector().root_generation(1, 2), gen);
  EXPECT_EQ(h.mem.read_entry(root, 3), 0u);
}

TEST(PerCpuRoots, AnotherMmInTheSlotGetsANewGeneration) {
  Host h;
  auto s = make_root_scheme("percpu", h.env);
  s->select_root(1, 2, h.mm, true);
  MmView other = h.mm;
  other.ctx_id = 9;
  EXPECT_TRUE(s->select_root(1, 2, other, false).allocated);
}

TEST(PerCpuRoots, UserSlotsFaultInLazilyOnce) {
  Host h;
  auto s = make_root_scheme("percpu", h.env);
  Frame root = s->select_root(0, 0, h.mm, true).kernel_root;
  EXPECT_FALSE(s->lazy_fill(0, 0, h.mm, 4));  // the pgd has no entry 4 either
  EXPECT_TRUE(s->lazy_fill(0, 0, h.mm, 3));
  EXPECT_EQ(h.mem.read_entry(root, 3), h.mem.read_entry(h.mm.pgd, 3));
  EXPECT_EQ(s->inspector().max_lazy_faults_per_generation(), 1u);
}

TEST(PerCpuRoots, AFlushThatFreedTablesDropsTheStaleEntry) {
  Host h;
  auto s = make_root_scheme("percpu", h.env);
  Frame root = s->select_root(0, 0, h.mm, true).kernel_root;
  s->lazy_fill(0, 0, h.mm, 3);
  EXPECT_EQ(s->inspector().stale_user_slots(0, 0, h.mm), 0);
  h.mem.write_entry(h.mm.pgd, 3, 0);  // the mm freed slot 3's tables
  EXPECT_EQ(s->inspector().stale_user_slots(0, 0, h.mm), 1);
  EXPECT_EQ(s->on_flush(0, 0, h.mm, {3}), 1);
  EXPECT_EQ(h.mem.read_entry(root, 3), 0u);
  EXPECT_EQ(s->inspector().stale_user_slots(0, 0, h.mm), 0);
}

TEST(PerCpuRoots, FillAtFaultTeachesOnlyTheFaultingRoot) {
  Host h;
  auto s = make_root_scheme("percpu", h.env);
  Frame root = s->select_root(0, 0, h.mm, true).kernel_root;
  Frame other = s->select_root(1, 0, h.mm, true).kernel_root;
  h.mem.write_entry(h.mm.pgd, 5, pte::make_table(88));
  EXPECT_EQ(s->on_pgd_populated(0, 0, h.mm, 5), 1);
  EXPECT_EQ(h.mem.read_entry(root, 5), pte::make_table(88));
  EXPECT_EQ(h.mem.read_entry(other, 5), 0u);  // CPU 1 faults it in when it walks there
}

TEST(PerCpuRoots, WithoutFillAtFaultTheNextWalkFaultsTheEntryIn) {
  Host h;
  h.env.fill_at_fault = false;  // the gem5 host's guest
  auto s = make_root_scheme("percpu", h.env);
  Frame root = s->select_root(0, 0, h.mm, true).kernel_root;
  h.mem.write_entry(h.mm.pgd, 5, pte::make_table(88));
  EXPECT_EQ(s->on_pgd_populated(0, 0, h.mm, 5), 0);
  EXPECT_EQ(h.mem.read_entry(root, 5), 0u);
  EXPECT_TRUE(s->lazy_fill(0, 0, h.mm, 5));
  EXPECT_EQ(h.mem.read_entry(root, 5), pte::make_table(88));
}

TEST(PerCpuEagerRoots, CopyUserSlotsAtAllocationAndPushNewOnesToEveryRoot) {
  Host h(false, true, 2);
  auto s = make_root_scheme("percpu-eager", h.env);
  RootSelection sel = s->select_root(0, 0, h.mm, true);
  EXPECT_EQ(h.mem.read_entry(sel.kernel_root, 3), h.mem.read_entry(h.mm.pgd, 3));
  EXPECT_EQ(sel.copies.size(), 2u);
  Frame other = s->select_root(1, 4, h.mm, true).kernel_root;
  h.mem.write_entry(h.mm.pgd, 6, pte::make_table(99));
  EXPECT_EQ(s->on_pgd_populated(0, 0, h.mm, 6), 2);  // every root of the mm
  EXPECT_EQ(h.mem.read_entry(other, 6), pte::make_table(99));
  EXPECT_FALSE(s->lazy_fill(0, 0, h.mm, 7));
}

TEST(PerCpuRoots, PtiGivesAPairEachHalfFromItsOwnPgd) {
  Host h(true);
  auto s = make_root_scheme("percpu", h.env);
  RootSelection sel = s->select_root(0, 1, h.mm, true);
  EXPECT_NE(sel.kernel_root, sel.user_root);
  EXPECT_EQ(h.mem.roots, 2);
  EXPECT_EQ(s->inspector().root_pages_live(), 2u);
  EXPECT_EQ(h.mem.read_entry(sel.user_root, 300), pte::make_table(7));
  EXPECT_EQ(sel.copies.size(), 2u);
  EXPECT_TRUE(s->lazy_fill(0, 1, h.mm, 3));
  // The user half without the NX of the kernel's copy.
  EXPECT_EQ(h.mem.read_entry(sel.kernel_root, 3), h.mem.read_entry(h.mm.pgd, 3));
  EXPECT_EQ(h.mem.read_entry(sel.user_root, 3), h.mem.read_entry(h.mm.user_pgd, 3));
  EXPECT_NE(h.mem.read_entry(sel.user_root, 3), h.mem.read_entry(sel.kernel_root, 3));
}

TEST(PerCpuRoots, PrivateKmapChainIsMadeOnceAndFreedWithTheMm) {
  Host h(true);
  auto s = make_root_scheme("percpu", h.env);
  RootSelection sel = s->select_root(0, 1, h.mm, true);
  int allocated = 0;
  Frame kmap = s->private_kmap_table(0, 1, &allocated);
  EXPECT_NE(kmap, kNoFrame);
  EXPECT_EQ(allocated, 3);
  EXPECT_EQ(h.mem.privates, 3);
  EXPECT_EQ(s->private_kmap_table(0, 1, &allocated), kmap);
  EXPECT_EQ(allocated, 3);
  EXPECT_TRUE(pte::present(h.mem.read_entry(sel.kernel_root, kPrivateKmapSlot)));
  int before = h.mem.freed;
  s->on_mm_destroyed(h.mm);
  EXPECT_EQ(h.mem.freed - before, 5);  // the pair and the three private tables
  EXPECT_EQ(s->inspector().root_pages_live(), 0u);
  EXPECT_EQ(s->inspector().private_table_pages_live(), 0u);
}

TEST(PerCpuRoots, AKernelSlotAddedReachesEveryRoot) {
  Host h;
  auto s = make_root_scheme("percpu", h.env);
  Frame a = s->select_root(0, 1, h.mm, true).kernel_root;
  Frame b = s->select_root(1, 3, h.mm, true).kernel_root;
  EXPECT_EQ(s->on_kernel_slot_added(290, pte::make_table(5)), 2);
  EXPECT_EQ(h.mem.read_entry(a, 290), pte::make_table(5));
  EXPECT_EQ(h.mem.read_entry(b, 290), pte::make_table(5));
}

TEST(PerCpuRoots, NoPrivateSlotsWithoutPercpuDataTables) {
  Host h(false, false);  // the gem5 host: the guest owns its kernel half
  auto s = make_root_scheme("percpu", h.env);
  EXPECT_FALSE(s->has_private_slots());
  Frame root = s->select_root(0, 0, h.mm, true).kernel_root;
  EXPECT_EQ(h.mem.read_entry(root, kPercpuDataSlot),
            h.mem.read_entry(h.env.init_pgd, kPercpuDataSlot));
}

TEST(PerCpuRoots, WithoutInitPgdTheKernelHalfComesFromTheMmsOwnPair) {
  // The gem5 host knows no init_mm.
  Host h(true, false);
  h.env.init_pgd = kNoFrame;
  h.env.init_user_pgd = kNoFrame;
  h.mem.write_entry(h.mm.pgd, 400, pte::make_table(41));
  h.mem.write_entry(h.mm.user_pgd, 401, pte::make_table(42));
  auto s = make_root_scheme("percpu", h.env);
  RootSelection sel = s->select_root(0, 0, h.mm, true);
  EXPECT_EQ(h.mem.read_entry(sel.kernel_root, 400), pte::make_table(41));
  EXPECT_EQ(h.mem.read_entry(sel.user_root, 401), pte::make_table(42));
  EXPECT_EQ(h.mem.read_entry(sel.user_root, 400), 0u);
  ASSERT_EQ(sel.copies.size(), 2u);
  EXPECT_EQ(sel.copies[0].src, h.mm.pgd);
  EXPECT_EQ(sel.copies[1].src, h.mm.user_pgd);
}
