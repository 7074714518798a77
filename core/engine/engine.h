// The embedded engine: CPUs with TLBs, paging-structure caches and caches,
// Linux's ASID and flush logic, a scheduler and the op interpreter, around
// one root scheme. One Engine is one run of one scheme.
//
// Why one class: the rooms below are Linux's subsystems, which in the kernel
// are functions over one shared state (per-CPU variables, current, the mms),
// calling each other in every direction (the scheduler calls switch_mm, a
// flush IPI calls back into switch_mm, munmap calls the flush, the fault path
// calls the walk, hotplug calls the scheduler). Classes per room would each
// need the whole state and each other, so the engine is one object whose
// methods are split by room, one file each; what the rooms share (the CPUs',
// tasks' and channels' state) is engine/engine_state.h. Each group of members
// below names the file that defines it:
//   engine/engine.cc          construction, the run loop, helpers
//   engine/interpreter.cc     the op interpreter (run_op)
//   engine/mmu.cc             translation: TLB lookups, the walk, memory accesses,
//                             TLB invalidation instructions
//   engine/root_copy_cost.cc  what a root allocation and its copy cost
//   engine/checker.cc         the invariant checks and violation reports
//   engine/stats.cc           the statistics, derived from the counter lists
//   linux/boot.cc             the kernel layout at boot, a CPU coming up in init_mm
//   linux/switch_mm.cc        switch_mm_irqs_off, choose_new_asid's caller, lazy TLB
//   linux/pti_entry.cc        PTI's CR3 switch at kernel entry and exit
//   linux/flush_tlb.cc        flush_tlb_mm_range, flush_tlb_func (the IPI receiver),
//                             flush_tlb_kernel_range
//   linux/global_asid.cc      Linux 6.15: global ASIDs, INVLPGB broadcast flushes, and
//                             the roots' fixes for them (root.broadcast_fix)
//   linux/fault.cc            the page fault and the lazy top-level fault
//   linux/mmap.cc             mmap, munmap, mprotect, brk (VMA splitting)
//   linux/fork.cc             mm and task creation: mm_alloc/pgd_alloc, dup_mmap, clone
//   linux/exec.cc             exec: a fresh mm
//   linux/exit.cc             do_exit, exit_mmap
//   linux/kmap.cc             kmap_local and kmap (mm/highmem.c)
//   linux/percpu_data.cc      this_cpu accesses
//   linux/sync_global_pgds.cc kernel-half changes reaching every pgd and root
//   sched/runqueue.cc         run queues, placement, context switch
//   sched/balance.cc          newidle and periodic balance
//   sched/affinity.cc         migrate, affinity, migrate_disable/enable
//   sched/hotplug.cc          cpu_offline, cpu_online
#pragma once
#include <bitset>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <queue>
#include <string>
#include <vector>

#include "cache/cache.h"
#include "cache/overlap.h"
#include "common/mutation.h"
#include "common/rng.h"
#include "config/params.h"
#include "engine/asid_event.h"
#include "engine/cost_cache.h"
#include "engine/cycle_category.h"
#include "engine/noise.h"
#include "engine/program.h"
#include "linux/asid.h"
#include "linux/global_asid.h"
#include "linux/mm.h"
#include "mem/phys_mem.h"
#include "mem/phys_table_memory.h"
#include "paging/page_table.h"
#include "psc/psc.h"
#include "root/i_root_scheme.h"
#include "root/names.h"
#include "tlb/tlb.h"

namespace percpu {

struct Stat {
  std::string name;
  double value;
  std::string desc;
  std::string unit;
};

struct Violation {
  std::string what;
  int cpu = -1;
  std::string task;
  int op_index = -1;
  VirtAddr va = 0;
};

// One line of the translation log the reference-model tests replay.
struct LogRecord {
  enum Kind : uint8_t { Access, MapVma, UnmapVma, ProtectVma, NewMm, CopyMm, DropMm } kind;
  int mm = -1;
  int other_mm = -1;  // CopyMm: the parent
  uint64_t va = 0, end = 0;  // address, or VMA range
  uint8_t access = 0;        // Access: 0 load, 1 store, 2 fetch;  VMAs: prot
  int64_t frame = 0;         // Access: frame, or -1 for SIGSEGV
  bool writable = false;
};

// How long one CPU runs before the next is considered: keeps CPUs within a
// few microseconds of each other so that IPIs and wakeups interleave.
constexpr Cycles kStepCycles = 20000;

class Engine {
 public:
  Engine(const Params& params, const std::string& scheme, Program program, bool check,
         bool record_log = false);
  ~Engine();

