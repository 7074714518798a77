// Unit tests of the root schemes (core/root/) against a small fake memory,
// compiled with core/root/, core/common/ and core/paging/pte.h alone: the
// seam the gem5 plugin builds on (test_root_schemes.py compiles and runs it).
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "paging/pte.h"
#include "root/registry.h"
#include "../../cxx_expect.h"

using namespace percpu;

namespace {

// Table frames as a map; frames are handed out in order from 1000 up and never
// reused, so a read of a freed frame is caught.
class FakeMemory final : public ITableMemory {
 public:
  uint64_t read_entry(Frame t, int i) const override {
    EXPECT(live.count(t) == 1);
    auto it = tables.find(t);
    return it == tables.end() ? 0 : it->second[i];
  }
  void write_entry(Frame t, int i, uint64_t v) override {
    EXPECT(live.count(t) == 1);
    EXPECT(i >= 0 && i < kEntriesPerTable);
    tables[t][i] = v;
    writes++;
  }
  Frame alloc_table(TableKind kind) override {
    (kind == TableKind::Root ? roots : privates)++;
    return host_table();
  }
  void free_table(Frame t) override {
    EXPECT(live.erase(t) == 1);
    freed++;
  }
  // A zeroed table; called directly, one the host owns (a pgd), not the scheme.
  Frame host_table() {
    Frame f = next++;
    tables[f].assign(kEntriesPerTable, 0);
    live.insert(f);
    return f;
  }

