#include "tlb/tlb.h"

#include <algorithm>
#include <stdexcept>

namespace percpu {

Tlb::Tlb(int entries, int ways) : m_entries(entries), m_ways(ways) {
  int sets = entries / ways;
  if (ways <= 0 || entries % ways != 0 || (sets & (sets - 1)) != 0)
    throw std::invalid_argument("TLB geometry: entries/ways must be a power of two");
  m_set_mask = static_cast<uint64_t>(sets - 1);
}

void Tlb::insert(uint64_t vpn, Pcid pcid, const Translation& t) {
  Entry* set = &m_entries[(vpn & m_set_mask) * m_ways];
  Entry* victim = &set[0];
  for (int w = 0; w < m_ways; ++w) {
    Entry& e = set[w];
    if (e.valid && e.vpn == vpn && (e.pcid == pcid || e.t.global)) {
      victim = &e;  // replace a duplicate in place
      break;
    }
    if (!e.valid) {
      if (victim->valid) victim = &e;
    } else if (victim->valid && e.stamp < victim->stamp) {
      victim = &e;
    }
  }
  victim->valid = true;
  victim->vpn = vpn;
  victim->pcid = pcid;
  victim->t = t;
  victim->stamp = tick();
}

void Tlb::rebase() {
  uint32_t top = 0;
  std::vector<uint32_t*> set;
  for (size_t base = 0; base < m_entries.size(); base += static_cast<size_t>(m_ways)) {
    set.clear();
    for (int w = 0; w < m_ways; ++w) {
      Entry& e = m_entries[base + w];
      if (!e.valid) e.stamp = 0;  // an invalid entry is taken first whatever its stamp
      else set.push_back(&e.stamp);
    }
    top = std::max(top, rerank_stamps(set));
  }
  m_clock = top;
}

void Tlb::flush_pcid(Pcid pcid) {
  for (auto& e : m_entries)
    if (e.valid && !e.t.global && e.pcid == pcid) e.valid = false;
}

void Tlb::flush_nonglobal() {
  for (auto& e : m_entries)
    if (!e.t.global) e.valid = false;
}

void Tlb::flush_everything() {
  for (auto& e : m_entries) e.valid = false;
}

void Tlb::flush_page(uint64_t vpn, Pcid pcid) {
  Entry* set = &m_entries[(vpn & m_set_mask) * m_ways];
  for (int w = 0; w < m_ways; ++w) {
    Entry& e = set[w];
    if (e.valid && e.vpn == vpn && (e.t.global || e.pcid == pcid)) e.valid = false;
  }
}

}  // namespace percpu
