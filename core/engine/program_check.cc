// The op program's static check (engine/program_check.h): everything the
// interpreter indexes or loops on, before the first op runs.
#include "engine/program_check.h"

#include <iterator>
#include <string>
#include <vector>

#include "engine/errors.h"

namespace percpu {

namespace {

constexpr int64_t kUserTop = int64_t{1} << 47;  // VMAs live below the 4-level user half's top
constexpr int kNumOpCodes = static_cast<int>(std::size(kOpCodeNames));

bool page_aligned(int64_t v) { return (v & 4095) == 0; }
bool valid_prot(int64_t p) { return p == 1 || p == 3 || p == 5 || p == 7; }

class Checker {
 public:
  Checker(const Program& p, int ncpus) : m_p(p), m_ncpus(ncpus) {}

  void run() {
    for (size_t i = 0; i < m_p.mms.size(); ++i) check_mm(m_p.mms[i]);
    for (size_t i = 0; i < m_p.tasks.size(); ++i) check_task(m_p.tasks[i]);
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    std::string where = m_task ? "task '" + m_task->name + "'" : "program";
    if (m_op >= 0) {
      where += " op " + std::to_string(m_op);
      int code = static_cast<int>(m_task->ops[m_op].code);
      if (code >= 1 && code <= kNumOpCodes) where += std::string(" (") + kOpCodeNames[code - 1] + ")";
    }
    throw ProgramError(where + ": " + what);
  }

  void check_mm(const MmTemplate& m) {
    std::vector<bool> named(m_p.vma_names.size(), false);
    for (size_t i = 0; i < m.vmas.size(); ++i) {
      const Vma& v = m.vmas[i];
      std::string label = "mm '" + m.name + "' VMA " + std::to_string(i);
      if (v.name < 0 || static_cast<size_t>(v.name) >= m_p.vma_names.size())
        fail(label + ": VMA name " + std::to_string(v.name) + " is not an index of vma_names (" +
             std::to_string(m_p.vma_names.size()) + " names)");
      label = "mm '" + m.name + "' VMA '" + m_p.vma_names[v.name] + "'";
      if (named[v.name]) fail(label + " is declared twice in this mm: give each VMA its own name");
      named[v.name] = true;
      const bool placed = v.start >= kVmaAuto;  // placed when the image is made
      const uint64_t base = placed ? kVmaAuto : 0;
      if (v.start % 4096 || v.end % 4096 || v.start >= v.end ||
          v.end - base > static_cast<uint64_t>(kUserTop))
        fail(label + ": expected a non-empty, page-aligned range below 2^47");
      if (!valid_prot(v.prot)) fail(label + ": protection must be r, rw, rx or rwx (1, 3, 5, 7)");
      if (placed && v.start != kVmaAuto)
        fail(label + ": an auto-placed VMA starts at kVmaAuto (2^63); its end is 2^63 + size");
      if (placed) continue;
      for (size_t j = 0; j < i; ++j)
        if (m.vmas[j].start < kVmaAuto && v.start < m.vmas[j].end && m.vmas[j].start < v.end)
          fail(label + " overlaps VMA '" + m_p.vma_names[m.vmas[j].name] + "'");
    }
  }

  void check_task(const TaskTemplate& t) {
    m_task = &t;
    m_op = -1;
    if (t.mm != kMmKernel && t.mm != kMmFork &&
        (t.mm < 0 || static_cast<size_t>(t.mm) >= m_p.mms.size()))
      fail("mm " + std::to_string(t.mm) + " is not an mm template index, kernel (-1) or fork (-2)");
    if (t.mm == kMmFork && t.start)
      fail("mm=fork but start=yes: declare it with start=no and start it with fork");
    bool any = false;
    for (int i = 0; i < m_ncpus; ++i) any |= t.cpus.test(i);
    if (!any)
      fail("may run on no CPU of this " + std::to_string(m_ncpus) + "-CPU machine: fix its cpus=");
    std::vector<int64_t> loops;  // open repeats
    for (size_t i = 0; i < t.ops.size(); ++i) {
      m_op = static_cast<int>(i);
      check_op(t.ops[i], static_cast<int64_t>(i), loops);
    }
    if (!loops.empty()) {
      m_op = static_cast<int>(loops.back());
      fail("'repeat' without 'end'");
    }
    m_task = nullptr;
    m_op = -1;
  }

  void vma(int64_t index) const {
    if (index < 0 || static_cast<size_t>(index) >= m_p.vma_names.size())
      fail("VMA " + std::to_string(index) + " is not an index of vma_names (" +
           std::to_string(m_p.vma_names.size()) + " names)");
  }
  void non_negative(int64_t v, const char* what) const {
    if (v < 0) fail(std::string(what) + " must be non-negative, got " + std::to_string(v));
  }
  void in_user_half(int64_t v, const char* what) const {
    if (v < 0 || v > kUserTop)
      fail(std::string(what) + " " + std::to_string(v) + " is outside 0..2^47");
  }
  void cpu(int64_t v) const {
    if (v < 0 || v >= m_ncpus)
      fail("CPU " + std::to_string(v) + " does not exist on this " + std::to_string(m_ncpus) +
           "-CPU machine");
  }
  void task_target(int64_t v, bool fork) const {
    if (v < 0 || static_cast<size_t>(v) >= m_p.tasks.size())
      fail("task " + std::to_string(v) + " is not a task index (" +
           std::to_string(m_p.tasks.size()) + " tasks)");
    const TaskTemplate& target = m_p.tasks[v];
    if (fork && target.mm != kMmFork)
      fail("fork target '" + target.name + "' must be declared with mm=fork");
    if (!fork && target.mm == kMmFork)
      fail("spawn target '" + target.name + "' has mm=fork: use fork");
  }

