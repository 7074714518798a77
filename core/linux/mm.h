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
// In a template VMA's prot only (`vma ... populate`): the image's pages are faulted in
// before its program starts, as a guest program touches its text, stack and buffers
// before its region of interest; an instance's VMAs never carry it.
constexpr uint8_t kVmaPopulate = 0x10;

// Linux 6.1's mmap area (arch/x86/mm/mmap.c mmap_base): its top is TASK_SIZE_MAX
// (2^47 - 4 KiB) less a gap of the stack rlimit (8 MiB) plus stack_guard_gap
// (256 pages) plus, under ASLR, the stack's largest random shift
// (STACK_RND_MASK 0x3fffff pages), clamped up to 128 MiB; ASLR then lowers it by
// up to 2^mmap_rnd_bits pages (exec.cc). So a process's mmap'd buffers sit in
// user top-level slot 255 or 254 (about even odds under ASLR; 253 for 1.6 %), apart from its
// non-PIE text and brk heap in slot 0: a real process touches two or three slots.
constexpr VirtAddr kTaskSizeMax = (VirtAddr{1} << 47) - 4096;
constexpr uint64_t kStackRlimit = 8ull << 20, kStackGuardGap = 256ull * 4096;
constexpr uint64_t kStackRndMaskPages = 0x3fffff;  // STACK_RND_MASK, 64-bit tasks
constexpr uint64_t kStackRandomMax = kStackRndMaskPages * 4096;
constexpr VirtAddr kMmapBase = kTaskSizeMax - (128ull << 20);  // ASLR off: the 128 MiB floor
constexpr VirtAddr kMmapBaseAslr = kTaskSizeMax - (kStackRlimit + kStackGuardGap + kStackRandomMax);
// A template VMA at this start (end = start + size) is placed top-down below the
// mmap base when its image is created, as a buffer the program mmaps before it
// starts (`vma NAME auto SIZE PROT`, docs/op-program.md).
constexpr VirtAddr kVmaAuto = VirtAddr{1} << 63;
// mmap_min_addr's floor for a top-down search (Linux's is 64 KiB; 4 GiB keeps
// auto placements above any text and brk heap an op program declares).
constexpr VirtAddr kMmapFloor = 4ull << 30;

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
  // Linux 6.15 (mm->context.global_asid, asid_transition): its global ASID, 0 while
  // it has none; set while some CPU may still run it under a dynamic ASID.
  Asid global_asid = 0;
  bool asid_transition = false;
  int users = 0;                       // live tasks using it
  bool alive = true;
  uint64_t lazy_faults = 0;            // over its lifetime, all CPUs
  uint64_t top_slots_populated = 0;    // user top-level entries present now
  VirtAddr mmap_base = kMmapBase;  // where `mmap auto` places, top-down (lower under ASLR)

  // What a root scheme sees of it.
  MmView view() const { return {ctx_id, pgd, user_pgd}; }

  // Linux's unmapped_area_topdown: the start of the highest free range of
  // `size` bytes that ends at or below mmap_base, or 0 if none fits above kMmapFloor.
  VirtAddr top_down_start(uint64_t size) const {
    VirtAddr top = mmap_base;
    for (auto it = vmas.rbegin(); it != vmas.rend(); ++it) {
      const Vma& v = it->second;
      if (v.start >= top) continue;  // wholly above the candidate
      if (top - v.end >= size) break;  // the gap above v fits
      top = v.start;
    }
    return top >= kMmapFloor + size ? top - size : 0;
  }

  const Vma* find_vma(VirtAddr va) const {
    auto it = vmas.upper_bound(va);
    if (it == vmas.begin()) return nullptr;
    --it;
    return va < it->second.end ? &it->second : nullptr;
  }
};

}  // namespace percpu
