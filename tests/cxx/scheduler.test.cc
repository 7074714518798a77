// The scheduler's pieces (core/sched/) on small programs: migrate, affinity, hotplug.
#include <gtest/gtest.h>

#include <algorithm>

#include "engine_harness.h"

using namespace percpu;
using namespace percpu::test;

namespace {
constexpr VirtAddr kHeap = 0x10000000;
}  // namespace

TEST(Scheduler, MigrateMovesTheTaskToThatCpu) {
  ProgramBuilder b;
  const int x = b.vma("x");
  const int m = b.mm("m", {{"x", kHeap, 4096}});
  b.task("t", m, {0}, {load(x, 10), op(OpCode::Migrate, {{"cpu", 1}}), load(x, 20)});
  EngineRun run(b.p, 2);
  EXPECT_EQ(run.stat("system.cpu0.userRefs"), 10);
  EXPECT_EQ(run.stat("system.cpu1.userRefs"), 20);
}

TEST(Scheduler, AffinityWithoutTheCurrentCpuMovesTheTask) {
  ProgramBuilder b;
  const int x = b.vma("x");
  const int m = b.mm("m", {{"x", kHeap, 4096}});
  b.task("t", m, {0}, {load(x, 10), op(OpCode::Affinity, {{"w0", 0b10}, {"w1", 0}, {"w2", 0}, {"w3", 0}}),
                       load(x, 20)});
  EngineRun run(b.p, 2);
  EXPECT_EQ(run.stat("system.cpu0.userRefs"), 10);
  EXPECT_EQ(run.stat("system.cpu1.userRefs"), 20);
}

TEST(Scheduler, MigrateDisableHoldsTheTaskUntilEnabled) {
  ProgramBuilder b;
  const int x = b.vma("x");
  const int m = b.mm("m", {{"x", kHeap, 4096}});
  b.task("t", m, {0, 1},
         {op(OpCode::Migrate, {{"cpu", 0}}), op(OpCode::MigrateDisable),
          op(OpCode::Affinity, {{"w0", 0b10}, {"w1", 0}, {"w2", 0}, {"w3", 0}}), load(x, 10),
          op(OpCode::MigrateEnable), load(x, 20)});
  EngineRun run(b.p, 2);
  EXPECT_EQ(run.stat("system.cpu0.userRefs"), 10);
  EXPECT_EQ(run.stat("system.cpu1.userRefs"), 20);
}

TEST(Scheduler, ATaskOnACpuGoingOfflineRunsElsewhere) {
  ProgramBuilder b;
  const int x = b.vma("x");
  const int m = b.mm("m", {{"x", kHeap, 4096}});
  const int go = b.chan("go");
  b.task("k", -1, {0}, {op(OpCode::CpuOffline, {{"cpu", 1}}), op(OpCode::Signal, {{"chan", go}, {"n", 1}})});
  b.task("t", m, {1}, {op(OpCode::Wait, {{"chan", go}}), load(x, 30)});
  EngineRun run(b.p, 2);
  EXPECT_EQ(run.stat("system.cpu0.userRefs"), 30);
  EXPECT_EQ(run.stat("system.cpu1.userRefs"), 0);
}

