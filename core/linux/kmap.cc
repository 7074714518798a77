// Follows mm/highmem.c and include/linux/highmem-internal.h (32-bit
// CONFIG_KMAP_LOCAL): kmap_local_page/kunmap_local in fixmap slots with a
// local INVLPG and __kmap_local_sched_out/in at context switch, and kmap()
// in the pkmap pool, flushed on every CPU when it wraps. With a scheme's
// root-private slots both become private: kmap_local in the root's own area
// (switched with CR3), kmap in a per-CPU pool flushed on this CPU alone.
#include <algorithm>

#include "engine/engine_state.h"
#include "linux/kernel_layout.h"
#include "paging/pte.h"

namespace percpu {

using namespace layout;

// The page a kmap maps: each task cycles through its own slice of the page
// cache (its "file"), so which frames a task copies does not depend on how
// CPUs interleave, and schemes stay comparable.
Frame Engine::page_cache_page(Task* t) {
  constexpr uint64_t kPagesPerTask = 64;
  uint64_t slot = static_cast<uint64_t>(t->id) * kPagesPerTask + (t->kmap_cursor++ % kPagesPerTask);
  return m_page_cache[slot % m_page_cache.size()];
}

VirtAddr Engine::kmap_local_va(Cpu& c, size_t idx) const {
  if (m_private_kmaps) return pte::kernel_va(m_levels, kPrivateKmapSlot, idx << kPageShift);
  return pte::kernel_va(m_levels, kFixmapSlot,
                        (static_cast<uint64_t>(c.id) * kKmapMaxIdx + idx) << kPageShift);
}

void Engine::install_kmap_local(Cpu& c, Task* t, size_t idx) {
  auto& slot = t->kmap_local[idx];
  VirtAddr va = kmap_local_va(c, idx);
  Frame table;
  uint64_t flags = pte::kWritable | pte::kNoExec;
  if (m_private_kmaps) {
    int allocated = 0;
    table = m_scheme->private_kmap_table(c.id, c.tlbstate.loaded_asid(), &allocated);
    c.n.private_tables += allocated;
    m_private_tables_peak = std::max(m_private_tables_peak, m_scheme->inspector().private_table_pages_live());
    charge(c, Cat::Kmap, allocated * (m_cost.zero_page + m_cost.pte_write));
    slot.asid = c.tlbstate.loaded_asid();
    slot.root_gen = m_scheme->inspector().root_generation(c.id, slot.asid);
  } else {
    table = m_pt.leaf_table(m_init_mm->pgd, va, nullptr);
    if (!m_pti) flags |= pte::kGlobal;
  }
  int index = pte::index(va, 1);
  m_mem.write(table, index, pte::make(slot.page, flags));
  charge(c, Cat::Kmap, m_cost.pte_write + c.path.access((table << kPageShift) + index * 8));
  slot.installed = true;
  slot.cpu = c.id;
}

void Engine::uninstall_kmap_local(Cpu& c, Task* t, size_t idx, bool flush) {
  auto& slot = t->kmap_local[idx];
  VirtAddr va = kmap_local_va(c, idx);
  Frame table = m_private_kmaps ? m_scheme->private_kmap_table(c.id, c.tlbstate.loaded_asid(), nullptr)
                                : m_pt.leaf_table(m_init_mm->pgd, va, nullptr);
  int index = pte::index(va, 1);
  m_mem.write(table, index, 0);
  Cycles spent = m_cost.pte_write + c.path.access((table << kPageShift) + index * 8);
  if (flush) {
    // flush_tlb_one_kernel: a local INVLPG, no IPI (the current PCID; global entries too).
    flush_page(c, va, c.kernel_cr3.pcid);
    c.n.invlpgs++;
    spent += m_cost.invlpg;
    // Under PTI kernel entries are not global, so the stock shared slot may be cached
    // under other PCIDs too: Linux sets invalidate_other. A root-private slot is not.
    if (!m_private_kmaps && m_pti && m_pcid) {
      log_asid(AsidEvent::InvalidateOther, c.id, 0);
      c.tlbstate.set_invalidate_other();
    }
  }
  charge(c, Cat::Kmap, spent);
  slot.installed = false;
}

// kmap_local_page: push a mapping (implies migrate_disable for the first one).
void Engine::kmap_local_page(Cpu& c, Task* t) {
  charge(c, Cat::Kmap, m_cost.kmap_local);
  if (t->kmap_local.size() >= static_cast<size_t>(kKmapMaxIdx))
    workload_error(t, "more than KM_MAX_IDX (16) kmap_local mappings held");
  if (t->kmap_local.empty()) t->migrate_disabled++;  // kmap_local implies migrate_disable
  if (m_private_kmaps) claim_private_kmaps(c, t);
  Task::KmapLocal slot;
  slot.page = page_cache_page(t);
  t->kmap_local.push_back(slot);
  c.n.kmap_local_maps++;
  install_kmap_local(c, t, t->kmap_local.size() - 1);
}

// kunmap_local: pop the last mapping, with its local INVLPG.
void Engine::kunmap_local(Cpu& c, Task* t) {
  charge(c, Cat::Kmap, m_cost.kmap_local);
  if (t->kmap_local.empty()) workload_error(t, "kunmap_local without a mapping");
  uninstall_kmap_local(c, t, t->kmap_local.size() - 1, true);
  t->kmap_local.pop_back();
  if (t->kmap_local.empty() && --t->migrate_disabled == 0) try_finish_offline(c.clock);
}

// __kmap_local_sched_out: stock kernels clear every mapping the outgoing task
// holds (each with a local INVLPG) and re-install them at switch-in. With
// private per-root kmaps the mappings stay in the root of the task's mm; only
// another thread of the same mm using that root must first clear them, which
// claim_private_kmaps does lazily, whoever ran in between.
void Engine::kmap_local_sched_out(Cpu& c, Task* prev) {
  if (m_private_kmaps || !prev || prev->state == TaskState::Exited || prev->kmap_local.empty())
    return;
  for (size_t i = prev->kmap_local.size(); i-- > 0;) {
    // prev may have left this CPU since it last ran here (the offline push).
    if (!prev->kmap_local[i].installed || prev->kmap_local[i].cpu != c.id) continue;
    c.n.kmap_saves++;
    uninstall_kmap_local(c, prev, i, true);
  }
}

void Engine::claim_private_kmaps(Cpu& c, Task* t) {
  Asid asid = c.tlbstate.loaded_asid();
  uint64_t gen = m_scheme->inspector().root_generation(c.id, asid);
  Task*& owner = c.kmap_owner[asid];
  if (owner && owner != t) {
    for (size_t i = owner->kmap_local.size(); i-- > 0;) {
      auto& slot = owner->kmap_local[i];
      if (!slot.installed || slot.asid != asid) continue;
      if (slot.root_gen == gen) {
        c.n.kmap_saves++;
        uninstall_kmap_local(c, owner, i, true);
      } else {
        slot.installed = false;  // that root generation is gone, and its mappings with it
      }
    }
  }
  owner = t;
}

void Engine::kmap_local_sched_in(Cpu& c, Task* next) {
  if (next->kmap_local.empty()) return;
  if (m_private_kmaps) claim_private_kmaps(c, next);
  for (size_t i = 0; i < next->kmap_local.size(); ++i) {
    auto& slot = next->kmap_local[i];
    if (m_private_kmaps && slot.installed) {
      // Still there if the root has not been reallocated since.
      Asid asid = c.tlbstate.loaded_asid();
      if (slot.asid == asid && slot.root_gen == m_scheme->inspector().root_generation(c.id, asid)) continue;
      slot.installed = false;
    }
    if (slot.installed) continue;
    c.n.kmap_restores++;
    install_kmap_local(c, next, i);
  }
}

// Pool entry i: in the shared pkmap area, or in this CPU's pool in its private slot.
VirtAddr Engine::pkmap_va(int i) const {
  uint64_t off = static_cast<uint64_t>(i) << kPageShift;
  if (m_private_kmaps) return pte::kernel_va(m_levels, kPercpuDataSlot, kPercpuPkmapOffset + off);
  return pte::kernel_va(m_levels, kPkmapSlot, off);
}

// kmap(): the stock pkmap pool is global; when it wraps, flush_all_zero_pkmaps
// flushes the whole pool on every CPU. With private slots each CPU has its
// own pool and a wrap flushes only this CPU (every PCID, via invalidate_other).
void Engine::kmap(Cpu& c, Task* t) {
  charge(c, Cat::Kmap, m_cost.kmap);
  bool per_cpu = m_private_kmaps;
  std::vector<int>& count = per_cpu ? c.pkmap_count : m_pkmap_count;
  int& last = per_cpu ? c.last_pkmap : m_last_pkmap;
  Frame root = per_cpu ? m_percpu_scratch_roots[c.id] : m_init_mm->pgd;
  int pool = static_cast<int>(count.size());
  int found = -1;
  for (int tries = 0; tries < pool; ++tries) {
    last = (last + 1) % pool;
    if (last == 0) {
      // flush_all_zero_pkmaps: clear entries with count 1, then flush.
      m_pkmap_wraps++;
      c.n.pkmap_flushes++;
      for (int i = 0; i < pool; ++i) {
        if (count[i] != 1) continue;
        count[i] = 0;
        VirtAddr va = pkmap_va(i);
        m_mem.write(m_pt.leaf_table(root, va, nullptr), pte::index(va, 1), 0);
        charge(c, Cat::Kmap, m_cost.pte_write);
      }
      if (per_cpu) {
        // The pool is this CPU's alone: flush its entries under every PCID here
        // (INVPCID all non-global), no IPI and no new ASIDs or roots.
        flush_all_nonglobal(c);
        charge(c, Cat::Kmap, m_cost.cr3_flush);
      } else {
        flush_tlb_kernel_range(c);
      }
    }
    if (count[last] == 0) {
      found = last;
      break;
    }
  }
  if (found < 0) workload_error(t, "the pkmap pool is exhausted: kunmap before mapping more");
  count[found] = 2;
  VirtAddr va = pkmap_va(found);
  Frame table = m_pt.leaf_table(root, va, nullptr);
  uint64_t flags = pte::kWritable | pte::kNoExec | (per_cpu || m_pti ? 0 : pte::kGlobal);
  m_mem.write(table, pte::index(va, 1), pte::make(page_cache_page(t), flags));
  charge(c, Cat::Kmap, m_cost.pte_write);
  if (per_cpu && t->kmaps.empty()) t->migrate_disabled++;  // a per-CPU mapping pins the task
  t->kmaps.push_back(found);
  c.n.kmaps++;
}

void Engine::kunmap(Cpu& c, Task* t) {
  charge(c, Cat::Kmap, m_cost.kmap);
  bool per_cpu = m_private_kmaps;
  std::vector<int>& count = per_cpu ? c.pkmap_count : m_pkmap_count;
  if (t->kmaps.empty()) workload_error(t, "kunmap without a kmap");
  int e = t->kmaps.back();
  t->kmaps.pop_back();
  count[e]--;  // 1 means unmapped but maybe still in TLBs: cleared at the next wrap
  if (per_cpu && t->kmaps.empty() && --t->migrate_disabled == 0) try_finish_offline(c.clock);
}

// kcopy: copy bytes out of the task's latest kmap into a kernel buffer.
void Engine::kcopy(Cpu& c, Task* t, uint64_t bytes) {
  VirtAddr src;
  if (!t->kmap_local.empty()) src = kmap_local_va(c, t->kmap_local.size() - 1);
  else if (!t->kmaps.empty()) src = pkmap_va(t->kmaps.back());
  else workload_error(t, "kcopy needs a kmap_local or kmap mapping");
  VirtAddr dst = pte::kernel_va(m_levels, kDirectMapSlot,
                                kKernelBufferOffset + ((c.id * kKernelBufferPages) << kPageShift));
  for (uint64_t off = 0; off < bytes; off += kLineSize) {
    uint64_t in_page = off % kPageSize;
    memory_access(c, src + in_page, Access::Load, Mode::Kernel, Cat::Kernel, nullptr);
    memory_access(c, dst + (off % (kKernelBufferPages * kPageSize)), Access::Store, Mode::Kernel,
                  Cat::Kernel, nullptr);
  }
}

}  // namespace percpu
