// The gem5 plugin's root model (src_patches/percpu_gem5/root_model.hh) against a
// fake guest memory: the CR3 values, flushes and top-level reads a Linux 6.1
// guest produces (arch/x86/mm/tlb.c build_cr3, build_cr3_noflush; PTI's halves
// in arch/x86/entry/calling.h), with the core/root/ schemes it drives. Run by CI
// (tests/test_cxx.py) and by gem5's GTest build (src_patches/percpu_gem5/).
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <stdexcept>

#include "linux/asid.h"
#include "paging/pte.h"
#include "root_model.hh"

using namespace percpu;

namespace {

class FakeGuest final : public IGuestMemory {
 public:
  uint64_t read64(PhysAddr pa) const override {
    EXPECT_TRUE(pa % 8 == 0);
    auto it = words.find(pa);
    return it == words.end() ? 0 : it->second;
  }
  void write64(PhysAddr pa, uint64_t v) override {
    EXPECT_TRUE(pa % 8 == 0);
    if (pa >= kPoolBase) pool_writes++;
    words[pa] = v;
  }
  uint64_t entry(PhysAddr table, int slot) const { return read64(table + slot * 8); }
  void set(PhysAddr table, int slot, uint64_t v) { words[table + slot * 8] = v; }

  static constexpr PhysAddr kPoolBase = 0x7ff00000;
  std::map<PhysAddr, uint64_t> words;
  uint64_t pool_writes = 0;
};

constexpr uint64_t kNoFlush = 1ull << 63;
constexpr PhysAddr kPgdA = 0x100000, kPgdB = 0x104000, kPgdC = 0x108000;  // 8 KiB apart
constexpr uint64_t kUserEntry = 0x222000 | pte::kPresent | pte::kWritable | pte::kUser;
constexpr int kUserSlot = 3;

// A guest with three mms (more with add_mm) whose pgds share the kernel half, as Linux's do.
struct Guest {
  explicit Guest(bool pti = false) : pti(pti) {
    for (PhysAddr pgd : {kPgdA, kPgdB, kPgdC}) add_mm(pgd);
  }
  void add_mm(PhysAddr pgd) {
    for (int s = pte::kFirstKernelSlot; s < kEntriesPerTable; s += 15)
      mem.set(pgd, s, pte::make_table(0x900 + s));
    mem.set(pgd, kUserSlot, pti ? kUserEntry | pte::kNoExec : kUserEntry);
    if (pti) {
      mem.set(pgd + 0x1000, 300, pte::make_table(0x777));  // the entry trampoline
      mem.set(pgd + 0x1000, kUserSlot, kUserEntry);
    }
  }
  RootModel model(const std::string& scheme, int ncpus = 2, uint64_t pool = 256 * 1024) {
    RootModel::Config c;
    c.scheme = scheme;
    c.ncpus = ncpus;
    c.pti = pti;
    c.pool_base = FakeGuest::kPoolBase;
    c.pool_bytes = pool;
    return RootModel(mem, c);
  }
  bool pti;
  FakeGuest mem;
};

bool in_pool(PhysAddr a) { return a >= FakeGuest::kPoolBase; }

}  // namespace

TEST(RootModelShared, WalksTheGuestTable) {
  Guest g;
  RootModel m = g.model("shared");
  EXPECT_TRUE(!m.has_roots());
  Cr3Outcome o = m.on_cr3_write(0, kPgdA | 1, kPgdB | 2, true);
  EXPECT_TRUE(!o.allocated && !o.tracked && o.write.kind == Cr3WriteKind::MmSwitch);
  EXPECT_TRUE(m.walk_root(0, 2, kPgdB) == kPgdB);
  EXPECT_TRUE(m.pool_bound_bytes() == 0 && m.pool_peak_bytes() == 0 && g.mem.pool_writes == 0);
}

