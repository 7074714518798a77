// Follows kernel/exit.c (do_exit) and mm/mmap.c (exit_mmap): the last user of
// an mm unmaps everything and frees its page tables with a freed_tables flush;
// CPUs still holding the mm lazily switch to init_mm, and its roots go back
// to the scheme's pool.
#include "engine/engine_state.h"
#include "paging/pte.h"

namespace percpu {

void Engine::do_exit(Cpu& c, Task* t) {
  charge(c, Cat::Other, m_cost.exit);
  if (!t->kmap_local.empty() || !t->kmaps.empty())
    workload_error(t, "exits holding kmap mappings: unmap them first");
  t->state = TaskState::Exited;
  c.current = nullptr;
  Mm* mm = t->mm;
  t->mm = nullptr;
  if (mm && --mm->users == 0) exit_mmap(c, mm);
  try_finish_offline(c.clock);
}

void Engine::exit_mmap(Cpu& c, Mm* mm) {
  do_munmap(c, *mm, 0, pte::level_span(m_levels) * pte::kUserSlots);
  for (auto& cp : m_cpus) {
    Cpu& other = *cp;
    if (other.loaded_mm == mm) {
      if (&other != &c) other.n.lazy_switch_to_init++;
      switch_to_init_mm(other);
    }
  }
  m_scheme->on_mm_destroyed(mm->view());
  m_mem.free(mm->pgd);
  if (mm->user_pgd) m_mem.free(mm->user_pgd);
  mm->alive = false;
  log_vma(LogRecord::DropMm, *mm, 0, 0, 0);
  if (mm->template_id >= 0 && m_template_instance[mm->template_id] == mm)
    m_template_instance[mm->template_id] = nullptr;
}

}  // namespace percpu
