// The op program the engine runs, already parsed (percpu/workloads/program.py
// parses the text format of docs/op-program.md and hands this over).
#pragma once
#include <bitset>
#include <cstdint>
#include <string>
#include <vector>

#include "common/types.h"
#include "linux/mm.h"

namespace percpu {

// The one op table: each op's code (numbered from 1 in this order) and its
// operands, each O(field of Op, name, kind). From it come the OpCode enum, the
// named accessors the interpreter reads (op_args::Mmap::size(op)), the static
// check of each kind (engine/program_check.cc) and, through the binding
// (percpu._core.OP_CODES, OP_OPERANDS), the Python encoder (program.py).
// Adding an op: one row here, its semantics in engine/interpreter.cc.
//
// Kinds (what program_check.cc checks):
//   Vma, Chan, Task, MmTemplate: an index of vma_names, chan_names, tasks, mms
//   Cpu: a CPU of the machine;  NonNegative: >= 0;  Prot: r, rw, rx or rwx (1, 3, 5, 7)
//   MmapAddr: -1 (auto) or page aligned below 2^47;  MmapSize: 1 byte to 2^46
//   UserOffset: page aligned in 0..2^47;  UserLength: -1 (to the VMA's end) or a UserOffset
//   UserSize: 0..2^47;  Flag: 0 or 1;  Word: any 64-bit value
//   LoopEnd, LoopStart: the matching end's / repeat's op index
//   AccessMode (in Op::flags): kind 0..2 (load, store, fetch) | kAccessRandom
#define PERCPU_OPS(X, O)                                                                     \
  X(Mmap, "mmap", O(a, vma, Vma) O(b, addr, MmapAddr) O(c, size, MmapSize) O(d, prot, Prot)) \
  X(Munmap, "munmap", O(a, vma, Vma) O(b, offset, UserOffset) O(c, length, UserLength))     \
  X(Mprotect, "mprotect",                                                                    \
    O(a, vma, Vma) O(b, offset, UserOffset) O(c, length, UserLength) O(d, prot, Prot))       \
  X(Brk, "brk", O(a, vma, Vma) O(c, size, UserSize))                                         \
  X(Access, "access",                                                                        \
    O(flags, mode, AccessMode) O(a, vma, Vma) O(b, offset, NonNegative)                      \
    O(c, count, NonNegative) O(d, stride, NonNegative))                                      \
  X(Compute, "compute", O(a, cycles, NonNegative))                                           \
  X(Syscall, "syscall", O(a, cycles, NonNegative)) /* cycles in the kernel */                \
  X(Repeat, "repeat", O(a, count, NonNegative) O(b, end, LoopEnd))                           \
  X(End, "end", O(a, repeat, LoopStart))                                                     \
  X(Yield, "yield", )                                                                        \
  X(Sleep, "sleep", O(a, cycles, NonNegative))                                               \
  X(Wait, "wait", O(a, chan, Chan))                                                          \
  X(Signal, "signal", O(a, chan, Chan) O(b, n, NonNegative))                                 \
  /* waiting: start the task blocked in its first op, a wait */                              \
  X(Spawn, "spawn", O(a, task, Task) O(b, waiting, Flag))                                    \
  X(Fork, "fork", O(a, task, Task))                                                          \
  X(Exec, "exec", O(a, mm, MmTemplate))                                                      \
  X(Exit, "exit", )                                                                          \
  X(KmapLocal, "kmap_local", O(a, count, NonNegative))                                       \
  X(KunmapLocal, "kunmap_local", O(a, count, NonNegative))                                   \
  X(Kmap, "kmap", O(a, count, NonNegative))                                                  \
  X(Kunmap, "kunmap", O(a, count, NonNegative))                                              \
  X(Kcopy, "kcopy", O(a, bytes, NonNegative))                                                \
  X(PercpuAccess, "percpu_access", O(a, count, NonNegative))                                 \
  X(Migrate, "migrate", O(a, cpu, Cpu))                                                      \
  /* a 256-bit CPU mask; a CPU this machine lacks is a workload error at run time */         \
  X(Affinity, "affinity", O(a, w0, Word) O(b, w1, Word) O(c, w2, Word) O(d, w3, Word))       \
  X(MigrateDisable, "migrate_disable", )                                                     \
  X(MigrateEnable, "migrate_enable", )                                                       \
  X(CpuOffline, "cpu_offline", O(a, cpu, Cpu))                                               \
  X(CpuOnline, "cpu_online", O(a, cpu, Cpu))                                                 \
  X(KernelPgdAdd, "kernel_pgd_add", )

#define PERCPU_OP_OPERAND_KINDS(X)                                                          \
  X(Vma) X(Chan) X(Task) X(MmTemplate) X(Cpu) X(NonNegative) X(Prot) X(MmapAddr)           \
  X(MmapSize) X(UserOffset) X(UserLength) X(UserSize) X(Flag) X(Word) X(LoopEnd)           \
  X(LoopStart) X(AccessMode)

#define PERCPU_OP_IGNORE(...)
#define PERCPU_OP_ENUM(id, name, operands) id,
enum class OpCode : uint16_t { Invalid = 0, PERCPU_OPS(PERCPU_OP_ENUM, PERCPU_OP_IGNORE) };
#undef PERCPU_OP_ENUM
#define PERCPU_OP_NAME(id, name, operands) name,
// kOpCodeNames[code - 1]
constexpr const char* kOpCodeNames[] = {PERCPU_OPS(PERCPU_OP_NAME, PERCPU_OP_IGNORE)};
#undef PERCPU_OP_NAME
constexpr int kNumOpCodes = static_cast<int>(sizeof(kOpCodeNames) / sizeof(kOpCodeNames[0]));

struct Op {
  OpCode code = OpCode::Exit;
  uint16_t flags = 0;
  int64_t a = 0, b = 0, c = 0, d = 0;
};
constexpr uint16_t kAccessRandom = 1u << 4;

// The fields of Op an operand may live in, and its kinds (see PERCPU_OPS).
enum class OperandSlot : uint8_t { flags, a, b, c, d };
constexpr const char* kOperandSlotNames[] = {"flags", "a", "b", "c", "d"};
#define PERCPU_OP_KIND_ENUM(kind) kind,
enum class OperandKind : uint8_t { PERCPU_OP_OPERAND_KINDS(PERCPU_OP_KIND_ENUM) };
#undef PERCPU_OP_KIND_ENUM
#define PERCPU_OP_KIND_NAME(kind) #kind,
constexpr const char* kOperandKindNames[] = {PERCPU_OP_OPERAND_KINDS(PERCPU_OP_KIND_NAME)};
#undef PERCPU_OP_KIND_NAME

inline int64_t operand_value(const Op& op, OperandSlot slot) {
  switch (slot) {
    case OperandSlot::flags: return op.flags;
    case OperandSlot::a: return op.a;
    case OperandSlot::b: return op.b;
    case OperandSlot::c: return op.c;
    case OperandSlot::d: return op.d;
  }
  return 0;
}

struct OperandInfo {
  OperandSlot slot;
  const char* name = nullptr;  // nullptr: past the op's last operand
  OperandKind kind;
};
struct OpInfo {
  const char* name;
  OperandInfo operands[5];
};
#define PERCPU_OP_INFO_OPERAND(slot, name, kind) \
  OperandInfo{OperandSlot::slot, #name, OperandKind::kind},
#define PERCPU_OP_INFO(id, name, operands) OpInfo{name, {operands}},
constexpr OpInfo kOpInfo[] = {PERCPU_OPS(PERCPU_OP_INFO, PERCPU_OP_INFO_OPERAND)};
#undef PERCPU_OP_INFO
#undef PERCPU_OP_INFO_OPERAND
inline const OpInfo& op_info(OpCode code) { return kOpInfo[static_cast<int>(code) - 1]; }

// Named reads of an op's operands: op_args::Mmap::size(op) is op.c.
namespace op_args {
#define PERCPU_OP_ACCESSOR(slot, name, kind) \
  inline int64_t name(const Op& op) { return static_cast<int64_t>(op.slot); }
#define PERCPU_OP_ACCESSORS(id, name, operands) namespace id { operands }
PERCPU_OPS(PERCPU_OP_ACCESSORS, PERCPU_OP_ACCESSOR)
#undef PERCPU_OP_ACCESSORS
#undef PERCPU_OP_ACCESSOR
}  // namespace op_args

struct MmTemplate {
  std::string name;
  std::vector<Vma> vmas;
};

constexpr int kMmKernel = -1;  // kernel thread: no mm, lazy TLB
constexpr int kMmFork = -2;    // gets a copy of the forking task's mm

struct TaskTemplate {
  std::string name;
  int mm = kMmKernel;  // MmTemplate index, kMmKernel or kMmFork
  std::bitset<kMaxCpus> cpus;
  bool start = true;
  std::vector<Op> ops;
};

struct Program {
  std::vector<MmTemplate> mms;
  std::vector<TaskTemplate> tasks;
  std::vector<std::string> vma_names;
  std::vector<std::string> chan_names;
};

}  // namespace percpu
