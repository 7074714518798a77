// Follows kernel/cpu.c and kernel/sched/core.c (balance_push): cpu_offline
// waits, as balance_push does, until no migrate-disabled task remains on the
// CPU; then its tasks are pushed away and its TLBs and ASID slots discarded.
// cpu_online brings a CPU back up in init_mm.
#include <algorithm>

#include "engine/engine_state.h"

namespace percpu {

// cpu_offline: the calling task blocks until the CPU is down. Returns false (it left).
bool Engine::cpu_offline(Cpu& c, Task* t, int id) {
  if (id < 0 || id >= m_ncpus) workload_error(t, "cpu_offline of a CPU this machine lacks");
  Cpu& target = *m_cpus[id];
  if (!target.online || target.going_offline) return true;
  int online = 0;
  for (auto& cp : m_cpus) online += cp->online && !cp->going_offline;
  if (online <= 1) workload_error(t, "cpu_offline of the last online CPU");
  target.going_offline = true;
  for (Task* q : target.runq) m_pinned_at_offline += q->migrate_disabled > 0;
  for (auto& q : m_tasks)
    if (q->cpu == &target && q->migrate_disabled > 0 && q->state != TaskState::Runnable &&
        q.get() != t)
      m_pinned_at_offline++;
  // Movable queued tasks leave at once; pinned ones stay until migrate_enable.
  std::deque<Task*> keep;
  std::deque<Task*> queued;
  queued.swap(target.runq);
  for (Task* q : queued) {
    if (q->migrate_disabled > 0) keep.push_back(q);
    else enqueue(q, nullptr, c.clock);
  }
  target.runq = keep;
  charge(c, Cat::Other, m_cost.syscall);
  block_current(c, TaskState::Blocked);
  m_offline_waiters.emplace_back(t, id);
  try_finish_offline(c.clock);
  schedule_next(c);
  return false;
}

void Engine::cpu_online(Cpu& c, Task* t, int id) {
  if (id < 0 || id >= m_ncpus) workload_error(t, "cpu_online of a CPU this machine lacks");
  Cpu& target = *m_cpus[id];
  if (!target.online) {
    target.online = true;
    target.clock = std::max(target.clock, c.clock);
    start_in_init_mm(target);
  }
  charge(c, Cat::Other, m_cost.syscall);
}

// Finishes every pending offline whose CPU holds no migrate-disabled task any more.
void Engine::try_finish_offline(Cycles now) {
  for (size_t i = 0; i < m_offline_waiters.size();) {
    auto [waiter, cpu_id] = m_offline_waiters[i];
    Cpu& dying = *m_cpus[cpu_id];
    bool pinned_left = false;
    if (dying.current && dying.current->migrate_disabled > 0) pinned_left = true;
    for (Task* t : dying.runq) pinned_left |= t->migrate_disabled > 0;
    for (auto& t : m_tasks)
      if (t->cpu == &dying && t->migrate_disabled > 0 && t->state != TaskState::Exited)
        pinned_left = true;
    if (pinned_left) {
      ++i;
      continue;
    }
    // Push the rest away, then the CPU dies: its TLBs and ASID slots are gone.
    std::deque<Task*> rest;
    rest.swap(dying.runq);
    if (dying.current) {
      rest.push_front(dying.current);
      dying.current = nullptr;
    }
    dying.online = false;
    log_asid(AsidEvent::CpuOffline, cpu_id, 0);
    dying.going_offline = false;
    for (Task* t : rest) enqueue(t, nullptr, now);
    for (auto& t : m_tasks)
      if (t->cpu == &dying) t->cpu = nullptr;
    flush_everything(dying);
    for (auto& mm : m_mms) mm->cpumask.reset(cpu_id);
    dying.last = nullptr;
    m_offlines++;
    m_hotplug_wait_cycles += now > waiter->blocked_since ? now - waiter->blocked_since : 0;
    m_offline_waiters.erase(m_offline_waiters.begin() + static_cast<long>(i));
    wake(waiter, now);
  }
}

}  // namespace percpu
