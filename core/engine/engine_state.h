// The engine's per-CPU and per-task state (private to engine/*.cc).
#pragma once
#include <array>

#include "engine/engine.h"

namespace percpu {

struct Engine::Cpu {
  Cpu(int id_, const Params& p, Cache* llc)
      : id(id_),
        l1d(p.get_int("tlb.l1d.entries"), p.get_int("tlb.l1d.ways")),
        l1i(p.get_int("tlb.l1i.entries"), p.get_int("tlb.l1i.ways")),
        stlb(p.get_int("tlb.stlb.entries"), p.get_int("tlb.stlb.ways")),
        psc_top(p.get_int("psc.top.entries")),
        psc_upper(p.get_int("psc.upper.entries")),
        psc_pde(p.get_int("psc.pde.entries")),
        l1d_cache(std::make_unique<Cache>(p.get_int("cache.l1d.size_kib") * 1024ull,
                                          p.get_int("cache.l1d.ways"))),
        l2_cache(std::make_unique<Cache>(p.get_int("cache.l2.size_kib") * 1024ull,
                                         p.get_int("cache.l2.ways"))),
        path(l1d_cache.get(), l2_cache.get(), llc,
             CacheLatencies{static_cast<Cycles>(p.get("cache.l1d.latency")),
                            static_cast<Cycles>(p.get("cache.l2.latency")),
                            static_cast<Cycles>(p.get("cache.llc.latency")),
                            static_cast<Cycles>(p.get("cache.dram.latency"))},
             p.get_bool("cache.enabled")) {}

  int id;
  bool online = true;
  bool going_offline = false;
  Cycles clock = 0;
  Task* current = nullptr;
  Task* last = nullptr;  // the task that ran last (prev of the next switch)
  bool was_idle = true;  // the idle task ran since `last`
  std::deque<Task*> runq;

  // Linux and CR3 state.
  CpuTlbState tlbstate;
  Mm* loaded_mm = nullptr;
  Frame kroot = kNoFrame;
  Frame uroot = kNoFrame;
  Pcid kpcid = 0;
  Pcid upcid = 0;
  std::vector<int> pkmap_count;  // per-CPU pool (percpu schemes)
  std::array<Task*, kTlbNrDynAsids> kmap_owner{};  // whose kmap_local fill each root's private area
  int last_pkmap = 0;

  // Hardware.
  Tlb l1d, l1i, stlb;
  PagingStructureCache psc_top, psc_upper, psc_pde;
  std::unique_ptr<Cache> l1d_cache, l2_cache;
  CachePath path;

  // Stats.
  std::array<Cycles, static_cast<int>(Cat::Count)> cycles{};
  std::array<uint64_t, kNumNewAsidCauses> root_allocs{};
  uint64_t ctx_switches = 0, mm_switches = 0;
  uint64_t dtb_rd_acc = 0, dtb_rd_miss = 0, dtb_wr_acc = 0, dtb_wr_miss = 0;
  uint64_t itb_acc = 0, itb_miss = 0, stlb_hits = 0, stlb_misses = 0;
  uint64_t walks = 0, walk_cycles = 0, walk_reads = 0, walk_l1_misses = 0;
  uint64_t psc_hits = 0;
  uint64_t lazy_faults = 0, root_copy_bytes = 0, root_copy_cycles = 0, stale_root_drops = 0;
  uint64_t page_faults = 0, segfaults = 0;
  uint64_t cr3_writes = 0, cr3_flushes = 0, invlpgs = 0;
  uint64_t flushes_full = 0, flushes_partial = 0, flush_requests = 0;
  uint64_t ipis_sent = 0, ipis_received = 0, ipis_skipped_lazy = 0, ipis_skipped_other = 0;
  uint64_t lazy_switch_to_init = 0;
  uint64_t kmap_local_maps = 0, kmap_saves = 0, kmap_restores = 0, kmaps = 0, pkmap_flushes = 0;
  uint64_t private_tables = 0;
  uint64_t percpu_accesses = 0, syscalls = 0, user_refs = 0, kernel_refs = 0;
  uint64_t data_l1_misses = 0;
  uint64_t idle_pulls = 0;
  uint64_t balance_pulls = 0;
  Cycles next_balance = 0;
};

struct Engine::Task {
  int id = 0;
  int tmpl = 0;
  Mm* mm = nullptr;
  std::bitset<kMaxCpus> allowed;
  Cpu* cpu = nullptr;
  TaskState state = TaskState::Runnable;
  size_t pc = 0;
  std::vector<std::pair<size_t, int64_t>> loops;  // (pc of Repeat, iterations left)
  int64_t progress = 0;                           // accesses done of the current op
  Cycles slice_start = 0;  // clock when it last got the CPU
  Cycles wake_time = 0;
  Cycles runnable_since = 0;
  Cycles blocked_since = 0;
  int migrate_disabled = 0;
  int pending_migrate = -1;
  struct KmapLocal {
    Frame page = kNoFrame;
    bool installed = false;
    int cpu = -1;  // where it is installed
    Asid asid = 0;
    uint64_t root_gen = 0;
  };
  std::vector<KmapLocal> kmap_local;
  std::vector<int> kmaps;  // pool entries held
  uint64_t kmap_cursor = 0;
  Rng rng;
};

struct Engine::Chan {
  int64_t count = 0;
  std::deque<Task*> waiters;
};

}  // namespace percpu
