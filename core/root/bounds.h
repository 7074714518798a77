// The proposal's bounds (docs/references.md, "The proposal" and "The model"):
// the one place they are computed. The checker tests them, the stats report
// them (system.percpu.*Bound*) and the report reads them from the binding.
#pragma once
#include <cstdint>

#include "common/types.h"
#include "paging/pte.h"

namespace percpu {

// Root pages: at most one per (cpu, dynamic asid), two with PTI's pair.
inline uint64_t root_pool_bound_pages(int ncpus, bool pti) {
  return static_cast<uint64_t>(ncpus) * kTlbNrDynAsids * (pti ? 2 : 1);
}
inline uint64_t root_pool_bound_bytes(int ncpus, bool pti) {
  return root_pool_bound_pages(ncpus, pti) * kPageSize;
}
// Lazy top-level faults per root generation: at most one per user slot.
constexpr uint64_t kLazyFaultBound = pte::kUserSlots;

}  // namespace percpu
