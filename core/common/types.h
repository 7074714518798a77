// Basic vocabulary shared by every part of the model.
//
// One word per concept, everywhere in core/:
//  - pgd:  an mm's canonical top-level table (Linux's mm->pgd; under PTI the kernel
//          half of the pair, and user_pgd the user half 4 KiB above it).
//  - root: the top-level table a CPU's walks start from, what CR3 points at: the
//          mm's pgd under the shared scheme, a per-(cpu, asid) copy under percpu.
//  - cr3:  the register, root | pcid (| the no-flush bit in a write); the engine
//          keeps one per mode (Cpu::kernel_cr3, Cpu::user_cr3).
//  - asid: Linux's dynamic ASID slot (0..5); pcid: the tag the hardware sees
//          (kern_pcid(asid) = asid + 1, user_pcid with bit 11 under PTI).
#pragma once
#include <cstdint>
#include <string>

namespace percpu {

using VirtAddr = uint64_t;
using PhysAddr = uint64_t;
using Frame = uint64_t;   // physical frame number (PhysAddr >> 12)
using Cycles = uint64_t;
using CpuId = int;
using Asid = int;         // Linux's dynamic ASID slot, 0..TLB_NR_DYN_ASIDS-1
using Pcid = uint16_t;    // what the hardware tags TLB entries with

constexpr uint64_t kPageShift = 12;
constexpr uint64_t kPageSize = 1ull << kPageShift;
constexpr uint64_t kLineShift = 6;
constexpr uint64_t kLineSize = 1ull << kLineShift;
constexpr int kEntriesPerTable = 512;
constexpr int kMaxCpus = 256;
constexpr Frame kNoFrame = 0;  // frame 0 is never handed out

// Linux constants (docs/references.md, "Linux's TLB and ASID rules").
constexpr int kTlbNrDynAsids = 6;           // TLB_NR_DYN_ASIDS
constexpr Pcid kPtiUserPcidBit = 1u << 11;  // user_pcid() = kern_pcid() | bit 11
constexpr int kTlbSingleFlushCeiling = 33;  // tlb_single_page_flush_ceiling
constexpr int kKmapMaxIdx = 16;             // KM_MAX_IDX (kmap_local slots per CPU)

// Kinds of memory reference; the TLB that serves them follows from the kind.
enum class Access : uint8_t { Load, Store, Fetch };
constexpr const char* kAccessNames[] = {"load", "store", "fetch"};  // the op-program words

}  // namespace percpu
