// The engine's per-CPU and per-task state (private to the engine's .cc files
// under engine/, linux/ and sched/).
#pragma once
#include <array>
#include <unordered_map>

#include "engine/engine.h"
#include "paging/walker.h"

namespace percpu {

// Per-CPU counters, each declared once with its stat (system.cpuN.<name>):
// the stats list is this list (engine/stats.cc), in this order.
#define PERCPU_CPU_COUNTERS_A(X)                                                               \
  X(ctx_switches, "ctxSwitches", "context switches", "Count")                                 \
  X(mm_switches, "mmSwitches", "switches to a different mm (switch_mm)", "Count")             \
  X(dtb_rd_acc, "mmu.dtb.rdAccesses", "DTB read accesses", "Count")                           \
  X(dtb_rd_miss, "mmu.dtb.rdMisses", "DTB read misses", "Count")                              \
  X(dtb_wr_acc, "mmu.dtb.wrAccesses", "DTB write accesses", "Count")                          \
  X(dtb_wr_miss, "mmu.dtb.wrMisses", "DTB write misses", "Count")                             \
  X(itb_rd_acc, "mmu.itb.rdAccesses", "ITB read accesses (fetches count as writes, as in gem5)", \
    "Count")                                                                                   \
  X(itb_rd_miss, "mmu.itb.rdMisses", "ITB read misses", "Count")                              \
  X(itb_acc, "mmu.itb.wrAccesses", "ITB accesses (instruction fetches)", "Count")             \
  X(itb_miss, "mmu.itb.wrMisses", "ITB misses", "Count")                                      \
  X(stlb_hits, "mmu.stlb.hits", "L1 TLB misses that hit the STLB", "Count")                   \
  X(stlb_misses, "mmu.stlb.misses", "STLB misses (each starts a walk)", "Count")
// (then mmu.walker.* from WalkerStats, then the caches' counters:)
// Per-CPU caches, each reported as <name>.<counter word> for the counters it
// reports (PERCPU_CACHE_COUNTERS, cache/cache.h), described "<label> <word><note>".
// The L2 counts its hits but has never reported them, and stats.txt's names
// are a contract: it reports its misses only.
#define PERCPU_CPU_CACHES(X)                                              \
  X(l1d_cache, "l1d", "L1D", " (data and walks)", kAllCacheCounters)     \
  X(l2_cache, "l2", "L2", "", cache_counter_bit(CacheCounter::misses))
#define PERCPU_CPU_COUNTERS_B(X)                                                               \
  X(data_l1_misses, "dataL1dMisses", "data accesses that missed the L1D", "Count")            \
  X(user_refs, "userRefs", "user-mode memory references", "Count")                            \
  X(kernel_refs, "kernelRefs", "kernel-mode memory references", "Count")
// (then percpu.rootAllocs::<cause>, one per NewAsidCause)
#define PERCPU_CPU_COUNTERS_C(X)                                                               \
  X(lazy_faults, PERCPU_ROOT_STAT(LazyFaults), "lazy top-level fault-ins", "Count")                    \
  X(root_copy_bytes, PERCPU_ROOT_STAT(RootCopyBytes), "bytes of page table copied into roots", "Byte") \
  X(root_copy_cycles, PERCPU_ROOT_STAT(RootCopyCycles), "cycles allocating and copying roots", "Cycle") \
  X(root_entries_dropped, PERCPU_ROOT_STAT(RootEntriesDropped),                                           \
    "root entries dropped by flushes that freed page tables", "Count")                        \
  X(private_tables, "percpu.privateTablesAllocated",                                          \
    "page tables allocated for root-private kmap areas", "Count")                             \
  X(page_faults, "pageFaults", "page faults (demand and protection)", "Count")                \
  X(segfaults, "segfaults", "accesses refused with SIGSEGV (skipped)", "Count")               \
  X(cr3_writes, "cr3Writes", "CR3 writes by switch_mm", "Count")                              \
  X(cr3_flushes, "cr3Flushes", "CR3 writes that flushed the PCID", "Count")                   \
  X(invlpgs, "invlpg", "INVLPG instructions", "Count")                                        \
  X(flush_requests, "tlbFlush.requests", "flush_tlb_mm_range calls", "Count")                 \
  X(flushes_full, "tlbFlush.full", "full flushes done here", "Count")                         \
  X(flushes_partial, "tlbFlush.partial", "per-page flushes done here", "Count")               \
  X(ipis_sent, "ipi.sent", "flush IPIs sent", "Count")                                        \
  X(ipis_received, "ipi.received", "flush IPIs received", "Count")                            \
  X(ipis_skipped_lazy, "ipi.skippedLazy", "IPIs not sent to lazy CPUs", "Count")              \
  X(ipis_skipped_other, "ipi.skippedOtherMm",                                                 \
    "IPIs not sent to CPUs running another mm (should_flush_tlb)", "Count")                   \
  X(lazy_switch_to_init, "lazySwitchToInit",                                                  \
    "lazy CPUs switched to init_mm by a freed-tables flush", "Count")                         \
  X(kmap_local_maps, "kmap.localMaps", "kmap_local mappings made", "Count")                   \
  X(kmap_saves, "kmap.saves", "kmap_local mappings cleared at switch-out", "Count")           \
  X(kmap_restores, "kmap.restores", "kmap_local mappings re-installed at switch-in", "Count") \
  X(kmaps, "kmap.kmaps", "kmap() mappings made", "Count")                                     \
  X(pkmap_flushes, "kmap.poolFlushes", "pkmap pool wraps flushed from here", "Count")         \
  X(percpu_accesses, "percpuAccesses", "per-CPU data accesses", "Count")                      \
  X(syscalls, "syscalls", "system calls (syscall, yield, sleep, wait and signal ops)",        \
    "Count")                                                                                  \
  X(idle_pulls, "sched.idlePulls",                                                            \
    "tasks pulled from a busier CPU when this one went idle (newidle balance)", "Count")      \
  X(balance_pulls, "sched.balancePulls",                                                      \
    "tasks this idle CPU took from a busy one at a periodic balance", "Count")

// Linux 6.15's broadcast flushes and the roots' fixes for them (docs/linux-2025.md);
// all 0 under machine.linux=6.1.
#define PERCPU_CPU_COUNTERS_D(X)                                                               \
  X(broadcast_flushes, "tlbFlush.broadcast",                                                  \
    "flush_tlb_mm_range calls done by INVLPGB broadcast (global ASID)", "Count")              \
  X(invlpgbs, "invlpgb", "INVLPGB instructions issued", "Count")                              \
  X(tlbsyncs, "tlbsync", "TLBSYNC waits", "Count")                                            \
  X(asid_transitions, "globalAsid.transitions",                                               \
    "switches of a running mm from its dynamic ASID to its global one", "Count")              \
  X(root_fix_ipis, "percpu.broadcastFix.ipis",                                                \
    "IPIs sent so that roots drop entries a broadcast flush freed (root.broadcast_fix=1)",    \
    "Count")                                                                                   \
  X(root_fix_remote_drops, "percpu.broadcastFix.remoteDrops",                                 \
    "entries this CPU cleared in other CPUs' roots before a broadcast (root.broadcast_fix=2)", \
    "Count")

struct CpuCounters {
#define PERCPU_DECLARE_COUNTER(field, name, desc, unit) uint64_t field = 0;
  PERCPU_CPU_COUNTERS_A(PERCPU_DECLARE_COUNTER)
  PERCPU_CPU_COUNTERS_B(PERCPU_DECLARE_COUNTER)
  PERCPU_CPU_COUNTERS_C(PERCPU_DECLARE_COUNTER)
  PERCPU_CPU_COUNTERS_D(PERCPU_DECLARE_COUNTER)
#undef PERCPU_DECLARE_COUNTER
  std::array<Cycles, static_cast<int>(Cat::Count)> cycles{};
  std::array<uint64_t, kNumNewAsidCauses> root_allocs{};
};

// What CR3 holds in one mode: the root the walker starts from and the PCID
// its TLB entries are tagged with (the no-flush bit is an argument of the
// write, not state). Under PTI the kernel and user CR3 differ; without, equal.
struct Cr3 {
  Frame root = kNoFrame;
  Pcid pcid = 0;
};

struct Engine::Cpu {
  Cpu(int id_, const Params& p, Cache* llc, const PhysMem& mem)
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
             p.get_bool("cache.enabled")),
        walker(mem, p.get_int("machine.paging_levels"), {psc_top, psc_upper, psc_pde}, path,
               static_cast<Cycles>(p.get("walk.base_cycles")),
               static_cast<Cycles>(p.get("cache.l1d.latency"))) {}

