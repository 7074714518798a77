// Setup, the scheduler and the op interpreter.
#include "engine/engine.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "engine/engine_state.h"
#include "paging/pte.h"
#include "root/registry.h"

namespace percpu {

namespace {
// Kernel layout: top-level slots of init_mm's table (kernel half).
constexpr int kDirectMapSlot = 273;  // 0xffff888000000000 on 4-level: per-CPU areas, buffers
constexpr int kPkmapSlot = 500;      // the shared pkmap pool
constexpr int kFixmapSlot = 511;     // kmap_local fixmap slots, KM_MAX_IDX per CPU
// Kernel top-level slots kernel_pgd_add may fill (beyond what boot populated).
constexpr int kFirstVmallocSlot = 290;
constexpr int kLastVmallocSlot = 400;
constexpr uint64_t kPercpuAreaPages = 2;
constexpr uint64_t kKernelBufferPages = 16;
constexpr uint64_t kKernelBufferOffset = 1ull << 30;
constexpr uint64_t kPercpuPkmapOffset = 2ull << 20;  // inside the private per-CPU slot
constexpr size_t kPageCacheFrames = 4096;
// How long one CPU runs before the next is considered: keeps CPUs within a
// few microseconds of each other so that IPIs and wakeups interleave.
constexpr Cycles kStepCycles = 20000;
}  // namespace

const char* cat_name(Cat c) {
  static const char* names[] = {"user", "walk", "rootCopy", "lazyFault", "pageFault",
                                "flush", "ipi", "kmap", "percpuData", "ctxSwitch",
                                "syscall", "kernel", "idle", "other"};
  return names[static_cast<int>(c)];
}

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
      m_pt(m_mem, params.get_int("machine.paging_levels")),
      m_rng(static_cast<uint64_t>(params.get("machine.seed"))) {
  m_scheme_request = scheme;
  m_cost.load(params);
  m_llc = std::make_unique<Cache>(params.get_int("cache.llc.size_kib") * 1024ull,
                                  params.get_int("cache.llc.ways"));
  for (int i = 0; i < m_ncpus; ++i) m_cpus.push_back(std::make_unique<Cpu>(i, params, m_llc.get()));
  double freq = params.get("machine.freq_mhz");
  m_ticks_per_cycle = static_cast<Cycles>(std::llround(1e6 / freq));
  m_cycles_per_second = static_cast<Cycles>(freq * 1e6);
  double slice_us = params.get("sched.slice_us");
  if (slice_us == 0) {
    int factor_cpus = std::min(m_ncpus, 8);
    int log2 = 0;
    while ((2 << log2) <= factor_cpus) log2++;
    slice_us = 750.0 * (1 + log2);
  }
  m_slice_cycles = static_cast<Cycles>(slice_us * freq);
  double balance_us = params.get("sched.balance_us");
  if (balance_us == 0) balance_us = 1000.0 * m_ncpus;
  m_balance_cycles = static_cast<Cycles>(balance_us * freq);
  for (const auto& t : m_program.tasks) {
    bool any = false;
    for (int i = 0; i < m_ncpus; ++i) any |= t.cpus.test(i);
    if (!any)
      throw std::invalid_argument("task '" + t.name + "' may run on no CPU of this " +
                                  std::to_string(m_ncpus) + "-CPU machine: fix its cpus=");
  }
  m_chans.resize(m_program.chan_names.size());
  m_template_instance.assign(m_program.mms.size(), nullptr);
  for (auto& ch : m_chans) ch = std::make_unique<Chan>();
  m_private_kmaps = params.get_bool("kmap.private");
  boot();
  m_private_kmaps = m_private_kmaps && m_scheme->has_private_slots();
}

Engine::~Engine() = default;


Frame Engine::kernel_table_for(int slot, VirtAddr offset) {
  return m_pt.leaf_table(m_init_mm->pgd, pte::kernel_va(m_levels, slot, offset), nullptr);
}

void Engine::boot() {
  // init_mm and the kernel half every mm copies.
  auto init = std::make_unique<Mm>();
  init->id = 0;
  init->ctx_id = m_next_ctx_id++;
  init->pgd = m_mem.alloc(FrameUse::PageTable);
  m_init_mm = init.get();
  m_mms.push_back(std::move(init));
  uint64_t kflags = pte::kWritable | pte::kNoExec | (m_pti ? 0 : pte::kGlobal);
  for (int cpu = 0; cpu < m_ncpus; ++cpu) {
    for (uint64_t p = 0; p < kPercpuAreaPages; ++p)
      m_pt.map(m_init_mm->pgd,
               pte::kernel_va(m_levels, kDirectMapSlot, (cpu * kPercpuAreaPages + p) << kPageShift),
               m_mem.alloc(FrameUse::Data), kflags, nullptr);
    for (uint64_t p = 0; p < kKernelBufferPages; ++p)
      m_pt.map(m_init_mm->pgd,
               pte::kernel_va(m_levels, kDirectMapSlot,
                              kKernelBufferOffset + ((cpu * kKernelBufferPages + p) << kPageShift)),
               m_mem.alloc(FrameUse::Data), kflags, nullptr);
  }
  // Page tables for the fixmap kmap_local slots and the pkmap pool (entries set on use).
  for (int cpu = 0; cpu < m_ncpus; ++cpu)
    for (int idx = 0; idx < kKmapMaxIdx; idx += kEntriesPerTable)
      kernel_table_for(kFixmapSlot, static_cast<uint64_t>(cpu * kKmapMaxIdx + idx) << kPageShift);
  for (int cpu = 0; cpu < m_ncpus; ++cpu)
    kernel_table_for(kFixmapSlot, static_cast<uint64_t>(cpu * kKmapMaxIdx) << kPageShift);
  int pool = m_params.get_int("kmap.pkmap_entries");
  for (int i = 0; i < pool; i += kEntriesPerTable)
    kernel_table_for(kPkmapSlot, static_cast<uint64_t>(i) << kPageShift);
  m_pkmap_count.assign(pool, 0);
  for (size_t i = 0; i < kPageCacheFrames; ++i) m_page_cache.push_back(m_mem.alloc(FrameUse::Data));

  // Per-CPU chains for the private per-CPU slot: per-CPU data at offset 0 and
  // a per-CPU pkmap pool (used only by schemes with private slots).
  // PTI's user tables map no kernel data (the entry trampoline is not modelled).
  Frame init_user_pgd = m_pti ? m_mem.alloc(FrameUse::PageTable) : kNoFrame;
  RootEnv env{m_table_mem, m_levels, m_pti, m_ncpus, m_init_mm->pgd, init_user_pgd, {},
              m_params.get_bool("fault.skip_root_invalidate")};
  for (int cpu = 0; cpu < m_ncpus; ++cpu) {
    Frame scratch = m_mem.alloc(FrameUse::PageTable);
    m_percpu_scratch_roots.push_back(scratch);
    // The same frames as the stock per-CPU area: only the mapping differs.
    for (uint64_t p = 0; p < kPercpuAreaPages; ++p) {
      uint64_t leaf = m_pt.lookup(m_init_mm->pgd,
          pte::kernel_va(m_levels, kDirectMapSlot, (cpu * kPercpuAreaPages + p) << kPageShift));
      // Global like the stock mapping: every root of this CPU maps the same frame here.
      m_pt.map(scratch, pte::kernel_va(m_levels, kPercpuDataSlot, p << kPageShift),
               pte::frame(leaf), kflags, nullptr);
    }
    for (int i = 0; i < pool; i += kEntriesPerTable)
      m_pt.leaf_table(scratch,
                      pte::kernel_va(m_levels, kPercpuDataSlot,
                                     kPercpuPkmapOffset + (static_cast<uint64_t>(i) << kPageShift)),
                      nullptr);
    env.percpu_data_top.push_back(pte::frame(m_mem.read(scratch, kPercpuDataSlot)));
    m_cpus[cpu]->pkmap_count.assign(pool, 0);
  }
  m_scheme = make_root_scheme(m_scheme_request, env);
  m_root_pool_peak_pages = 0;

  // Every CPU starts in init_mm, slot 0, idle (lazy).
  for (auto& cp : m_cpus) {
    Cpu& c = *cp;
    m_init_mm->ever_on_cpu.set(c.id);
    start_in_init_mm(c);
  }
  m_root_pool_peak_pages = m_scheme->root_pages_live();
}

// A CPU coming up (boot or cpu_online): init_mm loaded in ASID slot 0, idle (lazy).
void Engine::start_in_init_mm(Cpu& c) {
  c.tlbstate = CpuTlbState(m_init_mm->ctx_id);
  c.loaded_mm = m_init_mm;
  m_init_mm->cpumask.set(c.id);
  RootSelection sel = m_scheme->select_root(c.id, 0, m_init_mm->view(), true);
  c.kroot = sel.kernel_root;
  c.uroot = sel.user_root;
  set_pcids(c, 0);
  c.tlbstate.set_lazy(true);
}

// ---------------------------------------------------------------- mms and tasks

std::string Engine::task_label(const Task* t) const {
  if (!t) return "(idle)";
  return m_program.tasks[t->tmpl].name + "#" + std::to_string(t->id);
}

void Engine::workload_error(const Task* t, const std::string& what) const {
  std::string where = t ? "task " + task_label(t) : "workload";
  if (t && m_current_op >= 0) where += " op " + std::to_string(m_current_op);
  throw std::runtime_error(where + ": " + what);
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

Mm* Engine::new_mm(int template_id, const Mm* copy_from) {
  auto mm = std::make_unique<Mm>();
  mm->id = static_cast<int>(m_mms.size());
  mm->template_id = template_id;
  mm->ctx_id = m_next_ctx_id++;
  mm->tlb_gen = 1;
  // pgd_alloc: a new top level with the kernel half copied (both schemes pay it).
  mm->pgd = m_mem.alloc(FrameUse::PageTable);
  auto& src = m_mem.table(m_init_mm->pgd);
  std::copy(src.begin() + pte::kFirstKernelSlot, src.end(),
            m_mem.table(mm->pgd).begin() + pte::kFirstKernelSlot);
  if (m_pti) mm->user_pgd = m_mem.alloc(FrameUse::PageTable);
  m_mms_created++;
  if (m_record_log) {
    LogRecord r{};
    r.kind = copy_from ? LogRecord::CopyMm : LogRecord::NewMm;
    r.mm = mm->id;
    r.other_mm = copy_from ? copy_from->id : -1;
    m_log.push_back(r);
  }
  if (copy_from) {
    mm->vmas = copy_from->vmas;
    mm->vma_by_name = copy_from->vma_by_name;
  } else if (template_id >= 0) {
    for (const Vma& v : m_program.mms[template_id].vmas) {
      mm->vmas[v.start] = v;
      mm->vma_by_name[v.name] = v.start;
      log_vma(LogRecord::MapVma, *mm, v.start, v.end, v.prot);
    }
  }
  Mm* raw = mm.get();
  m_mms.push_back(std::move(mm));
  return raw;
}

// The instance of mm template `tmpl` that tasks naming it share (its threads).
Mm* Engine::template_instance(int tmpl) {
  if (!m_template_instance[tmpl]) m_template_instance[tmpl] = new_mm(tmpl, nullptr);
  return m_template_instance[tmpl];
}

Engine::Task* Engine::new_task(int template_id, Mm* mm, Cpu* parent_cpu) {
  auto t = std::make_unique<Task>();
  t->id = static_cast<int>(m_tasks.size());
  t->tmpl = template_id;
  t->mm = mm;
  if (mm) mm->users++;
  const auto& tmpl = m_program.tasks[template_id];
  for (int i = 0; i < m_ncpus; ++i)
    if (tmpl.cpus.test(i)) t->allowed.set(i);
  t->rng = Rng(m_rng.next());
  Task* raw = t.get();
  m_tasks.push_back(std::move(t));
  Cycles now = parent_cpu ? parent_cpu->clock : 0;
  enqueue(raw, parent_cpu, now);
  return raw;
}

// ---------------------------------------------------------------- scheduler

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
  return best;
}

void Engine::enqueue(Task* t, Cpu* preferred, Cycles when) {
  Cpu* c = place(t, preferred ? preferred : t->cpu);
  if (!c) workload_error(t, "no online CPU can run it");
  t->cpu = c;
  t->state = TaskState::Runnable;
  t->runnable_since = when;
  if (c->current == nullptr && c->runq.empty() && c->clock < when) {
    c->cycles[static_cast<int>(Cat::Idle)] += when - c->clock;
    c->clock = when;
  }
  c->runq.push_back(t);
}

void Engine::wake(Task* t, Cycles when) { enqueue(t, t->cpu, when); }

void Engine::block_current(Cpu& c, TaskState state) {
  Task* t = c.current;
  t->state = state;
  t->blocked_since = c.clock;
  c.current = nullptr;
  if (state == TaskState::Sleeping) m_sleepers.push_back(t);
}

void Engine::context_switch(Cpu& c, Task* prev, Task* next) {
  c.ctx_switches++;
  charge(c, Cat::CtxSwitch, m_cost.ctx_switch);
  kmap_sched_out(c, prev);
  if (next->mm) switch_mm(c, next->mm);
  else enter_lazy(c);
  kmap_sched_in(c, next);
}

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
      if (idle.clock < busy.clock) {
        idle.cycles[static_cast<int>(Cat::Idle)] += busy.clock - idle.clock;
        idle.clock = busy.clock;
      }
      t->cpu = &idle;
      idle.runq.push_back(t);
      idle.balance_pulls++;
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
    c.idle_pulls++;
    return true;
  }
  return false;
}