  // Runs the program to completion. Throws WorkloadError (engine/errors.h) for workload
  // errors (deadlock, KM_MAX_IDX exceeded, ...) with a message naming the task,
  // and Interrupted when the interrupt check (polled now and then) says so.
  void run();
  struct Interrupted : std::exception {
    const char* what() const noexcept override { return "interrupted"; }
  };
  void set_interrupt_check(std::function<bool()> check) { m_interrupt_check = std::move(check); }

  std::vector<Stat> stats() const;
  const std::vector<Violation>& violations() const { return m_violations; }
  uint64_t violation_count() const { return m_violation_count; }
  const std::vector<LogRecord>& log() const { return m_log; }
  uint64_t memory_references() const { return m_mem_refs; }
  // The ASID event log (engine/asid_event.h); set before run().
  void record_asid_events(bool on) { m_record_asid_events = on; }
  const std::vector<AsidEvent>& asid_events() const { return m_asid_events; }
  // Simulated time so far: the clock of the CPU furthest ahead (for progress reports).
  double sim_seconds() const;

  struct Cpu;
  struct Task;

 private:
  enum class TaskState : uint8_t { Runnable, Running, Blocked, Sleeping, Exited };
  enum class Mode : uint8_t { User, Kernel };
  struct Chan;
  class LazyFaultHooks;

  // engine/engine.cc
  Cpu* pick_cpu();
  void step(Cpu& c);
  void charge(Cpu& c, Cat cat, Cycles cycles);
  void idle_until(Cpu& c, Cycles when);
  void log_vma(LogRecord::Kind kind, const Mm& mm, VirtAddr start, VirtAddr end, uint8_t prot);
  void log_asid(AsidEvent::Kind kind, int cpu, uint64_t ctx_id, uint64_t tlb_gen = 0) {
    if (m_record_asid_events) m_asid_events.push_back({kind, cpu, ctx_id, tlb_gen});
  }
  [[noreturn]] void workload_error(const Task* t, const std::string& what) const;
  std::string task_label(const Task* t) const;

  // engine/interpreter.cc
  bool run_op(Cpu& c, Task* t);  // false: the task left the CPU
  void op_access(Cpu& c, Task* t, const Op& op, Cycles budget_end);

  // engine/mmu.cc
  bool translate(Cpu& c, VirtAddr va, Access kind, Mode mode, Translation& out);
  bool translate_slow(Cpu& c, VirtAddr va, Access kind, Mode mode, Translation& out);
  bool walk(Cpu& c, VirtAddr va, Pcid pcid, Frame root, Mode mode, Translation& out);
  Cycles memory_access(Cpu& c, VirtAddr va, Access kind, Mode mode, Cat cat, bool* segv,
                       Translation* used = nullptr);
  void memory_access_run(Cpu& c, VirtAddr va, uint64_t stride, uint64_t n, Access kind, Cat cat,
                         bool* segv);
  void flush_pcid(Cpu& c, Pcid pcid);
  void flush_page(Cpu& c, VirtAddr va, Pcid pcid);
  void flush_current_asid(Cpu& c);
  void flush_everything(Cpu& c);
  void flush_all_nonglobal(Cpu& c);

  // engine/root_copy_cost.cc
  void charge_root_copy(Cpu& c, const RootSelection& sel, NewAsidCause cause);

  // engine/checker.cc
  void check_translation(Cpu& c, VirtAddr va, const Translation& got);
  void check_root_matches_pgd(Cpu& c, Asid asid, const Mm& mm, const char* when);
  void check_bound(Cpu& c, bool within, const char* what, VirtAddr va);
  void violation(Cpu& c, const std::string& what, VirtAddr va);