  int id;
  bool online = true;
  bool going_offline = false;
  Cycles clock = 0;
  Task* current = nullptr;
  Task* last = nullptr;  // the task that ran last (prev of the next switch)
  bool was_idle = true;  // the idle task ran since `last`
  std::deque<Task*> runq;
  Cycles next_balance = 0;

  // Linux's state and what it loaded into CR3.
  CpuTlbState tlbstate;
  Mm* loaded_mm = nullptr;
  Cr3 kernel_cr3;  // in kernel mode
  Cr3 user_cr3;    // in user mode (PTI's user half of the pair; == kernel_cr3 without PTI)
  std::vector<int> pkmap_count;  // per-CPU pool (percpu schemes)
  // Whose kmap_local fill each root's private area: one per dynamic ASID, then the
  // global ASIDs (6.15) this CPU has loaded.
  std::unordered_map<Asid, Task*> kmap_owner;
  int last_pkmap = 0;
  Cycles next_tick = 0;  // when this CPU's next timer tick is due (noise.tick_hz)

  // Hardware.
  Tlb l1d, l1i, stlb;
  PagingStructureCache psc_top, psc_upper, psc_pde;
  std::unique_ptr<Cache> l1d_cache, l2_cache;
  CachePath path;
  Walker walker;

  CpuCounters n;  // statistics
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
  // Noise (engine/noise.h): this task's lineage key and how many draws of each
  // kind it has made, so the n-th compute op of one task gets one draw per seed
  // whatever the scheme.
  uint64_t key = 0;
  uint64_t children = 0, images = 0, computes = 0, sleeps = 0, placements = 0, kernel_paths = 0;
};

struct Engine::Chan {
  int64_t count = 0;
  std::deque<Task*> waiters;
};

}  // namespace percpu