TEST(RootModel, FirstUseAllocatesAndCopiesTheKernelHalf) {
  Guest g;
  RootModel m = g.model("percpu");
  Cr3Outcome o = m.on_cr3_write(1, kPgdB | 2, kPgdA | 1, true);
  EXPECT_TRUE(o.tracked && o.allocated && o.cause == NewAsidCause::FirstUse);
  EXPECT_TRUE(o.copy_bytes == 2048);
  PhysAddr root = m.walk_root(1, 1, kPgdA);
  EXPECT_TRUE(root != kPgdA && in_pool(root) && root % kPageSize == 0);
  for (int s = pte::kFirstKernelSlot; s < kEntriesPerTable; ++s)
    EXPECT_TRUE(g.mem.entry(root, s) == g.mem.entry(kPgdA, s));
  EXPECT_TRUE(g.mem.entry(root, kUserSlot) == 0);
  // Another CPU, or another PCID, or another pgd under this PCID: not this root.
  EXPECT_TRUE(m.walk_root(0, 1, kPgdA) == kPgdA);
  EXPECT_TRUE(m.walk_root(1, 2, kPgdA) == kPgdA);
  EXPECT_TRUE(m.walk_root(1, 1, kPgdB) == kPgdB);
  EXPECT_TRUE(m.pool_peak_bytes() == 4096 && m.pool_bound_bytes() == 2 * 6 * 4096);
  // The copy the walker makes as memory traffic: the kernel half's 32 lines, in order,
  // from the guest's pgd to the root, line for line.
  EXPECT_TRUE(o.copy_lines.size() == 32);
  for (size_t i = 0; i < o.copy_lines.size(); ++i)
    EXPECT_TRUE(o.copy_lines[i].first == kPgdA + 2048 + i * kLineSize &&
           o.copy_lines[i].second == root + 2048 + i * kLineSize);
  // A generation that reuses the root copies nothing.
  m.on_cr3_write(1, kPgdA | 1, kPgdB | 2, true);
  EXPECT_TRUE(m.on_cr3_write(1, kPgdB | 2, kPgdA | 1 | kNoFlush, true).copy_lines.empty());
}

TEST(RootModel, UserEntriesFaultInLazilyOnce) {
  Guest g;
  RootModel m = g.model("percpu");
  m.on_cr3_write(0, kPgdB | 2, kPgdA | 1, true);
  PhysAddr root = m.walk_root(0, 1, kPgdA);
  TopLevelOutcome t = m.top_level_entry(0, 1, kPgdA, root, kUserSlot, 0);
  EXPECT_TRUE(t.lazy_fault && t.pte == kUserEntry && !t.mismatch);
  EXPECT_TRUE(g.mem.entry(root, kUserSlot) == kUserEntry);
  TopLevelOutcome again = m.top_level_entry(0, 1, kPgdA, root, kUserSlot, kUserEntry);
  EXPECT_TRUE(!again.lazy_fault && again.pte == kUserEntry);
  // A walk that read the empty entry before the fault above filled it: it is
  // given the root's entry, and no second lazy fault is counted.
  TopLevelOutcome stale = m.top_level_entry(0, 1, kPgdA, root, kUserSlot, 0);
  EXPECT_TRUE(!stale.lazy_fault && stale.pte == kUserEntry);
  // An entry the guest does not have either: a page fault, not a lazy fault.
  TopLevelOutcome none = m.top_level_entry(0, 1, kPgdA, root, 7, 0);
  EXPECT_TRUE(!none.lazy_fault && none.pte == 0);
  EXPECT_TRUE(m.max_lazy_faults_per_root() == 1);
  // The walker set Accessed in the root: still the guest's entry.
  EXPECT_TRUE(!m.top_level_entry(0, 1, kPgdA, root, kUserSlot, kUserEntry | 0x20).mismatch);
  // Walks of the guest's own table are not the model's business.
  EXPECT_TRUE(!m.top_level_entry(0, 1, kPgdA, kPgdA, kUserSlot, 0).lazy_fault);
}

TEST(RootModel, NoFlushReusesAndFlushReallocates) {
  Guest g;
  RootModel m = g.model("percpu");
  m.on_cr3_write(0, kPgdC | 3, kPgdA | 1, true);
  PhysAddr root_a = m.walk_root(0, 1, kPgdA);
  m.top_level_entry(0, 1, kPgdA, root_a, kUserSlot, 0);
  EXPECT_TRUE(m.on_cr3_write(0, kPgdA | 1, kPgdB | 2, true).cause == NewAsidCause::FirstUse);
  // Back to A with bit 63: Linux kept A's TLB generation, so the root stays whole.
  Cr3Outcome kept = m.on_cr3_write(0, kPgdB | 2, kPgdA | 1 | kNoFlush, true);
  EXPECT_TRUE(!kept.allocated && m.walk_root(0, 1, kPgdA) == root_a);
  EXPECT_TRUE(g.mem.entry(root_a, kUserSlot) == kUserEntry);
  m.on_cr3_write(0, kPgdA | 1, kPgdB | 2 | kNoFlush, true);
  // Back to A without it: A was flushed while inactive; a new generation.
  Cr3Outcome fresh = m.on_cr3_write(0, kPgdB | 2, kPgdA | 1, true);
  EXPECT_TRUE(fresh.allocated && fresh.cause == NewAsidCause::FlushedInactive);
  EXPECT_TRUE(m.walk_root(0, 1, kPgdA) == root_a && g.mem.entry(root_a, kUserSlot) == 0);
}