// noise.start_order (core/sched/runqueue.cc draw_start_order) and the steady state of
// choose_new_asid's round robin that the first runs pick for a ring of 8 mms on 1 CPU.
namespace {

struct RingRun {
  std::vector<uint64_t> switches;  // ctx_id of each switch_mm
  std::vector<bool> allocated;
};

// 8 processes on CPU 0 passing a token round the ring p -> p + 1 (channels tok0..tok7),
// `rounds` turns each; process `order[i]` is the i-th start task declared.
RingRun ring_of_eight(const std::vector<int>& order, std::map<std::string, double> set,
                      int rounds = 30) {
  ProgramBuilder b;
  const int x = b.vma("x");
  std::vector<int> mms(8), toks(8);
  for (int p = 0; p < 8; ++p) {
    mms[p] = b.mm("m" + std::to_string(p), {{"x", kHeap, 4096}});
    toks[p] = b.chan("tok" + std::to_string(p));
  }
  for (int p : order) {
    std::vector<Op> ops = {load(x, 1)};
    if (p == 0) ops.push_back(op(OpCode::Signal, {{"chan", toks[0]}, {"n", 1}}));
    const auto repeat = static_cast<int64_t>(ops.size());
    ops.push_back(op(OpCode::Repeat, {{"count", rounds}, {"end", repeat + 4}}));
    ops.push_back(op(OpCode::Wait, {{"chan", toks[p]}}));
    ops.push_back(load(x, 4));
    ops.push_back(op(OpCode::Signal, {{"chan", toks[(p + 1) % 8]}, {"n", 1}}));
    ops.push_back(op(OpCode::End, {{"repeat", repeat}}));
    b.task("p" + std::to_string(p), mms[p], {0}, ops);
  }
  Params params;
  params.set("machine.cpus", 1);
  params.set("noise.enabled", 0);
  for (const auto& [key, value] : set) params.set(key, value);
  Engine engine(params, "percpu", b.p, true);
  engine.record_asid_events(true);
  engine.run();
  EXPECT_EQ(engine.violation_count(), 0u);
  RingRun out;
  for (const AsidEvent& e : engine.asid_events())
    if (e.kind == AsidEvent::Switch) {
      out.switches.push_back(e.ctx_id);
      out.allocated.push_back(e.allocated);
    }
  return out;
}

// Root allocations per switch over switches 80 to 127: 6 turns of the ring, a whole number
// of the steady state's cycle (1, 2 or 3 turns of 8 switches).
double late_rate(const RingRun& r) {
  int allocs = 0;
  for (size_t i = 80; i < 128; ++i) allocs += r.allocated.at(i) ? 1 : 0;
  return allocs / 48.0;
}

const std::vector<int> kRingOrder = {0, 1, 2, 3, 4, 5, 6, 7};

}  // namespace

TEST(Scheduler, StartTasksFirstRunInProgramOrderWithoutTheDraw) {
  RingRun r = ring_of_eight(kRingOrder, {});
  // mm instances are made in template order: m<p> is ctx p + 2 (init_mm is 1).
  for (int i = 0; i < 8; ++i) EXPECT_EQ(r.switches.at(i), static_cast<uint64_t>(i + 2));
}

TEST(Scheduler, StartOrderIsAPermutationDrawnPerSeed) {
  std::map<std::string, double> on = {{"noise.enabled", 1}, {"noise.start_order", 1},
                                      {"noise.aslr", 0}, {"noise.tick_hz", 0},
                                      {"noise.compute_jitter", 0}, {"noise.kernel_jitter", 0}};
  std::vector<std::vector<uint64_t>> firsts;
  for (double seed : {1.0, 2.0, 3.0}) {
    auto set = on;
    set["machine.seed"] = seed;
    RingRun r = ring_of_eight(kRingOrder, set);
    std::vector<uint64_t> first(r.switches.begin(), r.switches.begin() + 8);
    std::vector<uint64_t> sorted = first;
    std::sort(sorted.begin(), sorted.end());
    for (int i = 0; i < 8; ++i) EXPECT_EQ(sorted[i], static_cast<uint64_t>(i + 2));
    firsts.push_back(first);
    // The same seed draws the same order (common random numbers).
    RingRun again = ring_of_eight(kRingOrder, set);
    EXPECT_EQ(std::vector<uint64_t>(again.switches.begin(), again.switches.begin() + 8), first);
  }
  EXPECT_TRUE(firsts[0] != firsts[1] || firsts[1] != firsts[2]);
  // noise.start_order=0 keeps program order whatever the seed.
  auto off = on;
  off["noise.start_order"] = 0;
  off["machine.seed"] = 2;
  RingRun r = ring_of_eight(kRingOrder, off);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(r.switches.at(i), static_cast<uint64_t>(i + 2));
}

// Linux 6.1's choose_new_asid (arch/x86/mm/tlb.c): a missing mm takes slot next_asid,
// which advances only then. A ring of 8 mms over the 6 slots settles in a steady state the
// order of the first switches picks: every switch allocating when they follow the ring,
// every second or every third switch for other orders (percpu.trace.linux_asid's
// ring_steady_state gives the same three).
TEST(Scheduler, TheFirstRunsPickTheRoundRobinsSteadyStatePastTheCliff) {
  EXPECT_DOUBLE_EQ(late_rate(ring_of_eight(kRingOrder, {})), 1.0);
  EXPECT_DOUBLE_EQ(late_rate(ring_of_eight({0, 1, 2, 3, 5, 7, 4, 6}, {})), 0.5);
  EXPECT_NEAR(late_rate(ring_of_eight({0, 7, 6, 5, 4, 3, 2, 1}, {})), 1.0 / 3, 1.0 / 48);
}
