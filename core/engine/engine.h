// The embedded engine: CPUs with TLBs, paging-structure caches and caches,
// Linux's ASID and flush logic, a scheduler and the op interpreter, around
// one root scheme. One Engine is one run of one scheme.
#pragma once
#include <bitset>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cache/cache.h"
#include "config/params.h"
#include "engine/program.h"
#include "linux/mm.h"
#include "linux/tlb_state.h"
#include "mem/phys_mem.h"
#include "mem/phys_table_memory.h"
#include "paging/page_table.h"
#include "psc/psc.h"
#include "root/i_root_scheme.h"
#include "tlb/tlb.h"
#include "common/rng.h"

namespace percpu {

// Where every simulated cycle goes (system.cpuN.cycles::<name>).
enum class Cat : uint8_t {
  User, Walk, RootCopy, LazyFault, PageFault, Flush, Ipi, Kmap, PercpuData, CtxSwitch, Syscall,
  Kernel, Idle, Other, Count
};
const char* cat_name(Cat c);

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

// Cost-table entries the hot paths read, cached out of Params' map.
#define PERCPU_COST_FIELDS(X) \
  X(l1_latency, "cache.l1d.latency") \
  X(stlb_hit, "tlb.stlb.hit_cycles") \
  X(walk_base, "walk.base_cycles") \
  X(cr3_flush, "cost.cr3_flush") \
  X(cr3_noflush, "cost.cr3_noflush") \
  X(invlpg, "cost.invlpg") \
  X(flush_ipi_send, "cost.flush_ipi_send") \
  X(flush_ipi_send_per_cpu, "cost.flush_ipi_send_per_cpu") \
  X(ipi_receive, "cost.ipi_receive") \
  X(flush_full_extra, "cost.flush_full_extra") \
  X(page_fault, "cost.page_fault") \
  X(zero_page, "cost.zero_page") \
  X(pte_write, "cost.pte_write") \
  X(lazy_fault, "cost.lazy_fault") \
  X(root_alloc, "cost.root_alloc") \
  X(syscall, "cost.syscall") \
  X(ctx_switch, "cost.ctx_switch") \
  X(fork, "cost.fork") \
  X(exec, "cost.exec") \
  X(exit, "cost.exit") \
  X(clone_thread, "cost.clone_thread") \
  X(wakeup, "cost.wakeup") \
  X(kmap_local, "cost.kmap_local") \
  X(kmap, "cost.kmap") \
  X(gs_prefix, "cost.gs_prefix") \

struct CostCache {
#define PERCPU_DECLARE_COST(field, key) Cycles field = 0;
  PERCPU_COST_FIELDS(PERCPU_DECLARE_COST)
#undef PERCPU_DECLARE_COST
  void load(const Params& p) {
#define PERCPU_LOAD_COST(field, key) field = static_cast<Cycles>(p.get(key));
    PERCPU_COST_FIELDS(PERCPU_LOAD_COST)
#undef PERCPU_LOAD_COST
  }
};

class Engine {
 public:
  Engine(const Params& params, const std::string& scheme, Program program, bool check,
         bool record_log = false);
  ~Engine();

  // Runs the program to completion. Throws std::runtime_error for workload
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

  struct Cpu;
  struct Task;

 private:
  enum class TaskState : uint8_t { Runnable, Running, Blocked, Sleeping, Exited };
  enum class Mode : uint8_t { User, Kernel };
  struct Chan;

  // Setup.
  void boot();
  Mm* new_mm(int template_id, const Mm* copy_from);
  Mm* template_instance(int tmpl);
  Task* new_task(int template_id, Mm* mm, Cpu* parent_cpu);
  Frame kernel_table_for(int slot, VirtAddr va);

  // Scheduling.
  Cpu* pick_cpu();
  void step(Cpu& c);
  void schedule_next(Cpu& c);
  bool pull_task(Cpu& c);
  void periodic_balance(Cpu& busy);
  void context_switch(Cpu& c, Task* prev, Task* next);
  void enqueue(Task* t, Cpu* preferred, Cycles when);
  Cpu* place(Task* t, Cpu* preferred);
  void block_current(Cpu& c, TaskState state);
  void wake(Task* t, Cycles when);
  void exit_task(Cpu& c, Task* t);
  void try_finish_offline(Cycles now);

