// Follows mm/mmap.c (do_mmap, do_vmi_munmap, brk) and mm/mprotect.c: VMAs are
// created, split and shrunk as Linux does; munmap frees the pages and the
// page tables left empty, and flushes (with freed_tables when tables went).
#include <algorithm>

#include "engine/engine_state.h"
#include "paging/pte.h"

namespace percpu {

namespace {
uint8_t prot_of(int64_t p) { return static_cast<uint8_t>(p); }
uint64_t page_align(int64_t bytes) {
  return (static_cast<uint64_t>(bytes) + kPageSize - 1) & ~(kPageSize - 1);
}

// The range [start, end) a munmap or mprotect op names inside VMA v: from
// offset, length bytes or to the VMA's end when length < 0, clipped to the VMA
// (empty when start >= end).
struct OpRange {
  VirtAddr start, end;
};
OpRange op_range(const Vma& v, int64_t offset, int64_t length) {
  VirtAddr s = v.start + static_cast<uint64_t>(offset);
  VirtAddr e = length < 0 ? v.end : std::min(v.end, s + static_cast<uint64_t>(length));
  return {s, e};
}
}  // namespace

// The VMA a task's op names (its mm's VMA of that name), or a workload error.
Vma& Engine::vma_of(Task* t, int64_t name) {
  if (!t->mm) workload_error(t, "a kernel thread has no address space for this op");
  Mm& m = *t->mm;
  auto it = m.vma_by_name.find(static_cast<int>(name));
  if (it == m.vma_by_name.end())
    workload_error(t, "no VMA named '" + m_program.vma_names[name] + "' in its mm: mmap it first");
  return m.vmas.at(it->second);
}

// mmap: the VMA at an address or placed top-down (addr -1).
void Engine::do_mmap(Cpu& c, Task* t, const Op& op) {
  namespace arg = op_args::Mmap;
  if (!t->mm) workload_error(t, "a kernel thread has no address space for this op");
  Mm& m = *t->mm;
  const int name = static_cast<int>(arg::vma(op));
  const uint8_t prot = prot_of(arg::prot(op));
  uint64_t size = page_align(arg::size(op));
  VirtAddr start = static_cast<VirtAddr>(arg::addr(op));
  if (arg::addr(op) < 0) {  // auto: the highest free range below mmap_base, as Linux's top-down mmap
    start = m.top_down_start(size);
    if (start == 0)
      workload_error(t, "mmap of '" + m_program.vma_names[name] + "': no free range of " +
                            std::to_string(size) + " bytes below the mmap base");
  }
  if (m.vma_by_name.count(name))
    workload_error(t, "VMA '" + m_program.vma_names[name] + "' is already mapped");
  for (const auto& [s, v] : m.vmas)
    if (start < v.end && v.start < start + size)
      workload_error(t, "mmap of '" + m_program.vma_names[name] + "' overlaps VMA '" +
                            m_program.vma_names[v.name] + "'");
  m.vmas[start] = Vma{start, start + size, prot, name};
  m.vma_by_name[name] = start;
  log_vma(LogRecord::MapVma, m, start, start + size, prot);
  charge(c, Cat::Syscall, m_cost.syscall);
}

// munmap: the VMA keeps its name on the part below the hole, else on the part above it.
void Engine::do_munmap_vma(Cpu& c, Task* t, const Op& op) {
  namespace arg = op_args::Munmap;
  Vma copy = vma_of(t, arg::vma(op));
  Mm& m = *t->mm;
  charge(c, Cat::Syscall, m_cost.syscall);
  auto [s, e] = op_range(copy, arg::offset(op), arg::length(op));
  if (s >= e) return;
  m.vmas.erase(copy.start);
  m.vma_by_name.erase(copy.name);
  if (copy.start < s) {
    m.vmas[copy.start] = Vma{copy.start, s, copy.prot, copy.name};
    m.vma_by_name[copy.name] = copy.start;
  }
  if (e < copy.end) {
    m.vmas[e] = Vma{e, copy.end, copy.prot, copy.start < s ? -1 : copy.name};
    if (copy.start >= s) m.vma_by_name[copy.name] = e;
  }
  log_vma(LogRecord::UnmapVma, m, s, e, 0);
  do_munmap(c, m, s, e);
}

// mprotect: the VMA splits into up to three parts so that protections stay
// exact; the name goes with the changed part.
void Engine::do_mprotect(Cpu& c, Task* t, const Op& op) {
  namespace arg = op_args::Mprotect;
  Vma copy = vma_of(t, arg::vma(op));
  Mm& m = *t->mm;
  const uint8_t prot = prot_of(arg::prot(op));
  charge(c, Cat::Syscall, m_cost.syscall);
  auto [s, e] = op_range(copy, arg::offset(op), arg::length(op));
  if (s >= e) return;
  m.vmas.erase(copy.start);
  if (copy.start < s) m.vmas[copy.start] = Vma{copy.start, s, copy.prot, -1};
  m.vmas[s] = Vma{s, e, prot, copy.name};
  if (e < copy.end) m.vmas[e] = Vma{e, copy.end, copy.prot, -1};
  m.vma_by_name[copy.name] = s;
  log_vma(LogRecord::ProtectVma, m, s, e, prot);
  uint64_t flags = pte::kUser;
  if (prot & kProtWrite) flags |= pte::kWritable;
  if (!(prot & kProtExec)) flags |= pte::kNoExec;
  uint64_t changed = m_pt.protect(m.pgd, s, e, flags);
  charge(c, Cat::Kernel, changed * m_cost.pte_write);
  if (changed) flush_tlb_mm_range(c, m, s, e, false);
}

// brk: growing only moves the end; shrinking unmaps the tail.
void Engine::do_brk(Cpu& c, Task* t, const Op& op) {
  Vma& v = vma_of(t, op_args::Brk::vma(op));
  Vma copy = v;
  Mm& m = *t->mm;
  charge(c, Cat::Syscall, m_cost.syscall);
  VirtAddr new_end = copy.start + page_align(op_args::Brk::size(op));
  if (new_end > (1ull << 47)) workload_error(t, "brk would grow the VMA past the user half (2^47)");
  if (new_end >= copy.end) {
    for (const auto& [vs, other] : m.vmas)
      if (vs != copy.start && copy.end < other.end && other.start < new_end)
        workload_error(t, "brk would run into another VMA");
    v.end = new_end;
    log_vma(LogRecord::MapVma, m, copy.start, new_end, copy.prot);
    return;
  }
  v.end = new_end;
  log_vma(LogRecord::UnmapVma, m, new_end, copy.end, 0);
  do_munmap(c, m, new_end, copy.end);
}

// The page-table side of munmap (and of exit_mmap): unmap, free empty tables,
// clear PTI's user pgd entries that went, flush.
void Engine::do_munmap(Cpu& c, Mm& mm, VirtAddr start, VirtAddr end) {
  UnmapResult res = m_pt.unmap(mm.pgd, start, end, true);
  for (int slot : res.top_slots_cleared) {
    mm.top_slots_populated--;
    if (m_pti) m_mem.write(mm.user_pgd, slot, 0);
  }
  charge(c, Cat::Kernel, (res.pages + res.tables_freed) * m_cost.pte_write);
  if (res.pages > 0 || res.freed_tables())
    flush_tlb_mm_range(c, mm, start, end, res.freed_tables(), res.top_slots_cleared);
}

}  // namespace percpu
