// Follows arch/x86/include/asm/pgtable_64_types.h and Documentation/arch/x86/
// x86_64/mm.rst: where the engine's kernel puts things, as top-level slots of
// init_mm's table (the kernel half, 256..511) and offsets inside them.
// Boot builds this layout; kmap, per-CPU data and sync_global_pgds use it.
#pragma once
#include <cstddef>
#include <cstdint>

#include "common/types.h"
#include "root/i_root_scheme.h"  // the root-private slots kPercpuDataSlot, kPrivateKmapSlot

namespace percpu::layout {

constexpr int kDirectMapSlot = 273;  // 0xffff888000000000 on 4-level: per-CPU areas, buffers
constexpr int kPkmapSlot = 500;      // the shared pkmap pool
constexpr int kFixmapSlot = 511;     // kmap_local fixmap slots, KM_MAX_IDX per CPU
// Kernel top-level slots kernel_pgd_add may fill (beyond what boot populated).
constexpr int kFirstVmallocSlot = 290;
constexpr int kLastVmallocSlot = 400;
// In the direct map: each CPU's per-CPU area, then (at 1 GiB) its kernel buffers.
constexpr uint64_t kPercpuAreaPages = 2;
constexpr uint64_t kKernelBufferPages = 16;
constexpr uint64_t kKernelBufferOffset = 1ull << 30;
// Inside the root-private per-CPU slot: per-CPU data at 0, the per-CPU pkmap pool here.
constexpr uint64_t kPercpuPkmapOffset = 2ull << 20;
// Frames kmaps map (the page cache the kmap workloads read).
constexpr size_t kPageCacheFrames = 4096;

}  // namespace percpu::layout