void Engine::schedule_next(Cpu& c) {
  if (c.runq.empty()) pull_task(c);
  if (c.runq.empty()) {
    if (!c.tlbstate.is_lazy()) enter_lazy(c);  // idle keeps the mm: lazy TLB
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

Engine::Cpu* Engine::pick_cpu() {
  Cpu* best = nullptr;
  for (auto& cp : m_cpus) {
    Cpu* c = cp.get();
    if (!c->online || (c->current == nullptr && c->runq.empty())) continue;
    if (!best || c->clock < best->clock) best = c;
  }
  return best;
}

void Engine::run() {
  for (size_t i = 0; i < m_program.tasks.size(); ++i) {
    const auto& tmpl = m_program.tasks[i];
    if (!tmpl.start) continue;
    Mm* mm = nullptr;
    if (tmpl.mm >= 0) {
      mm = template_instance(tmpl.mm);
    } else if (tmpl.mm == kMmFork) {
      throw std::invalid_argument("task '" + tmpl.name + "' has mm=fork but start=yes: "
                                  "declare it with start=no and start it with fork");
    }
    new_task(static_cast<int>(i), mm, nullptr);
  }
  uint64_t polls = 0;
  for (;;) {
    Cpu* c = pick_cpu();
    // Sleepers whose time has come (or the earliest one, if every CPU is idle).
    Task* sleeper = nullptr;
    for (Task* s : m_sleepers)
      if (!sleeper || s->wake_time < sleeper->wake_time) sleeper = s;
    if (sleeper && (!c || sleeper->wake_time <= c->clock)) {
      m_sleepers.erase(std::find(m_sleepers.begin(), m_sleepers.end(), sleeper));
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
  for (auto& c : m_cpus) {
    if (c->clock < end && c->online) c->cycles[static_cast<int>(Cat::Idle)] += end - c->clock;
    if (c->online) c->clock = end;
  }
}

void Engine::step(Cpu& c) {
  if (c.current == nullptr) schedule_next(c);
  if (c.current == nullptr) return;
  Cycles budget_end = c.clock + kStepCycles;
  while (c.current && c.clock < budget_end) {
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

void Engine::exit_task(Cpu& c, Task* t) {
  charge(c, Cat::Other, m_cost.exit);
  if (!t->kmap_local.empty() || !t->kmaps.empty())
    workload_error(t, "exits holding kmap mappings: unmap them first");
  t->state = TaskState::Exited;
  c.current = nullptr;
  Mm* mm = t->mm;
  t->mm = nullptr;
  if (mm && --mm->users == 0) destroy_mm(c, mm);
  try_finish_offline(c.clock);
}

void Engine::destroy_mm(Cpu& c, Mm* mm) {
  // exit_mmap: unmap everything, free the page tables, flush with freed_tables
  // (lazy CPUs holding the mm switch to init_mm).
  do_munmap(c, *mm, 0, pte::level_span(m_levels) * pte::kUserSlots);
  for (auto& cp : m_cpus) {
    Cpu& other = *cp;
    if (other.loaded_mm == mm) {
      if (&other != &c) other.lazy_switch_to_init++;
      switch_to_init_mm(other);
    }
  }
  m_scheme->on_mm_destroyed(mm->view());
  m_mem.free(mm->pgd);
  if (mm->user_pgd) m_mem.free(mm->user_pgd);
  mm->alive = false;
  log_vma(LogRecord::DropMm, *mm, 0, 0, 0);
  if (mm->template_id >= 0 && m_template_instance[mm->template_id] == mm)
    m_template_instance[mm->template_id] = nullptr;
}

void Engine::do_munmap(Cpu& c, Mm& mm, VirtAddr start, VirtAddr end) {
  UnmapResult res = m_pt.unmap(mm.pgd, start, end, true);
  for (int slot : res.top_slots_cleared) {
    mm.top_slots_populated--;
    if (m_pti) m_mem.write(mm.user_pgd, slot, 0);
  }
  charge(c, Cat::Kernel, (res.pages + res.tables_freed) * m_cost.pte_write);
  if (res.pages > 0 || res.freed_tables())
    flush_tlb_mm_range(c, mm, start, end, res.freed_tables(), res.top_slots_cleared);
}

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

// ---------------------------------------------------------------- ops

namespace {
uint8_t prot_of(int64_t p) { return static_cast<uint8_t>(p); }
}  // namespace

bool Engine::run_op(Cpu& c, Task* t) {
  const auto& ops = m_program.tasks[t->tmpl].ops;
  if (t->pc >= ops.size()) {
    m_current_op = static_cast<int>(t->pc);
    exit_task(c, t);
    return false;
  }
  const Op& op = ops[t->pc];
  m_current_op = static_cast<int>(t->pc);
  Mm* mm = t->mm;
  auto need_mm = [&]() -> Mm& {
    if (!mm) workload_error(t, "a kernel thread has no address space for this op");
    return *mm;
  };
  auto vma_of = [&](int64_t name) -> Vma& {
    Mm& m = need_mm();
    auto it = m.vma_by_name.find(static_cast<int>(name));
    if (it == m.vma_by_name.end())
      workload_error(t, "no VMA named '" + m_program.vma_names[name] + "' in its mm: mmap it first");
    return m.vmas.at(it->second);
  };
  switch (op.code) {
    case OpCode::Access: {
      op_access(c, t, op, c.clock + kStepCycles);
      if (t->progress < op.c) return true;  // the rest in a later step
      t->progress = 0;
      break;
    }
    case OpCode::Compute:
      charge(c, Cat::User, static_cast<Cycles>(op.a));
      break;
    case OpCode::Syscall:
      c.syscalls++;
      charge(c, Cat::Syscall, m_cost.syscall);
      kernel_entry_exit(c, Cat::Syscall);
      charge(c, Cat::Kernel, static_cast<Cycles>(op.a));
      break;
    case OpCode::Mmap: {
      Mm& m = need_mm();
      uint64_t size = (static_cast<uint64_t>(op.c) + kPageSize - 1) & ~(kPageSize - 1);
      VirtAddr start = static_cast<VirtAddr>(op.b);
      if (op.b < 0) {  // auto: below the lowest VMA above 4 GiB, like mmap_base
        start = 0x7f0000000000ull;
        for (auto it = m.vmas.rbegin(); it != m.vmas.rend(); ++it)
          if (it->second.start >= (4ull << 30) && it->second.start < 0x7ff000000000ull)
            start = std::min(start, it->second.start);
        start -= size;
      }
      if (m.vma_by_name.count(static_cast<int>(op.a)))
        workload_error(t, "VMA '" + m_program.vma_names[op.a] + "' is already mapped");
      for (const auto& [s, v] : m.vmas)
        if (start < v.end && v.start < start + size)
          workload_error(t, "mmap of '" + m_program.vma_names[op.a] + "' overlaps VMA '" +
                                m_program.vma_names[v.name] + "'");
      m.vmas[start] = Vma{start, start + size, prot_of(op.d), static_cast<int>(op.a)};
      m.vma_by_name[static_cast<int>(op.a)] = start;
      log_vma(LogRecord::MapVma, m, start, start + size, prot_of(op.d));
      charge(c, Cat::Syscall, m_cost.syscall);
      break;
    }
    case OpCode::Munmap:
    case OpCode::Brk:
    case OpCode::Mprotect: {
      Vma& v = vma_of(op.a);
      Mm& m = *mm;
      Vma copy = v;
      charge(c, Cat::Syscall, m_cost.syscall);
      if (op.code == OpCode::Mprotect) {
        VirtAddr s = copy.start + static_cast<uint64_t>(op.b);
        VirtAddr e = op.c < 0 ? copy.end : std::min(copy.end, s + static_cast<uint64_t>(op.c));
        if (s >= e) break;
        // Split the VMA into up to three parts so that protections stay exact.
        m.vmas.erase(copy.start);
        if (copy.start < s) m.vmas[copy.start] = Vma{copy.start, s, copy.prot, -1};
        m.vmas[s] = Vma{s, e, prot_of(op.d), copy.name};
        if (e < copy.end) m.vmas[e] = Vma{e, copy.end, copy.prot, -1};
        m.vma_by_name[copy.name] = s;
        log_vma(LogRecord::ProtectVma, m, s, e, prot_of(op.d));
        uint64_t flags = pte::kUser;
        if (op.d & kProtWrite) flags |= pte::kWritable;
        if (!(op.d & kProtExec)) flags |= pte::kNoExec;
        uint64_t changed = m_pt.protect(m.pgd, s, e, flags);
        charge(c, Cat::Kernel, changed * m_cost.pte_write);
        if (changed) flush_tlb_mm_range(c, m, s, e, false);
        break;
      }
      VirtAddr s, e;
      if (op.code == OpCode::Brk) {
        uint64_t size = (static_cast<uint64_t>(op.c) + kPageSize - 1) & ~(kPageSize - 1);
        VirtAddr new_end = copy.start + size;
        if (new_end >= copy.end) {
          for (const auto& [vs, other] : m.vmas)
            if (vs != copy.start && copy.end < other.end && other.start < new_end)
              workload_error(t, "brk would run into another VMA");
          v.end = new_end;
          log_vma(LogRecord::MapVma, m, copy.start, new_end, copy.prot);
          break;
        }
        s = new_end;
        e = copy.end;
        v.end = new_end;
        log_vma(LogRecord::UnmapVma, m, s, e, 0);
      } else {
        s = copy.start + static_cast<uint64_t>(op.b);
        e = op.c < 0 ? copy.end : std::min(copy.end, s + static_cast<uint64_t>(op.c));
        if (s >= e) break;
        m.vmas.erase(copy.start);
        m.vma_by_name.erase(copy.name);
        if (copy.start < s) {
          m.vmas[copy.start] = Vma{copy.start, s, copy.prot, copy.name};
          m.vma_by_name[copy.name] = copy.start;
        }
        if (e < copy.end) {
          m.vmas[e] = Vma{e, copy.end, copy.prot, copy.start < s ? -1 : copy.name};
          if (copy.start >= s) m.vma_by_name[copy.name] = e;
        }
        log_vma(LogRecord::UnmapVma, m, s, e, 0);
      }
      do_munmap(c, m, s, e);
      break;
    }
    case OpCode::Repeat:
      if (op.a <= 0) {
        t->pc = static_cast<size_t>(op.b) + 1;
        return true;
      }
      t->loops.emplace_back(t->pc, op.a);
      break;
    case OpCode::End: {
      auto& top = t->loops.back();
      if (--top.second > 0) {
        t->pc = top.first + 1;
        return true;
      }
      t->loops.pop_back();
      break;
    }
    case OpCode::Yield: {
      t->pc++;
      charge(c, Cat::Syscall, m_cost.syscall);
      if (c.runq.empty()) return true;
      t->state = TaskState::Runnable;
      c.current = nullptr;
      enqueue(t, &c, c.clock);
      schedule_next(c);
      return false;
    }
    case OpCode::Sleep:
      t->pc++;
      charge(c, Cat::Syscall, m_cost.syscall);
      t->wake_time = c.clock + static_cast<Cycles>(op.a);
      block_current(c, TaskState::Sleeping);
      schedule_next(c);
      return false;
    case OpCode::Wait: {
      Chan& ch = *m_chans[op.a];
      charge(c, Cat::Syscall, m_cost.syscall);
      t->pc++;
      if (ch.count > 0) {
        ch.count--;
        return true;
      }
      ch.waiters.push_back(t);
      block_current(c, TaskState::Blocked);
      schedule_next(c);
      return false;
    }
    case OpCode::Signal: {
      Chan& ch = *m_chans[op.a];
      charge(c, Cat::Syscall, m_cost.syscall);
      ch.count += op.b;
      while (ch.count > 0 && !ch.waiters.empty()) {
        Task* w = ch.waiters.front();
        ch.waiters.pop_front();
        ch.count--;
        charge(c, Cat::Syscall, m_cost.wakeup);
        wake(w, c.clock);
      }
      break;
    }
    case OpCode::Spawn: {
      const auto& tmpl = m_program.tasks[op.a];
      Mm* child_mm = nullptr;
      if (tmpl.mm >= 0) {
        child_mm = template_instance(tmpl.mm);
      } else if (tmpl.mm == kMmFork) {
        workload_error(t, "spawn of '" + tmpl.name + "' which has mm=fork: use fork");
      }
      charge(c, Cat::Other, tmpl.mm == kMmKernel ? m_cost.clone_thread
                                  : (child_mm == mm ? m_cost.clone_thread : m_cost.exec));
      t->pc++;
      new_task(static_cast<int>(op.a), child_mm, &c);
      return true;
    }
    case OpCode::Fork: {
      Mm& parent = need_mm();
      charge(c, Cat::Other, m_cost.fork);
      Mm* child = new_mm(m_program.tasks[op.a].mm >= 0 ? m_program.tasks[op.a].mm : -1, &parent);
      // dup_mmap write-protects the parent's pages for COW and calls flush_tlb_mm,
      // which x86 defines with freed_tables = true (asm/tlbflush.h).
      flush_tlb_mm_range(c, parent, 0, pte::level_span(m_levels) * pte::kUserSlots, true);
      t->pc++;
      new_task(static_cast<int>(op.a), child, &c);
      return true;
    }
    case OpCode::Exec: {
      charge(c, Cat::Other, m_cost.exec);
      if (!t->kmap_local.empty()) workload_error(t, "exec while holding kmap_local mappings");
      Mm* fresh = new_mm(static_cast<int>(op.a), nullptr);
      Mm* old = t->mm;
      t->mm = fresh;
      fresh->users++;
      switch_mm(c, fresh);
      if (old && --old->users == 0) destroy_mm(c, old);
      break;
    }
    case OpCode::Exit:
      exit_task(c, t);
      return false;
    case OpCode::KmapLocal:
    case OpCode::KunmapLocal:
      for (int64_t i = 0; i < std::max<int64_t>(op.a, 1); ++i)
        op_kmap_local(c, t, op.code == OpCode::KmapLocal);
      break;
    case OpCode::Kmap:
    case OpCode::Kunmap:
      for (int64_t i = 0; i < std::max<int64_t>(op.a, 1); ++i) op_kmap(c, t, op.code == OpCode::Kmap);
      break;
    case OpCode::Kcopy:
      op_kcopy(c, t, static_cast<uint64_t>(op.a));
      break;
    case OpCode::PercpuAccess:
      op_percpu_access(c, static_cast<uint64_t>(std::max<int64_t>(op.a, 1)));
      break;
    case OpCode::Migrate: {
      t->pc++;
      if (op.a < 0 || op.a >= m_ncpus)
        workload_error(t, "migrate to CPU " + std::to_string(op.a) + " which this machine lacks");
      if (!m_cpus[op.a]->online || m_cpus[op.a]->going_offline) {
        m_migrate_refused++;  // sched_setaffinity to an offline CPU fails with EINVAL
        return true;
      }
      if (t->migrate_disabled > 0) {
        t->pending_migrate = static_cast<int>(op.a);  // applied at migrate_enable
        return true;
      }
      if (op.a == c.id) return true;
      t->allowed.reset();
      t->allowed.set(op.a);
      t->state = TaskState::Runnable;
      c.current = nullptr;
      charge(c, Cat::Syscall, m_cost.syscall);
      enqueue(t, m_cpus[op.a].get(), c.clock);
      schedule_next(c);
      return false;
    }
    case OpCode::Affinity: {
      std::bitset<kMaxCpus> mask;
      for (int i = 0; i < m_ncpus; ++i) {
        int64_t word = i < 64 ? op.a : i < 128 ? op.b : i < 192 ? op.c : op.d;
        if ((static_cast<uint64_t>(word) >> (i % 64)) & 1) mask.set(i);
      }
      if (!mask.any()) workload_error(t, "affinity names no CPU of this machine");
      t->allowed = mask;
      charge(c, Cat::Syscall, m_cost.syscall);
      if (!mask.test(c.id) && t->migrate_disabled == 0) {
        t->pc++;
        t->state = TaskState::Runnable;
        c.current = nullptr;
        enqueue(t, nullptr, c.clock);
        schedule_next(c);
        return false;
      }
      break;
    }
    case OpCode::MigrateDisable:
      t->migrate_disabled++;
      break;
    case OpCode::MigrateEnable:
      if (t->migrate_disabled == 0) workload_error(t, "migrate_enable without migrate_disable");
      if (--t->migrate_disabled == 0) {
        try_finish_offline(c.clock);
        bool must_move = c.going_offline || !t->allowed.test(c.id) || t->pending_migrate >= 0;
        if (must_move) {
          Cpu* target = t->pending_migrate >= 0 ? m_cpus[t->pending_migrate].get() : nullptr;
          if (target) {
            t->allowed.reset();
            t->allowed.set(target->id);
          }
          t->pending_migrate = -1;
          t->pc++;
          t->state = TaskState::Runnable;
          c.current = nullptr;
          enqueue(t, target, c.clock);
          try_finish_offline(c.clock);
          schedule_next(c);
          return false;
        }
      }
      break;
    case OpCode::CpuOffline: {
      int id = static_cast<int>(op.a);
      if (id < 0 || id >= m_ncpus) workload_error(t, "cpu_offline of a CPU this machine lacks");
      Cpu& target = *m_cpus[id];
      t->pc++;
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
    case OpCode::KernelPgdAdd: {
      // sync_global_pgds: a new kernel top-level entry goes into every pgd (and root).
      int slot = -1;
      for (int s = kFirstVmallocSlot; s < kLastVmallocSlot && slot < 0; ++s)
        if (!pte::present(m_mem.read(m_init_mm->pgd, s))) slot = s;
      if (slot < 0) workload_error(t, "no free kernel top-level slot left for kernel_pgd_add");
      uint64_t entry = pte::make_table(m_mem.alloc(FrameUse::PageTable));
      Cycles spent = m_cost.zero_page;
      uint64_t pgds = 0;
      for (auto& m : m_mms) {
        if (!m->alive) continue;
        m_mem.write(m->pgd, slot, entry);
        spent += m_cost.pte_write + c.path.access((m->pgd << kPageShift) + slot * 8);
        pgds++;
      }
      int roots = m_scheme->on_kernel_slot_added(slot, entry);
      spent += roots * m_cost.pte_write;
      m_kernel_slot_adds++;
      m_kernel_slot_pgd_writes += pgds;
      m_kernel_slot_root_writes += static_cast<uint64_t>(roots);
      charge(c, Cat::Kernel, spent);
      break;
    }
    case OpCode::CpuOnline: {
      int id = static_cast<int>(op.a);
      if (id < 0 || id >= m_ncpus) workload_error(t, "cpu_online of a CPU this machine lacks");
      Cpu& target = *m_cpus[id];
      if (!target.online) {
        target.online = true;
        target.clock = std::max(target.clock, c.clock);
        start_in_init_mm(target);
      }
      charge(c, Cat::Other, m_cost.syscall);
      break;
    }
  }
  t->pc++;
  return true;
}

void Engine::op_access(Cpu& c, Task* t, const Op& op, Cycles budget_end) {
  Mm& mm = *t->mm;
  auto it = mm.vma_by_name.find(static_cast<int>(op.a));
  if (it == mm.vma_by_name.end())
    workload_error(t, "no VMA named '" + m_program.vma_names[op.a] + "' in its mm: mmap it first");
  const Vma& v = mm.vmas.at(it->second);
  uint64_t size = v.end - v.start;
  Access kind = static_cast<Access>(op.flags & 3);
  bool random = op.flags & kAccessRandom;
  uint64_t stride = static_cast<uint64_t>(op.d);
  uint64_t lines = size >> kLineShift;
  uint64_t next_off = (static_cast<uint64_t>(op.b) + static_cast<uint64_t>(t->progress) * stride) % size;
  uint64_t step = stride % size;
  bool runs = !random && step > 0 && step < kPageSize;
  while (t->progress < op.c && c.clock < budget_end) {
    uint64_t off = random ? t->rng.below(lines) << kLineShift : next_off;
    uint64_t n = 1;
    if (runs) {
      // Every reference left in this page (and before the VMA's end) in one go.
      uint64_t in_page = kPageSize - ((v.start + off) & (kPageSize - 1));
      n = std::min<uint64_t>({static_cast<uint64_t>(op.c - t->progress), (in_page - 1) / step + 1,
                              (size - off - 1) / step + 1});
    }
    bool segv = false;
    memory_access_run(c, v.start + off, step, n, kind, Cat::User, &segv);
    if (segv) n = 1;  // a refused reference: the next one tries again
    t->progress += static_cast<int64_t>(n);
    if (!random) {
      next_off += n * step;
      while (next_off >= size) next_off -= size;
    }
  }
}

// ---------------------------------------------------------------- kmap

// The page a kmap maps: each task cycles through its own slice of the page
// cache (its "file"), so which frames a task copies does not depend on how
// CPUs interleave, and schemes stay comparable.
Frame Engine::page_cache_page(Task* t) {
  constexpr uint64_t kPagesPerTask = 64;
  uint64_t slot = static_cast<uint64_t>(t->id) * kPagesPerTask + (t->kmap_cursor++ % kPagesPerTask);
  return m_page_cache[slot % m_page_cache.size()];
}

VirtAddr Engine::kmap_local_va(Cpu& c, size_t idx) const {
  if (m_private_kmaps) return pte::kernel_va(m_levels, kPrivateKmapSlot, idx << kPageShift);
  return pte::kernel_va(m_levels, kFixmapSlot,
                        (static_cast<uint64_t>(c.id) * kKmapMaxIdx + idx) << kPageShift);
}

void Engine::install_kmap_local(Cpu& c, Task* t, size_t idx) {
  auto& slot = t->kmap_local[idx];
  VirtAddr va = kmap_local_va(c, idx);
  Frame table;
  uint64_t flags = pte::kWritable | pte::kNoExec;
  if (m_private_kmaps) {
    int allocated = 0;
    table = m_scheme->private_kmap_table(c.id, c.tlbstate.loaded_asid(), &allocated);
    c.private_tables += allocated;
    m_private_tables_peak = std::max(m_private_tables_peak, m_scheme->private_table_pages_live());
    charge(c, Cat::Kmap, allocated * (m_cost.zero_page + m_cost.pte_write));
    slot.asid = c.tlbstate.loaded_asid();
    slot.root_gen = m_scheme->root_generation(c.id, slot.asid);
  } else {
    table = m_pt.leaf_table(m_init_mm->pgd, va, nullptr);
    if (!m_pti) flags |= pte::kGlobal;
  }
  int index = pte::index(va, 1);
  m_mem.write(table, index, pte::make(slot.page, flags));
  charge(c, Cat::Kmap, m_cost.pte_write + c.path.access((table << kPageShift) + index * 8));
  slot.installed = true;
  slot.cpu = c.id;
}

void Engine::uninstall_kmap_local(Cpu& c, Task* t, size_t idx, bool flush) {
  auto& slot = t->kmap_local[idx];
  VirtAddr va = kmap_local_va(c, idx);
  Frame table = m_private_kmaps ? m_scheme->private_kmap_table(c.id, c.tlbstate.loaded_asid(), nullptr)
                                : m_pt.leaf_table(m_init_mm->pgd, va, nullptr);
  int index = pte::index(va, 1);
  m_mem.write(table, index, 0);
  Cycles spent = m_cost.pte_write + c.path.access((table << kPageShift) + index * 8);
  if (flush) {
    // flush_tlb_one_kernel: a local INVLPG, no IPI (the current PCID; global entries too).
    flush_page(c, va, c.kpcid);
    c.invlpgs++;
    spent += m_cost.invlpg;
    // Under PTI kernel entries are not global, so the stock shared slot may be cached
    // under other PCIDs too: Linux sets invalidate_other. A root-private slot is not.
    if (!m_private_kmaps && m_pti && m_pcid) c.tlbstate.set_invalidate_other();
  }
  charge(c, Cat::Kmap, spent);
  slot.installed = false;
}

void Engine::op_kmap_local(Cpu& c, Task* t, bool map) {
  charge(c, Cat::Kmap, m_cost.kmap_local);
  if (map) {
    if (t->kmap_local.size() >= static_cast<size_t>(kKmapMaxIdx))
      workload_error(t, "more than KM_MAX_IDX (16) kmap_local mappings held");
    if (t->kmap_local.empty()) t->migrate_disabled++;  // kmap_local implies migrate_disable
    if (m_private_kmaps) claim_private_kmaps(c, t);
    Task::KmapLocal slot;
    slot.page = page_cache_page(t);
    t->kmap_local.push_back(slot);
    c.kmap_local_maps++;
    install_kmap_local(c, t, t->kmap_local.size() - 1);
    return;
  }
  if (t->kmap_local.empty()) workload_error(t, "kunmap_local without a mapping");
  uninstall_kmap_local(c, t, t->kmap_local.size() - 1, true);
  t->kmap_local.pop_back();
  if (t->kmap_local.empty() && --t->migrate_disabled == 0) try_finish_offline(c.clock);
}

// __kmap_local_sched_out: stock kernels clear every mapping the outgoing task
// holds (each with a local INVLPG) and re-install them at switch-in. With
// private per-root kmaps the mappings stay in the root of the task's mm; only
// another thread of the same mm using that root must first clear them, which
// claim_private_kmaps does lazily, whoever ran in between.
void Engine::kmap_sched_out(Cpu& c, Task* prev) {
  if (m_private_kmaps || !prev || prev->state == TaskState::Exited || prev->kmap_local.empty())
    return;
  for (size_t i = prev->kmap_local.size(); i-- > 0;) {
    // prev may have left this CPU since it last ran here (the offline push).
    if (!prev->kmap_local[i].installed || prev->kmap_local[i].cpu != c.id) continue;
    c.kmap_saves++;
    uninstall_kmap_local(c, prev, i, true);
  }
}

void Engine::claim_private_kmaps(Cpu& c, Task* t) {
  Asid asid = c.tlbstate.loaded_asid();
  uint64_t gen = m_scheme->root_generation(c.id, asid);
  Task*& owner = c.kmap_owner[asid];
  if (owner && owner != t) {
    for (size_t i = owner->kmap_local.size(); i-- > 0;) {
      auto& slot = owner->kmap_local[i];
      if (!slot.installed || slot.asid != asid) continue;
      if (slot.root_gen == gen) {
        c.kmap_saves++;
        uninstall_kmap_local(c, owner, i, true);
      } else {
        slot.installed = false;  // that root generation is gone, and its mappings with it
      }
    }
  }
  owner = t;
}

void Engine::kmap_sched_in(Cpu& c, Task* next) {
  if (next->kmap_local.empty()) return;
  if (m_private_kmaps) claim_private_kmaps(c, next);
  for (size_t i = 0; i < next->kmap_local.size(); ++i) {
    auto& slot = next->kmap_local[i];
    if (m_private_kmaps && slot.installed) {
      // Still there if the root has not been reallocated since.
      Asid asid = c.tlbstate.loaded_asid();
      if (slot.asid == asid && slot.root_gen == m_scheme->root_generation(c.id, asid)) continue;
      slot.installed = false;
    }
    if (slot.installed) continue;
    c.kmap_restores++;
    install_kmap_local(c, next, i);
  }
}

// Pool entry i: in the shared pkmap area, or in this CPU's pool in its private slot.
VirtAddr Engine::pkmap_va(int i) const {
  uint64_t off = static_cast<uint64_t>(i) << kPageShift;
  if (m_private_kmaps) return pte::kernel_va(m_levels, kPercpuDataSlot, kPercpuPkmapOffset + off);
  return pte::kernel_va(m_levels, kPkmapSlot, off);
}

// kmap(): the stock pkmap pool is global; when it wraps, flush_all_zero_pkmaps
// flushes the whole pool on every CPU. With private slots each CPU has its
// own pool and a wrap flushes only this CPU (every PCID, via invalidate_other).
void Engine::op_kmap(Cpu& c, Task* t, bool map) {
  charge(c, Cat::Kmap, m_cost.kmap);
  bool per_cpu = m_private_kmaps;
  std::vector<int>& count = per_cpu ? c.pkmap_count : m_pkmap_count;
  int& last = per_cpu ? c.last_pkmap : m_last_pkmap;
  Frame root = per_cpu ? m_percpu_scratch_roots[c.id] : m_init_mm->pgd;
  int pool = static_cast<int>(count.size());
  if (!map) {
    if (t->kmaps.empty()) workload_error(t, "kunmap without a kmap");
    int e = t->kmaps.back();
    t->kmaps.pop_back();
    count[e]--;  // 1 means unmapped but maybe still in TLBs: cleared at the next wrap
    if (per_cpu && t->kmaps.empty() && --t->migrate_disabled == 0) try_finish_offline(c.clock);
    return;
  }
  int found = -1;
  for (int tries = 0; tries < pool; ++tries) {
    last = (last + 1) % pool;
    if (last == 0) {
      // flush_all_zero_pkmaps: clear entries with count 1, then flush.
      m_pkmap_wraps++;
      c.pkmap_flushes++;
      for (int i = 0; i < pool; ++i) {
        if (count[i] != 1) continue;
        count[i] = 0;
        VirtAddr va = pkmap_va(i);
        m_mem.write(m_pt.leaf_table(root, va, nullptr), pte::index(va, 1), 0);
        charge(c, Cat::Kmap, m_cost.pte_write);
      }
      if (per_cpu) {
        // The pool is this CPU's alone: flush its entries under every PCID here
        // (INVPCID all non-global), no IPI and no new ASIDs or roots.
        flush_all_nonglobal(c);
        charge(c, Cat::Kmap, m_cost.cr3_flush);
      } else {
        flush_kernel_range_all(c);
      }
    }
    if (count[last] == 0) {
      found = last;
      break;
    }
  }
  if (found < 0) workload_error(t, "the pkmap pool is exhausted: kunmap before mapping more");
  count[found] = 2;
  VirtAddr va = pkmap_va(found);
  Frame table = m_pt.leaf_table(root, va, nullptr);
  uint64_t flags = pte::kWritable | pte::kNoExec | (per_cpu || m_pti ? 0 : pte::kGlobal);
  m_mem.write(table, pte::index(va, 1), pte::make(page_cache_page(t), flags));
  charge(c, Cat::Kmap, m_cost.pte_write);
  if (per_cpu && t->kmaps.empty()) t->migrate_disabled++;  // a per-CPU mapping pins the task
  t->kmaps.push_back(found);
  c.kmaps++;
}

void Engine::op_kcopy(Cpu& c, Task* t, uint64_t bytes) {
  VirtAddr src;
  if (!t->kmap_local.empty()) src = kmap_local_va(c, t->kmap_local.size() - 1);
  else if (!t->kmaps.empty()) src = pkmap_va(t->kmaps.back());
  else workload_error(t, "kcopy needs a kmap_local or kmap mapping");
  VirtAddr dst = pte::kernel_va(m_levels, kDirectMapSlot,
                                kKernelBufferOffset + ((c.id * kKernelBufferPages) << kPageShift));
  for (uint64_t off = 0; off < bytes; off += kLineSize) {
    uint64_t in_page = off % kPageSize;
    memory_access(c, src + in_page, Access::Load, Mode::Kernel, Cat::Kernel, nullptr);
    memory_access(c, dst + (off % (kKernelBufferPages * kPageSize)), Access::Store, Mode::Kernel,
                  Cat::Kernel, nullptr);
  }
}

void Engine::op_percpu_access(Cpu& c, uint64_t count) {
  bool fixed = m_scheme->has_private_slots();
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t off = (i * kLineSize) % (kPercpuAreaPages * kPageSize);
    VirtAddr va = fixed ? pte::kernel_va(m_levels, kPercpuDataSlot, off)
                        : pte::kernel_va(m_levels, kDirectMapSlot,
                                         ((c.id * kPercpuAreaPages) << kPageShift) + off);
    memory_access(c, va, Access::Load, Mode::Kernel, Cat::PercpuData, nullptr);
    if (!fixed) charge(c, Cat::PercpuData, m_cost.gs_prefix);
    c.percpu_accesses++;
  }
}

// ---------------------------------------------------------------- stats

std::vector<Stat> Engine::stats() const {
  std::vector<Stat> out;
  auto add = [&](const std::string& name, double value, const std::string& desc,
                 const std::string& unit) { out.push_back({name, value, desc, unit}); };
  Cycles end = 0;
  for (const auto& c : m_cpus) end = std::max(end, c->clock);
  add("simSeconds", static_cast<double>(end * m_ticks_per_cycle) / 1e12,
      "Number of seconds simulated", "Second");
  add("simTicks", static_cast<double>(end * m_ticks_per_cycle), "Number of ticks simulated", "Tick");
  add("simFreq", 1e12, "The number of ticks per simulated second", "(Tick/Second)");
  add("system.clk_domain.clock", static_cast<double>(m_ticks_per_cycle), "Clock period in ticks",
      "Tick");
  add("system.memRefs", static_cast<double>(m_mem_refs), "simulated memory references", "Count");
  for (const auto& cp : m_cpus) {
    const Cpu& c = *cp;
    std::string p = "system.cpu" + std::to_string(c.id) + ".";
    auto u = [](uint64_t v) { return static_cast<double>(v); };
    Cycles total = 0;
    for (Cycles x : c.cycles) total += x;
    add(p + "numCycles", u(total), "number of cpu cycles simulated", "Cycle");
    for (int k = 0; k < static_cast<int>(Cat::Count); ++k)
      add(p + "cycles::" + cat_name(static_cast<Cat>(k)), u(c.cycles[k]),
          "cycles spent, by what they were spent on", "Cycle");
    add(p + "cycles::total", u(total), "cycles spent, by what they were spent on", "Cycle");
    add(p + "ctxSwitches", u(c.ctx_switches), "context switches", "Count");
    add(p + "mmSwitches", u(c.mm_switches), "switches to a different mm (switch_mm)", "Count");
    add(p + "mmu.dtb.rdAccesses", u(c.dtb_rd_acc), "DTB read accesses", "Count");
    add(p + "mmu.dtb.rdMisses", u(c.dtb_rd_miss), "DTB read misses", "Count");
    add(p + "mmu.dtb.wrAccesses", u(c.dtb_wr_acc), "DTB write accesses", "Count");
    add(p + "mmu.dtb.wrMisses", u(c.dtb_wr_miss), "DTB write misses", "Count");
    add(p + "mmu.itb.rdAccesses", 0, "ITB read accesses (fetches count as writes, as in gem5)",
        "Count");
    add(p + "mmu.itb.rdMisses", 0, "ITB read misses", "Count");
    add(p + "mmu.itb.wrAccesses", u(c.itb_acc), "ITB accesses (instruction fetches)", "Count");
    add(p + "mmu.itb.wrMisses", u(c.itb_miss), "ITB misses", "Count");
    add(p + "mmu.stlb.hits", u(c.stlb_hits), "L1 TLB misses that hit the STLB", "Count");
    add(p + "mmu.stlb.misses", u(c.stlb_misses), "STLB misses (each starts a walk)", "Count");
    add(p + "mmu.walker.walks", u(c.walks), "page walks", "Count");
    add(p + "mmu.walker.walkCycles", u(c.walk_cycles), "cycles spent walking", "Cycle");
    add(p + "mmu.walker.memReads", u(c.walk_reads), "page-table entries read by walks", "Count");
    add(p + "mmu.walker.l1dMisses", u(c.walk_l1_misses), "walk reads that missed the L1D",
        "Count");
    add(p + "mmu.walker.pscHits", u(c.psc_hits), "walks that skipped levels via the PSCs",
        "Count");
    add(p + "l1d.misses", u(c.l1d_cache->misses), "L1D misses (data and walks)", "Count");
    add(p + "l1d.hits", u(c.l1d_cache->hits), "L1D hits (data and walks)", "Count");
    add(p + "l2.misses", u(c.l2_cache->misses), "L2 misses", "Count");
    add(p + "dataL1dMisses", u(c.data_l1_misses), "data accesses that missed the L1D", "Count");
    add(p + "userRefs", u(c.user_refs), "user-mode memory references", "Count");
    add(p + "kernelRefs", u(c.kernel_refs), "kernel-mode memory references", "Count");
    uint64_t allocs_total = 0;
    static const char* causes[] = {"none", "firstUse", "evicted", "flushedInactive", "noPcid"};
    for (int k = 1; k < kNumNewAsidCauses; ++k) {
      allocs_total += c.root_allocs[k];
      add(p + "percpu.rootAllocs::" + causes[k], u(c.root_allocs[k]),
          "per-(cpu, asid) roots allocated, by cause", "Count");
    }
    add(p + "percpu.rootAllocs::total", u(allocs_total), "per-(cpu, asid) roots allocated, by cause",
        "Count");
    add(p + "percpu.lazyFaults", u(c.lazy_faults), "lazy top-level fault-ins", "Count");
    add(p + "percpu.rootCopyBytes", u(c.root_copy_bytes), "bytes of page table copied into roots",
        "Byte");
    add(p + "percpu.rootCopyCycles", u(c.root_copy_cycles), "cycles allocating and copying roots",
        "Cycle");
    add(p + "percpu.staleEntriesDropped", u(c.stale_root_drops),
        "root entries dropped by flushes that freed page tables", "Count");
    add(p + "percpu.privateTablesAllocated", u(c.private_tables),
        "page tables allocated for root-private kmap areas", "Count");
    add(p + "pageFaults", u(c.page_faults), "page faults (demand and protection)", "Count");
    add(p + "segfaults", u(c.segfaults), "accesses refused with SIGSEGV (skipped)", "Count");
    add(p + "cr3Writes", u(c.cr3_writes), "CR3 writes by switch_mm", "Count");
    add(p + "cr3Flushes", u(c.cr3_flushes), "CR3 writes that flushed the PCID", "Count");
    add(p + "invlpg", u(c.invlpgs), "INVLPG instructions", "Count");
    add(p + "tlbFlush.requests", u(c.flush_requests), "flush_tlb_mm_range calls", "Count");
    add(p + "tlbFlush.full", u(c.flushes_full), "full flushes done here", "Count");
    add(p + "tlbFlush.partial", u(c.flushes_partial), "per-page flushes done here", "Count");
    add(p + "ipi.sent", u(c.ipis_sent), "flush IPIs sent", "Count");
    add(p + "ipi.received", u(c.ipis_received), "flush IPIs received", "Count");
    add(p + "ipi.skippedLazy", u(c.ipis_skipped_lazy), "IPIs not sent to lazy CPUs", "Count");
    add(p + "ipi.skippedOtherMm", u(c.ipis_skipped_other),
        "IPIs not sent to CPUs running another mm (should_flush_tlb)", "Count");
    add(p + "lazySwitchToInit", u(c.lazy_switch_to_init),
        "lazy CPUs switched to init_mm by a freed-tables flush", "Count");
    add(p + "kmap.localMaps", u(c.kmap_local_maps), "kmap_local mappings made", "Count");
    add(p + "kmap.saves", u(c.kmap_saves), "kmap_local mappings cleared at switch-out", "Count");
    add(p + "kmap.restores", u(c.kmap_restores), "kmap_local mappings re-installed at switch-in",
        "Count");
    add(p + "kmap.kmaps", u(c.kmaps), "kmap() mappings made", "Count");
    add(p + "kmap.poolFlushes", u(c.pkmap_flushes), "pkmap pool wraps flushed from here", "Count");
    add(p + "percpuAccesses", u(c.percpu_accesses), "per-CPU data accesses", "Count");
    add(p + "syscalls", u(c.syscalls), "system calls (syscall op)", "Count");
    add(p + "sched.idlePulls", u(c.idle_pulls),
        "tasks pulled from a busier CPU when this one went idle (newidle balance)", "Count");
    add(p + "sched.balancePulls", u(c.balance_pulls),
        "tasks this idle CPU took from a busy one at a periodic balance", "Count");
  }
  add("system.llc.misses", static_cast<double>(m_llc->misses), "LLC misses", "Count");
  add("system.llc.hits", static_cast<double>(m_llc->hits), "LLC hits", "Count");
  uint64_t bound_pages = static_cast<uint64_t>(m_ncpus) * kTlbNrDynAsids * (m_pti ? 2 : 1);
  add("system.percpu.rootPoolPeakBytes", static_cast<double>(m_root_pool_peak_pages * kPageSize),
      "peak bytes of per-(cpu, asid) root pages", "Byte");
  add("system.percpu.rootPoolBoundBytes", static_cast<double>(bound_pages * kPageSize),
      "the proposal's bound: 4 KiB x cpus x 6 (x2 with PTI)", "Byte");
  add("system.percpu.privateTablePeakBytes", static_cast<double>(m_private_tables_peak * kPageSize),
      "peak bytes of root-private kmap page tables", "Byte");
  add("system.percpu.maxLazyFaultsPerRoot",
      static_cast<double>(m_scheme->max_lazy_faults_per_generation()),
      "most lazy faults in one root generation", "Count");
  add("system.percpu.lazyFaultBound", pte::kUserSlots,
      "the proposal's bound on lazy faults per root generation", "Count");
  add("system.percpu.maxLazyFaultsPerMm", static_cast<double>(m_max_mm_lazy_faults),
      "most lazy faults of one mm over its lifetime", "Count");
  add("system.percpu.boundViolations", static_cast<double>(m_bound_violations),
      "times a proposal bound was exceeded", "Count");
  add("system.mmsCreated", static_cast<double>(m_mms_created), "address spaces created", "Count");
  add("system.kmap.poolWraps", static_cast<double>(m_pkmap_wraps), "pkmap pool wraps", "Count");
  add("system.kernelPgd.adds", static_cast<double>(m_kernel_slot_adds),
      "kernel top-level entries added (sync_global_pgds)", "Count");
  add("system.kernelPgd.pgdWrites", static_cast<double>(m_kernel_slot_pgd_writes),
      "mm pgds the new kernel entries were written into", "Count");
  add("system.kernelPgd.rootWrites", static_cast<double>(m_kernel_slot_root_writes),
      "per-(cpu, asid) roots the new kernel entries were written into", "Count");
  add("system.hotplug.offlines", static_cast<double>(m_offlines), "CPUs taken offline", "Count");
  add("system.hotplug.waitCycles", static_cast<double>(m_hotplug_wait_cycles),
      "cycles cpu_offline waited for migrate-disabled tasks", "Cycle");
  add("system.hotplug.pinnedAtOffline", static_cast<double>(m_pinned_at_offline),
      "migrate-disabled tasks on a CPU when its offline began", "Count");
  add("system.sched.migrateRefused", static_cast<double>(m_migrate_refused),
      "migrations refused because the target CPU was offline", "Count");
  add("system.sched.affinityBroken", static_cast<double>(m_affinity_broken),
      "tasks whose allowed CPUs all went offline", "Count");
  add("system.checker.violations", static_cast<double>(m_violation_count),
      "invariant violations found by the checker", "Count");
  add("system.dataPagesPeak", static_cast<double>(m_mem.peak_in_use(FrameUse::Data)),
      "peak data frames in use (distinct touched pages and kernel pages)", "Count");
  add("system.physFrames.pageTables", static_cast<double>(m_mem.frames_in_use(FrameUse::PageTable)),
      "page-table frames in use at the end", "Count");
  return out;
}

}  // namespace percpu
