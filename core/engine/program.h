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

enum class OpCode : uint16_t {
  Mmap = 1, Munmap, Mprotect, Brk, Access, Compute, Syscall, Repeat, End, Yield, Sleep, Wait,
  Signal, Spawn, Fork, Exec, Exit, KmapLocal, KunmapLocal, Kmap, Kunmap, Kcopy, PercpuAccess,
  Migrate, Affinity, MigrateDisable, MigrateEnable, CpuOffline, CpuOnline, KernelPgdAdd,
};

// Operand meaning per opcode (see percpu/workloads/program.py, which encodes them):
//  Mmap: a=vma name, b=address or -1 (auto), c=size, d=prot
//  Munmap: a=vma, b=offset, c=length or -1 (whole VMA);  Mprotect: a=vma, b=off, c=len, d=prot
//  Brk: a=vma, c=new size;  Access: a=vma, b=offset, c=count, d=stride, flags=kind|random<<4
//  Compute/Sleep: a=cycles;  Syscall: a=cycles in kernel;  Repeat: a=count, b=index of End
//  End: a=index of Repeat;  Wait: a=channel;  Signal: a=channel, b=n
//  Spawn/Fork: a=task template;  Exec: a=mm template;  Kmap*/Kunmap*/PercpuAccess: a=count
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
