// Follows kernel/sched/core.c as far as the model needs: per-CPU run queues
// (FIFO, time slices set in engine.cc's step), placement on the least-loaded
// allowed CPU (select_task_rq, with select_fallback_rq when no allowed CPU is
// online), wake-ups, blocking, and the context switch (switch_mm_irqs_off or
// lazy TLB, with kmap_local's save and restore around it).
#include <algorithm>

#include "engine/engine_state.h"

namespace percpu {

Engine::Cpu* Engine::place(Task* t, Cpu* preferred) {
  auto usable = [&](const Cpu* c) {
    return c && c->online && !c->going_offline && t->allowed.test(c->id);
  };
  if (t->migrate_disabled > 0 && t->cpu) return t->cpu;  // pinned where it is
  if (!t->allowed.any() || std::none_of(m_cpus.begin(), m_cpus.end(),
                                        [&](const auto& c) { return usable(c.get()); })) {
    // select_fallback_rq: no allowed CPU is online, so affinity is broken.
    m_affinity_broken++;
    for (auto& c : m_cpus)
      if (c->online && !c->going_offline) t->allowed.set(c->id);
  }
  Cpu* best = nullptr;
  size_t best_load = SIZE_MAX;
  auto consider = [&](Cpu* c) {
    if (!usable(c)) return;
    size_t load = c->runq.size() + (c->current ? 1 : 0);
    if (load < best_load) {
      best = c;
      best_load = load;
    }
  };
  consider(t->cpu);  // ties stay where the task last ran (cache affinity)
  consider(preferred);
  for (auto& c : m_cpus) consider(c.get());
  if (m_noise.wake_ties() && best && best != t->cpu && best != preferred) {
    // noise.wake_ties: which of the equally loaded CPUs (docs/noise.md).
    std::vector<Cpu*> tied;
    for (auto& c : m_cpus)
      if (usable(c.get()) && c->runq.size() + (c->current ? 1 : 0) == best_load)
        tied.push_back(c.get());
    if (tied.size() > 1) {
      best = tied[m_noise.below(Noise::Wake, t->key, t->placements++, tied.size())];
      m_noise_wake_draws++;
    }
  }
  return best;
}

Engine::Cpu* Engine::place_or_fail(Task* t, Cpu* preferred) {
  Cpu* c = place(t, preferred);
  if (!c) workload_error(t, "no online CPU can run it");
  return c;
}

void Engine::enqueue(Task* t, Cpu* preferred, Cycles when) {
  Cpu* c = place_or_fail(t, preferred ? preferred : t->cpu);
  t->cpu = c;
  t->state = TaskState::Runnable;
  t->runnable_since = when;
  if (c->current == nullptr && c->runq.empty()) idle_until(*c, when);
  c->runq.push_back(t);
}

void Engine::wake(Task* t, Cycles when) { enqueue(t, t->cpu, when); }

// noise.start_order (docs/noise.md): the order in which a CPU first runs the program's
// start-time processes. In the guest they are one launcher's children, and which of them
// a CPU runs first follows fork placement (kernel/sched/fair.c task_fork_fair and
// place_entity's START_DEBIT: a child starts one vslice, sched_vslice() of the parent's
// run queue, past its min_vruntime; kernel/sched/core.c wake_up_new_task and
// select_task_rq_fair's find_idlest_cpu), the migration that pinning makes and the
// wake-up timing at the program's start barrier: state the model does not keep. The
// order matters because Linux 6.1's choose_new_asid hands out slots round-robin: a ring
// of more mms than TLB_NR_DYN_ASIDS settles in one of several steady states (every, every
// second or every third switch allocating for 8 mms over 6 slots), chosen by the order of
// the first allocations (docs/gem5.md, "Past the cliff"). A Fisher-Yates shuffle of each
// CPU's start queue, drawn from (seed, CPU, position): the same order under every scheme.
void Engine::draw_start_order() {
  if (!m_noise.start_order()) return;
  for (auto& cp : m_cpus) {
    auto& q = cp->runq;
    if (q.size() < 2) continue;
    for (size_t i = q.size() - 1; i > 0; --i)
      std::swap(q[i], q[m_noise.below(Noise::StartOrder, static_cast<uint64_t>(cp->id), i, i + 1)]);
    m_noise_start_draws++;
  }
}

// The running task leaves the CPU but stays runnable (yield, migration).
void Engine::requeue_current(Cpu& c, Task* t, Cpu* preferred) {
  t->state = TaskState::Runnable;
  c.current = nullptr;
  enqueue(t, preferred, c.clock);
}

void Engine::block_current(Cpu& c, TaskState state) {
  Task* t = c.current;
  t->state = state;
  t->blocked_since = c.clock;
  c.current = nullptr;
  if (state == TaskState::Sleeping) m_sleepers.push({{t->wake_time, m_sleep_seq++}, t});
}

void Engine::context_switch(Cpu& c, Task* prev, Task* next) {
  c.n.ctx_switches++;
  charge(c, Cat::CtxSwitch, kernel_cost(next, m_cost.ctx_switch));
  kmap_local_sched_out(c, prev);
  if (next->mm) switch_mm_irqs_off(c, next->mm);
  else enter_lazy_tlb(c);
  kmap_local_sched_in(c, next);
}

void Engine::schedule_next(Cpu& c) {
  if (c.runq.empty()) pull_task(c);
  if (c.runq.empty()) {
    if (!c.tlbstate.is_lazy()) enter_lazy_tlb(c);  // idle keeps the mm: lazy TLB
    c.was_idle = true;
    return;
  }
  Task* next = c.runq.front();
  c.runq.pop_front();
  next->state = TaskState::Running;
  next->slice_start = c.clock;
  c.current = next;
  // Coming back from idle counts as a switch even to the same task: the idle
  // task ran in between (lazy TLB), so switch_mm must leave lazy mode.
  if (c.last != next || c.was_idle) context_switch(c, c.last, next);
  c.was_idle = false;
  c.last = next;
}

}  // namespace percpu
