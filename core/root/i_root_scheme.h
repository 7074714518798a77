// Picks the top-level page table a (cpu, asid) walks from, and keeps it
// consistent with the mm's canonical page table. One implementation per file
// under impl/, each registered by name (root/registry.h).
//
// When each hook runs:
//  - select_root: every CR3 load by switch_mm (and the lazy reload). new_generation
//    is Linux's need_flush: the (cpu, asid) starts a new TLB generation.
//  - lazy_fill: a hardware walk found the root's user top-level entry empty.
//  - on_pgd_populated: a page fault on `cpu` just filled a user top-level entry
//    of mm's canonical table.
//  - on_flush: a flush of mm that freed page tables reached `cpu` while mm is
//    loaded there; stale top-level entries must go before the flush completes.
//    Under Linux 6.15's broadcast flushes (global ASIDs, INVLPGB) no handler runs
//    on other CPUs: the engine calls it for every CPU holding a root of the mm
//    when a fix variant says so (root.broadcast_fix, docs/linux-2025.md).
//  - on_mm_destroyed: the mm is gone; its roots return to the pool.
//  - on_kernel_slot_added: the kernel half gained a top-level entry
//    (sync_global_pgds); every root must learn it.
//
// A scheme knows no engine state: it reads and writes table entries and gets
// table frames through ITableMemory (root/i_table_memory.h) and sees an mm
// only as an MmView (root/mm_view.h), so the gem5 plugin compiles core/root/
// alone (with common/ and paging/pte.h) and implements those two for itself.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "common/types.h"
#include "root/i_table_memory.h"
#include "root/mm_view.h"

namespace percpu {

// What the scheme tells the engine to charge: page-table bytes copied
// (src -> dst, whole entries), entries written, pages allocated.
struct EntryCopy {
  Frame src;
  Frame dst;
  int first;
  int count;
};

// The cache lines copies touch, in order: fn(source line, destination line)
// with physical addresses. What both hosts make of an allocation's copy: the
// engine's caches charge it, gem5's walker sends it to memory.
template <class Fn>
void for_each_copy_line(const std::vector<EntryCopy>& copies, Fn&& fn) {
  for (const EntryCopy& copy : copies) {
    const uint64_t first_byte = static_cast<uint64_t>(copy.first) * 8;
    const uint64_t end_byte = first_byte + static_cast<uint64_t>(copy.count) * 8;
    for (uint64_t off = first_byte & ~(kLineSize - 1); off < end_byte; off += kLineSize)
      fn((copy.src << kPageShift) + off, (copy.dst << kPageShift) + off);
  }
}

struct RootSelection {
  Frame kernel_root = kNoFrame;  // CR3 in kernel mode
  Frame user_root = kNoFrame;    // CR3 in user mode under PTI (== kernel_root without)
  bool allocated = false;        // a root was (re)allocated for this generation
  std::vector<EntryCopy> copies; // what the allocation copied
};

// What a scheme is built with (the host fills it in once, at boot), by field
// name (RootEnv{.mem = ..., .pti = ...}): each host differs in which fields it sets.
struct RootEnv {
  ITableMemory& mem;
  int levels = 4;  // 4 or 5
  bool pti = false;
  int ncpus = 1;
  // init_mm's top level, the kernel half's source; kNoFrame: copy it from the
  // mm's own pgd (the gem5 host, which sees only CR3; every pgd's kernel half
  // is init_mm's).
  Frame init_pgd = kNoFrame;
  Frame init_user_pgd = kNoFrame;  // PTI: the user tables' kernel half (entry code only)
  // Per CPU: the table its private per-CPU slot points to. Empty: no private
  // slots (the gem5 host, where the guest kernel owns its whole kernel half).
  std::vector<Frame> percpu_data_top = {};
  bool fault_skip_root_invalidate = false;  // fault injection for checker tests
  // A page fault's new user top-level entry reaches the faulting CPU's root at
  // once (on_pgd_populated); false: a lazy fault on the next walk fetches it,
  // as under gem5, where the guest kernel knows nothing of roots.
  bool fill_at_fault = true;
};

// Top-level kernel slots that per-CPU roots own privately (docs/references.md, "The model"): one maps
// this CPU's per-CPU data at a fixed address, one holds the root's private kmaps.
constexpr int kPercpuDataSlot = 508;
constexpr int kPrivateKmapSlot = 509;

// What the engine's stats and checker (and the gem5 model's) read of a scheme's
// roots; nothing here changes a root.
class IRootInspector {
 public:
  virtual ~IRootInspector() = default;
  virtual uint64_t root_pages_live() const { return 0; }
  // Of those, the pages of roots of global ASIDs (Linux 6.15: asid >= 6).
  virtual uint64_t global_root_pages_live() const { return 0; }
  // (cpu, asid)'s top-level table, kNoFrame if it has none (what a flushing CPU
  // writes into when it clears another CPU's root itself).
  virtual Frame root_table(CpuId /*cpu*/, Asid /*asid*/) const { return kNoFrame; }
  virtual uint64_t private_table_pages_live() const { return 0; }
  virtual uint64_t max_lazy_faults_per_generation() const { return 0; }
  // Checker: user top-level entries of (cpu, asid)'s root that differ from mm's
  // canonical table (0 when the root is not mm's or the scheme has no roots).
  virtual int stale_user_slots(CpuId /*cpu*/, Asid /*asid*/, const MmView& /*mm*/) const {
    return 0;
  }
  // Generation counter of (cpu, asid)'s root: changes on every allocation.
  virtual uint64_t root_generation(CpuId /*cpu*/, Asid /*asid*/) const { return 0; }
};

// The hooks the host calls (see the top of this file), and the scheme's inspector.
class IRootScheme {
 public:
  virtual ~IRootScheme() = default;
  virtual std::string name() const = 0;
  // Per-CPU data at one virtual address and private kmaps (docs/references.md, "The model").
  virtual bool has_private_slots() const { return false; }
  virtual const IRootInspector& inspector() const = 0;

  virtual RootSelection select_root(CpuId cpu, Asid asid, const MmView& mm,
                                    bool new_generation) = 0;
  // Returns true when slot was filled from mm's canonical pgd (a lazy fault).
  virtual bool lazy_fill(CpuId /*cpu*/, Asid /*asid*/, const MmView& /*mm*/, int /*slot*/) {
    return false;
  }
  // Returns the number of top-level entries written (each costs a pte write).
  virtual int on_pgd_populated(CpuId /*cpu*/, Asid /*asid*/, const MmView& /*mm*/,
                               int /*slot*/) {
    return 0;
  }
  // slots: the top-level entries the flush's change cleared. Returns how many
  // entries the root dropped.
  virtual int on_flush(CpuId /*cpu*/, Asid /*asid*/, const MmView& /*mm*/,
                       const std::vector<int>& /*slots*/) {
    return 0;
  }
  virtual void on_mm_destroyed(const MmView& /*mm*/) {}
  // The kernel half gained entry `slot` (sync_global_pgds): returns the roots written.
  virtual int on_kernel_slot_added(int /*slot*/, uint64_t /*entry*/) { return 0; }

  // The private kmap page table of (cpu, asid)'s root, allocating its chain on
  // first use; *allocated counts the tables allocated. kNoFrame if unsupported.
  virtual Frame private_kmap_table(CpuId /*cpu*/, Asid /*asid*/, int* /*allocated*/) {
    return kNoFrame;
  }
};

}  // namespace percpu
