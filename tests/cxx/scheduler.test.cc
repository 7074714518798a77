// The scheduler's pieces (core/sched/) on small programs: migrate, affinity, hotplug.
#include <gtest/gtest.h>

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