  std::map<Frame, std::vector<uint64_t>> tables;
  std::set<Frame> live;
  Frame next = 1000;
  int roots = 0, privates = 0, freed = 0;
  uint64_t writes = 0;
};

struct Fixture {
  explicit Fixture(bool pti = false, bool private_slots = true, int ncpus = 2)
      : env{mem, 4, pti, ncpus, kNoFrame, kNoFrame, {}, false} {
    env.init_pgd = mem.host_table();
    for (int s = pte::kFirstKernelSlot; s < kEntriesPerTable; s += 17)
      mem.write_entry(env.init_pgd, s, pte::make_table(50 + s));
    if (pti) {
      env.init_user_pgd = mem.host_table();
      mem.write_entry(env.init_user_pgd, 300, pte::make_table(7));
    }
    if (private_slots)
      for (int c = 0; c < ncpus; ++c) env.percpu_data_top.push_back(mem.host_table());
    mm.ctx_id = 2;
    mm.pgd = mem.host_table();
    mm.user_pgd = pti ? mem.host_table() : kNoFrame;
    mem.write_entry(mm.pgd, 3, pte::make_table(77));
    // PTI: Linux's kernel-pgd copy of a user entry has NX (pti_set_user_pgtbl).
    if (pti) mem.write_entry(mm.user_pgd, 3, pte::make_table(77) & ~pte::kNoExec);
    if (pti) mem.write_entry(mm.pgd, 3, pte::make_table(77) | pte::kNoExec);
  }
  FakeMemory mem;
  RootEnv env;
  MmView mm;
};

void test_registry_lists_every_scheme() {
  auto names = root_scheme_names();
  EXPECT((std::set<std::string>(names.begin(), names.end()) ==
          std::set<std::string>{"percpu", "percpu-eager", "shared"}));
  Fixture f;
  bool threw = false;
  try {
    make_root_scheme("nope", f.env);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  EXPECT(threw);
}

void test_shared_walks_from_the_mm_pgd() {
  Fixture f(true);
  auto s = make_root_scheme("shared", f.env);
  RootSelection sel = s->select_root(0, 1, f.mm, true);
  EXPECT(sel.kernel_root == f.mm.pgd && sel.user_root == f.mm.user_pgd && !sel.allocated);
  EXPECT(!s->has_private_slots() && s->root_pages_live() == 0 && f.mem.roots == 0);
}

void test_percpu_allocates_a_root_with_the_kernel_half() {
  Fixture f;
  auto s = make_root_scheme("percpu", f.env);
  RootSelection sel = s->select_root(1, 2, f.mm, true);
  EXPECT(sel.allocated && sel.kernel_root == sel.user_root && f.mem.roots == 1);
  for (int slot = pte::kFirstKernelSlot; slot < kEntriesPerTable; ++slot) {
    uint64_t want = slot == kPercpuDataSlot ? pte::make_table(f.env.percpu_data_top[1])
                                            : f.mem.read_entry(f.env.init_pgd, slot);
    EXPECT(f.mem.read_entry(sel.kernel_root, slot) == want);
  }
  EXPECT(f.mem.read_entry(sel.kernel_root, 3) == 0);  // user entries come lazily
  EXPECT(sel.copies.size() == 1 && sel.copies[0].count == pte::kUserSlots);
  EXPECT(s->root_pages_live() == 1);
  // Reused while the generation lasts; a new generation reuses the frame, zeroed.
  RootSelection again = s->select_root(1, 2, f.mm, false);
  EXPECT(!again.allocated && again.kernel_root == sel.kernel_root);
  uint64_t gen = s->root_generation(1, 2);
  RootSelection fresh = s->select_root(1, 2, f.mm, true);
  EXPECT(fresh.allocated && fresh.kernel_root == sel.kernel_root && f.mem.roots == 1);
  EXPECT(s->root_generation(1, 2) != gen);
  // Another mm in the slot: a new root generation too.
  MmView other = f.mm;
  other.ctx_id = 9;
  EXPECT(s->select_root(1, 2, other, false).allocated);
}

void test_percpu_fills_user_slots_lazily() {
  Fixture f;
  auto s = make_root_scheme("percpu", f.env);
  Frame root = s->select_root(0, 0, f.mm, true).kernel_root;
  EXPECT(!s->lazy_fill(0, 0, f.mm, 4));  // the pgd has no entry 4 either
  EXPECT(s->lazy_fill(0, 0, f.mm, 3));
  EXPECT(f.mem.read_entry(root, 3) == f.mem.read_entry(f.mm.pgd, 3));
  EXPECT(s->max_lazy_faults_per_generation() == 1);
  EXPECT(s->stale_user_slots(0, 0, f.mm) == 0);
  // The pgd entry changes: the root is stale until the flush drops it.
  f.mem.write_entry(f.mm.pgd, 3, 0);
  EXPECT(s->stale_user_slots(0, 0, f.mm) == 1);
  EXPECT(s->on_flush(0, 0, f.mm, {3}) == 1);
  EXPECT(f.mem.read_entry(root, 3) == 0 && s->stale_user_slots(0, 0, f.mm) == 0);
  // A page fault populates a new entry: only this root learns it (the rest fault).
  f.mem.write_entry(f.mm.pgd, 5, pte::make_table(88));
  EXPECT(s->on_pgd_populated(0, 0, f.mm, 5) == 1);
  EXPECT(f.mem.read_entry(root, 5) == pte::make_table(88));
  // Without fill_at_fault (the gem5 host's guest): the next walk faults it in instead.
  Fixture g;
  g.env.fill_at_fault = false;
  auto lazy = make_root_scheme("percpu", g.env);
  Frame groot = lazy->select_root(0, 0, g.mm, true).kernel_root;
  g.mem.write_entry(g.mm.pgd, 5, pte::make_table(88));
  EXPECT(lazy->on_pgd_populated(0, 0, g.mm, 5) == 0 && g.mem.read_entry(groot, 5) == 0);
  EXPECT(lazy->lazy_fill(0, 0, g.mm, 5) && g.mem.read_entry(groot, 5) == pte::make_table(88));
}

void test_eager_copies_user_slots_at_allocation() {
  Fixture f(false, true, 2);
  auto s = make_root_scheme("percpu-eager", f.env);
  RootSelection sel = s->select_root(0, 0, f.mm, true);
  EXPECT(f.mem.read_entry(sel.kernel_root, 3) == f.mem.read_entry(f.mm.pgd, 3));
  EXPECT(sel.copies.size() == 2);
  Frame other = s->select_root(1, 4, f.mm, true).kernel_root;
  f.mem.write_entry(f.mm.pgd, 6, pte::make_table(99));
  EXPECT(s->on_pgd_populated(0, 0, f.mm, 6) == 2);  // every root of the mm
  EXPECT(f.mem.read_entry(other, 6) == pte::make_table(99));
  EXPECT(!s->lazy_fill(0, 0, f.mm, 7));
}

void test_pti_pairs_and_release() {
  Fixture f(true);
  auto s = make_root_scheme("percpu", f.env);
  RootSelection sel = s->select_root(0, 1, f.mm, true);
  EXPECT(sel.kernel_root != sel.user_root && f.mem.roots == 2 && s->root_pages_live() == 2);
  EXPECT(f.mem.read_entry(sel.user_root, 300) == pte::make_table(7));
  EXPECT(sel.copies.size() == 2);
  EXPECT(s->lazy_fill(0, 1, f.mm, 3));
  // Each half of the pair from its own pgd: the user half without the NX of the kernel's.
  EXPECT(f.mem.read_entry(sel.kernel_root, 3) == f.mem.read_entry(f.mm.pgd, 3));
  EXPECT(f.mem.read_entry(sel.user_root, 3) == f.mem.read_entry(f.mm.user_pgd, 3));
  EXPECT(f.mem.read_entry(sel.user_root, 3) != f.mem.read_entry(sel.kernel_root, 3));
  int allocated = 0;
  Frame kmap = s->private_kmap_table(0, 1, &allocated);
  EXPECT(kmap != kNoFrame && allocated == 3 && f.mem.privates == 3);
  EXPECT(s->private_kmap_table(0, 1, &allocated) == kmap && allocated == 3);
  EXPECT(pte::present(f.mem.read_entry(sel.kernel_root, kPrivateKmapSlot)));
  EXPECT(s->on_kernel_slot_added(290, pte::make_table(5)) == 1);
  EXPECT(f.mem.read_entry(sel.kernel_root, 290) == pte::make_table(5));
  int before = f.mem.freed;
  s->on_mm_destroyed(f.mm);
  EXPECT(f.mem.freed - before == 5 && s->root_pages_live() == 0 &&
         s->private_table_pages_live() == 0);
}

void test_no_private_slots_without_percpu_data_tables() {
  Fixture f(false, false);  // the gem5 host: the guest owns its kernel half
  auto s = make_root_scheme("percpu", f.env);
  EXPECT(!s->has_private_slots());
  Frame root = s->select_root(0, 0, f.mm, true).kernel_root;
  EXPECT(f.mem.read_entry(root, kPercpuDataSlot) == f.mem.read_entry(f.env.init_pgd, kPercpuDataSlot));
}

void test_kernel_half_from_the_mm_without_init_pgd() {
  // The gem5 host knows no init_mm: the kernel halves come from the mm's own pair.
  Fixture f(true, false);
  f.env.init_pgd = kNoFrame;
  f.env.init_user_pgd = kNoFrame;
  f.mem.write_entry(f.mm.pgd, 400, pte::make_table(41));
  f.mem.write_entry(f.mm.user_pgd, 401, pte::make_table(42));
  auto s = make_root_scheme("percpu", f.env);
  RootSelection sel = s->select_root(0, 0, f.mm, true);
  EXPECT(f.mem.read_entry(sel.kernel_root, 400) == pte::make_table(41));
  EXPECT(f.mem.read_entry(sel.user_root, 401) == pte::make_table(42));
  EXPECT(f.mem.read_entry(sel.user_root, 400) == 0);
  EXPECT(sel.copies.size() == 2 && sel.copies[0].src == f.mm.pgd &&
         sel.copies[1].src == f.mm.user_pgd);
}

}  // namespace

int main() {
  test_registry_lists_every_scheme();
  test_shared_walks_from_the_mm_pgd();
  test_percpu_allocates_a_root_with_the_kernel_half();
  test_percpu_fills_user_slots_lazily();
  test_eager_copies_user_slots_at_allocation();
  test_pti_pairs_and_release();
  test_no_private_slots_without_percpu_data_tables();
  test_kernel_half_from_the_mm_without_init_pgd();
  if (g_failures) {
    std::printf("%d failures\n", g_failures);
    return 1;
  }
  std::printf("ok\n");
  return 0;
}