  // Memory management (Linux side).
  void switch_mm(Cpu& c, Mm* next);
  void enter_lazy(Cpu& c);
  void switch_to_init_mm(Cpu& c);
  void kernel_entry_exit(Cpu& c, Cat cat);
  // cleared_slots: the mm's top-level entries this change cleared (freed tables).
  void flush_tlb_mm_range(Cpu& self, Mm& mm, VirtAddr start, VirtAddr end, bool freed_tables,
                          const std::vector<int>& cleared_slots = {});
  void flush_on_cpu(Cpu& c, Mm& mm, uint64_t new_gen, VirtAddr start, VirtAddr end, bool full,
                    const std::vector<int>& cleared_slots, bool local);
  void flush_kernel_range_all(Cpu& self);
  void destroy_mm(Cpu& c, Mm* mm);
  void do_munmap(Cpu& c, Mm& mm, VirtAddr start, VirtAddr end);
  bool handle_page_fault(Cpu& c, Mm& mm, VirtAddr va, Access kind);
  void charge_root_selection(Cpu& c, const RootSelection& sel, NewAsidCause cause);
  void load_cr3(Cpu& c, const RootSelection& sel, Asid asid, bool flush);
  void set_pcids(Cpu& c, Asid asid);
  void start_in_init_mm(Cpu& c);

  // Hardware side.
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
  void check_translation(Cpu& c, VirtAddr va, const Translation& got);
  void violation(Cpu& c, const std::string& what, VirtAddr va);

  // Ops.
  bool run_op(Cpu& c, Task* t);  // false: the task left the CPU
  void op_access(Cpu& c, Task* t, const Op& op, Cycles budget_end);
  void op_kmap_local(Cpu& c, Task* t, bool map);
  void op_kmap(Cpu& c, Task* t, bool map);
  void op_kcopy(Cpu& c, Task* t, uint64_t bytes);
  void op_percpu_access(Cpu& c, uint64_t count);
  void kmap_sched_out(Cpu& c, Task* prev);
  void kmap_sched_in(Cpu& c, Task* next);
  void claim_private_kmaps(Cpu& c, Task* t);
  void install_kmap_local(Cpu& c, Task* t, size_t idx);
  void uninstall_kmap_local(Cpu& c, Task* t, size_t idx, bool flush);
  VirtAddr kmap_local_va(Cpu& c, size_t idx) const;
  Frame page_cache_page(Task* t);
  VirtAddr pkmap_va(int i) const;

  void charge(Cpu& c, Cat cat, Cycles cycles);
  void log_vma(LogRecord::Kind kind, const Mm& mm, VirtAddr start, VirtAddr end, uint8_t prot);
  [[noreturn]] void workload_error(const Task* t, const std::string& what) const;
  std::string task_label(const Task* t) const;

  Params m_params;
  CostCache m_cost;
  std::string m_scheme_request;
  Program m_program;
  bool m_check;
  bool m_record_log;
  int m_ncpus;
  int m_levels;
  bool m_pcid;
  bool m_pti;
  bool m_private_kmaps;

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

  // Kernel layout (built at boot).
  Frame m_fixmap_pt = kNoFrame;               // shared kmap_local slots (stock)
  std::vector<Frame> m_pkmap_pts;             // shared pkmap pool page tables
  std::vector<Frame> m_percpu_scratch_roots;  // per CPU: holds the private per-CPU chain
  std::vector<Frame> m_page_cache;            // frames kmaps map
  std::vector<int> m_pkmap_count;             // shared pool (Linux pkmap_count)
  int m_last_pkmap = 0;

  // Bookkeeping.
  std::vector<Violation> m_violations;
  uint64_t m_violation_count = 0;
  std::vector<LogRecord> m_log;
  uint64_t m_mem_refs = 0;
  uint64_t m_root_pool_peak_pages = 0;
  uint64_t m_private_tables_peak = 0;
  uint64_t m_bound_violations = 0;
  uint64_t m_mms_created = 0;
  uint64_t m_max_mm_lazy_faults = 0;
  uint64_t m_pkmap_wraps = 0;
  uint64_t m_hotplug_wait_cycles = 0;
  uint64_t m_pinned_at_offline = 0;
  uint64_t m_affinity_broken = 0;
  uint64_t m_migrate_refused = 0;
  uint64_t m_offlines = 0;
  uint64_t m_kernel_slot_adds = 0;
  uint64_t m_kernel_slot_pgd_writes = 0;
  uint64_t m_kernel_slot_root_writes = 0;
  Cycles m_slice_cycles = 0;
  Cycles m_balance_cycles = 0;
  Cycles m_cycles_per_second = 0;
  Cycles m_ticks_per_cycle = 333;
  int m_current_op = -1;
  std::vector<Task*> m_sleepers;
  std::function<bool()> m_interrupt_check;
  std::vector<std::pair<Task*, int>> m_offline_waiters;  // task, cpu going offline
};

}  // namespace percpu