  // linux/boot.cc
  void boot();
  Frame kernel_table_for(int slot, VirtAddr va);
  void start_in_init_mm(Cpu& c);

  // linux/switch_mm.cc
  void switch_mm_irqs_off(Cpu& c, Mm* next);
  void load_global_asid(Cpu& c, Mm* next, size_t ev);  // ev: 1 + its event's index, or 0
  void enter_lazy_tlb(Cpu& c);
  void switch_to_init_mm(Cpu& c);
  void load_new_mm_cr3(Cpu& c, const RootSelection& sel, Asid asid, bool flush);
  void set_pcids(Cpu& c, Asid asid);

  // linux/pti_entry.cc
  void kernel_entry_exit(Cpu& c, Cat cat);
  void system_call(Cpu& c);  // entry, cost.syscall, exit (engine/interpreter.cc)

  // linux/flush_tlb.cc
  // cleared_slots: the mm's top-level entries this change cleared (freed tables).
  void flush_tlb_mm_range(Cpu& self, Mm& mm, VirtAddr start, VirtAddr end, bool freed_tables,
                          const std::vector<int>& cleared_slots = {});
  void flush_tlb_func(Cpu& c, Mm& mm, uint64_t new_gen, VirtAddr start, VirtAddr end, bool full,
                      const std::vector<int>& cleared_slots, bool local);
  void flush_tlb_kernel_range(Cpu& self);
  // The part of flush_tlb_mm_range that sends IPIs: flush_tlb_func here and on the
  // CPUs of mm_cpumask that should_flush_tlb picks.
  void flush_tlb_multi(Cpu& self, Mm& mm, uint64_t new_gen, VirtAddr start, VirtAddr end,
                       bool full, bool freed_tables, const std::vector<int>& cleared_slots,
                       bool trim);
  // Linux 6.15 (docs/linux-2025.md): INVLPGB + TLBSYNC for an mm with a global ASID,
  // the ASID's assignment, the IPIs to CPUs not yet on it, its release; and how
  // per-CPU roots learn of freed tables no handler tells them (root.broadcast_fix).
  void broadcast_tlb_flush(Cpu& self, Mm& mm, uint64_t new_gen, VirtAddr start, VirtAddr end,
                           bool full, bool freed_tables, const std::vector<int>& cleared_slots);
  void finish_asid_transition(Cpu& self, Mm& mm, uint64_t new_gen, VirtAddr start,
                              VirtAddr end, bool full, bool freed_tables,
                              const std::vector<int>& cleared_slots);
  void consider_global_asid(Cpu& self, Mm& mm);
  bool mm_active_cpus_exceeds(const Mm& mm, int threshold) const;
  void use_global_asid(Cpu& self, Mm& mm);
  void mm_free_global_asid(Mm& mm);
  bool mm_needs_global_asid(const Mm& mm, Asid asid) const {
    return m_global_asids_on && mm.global_asid != 0 && asid != mm.global_asid;
  }
  Cycles fix_roots_after_broadcast(Cpu& self, Mm& mm, const std::vector<int>& cleared_slots);

  // linux/fault.cc
  bool do_user_addr_fault(Cpu& c, Mm& mm, VirtAddr va, Access kind);
  bool lazy_top_level_fault(Cpu& c, VirtAddr va, int slot, PhysAddr entry_pa);

  // linux/mmap.cc
  void do_mmap(Cpu& c, Task* t, const Op& op);
  void do_munmap_vma(Cpu& c, Task* t, const Op& op);
  void do_mprotect(Cpu& c, Task* t, const Op& op);
  void do_brk(Cpu& c, Task* t, const Op& op);
  void do_munmap(Cpu& c, Mm& mm, VirtAddr start, VirtAddr end);
  Vma& vma_of(Task* t, int64_t name);