  void check_op(const Op& op, int64_t index, std::vector<int64_t>& loops) const {
    int code = static_cast<int>(op.code);
    if (code < 1 || code > kNumOpCodes)
      fail("op code " + std::to_string(code) + " is not one of percpu._core.OP_CODES (1.." +
           std::to_string(kNumOpCodes) + ")");
    if (op.code != OpCode::Access && op.flags != 0)
      fail("flags " + std::to_string(op.flags) + " on an op that takes none");
    switch (op.code) {
      case OpCode::Invalid:
        break;
      case OpCode::Mmap:
        vma(op.a);
        if (op.b != -1 && (!page_aligned(op.b) || op.b < 0 || op.b >= kUserTop))
          fail("address must be -1 (auto) or page aligned below 2^47");
        if (op.c < 1 || op.c > kUserTop / 2) fail("size must be 1 byte to 2^46 bytes");
        if (op.b != -1 && op.b + op.c > kUserTop) fail("the mapping would end above 2^47");
        if (!valid_prot(op.d)) fail("protection must be r, rw, rx or rwx (1, 3, 5, 7)");
        break;
      case OpCode::Munmap:
      case OpCode::Mprotect:
        vma(op.a);
        in_user_half(op.b, "offset");
        if (op.c != -1) in_user_half(op.c, "length");
        if (!page_aligned(op.b) || (op.c != -1 && !page_aligned(op.c)))
          fail("offset and length must be page aligned");
        if (op.code == OpCode::Mprotect && !valid_prot(op.d))
          fail("protection must be r, rw, rx or rwx (1, 3, 5, 7)");
        break;
      case OpCode::Brk:
        vma(op.a);
        in_user_half(op.c, "size");
        break;
      case OpCode::Access: {
        vma(op.a);
        if ((op.flags & 3) == 3 || (op.flags & ~(3 | kAccessRandom)))
          fail("flags " + std::to_string(op.flags) + ": expected kind 0..2 (load, store, fetch) "
               "plus 16 for random");
        non_negative(op.b, "offset");
        non_negative(op.c, "count");
        non_negative(op.d, "stride");
        break;
      }
      case OpCode::Compute:
      case OpCode::Sleep:
      case OpCode::Syscall:
        non_negative(op.a, "cycles");
        break;
      case OpCode::Repeat:
        non_negative(op.a, "count");
        if (op.b <= index || static_cast<size_t>(op.b) >= m_task->ops.size() ||
            m_task->ops[op.b].code != OpCode::End || m_task->ops[op.b].a != index)
          fail("'repeat' must name its 'end' (b) and that 'end' this repeat (a)");
        loops.push_back(index);
        break;
      case OpCode::End:
        if (loops.empty()) fail("'end' without 'repeat'");
        if (loops.back() != op.a) fail("'end' does not close the innermost 'repeat'");
        loops.pop_back();
        break;
      case OpCode::Wait:
      case OpCode::Signal:
        if (op.a < 0 || static_cast<size_t>(op.a) >= m_p.chan_names.size())
          fail("channel " + std::to_string(op.a) + " is not an index of chan_names (" +
               std::to_string(m_p.chan_names.size()) + " channels)");
        if (op.code == OpCode::Signal) non_negative(op.b, "n");
        break;
      case OpCode::Spawn:
      case OpCode::Fork:
        task_target(op.a, op.code == OpCode::Fork);
        if (op.code == OpCode::Fork || op.b == 0) break;
        if (op.b != 1) fail("spawn's waiting operand b must be 0 or 1");
        if (m_p.tasks[op.a].ops.empty() || m_p.tasks[op.a].ops[0].code != OpCode::Wait)
          fail("spawn " + m_p.tasks[op.a].name + " waiting: the task's program must begin "
               "with 'wait CHAN'");
        break;
      case OpCode::Exec:
        if (op.a < 0 || static_cast<size_t>(op.a) >= m_p.mms.size())
          fail("mm " + std::to_string(op.a) + " is not an mm template index (" +
               std::to_string(m_p.mms.size()) + " mms)");
        break;
      case OpCode::KmapLocal:
      case OpCode::KunmapLocal:
      case OpCode::Kmap:
      case OpCode::Kunmap:
      case OpCode::PercpuAccess:
      case OpCode::Kcopy:
        non_negative(op.a, op.code == OpCode::Kcopy ? "bytes" : "count");
        break;
      case OpCode::Migrate:
      case OpCode::CpuOffline:
      case OpCode::CpuOnline:
        cpu(op.a);
        break;
      case OpCode::Yield:
      case OpCode::Exit:
      case OpCode::Affinity:  // a 256-bit mask: every value is one; no CPU of this machine is
      case OpCode::MigrateDisable:  // a workload error at run time
      case OpCode::MigrateEnable:
      case OpCode::KernelPgdAdd:
        break;
    }
  }

  const Program& m_p;
  int m_ncpus;
  const TaskTemplate* m_task = nullptr;
  int m_op = -1;
};

}  // namespace

void check_program(const Program& program, int ncpus) { Checker(program, ncpus).run(); }

}  // namespace percpu
