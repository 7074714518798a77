// The timer tick (noise.tick_hz): a busy CPU takes an interrupt every 1/HZ,
// at a phase drawn per seed and CPU, so where the ticks fall against the
// workload differs from run to run. Idle CPUs take none (CONFIG_NO_HZ_IDLE):
// after an idle stretch the next tick is the first on the CPU's grid after now.
// The interrupt costs cost.tick and, with PTI, the kernel entry's CR3 switches.
#include "engine/engine_state.h"

namespace percpu {

void Engine::timer_tick(Cpu& c) {
  m_noise_ticks++;
  charge(c, Cat::Kernel, m_tick_cost);
  kernel_entry_exit(c, Cat::Kernel);
  Cycles phase = c.next_tick % m_tick_period;
  c.next_tick = phase + ((c.clock - phase) / m_tick_period + 1) * m_tick_period;
}

}  // namespace percpu

namespace percpu {

Cycles Engine::kernel_cost(Task* t, Cycles cycles) {
  if (!t || !m_noise.kernel_jitter()) return cycles;
  return m_noise.kernel_jittered(cycles, t->key, t->kernel_paths++);
}

}  // namespace percpu