TEST(RootModel, RoundRobinEvictionIsCountedAsEvicted) {
  Guest g;
  RootModel m = g.model("percpu", 1);
  m.on_cr3_write(0, kPgdC | 3, kPgdA | 1, true);
  // Another mm takes A's slot (ASID 0, PCID 1) as Linux's round robin wraps.
  m.on_cr3_write(0, kPgdA | 1, kPgdB | 1, true);
  EXPECT_TRUE(m.walk_root(0, 1, kPgdA) == kPgdA);
  // A comes back in another slot: it had one on this CPU, so it was evicted.
  Cr3Outcome o = m.on_cr3_write(0, kPgdB | 1, kPgdA | 2, true);
  EXPECT_TRUE(o.allocated && o.cause == NewAsidCause::Evicted);
  // And into its old slot again, after another mm held it: evicted as well.
  m.on_cr3_write(0, kPgdA | 2, kPgdB | 1, true);
  m.on_cr3_write(0, kPgdB | 1, kPgdC | 2, true);
  EXPECT_TRUE(m.on_cr3_write(0, kPgdC | 2, kPgdA | 1, true).cause == NewAsidCause::Evicted);
}

TEST(RootModel, NoPcidAllocatesOnEverySwitch) {
  Guest g;
  RootModel m = g.model("percpu");
  Cr3Outcome o = m.on_cr3_write(0, kPgdB, kPgdA, false);
  EXPECT_TRUE(o.allocated && o.cause == NewAsidCause::NoPcid && o.write.pcid == 0);
  PhysAddr root = m.walk_root(0, 0, kPgdA);
  EXPECT_TRUE(in_pool(root));
  EXPECT_TRUE(m.on_cr3_write(0, kPgdA, kPgdB, false).cause == NewAsidCause::NoPcid);
  EXPECT_TRUE(m.on_cr3_write(0, kPgdB, kPgdA, false).allocated);
  // A reload of the loaded value (flush_tlb_local) flushes but keeps the root.
  m.top_level_entry(0, 0, kPgdA, root, kUserSlot, 0);
  Cr3Outcome reload = m.on_cr3_write(0, kPgdA, kPgdA, false);
  EXPECT_TRUE(!reload.allocated && reload.write.kind == Cr3WriteKind::Reload);
  EXPECT_TRUE(m.walk_root(0, 0, kPgdA) == root && g.mem.entry(root, kUserSlot) == kUserEntry);
}

