// Linux's TLB-flush rules (arch/x86/mm/tlb.c) as the engine follows them, each on a
// small program that reaches it directly, under per-CPU roots with the checker on.
// Random programs (tests/core/) reach these only by luck.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "engine_harness.h"

using namespace percpu;
using namespace percpu::test;

namespace {
constexpr VirtAddr kOwnSlot = 0x8000000000;  // top-level slot 1: munmap frees its tables
constexpr VirtAddr kHeap = 0x10000000;
}  // namespace

// native_flush_tlb_multi: a flush that freed page tables goes to lazy CPUs too (they
// may still walk the mm's tables speculatively); the lazy CPU switches to init_mm.
TEST(LinuxFlushRules, AFreedTablesFlushReachesLazyCpus) {
  ProgramBuilder b;
  const int x = b.vma("x");
  const int m = b.mm("m", {{"x", kOwnSlot, 4096}});
  const int ready = b.chan("ready"), done = b.chan("done");
  // b runs the mm on CPU 1, then waits: CPU 1 idles lazily with the mm loaded.
  b.task("a", m, {0}, {op(OpCode::Wait, {{"chan", ready}}),
                       op(OpCode::Munmap, {{"vma", x}, {"offset", 0}, {"length", -1}}),
                       op(OpCode::Signal, {{"chan", done}, {"n", 1}})});
  b.task("b", m, {1}, {load(x), op(OpCode::Signal, {{"chan", ready}, {"n", 1}}),
                       op(OpCode::Wait, {{"chan", done}})});
  EngineRun run(b.p, 2);
  EXPECT_EQ(run.stat("system.cpu1.lazySwitchToInit"), 1) << "the lazy CPU kept the freed tables";
  EXPECT_EQ(run.stat("system.cpu0.ipi.skippedLazy"), 0);
  EXPECT_EQ(run.engine->violation_count(), 0u) << run.violations();
}

namespace {
// b stores to x on CPU 1 and waits (CPU 1 idles lazily with the mm loaded) while a, on
// CPU 0, takes write permission away from x's first page; then b stores again if asked.
Program mprotect_while_lazy(bool store_after) {
  ProgramBuilder b;
  const int x = b.vma("x");
  const int m = b.mm("m", {{"x", kHeap, 2 * 4096}});
  const int ready = b.chan("ready"), done = b.chan("done");
  b.task("a", m, {0}, {op(OpCode::Wait, {{"chan", ready}}),
                       op(OpCode::Mprotect, {{"vma", x}, {"offset", 0}, {"length", 4096},
                                             {"prot", kProtRead}}),
                       op(OpCode::Signal, {{"chan", done}, {"n", 1}})});
  std::vector<Op> ops = {store(x), op(OpCode::Signal, {{"chan", ready}, {"n", 1}}),
                         op(OpCode::Wait, {{"chan", done}})};
  if (store_after) ops.push_back(store(x));
  b.task("b", m, {1}, ops);
  return b.p;
}
}  // namespace

// should_flush_tlb: a flush that freed no tables skips lazy CPUs...
TEST(LinuxFlushRules, AFlushWithoutFreedTablesSkipsLazyCpus) {
  EngineRun run(mprotect_while_lazy(false), 2);
  EXPECT_EQ(run.stat("system.cpu0.ipi.skippedLazy"), 1);
  EXPECT_EQ(run.stat("system.cpu1.ipi.received"), 0);
}

// ...so a lazy CPU that returns to the mm compares its tlb_gen and flushes
// (switch_mm_irqs_off, prev == next): the write the mprotect took away must fault.
TEST(LinuxFlushRules, ALazyCpuReturningToAnMmWhoseTlbGenMovedFlushes) {
  EngineRun run(mprotect_while_lazy(true), 2);
  EXPECT_EQ(run.stat("system.cpu1.segfaults"), 1)
      << "the store after the return used the TLB's stale writable entry";
  EXPECT_EQ(run.engine->violation_count(), 0u) << run.violations();
}

