// The proposal: one top-level table per (cpu, asid). A root is (re)allocated
// when choose_new_asid says need_flush, copying the kernel half (2 KiB; both
// halves of the PTI pair with PTI). User entries are faulted in lazily on
// first touch ("percpu"), or all copied at allocation and pushed to every
// root of the mm when the pgd gains an entry ("percpu-eager").
#include <algorithm>
#include <array>
#include <map>

#include "paging/pte.h"
#include "root/registry.h"

namespace percpu {
namespace {

class PerCpuRoots final : public IRootScheme, public IRootInspector {
 public:
  PerCpuRoots(const RootEnv& env, bool eager)
      : m_env(env), m_eager(eager), m_roots(env.ncpus), m_global(env.ncpus) {}

  std::string name() const override { return m_eager ? "percpu-eager" : "percpu"; }
  bool has_private_slots() const override { return !m_env.percpu_data_top.empty(); }
  const IRootInspector& inspector() const override { return *this; }

  RootSelection select_root(CpuId cpu, Asid asid, const MmView& mm, bool new_generation) override {
    Root& r = root(cpu, asid);
    RootSelection sel;
    if (new_generation || r.kroot == kNoFrame || r.ctx_id != mm.ctx_id) {
      allocate(cpu, r, mm, sel);
      sel.allocated = true;
    }
    sel.kernel_root = r.kroot;
    sel.user_root = m_env.pti ? r.uroot : r.kroot;
    return sel;
  }

  bool lazy_fill(CpuId cpu, Asid asid, const MmView& mm, int slot) override {
    Root& r = root(cpu, asid);
    if (m_eager || r.ctx_id != mm.ctx_id) return false;
    if (!pte::present(m_env.mem.read_entry(mm.pgd, slot))) return false;
    copy_user_slot(r, mm, slot);
    r.lazy_faults++;
    m_max_lazy = std::max(m_max_lazy, r.lazy_faults);
    return true;
  }

  int on_pgd_populated(CpuId cpu, Asid asid, const MmView& mm, int slot) override {
    int writes = 0;
    if (!m_eager) {
      if (!m_env.fill_at_fault) return 0;
      Root& r = root(cpu, asid);
      if (r.ctx_id == mm.ctx_id) {
        copy_user_slot(r, mm, slot);
        writes++;
      }
      return writes;
    }
    // Eager: every root of this mm learns the entry now, so none ever faults.
    for_each_root([&](Root& r) {
      if (r.kroot != kNoFrame && r.ctx_id == mm.ctx_id) {
        copy_user_slot(r, mm, slot);
        writes++;
      }
    });
    return writes;
  }

  int on_flush(CpuId cpu, Asid asid, const MmView& mm, const std::vector<int>& slots) override {
    Root& r = root(cpu, asid);
    if (r.kroot == kNoFrame || r.ctx_id != mm.ctx_id) return 0;
    if (m_env.fault_skip_root_invalidate) return 0;
    int dropped = 0;
    for (int slot : slots) {
      if (pte::present(m_env.mem.read_entry(r.kroot, slot))) {
        clear_user_slot(r, slot);
        dropped++;
      }
    }
    return dropped;
  }

  void on_mm_destroyed(const MmView& mm) override {
    for_each_root([&](Root& r) {
      if (r.kroot != kNoFrame && r.ctx_id == mm.ctx_id) release(r);
    });
  }

  int on_kernel_slot_added(int slot, uint64_t entry) override {
    int written = 0;
    for_each_root([&](Root& r) {
      if (r.kroot != kNoFrame) {
        m_env.mem.write_entry(r.kroot, slot, entry);
        written++;
      }
    });
    return written;
  }

  Frame private_kmap_table(CpuId cpu, Asid asid, int* allocated) override {
    Root& r = root(cpu, asid);
    if (r.kmap_pt != kNoFrame) return r.kmap_pt;
    // Chain below the private slot: levels-1 tables, the last one the PTE page.
    Frame parent = r.kroot;
    int index = kPrivateKmapSlot;
    for (int level = m_env.levels - 1; level >= 1; --level) {
      Frame t = m_env.mem.alloc_table(TableKind::Private);
      r.private_tables[r.n_private++] = t;
      m_private_live++;
      if (allocated) ++*allocated;
      m_env.mem.write_entry(parent, index, pte::make_table(t));
      parent = t;
      index = 0;
    }
    r.kmap_pt = parent;
    return r.kmap_pt;
  }

  // IRootInspector
  int stale_user_slots(CpuId cpu, Asid asid, const MmView& mm) const override {
    const Root& r = find(cpu, asid);
    if (r.kroot == kNoFrame || r.ctx_id != mm.ctx_id) return 0;
    int stale = 0;
    for (int slot = 0; slot < pte::kUserSlots; ++slot) {
      uint64_t mine = m_env.mem.read_entry(r.kroot, slot);
      if (pte::present(mine) && mine != m_env.mem.read_entry(mm.pgd, slot)) stale++;
    }
    return stale;
  }

  uint64_t root_pages_live() const override { return m_root_pages_live; }
  uint64_t global_root_pages_live() const override { return m_global_pages_live; }
  Frame root_table(CpuId cpu, Asid asid) const override { return find(cpu, asid).kroot; }
  uint64_t private_table_pages_live() const override { return m_private_live; }
  uint64_t max_lazy_faults_per_generation() const override { return m_max_lazy; }
  uint64_t root_generation(CpuId cpu, Asid asid) const override {
    return find(cpu, asid).generation;
  }

 private:
  struct Root {
    Frame kroot = kNoFrame;
    Frame uroot = kNoFrame;
    uint64_t ctx_id = 0;
    uint64_t generation = 0;
    uint64_t lazy_faults = 0;
    Frame kmap_pt = kNoFrame;
    std::array<Frame, 4> private_tables{};
    int n_private = 0;
    bool global = false;  // a root of a global ASID (6.15)
  };