TEST(RootModel, FlushesDropEntriesTheGuestChanged) {
  Guest g;
  RootModel m = g.model("percpu");
  m.on_cr3_write(0, kPgdB | 2, kPgdA | 1, true);
  PhysAddr root = m.walk_root(0, 1, kPgdA);
  m.top_level_entry(0, 1, kPgdA, root, kUserSlot, 0);
  EXPECT_TRUE(m.stale_entries(0) == 0);
  // The guest frees the tables under slot 3: it clears the entry, then flushes.
  g.mem.set(kPgdA, kUserSlot, 0);
  EXPECT_TRUE(m.stale_entries(0) == 1);
  // Before the flush the root may still hold it (a paging-structure cache would).
  EXPECT_TRUE(!m.top_level_entry(0, 1, kPgdA, root, kUserSlot, kUserEntry).mismatch);
  EXPECT_TRUE(m.on_flush_pcid(0, 1) == 1);
  EXPECT_TRUE(g.mem.entry(root, kUserSlot) == 0 && m.stale_entries(0) == 0);
  // A flush checks the flushed PCID's root only: an inactive mm's root may be stale
  // until its next switch, which Linux makes a flushing one (a new generation here).
  m.on_cr3_write(0, kPgdA | 1, kPgdB | 2, true);
  PhysAddr root_b = m.walk_root(0, 2, kPgdB);
  m.top_level_entry(0, 2, kPgdB, root_b, kUserSlot, 0);
  g.mem.set(kPgdB, kUserSlot, 0);
  m.on_cr3_write(0, kPgdB | 2, kPgdA | 1 | kNoFlush, true);
  EXPECT_TRUE(m.stale_entries(0, 1) == 0 && m.stale_entries(0, 2) == 1 && m.stale_entries(0) == 1);
  g.mem.set(kPgdB, kUserSlot, kUserEntry);
  // A flush of another PCID leaves this root alone; INVPCID all-context does not.
  g.mem.set(kPgdA, kUserSlot, kUserEntry);
  m.top_level_entry(0, 1, kPgdA, root, kUserSlot, 0);
  g.mem.set(kPgdA, kUserSlot, kUserEntry + 0x1000);
  EXPECT_TRUE(m.top_level_entry(0, 1, kPgdA, root, kUserSlot, kUserEntry).mismatch);
  EXPECT_TRUE(m.on_flush_pcid(0, 4) == 0);
  EXPECT_TRUE(m.on_flush_all(0) == 1);
  // A flushing CR3 reload drops too.
  m.top_level_entry(0, 1, kPgdA, root, kUserSlot, 0);
  g.mem.set(kPgdA, kUserSlot, 0);
  Cr3Outcome reload = m.on_cr3_write(0, kPgdA | 1, kPgdA | 1, true);
  EXPECT_TRUE(!reload.allocated && reload.entries_dropped == 1);
}

TEST(RootModel, KernelHalfChangesAreSyncedOnTheWalk) {
  Guest g;
  RootModel m = g.model("percpu");
  m.on_cr3_write(0, kPgdB | 2, kPgdA | 1, true);
  m.on_cr3_write(0, kPgdA | 1, kPgdB | 2, true);
  PhysAddr root_b = m.walk_root(0, 2, kPgdB);
  // sync_global_pgds: every pgd gains kernel entry 400, with no hardware event.
  for (PhysAddr pgd : {kPgdA, kPgdB, kPgdC}) g.mem.set(pgd, 400, pte::make_table(0x444));
  TopLevelOutcome t = m.top_level_entry(0, 2, kPgdB, root_b, 400, 0);
  EXPECT_TRUE(t.kernel_sync && t.pte == pte::make_table(0x444));
  EXPECT_TRUE(g.mem.entry(root_b, 400) == pte::make_table(0x444));
  // Every root learnt it, not only the one walked.
  m.on_cr3_write(0, kPgdB | 2, kPgdA | 1 | kNoFlush, true);
  EXPECT_TRUE(g.mem.entry(m.walk_root(0, 1, kPgdA), 400) == pte::make_table(0x444));
  EXPECT_TRUE(!m.top_level_entry(0, 2, kPgdB, root_b, 400, pte::make_table(0x444) | 0x20).kernel_sync);
}

TEST(RootModel, PtiPairs) {
  Guest g(true);
  RootModel m = g.model("percpu");
  Cr3Outcome o = m.on_cr3_write(0, kPgdB | 2, kPgdA | 1, true);
  EXPECT_TRUE(o.allocated && o.copy_bytes == 4096 && o.copy_lines.size() == 64);
  const PhysAddr user_cr3 = kPgdA | 0x1000;
  const uint16_t user_pcid = 1 | kPtiUserPcidBit;
  // PTI's exit to user mode: the same pair, no allocation.
  Cr3Outcome exit = m.on_cr3_write(0, kPgdA | 1, user_cr3 | user_pcid | kNoFlush, true);
  EXPECT_TRUE(exit.write.kind == Cr3WriteKind::PtiSwitch && !exit.allocated);
  PhysAddr kroot = m.walk_root(0, 1, kPgdA), uroot = m.walk_root(0, user_pcid, user_cr3);
  EXPECT_TRUE(in_pool(kroot) && in_pool(uroot) && kroot != uroot);
  EXPECT_TRUE(g.mem.entry(uroot, 300) == pte::make_table(0x777));  // the user pgd's kernel half
  // A lazy fault from user mode: each half of the pair from its own pgd.
  TopLevelOutcome t = m.top_level_entry(0, user_pcid, user_cr3, uroot, kUserSlot, 0);
  EXPECT_TRUE(t.lazy_fault && t.pte == kUserEntry);
  EXPECT_TRUE(g.mem.entry(kroot, kUserSlot) == (kUserEntry | pte::kNoExec));
  EXPECT_TRUE(m.pool_peak_bytes() == 8192 && m.pool_bound_bytes() == 2 * 6 * 8192);
}

