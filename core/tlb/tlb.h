// A set-associative, PCID-tagged TLB with global pages and LRU replacement.
// Entries match when the page number matches and either the entry is global
// or its PCID is the current one, as on x86 with CR4.PCIDE=1 (with PCID off
// the engine always uses PCID 0).
#pragma once
#include <cstdint>
#include <vector>

#include "common/lru_stamp.h"
#include "common/types.h"

namespace percpu {

struct Translation {
  Frame frame = kNoFrame;
  bool writable = false;
  bool user = false;
  bool global = false;
  bool executable = true;
};

class Tlb {
 public:
  Tlb(int entries, int ways);

  // Returns the entry or nullptr; a hit refreshes LRU.
  const Translation* lookup(uint64_t vpn, Pcid pcid) {
    Entry* set = &m_entries[(vpn & m_set_mask) * m_ways];
    for (int w = 0; w < m_ways; ++w) {
      Entry& e = set[w];
      if (e.valid && e.vpn == vpn && (e.t.global || e.pcid == pcid)) {
        e.stamp = tick();
        return &e.t;
      }
    }
    return nullptr;
  }
  void insert(uint64_t vpn, Pcid pcid, const Translation& t);

  void flush_pcid(Pcid pcid);           // non-global entries of one PCID
  void flush_nonglobal();               // every PCID's non-global entries
  void flush_everything();              // global entries too (CR4.PGE toggle)
  void flush_page(uint64_t vpn, Pcid pcid);  // INVLPG: this PCID's and global entries
  // Starts the LRU clock at `start` (tests: a wrap early in a run changes nothing).
  void set_clock(uint32_t start) { m_clock = start; }

 private:
  struct Entry {
    uint64_t vpn = 0;
    uint32_t stamp = 0;
    Pcid pcid = 0;
    bool valid = false;
    Translation t;
  };
  std::vector<Entry> m_entries;
  int m_ways;
  uint64_t m_set_mask;
  uint32_t m_clock = 0;
  uint32_t tick() {
    if (m_clock == kLruStampMax) rebase();
    return ++m_clock;
  }
  void rebase();  // common/lru_stamp.h: renumber each set's stamps before the wrap
};

}  // namespace percpu
