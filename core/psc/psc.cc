#include "psc/psc.h"

namespace percpu {

void PagingStructureCache::insert(uint64_t prefix, Pcid pcid, Frame next_table) {
  if (m_entries.empty()) return;
  Entry* victim = &m_entries[0];
  for (auto& e : m_entries) {
    if (e.valid && e.prefix == prefix && e.pcid == pcid) {
      victim = &e;
      break;
    }
    if (!e.valid) {
      if (victim->valid) victim = &e;
    } else if (victim->valid && e.stamp < victim->stamp) {
      victim = &e;
    }
  }
  *victim = Entry{prefix, next_table, ++m_clock, pcid, true};
}

}  // namespace percpu