  // linux/fork.cc
  // key: the image's noise key (Noise::child_key), for its ASLR draws.
  Mm* new_mm(int template_id, const Mm* copy_from, uint64_t key = 0);
  Mm* template_instance(int tmpl, bool at_start = false);
  static constexpr uint64_t kLauncherKey = 0x1a0c4e5ull;  // the start processes' shared ASLR key
  // parent: the task that started it (nullptr for the program's start tasks).
  Task* new_task(int template_id, Mm* mm, Cpu* parent_cpu, Task* parent = nullptr,
                 bool runnable = true);
  void reap(Task* t);  // frees an exited task (linux/exit.cc)
  void do_fork(Cpu& c, Task* t, int child_template);
  void do_spawn(Cpu& c, Task* t, int child_template, bool waiting = false);
  void start_waiting(Cpu& c, Task* t);

  // linux/exec.cc
  void do_exec(Cpu& c, Task* t, int mm_template);
  void randomize_layout(Mm& mm, uint64_t key);  // ASLR (docs/noise.md)
  void populate_vma(Mm& mm, const Vma& v);      // `vma ... populate` (linux/fork.cc)

  // linux/exit.cc
  void do_exit(Cpu& c, Task* t);
  void exit_mmap(Cpu& c, Mm* mm);

  // linux/kmap.cc
  void kmap_local_page(Cpu& c, Task* t);
  void kunmap_local(Cpu& c, Task* t);
  void kmap(Cpu& c, Task* t);
  void kunmap(Cpu& c, Task* t);
  void kcopy(Cpu& c, Task* t, uint64_t bytes);
  void kmap_local_sched_out(Cpu& c, Task* prev);
  void kmap_local_sched_in(Cpu& c, Task* next);
  void claim_private_kmaps(Cpu& c, Task* t);
  void install_kmap_local(Cpu& c, Task* t, size_t idx);
  void uninstall_kmap_local(Cpu& c, Task* t, size_t idx, bool flush);
  VirtAddr kmap_local_va(Cpu& c, size_t idx) const;
  Frame page_cache_page(Task* t);
  VirtAddr pkmap_va(int i) const;

  // linux/percpu_data.cc
  void this_cpu_read(Cpu& c, uint64_t count);

  // linux/sync_global_pgds.cc
  void sync_global_pgds(Cpu& c, Task* t);

  // sched/runqueue.cc
  void schedule_next(Cpu& c);
  void context_switch(Cpu& c, Task* prev, Task* next);
  void enqueue(Task* t, Cpu* preferred, Cycles when);
  Cpu* place(Task* t, Cpu* preferred);
  // place, or the workload error when no online CPU may run the task.
  Cpu* place_or_fail(Task* t, Cpu* preferred);
  void block_current(Cpu& c, TaskState state);
  void wake(Task* t, Cycles when);
  void requeue_current(Cpu& c, Task* t, Cpu* preferred);
  // noise.start_order: each CPU's queue of start tasks in an order drawn per seed.
  void draw_start_order();

  // engine/noise.cc: the timer tick (the noise sources' other uses sit where they act)
  void timer_tick(Cpu& c);
  // A fixed kernel-path cost as task t pays it this time (noise.kernel_jitter).
  Cycles kernel_cost(Task* t, Cycles cycles);

  // sched/balance.cc
  bool pull_task(Cpu& c);
  void periodic_balance(Cpu& busy);

  // sched/affinity.cc
  bool sched_migrate(Cpu& c, Task* t, int cpu);
  bool sched_setaffinity(Cpu& c, Task* t, const Op& op);
  bool sched_migrate_enable(Cpu& c, Task* t);

  // sched/hotplug.cc
  bool cpu_offline(Cpu& c, Task* t, int cpu);
  void cpu_online(Cpu& c, Task* t, int cpu);
  void try_finish_offline(Cycles now);

