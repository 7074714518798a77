// Follows kernel/sched/core.c (sched_setaffinity, migrate_disable and
// migrate_enable): a migrate-disabled task stays on its CPU, a migration asked
// for meanwhile is applied at migrate_enable. Each returns false when the task
// left the CPU (the op is then done: t->pc already advanced).
#include "engine/engine_state.h"

namespace percpu {

// migrate: pin the task to `cpu` and move it there.
bool Engine::sched_migrate(Cpu& c, Task* t, int cpu) {
  if (cpu < 0 || cpu >= m_ncpus)
    workload_error(t, "migrate to CPU " + std::to_string(cpu) + " which this machine lacks");
  if (!m_cpus[cpu]->online || m_cpus[cpu]->going_offline) {
    m_migrate_refused++;  // sched_setaffinity to an offline CPU fails with EINVAL
    return true;
  }
  if (t->migrate_disabled > 0) {
    t->pending_migrate = cpu;  // applied at migrate_enable
    return true;
  }
  if (cpu == c.id) return true;
  t->allowed.reset();
  t->allowed.set(cpu);
  charge(c, Cat::Syscall, m_cost.syscall);
  requeue_current(c, t, m_cpus[cpu].get());
  schedule_next(c);
  return false;
}

// affinity: a 256-bit CPU mask in four words, w0 for CPUs 0..63.
bool Engine::sched_setaffinity(Cpu& c, Task* t, const Op& op) {
  namespace arg = op_args::Affinity;
  const int64_t words[] = {arg::w0(op), arg::w1(op), arg::w2(op), arg::w3(op)};
  std::bitset<kMaxCpus> mask;
  for (int i = 0; i < m_ncpus; ++i) {
    int64_t word = words[i / 64];
    if ((static_cast<uint64_t>(word) >> (i % 64)) & 1) mask.set(i);
  }
  if (!mask.any()) workload_error(t, "affinity names no CPU of this machine");
  t->allowed = mask;
  charge(c, Cat::Syscall, m_cost.syscall);
  if (!mask.test(c.id) && t->migrate_disabled == 0) {
    t->pc++;
    requeue_current(c, t, nullptr);
    schedule_next(c);
    return false;
  }
  return true;
}

bool Engine::sched_migrate_enable(Cpu& c, Task* t) {
  if (t->migrate_disabled == 0) workload_error(t, "migrate_enable without migrate_disable");
  if (--t->migrate_disabled > 0) return true;
  try_finish_offline(c.clock);
  bool must_move = c.going_offline || !t->allowed.test(c.id) || t->pending_migrate >= 0;
  if (!must_move) return true;
  Cpu* target = t->pending_migrate >= 0 ? m_cpus[t->pending_migrate].get() : nullptr;
  if (target) {
    t->allowed.reset();
    t->allowed.set(target->id);
  }
  t->pending_migrate = -1;
  t->pc++;
  requeue_current(c, t, target);
  try_finish_offline(c.clock);
  schedule_next(c);
  return false;
}

}  // namespace percpu
