// An address space (struct mm_struct): VMAs, the canonical page table, the
// TLB generation and the CPUs that may hold its translations.
#pragma once
#include <bitset>
#include <cstdint>
#include <map>
#include <unordered_map>

#include "common/types.h"
#include "root/mm_view.h"

namespace percpu {

struct Vma {
  VirtAddr start = 0;
  VirtAddr end = 0;
  uint8_t prot = 0;  // kProt* bits
  int name = -1;     // interned VMA name from the op program
};

constexpr uint8_t kProtRead = 1, kProtWrite = 2, kProtExec = 4;

struct Mm {
  int id = 0;            // index in the engine's mm list
  int template_id = -1;  // op-program mm template (-1: init_mm)
  uint64_t ctx_id = 0;   // unique, never reused (Linux's last_mm_ctx_id)
  uint64_t tlb_gen = 0;  // Linux starts it at 1 after creation; only comparisons matter
  uint64_t next_cpumask_trim = 0;  // cycle count of the next should_trim_cpumask
  Frame pgd = kNoFrame;       // canonical top level (kernel pgd under PTI)
  Frame user_pgd = kNoFrame;  // PTI: the user copy, 4 KiB above pgd on Linux
  std::map<VirtAddr, Vma> vmas;            // by start
  std::unordered_map<int, VirtAddr> vma_by_name;
  std::bitset<kMaxCpus> cpumask;       // mm_cpumask: set on switch, cleared lazily
  std::bitset<kMaxCpus> ever_on_cpu;   // had an ASID slot on that CPU at some point
  int users = 0;                       // live tasks using it
  bool alive = true;
  uint64_t lazy_faults = 0;            // over its lifetime, all CPUs
  uint64_t top_slots_populated = 0;    // user top-level entries present now
  VirtAddr mmap_base = 0x7f0000000000ull;  // where `mmap auto` places (lower under ASLR)

  // What a root scheme sees of it.
  MmView view() const { return {ctx_id, pgd, user_pgd}; }

  const Vma* find_vma(VirtAddr va) const {
    auto it = vmas.upper_bound(va);
    if (it == vmas.begin()) return nullptr;
    --it;
    return va < it->second.end ? &it->second : nullptr;
  }
};

}  // namespace percpu
