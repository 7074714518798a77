// The checker (--check): every translation against the authoritative table,
// roots against their mm's pgd, the proposal's bounds; and how a violation is
// reported (the op that exposed it, counted always, described up to a limit).
#include <sstream>

#include "engine/engine_state.h"
#include "paging/pte.h"

namespace percpu {

namespace {
constexpr int kMaxViolationText = 200;
}

void Engine::violation(Cpu& c, const std::string& what, VirtAddr va) {
  m_violation_count++;
  if (m_violations.size() >= static_cast<size_t>(m_params.get_int("check.max_reports"))) return;
  Violation v;
  v.what = what.substr(0, kMaxViolationText);
  v.cpu = c.id;
  v.task = task_label(c.current);
  v.op_index = m_current_op;
  v.va = va;
  m_violations.push_back(v);
}

// A translation the TLB, PSCs or walk produced, against a software walk of the
// authority for the address: the mm's canonical table for user addresses, the
// root itself for its private kernel slots, init_mm's table else.
void Engine::check_translation(Cpu& c, VirtAddr va, const Translation& got) {
  int slot = pte::index(va, m_levels);
  Frame authority;
  if (slot < pte::kFirstKernelSlot) authority = c.loaded_mm ? c.loaded_mm->pgd : kNoFrame;
  else if (m_scheme->has_private_slots() && (slot == kPercpuDataSlot || slot == kPrivateKmapSlot))
    authority = c.kernel_cr3.root;
  else authority = m_init_mm->pgd;
  uint64_t want = authority ? m_pt.lookup(authority, va) : 0;
  bool want_writable = want & pte::kWritable;
  bool want_exec = !(want & pte::kNoExec);
  bool want_user = want & pte::kUser;
  if (!pte::present(want) || pte::frame(want) != got.frame || want_writable != got.writable ||
      want_exec != got.executable || want_user != got.user) {
    std::ostringstream msg;
    auto bits = [](bool w, bool x, bool u) {
      return std::string(w ? " rw" : " ro") + (x ? "x" : "") + (u ? " user" : " kernel");
    };
    msg << "stale translation: va 0x" << std::hex << va << " -> frame 0x" << got.frame
        << bits(got.writable, got.executable, got.user) << ", canonical table says ";
    if (pte::present(want))
      msg << "frame 0x" << pte::frame(want) << bits(want_writable, want_exec, want_user);
    else
      msg << "not mapped";
    violation(c, msg.str(), va);
  }
}

// (cpu, asid)'s root must agree with mm's pgd on every user entry it holds.
void Engine::check_root_matches_pgd(Cpu& c, Asid asid, const Mm& mm, const char* when) {
  if (m_check && m_scheme->inspector().stale_user_slots(c.id, asid, mm.view()) > 0) violation(c, when, 0);
}

// A proposal bound (root/bounds.h): counted always, a violation under --check.
void Engine::check_bound(Cpu& c, bool within, const char* what, VirtAddr va) {
  if (within) return;
  m_bound_violations++;
  if (m_check) violation(c, what, va);
}

}  // namespace percpu
