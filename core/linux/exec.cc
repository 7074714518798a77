// Follows fs/exec.c (begin_new_exec, exec_mmap): the task gets a fresh mm of
// the template's image and switches to it; the old mm goes when its last user does.
#include "engine/engine_state.h"

namespace percpu {

void Engine::do_exec(Cpu& c, Task* t, int mm_template) {
  charge(c, Cat::Other, m_cost.exec);
  if (!t->kmap_local.empty()) workload_error(t, "exec while holding kmap_local mappings");
  Mm* fresh = new_mm(mm_template, nullptr);
  Mm* old = t->mm;
  t->mm = fresh;
  fresh->users++;
  switch_mm_irqs_off(c, fresh);
  if (old && --old->users == 0) exit_mmap(c, old);
}

}  // namespace percpu