  Params m_params;
  CostCache m_cost;
  // A root allocation's copy, its misses overlapped (cache.l1d.mshrs, cache.copy_issue_cycles).
  OverlappedAccesses m_copy_burst{1, 0};
  std::string m_scheme_request;
  Program m_program;
  bool m_check;
  bool m_record_log;
  int m_ncpus;
  int m_levels;
  bool m_pcid;
  bool m_pti;
  bool m_private_kmaps;
  // machine.linux=6.15 with machine.invlpgb and PCID: global ASIDs and broadcast flushes.
  bool m_global_asids_on = false;
  int m_broadcast_fix = 0;        // root.broadcast_fix
  Cycles m_cycles_per_jiffy = 0;  // consider_global_asid's sample
  GlobalAsidSpace m_global_asids;

  PhysMem m_mem;
  PhysTableMemory m_table_mem{m_mem};  // what the root scheme sees of m_mem
  PageTable m_pt;
  std::unique_ptr<IRootScheme> m_scheme;
  std::unique_ptr<Cache> m_llc;
  std::vector<std::unique_ptr<Cpu>> m_cpus;
  std::vector<std::unique_ptr<Mm>> m_mms;
  std::vector<std::unique_ptr<Task>> m_tasks;
  std::vector<std::unique_ptr<Chan>> m_chans;
  std::vector<Mm*> m_template_instance;  // shared instance per mm template (threads)
  Mm* m_init_mm = nullptr;
  uint64_t m_next_ctx_id = 1;
  Rng m_rng;
  Noise m_noise;
  Cycles m_tick_period = 0;  // cycles between timer ticks; 0: no tick (noise.tick_hz)
  Cycles m_tick_cost = 0;
  std::vector<uint64_t> m_template_generation;  // instances made per mm template (noise keys)

  // Kernel layout (built at boot).
  Frame m_fixmap_pt = kNoFrame;               // shared kmap_local slots (stock)
  std::vector<Frame> m_pkmap_pts;             // shared pkmap pool page tables
  std::vector<Frame> m_percpu_scratch_roots;  // per CPU: holds the private per-CPU chain
  std::vector<Frame> m_page_cache;            // frames kmaps map
  std::vector<int> m_pkmap_count;             // shared pool (Linux pkmap_count)
  int m_last_pkmap = 0;

