// One line of the ASID event log (Engine::record_asid_events): the inputs of Linux's
// ASID and tlb_gen logic as the engine met them, in the engine's order, and the
// engine's choice at each switch. tests/core/asid_oracle.py replays the inputs
// through its own model of cpu_tlbstate and compares the choices, so the log must
// carry what happened, never what the engine concluded from its own state.
#pragma once
#include <cstdint>

namespace percpu {

struct AsidEvent {
  enum Kind : uint8_t {
    Switch,           // switch_mm_irqs_off(cpu, next = ctx_id); next's tlb_gen then
    Lazy,             // enter_lazy_tlb(cpu)
    Flush,            // flush_tlb_mm_range from cpu on ctx_id: pages, freed_tables, trim
    CpuOnline,        // cpu came up: init_mm (ctx_id) in slot 0, lazy
    CpuOffline,       // cpu went down: its ASID slots and mm_cpumask bits are gone
    InvalidateOther,  // cpu's other ASID slots are to be dropped at the next switch
    // Linux 6.15 (docs/linux-2025.md): consider_global_asid passed its sample on cpu
    // for ctx_id (tlb_gen: jiffies, pages: current's pid; asid: the mm's global ASID
    // after it, 0 if none), and an mm's global ASID freed at its end (asid).
    ConsiderGlobalAsid,
    GlobalAsidFree,
  } kind;
  int cpu = -1;
  uint64_t ctx_id = 0;
  uint64_t tlb_gen = 0;  // Switch: next's tlb_gen at the switch; flush: the new one
  uint64_t pages = 0;    // Flush: range length in pages
  bool freed_tables = false;
  bool trim = false;
  // Switch: the engine's outcome.
  int asid = -1;
  bool need_flush = false;
  uint8_t cause = 0;     // NewAsidCause
  bool allocated = false;  // the root scheme allocated a root
};

}  // namespace percpu
