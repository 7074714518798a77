#include "cr3_write_classifier.hh"

namespace percpu {

namespace {

constexpr uint64_t kBaseMask = ((uint64_t(1) << 52) - 1) & ~uint64_t(0xfff);  // CR3[51:12]

}  // namespace

uint16_t Cr3WriteClassifier::pcid_of(uint64_t cr3, bool pcide) {
  return pcide ? static_cast<uint16_t>(cr3 & 0xfff) : 0;
}

AddressSpace Cr3WriteClassifier::address_space(uint64_t cr3, bool pcide, bool pti) {
  AddressSpace as;
  as.pgd = cr3 & kBaseMask & ~(pti ? kPtiUserPgdBit : 0);
  as.pcid = pcid_of(cr3, pcide) & ~kPtiUserPcidBit;
  return as;
}

Cr3Write Cr3WriteClassifier::classify(uint64_t old_cr3, uint64_t new_cr3, bool pcide,
                                      bool pti) {
  Cr3Write w;
  w.no_flush = pcide && (new_cr3 & kCr3NoFlushBit);
  w.pcid = pcid_of(new_cr3, pcide);
  w.nonzero_pcid = w.pcid != 0;
  w.from = address_space(old_cr3, pcide, pti);
  w.to = address_space(new_cr3, pcide, pti);
  const uint64_t loaded = new_cr3 & ~kCr3NoFlushBit;
  if (w.from != w.to)
    w.kind = Cr3WriteKind::MmSwitch;
  else if ((old_cr3 & ~kCr3NoFlushBit) != loaded)
    w.kind = Cr3WriteKind::PtiSwitch;
  else
    w.kind = Cr3WriteKind::Reload;
  return w;
}

const char* to_string(Cr3WriteKind kind) {
  switch (kind) {
    case Cr3WriteKind::MmSwitch: return "mm-switch";
    case Cr3WriteKind::PtiSwitch: return "pti-switch";
    case Cr3WriteKind::Reload: return "reload";
  }
  return "?";
}

}  // namespace percpu
