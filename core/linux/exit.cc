// Follows kernel/exit.c (do_exit) and mm/mmap.c (exit_mmap): the last user of
// an mm unmaps everything and frees its page tables with a freed_tables flush;
// CPUs still holding the mm lazily switch to init_mm, and its roots go back
// to the scheme's pool.
#include <algorithm>

#include "engine/engine_state.h"
#include "paging/pte.h"

namespace percpu {

void Engine::do_exit(Cpu& c, Task* t) {
  charge(c, Cat::Other, kernel_cost(t, m_cost.exit));
  if (!t->kmap_local.empty() || !t->kmaps.empty())
    workload_error(t, "exits holding kmap mappings: unmap them first");
  t->state = TaskState::Exited;
  c.current = nullptr;
  Mm* mm = t->mm;
  t->mm = nullptr;
  if (mm && --mm->users == 0) exit_mmap(c, mm);
  try_finish_offline(c.clock);
  reap(t);
}

// release_task: an exited task is freed at once (nothing waits for it: the
// program's wait/signal pairs stand for waitpid), so a run's memory and scans
// follow its live tasks, not every task it ever had. The CPUs that remember it
// as the last to run, or as the owner of a root's private kmap area, forget it:
// it holds no mapping, and the next switch there is a switch whoever comes.
void Engine::reap(Task* t) {
  for (auto& cp : m_cpus) {
    if (cp->last == t) cp->last = nullptr;
    for (auto& [asid, owner] : cp->kmap_owner)
      if (owner == t) owner = nullptr;
  }
  auto it = std::find_if(m_tasks.begin(), m_tasks.end(),
                         [t](const std::unique_ptr<Task>& p) { return p.get() == t; });
  if (it != m_tasks.end()) m_tasks.erase(it);
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
  mm_free_global_asid(*mm);
  m_mem.free(mm->pgd);
  if (mm->user_pgd) m_mem.free(mm->user_pgd);
  mm->alive = false;
  log_vma(LogRecord::DropMm, *mm, 0, 0, 0);
  if (mm->template_id >= 0 && m_template_instance[mm->template_id] == mm)
    m_template_instance[mm->template_id] = nullptr;
  // __mmdrop: the mm itself goes (the translation log keeps its id, never reused).
  auto it = std::find_if(m_mms.begin(), m_mms.end(),
                         [mm](const std::unique_ptr<Mm>& p) { return p.get() == mm; });
  if (it != m_mms.end()) m_mms.erase(it);
}

}  // namespace percpu
