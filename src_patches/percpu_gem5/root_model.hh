// Per-(cpu, pcid) roots for a guest that knows nothing of them: the gem5
// side of core/root/, with no gem5 in it (gem5's SimObjects in
// percpu_root_model.hh only feed it events), so the same code is unit-tested
// in CI against a fake guest memory (tests/cxx/root_model.test.cc).
//
// What it sees is what hardware sees: CR3 writes (classified by
// Cr3WriteClassifier), INVLPG / INVPCID, and the walker's top-level reads.
// From those it keeps, per CPU and per Linux ASID slot (asid_of_pcid, the
// inverse of Linux's kern_pcid in core/linux/asid.h), the root the core/root/ scheme allocated, and decides:
//   - a CR3 write that changes the address space (the pgd pair) and flushes
//     starts a new generation of that (cpu, asid): the scheme allocates (or
//     re-copies) its root; one with bit 63 set reuses the root;
//   - a flushing write inside the pair (PTI entry/exit) or a reload of the
//     loaded value, INVLPG and INVPCID: drop the root's user entries that no
//     longer match the guest's pgd, so a freed page table is never walked;
//   - a walk from a root that finds an empty user top-level entry where the
//     guest pgd has one: a lazy fault (the scheme copies the entry); a kernel
//     entry that differs from the guest's: a kernel-half sync.
// Why a root was allocated is inferred from the (cpu, asid, pair) history:
// noPcid (CR4.PCIDE clear), firstUse (the pair never had a slot on this
// CPU), flushedInactive (its slot still held it: Linux found its ctx_id but
// the mm's tlb_gen had moved on), evicted (its slot went to another pair in
// the meantime, so Linux's round robin gave it a fresh one). A pgd page that a
// dead mm freed and a new mm reuses looks like the old mm: its first
// allocation is counted as evicted or flushedInactive, not firstUse.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cr3_write_classifier.hh"
#include "root/i_root_scheme.h"
#include "root/i_table_memory.h"
#include "root/names.h"

namespace percpu {

// Guest physical memory, 8 bytes at a time (gem5: the system's functional port).
class IGuestMemory {
 public:
  virtual ~IGuestMemory() = default;
  virtual uint64_t read64(PhysAddr pa) const = 0;
  virtual void write64(PhysAddr pa, uint64_t value) = 0;
};

// ITableMemory over guest memory: any frame can be read and written (the
// guest's pgds), and the scheme's tables come from a pool in a range the
// guest does not own (the config reserves it in the E820 map).
class GuestTableMemory final : public ITableMemory {
 public:
  GuestTableMemory(IGuestMemory& mem, PhysAddr pool_base, uint64_t pool_bytes);

  uint64_t read_entry(Frame table, int index) const override;
  void write_entry(Frame table, int index, uint64_t value) override;
  Frame alloc_table(TableKind kind) override;  // throws std::runtime_error when full
  void free_table(Frame table) override;

  bool in_pool(Frame f) const { return f >= m_first && f < m_end; }
  uint64_t live_pages() const { return m_live; }
  uint64_t peak_pages() const { return m_peak; }

 private:
  IGuestMemory& m_mem;
  Frame m_first, m_end, m_next;
  std::vector<Frame> m_free;
  uint64_t m_live = 0, m_peak = 0;
};

struct Cr3Outcome {
  Cr3Write write;
  bool tracked = false;      // the write loads a root the model keeps
  bool allocated = false;
  NewAsidCause cause = NewAsidCause::None;  // why (core/linux/asid.h), when allocated
  uint64_t copy_bytes = 0;   // page-table bytes the allocation copied
  // The allocation's copy line by line (source, destination), for the
  // walker to send to memory: the model itself copies functionally.
  std::vector<std::pair<PhysAddr, PhysAddr>> copy_lines;
  int entries_dropped = 0;   // user entries a flushing write dropped
};

struct TopLevelOutcome {
  uint64_t pte = 0;          // the entry the walk goes on with
  bool lazy_fault = false;
  bool pushed = false;       // percpu-eager: a new pgd entry pushed to the mm's roots
  bool kernel_sync = false;
  // --check: the root's entry is present and differs from the guest's present
  // one (Accessed/Dirty masked). Linux clears a pgd entry before its flush, so
  // a present root entry over an absent guest one is not a difference.
  bool mismatch = false;
};

class RootModel {
 public:
  struct Config {
    std::string scheme = "percpu";
    int ncpus = 1;
    bool pti = false;
    PhysAddr pool_base = 0;
    uint64_t pool_bytes = 0;
  };

