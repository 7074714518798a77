// gem5's x86 walker, walking from the per-(cpu, pcid) root that
// PercpuRootModel picks (the hooks of src_patches/0008-0010).
#pragma once
#include "arch/x86/pagetable_walker.hh"
#include "params/PercpuWalker.hh"

namespace gem5 {

class PercpuRootModel;

class PercpuWalker : public X86ISA::Walker {
 public:
  using Params = PercpuWalkerParams;
  explicit PercpuWalker(const Params& p);

  Addr walkRoot(WalkInfo& info) override;
  uint64_t topLevelEntry(WalkInfo& info, Addr entry_addr, uint64_t pte) override;
  void lineCopiesDone(WalkInfo& info, Cycles cycles) override;

 private:
  PercpuRootModel* m_roots;
};

}  // namespace gem5
