// Follows kernel/fork.c: mm_alloc with pgd_alloc (a new top level with the
// kernel half copied, and PTI's user pgd), dup_mmap (the child gets the
// parent's VMAs; the parent's pages are write-protected for COW and its TLB
// flushed), and copy_process for threads (clone) and children (fork).
#include "engine/engine_state.h"
#include "engine/errors.h"
#include "paging/pte.h"

namespace percpu {

Mm* Engine::new_mm(int template_id, const Mm* copy_from, uint64_t key) {
  auto mm = std::make_unique<Mm>();
  mm->id = m_next_mm_id++;
  mm->template_id = template_id;
  mm->ctx_id = m_next_ctx_id++;
  mm->tlb_gen = 1;
  // pgd_alloc: a new top level with the kernel half copied (both schemes pay it).
  mm->pgd = m_mem.alloc(FrameUse::PageTable);
  auto& src = m_mem.table(m_init_mm->pgd);
  std::copy(src.begin() + pte::kFirstKernelSlot, src.end(),
            m_mem.table(mm->pgd).begin() + pte::kFirstKernelSlot);
  if (m_pti) mm->user_pgd = m_mem.alloc(FrameUse::PageTable);
  m_mms_created++;
  if (m_record_log) {
    LogRecord r{};
    r.kind = copy_from ? LogRecord::CopyMm : LogRecord::NewMm;
    r.mm = mm->id;
    r.other_mm = copy_from ? copy_from->id : -1;
    m_log.push_back(r);
  }
  if (copy_from) {
    mm->vmas = copy_from->vmas;
    mm->vma_by_name = copy_from->vma_by_name;
    mm->mmap_base = copy_from->mmap_base;  // fork keeps the parent's layout
  } else if (template_id >= 0) {
    const auto& tvmas = m_program.mms[template_id].vmas;
    for (const Vma& v : tvmas) {
      if (v.start >= kVmaAuto) continue;
      mm->vmas[v.start] = v;
      mm->vma_by_name[v.name] = v.start;
    }
    if (m_noise.aslr()) randomize_layout(*mm, key);
    // The image's own mmaps before it starts (an auto VMA), in template order.
    for (const Vma& v : tvmas) {
      if (v.start < kVmaAuto) continue;
      Vma w = v;
      w.start = mm->top_down_start(v.end - v.start);
      if (w.start == 0)
        throw ProgramError("mm '" + m_program.mms[template_id].name + "' VMA '" +
                           m_program.vma_names[v.name] + "': no room below the mmap base");
      w.end = w.start + (v.end - v.start);
      mm->vmas[w.start] = w;
      mm->vma_by_name[w.name] = w.start;
    }
    for (auto& [start, v] : mm->vmas) {
      const bool populate = v.prot & kVmaPopulate;
      v.prot &= static_cast<uint8_t>(~kVmaPopulate);
      log_vma(LogRecord::MapVma, *mm, v.start, v.end, v.prot);
      if (populate) populate_vma(*mm, v);
    }
  }
  Mm* raw = mm.get();
  m_mms.push_back(std::move(mm));
  return raw;
}

// `vma ... populate`: every page of v mapped before the program starts, as the
// demand faults of a guest program that touched them before its region of interest
// would have (do_user_addr_fault's mapping, nothing charged: no CPU runs it). The mm is
// new, so no root of it exists yet to learn the new top-level entries.
void Engine::populate_vma(Mm& mm, const Vma& v) {
  uint64_t flags = pte::kUser;
  if (v.prot & kProtWrite) flags |= pte::kWritable;
  if (!(v.prot & kProtExec)) flags |= pte::kNoExec;
  for (VirtAddr va = v.start; va < v.end; va += kPageSize) {
    if (pte::present(m_pt.lookup(mm.pgd, va))) continue;
    Frame frame = m_mem.alloc(FrameUse::Data);
    uint64_t tables = 0;
    if (m_pt.map(mm.pgd, va, frame, flags, &tables)) {
      int slot = pte::index(va, m_levels);
      mm.top_slots_populated++;
      if (m_pti) m_mem.write(mm.user_pgd, slot, m_mem.read(mm.pgd, slot));
    }
  }
}

// The instance of mm template `tmpl` that tasks naming it share (its threads).
// The program's start-time processes share one ASLR draw: a workload is one
// program that forks its processes, and fork keeps the parent's layout (the
// guest programs do exactly that), so their mmap'd heaps all sit in one slot.
// A later instance (spawn) is a fresh image with a draw of its own.
Mm* Engine::template_instance(int tmpl, bool at_start) {
  if (!m_template_instance[tmpl]) {
    const uint64_t gen = m_template_generation[tmpl]++;
    const uint64_t key = at_start ? Noise::child_key(kLauncherKey, 0)
                                  : Noise::child_key(~static_cast<uint64_t>(tmpl), gen);
    m_template_instance[tmpl] = new_mm(tmpl, nullptr, key);
  }
  return m_template_instance[tmpl];
}

Engine::Task* Engine::new_task(int template_id, Mm* mm, Cpu* parent_cpu, Task* parent,
                               bool runnable) {
  auto t = std::make_unique<Task>();
  t->id = static_cast<int>(m_next_task_id++);
  t->key = parent ? Noise::child_key(parent->key, parent->children++)
                  : Noise::child_key(0, static_cast<uint64_t>(template_id));
  t->tmpl = template_id;
  t->mm = mm;
  if (mm) mm->users++;
  const auto& tmpl = m_program.tasks[template_id];
  for (int i = 0; i < m_ncpus; ++i)
    if (tmpl.cpus.test(i)) t->allowed.set(i);
  // The random-access stream: by lineage under noise (the same for every scheme), else
  // in creation order as before noise existed.
  t->rng = m_noise.on() ? Rng(m_noise.u64(Noise::TaskRng, t->key, 0)) : Rng(m_rng.next());
  Task* raw = t.get();
  m_tasks.push_back(std::move(t));
  Cycles now = parent_cpu ? parent_cpu->clock : 0;
  if (runnable) enqueue(raw, parent_cpu, now);
  return raw;
}

// spawn TASK waiting: TASK's first op is `wait CHAN`, taken as already run elsewhere (a
// traced thread arriving on a CPU it has not run on: its wait began on the previous
// one), so the new task blocks on CHAN without a run, a switch or a syscall of its own.
void Engine::start_waiting(Cpu& c, Task* t) {
  const Op& wait = m_program.tasks[t->tmpl].ops[0];  // program_check: a Wait
  Chan& ch = *m_chans[op_args::Wait::chan(wait)];
  t->pc = 1;
  if (ch.count > 0) {  // already signalled: the wait returns at once
    ch.count--;
    enqueue(t, &c, c.clock);
    return;
  }
  t->cpu = place_or_fail(t, &c);
  t->state = TaskState::Blocked;
  t->blocked_since = c.clock;
  ch.waiters.push_back(t);
}

// spawn: a task of template `child` in its template's mm (a thread when that is
// the spawner's mm, else a new process image) or a kernel thread.
void Engine::do_spawn(Cpu& c, Task* t, int child, bool waiting) {
  const auto& tmpl = m_program.tasks[child];
  Mm* child_mm = nullptr;
  if (tmpl.mm >= 0) {
    child_mm = template_instance(tmpl.mm);
  } else if (tmpl.mm == kMmFork) {
    workload_error(t, "spawn of '" + tmpl.name + "' which has mm=fork: use fork");
  }
  charge(c, Cat::Other, kernel_cost(t, tmpl.mm == kMmKernel ? m_cost.clone_thread
                              : (child_mm == t->mm ? m_cost.clone_thread : m_cost.exec)));
  Task* task = new_task(child, child_mm, &c, t, !waiting);
  if (waiting) start_waiting(c, task);
}

void Engine::do_fork(Cpu& c, Task* t, int child) {
  if (!t->mm) workload_error(t, "a kernel thread has no address space for this op");
  Mm& parent = *t->mm;
  charge(c, Cat::Other, kernel_cost(t, m_cost.fork));
  Mm* child_mm = new_mm(m_program.tasks[child].mm >= 0 ? m_program.tasks[child].mm : -1, &parent);
  // dup_mmap write-protects the parent's pages for COW and calls flush_tlb_mm,
  // which x86 defines with freed_tables = true (asm/tlbflush.h).
  flush_tlb_mm_range(c, parent, 0, pte::level_span(m_levels) * pte::kUserSlots, true);
  new_task(child, child_mm, &c, t);
}

}  // namespace percpu
