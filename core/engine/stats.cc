// The statistics (stats.txt, gem5's names): per CPU, then system-wide. The
// counters come from their declarations (PERCPU_CPU_COUNTERS_*,
// PERCPU_WALKER_STATS, PERCPU_CACHE_COUNTERS of PERCPU_CPU_CACHES and
// PERCPU_SYSTEM_CACHES, PERCPU_SYSTEM_COUNTERS_*, the cycle categories and root
// allocation causes); only values computed at the end are listed here.
#include <algorithm>

#include "engine/engine_state.h"
#include "root/names.h"

namespace percpu {

std::vector<Stat> Engine::stats() const {
  std::vector<Stat> out;
  auto add = [&](const std::string& name, double value, const std::string& desc,
                 const std::string& unit) { out.push_back({name, value, desc, unit}); };
  auto u = [](uint64_t v) { return static_cast<double>(v); };
  // One cache's counters that `reported` selects (PERCPU_*_CACHES).
  auto add_cache = [&](const std::string& prefix, const Cache& cache, const char* label,
                       const char* note, uint32_t reported) {
#define PERCPU_ADD_CACHE_COUNTER(field, word)                                       \
  if (reported & cache_counter_bit(CacheCounter::field)) {                          \
    add(prefix + "." + word, u(cache.field), std::string(label) + " " + word + note, \
        "Count");                                                                   \
  }
    PERCPU_CACHE_COUNTERS(PERCPU_ADD_CACHE_COUNTER)
#undef PERCPU_ADD_CACHE_COUNTER
  };
#define PERCPU_ADD_SYSTEM_COUNTER(field, name, desc, unit) \
  add(std::string("system.") + name, u(field), desc, unit);
  Cycles end = 0;
  for (const auto& c : m_cpus) end = std::max(end, c->clock);
  add("simSeconds", static_cast<double>(end * m_ticks_per_cycle) / 1e12,
      "Number of seconds simulated", "Second");
  add("simTicks", static_cast<double>(end * m_ticks_per_cycle), "Number of ticks simulated", "Tick");
  add("simFreq", 1e12, "The number of ticks per simulated second", "(Tick/Second)");
  add("system.clk_domain.clock", static_cast<double>(m_ticks_per_cycle), "Clock period in ticks",
      "Tick");
  PERCPU_SYSTEM_COUNTERS_A(PERCPU_ADD_SYSTEM_COUNTER)
  for (const auto& cp : m_cpus) {
    const Cpu& c = *cp;
    const CpuCounters& n = c.n;
    std::string p = "system.cpu" + std::to_string(c.id) + ".";
    Cycles total = 0;
    for (Cycles x : n.cycles) total += x;
    add(p + "numCycles", u(total), "number of cpu cycles simulated", "Cycle");
    for (int k = 0; k < static_cast<int>(Cat::Count); ++k)
      add(p + "cycles::" + cat_name(static_cast<Cat>(k)), u(n.cycles[k]),
          "cycles spent, by what they were spent on", "Cycle");
    add(p + "cycles::total", u(total), "cycles spent, by what they were spent on", "Cycle");
#define PERCPU_ADD_COUNTER(field, name, desc, unit) add(p + name, u(n.field), desc, unit);
    PERCPU_CPU_COUNTERS_A(PERCPU_ADD_COUNTER)
#define PERCPU_ADD_WALKER_STAT(field, name, desc, unit) \
  add(p + "mmu.walker." + name, u(c.walker.stats.field), desc, unit);
    PERCPU_WALKER_STATS(PERCPU_ADD_WALKER_STAT)
#undef PERCPU_ADD_WALKER_STAT
#define PERCPU_ADD_CPU_CACHE(member, name, label, note, reported) \
  add_cache(p + name, *c.member, label, note, reported);
    PERCPU_CPU_CACHES(PERCPU_ADD_CPU_CACHE)
#undef PERCPU_ADD_CPU_CACHE
    PERCPU_CPU_COUNTERS_B(PERCPU_ADD_COUNTER)
    uint64_t allocs_total = 0;
    for (int k = 1; k < kNumNewAsidCauses; ++k) {  // every cause but None
      allocs_total += n.root_allocs[k];
      add(p + PERCPU_ROOT_STAT(RootAllocs) "::" + kNewAsidCauseNames[k], u(n.root_allocs[k]),
          "per-(cpu, asid) roots allocated, by cause", "Count");
    }
    add(p + PERCPU_ROOT_STAT(RootAllocs) "::total", u(allocs_total), "per-(cpu, asid) roots allocated, by cause",
        "Count");
    PERCPU_CPU_COUNTERS_C(PERCPU_ADD_COUNTER)
    PERCPU_CPU_COUNTERS_D(PERCPU_ADD_COUNTER)
#undef PERCPU_ADD_COUNTER
  }
#define PERCPU_ADD_SYSTEM_CACHE(member, name, label, note, reported) \
  add_cache(std::string("system.") + name, *member, label, note, reported);
  PERCPU_SYSTEM_CACHES(PERCPU_ADD_SYSTEM_CACHE)
#undef PERCPU_ADD_SYSTEM_CACHE
  add("system." PERCPU_ROOT_STAT(RootPoolPeakBytes), u(m_root_pool_peak_pages * kPageSize),
      "peak bytes of per-(cpu, asid) root pages", "Byte");
  add("system." PERCPU_ROOT_STAT(RootPoolBoundBytes), u(root_pool_bound_bytes(m_ncpus, m_pti)),
      "the proposal's bound: 4 KiB x cpus x 6 (x2 with PTI)", "Byte");
  add("system.percpu.privateTablePeakBytes", u(m_private_tables_peak * kPageSize),
      "peak bytes of root-private kmap page tables", "Byte");
  add("system." PERCPU_ROOT_STAT(MaxLazyFaultsPerRoot),
      u(m_scheme->inspector().max_lazy_faults_per_generation()),
      "most lazy faults in one root generation", "Count");
  add("system." PERCPU_ROOT_STAT(LazyFaultBound), u(kLazyFaultBound),
      "the proposal's bound on lazy faults per root generation", "Count");
  PERCPU_SYSTEM_COUNTERS_B(PERCPU_ADD_SYSTEM_COUNTER)
#undef PERCPU_ADD_SYSTEM_COUNTER
  add("system.dataPagesPeak", u(m_mem.peak_in_use(FrameUse::Data)),
      "peak data frames in use (distinct touched pages and kernel pages)", "Count");
  add("system.physFrames.pageTables", u(m_mem.frames_in_use(FrameUse::PageTable)),
      "page-table frames in use at the end", "Count");
  add("system.live.tasks", u(m_tasks.size()), "tasks not exited at the end (exited ones are freed)",
      "Count");
  add("system.live.mms", u(m_mms.size()), "address spaces alive at the end, init_mm included",
      "Count");
  return out;
}

}  // namespace percpu
