#include "percpu_gem5/percpu_walker.hh"

#include "cpu/thread_context.hh"
#include "percpu_gem5/percpu_cr3_monitor.hh"
#include "percpu_gem5/percpu_root_model.hh"

namespace gem5 {

PercpuWalker::PercpuWalker(const Params& p) : X86ISA::Walker(p), m_roots(p.roots) {}

Addr PercpuWalker::walkRoot(WalkInfo& info) {
  // A functional walk (m5 ops, loaders, debuggers) must change nothing: it
  // walks the guest's own table, which translates the same.
  if (info.functional || !m_roots->hasRoots()) return info.cr3Base;
  const ContextID cpu = info.tc->contextId();
  const Addr root = m_roots->walkRoot(cpu, info.pcid, info.cr3Base);
  if (root != info.cr3Base) {
    const Cycles owed = m_roots->takePendingCycles(cpu);
    info.chargedCycles += owed;
    info.lineCopies = m_roots->takePendingCopies(cpu);
    if (PercpuCr3Monitor* m = m_roots->monitor(cpu)) m->noteRootWalk(owed);
  }
  return root;
}

uint64_t PercpuWalker::topLevelEntry(WalkInfo& info, Addr entry_addr, uint64_t pte) {
  if (info.functional || info.root == info.cr3Base) return pte;
  const ContextID cpu = info.tc->contextId();
  const int slot = (info.vaddr >> 39) & 511;
  const percpu::TopLevelOutcome out =
      m_roots->topLevelEntry(cpu, info.pcid, info.cr3Base, info.root, slot, pte);
  Cycles charged(0);
  if (out.lazy_fault) {
    charged = m_roots->lazyFaultCycles();
    info.chargedCycles += charged;
  }
  if (PercpuCr3Monitor* m = m_roots->monitor(cpu)) m->noteTopLevel(out, charged);
  return out.pte;
}

void PercpuWalker::lineCopiesDone(WalkInfo& info, Cycles cycles) {
  if (PercpuCr3Monitor* m = m_roots->monitor(info.tc->contextId())) m->noteRootCopy(cycles);
}

}  // namespace gem5
