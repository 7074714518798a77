#include "config/params.h"

#include <cmath>
#include <sstream>

namespace percpu {

namespace {
constexpr const char* kLinuxRef = "docs/references.md, Linux's TLB and ASID rules";
constexpr const char* kSkylake =
    "Skylake, Intel optimization manual (docs/references.md, Linux's TLB and ASID rules)";
constexpr const char* kEstimate = "estimate (no measurement cited; override with --set)";
}  // namespace

const std::vector<ParamSpec>& param_specs() {
  static const std::vector<ParamSpec> specs = {
      // Machine.
      {"machine.cpus", 4, 1, 256, "cpus", "number of CPUs", "issue 2: default 4 CPUs"},
      {"machine.pcid", 1, 0, 1, "bool", "CPU supports PCID (0: every mm switch flushes)",
       "PCID since Westmere (docs/references.md, The proposal)"},
      {"machine.pti", 0, 0, 1, "bool", "page-table isolation (user/kernel pgd pair)",
       kLinuxRef},
      {"machine.paging_levels", 4, 4, 5, "levels", "4- or 5-level paging", kLinuxRef},
      {"machine.linux", 6.1, 6.1, 6.15, "version",
       "kernel generation whose TLB rules the engine follows: 6.1 (Linux 6.1, dynamic ASIDs "
       "and flush IPIs) or 6.15 (the 2025 rules: global ASIDs and INVLPGB broadcast flushes, "
       "when machine.invlpgb and machine.pcid are on; docs/linux-2025.md)",
       "Linux 6.1 (docs/references.md, Linux's TLB and ASID rules); 6.15: Rik van Riel, 'x86/mm: Enable "
       "broadcast TLB invalidation for multi-threaded processes', tip x86/mm f37ff575b1fe, "
       "Mar 2025, merged for 6.15"},
      {"machine.invlpgb", 1, 0, 1, "bool",
       "CPU has INVLPGB/TLBSYNC (X86_FEATURE_INVLPGB, AMD Zen 3 and later); used only under "
       "machine.linux=6.15",
       "AMD APM vol. 3, INVLPGB; Rik van Riel's series tests on AMD Milan (Zen 3)"},
      {"linux.max_asid_available", 2046, 8, 4094, "entries",
       "MAX_ASID_AVAILABLE: ASIDs (dynamic and global) a PCID can name; global ASIDs are "
       "handed out from TLB_NR_DYN_ASIDS up to it (6.15)",
       "arch/x86/mm/tlb.c (6.15): (1 << CR3_AVAIL_PCID_BITS) - 2, 11 bits with "
       "CONFIG_MITIGATION_PAGE_TABLE_ISOLATION (Debian's config)"},
      {"machine.freq_mhz", 3000, 100, 10000, "MHz",
       "core clock; 3 GHz is 333 ticks per cycle as in gem5", "gem5 X86Board default clk_freq 3GHz"},
      {"machine.seed", 1, 0, 1e18, "", "random seed", "issue 2"},
      // TLBs.
      {"tlb.l1d.entries", 64, 4, 4096, "entries", "L1 DTLB entries (4 KiB)", kSkylake},
      {"tlb.l1d.ways", 4, 1, 64, "ways", "L1 DTLB associativity", kSkylake},
      {"tlb.l1i.entries", 128, 4, 4096, "entries", "L1 ITLB entries", kSkylake},
      {"tlb.l1i.ways", 8, 1, 64, "ways", "L1 ITLB associativity", kSkylake},
      {"tlb.stlb.entries", 1536, 16, 65536, "entries", "shared second-level TLB entries", kSkylake},
      {"tlb.stlb.ways", 12, 1, 64, "ways", "STLB associativity", kSkylake},
      {"tlb.stlb.hit_cycles", 12, 0, 1000, "cycles", "an L1 TLB miss that hits the STLB",
       "Haswell measurement, docs/references.md, Linux's TLB and ASID rules"},
      {"walk.base_cycles", 16, 0, 1000, "cycles",
       "walker overhead on top of its memory reads (a PSC-hit walk whose read hits L1D: 16+4=20)",
       "derived: STLB miss with PSC hits about 20 cycles, docs/references.md, Linux's TLB and ASID rules"},
      // Paging-structure caches (PML4E, PDPTE, PDE); sizes are not documented by Intel.
      {"psc.top.entries", 4, 0, 1024, "entries",
       "PSC entries caching top-level (PML4E/PML5E) entries", kEstimate},
      {"psc.upper.entries", 4, 0, 1024, "entries", "PSC entries caching PDPTEs (and PML4Es under 5-level)",
       kEstimate},
      {"psc.pde.entries", 32, 0, 4096, "entries", "PSC entries caching PDEs", kEstimate},
      // Caches: walker and data reads share them.
      {"cache.enabled", 1, 0, 1, "bool", "model caches (0: every access costs the L1D latency)",
       "issue 2 (the fast mode of percpu bench)"},
      {"cache.l1d.size_kib", 32, 1, 65536, "KiB", "private L1D size", "Skylake client, Intel optimization manual"},
      {"cache.l1d.ways", 8, 1, 64, "ways", "L1D associativity", "Skylake client, Intel optimization manual"},
      {"cache.l1d.latency", 4, 0, 1000, "cycles", "L1D load-to-use", "Skylake client, Intel optimization manual"},
      {"cache.l2.size_kib", 256, 1, 65536, "KiB", "private L2 size", "Skylake client, Intel optimization manual"},
      {"cache.l2.ways", 4, 1, 64, "ways", "L2 associativity", "Skylake client, Intel optimization manual"},
      {"cache.l2.latency", 12, 0, 1000, "cycles", "L2 hit latency", "Skylake client, Intel optimization manual"},
      {"cache.llc.size_kib", 8192, 1, 1048576, "KiB", "shared LLC size", "Skylake client (8 MiB), Intel optimization manual"},
      {"cache.llc.ways", 16, 1, 64, "ways", "LLC associativity", "Skylake client, Intel optimization manual"},
      {"cache.llc.latency", 42, 0, 1000, "cycles", "LLC hit latency", "Skylake client, Intel optimization manual (about 42)"},
      {"cache.dram.latency", 200, 0, 10000, "cycles", "DRAM access (about 67 ns at 3 GHz)", kEstimate},
      // A root allocation's copy (engine/root_copy_cost.cc, cache/overlap.h): its line reads
      // and writes do not wait for one another, so their misses overlap.
      {"cache.l1d.mshrs", 10, 1, 256, "entries",
       "outstanding L1D line misses (MSHRs; Intel's line fill buffers): a root allocation's "
       "copy overlaps its line reads and writes up to this many (1 with cache.copy_issue_cycles=0: "
       "one after another, the serial charge of earlier versions); other accesses and walks "
       "are charged one at a time",
       "Intel optimization manual: 10 L1D fill buffers per core, Nehalem to Broadwell (Skylake "
       "measured at 12; docs/references.md, The model)"},
      {"cache.copy_issue_cycles", 1, 0, 1000, "cycles",
       "cycles between two accesses of a root allocation's copy (a line read, a line write)",
       "Skylake client, Intel optimization manual: two 32-byte loads and one 32-byte store per "
       "cycle, so a copy moves a 64-byte line every 2 cycles, 1 per access (docs/references.md, "
       "The model)"},
      // Costs of operations (cycles).
      {"cost.cr3_flush", 96, 0, 1e6, "cycles", "CR3 write that flushes the PCID's non-global entries",
       "Ingo Molnar, linux-mm, Jun 2015 (docs/references.md, Linux's TLB and ASID rules)"},
      {"cost.cr3_noflush", 30, 0, 1e6, "cycles", "CR3 write with the no-flush bit (bit 63)", kEstimate},
      {"cost.switch_mm", 0, 0, 1e7, "cycles",
       "switch_mm_irqs_off's kernel work on a switch to another mm (ASID choice, mm_cpumask, "
       "ctxs[] and tlb_gen), besides the CR3 write; paid whether the write flushes or not",
       "0 by default (the CR3 write entries stand for the switch); percpu calibrate fits it "
       "from yield_proc - yield_thread and pipe_proc - pipe_thread (docs/calibration.md)"},
      {"cost.invlpg", 260, 0, 1e6, "cycles", "INVLPG of one page",
       "Ingo Molnar, linux-mm, Jun 2015 (docs/references.md, Linux's TLB and ASID rules)"},
      {"cost.flush_ipi_send", 1016, 0, 1e6, "cycles",
       "sender's cost of a remote flush request (IPIs sent and acknowledged)",
       "derived: flush_tlb_mm_range of 1 page 1276 avg (Dave Hansen, Feb 2014) minus one INVLPG (260)"},
      {"cost.flush_ipi_send_per_cpu", 100, 0, 1e6, "cycles", "extra sender cost per IPI target",
       kEstimate},
      {"cost.invlpgb", 260, 0, 1e6, "cycles",
       "INVLPGB of one page or one PCID, issued by the flushing CPU (no remote handler runs)",
       "estimate: as one INVLPG (docs/references.md, Linux's TLB and ASID rules); no public measurement"},
      {"cost.tlbsync", 1000, 0, 1e6, "cycles",
       "TLBSYNC: the flushing CPU waits until every CPU has done its INVLPGBs",
       "estimate: the order of flush_ipi_send (1016), a round trip to every CPU ('it has to go "
       "out and talk over the fabric to every CPU', Dave Hansen reviewing v11 of the series, "
       "14 Feb 2025)"},
      {"cost.ipi_receive", 300, 0, 1e6, "cycles", "receiver's interrupt entry/exit for a flush IPI",
       kEstimate},
      {"cost.flush_full_extra", 1007, 0, 1e6, "cycles",
       "extra sender cost of a full flush over a one-page flush",
       "derived: flush_tlb_mm_range full 2283 minus 1 page 1276 (Dave Hansen, Feb 2014)"},
      {"cost.page_fault", 1500, 0, 1e7, "cycles", "page fault entry, handler and exit (no zeroing)",
       kEstimate},
      {"cost.zero_page", 600, 0, 1e7, "cycles", "zeroing a new 4 KiB page", kEstimate},
      {"cost.pte_write", 5, 0, 1e6, "cycles", "writing one page-table entry", kEstimate},
      {"cost.lazy_fault", 700, 0, 1e7, "cycles",
       "lazy top-level fault: fault entry and exit plus a lookup; the entry copy costs pte_write",
       "estimate for real hardware, which no kernel has measured; on gem5's timing CPU the "
       "percpu kernel's roots fit 1,176 cycles with cost.root_alloc 0 (docs/kernel.md, "
       "'What the kernel says cost.lazy_fault is'; the gem5 profile)"},
      {"cost.root_alloc", 200, 0, 1e7, "cycles",
       "allocating a (cpu, asid) root, on top of copying its kernel half through the caches",
       "estimate for real hardware; on gem5's timing CPU the percpu kernel's root making is "
       "folded into cost.lazy_fault's fit (docs/kernel.md)"},
      {"cost.syscall", 100, 0, 1e6, "cycles", "system call entry and exit without PTI", kEstimate},
      {"cost.ctx_switch", 1500, 0, 1e7, "cycles", "schedule() and switch_to, without CR3 and TLB effects",
       kEstimate},
      {"cost.fork", 60000, 0, 1e9, "cycles", "fork(): task and mm duplication, without page-table effects",
       kEstimate},
      {"cost.exec", 100000, 0, 1e9, "cycles", "execve(): loading a new image, without page-table effects",
       kEstimate},
      {"cost.exit", 20000, 0, 1e9, "cycles", "exit(): task teardown, without page-table effects",
       kEstimate},
      {"cost.clone_thread", 15000, 0, 1e9, "cycles", "pthread_create(): a new thread of an mm",
       kEstimate},
      {"cost.wakeup", 500, 0, 1e7, "cycles", "try_to_wake_up() of a blocked task", kEstimate},
      {"cost.kmap_local", 30, 0, 1e6, "cycles", "kmap_local/kunmap_local bookkeeping (index push/pop)",
       kEstimate},
      {"cost.kmap", 150, 0, 1e6, "cycles", "kmap()/kunmap() bookkeeping (pkmap lock and counts)",
       kEstimate},
      {"cost.gs_prefix", 1, 0, 1000, "cycles",
       "extra latency of a GS-relative per-CPU access (non-zero segment base)", kEstimate},
      {"kmap.pkmap_entries", 1024, 8, 65536, "entries", "LAST_PKMAP: the pkmap pool size",
       "Linux arch/x86/include/asm/pgtable_32_areas.h (1024; 512 with PAE)"},
      {"kmap.private", 1, 0, 1, "bool",
       "percpu schemes: kmap_local/kmap use root-private mappings (0: the stock fixmap/pkmap)",
       "docs/references.md, The model (what a per-(cpu, asid) root changes)"},
      {"root.fill_at_fault", 1, 0, 1, "bool",
       "percpu: a page fault that adds a user top-level entry writes it into the faulting "
       "CPU's root (0: the next walk takes a lazy fault for it, as on the gem5 host, whose "
       "guest kernel does not know the roots)",
       "docs/references.md, The proposal (faulted in lazily); The gem5 host (0: as gem5 sees it)"},
      {"root.broadcast_fix", 2, 0, 2, "",
       "percpu under machine.linux=6.15 with global ASIDs: how roots learn of freed tables a "
       "broadcast flush cannot tell them (0: not at all, the proposal as written; 1: freed-"
       "tables flushes also IPI the CPUs holding a root of the mm; 2: the flushing CPU clears "
       "the entry in every root of the mm itself before the INVLPGB)",
       "issue 26; docs/linux-2025.md (the variants, measured)"},
      {"sched.slice_us", 0, 0, 1e6, "us",
       "time slice; 0 means Linux's base slice 0.75 ms x (1 + log2(min(cpus, 8)))",
       "Linux kernel/sched/fair.c sysctl_sched_base_slice and SCHED_TUNABLESCALING_LOG"},
      {"sched.balance_us", 0, 0, 1e6, "us",
       "periodic load-balance interval; 0 means the domain's min_interval, 1 ms per CPU",
       "Linux kernel/sched/topology.c sd_init(): min_interval = sd_weight ms"},
      // Run-to-run noise (docs/noise.md): what varies between runs of one workload on a
      // real machine, drawn per seed from counter-based streams keyed by task and mm, so
      // every scheme run with one seed sees the same noise (common random numbers).
      {"noise.enabled", 1, 0, 1, "bool",
       "run-to-run noise from the seed; 0 turns every noise.* source off (the seed then moves "
       "only random accesses)",
       "issue 10; docs/noise.md"},
      {"noise.aslr", 1, 0, 1, "bool",
       "randomise each new image's stack (down, up to 0x3fffff pages), heap/brk (up, up to "
       "32 MiB) and mmap base (16 GiB + 9 MiB below the top, then down up to 2^28 pages) "
       "as Linux's ASLR does",
       "Linux 6.1 arch/x86/include/asm/elf.h STACK_RND_MASK, arch/x86/kernel/process.c "
       "arch_randomize_brk, arch/x86/mm/mmap.c mmap_base, CONFIG_ARCH_MMAP_RND_BITS=28 "
       "(docs/noise.md)"},
      {"noise.compute_jitter", 0.02, 0, 0.5, "fraction",
       "compute and in-kernel syscall work lengths scaled by a uniform factor in [1-j, 1+j]",
       kEstimate},
      {"noise.kernel_jitter", 0.02, 0, 0.5, "fraction",
       "fixed kernel-path costs (page fault, fork, exec, exit, clone, context switch) scaled "
       "the same way",
       kEstimate},
      {"noise.sleep_slack_us", 50, 0, 1e5, "us",
       "a sleep ends up to this much late (hrtimer slack), uniformly",
       "Linux 6.1 init/init_task.c: timer_slack_ns = 50000 (docs/noise.md)"},
      {"noise.tick_hz", 250, 0, 10000, "Hz",
       "timer tick on busy CPUs, each CPU's phase drawn per seed (0: no tick)",
       "Debian 12 linux-image-amd64 config CONFIG_HZ=250, CONFIG_NO_HZ_IDLE=y (docs/noise.md)"},
      {"cost.tick", 2000, 0, 1e7, "cycles", "one timer-tick interrupt: entry, handler, exit",
       kEstimate},
      {"noise.wake_ties", 1, 0, 1, "bool",
       "a waking or yielding task whose own CPU is not among the least loaded picks one of the "
       "equally loaded CPUs at random (0: the lowest-numbered)",
       "modelling choice: Linux's pick depends on state the model does not keep (docs/noise.md)"},
      {"noise.start_order", 1, 0, 1, "bool",
       "the program's start-time processes first run on each CPU in an order drawn per seed "
       "(0: program order); with a task ring wider than the 6 ASID slots this picks which of "
       "choose_new_asid's round-robin steady states a CPU settles in",
       "modelling choice: in Linux the order follows fork placement (task_fork_fair's "
       "START_DEBIT, wake_up_new_task's select_task_rq), migration and wake-up timing the "
       "model does not keep; the guest lands in all three steady states (docs/noise.md, "
       "docs/gem5.md)"},
      {"check.max_reports", 20, 1, 1e6, "", "violations described in detail before only counting",
       "issue 2"},
      {"fault.skip_root_invalidate", 0, 0, 1, "bool",
       "FAULT INJECTION for checker tests: percpu roots keep pgd entries freed while active",
       "tests only"},
      {"test.lru_clock_start", 0, 0, 4294967295.0, "",
       "start every TLB, PSC and cache LRU clock here (tests: a wrap early in a run must change "
       "nothing)",
       "tests only"},
  };
  return specs;
}

Params::Params() {
  for (const auto& spec : param_specs()) m_values[spec.key] = spec.default_value;
}

void Params::set(const std::string& key, double value) {
  for (const auto& spec : param_specs()) {
    if (key != spec.key) continue;
    if (std::isnan(value) || value < spec.min_value || value > spec.max_value) {
      std::ostringstream msg;
      msg << "parameter " << key << "=" << value << " is out of range: use a value in ["
          << spec.min_value << ", " << spec.max_value << "]";
      throw ParamError(msg.str());
    }
    if (key == "machine.linux" && value != 6.1 && value != 6.15)
      throw ParamError("parameter machine.linux=" + std::to_string(value).substr(0, 6) +
                       " is not a modelled kernel: use 6.1 (the default) or 6.15 (the 2025 "
                       "rules)");
    m_values[key] = value;
    return;
  }
  throw ParamError("unknown parameter '" + key +
                   "': run 'percpu params' for the list of keys");
}

double Params::get(const std::string& key) const {
  auto it = m_values.find(key);
  if (it == m_values.end()) throw ParamError("internal: unknown parameter " + key);
  return it->second;
}

}  // namespace percpu
