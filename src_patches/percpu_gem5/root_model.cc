#include "root_model.hh"

#include <stdexcept>

#include "paging/pte.h"
#include "root/names.h"
#include "root/registry.h"

namespace percpu {

// --- GuestTableMemory -------------------------------------------------------

GuestTableMemory::GuestTableMemory(IGuestMemory& mem, PhysAddr pool_base, uint64_t pool_bytes)
    : m_mem(mem),
      m_first(pool_base >> kPageShift),
      m_end((pool_base + pool_bytes) >> kPageShift),
      m_next(m_first) {
  if (pool_base % kPageSize || pool_bytes % kPageSize)
    throw std::invalid_argument("the root pool must be page-aligned");
  if (m_first == kNoFrame && m_end > m_first) m_next = ++m_first;  // frame 0 means "none"
}

uint64_t GuestTableMemory::read_entry(Frame table, int index) const {
  return m_mem.read64((table << kPageShift) + static_cast<uint64_t>(index) * 8);
}

void GuestTableMemory::write_entry(Frame table, int index, uint64_t value) {
  m_mem.write64((table << kPageShift) + static_cast<uint64_t>(index) * 8, value);
}

Frame GuestTableMemory::alloc_table(TableKind) {
  Frame f;
  if (!m_free.empty()) {
    f = m_free.back();
    m_free.pop_back();
  } else if (m_next < m_end) {
    f = m_next++;
  } else {
    // The host sizes the pool to the proposal's bound (root/bounds.h): more live roots
    // than that is a model bug, not a setting.
    throw std::runtime_error("the root pool (" + std::to_string((m_end - m_first) * 4) +
                             " KiB, the proposal's bound on live roots) is full");
  }
  zero_table(f);
  if (++m_live > m_peak) m_peak = m_live;
  return f;
}

void GuestTableMemory::free_table(Frame table) {
  if (!in_pool(table)) throw std::logic_error("freeing a table outside the root pool");
  m_free.push_back(table);
  m_live--;
}

// --- RootModel --------------------------------------------------------------

namespace {
uint64_t masked(uint64_t e) { return e & ~RootModel::kWalkerSetBits; }
}  // namespace

RootModel::RootModel(IGuestMemory& mem, const Config& config)
    : m_mem(mem),
      m_config(config),
      m_tables(mem, config.pool_base, config.pool_bytes),
      m_has_roots(config.scheme != "shared"),
      m_cpus(config.ncpus) {
  m_scheme = make_root_scheme(config.scheme, scheme_env(m_tables, config));
}

RootEnv RootModel::scheme_env(ITableMemory& tables, const Config& config) {
  // No init_mm and no private slots (the defaults): hardware sees only CR3, and the
  // guest owns its whole kernel half (docs/references.md, "The gem5 host").
  // fill_at_fault false: the guest kernel adds user pgd entries without telling the
  // roots; a walk's lazy fault fetches them.
  return RootEnv{.mem = tables,
                 .levels = 4,
                 .pti = config.pti,
                 .ncpus = config.ncpus,
                 .init_pgd = kNoFrame,
                 .init_user_pgd = kNoFrame,
                 .fill_at_fault = false};
}

uint64_t RootModel::pool_bound_bytes() const {
  return m_has_roots ? root_pool_bound_bytes(m_config.ncpus, m_config.pti) : 0;
}

int RootModel::asid_of(uint16_t pcid, bool pcide) const {
  if (!pcide) return 0;  // choose_new_asid without PCID: slot 0, always flushed
  return asid_of_pcid(pcid);
}

MmView RootModel::view(const AddressSpace& pair) const {
  MmView mm;
  mm.ctx_id = pair.pgd;  // a live pgd is one mm
  mm.pgd = pair.pgd >> kPageShift;
  mm.user_pgd = m_config.pti ? mm.pgd + 1 : kNoFrame;
  return mm;
}

Cr3Outcome RootModel::on_cr3_write(int cpu, uint64_t old_cr3, uint64_t new_cr3, bool pcide) {
  Cr3Outcome out;
  out.write = Cr3WriteClassifier::classify(old_cr3, new_cr3, pcide, m_config.pti);
  CpuState& c = m_cpus.at(cpu);
  c.pcide = pcide;
  if (!m_has_roots) return out;
  const int asid = asid_of(out.write.pcid, pcide);
  if (asid < 0) return out;  // not a PCID Linux hands out: walk the guest's table
  out.tracked = true;
  Slot& s = c.slots[asid];
  const AddressSpace& to = out.write.to;
  if (out.write.kind == Cr3WriteKind::MmSwitch || !s.used || s.pair != to) {
    // Why, from the history before this write changes it.
    NewAsidCause cause = NewAsidCause::Evicted;
    auto seen = c.last_slot.find(to.pgd);
    if (!pcide)
      cause = NewAsidCause::NoPcid;
    else if (seen == c.last_slot.end())
      cause = NewAsidCause::FirstUse;
    else if (seen->second == asid && s.used && s.pair == to)
      cause = NewAsidCause::FlushedInactive;
    RootSelection sel = m_scheme->select_root(cpu, asid, view(to), out.write.flushes());
    if (sel.allocated) {
      out.allocated = true;
      out.cause = cause;
      for (const EntryCopy& copy : sel.copies) out.copy_bytes += uint64_t(copy.count) * 8;
      for_each_copy_line(sel.copies, [&](PhysAddr src, PhysAddr dst) {
        out.copy_lines.emplace_back(src, dst);
      });
    }
    s = Slot{true, to, sel.kernel_root, sel.user_root};
    c.last_slot[to.pgd] = asid;
  } else if (out.write.flushes()) {
    out.entries_dropped = drop_stale(cpu, asid);
  }
  return out;
}

int RootModel::on_flush_pcid(int cpu, uint16_t pcid) {
  if (!m_has_roots) return 0;
  const int asid = asid_of(pcid, m_cpus.at(cpu).pcide);
  return asid < 0 ? 0 : drop_stale(cpu, asid);
}

int RootModel::on_flush_all(int cpu) {
  if (!m_has_roots) return 0;
  int dropped = 0;
  for (int asid = 0; asid < kTlbNrDynAsids; ++asid) dropped += drop_stale(cpu, asid);
  return dropped;
}

std::vector<int> RootModel::stale_slots(const Slot& s) const {
  std::vector<int> slots;
  const Frame pgd = s.pair.pgd >> kPageShift;
  for (int slot = 0; slot < pte::kUserSlots; ++slot) {
    const uint64_t mine = m_tables.read_entry(s.kroot, slot);
    if (pte::present(mine) && masked(mine) != masked(m_tables.read_entry(pgd, slot)))
      slots.push_back(slot);
  }
  return slots;
}

int RootModel::drop_stale(int cpu, int asid) {
  const Slot& s = m_cpus[cpu].slots[asid];
  if (!s.used || s.kroot == kNoFrame) return 0;
  const std::vector<int> slots = stale_slots(s);
  return slots.empty() ? 0 : m_scheme->on_flush(cpu, asid, view(s.pair), slots);
}

int RootModel::stale_entries(int cpu, uint16_t pcid) const {
  const CpuState& c = m_cpus.at(cpu);
  const int asid = asid_of(pcid, c.pcide);
  if (asid < 0) return 0;
  const Slot& s = c.slots[asid];
  return s.used && s.kroot != kNoFrame ? static_cast<int>(stale_slots(s).size()) : 0;
}

int RootModel::stale_entries(int cpu) const {
  int stale = 0;
  for (const Slot& s : m_cpus.at(cpu).slots)
    if (s.used && s.kroot != kNoFrame) stale += static_cast<int>(stale_slots(s).size());
  return stale;
}

const RootModel::Slot* RootModel::slot_for(int cpu, uint16_t pcid, PhysAddr cr3_base) const {
  const CpuState& c = m_cpus.at(cpu);
  const int asid = asid_of(pcid, c.pcide);
  if (asid < 0) return nullptr;
  const Slot& s = c.slots[asid];
  const AddressSpace pair = Cr3WriteClassifier::address_space(cr3_base | pcid, c.pcide,
                                                              m_config.pti);
  return s.used && s.kroot != kNoFrame && s.pair == pair ? &s : nullptr;
}

PhysAddr RootModel::walk_root(int cpu, uint16_t pcid, PhysAddr cr3_base) const {
  if (!m_has_roots) return cr3_base;
  const Slot* s = slot_for(cpu, pcid, cr3_base);
  if (!s) return cr3_base;
  const bool user_half = m_config.pti && (cr3_base & kPtiUserPgdBit);
  return (user_half ? s->uroot : s->kroot) << kPageShift;
}

TopLevelOutcome RootModel::top_level_entry(int cpu, uint16_t pcid, PhysAddr cr3_base,
                                           PhysAddr root, int slot, uint64_t pte) {
  TopLevelOutcome out;
  out.pte = pte;
  if (!m_has_roots || root == cr3_base) return out;
  const Slot* s = slot_for(cpu, pcid, cr3_base);
  if (!s) return out;
  const int asid = asid_of(pcid, m_cpus[cpu].pcide);
  // The guest's entry in the same half of the pair as the root walked.
  const uint64_t guest = m_mem.read64(cr3_base + static_cast<uint64_t>(slot) * 8);
  if (slot < pte::kFirstKernelSlot) {
    if (!pte::present(pte)) {
      if (!pte::present(guest)) return out;  // a page fault for the guest
      // A walk whose read was served before another walk of this root (the other
      // TLB's walker, or an overlapping walk on O3) faulted the entry in: the
      // root has it now, so this is no second lazy fault.
      const uint64_t now = m_mem.read64(root + static_cast<uint64_t>(slot) * 8);
      if (pte::present(now)) {
        out.pte = now;
        return out;
      }
      const MmView mm = view(s->pair);
      if (m_scheme->lazy_fill(cpu, asid, mm, slot)) {
        out.lazy_fault = true;
      } else if (m_scheme->on_pgd_populated(cpu, asid, mm, slot) > 0) {
        // percpu-eager: the push a root-aware kernel makes at the page fault,
        // made when the entry is first seen (no hardware event comes sooner).
        out.pushed = true;
      }
      out.pte = m_mem.read64(root + static_cast<uint64_t>(slot) * 8);
    } else if (pte::present(guest) && masked(pte) != masked(guest)) {
      out.mismatch = true;
    }
    return out;
  }
  // The kernel half changed with no hardware event (sync_global_pgds): learn it.
  if (masked(pte) != masked(guest)) {
    if (m_config.pti && root == (s->uroot << kPageShift))
      m_tables.write_entry(s->uroot, slot, guest);  // PTI's user half has its own
    else
      m_scheme->on_kernel_slot_added(slot, guest);
    out.kernel_sync = true;
    out.pte = guest;
  }
  return out;
}

}  // namespace percpu
