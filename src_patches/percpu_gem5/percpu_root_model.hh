// The gem5 face of percpu::RootModel (root_model.hh): one per system. It
// reads and writes guest memory through the system's functional port, owns
// the system-wide stats (root pool, lazy-fault bound, checker) and what an
// allocation leaves to the CPU's next walk: the cost table's cycles, and the
// copy as line copies the walk sends to memory (src_patches/0010).
#pragma once
#include <memory>
#include <vector>

#include "arch/x86/pagetable_walker.hh"
#include "arch/x86/tlb_events.hh"
#include "base/statistics.hh"
#include "base/types.hh"
#include "params/PercpuRootModel.hh"
#include "percpu_gem5/root_model.hh"
#include "sim/sim_object.hh"

namespace gem5 {

class PercpuCr3Monitor;
class System;

class PercpuRootModel : public SimObject {
 public:
  using Params = PercpuRootModelParams;
  explicit PercpuRootModel(const Params& p);

  bool hasRoots() const { return m_model->has_roots(); }
  bool checking() const { return m_check; }

  // From a CPU's monitor, after the operation took effect.
  percpu::Cr3Outcome cr3Write(ContextID cpu, const X86ISA::Cr3WriteEvent& e);
  int invlpg(ContextID cpu, uint16_t pcid);
  int invpcid(ContextID cpu, const X86ISA::InvpcidEvent& e);

  // From the CPU's walkers (timing and atomic walks; never functional ones).
  Addr walkRoot(ContextID cpu, uint16_t pcid, Addr cr3_base);
  percpu::TopLevelOutcome topLevelEntry(ContextID cpu, uint16_t pcid, Addr cr3_base, Addr root,
                                        int slot, uint64_t pte);
  // What the CPU's allocations since its last walk from a root owe: their
  // cycles, and their copies as line copies for the walk to make. The next
  // walk from a root takes them (the first access after the CR3 write that
  // allocated: a new generation's TLB holds nothing of the root).
  Cycles takePendingCycles(ContextID cpu);
  std::vector<X86ISA::Walker::WalkInfo::LineCopy> takePendingCopies(ContextID cpu);
  Cycles lazyFaultCycles() const { return m_lazy_fault_cycles; }

  // The CPU's monitor, for the per-CPU stats (registered by the monitor).
  void attachMonitor(ContextID cpu, PercpuCr3Monitor* monitor);
  PercpuCr3Monitor* monitor(ContextID cpu) const;

 private:
  class GuestMemory;
  // pcid < 0: every PCID of the CPU was flushed.
  void afterFlush(ContextID cpu, const char* what, int pcid);
  void violation(const std::string& what);

  std::unique_ptr<GuestMemory> m_mem;
  std::unique_ptr<percpu::RootModel> m_model;
  const Cycles m_root_alloc_cycles, m_lazy_fault_cycles;
  const bool m_check;
  std::vector<Cycles> m_pending;
  std::vector<std::vector<X86ISA::Walker::WalkInfo::LineCopy>> m_pending_copies;
  std::vector<PercpuCr3Monitor*> m_monitors;

  struct Stats : public statistics::Group {
    Stats(PercpuRootModel* parent);
    void preDumpStats() override;
    PercpuRootModel* model;
    statistics::Scalar rootPoolPeakBytes;
    statistics::Scalar rootPoolBoundBytes;
    statistics::Scalar maxLazyFaultsPerRoot;
    statistics::Scalar checkerViolations;
  } m_stats;
};

}  // namespace gem5