namespace {
// Seven mms take turns on one CPU, one more than the dynamic ASIDs: each comes back to
// a root evicted and re-made (zeroed and re-copied in its old frame), and runs, three
// times, a store to its x, then `kernel` (kernel accesses through the re-made root).
Program evicting_rounds(const std::vector<Op>& kernel) {
  ProgramBuilder b;
  const int x = b.vma("x");
  std::vector<Op> ops = {op(OpCode::Repeat, {{"count", 3}, {"end", 0}}), store(x)};
  ops.insert(ops.end(), kernel.begin(), kernel.end());
  ops.push_back(op(OpCode::Yield));
  ops[0] = op(OpCode::Repeat, {{"count", 3}, {"end", static_cast<int64_t>(ops.size())}});
  ops.push_back(op(OpCode::End, {{"repeat", 0}}));
  for (int i = 0; i < kTlbNrDynAsids + 1; ++i)
    b.task("t" + std::to_string(i), b.mm("m" + std::to_string(i), {{"x", kHeap, 4096}}), {0},
           ops);
  return b.p;
}
}  // namespace

// Per-CPU data in the root's private slot, a kmap_local, a copy through the direct map.
TEST(LinuxFlushRules, ARootRemadeAfterEvictionIsWalkedByKernelAccesses) {
  EngineRun run(evicting_rounds({op(OpCode::PercpuAccess, {{"count", 1}}),
                                 op(OpCode::KmapLocal, {{"count", 1}}),
                                 op(OpCode::Kcopy, {{"bytes", 4096}}),
                                 op(OpCode::KunmapLocal, {{"count", 1}})}),
                1);
  ASSERT_GT(run.stat("system.cpu0.percpu.rootAllocs::evicted"), 0) << "no root was re-made";
  EXPECT_EQ(run.engine->violation_count(), 0u) << run.violations();
  EXPECT_EQ(run.stat("system.cpu0.segfaults"), 0);
}

// The same with the stock kmap_local (kmap.private=0): its fixmap slot is in the shared
// kernel half and kunmap_local flushes it, so each copy through a new kmap_local walks
// the kernel half the re-made root was given.
TEST(LinuxFlushRules, ARootRemadeAfterEvictionHasTheSharedKernelHalf) {
  EngineRun run(evicting_rounds({op(OpCode::KmapLocal, {{"count", 1}}),
                                 op(OpCode::Kcopy, {{"bytes", 64}}),
                                 op(OpCode::KunmapLocal, {{"count", 1}})}),
                1, "percpu", {{"kmap.private", 0}});
  ASSERT_GT(run.stat("system.cpu0.percpu.rootAllocs::evicted"), 0) << "no root was re-made";
  EXPECT_EQ(run.engine->violation_count(), 0u) << run.violations();
}

// Two mms on one CPU map the same address to different frames: each must see its own
// (the PCID tags of the TLB and paging-structure caches keep them apart).
TEST(LinuxFlushRules, TwoMmsOnOneCpuSeeTheirOwnFramesAtTheSameAddress) {
  ProgramBuilder b;
  const int x = b.vma("x");
  for (const char* name : {"p", "q"}) {
    const int m = b.mm(name, {{"x", kHeap, 4096}});
    b.task(std::string("t") + name, m, {0},
           {store(x), op(OpCode::Yield), load(x), op(OpCode::Yield), load(x)});
  }
  EngineRun run(b.p, 1, "percpu", {}, true);
  std::map<int, std::set<int64_t>> frames;  // mm -> frames its accesses saw at kHeap
  for (const LogRecord& r : run.engine->log())
    if (r.kind == LogRecord::Access && r.va == kHeap) frames[r.mm].insert(r.frame);
  ASSERT_EQ(frames.size(), 2u);
  const std::set<int64_t>& p = frames.begin()->second;
  const std::set<int64_t>& q = frames.rbegin()->second;
  EXPECT_EQ(p.size(), 1u) << "one mm saw two frames at one address";
  EXPECT_EQ(q.size(), 1u) << "one mm saw two frames at one address";
  EXPECT_NE(*p.begin(), *q.begin()) << "the two mms shared a frame";
}
