// Follows arch/x86/mm/tlb.c of Linux 6.15 (Rik van Riel's "AMD broadcast TLB
// invalidation" series, merged through tip x86/mm in March 2025): the global
// ASID space. An mm that runs on 4 or more CPUs at once gets one ASID that
// names it on every CPU, from above the TLB_NR_DYN_ASIDS dynamic slots up to
// MAX_ASID_AVAILABLE, held for the mm's lifetime; its flushes are broadcast
// with INVLPGB, so its TLB entries are current on every CPU at all times.
// Pure bookkeeping with no hardware state (docs/linux-2025.md).
#pragma once
#include <cstdint>
#include <vector>

#include "common/types.h"

namespace percpu {

class GlobalAsidSpace {
 public:
  // max_asid_available: MAX_ASID_AVAILABLE, (1 << 11) - 2 = 2046 with PTI compiled in.
  explicit GlobalAsidSpace(int max_asid_available = 2046)
      : m_max(max_asid_available),
        m_used(max_asid_available, false),
        m_freed(max_asid_available, false),
        m_last(max_asid_available),
        m_available(max_asid_available - kTlbNrDynAsids - 1) {}

  // allocate_global_asid(): the next free ASID at or above the last one handed out.
  // Reaching the end of the space first resets it (reset_global_asid_space: one
  // INVLPGB flush of every non-global entry on every CPU makes the freed ASIDs safe
  // to reuse), counted in resets(). Returns 0 when none is free; Linux would warn
  // (the caller checks available() first, as use_global_asid does).
  Asid allocate() {
    if (m_last >= m_max - 1) reset();
    int asid = m_last;
    while (asid < m_max && m_used[asid]) ++asid;
    if (asid >= m_max) return 0;  // Linux: VM_WARN_ONCE, and no global ASID
    m_used[asid] = true;
    m_last = asid;
    m_available--;
    return asid;
  }

  // mm_free_global_asid(): reusable only after the next reset's flush.
  void free(Asid asid) {
    m_freed[asid] = true;
    m_available++;
  }

  int available() const { return m_available; }
  uint64_t resets() const { return m_resets; }
  uint64_t in_use() const { return static_cast<uint64_t>(m_max - kTlbNrDynAsids - 1 - m_available); }

 private:
  void reset() {
    for (int a = 0; a < m_max; ++a) {
      if (m_freed[a]) m_used[a] = false;
      m_freed[a] = false;
    }
    m_last = kTlbNrDynAsids;
    m_resets++;
  }

  int m_max;
  std::vector<bool> m_used;
  std::vector<bool> m_freed;
  int m_last;
  int m_available;
  uint64_t m_resets = 0;
};

inline bool is_global_asid(Asid asid) { return asid >= kTlbNrDynAsids; }

}  // namespace percpu
