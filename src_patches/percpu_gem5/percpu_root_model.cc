#include "percpu_gem5/percpu_root_model.hh"

#include <stdexcept>
#include <utility>

#include "base/logging.hh"
#include "base/trace.hh"
#include "debug/PercpuRoots.hh"
#include "mem/port_proxy.hh"
#include "sim/system.hh"

namespace gem5 {

// Guest physical memory through the system's functional port: coherent with
// the caches, so the guest and the walker see what the model writes.
class PercpuRootModel::GuestMemory final : public percpu::IGuestMemory {
 public:
  explicit GuestMemory(System* sys) : m_sys(sys) {}
  uint64_t read64(percpu::PhysAddr pa) const override {
    return m_sys->physProxy.read<uint64_t>(pa);
  }
  void write64(percpu::PhysAddr pa, uint64_t value) override {
    m_sys->physProxy.write<uint64_t>(pa, value);
  }

 private:
  System* m_sys;
};

PercpuRootModel::PercpuRootModel(const Params& p)
    : SimObject(p),
      m_mem(std::make_unique<GuestMemory>(p.system)),
      m_root_alloc_cycles(p.root_alloc_cycles),
      m_lazy_fault_cycles(p.lazy_fault_cycles),
      m_check(p.check),
      m_pending(p.num_cpus, Cycles(0)),
      m_pending_copies(p.num_cpus),
      m_monitors(p.num_cpus, nullptr),
      m_stats(this) {
  percpu::RootModel::Config config;
  config.scheme = p.scheme;
  config.ncpus = p.num_cpus;
  config.pti = p.pti;
  config.pool_base = p.pool_base;
  config.pool_bytes = p.pool_size;
  try {
    m_model = std::make_unique<percpu::RootModel>(*m_mem, config);
  } catch (const std::exception& e) {
    fatal("%s: %s", name(), e.what());
  }
  if (m_model->has_roots())
    fatal_if(config.pool_bytes < m_model->pool_bound_bytes(),
             "%s: a root pool of %d bytes is below the proposal's bound of %d bytes", name(),
             config.pool_bytes, m_model->pool_bound_bytes());
}

void PercpuRootModel::attachMonitor(ContextID cpu, PercpuCr3Monitor* monitor) {
  fatal_if(cpu < 0 || size_t(cpu) >= m_monitors.size(),
           "%s: context %d outside num_cpus=%d", name(), cpu, m_monitors.size());
  m_monitors[cpu] = monitor;
}

PercpuCr3Monitor* PercpuRootModel::monitor(ContextID cpu) const { return m_monitors.at(cpu); }

percpu::Cr3Outcome PercpuRootModel::cr3Write(ContextID cpu, const X86ISA::Cr3WriteEvent& e) {
  percpu::Cr3Outcome out;
  try {
    out = m_model->on_cr3_write(cpu, e.oldCr3, e.newCr3, e.pcide);
  } catch (const std::exception& ex) {
    fatal("%s: cpu%d CR3 write %#x: %s", name(), cpu, e.newCr3, ex.what());
  }
  if (out.allocated) {
    // The data is copied already; the walk makes the copy's memory traffic.
    m_pending[cpu] += m_root_alloc_cycles;
    for (const auto& [src, dst] : out.copy_lines)
      m_pending_copies[cpu].push_back({src, dst, unsigned(percpu::kLineSize)});
    DPRINTF(PercpuRoots, "cpu%d pcid %#x pgd %#x: root allocated (%s), %d bytes copied\n", cpu,
            out.write.pcid, out.write.to.pgd, percpu::cause_name(out.cause), out.copy_bytes);
  } else if (out.entries_dropped) {
    DPRINTF(PercpuRoots, "cpu%d CR3 %s: %d root entries dropped\n", cpu,
            percpu::to_string(out.write.kind), out.entries_dropped);
  }
  if (out.write.flushes()) afterFlush(cpu, "CR3 write", out.write.pcid);
  return out;
}

int PercpuRootModel::invlpg(ContextID cpu, uint16_t pcid) {
  const int dropped = m_model->on_flush_pcid(cpu, pcid);
  DPRINTF(PercpuRoots, "cpu%d INVLPG pcid %#x: %d root entries dropped\n", cpu, pcid, dropped);
  afterFlush(cpu, "INVLPG", pcid);
  return dropped;
}

int PercpuRootModel::invpcid(ContextID cpu, const X86ISA::InvpcidEvent& e) {
  const int dropped = e.type <= 1 ? m_model->on_flush_pcid(cpu, e.pcid) : m_model->on_flush_all(cpu);
  DPRINTF(PercpuRoots, "cpu%d INVPCID type %d: %d root entries dropped\n", cpu, e.type, dropped);
  afterFlush(cpu, "INVPCID", e.type <= 1 ? int(e.pcid) : -1);
  return dropped;
}

void PercpuRootModel::afterFlush(ContextID cpu, const char* what, int pcid) {
  if (!m_check || !m_model->has_roots()) return;
  const int stale = pcid < 0 ? m_model->stale_entries(cpu)
                             : m_model->stale_entries(cpu, static_cast<uint16_t>(pcid));
  if (stale)
    violation(csprintf("cpu%d after %s: %d root user entries differ from the guest's pgd", cpu,
                       what, stale));
}

void PercpuRootModel::violation(const std::string& what) {
  if (m_stats.checkerViolations.value() == 0) warn("%s: first violation: %s", name(), what);
  ++m_stats.checkerViolations;
}

Addr PercpuRootModel::walkRoot(ContextID cpu, uint16_t pcid, Addr cr3_base) {
  return m_model->walk_root(cpu, pcid, cr3_base);
}

percpu::TopLevelOutcome PercpuRootModel::topLevelEntry(ContextID cpu, uint16_t pcid,
                                                        Addr cr3_base, Addr root, int slot,
                                                        uint64_t pte) {
  percpu::TopLevelOutcome out = m_model->top_level_entry(cpu, pcid, cr3_base, root, slot, pte);
  if (out.lazy_fault)
    DPRINTF(PercpuRoots, "cpu%d pcid %#x slot %d: lazy fault\n", cpu, pcid, slot);
  if (out.kernel_sync)
    DPRINTF(PercpuRoots, "cpu%d slot %d: kernel entry synced from the guest\n", cpu, slot);
  if (m_check && out.mismatch)
    violation(csprintf("cpu%d pcid %#x: the root's top-level entry %d is %#x, the guest's "
                       "pgd %#x has another", cpu, pcid, slot, pte, cr3_base));
  return out;
}

Cycles PercpuRootModel::takePendingCycles(ContextID cpu) {
  Cycles owed = m_pending.at(cpu);
  m_pending[cpu] = Cycles(0);
  return owed;
}

std::vector<X86ISA::Walker::WalkInfo::LineCopy> PercpuRootModel::takePendingCopies(
    ContextID cpu) {
  return std::exchange(m_pending_copies.at(cpu), {});
}

PercpuRootModel::Stats::Stats(PercpuRootModel* parent)
    : statistics::Group(parent),
      model(parent),
      rootPoolPeakBytes(this, percpu::stat::kRootPoolPeakBytes, statistics::units::Byte::get(),
               "most root-pool bytes in use at once since the model started"),
      rootPoolBoundBytes(this, percpu::stat::kRootPoolBoundBytes, statistics::units::Byte::get(),
               "the proposal's bound: 4 KiB x CPUs x 6 ASIDs (x2 with PTI)"),
      maxLazyFaultsPerRoot(this, percpu::stat::kMaxLazyFaultsPerRoot, statistics::units::Count::get(),
               "most lazy faults one root generation took (bound: one per user top-level slot, "
               "lazyFaultBound in core/root/bounds.h)"),
      checkerViolations(this, percpu::stat::kCheckerViolations, statistics::units::Count::get(),
               "root walks and flushes that disagreed with the guest's pgd (--check)") {}

void PercpuRootModel::Stats::preDumpStats() {
  statistics::Group::preDumpStats();
  rootPoolPeakBytes = model->m_model->pool_peak_bytes();
  rootPoolBoundBytes = model->m_model->pool_bound_bytes();
  maxLazyFaultsPerRoot = model->m_model->max_lazy_faults_per_root();
}

}  // namespace gem5
