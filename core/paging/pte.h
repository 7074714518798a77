// x86-64 page-table entry bits and address slicing for 4- and 5-level paging.
#pragma once
#include <cstdint>

#include "common/types.h"

namespace percpu::pte {

constexpr uint64_t kPresent = 1ull << 0;
constexpr uint64_t kWritable = 1ull << 1;
constexpr uint64_t kUser = 1ull << 2;
constexpr uint64_t kGlobal = 1ull << 8;
constexpr uint64_t kNoExec = 1ull << 63;
constexpr uint64_t kFrameMask = 0x000ffffffffff000ull;

inline bool present(uint64_t e) { return e & kPresent; }
inline Frame frame(uint64_t e) { return (e & kFrameMask) >> kPageShift; }
inline uint64_t make(Frame f, uint64_t flags) { return (f << kPageShift) | flags | kPresent; }
// Non-leaf entries carry the most permissive bits; leaves decide.
inline uint64_t make_table(Frame f) { return make(f, kWritable | kUser); }

// Level 1 is the page table (PTE), 2 the page directory, 3 the PDPT, 4 the
// PML4, 5 the PML5. `levels` is 4 or 5.
inline int index(VirtAddr va, int level) {
  return static_cast<int>((va >> (kPageShift + 9 * (level - 1))) & 511);
}
// The part of va above the entries of `level`: identifies one entry at that level.
inline uint64_t prefix(VirtAddr va, int level) { return va >> (kPageShift + 9 * (level - 1)); }
inline uint64_t level_span(int level) { return 1ull << (kPageShift + 9 * (level - 1)); }

// Top-level index 256 and above is the kernel half.
constexpr int kFirstKernelSlot = 256;
constexpr int kUserSlots = 256;

// A kernel virtual address in top-level slot `slot`, sign-extended.
inline VirtAddr kernel_va(int levels, int slot, uint64_t offset) {
  uint64_t va = (static_cast<uint64_t>(slot) << (kPageShift + 9 * (levels - 1))) + offset;
  int bits = 12 + 9 * levels;
  if (va >> (bits - 1)) va |= ~((1ull << bits) - 1);
  return va;
}

}  // namespace percpu::pte
