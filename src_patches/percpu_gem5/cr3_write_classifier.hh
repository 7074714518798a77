// What a CR3 write does to the loaded address space, as a Linux guest uses
// CR3: classified from the values alone, with no gem5 or guest state, so
// that the gem5 monitor and later the per-(cpu, pcid) root model share one
// definition.
//
// The loaded address space is the pair (pgd, pcid) with PTI's two halves
// folded together: PTI's user pgd is the kernel pgd + 4 KiB (CR3 bit 12)
// and its user PCID is the kernel PCID | 0x800 (bit 11), so under PTI both
// are cleared. Without PTI a pgd is one page and its neighbour 4 KiB away may
// be another mm's, so bit 12 stays (the PCID's bit 11 is folded either way:
// Linux uses only PCIDs 1-6 without PTI). A write either
//   - switches mm: the pair changes (choose_new_asid's switch, or any
//     switch without PCID);
//   - crosses PTI's kernel/user boundary: same pair, another value;
//   - reloads: the same value again (flush_tlb_local, or a no-op switch).
// Whether the write flushes is separate: it keeps the new PCID's TLB entries
// only with CR4.PCIDE = 1 and bit 63 set (Intel SDM vol. 3A, 4.10.4.1).
#pragma once
#include <cstdint>

#include "root/names.h"

namespace percpu {

struct AddressSpace {
  uint64_t pgd = 0;   // CR3[51:12] << 12, bit 12 cleared under PTI
  uint16_t pcid = 0;  // CR3[11:0] if PCIDE, else 0; bit 11 cleared

  bool operator==(const AddressSpace& o) const { return pgd == o.pgd && pcid == o.pcid; }
  bool operator!=(const AddressSpace& o) const { return !(*this == o); }
};

enum class Cr3WriteKind { MmSwitch, PtiSwitch, Reload };

struct Cr3Write {
  Cr3WriteKind kind = Cr3WriteKind::MmSwitch;
  bool no_flush = false;      // PCIDE and bit 63: the new PCID's entries are kept
  bool nonzero_pcid = false;  // PCIDE and CR3[11:0] != 0
  uint16_t pcid = 0;          // the PCID loaded (0 without PCIDE)
  AddressSpace from;          // the pair before the write
  AddressSpace to;            // the pair after it

  bool flushes() const { return !no_flush; }
};

class Cr3WriteClassifier {
 public:
  // The bits (kCr3NoFlushBit, kPtiUserPgdBit, kPtiUserPcidBit): core/root/names.h.
  // The PCID a CR3 value loads: CR3[11:0] with PCIDE, else 0 (SDM 4.10.1).
  static uint16_t pcid_of(uint64_t cr3, bool pcide);
  // pti: the guest runs with page-table isolation (the pair's halves fold).
  static AddressSpace address_space(uint64_t cr3, bool pcide, bool pti);
  // old_cr3 is CR3 before the write (never has bit 63); new_cr3 is the value
  // written, bit 63 included; pcide is CR4.PCIDE at the write.
  static Cr3Write classify(uint64_t old_cr3, uint64_t new_cr3, bool pcide, bool pti);
};

const char* to_string(Cr3WriteKind kind);

}  // namespace percpu
