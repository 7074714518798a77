// How long a burst of independent line accesses takes when their misses overlap: the
// memory-level parallelism of a root allocation's copy (engine/root_copy_cost.cc), whose
// line reads and writes do not wait for one another (docs/references.md, "The model").
//
// The accesses issue in order, the next `issue` cycles after the one before. Each holds
// one of `mshrs` miss-status holding registers (Intel's line fill buffers) from its
// issue until its line is back, `latency` cycles later (what CachePath::access charged
// for it); an access that finds none free issues when the first one frees (the lowest
// numbered among equals). The burst takes until its last access is back. So:
//  - with one register (and issue <= every latency, so always with issue 0) the accesses
//    go one after another and the burst costs the sum of their latencies: the serial
//    charge;
//  - with many it costs about issue x accesses + the longest latency;
//  - in between about (sum of latencies) / mshrs: never less, since at most `mshrs`
//    accesses are ever in flight, and never more than that + issue x accesses + the
//    longest latency (in-order list scheduling).
// An L1 hit holds its register too, for its few cycles (that is what makes one register
// the serial charge exactly); with the defaults' 10 or more it changes nothing. Not
// modelled: a write waiting for its read (a store buffer decouples them), bandwidth
// beyond the registers. Pure and deterministic: the same latencies give the same cycles.
// tests/cxx/copy_overlap.test.cc and tests/core/test_copy_overlap.py (a reference model).
#pragma once
#include <algorithm>
#include <cstddef>
#include <vector>

#include "common/types.h"

namespace percpu {

class OverlappedAccesses {
 public:
  OverlappedAccesses(int mshrs, Cycles issue)
      : m_free(static_cast<size_t>(std::max(mshrs, 1)), 0), m_issue(issue) {}

  // Starts a new burst at cycle 0 with every register free.
  void reset() {
    std::fill(m_free.begin(), m_free.end(), 0);
    m_next_issue = 0;
    m_end = 0;
  }
  // One access of the burst, taking `latency` cycles from its issue.
  void add(Cycles latency) {
    auto reg = std::min_element(m_free.begin(), m_free.end());  // first of the earliest
    const Cycles start = std::max(m_next_issue, *reg);
    *reg = start + latency;
    m_end = std::max(m_end, *reg);
    m_next_issue = start + m_issue;
  }
  // Cycles from the burst's first issue until its last access is back (0: no access).
  Cycles cycles() const { return m_end; }

 private:
  std::vector<Cycles> m_free;  // the cycle each register frees at
  Cycles m_issue;
  Cycles m_next_issue = 0;
  Cycles m_end = 0;
};

// The cycles of one burst of accesses with these latencies, in this order.
inline Cycles overlapped_cycles(const std::vector<Cycles>& latencies, int mshrs, Cycles issue) {
  OverlappedAccesses burst(mshrs, issue);
  for (Cycles latency : latencies) burst.add(latency);
  return burst.cycles();
}

}  // namespace percpu
