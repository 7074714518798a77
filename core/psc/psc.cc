#include "psc/psc.h"

namespace percpu {

void PagingStructureCache::rebase() {
  std::vector<uint32_t*> all;
  for (size_t i = 0; i < m_key.size(); ++i) {
    if (m_key[i] == 0) m_stamp[i] = 0;  // empty: taken first whatever its stamp
    else all.push_back(&m_stamp[i]);
  }
  m_clock = rerank_stamps(all);
}

void PagingStructureCache::insert(uint64_t prefix, Pcid pcid, Frame next_table) {
  if (m_key.empty()) return;
  uint64_t key = make_key(prefix, pcid);
  size_t victim = 0;
  for (size_t i = 0; i < m_key.size(); ++i) {
    if (m_key[i] == key) {
      victim = i;
      break;
    }
    if (m_key[i] == 0) {
      if (m_key[victim] != 0) victim = i;
    } else if (m_key[victim] != 0 && m_stamp[i] < m_stamp[victim]) {
      victim = i;
    }
  }
  m_key[victim] = key;
  m_next[victim] = next_table;
  m_stamp[victim] = tick();
}

}  // namespace percpu