  // System-wide counters, each declared once with its stat (system.<name>),
  // in the order stats.txt lists them (engine/stats.cc): _A before the CPUs'
  // stats; after them the shared LLC's (PERCPU_SYSTEM_CACHES, read like
  // PERCPU_CPU_CACHES in engine_state.h), the root pool's peak and the bounds;
  // then _B.
#define PERCPU_SYSTEM_COUNTERS_A(X) X(m_mem_refs, "memRefs", "simulated memory references", "Count")
#define PERCPU_SYSTEM_CACHES(X) X(m_llc, "llc", "LLC", "", kAllCacheCounters)
#define PERCPU_SYSTEM_COUNTERS_B(X)                                                          \
  X(m_max_mm_lazy_faults, "percpu.maxLazyFaultsPerMm",                                      \
    "most lazy faults of one mm over its lifetime", "Count")                                 \
  X(m_bound_violations, "percpu.boundViolations", "times a proposal bound was exceeded",    \
    "Count")                                                                                 \
  X(m_mms_created, "mmsCreated", "address spaces created", "Count")                         \
  X(m_pkmap_wraps, "kmap.poolWraps", "pkmap pool wraps", "Count")                           \
  X(m_kernel_slot_adds, "kernelPgd.adds", "kernel top-level entries added (sync_global_pgds)", \
    "Count")                                                                                 \
  X(m_kernel_slot_pgd_writes, "kernelPgd.pgdWrites",                                        \
    "mm pgds the new kernel entries were written into", "Count")                             \
  X(m_kernel_slot_root_writes, PERCPU_ROOT_STAT(KernelSyncs),                              \
    "per-(cpu, asid) roots the new kernel entries were written into", "Count")               \
  X(m_offlines, "hotplug.offlines", "CPUs taken offline", "Count")                          \
  X(m_hotplug_wait_cycles, "hotplug.waitCycles",                                            \
    "cycles cpu_offline waited for migrate-disabled tasks", "Cycle")                         \
  X(m_pinned_at_offline, "hotplug.pinnedAtOffline",                                         \
    "migrate-disabled tasks on a CPU when its offline began", "Count")                       \
  X(m_migrate_refused, "sched.migrateRefused",                                              \
    "migrations refused because the target CPU was offline", "Count")                        \
  X(m_affinity_broken, "sched.affinityBroken", "tasks whose allowed CPUs all went offline", \
    "Count")                                                                                 \
  X(m_violation_count, PERCPU_ROOT_STAT(CheckerViolations),                                 \
    "invariant violations found by the checker",                                             \
    "Count")                                                                                 \
  X(m_global_asids_assigned, "globalAsid.assigned",                                         \
    "global ASIDs handed out (Linux 6.15, use_global_asid)", "Count")                        \
  X(m_global_asids_peak, "globalAsid.peakInUse", "most global ASIDs held at once", "Count")  \
  X(m_global_asid_resets, "globalAsid.resets",                                              \
    "global ASID space resets (reset_global_asid_space: INVLPGB of every PCID)", "Count")   \
  X(m_global_root_pages_peak, "percpu.globalRootPagesPeak",                                 \
    "peak root pages of (cpu, global asid) pairs, beyond the proposal's 6 per CPU", "Count") \
  X(m_noise_ticks, "noise.ticks", "timer ticks taken on busy CPUs (noise.tick_hz)", "Count") \
  X(m_noise_work_cycles, "noise.workCycles",                                                \
    "cycles of compute and in-kernel syscall work after jitter (equal across schemes)",      \
    "Cycle")                                                                                 \
  X(m_noise_slack_cycles, "noise.sleepSlackCycles",                                         \
    "cycles sleeps ended late by timer slack (equal across schemes)", "Cycle")               \
  X(m_noise_aslr_images, "noise.aslrImages", "images laid out by ASLR", "Count")            \
  X(m_noise_wake_draws, "noise.wakeTieDraws",                                               \
    "placements decided at random among equally loaded CPUs", "Count")                      \
  X(m_noise_start_draws, "noise.startOrderDraws",                                           \
    "CPUs whose start tasks first run in an order drawn per seed (noise.start_order)", "Count")
#define PERCPU_DECLARE_SYSTEM_COUNTER(field, name, desc, unit) uint64_t field = 0;
  PERCPU_SYSTEM_COUNTERS_A(PERCPU_DECLARE_SYSTEM_COUNTER)
  PERCPU_SYSTEM_COUNTERS_B(PERCPU_DECLARE_SYSTEM_COUNTER)
#undef PERCPU_DECLARE_SYSTEM_COUNTER

  // Bookkeeping.
  std::vector<Violation> m_violations;
  std::vector<LogRecord> m_log;
  bool m_record_asid_events = false;
  std::vector<AsidEvent> m_asid_events;
  uint64_t m_root_pool_peak_pages = 0;
  uint64_t m_private_tables_peak = 0;
  Cycles m_slice_cycles = 0;
  Cycles m_balance_cycles = 0;
  Cycles m_cycles_per_second = 0;
  Cycles m_ticks_per_cycle = 333;
  int m_current_op = -1;
  // Sleepers by (wake time, order of going to sleep): the earliest first, ties
  // in the order they slept.
  struct SleeperLater {
    bool operator()(const std::pair<std::pair<Cycles, uint64_t>, Task*>& a,
                    const std::pair<std::pair<Cycles, uint64_t>, Task*>& b) const {
      return a.first > b.first;
    }
  };
  std::priority_queue<std::pair<std::pair<Cycles, uint64_t>, Task*>,
                      std::vector<std::pair<std::pair<Cycles, uint64_t>, Task*>>, SleeperLater>
      m_sleepers;
  uint64_t m_sleep_seq = 0;
  uint64_t m_live_tasks = 0;  // m_tasks holds only these (exited ones are reaped)
  uint64_t m_next_task_id = 0;
  int m_next_mm_id = 1;  // init_mm is 0; ids are never reused (the translation log's names)
  std::function<bool()> m_interrupt_check;
  std::vector<std::pair<Task*, int>> m_offline_waiters;  // task, cpu going offline
};

}  // namespace percpu
