// Follows kernel/sched/fair.c in outline: newidle balance (a CPU about to go
// idle pulls a waiting task) and the periodic balance (an idle CPU takes a
// waiting task from a busy one), with the interval of sched.balance_us.
#include "engine/engine_state.h"

namespace percpu {

// Periodic balance, seen from a CPU with tasks waiting: an idle CPU that may run
// one of them takes it, its clock brought forward to now (it idled until then).
void Engine::periodic_balance(Cpu& busy) {
  if (busy.clock < busy.next_balance) return;
  busy.next_balance = busy.clock + m_balance_cycles;
  if (busy.runq.empty()) return;
  for (auto& cp : m_cpus) {
    Cpu& idle = *cp;
    if (&idle == &busy || !idle.online || idle.going_offline || idle.current || !idle.runq.empty())
      continue;
    for (auto it = busy.runq.begin(); it != busy.runq.end(); ++it) {
      Task* t = *it;
      if (t->migrate_disabled > 0 || !t->allowed.test(idle.id)) continue;
      busy.runq.erase(it);
      idle_until(idle, busy.clock);
      t->cpu = &idle;
      idle.runq.push_back(t);
      idle.n.balance_pulls++;
      return;
    }
  }
}

// newidle balance: a CPU about to go idle pulls one waiting task from the CPU with
// the longest queue, if the task may run here and was already waiting at this
// CPU's time (the CPUs' clocks differ; nothing is pulled from its future).
bool Engine::pull_task(Cpu& c) {
  if (!c.online || c.going_offline) return false;
  Cpu* busiest = nullptr;
  for (auto& cp : m_cpus) {
    Cpu* o = cp.get();
    if (o == &c || !o->online || o->runq.empty()) continue;
    if (!busiest || o->runq.size() > busiest->runq.size()) busiest = o;
  }
  if (!busiest) return false;
  for (auto it = busiest->runq.begin(); it != busiest->runq.end(); ++it) {
    Task* t = *it;
    if (t->migrate_disabled > 0 || !t->allowed.test(c.id) || t->runnable_since > c.clock) continue;
    busiest->runq.erase(it);
    t->cpu = &c;
    c.runq.push_back(t);
    c.n.idle_pulls++;
    return true;
  }
  return false;
}

}  // namespace percpu