  // (cpu, asid)'s root: one array slot per dynamic ASID, and under Linux 6.15 one
  // map entry per global ASID this CPU has loaded (the same ASID on every CPU, so a
  // root per (cpu, global asid): docs/linux-2025.md).
  Root& root(CpuId cpu, Asid asid) {
    if (asid < kTlbNrDynAsids) return m_roots[cpu][asid];
    Root& r = m_global[cpu][asid];
    r.global = true;
    return r;
  }
  const Root& find(CpuId cpu, Asid asid) const {
    static const Root kNone;
    if (asid < kTlbNrDynAsids) return m_roots[cpu][asid];
    auto it = m_global[cpu].find(asid);
    return it == m_global[cpu].end() ? kNone : it->second;
  }
  template <class Fn>
  void for_each_root(Fn&& fn) {
    for (auto& per_cpu : m_roots)
      for (auto& r : per_cpu) fn(r);
    for (auto& per_cpu : m_global)
      for (auto& [asid, r] : per_cpu) fn(r);
  }

  // Entry `slot` of mm's pgd into the root, and of its PTI user pgd into the
  // user half: Linux gives the kernel pgd's copy of a user entry NX
  // (pti_set_user_pgtbl), so the two halves' values may differ.
  void copy_user_slot(Root& r, const MmView& mm, int slot) {
    m_env.mem.write_entry(r.kroot, slot, m_env.mem.read_entry(mm.pgd, slot));
    if (m_env.pti) m_env.mem.write_entry(r.uroot, slot, m_env.mem.read_entry(user_pgd(mm), slot));
  }
  void clear_user_slot(Root& r, int slot) {
    m_env.mem.write_entry(r.kroot, slot, 0);
    if (m_env.pti) m_env.mem.write_entry(r.uroot, slot, 0);
  }
  Frame user_pgd(const MmView& mm) const {
    return mm.user_pgd != kNoFrame ? mm.user_pgd : mm.pgd;
  }

  void free_private(Root& r) {
    for (int i = 0; i < r.n_private; ++i) m_env.mem.free_table(r.private_tables[i]);
    m_private_live -= r.n_private;
    r.n_private = 0;
    r.kmap_pt = kNoFrame;
  }

  void release(Root& r) {
    free_private(r);
    const uint64_t pages = r.uroot != kNoFrame ? 2 : 1;
    m_env.mem.free_table(r.kroot);
    if (r.uroot != kNoFrame) m_env.mem.free_table(r.uroot);
    m_root_pages_live -= pages;
    if (r.global) m_global_pages_live -= pages;
    r = Root{};
  }

  void allocate(CpuId cpu, Root& r, const MmView& mm, RootSelection& sel) {
    free_private(r);
    if (r.kroot == kNoFrame) {
      r.kroot = m_env.mem.alloc_table(TableKind::Root);
      m_root_pages_live++;
      if (m_env.pti) {
        r.uroot = m_env.mem.alloc_table(TableKind::Root);
        m_root_pages_live++;
      }
      if (r.global) m_global_pages_live += m_env.pti ? 2 : 1;
    } else {
      m_env.mem.zero_table(r.kroot);
      if (r.uroot != kNoFrame) m_env.mem.zero_table(r.uroot);
    }
    auto copy_kernel_half = [&](Frame src, Frame dst) {
      m_env.mem.copy_entries(src, dst, pte::kFirstKernelSlot, pte::kUserSlots);
      sel.copies.push_back({src, dst, pte::kFirstKernelSlot, pte::kUserSlots});
    };
    // Every pgd's kernel half is init_mm's; a host that does not know init_mm's
    // (gem5: hardware sees only CR3) copies it from the mm's own pgd.
    const bool from_mm = m_env.init_pgd == kNoFrame;
    copy_kernel_half(from_mm ? mm.pgd : m_env.init_pgd, r.kroot);
    if (has_private_slots())
      m_env.mem.write_entry(r.kroot, kPercpuDataSlot, pte::make_table(m_env.percpu_data_top[cpu]));
    // PTI: the user half of the pair maps only what user mode may see of the kernel.
    if (m_env.pti) copy_kernel_half(from_mm ? user_pgd(mm) : m_env.init_user_pgd, r.uroot);
    if (m_eager) {
      for (int slot = 0; slot < pte::kUserSlots; ++slot) {
        if (!pte::present(m_env.mem.read_entry(mm.pgd, slot))) continue;
        copy_user_slot(r, mm, slot);
        sel.copies.push_back({mm.pgd, r.kroot, slot, 1});
      }
    }
    r.ctx_id = mm.ctx_id;
    r.generation = ++m_generations;
    r.lazy_faults = 0;
  }

  RootEnv m_env;
  bool m_eager;
  std::vector<std::array<Root, kTlbNrDynAsids>> m_roots;
  std::vector<std::map<Asid, Root>> m_global;
  uint64_t m_global_pages_live = 0;
  uint64_t m_root_pages_live = 0;
  uint64_t m_private_live = 0;
  uint64_t m_max_lazy = 0;
  uint64_t m_generations = 0;
};

RegisterRootScheme reg_lazy(
    "percpu", "per-(cpu, asid) roots, user entries faulted in lazily (the proposal)",
    [](const RootEnv& env) { return std::make_unique<PerCpuRoots>(env, false); });
RegisterRootScheme reg_eager(
    "percpu-eager", "per-(cpu, asid) roots, user entries copied at allocation, no lazy faults",
    [](const RootEnv& env) { return std::make_unique<PerCpuRoots>(env, true); });

}  // namespace
}  // namespace percpu
