// Follows arch/x86/mm/tlb.c: Linux's per-CPU ASID bookkeeping (cpu_tlbstate)
// and choose_new_asid(), as summarised in docs/references.md, "Linux's TLB and ASID rules".
// Pure logic with no hardware state, so hand-worked switch sequences can test it.
#pragma once
#include <cstdint>

#include "common/mutation.h"
#include "common/types.h"

namespace percpu {

// Why a (cpu, asid) got a fresh generation: with per-CPU roots, why a root was
// allocated (the causes the proposal names, docs/references.md, "The proposal").
// The one list of them: the stats (percpu.rootAllocs::<name>) and Python
// (percpu._core.ROOT_ALLOC_CAUSES) take the names from here.
#define PERCPU_NEW_ASID_CAUSES(X)                                                    \
  X(None, "none")                        /* slot reused, no flush needed */             \
  X(FirstUse, "firstUse")                /* this mm never had a slot on this CPU */     \
  X(Evicted, "evicted")                  /* it had one, but the slot went to another mm \
                                            (round-robin) */                            \
  X(FlushedInactive, "flushedInactive")  /* its slot survived but a flush happened while \
                                            it was inactive */                          \
  X(NoPcid, "noPcid")                    /* no PCID: every switch flushes */

enum class NewAsidCause : uint8_t {
#define PERCPU_CAUSE_ENUM(id, name) id,
  PERCPU_NEW_ASID_CAUSES(PERCPU_CAUSE_ENUM)
#undef PERCPU_CAUSE_ENUM
};
constexpr const char* kNewAsidCauseNames[] = {
#define PERCPU_CAUSE_NAME(id, name) name,
    PERCPU_NEW_ASID_CAUSES(PERCPU_CAUSE_NAME)
#undef PERCPU_CAUSE_NAME
};
constexpr int kNumNewAsidCauses = sizeof(kNewAsidCauseNames) / sizeof(kNewAsidCauseNames[0]);
inline const char* cause_name(NewAsidCause c) { return kNewAsidCauseNames[static_cast<int>(c)]; }

struct AsidChoice {
  Asid asid = 0;
  bool need_flush = false;
  NewAsidCause cause = NewAsidCause::None;
};

struct TlbContext {
  uint64_t ctx_id = 0;  // 0: empty slot (real mms start at 1)
  uint64_t tlb_gen = 0;
};

class CpuTlbState {
 public:
  // Boot: init_mm (ctx_id 1) is loaded in slot 0 and next_asid is 1, as Linux sets it.
  explicit CpuTlbState(uint64_t init_ctx_id = 1) { m_ctxs[0].ctx_id = init_ctx_id; }

  // choose_new_asid(next, next_tlb_gen). ever_had_slot tells Evicted from FirstUse
  // (Linux does not need that distinction; the stats do).
  AsidChoice choose_new_asid(uint64_t ctx_id, uint64_t next_tlb_gen, bool pcid,
                             bool ever_had_slot) {
    if (!pcid) return {0, true, NewAsidCause::NoPcid};
    if (m_invalidate_other) {
      for (int a = 0; a < kTlbNrDynAsids; ++a)
        if (a != m_loaded_asid) m_ctxs[a].ctx_id = 0;
      m_invalidate_other = false;
    }
    for (int a = 0; a < kTlbNrDynAsids; ++a) {
      if (m_ctxs[a].ctx_id != ctx_id) continue;
      bool stale = m_ctxs[a].tlb_gen < next_tlb_gen && !mutated(Mutation::StaleFalse);
      return {a, stale, stale ? NewAsidCause::FlushedInactive : NewAsidCause::None};
    }
    Asid asid = m_next_asid++;
    if (asid >= kTlbNrDynAsids - (mutated(Mutation::WrapAtFive) ? 1 : 0)) {
      asid = 0;
      m_next_asid = 1;
    }
    return {asid, true, ever_had_slot ? NewAsidCause::Evicted : NewAsidCause::FirstUse};
  }

  TlbContext& ctx(Asid a) { return m_ctxs[a]; }
  const TlbContext& ctx(Asid a) const { return m_ctxs[a]; }
  Asid loaded_asid() const { return m_loaded_asid; }
  void set_loaded_asid(Asid a) { m_loaded_asid = a; }
  bool is_lazy() const { return m_is_lazy; }
  void set_lazy(bool lazy) { m_is_lazy = lazy; }
  void set_invalidate_other() { m_invalidate_other = true; }
  Asid next_asid() const { return m_next_asid; }

 private:
  TlbContext m_ctxs[kTlbNrDynAsids];
  Asid m_loaded_asid = 0;
  Asid m_next_asid = 1;
  bool m_invalidate_other = false;
  bool m_is_lazy = false;
};

// kern_pcid(asid) = asid + 1; PCID 0 is for PCID-unaware code.
inline Pcid kern_pcid(Asid asid) { return static_cast<Pcid>(asid + 1); }
inline Pcid user_pcid(Asid asid) { return kern_pcid(asid) | kPtiUserPcidBit; }
// The inverse, for what sees only PCIDs (the gem5 plugin): the dynamic ASID whose
// kern_pcid or user_pcid this is, or -1 for a PCID Linux does not hand out as one.
inline int asid_of_pcid(Pcid pcid) {
  const int kern = pcid & ~kPtiUserPcidBit;
  return kern >= kern_pcid(0) && kern <= kern_pcid(kTlbNrDynAsids - 1) ? kern - kern_pcid(0) : -1;
}

}  // namespace percpu
