// Construction, the run loop (which CPU runs next, one step of it) and the
// helpers every part of the engine uses.
#include "engine/engine.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "engine/engine_state.h"
#include "engine/errors.h"
#include "engine/program_check.h"
#include "root/registry.h"

namespace percpu {

Engine::Engine(const Params& params, const std::string& scheme, Program program, bool check,
               bool record_log)
    : m_params(params),
      m_program(std::move(program)),
      m_check(check),
      m_record_log(record_log),
      m_ncpus(params.get_int("machine.cpus")),
      m_levels(params.get_int("machine.paging_levels")),
      m_pcid(params.get_bool("machine.pcid")),
      m_pti(params.get_bool("machine.pti")),
      m_global_asids(params.get_int("linux.max_asid_available")),
      m_pt(m_mem, params.get_int("machine.paging_levels")),
      m_rng(static_cast<uint64_t>(params.get("machine.seed"))),
      m_noise(params) {
  m_scheme_request = scheme;
  m_cost.load(params);
  m_copy_burst = OverlappedAccesses(params.get_int("cache.l1d.mshrs"),
                                    static_cast<Cycles>(params.get("cache.copy_issue_cycles")));
  m_llc = std::make_unique<Cache>(params.get_int("cache.llc.size_kib") * 1024ull,
                                  params.get_int("cache.llc.ways"));
  for (int i = 0; i < m_ncpus; ++i)
    m_cpus.push_back(std::make_unique<Cpu>(i, params, m_llc.get(), m_mem));
  double freq_mhz = params.get("machine.freq_mhz");
  m_ticks_per_cycle = static_cast<Cycles>(std::llround(1e6 / freq_mhz));
  m_cycles_per_second = static_cast<Cycles>(freq_mhz * 1e6);
  double slice_us = params.get("sched.slice_us");
  if (slice_us == 0) {
    int factor_cpus = std::min(m_ncpus, 8);
    int log2 = 0;
    while ((2 << log2) <= factor_cpus) log2++;
    slice_us = 750.0 * (1 + log2);
  }
  m_slice_cycles = static_cast<Cycles>(slice_us * freq_mhz);  // cycles per us = MHz
  double balance_us = params.get("sched.balance_us");
  if (balance_us == 0) balance_us = 1000.0 * m_ncpus;
  m_balance_cycles = static_cast<Cycles>(balance_us * freq_mhz);
  check_program(m_program, m_ncpus);  // the interpreter indexes without checking again
  m_chans.resize(m_program.chan_names.size());
  m_template_instance.assign(m_program.mms.size(), nullptr);
  for (auto& ch : m_chans) ch = std::make_unique<Chan>();
  m_private_kmaps = params.get_bool("kmap.private");
  // Linux 6.15's global ASIDs need INVLPGB (cpu_feature_enabled) and PCID (choose_new_asid
  // answers ASID 0 first without it). jiffies for consider_global_asid's sample tick at
  // the timer's rate (noise.tick_hz, CONFIG_HZ).
  m_global_asids_on = params.get("machine.linux") == 6.15 && params.get_bool("machine.invlpgb") &&
                      m_pcid;
  m_broadcast_fix = params.get_int("root.broadcast_fix");
  double hz = params.get("noise.tick_hz") > 0 ? params.get("noise.tick_hz") : 250.0;
  m_cycles_per_jiffy = static_cast<Cycles>(std::llround(freq_mhz * 1e6 / hz));
  if (m_noise.tick()) {
    m_tick_period = static_cast<Cycles>(std::llround(freq_mhz * 1e6 / m_noise.tick_hz()));
    m_tick_cost = static_cast<Cycles>(params.get("cost.tick"));
    for (auto& c : m_cpus)  // each CPU's tick phase against the workload
      c->next_tick = m_noise.below(Noise::Tick, static_cast<uint64_t>(c->id), 0, m_tick_period);
  }
  m_template_generation.assign(m_program.mms.size(), 0);
  if (auto start = static_cast<uint32_t>(params.get("test.lru_clock_start"))) {
    m_llc->set_clock(start);
    for (auto& c : m_cpus) {
      for (Tlb* t : {&c->l1d, &c->l1i, &c->stlb}) t->set_clock(start);
      for (auto* p : {&c->psc_top, &c->psc_upper, &c->psc_pde}) p->set_clock(start);
      c->l1d_cache->set_clock(start);
      c->l2_cache->set_clock(start);
    }
  }
  boot();
  m_private_kmaps = m_private_kmaps && m_scheme->has_private_slots();
}

Engine::~Engine() = default;

void Engine::run() {
  for (size_t i = 0; i < m_program.tasks.size(); ++i) {
    const auto& tmpl = m_program.tasks[i];
    if (!tmpl.start) continue;
    Mm* mm = nullptr;
    if (tmpl.mm >= 0) {
      mm = template_instance(tmpl.mm, /*at_start=*/true);
    } else if (tmpl.mm == kMmFork) {
      throw std::invalid_argument("task '" + tmpl.name + "' has mm=fork but start=yes: "
                                  "declare it with start=no and start it with fork");
    }
    new_task(static_cast<int>(i), mm, nullptr);
  }
  draw_start_order();
  uint64_t polls = 0;
  for (;;) {
    Cpu* c = pick_cpu();
    // Sleepers whose time has come (or the earliest one, if every CPU is idle).
    if (!m_sleepers.empty() && (!c || m_sleepers.top().second->wake_time <= c->clock)) {
      Task* sleeper = m_sleepers.top().second;
      m_sleepers.pop();
      wake(sleeper, sleeper->wake_time);
      continue;
    }
    if (!c) break;
    step(*c);
    periodic_balance(*c);
    // Poll for Ctrl-C every few thousand steps (each step is up to 20k cycles).
    if (m_interrupt_check && ++polls % 4096 == 0 && m_interrupt_check()) throw Interrupted();
  }
  for (const auto& t : m_tasks)
    if (t->state == TaskState::Blocked)
      workload_error(t.get(), "still blocked when nothing else can run (deadlock): check its "
                              "wait/signal pairs");
  // The machine stops when its last CPU does: idle time up to that point.
  Cycles end = 0;
  for (auto& c : m_cpus) end = std::max(end, c->clock);
  for (auto& c : m_cpus)
    if (c->online) idle_until(*c, end);
}

// The CPU furthest behind that has something to run.
Engine::Cpu* Engine::pick_cpu() {
  Cpu* best = nullptr;
  for (auto& cp : m_cpus) {
    Cpu* c = cp.get();
    if (!c->online || (c->current == nullptr && c->runq.empty())) continue;
    if (!best || c->clock < best->clock) best = c;
  }
  return best;
}

void Engine::step(Cpu& c) {
  if (c.current == nullptr) schedule_next(c);
  if (c.current == nullptr) return;
  Cycles budget_end = c.clock + kStepCycles;
  while (c.current && c.clock < budget_end) {
    if (m_tick_period && c.clock >= c.next_tick) timer_tick(c);
    Task* t = c.current;
    if (!run_op(c, t)) break;
    if (c.current == t && c.clock - t->slice_start >= m_slice_cycles && !c.runq.empty()) {
      // Time slice over: preempt (a migrate-disabled task stays on this CPU's queue).
      t->state = TaskState::Runnable;
      c.current = nullptr;
      c.runq.push_back(t);
      schedule_next(c);
    }
  }
  if (c.current == nullptr) schedule_next(c);
}

double Engine::sim_seconds() const {
  Cycles most = 0;
  for (const auto& c : m_cpus) most = std::max(most, c->clock);
  return static_cast<double>(most) / static_cast<double>(m_cycles_per_second);
}

void Engine::charge(Cpu& c, Cat cat, Cycles cycles) {
  c.clock += cycles;
  c.n.cycles[static_cast<int>(cat)] += cycles;
}

// An idle CPU's clock brought forward to `when`; the time in between was idle.
void Engine::idle_until(Cpu& c, Cycles when) {
  if (c.clock >= when) return;
  c.n.cycles[static_cast<int>(Cat::Idle)] += when - c.clock;
  c.clock = when;
}

std::string Engine::task_label(const Task* t) const {
  if (!t) return "(idle)";
  return m_program.tasks[t->tmpl].name + "#" + std::to_string(t->id);
}

void Engine::workload_error(const Task* t, const std::string& what) const {
  std::string where = t ? "task " + task_label(t) : "workload";
  if (t && m_current_op >= 0) where += " op " + std::to_string(m_current_op);
  throw WorkloadError(where + ": " + what);
}

void Engine::log_vma(LogRecord::Kind kind, const Mm& mm, VirtAddr start, VirtAddr end,
                     uint8_t prot) {
  if (!m_record_log) return;
  LogRecord r{};
  r.kind = kind;
  r.mm = mm.id;
  r.va = start;
  r.end = end;
  r.access = prot;
  m_log.push_back(r);
}

}  // namespace percpu
