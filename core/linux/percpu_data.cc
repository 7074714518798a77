// Follows include/linux/percpu-defs.h (this_cpu_read): stock x86-64 reaches
// per-CPU data GS-relative in the direct map; a scheme with root-private
// slots maps this CPU's area at one fixed address, no segment prefix needed.
#include "engine/engine_state.h"
#include "linux/kernel_layout.h"
#include "paging/pte.h"

namespace percpu {

using namespace layout;

void Engine::this_cpu_read(Cpu& c, uint64_t count) {
  bool fixed = m_scheme->has_private_slots();
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t off = (i * kLineSize) % (kPercpuAreaPages * kPageSize);
    VirtAddr va = fixed ? pte::kernel_va(m_levels, kPercpuDataSlot, off)
                        : pte::kernel_va(m_levels, kDirectMapSlot,
                                         ((c.id * kPercpuAreaPages) << kPageShift) + off);
    memory_access(c, va, Access::Load, Mode::Kernel, Cat::PercpuData, nullptr);
    if (!fixed) charge(c, Cat::PercpuData, m_cost.gs_prefix);
    c.n.percpu_accesses++;
  }
}

}  // namespace percpu
