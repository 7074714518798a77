// Follows fs/exec.c (begin_new_exec, exec_mmap): the task gets a fresh mm of
// the template's image and switches to it; the old mm goes when its last user does.
#include "engine/engine_state.h"
#include "paging/pte.h"

namespace percpu {

void Engine::do_exec(Cpu& c, Task* t, int mm_template) {
  charge(c, Cat::Other, kernel_cost(t, m_cost.exec));
  if (!t->kmap_local.empty()) workload_error(t, "exec while holding kmap_local mappings");
  Mm* fresh = new_mm(mm_template, nullptr, Noise::child_key(t->key ^ 0xe8ec, t->images++));
  Mm* old = t->mm;
  t->mm = fresh;
  fresh->users++;
  switch_mm_irqs_off(c, fresh);
  if (old && --old->users == 0) exit_mmap(c, old);
}

// ASLR as an ELF load lays out a new image (fs/binfmt_elf.c load_elf_binary,
// arch/x86/mm/mmap.c arch_pick_mmap_layout): the stack top moves down by up to
// STACK_RND_MASK (0x3fffff) pages, the brk heap up by up to 32 MiB
// (arch_randomize_brk), the mmap base down by up to 2^mmap_rnd_bits (28) pages.
// The op program's VMAs named "stack" and "heap" are the stack and the brk
// heap; others stay where the program put them (a non-PIE text, MAP_FIXED
// buffers, recorded layouts); `mmap ... auto` and `vma NAME auto` place below
// the mmap base (mm.h: under ASLR its gap also covers the stack's shift). A
// move that would overlap another VMA or leave user space is not made.
void Engine::randomize_layout(Mm& mm, uint64_t key) {
  m_noise_aslr_images++;
  uint64_t stack_pages = m_noise.below(Noise::Stack, key, 0, kStackRndMaskPages + 1);
  uint64_t heap_pages = m_noise.below(Noise::Heap, key, 0, (32ull << 20) >> kPageShift);
  uint64_t mmap_pages = m_noise.below(Noise::MmapBase, key, 0, 1ull << 28);
  mm.mmap_base = kMmapBaseAslr - (mmap_pages << kPageShift);
  std::map<VirtAddr, Vma> moved;
  for (const auto& [start, v] : mm.vmas) {
    const std::string& name = m_program.vma_names[v.name];
    int64_t shift = 0;
    if (name == "stack") shift = -static_cast<int64_t>(stack_pages << kPageShift);
    else if (name == "heap") shift = static_cast<int64_t>(heap_pages << kPageShift);
    Vma w = v;
    if (shift != 0) {
      VirtAddr s = v.start + static_cast<uint64_t>(shift), e = v.end + static_cast<uint64_t>(shift);
      bool ok = s >= kPageSize && e <= pte::level_span(m_levels) * pte::kUserSlots && s < e;
      for (const auto& [s2, o] : mm.vmas)
        if (s2 != start && s < o.end && o.start < e) ok = false;
      if (ok) {
        w.start = s;
        w.end = e;
      }
    }
    moved[w.start] = w;
  }
  // Two moved VMAs could meet; then keep the program's layout.
  VirtAddr prev_end = 0;
  for (const auto& [s, v] : moved) {
    if (s < prev_end) return;
    prev_end = v.end;
  }
  mm.vmas = std::move(moved);
  for (const auto& [s, v] : mm.vmas) mm.vma_by_name[v.name] = s;
}

}  // namespace percpu
