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

// The one list of op codes: numbered from 1 in this order; the op-program
// parser takes the names from the binding (percpu._core.OP_CODES).
#define PERCPU_OP_CODES(X)                                                                   \
  X(Mmap, "mmap") X(Munmap, "munmap") X(Mprotect, "mprotect") X(Brk, "brk")                 \
  X(Access, "access") X(Compute, "compute") X(Syscall, "syscall") X(Repeat, "repeat")       \
  X(End, "end") X(Yield, "yield") X(Sleep, "sleep") X(Wait, "wait") X(Signal, "signal")     \
  X(Spawn, "spawn") X(Fork, "fork") X(Exec, "exec") X(Exit, "exit")                         \
  X(KmapLocal, "kmap_local") X(KunmapLocal, "kunmap_local") X(Kmap, "kmap")                 \
  X(Kunmap, "kunmap") X(Kcopy, "kcopy") X(PercpuAccess, "percpu_access")                    \
  X(Migrate, "migrate") X(Affinity, "affinity") X(MigrateDisable, "migrate_disable")        \
  X(MigrateEnable, "migrate_enable") X(CpuOffline, "cpu_offline") X(CpuOnline, "cpu_online") \
  X(KernelPgdAdd, "kernel_pgd_add")

enum class OpCode : uint16_t {
  Invalid = 0,
#define PERCPU_OP_ENUM(id, name) id,
  PERCPU_OP_CODES(PERCPU_OP_ENUM)
#undef PERCPU_OP_ENUM
};
constexpr const char* kOpCodeNames[] = {
#define PERCPU_OP_NAME(id, name) name,
    PERCPU_OP_CODES(PERCPU_OP_NAME)
#undef PERCPU_OP_NAME
};  // kOpCodeNames[code - 1]

// Operand meaning per op code (percpu/workloads/program.py encodes them):
//  Mmap: a=vma name, b=address or -1 (auto), c=size, d=prot
//  Munmap: a=vma, b=offset, c=length or -1 (whole VMA);  Mprotect: a=vma, b=off, c=len, d=prot
//  Brk: a=vma, c=new size;  Access: a=vma, b=offset, c=count, d=stride, flags=kind|random<<4
//  Compute/Sleep: a=cycles;  Syscall: a=cycles in kernel;  Repeat: a=count, b=index of End
//  End: a=index of Repeat;  Wait: a=channel;  Signal: a=channel, b=n
//  Spawn/Fork: a=task template (Spawn: b=1 starts it blocked in its first op, a Wait)
//  Exec: a=mm template;  Kmap*/Kunmap*/PercpuAccess: a=count
//  Kcopy: a=bytes;  Migrate/CpuOffline/CpuOnline: a=cpu;  Affinity: a..d = 256-bit CPU mask
//  KernelPgdAdd: no operands
struct Op {
  OpCode code = OpCode::Exit;
  uint16_t flags = 0;
  int64_t a = 0, b = 0, c = 0, d = 0;
};
constexpr uint16_t kAccessRandom = 1u << 4;

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