  RootModel(IGuestMemory& mem, const Config& config);
  // What the scheme is built with under gem5 (RootEnv's gem5 case).
  static RootEnv scheme_env(ITableMemory& tables, const Config& config);

  bool has_roots() const { return m_has_roots; }
  const std::string& scheme_name() const { return m_config.scheme; }

  // Hardware events, after they took effect on `cpu`.
  Cr3Outcome on_cr3_write(int cpu, uint64_t old_cr3, uint64_t new_cr3, bool pcide);
  // INVLPG (the current PCID), INVPCID types 0 and 1 (the descriptor's): the
  // flushed PCID's root drops what no longer matches. Returns entries dropped.
  int on_flush_pcid(int cpu, uint16_t pcid);
  // INVPCID types 2 and 3: every root of the CPU.
  int on_flush_all(int cpu);

  // The walker: the top-level table to walk for (cpu, pcid, CR3 base), and
  // what to do with the top-level entry `slot` read from it.
  PhysAddr walk_root(int cpu, uint16_t pcid, PhysAddr cr3_base) const;
  TopLevelOutcome top_level_entry(int cpu, uint16_t pcid, PhysAddr cr3_base, PhysAddr root,
                                  int slot, uint64_t pte);

  // --check: user entries of `cpu`'s root for `pcid` that are present and
  // differ from its guest pgd's: after a flush of that PCID completed there
  // must be none. (Other PCIDs' roots may be stale: Linux flushes them at the
  // next switch to them, a new generation here.)
  int stale_entries(int cpu, uint16_t pcid) const;
  // The same over every root of `cpu` (after INVPCID types 2 and 3).
  int stale_entries(int cpu) const;

  uint64_t pool_peak_bytes() const { return m_tables.peak_pages() * kPageSize; }
  uint64_t pool_bound_bytes() const;
  uint64_t max_lazy_faults_per_root() const { return m_scheme->inspector().max_lazy_faults_per_generation(); }

  // Top-level entry bits the walker may set in either copy: Accessed, Dirty.
  static constexpr uint64_t kWalkerSetBits = (1ull << 5) | (1ull << 6);

 private:
  struct Slot {
    bool used = false;
    AddressSpace pair;
    Frame kroot = kNoFrame;
    Frame uroot = kNoFrame;
  };
  struct CpuState {
    std::vector<Slot> slots = std::vector<Slot>(kTlbNrDynAsids);
    std::unordered_map<uint64_t, int> last_slot;  // pair pgd -> the asid it last held
    bool pcide = false;
  };

  int asid_of(uint16_t pcid, bool pcide) const;  // -1: not a slot Linux uses
  MmView view(const AddressSpace& pair) const;
  const Slot* slot_for(int cpu, uint16_t pcid, PhysAddr cr3_base) const;
  int drop_stale(int cpu, int asid);
  // User slots whose root entry is present and differs from the guest pgd's.
  std::vector<int> stale_slots(const Slot& s) const;

  IGuestMemory& m_mem;
  Config m_config;
  GuestTableMemory m_tables;
  std::unique_ptr<IRootScheme> m_scheme;
  bool m_has_roots;
  std::vector<CpuState> m_cpus;
};

}  // namespace percpu