// The PCID -> Linux ASID slot mapping (core/linux/asid.h: kern_pcid(asid) = asid + 1,
// user_pcid = kern_pcid | bit 11), at its edges.
TEST(RootModelPcidSlots, PcidZeroIsNoSlot) {
  // PCID 0 is for PCID-unaware code: never a root.
  Guest g;
  RootModel m = g.model("percpu");
  EXPECT_FALSE(m.on_cr3_write(0, kPgdB | 1, kPgdA | 0, true).tracked);
  EXPECT_EQ(m.walk_root(0, 0, kPgdA), kPgdA);
  EXPECT_EQ(m.pool_peak_bytes(), 0u);
}

TEST(RootModelPcidSlots, ThePcidAboveTheLastDynamicAsidIsNoSlot) {
  Guest g;
  RootModel m = g.model("percpu");
  const uint16_t beyond = kern_pcid(kTlbNrDynAsids - 1) + 1;  // PCID 7
  EXPECT_FALSE(m.on_cr3_write(0, kPgdA, kPgdB | beyond, true).tracked);
  EXPECT_EQ(m.walk_root(0, beyond, kPgdB), kPgdB);
  EXPECT_EQ(m.pool_peak_bytes(), 0u);
}

TEST(RootModelPcidSlots, TheLastDynamicAsidsPcidIsASlot) {
  Guest g;
  RootModel m = g.model("percpu");
  const uint16_t last = kern_pcid(kTlbNrDynAsids - 1);  // PCID 6
  Cr3Outcome o = m.on_cr3_write(0, kPgdA | 1, kPgdB | last, true);
  EXPECT_TRUE(o.tracked);
  EXPECT_TRUE(o.allocated);
  EXPECT_TRUE(in_pool(m.walk_root(0, last, kPgdB)));
}

TEST(RootModelPcidSlots, EachKernPcidHasItsOwnRoot) {
  Guest g;
  RootModel m = g.model("percpu", 1);
  std::set<PhysAddr> roots;
  for (Asid asid = 0; asid < kTlbNrDynAsids; ++asid) {
    const PhysAddr pgd = 0x200000 + asid * 0x2000;
    g.add_mm(pgd);
    EXPECT_TRUE(m.on_cr3_write(0, kPgdA | 1, pgd | kern_pcid(asid), true).allocated)
        << "asid " << asid;
  }
  for (Asid asid = 0; asid < kTlbNrDynAsids; ++asid) {
    const PhysAddr root = m.walk_root(0, kern_pcid(asid), 0x200000 + asid * 0x2000);
    EXPECT_TRUE(in_pool(root)) << "asid " << asid;
    roots.insert(root);
  }
  EXPECT_EQ(roots.size(), static_cast<size_t>(kTlbNrDynAsids));
}

TEST(RootModelPcidSlots, PtiUserPcidIsTheSameSlotAsItsKernPcid) {
  // SWITCH_TO_USER_CR3 sets bit 11 of the PCID and bit 12 of the pgd: the same pair.
  Guest g(true);
  RootModel m = g.model("percpu");
  const Asid asid = kTlbNrDynAsids - 1;
  m.on_cr3_write(0, kPgdB | 1, kPgdA | kern_pcid(asid), true);
  Cr3Outcome exit = m.on_cr3_write(0, kPgdA | kern_pcid(asid),
                                   (kPgdA | 0x1000) | user_pcid(asid) | kNoFlush, true);
  EXPECT_TRUE(exit.tracked);
  EXPECT_FALSE(exit.allocated);
  const PhysAddr kroot = m.walk_root(0, kern_pcid(asid), kPgdA);
  const PhysAddr uroot = m.walk_root(0, user_pcid(asid), kPgdA | 0x1000);
  EXPECT_TRUE(in_pool(kroot));
  EXPECT_TRUE(in_pool(uroot));
  EXPECT_NE(kroot, uroot);
}

