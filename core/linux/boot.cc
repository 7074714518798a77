// Follows arch/x86/mm/init_64.c and mm/percpu.c as far as the model needs:
// init_mm's kernel half (per-CPU areas and kernel buffers in the direct map,
// the page tables of the fixmap kmap_local slots and the pkmap pool), PTI's
// user pgd of init_mm, each CPU's private per-CPU chain for the schemes that
// own a per-CPU slot, the root scheme, and every CPU coming up in init_mm.
#include "engine/engine_state.h"
#include "linux/kernel_layout.h"
#include "paging/pte.h"
#include "root/registry.h"

namespace percpu {

using namespace layout;

Frame Engine::kernel_table_for(int slot, VirtAddr offset) {
  return m_pt.leaf_table(m_init_mm->pgd, pte::kernel_va(m_levels, slot, offset), nullptr);
}

void Engine::boot() {
  // init_mm and the kernel half every mm copies.
  auto init = std::make_unique<Mm>();
  init->id = 0;
  init->ctx_id = m_next_ctx_id++;
  init->pgd = m_mem.alloc(FrameUse::PageTable);
  m_init_mm = init.get();
  m_mms.push_back(std::move(init));
  uint64_t kflags = pte::kWritable | pte::kNoExec | (m_pti ? 0 : pte::kGlobal);
  for (int cpu = 0; cpu < m_ncpus; ++cpu) {
    for (uint64_t p = 0; p < kPercpuAreaPages; ++p)
      m_pt.map(m_init_mm->pgd,
               pte::kernel_va(m_levels, kDirectMapSlot, (cpu * kPercpuAreaPages + p) << kPageShift),
               m_mem.alloc(FrameUse::Data), kflags, nullptr);
    for (uint64_t p = 0; p < kKernelBufferPages; ++p)
      m_pt.map(m_init_mm->pgd,
               pte::kernel_va(m_levels, kDirectMapSlot,
                              kKernelBufferOffset + ((cpu * kKernelBufferPages + p) << kPageShift)),
               m_mem.alloc(FrameUse::Data), kflags, nullptr);
  }
  // Page tables for the fixmap kmap_local slots and the pkmap pool (entries set on use).
  for (int cpu = 0; cpu < m_ncpus; ++cpu)
    for (int idx = 0; idx < kKmapMaxIdx; idx += kEntriesPerTable)
      kernel_table_for(kFixmapSlot, static_cast<uint64_t>(cpu * kKmapMaxIdx + idx) << kPageShift);
  for (int cpu = 0; cpu < m_ncpus; ++cpu)
    kernel_table_for(kFixmapSlot, static_cast<uint64_t>(cpu * kKmapMaxIdx) << kPageShift);
  int pool = m_params.get_int("kmap.pkmap_entries");
  for (int i = 0; i < pool; i += kEntriesPerTable)
    kernel_table_for(kPkmapSlot, static_cast<uint64_t>(i) << kPageShift);
  m_pkmap_count.assign(pool, 0);
  for (size_t i = 0; i < kPageCacheFrames; ++i) m_page_cache.push_back(m_mem.alloc(FrameUse::Data));

  // Per-CPU chains for the private per-CPU slot: per-CPU data at offset 0 and
  // a per-CPU pkmap pool (used only by schemes with private slots).
  // PTI's user tables map no kernel data (the entry trampoline is not modelled).
  Frame init_user_pgd = m_pti ? m_mem.alloc(FrameUse::PageTable) : kNoFrame;
  RootEnv env{.mem = m_table_mem,
              .levels = m_levels,
              .pti = m_pti,
              .ncpus = m_ncpus,
              .init_pgd = m_init_mm->pgd,
              .init_user_pgd = init_user_pgd,
              .fault_skip_root_invalidate = m_params.get_bool("fault.skip_root_invalidate"),
              .fill_at_fault = m_params.get_bool("root.fill_at_fault")};
  for (int cpu = 0; cpu < m_ncpus; ++cpu) {
    Frame scratch = m_mem.alloc(FrameUse::PageTable);
    m_percpu_scratch_roots.push_back(scratch);
    // The same frames as the stock per-CPU area: only the mapping differs.
    for (uint64_t p = 0; p < kPercpuAreaPages; ++p) {
      uint64_t leaf = m_pt.lookup(m_init_mm->pgd,
          pte::kernel_va(m_levels, kDirectMapSlot, (cpu * kPercpuAreaPages + p) << kPageShift));
      // Global like the stock mapping: every root of this CPU maps the same frame here.
      m_pt.map(scratch, pte::kernel_va(m_levels, kPercpuDataSlot, p << kPageShift),
               pte::frame(leaf), kflags, nullptr);
    }
    for (int i = 0; i < pool; i += kEntriesPerTable)
      m_pt.leaf_table(scratch,
                      pte::kernel_va(m_levels, kPercpuDataSlot,
                                     kPercpuPkmapOffset + (static_cast<uint64_t>(i) << kPageShift)),
                      nullptr);
    env.percpu_data_top.push_back(pte::frame(m_mem.read(scratch, kPercpuDataSlot)));
    m_cpus[cpu]->pkmap_count.assign(pool, 0);
  }
  m_scheme = make_root_scheme(m_scheme_request, env);
  m_root_pool_peak_pages = 0;

  // Every CPU starts in init_mm, slot 0, idle (lazy).
  for (auto& cp : m_cpus) {
    Cpu& c = *cp;
    m_init_mm->ever_on_cpu.set(c.id);
    start_in_init_mm(c);
  }
  m_root_pool_peak_pages = m_scheme->inspector().root_pages_live();
}

// A CPU coming up (boot or cpu_online): init_mm loaded in ASID slot 0, idle (lazy).
void Engine::start_in_init_mm(Cpu& c) {
  log_asid(AsidEvent::CpuOnline, c.id, m_init_mm->ctx_id);
  c.tlbstate = CpuTlbState(m_init_mm->ctx_id);
  c.loaded_mm = m_init_mm;
  m_init_mm->cpumask.set(c.id);
  RootSelection sel = m_scheme->select_root(c.id, 0, m_init_mm->view(), true);
  c.kernel_cr3.root = sel.kernel_root;
  c.user_cr3.root = sel.user_root;
  set_pcids(c, 0);
  c.tlbstate.set_lazy(true);
}

}  // namespace percpu
