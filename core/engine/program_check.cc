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
      if (!valid_prot(v.prot & ~kVmaPopulate))
        fail(label + ": protection must be r, rw, rx or rwx (1, 3, 5, 7), optionally with "
                     "populate (0x10)");
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

  // Each operand by its kind (engine/program.h, PERCPU_OPS), then what ties operands
  // or ops together.
  void check_op(const Op& op, int64_t index, std::vector<int64_t>& loops) const {
    int code = static_cast<int>(op.code);
    if (code < 1 || code > kNumOpCodes)
      fail("op code " + std::to_string(code) + " is not one of percpu._core.OP_CODES (1.." +
           std::to_string(kNumOpCodes) + ")");
    bool takes_flags = false;
    for (const OperandInfo& o : op_info(op.code).operands) {
      if (!o.name) break;
      takes_flags |= o.slot == OperandSlot::flags;
      check_operand(op, o, operand_value(op, o.slot));
    }
    if (!takes_flags && op.flags != 0)
      fail("flags " + std::to_string(op.flags) + " on an op that takes none");
    switch (op.code) {
      case OpCode::Mmap:
        if (op_args::Mmap::addr(op) != -1 &&
            op_args::Mmap::addr(op) + op_args::Mmap::size(op) > kUserTop)
          fail("the mapping would end above 2^47");
        break;
      case OpCode::Repeat: {
        const int64_t end = op_args::Repeat::end(op);
        if (end <= index || static_cast<size_t>(end) >= m_task->ops.size() ||
            m_task->ops[end].code != OpCode::End || op_args::End::repeat(m_task->ops[end]) != index)
          fail("'repeat' must name its 'end' (b) and that 'end' this repeat (a)");
        loops.push_back(index);
        break;
      }
      case OpCode::End:
        if (loops.empty()) fail("'end' without 'repeat'");
        if (loops.back() != op_args::End::repeat(op)) fail("'end' does not close the innermost 'repeat'");
        loops.pop_back();
        break;
      case OpCode::Spawn:
      case OpCode::Fork: {
        const TaskTemplate& target = m_p.tasks[op.code == OpCode::Fork ? op_args::Fork::task(op)
                                                                       : op_args::Spawn::task(op)];
        if (op.code == OpCode::Fork && target.mm != kMmFork)
          fail("fork target '" + target.name + "' must be declared with mm=fork");
        if (op.code == OpCode::Spawn && target.mm == kMmFork)
          fail("spawn target '" + target.name + "' has mm=fork: use fork");
        if (op.code == OpCode::Spawn && op_args::Spawn::waiting(op) &&
            (target.ops.empty() || target.ops[0].code != OpCode::Wait))
          fail("spawn " + target.name + " waiting: the task's program must begin with 'wait CHAN'");
        break;
      }
      default:
        break;
    }
  }

  void check_operand(const Op& op, const OperandInfo& o, int64_t v) const {
    const std::string name = o.name;
    switch (o.kind) {
      case OperandKind::Vma:
        vma(v);
        break;
      case OperandKind::Chan:
        if (v < 0 || static_cast<size_t>(v) >= m_p.chan_names.size())
          fail("channel " + std::to_string(v) + " is not an index of chan_names (" +
               std::to_string(m_p.chan_names.size()) + " channels)");
        break;
      case OperandKind::Task:
        if (v < 0 || static_cast<size_t>(v) >= m_p.tasks.size())
          fail("task " + std::to_string(v) + " is not a task index (" +
               std::to_string(m_p.tasks.size()) + " tasks)");
        break;
      case OperandKind::MmTemplate:
        if (v < 0 || static_cast<size_t>(v) >= m_p.mms.size())
          fail("mm " + std::to_string(v) + " is not an mm template index (" +
               std::to_string(m_p.mms.size()) + " mms)");
        break;
      case OperandKind::Cpu:
        cpu(v);
        break;
      case OperandKind::NonNegative:
        non_negative(v, o.name);
        break;
      case OperandKind::Prot:
        if (!valid_prot(v)) fail("protection must be r, rw, rx or rwx (1, 3, 5, 7)");
        break;
      case OperandKind::MmapAddr:
        if (v != -1 && (!page_aligned(v) || v < 0 || v >= kUserTop))
          fail("address must be -1 (auto) or page aligned below 2^47");
        break;
      case OperandKind::MmapSize:
        if (v < 1 || v > kUserTop / 2) fail("size must be 1 byte to 2^46 bytes");
        break;
      case OperandKind::UserLength:
        if (v == -1) break;
        [[fallthrough]];
      case OperandKind::UserOffset:
        in_user_half(v, o.name);
        if (!page_aligned(v)) fail(name + " must be page aligned");
        break;
      case OperandKind::UserSize:
        in_user_half(v, o.name);
        break;
      case OperandKind::Flag:
        if (v != 0 && v != 1)
          fail(std::string(op_info(op.code).name) + "'s " + name + " operand " +
               kOperandSlotNames[static_cast<int>(o.slot)] + " must be 0 or 1");
        break;
      case OperandKind::AccessMode:
        if ((v & 3) == 3 || (v & ~int64_t{3 | kAccessRandom}))
          fail("flags " + std::to_string(v) + ": expected kind 0..2 (load, store, fetch) "
               "plus 16 for random");
        break;
      case OperandKind::Word:       // every value is a mask word
      case OperandKind::LoopEnd:    // checked with the op (check_op)
      case OperandKind::LoopStart:
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
