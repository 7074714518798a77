#include "percpu_gem5/percpu_cr3_monitor.hh"

#include "base/logging.hh"
#include "base/trace.hh"
#include "cpu/base.hh"
#include "cpu/thread_context.hh"
#include "debug/PercpuCr3Monitor.hh"
#include "percpu_gem5/percpu_root_model.hh"

namespace gem5 {

PercpuCr3Monitor::PercpuCr3Monitor(const Params& p)
    : SimObject(p), m_cpu(p.cpu), m_pti(p.pti), m_roots(p.roots), m_stats(this) {
  fatal_if(!m_cpu, "%s: no CPU to monitor", name());
}

void PercpuCr3Monitor::regProbeListeners() {
  if (m_roots) m_roots->attachMonitor(m_cpu->getContext(0)->contextId(), this);
  for (ThreadID t = 0; t < m_cpu->numThreads; ++t) {
    ProbeManager* pm = m_cpu->getContext(t)->getIsaPtr()->getProbeManager();
    m_listeners.push_back(std::make_unique<ProbeListenerArgFunc<X86ISA::Cr3WriteEvent>>(
        pm, "Cr3Write", [this](const X86ISA::Cr3WriteEvent& e) { on_cr3_write(e); }));
    m_listeners.push_back(std::make_unique<ProbeListenerArgFunc<X86ISA::InvlpgEvent>>(
        pm, "Invlpg", [this](const X86ISA::InvlpgEvent& e) { on_invlpg(e); }));
    m_listeners.push_back(std::make_unique<ProbeListenerArgFunc<X86ISA::InvpcidEvent>>(
        pm, "Invpcid", [this](const X86ISA::InvpcidEvent& e) { on_invpcid(e); }));
  }
}

void PercpuCr3Monitor::on_cr3_write(const X86ISA::Cr3WriteEvent& e) {
  const percpu::Cr3Write w =
      percpu::Cr3WriteClassifier::classify(e.oldCr3, e.newCr3, e.pcide, m_pti);
  ++m_stats.cr3Writes;
  if (w.no_flush)
    ++m_stats.cr3WritesNoFlush;
  else
    ++m_stats.cr3WritesFlushed;
  if (w.nonzero_pcid) ++m_stats.cr3WritesNonZeroPcid;
  switch (w.kind) {
    case percpu::Cr3WriteKind::MmSwitch:
      ++m_stats.mmSwitches;
      if (w.flushes()) ++m_stats.mmSwitchesFlushed;
      break;
    case percpu::Cr3WriteKind::PtiSwitch:
      ++m_stats.ptiSwitches;
      break;
    case percpu::Cr3WriteKind::Reload:
      ++m_stats.reloads;
      break;
  }
  DPRINTF(PercpuCr3Monitor, "cpu%d CR3 %#x -> %#x pcide=%d: %s%s, pcid %#x, pgd %#x\n",
          e.tc->contextId(), e.oldCr3, e.newCr3, e.pcide, percpu::to_string(w.kind),
          w.no_flush ? " (no flush)" : "", w.pcid, w.to.pgd);
  if (!m_roots) return;
  const percpu::Cr3Outcome out = m_roots->cr3Write(e.tc->contextId(), e);
  if (out.allocated) {
    m_stats.rootAllocs[static_cast<int>(out.cause) - 1]++;  // bucket 0 is firstUse
    m_stats.rootCopyBytes += out.copy_bytes;
  }
  m_stats.rootEntriesDropped += out.entries_dropped;
}

void PercpuCr3Monitor::noteRootWalk(Cycles owed) {
  ++m_stats.rootWalks;
  m_stats.rootChargedCycles += owed;
  m_stats.rootCopyCycles += owed;  // what allocations owe: the cost table's part
}

void PercpuCr3Monitor::noteRootCopy(Cycles took) {
  ++m_stats.rootCopies;
  m_stats.rootCopyCycles += took;
}

void PercpuCr3Monitor::noteTopLevel(const percpu::TopLevelOutcome& out, Cycles charged) {
  if (out.lazy_fault) ++m_stats.lazyFaults;
  if (out.kernel_sync) ++m_stats.kernelSyncs;
  if (out.pushed) ++m_stats.rootEntriesPushed;
  m_stats.rootChargedCycles += charged;
}

void PercpuCr3Monitor::on_invlpg(const X86ISA::InvlpgEvent& e) {
  ++m_stats.invlpg;
  DPRINTF(PercpuCr3Monitor, "cpu%d INVLPG %#x pcid %#x\n", e.tc->contextId(), e.vaddr, e.pcid);
  if (m_roots) m_stats.rootEntriesDropped += m_roots->invlpg(e.tc->contextId(), e.pcid);
}

void PercpuCr3Monitor::on_invpcid(const X86ISA::InvpcidEvent& e) {
  m_stats.invpcid[e.type]++;
  DPRINTF(PercpuCr3Monitor, "cpu%d INVPCID type %d pcid %#x addr %#x\n", e.tc->contextId(),
          e.type, e.pcid, e.vaddr);
  if (m_roots) m_stats.rootEntriesDropped += m_roots->invpcid(e.tc->contextId(), e);
}

PercpuCr3Monitor::Stats::Stats(statistics::Group* parent)
    : statistics::Group(parent),
      ADD_STAT(cr3Writes, statistics::units::Count::get(), "CR3 writes"),
      ADD_STAT(cr3WritesNoFlush, statistics::units::Count::get(),
               "CR3 writes with the no-flush bit (bit 63, CR4.PCIDE=1)"),
      ADD_STAT(cr3WritesFlushed, statistics::units::Count::get(),
               "CR3 writes that flush the loaded PCID's non-global entries"),
      ADD_STAT(cr3WritesNonZeroPcid, statistics::units::Count::get(),
               "CR3 writes loading a PCID other than 0"),
      ADD_STAT(mmSwitches, statistics::units::Count::get(),
               "CR3 writes that change the address space (pgd, pcid), PTI halves folded"),
      ADD_STAT(mmSwitchesFlushed, statistics::units::Count::get(),
               "mm switches without the no-flush bit"),
      ADD_STAT(ptiSwitches, statistics::units::Count::get(),
               "CR3 writes between PTI's kernel and user halves of one address space"),
      ADD_STAT(reloads, statistics::units::Count::get(), "CR3 writes of the value it held"),
      ADD_STAT(invlpg, statistics::units::Count::get(), "INVLPG instructions"),
      ADD_STAT(invpcid, statistics::units::Count::get(), "INVPCID instructions by type"),
      rootAllocs(this, percpu::stat::kRootAllocs, statistics::units::Count::get(),
               "root allocations by cause (inferred from the (cpu, pcid, pgd) history)"),
      rootCopyBytes(this, percpu::stat::kRootCopyBytes, statistics::units::Byte::get(),
               "page-table bytes root allocations copied"),
      lazyFaults(this, percpu::stat::kLazyFaults, statistics::units::Count::get(),
               "walks that found a root's user top-level entry empty where the guest's pgd "
               "has one"),
      rootEntriesDropped(this, percpu::stat::kRootEntriesDropped, statistics::units::Count::get(),
               "root user entries flushes dropped (they no longer matched the guest's pgd)"),
      kernelSyncs(this, percpu::stat::kKernelSyncs, statistics::units::Count::get(),
               "root kernel entries synced from the guest's pgd on a walk"),
      ADD_STAT(rootEntriesPushed, statistics::units::Count::get(),
               "percpu-eager: new guest pgd entries pushed to the mm's roots when first seen"),
      ADD_STAT(rootWalks, statistics::units::Count::get(), "walks that started from a root"),
      ADD_STAT(rootChargedCycles, statistics::units::Cycle::get(),
               "cycles charged to walks for root allocations and lazy faults (cost table)"),
      ADD_STAT(rootCopies, statistics::units::Count::get(),
               "walks that made root copies as memory traffic (timing walks)"),
      rootCopyCycles(this, percpu::stat::kRootCopyCycles, statistics::units::Cycle::get(),
               "cycles allocating and copying roots: cost.root_alloc charged, plus the "
               "copies' reads and writes") {
  invpcid.init(4);
  invpcid.subname(0, "individualAddress");
  invpcid.subname(1, "singleContext");
  invpcid.subname(2, "allContextsGlobal");
  invpcid.subname(3, "allContexts");
  // One bucket per cause but none (core/linux/asid.h), in its order.
  rootAllocs.init(percpu::kNumNewAsidCauses - 1).flags(statistics::total);
  for (int c = 1; c < percpu::kNumNewAsidCauses; ++c)
    rootAllocs.subname(c - 1, percpu::kNewAsidCauseNames[c]);
}

}  // namespace gem5
