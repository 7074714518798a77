// The per-CPU one of the plugin's three SimObjects (with PercpuRootModel,
// one per system, and PercpuWalker): it counts the CR3 writes, INVLPGs and
// INVPCIDs of one CPU, so that a run can report how often the guest switches mm and how many
// of those switches flush the TLB. It listens to the probe points that the
// patched X86 ISA fires once each operation has taken effect
// (arch/x86/tlb_events.hh); what a CR3 write means is decided by
// percpu::Cr3WriteClassifier alone.
#pragma once
#include <memory>
#include <vector>

#include "arch/x86/tlb_events.hh"
#include "base/statistics.hh"
#include "params/PercpuCr3Monitor.hh"
#include "percpu_gem5/cr3_write_classifier.hh"
#include "percpu_gem5/root_model.hh"
#include "sim/probe/probe.hh"
#include "sim/sim_object.hh"

namespace gem5 {

class BaseCPU;
class PercpuRootModel;

class PercpuCr3Monitor : public SimObject {
 public:
  using Params = PercpuCr3MonitorParams;
  explicit PercpuCr3Monitor(const Params& p);

  // Probe points exist from regProbePoints() on, which gem5 runs for every
  // object before any regProbeListeners().
  void regProbeListeners() override;

  // From the CPU's walkers: a walk started from a root (owed: the cycles of
  // the last allocation it was charged), and what its top-level read found.
  void noteRootWalk(Cycles owed);
  void noteRootCopy(Cycles took);
  void noteTopLevel(const percpu::TopLevelOutcome& out, Cycles charged);

 private:
  void on_cr3_write(const X86ISA::Cr3WriteEvent& e);
  void on_invlpg(const X86ISA::InvlpgEvent& e);
  void on_invpcid(const X86ISA::InvpcidEvent& e);

  BaseCPU* m_cpu;
  const bool m_pti;
  PercpuRootModel* m_roots;
  std::vector<std::unique_ptr<ProbeListener>> m_listeners;

  // Stat names are the ones the analysis reads from stats.txt.
  struct Stats : public statistics::Group {
    explicit Stats(statistics::Group* parent);
    statistics::Scalar cr3Writes;
    statistics::Scalar cr3WritesNoFlush;
    statistics::Scalar cr3WritesFlushed;
    statistics::Scalar cr3WritesNonZeroPcid;
    statistics::Scalar mmSwitches;
    statistics::Scalar mmSwitchesFlushed;
    statistics::Scalar ptiSwitches;
    statistics::Scalar reloads;
    statistics::Scalar invlpg;
    statistics::Vector invpcid;
    // The root model's, per CPU (0 without one), named as the engine's stats
    // and /proc/percpu_roots (core/root/names.h gives the names).
    statistics::Vector rootAllocs;
    statistics::Scalar rootCopyBytes;
    statistics::Scalar lazyFaults;
    statistics::Scalar rootEntriesDropped;
    statistics::Scalar kernelSyncs;
    statistics::Scalar rootEntriesPushed;
    statistics::Scalar rootWalks;
    statistics::Scalar rootChargedCycles;
    statistics::Scalar rootCopies;
    statistics::Scalar rootCopyCycles;
  } m_stats;
};

}  // namespace gem5