TEST(RootModelPcidSlots, AFlushOfTheUserPcidReachesItsSlotsRoot) {
  // INVLPG in user mode under PTI flushes the user PCID: the pair's root drops too.
  Guest g(true);
  RootModel m = g.model("percpu");
  m.on_cr3_write(0, kPgdB | 1, kPgdA | kern_pcid(0), true);
  const PhysAddr root = m.walk_root(0, kern_pcid(0), kPgdA);
  m.top_level_entry(0, kern_pcid(0), kPgdA, root, kUserSlot, 0);
  g.mem.set(kPgdA, kUserSlot, 0);
  EXPECT_EQ(m.on_flush_pcid(0, user_pcid(0)), 1);
  EXPECT_EQ(g.mem.entry(root, kUserSlot), 0u);
}

TEST(RootModelPcidSlots, WithoutPcideEveryCr3IsSlotZero) {
  // PCIDE clear: the low bits are PWT/PCD, not a PCID; choose_new_asid answers slot 0.
  Guest g;
  RootModel m = g.model("percpu");
  Cr3Outcome o = m.on_cr3_write(0, kPgdB, kPgdA | 0x18, false);
  EXPECT_TRUE(o.tracked);
  EXPECT_EQ(o.cause, NewAsidCause::NoPcid);
  EXPECT_TRUE(in_pool(m.walk_root(0, 0, kPgdA)));
}

TEST(RootModelEnv, TheSchemeIsBuiltForAGuestThatKnowsNothingOfRoots) {
  // RootEnv's gem5 case (core/root/i_root_scheme.h): no init_mm, no private slots,
  // and new user pgd entries reach a root by a lazy fault, not at the page fault.
  FakeGuest mem;
  GuestTableMemory tables(mem, FakeGuest::kPoolBase, 64 * 1024);
  RootModel::Config c;
  c.ncpus = 3;
  c.pti = true;
  RootEnv env = RootModel::scheme_env(tables, c);
  EXPECT_FALSE(env.fill_at_fault);
  EXPECT_TRUE(env.percpu_data_top.empty());
  EXPECT_EQ(env.init_pgd, kNoFrame);
  EXPECT_EQ(env.init_user_pgd, kNoFrame);
  EXPECT_EQ(env.ncpus, 3);
  EXPECT_TRUE(env.pti);
  EXPECT_FALSE(env.fault_skip_root_invalidate);
}

TEST(RootModel, WithoutPtiNeighbouringPgdsAreDifferentMms) {
  Guest g;
  RootModel m = g.model("percpu");
  m.on_cr3_write(0, kPgdC | 3, kPgdA | 1, true);
  Cr3Outcome o = m.on_cr3_write(0, kPgdA | 1, (kPgdA + 0x1000) | 1, true);
  EXPECT_TRUE(o.allocated && o.write.kind == Cr3WriteKind::MmSwitch && o.cause == NewAsidCause::FirstUse);
}

TEST(RootModel, AFullPoolIsAnError) {
  Guest g;
  RootModel m = g.model("percpu", 2, 4096);
  m.on_cr3_write(0, kPgdB | 2, kPgdA | 1, true);
  try {
    m.on_cr3_write(0, kPgdA | 1, kPgdB | 2, true);
    ADD_FAILURE() << "a second root fitted in a one-root pool";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "the root pool (4 KiB, the proposal's bound on live roots) is full");
  }
}

TEST(RootModelEager, CopiesUserEntriesAtAllocation) {
  Guest g;
  RootModel m = g.model("percpu-eager");
  Cr3Outcome o = m.on_cr3_write(0, kPgdB | 2, kPgdA | 1, true);
  EXPECT_TRUE(o.copy_bytes == 2048 + 8);
  PhysAddr root = m.walk_root(0, 1, kPgdA);
  // The kernel half's 32 lines and the user entry's one.
  EXPECT_TRUE(o.copy_lines.size() == 33);
  EXPECT_TRUE(g.mem.entry(root, kUserSlot) == kUserEntry);
  // A new pgd entry has no hardware event: the first walk to see it pushes it, as the
  // kernel would have at the fault, to every root of the mm; never a lazy fault.
  m.on_cr3_write(1, kPgdB | 2, kPgdA | 1, true);
  g.mem.set(kPgdA, 9, pte::make_table(0x999));
  TopLevelOutcome t = m.top_level_entry(0, 1, kPgdA, root, 9, 0);
  EXPECT_TRUE(t.pushed && !t.lazy_fault && t.pte == pte::make_table(0x999));
  EXPECT_TRUE(g.mem.entry(m.walk_root(1, 1, kPgdA), 9) == pte::make_table(0x999));
}

