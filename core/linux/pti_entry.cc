// Follows arch/x86/entry/calling.h (SWITCH_TO_KERNEL_CR3, SWITCH_TO_USER_CR3):
// with PTI every kernel entry and exit switches CR3 between the user and the
// kernel half of the pgd pair.
#include "engine/engine_state.h"

namespace percpu {

// Kernel entry and exit (syscall, page fault, lazy fault): two CR3 writes, with
// the no-flush bit when there is PCID, flushing every non-global entry when not.
void Engine::kernel_entry_exit(Cpu& c, Cat cat) {
  if (!m_pti) return;
  charge(c, cat, 2 * (m_pcid ? m_cost.cr3_noflush : m_cost.cr3_flush));
  if (!m_pcid) flush_current_asid(c);
}

}  // namespace percpu
