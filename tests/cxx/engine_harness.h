// Small op programs built in C++ and run on the engine, for the tests of the
// Linux and scheduler rules (linux_rules.test.cc, scheduler.test.cc). Operands
// are placed by name through the op table (engine/program.h), as program.py does.
#pragma once
#include <gtest/gtest.h>

#include <initializer_list>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "config/params.h"
#include "engine/engine.h"
#include "engine/program.h"

namespace percpu::test {

inline Op op(OpCode code, std::initializer_list<std::pair<const char*, int64_t>> operands = {}) {
  Op o{code, 0, 0, 0, 0, 0};
  for (const auto& [name, value] : operands) {
    const OperandInfo* found = nullptr;
    for (const OperandInfo& info : op_info(code).operands)
      if (info.name && std::string(info.name) == name) found = &info;
    if (!found) {
      ADD_FAILURE() << op_info(code).name << " has no operand " << name;
      continue;
    }
    switch (found->slot) {
      case OperandSlot::flags: o.flags = static_cast<uint16_t>(value); break;
      case OperandSlot::a: o.a = value; break;
      case OperandSlot::b: o.b = value; break;
      case OperandSlot::c: o.c = value; break;
      case OperandSlot::d: o.d = value; break;
    }
  }
  return o;
}
inline Op load(int vma, int64_t count = 1, int64_t offset = 0) {
  return op(OpCode::Access, {{"mode", 0}, {"vma", vma}, {"offset", offset}, {"count", count},
                             {"stride", 64}});
}
inline Op store(int vma, int64_t count = 1, int64_t offset = 0) {
  return op(OpCode::Access, {{"mode", 1}, {"vma", vma}, {"offset", offset}, {"count", count},
                             {"stride", 64}});
}

class ProgramBuilder {
 public:
  int vma(const std::string& name) { return intern(p.vma_names, name); }
  int chan(const std::string& name) { return intern(p.chan_names, name); }
  // An mm template with VMAs (name, start, bytes), read-write.
  int mm(const std::string& name, std::vector<std::tuple<std::string, VirtAddr, uint64_t>> vmas) {
    MmTemplate m;
    m.name = name;
    for (const auto& [vname, start, bytes] : vmas)
      m.vmas.push_back(Vma{start, start + bytes, kProtRead | kProtWrite, vma(vname)});
    p.mms.push_back(m);
    return static_cast<int>(p.mms.size()) - 1;
  }
  int task(const std::string& name, int mm, std::vector<int> cpus, std::vector<Op> ops,
           bool start = true) {
    TaskTemplate t;
    t.name = name;
    t.mm = mm;
    for (int c : cpus) t.cpus.set(c);
    t.start = start;
    t.ops = std::move(ops);
    p.tasks.push_back(t);
    return static_cast<int>(p.tasks.size()) - 1;
  }
  Program p;

 private:
  static int intern(std::vector<std::string>& names, const std::string& name) {
    for (size_t i = 0; i < names.size(); ++i)
      if (names[i] == name) return static_cast<int>(i);
    names.push_back(name);
    return static_cast<int>(names.size()) - 1;
  }
};

// One checked run, noise off (the rules, not the jitter).
struct EngineRun {
  EngineRun(const Program& program, int cpus, const std::string& scheme = "percpu",
      std::map<std::string, double> set = {}, bool record_log = false) {
    Params params;
    params.set("machine.cpus", cpus);
    params.set("noise.enabled", 0);
    for (const auto& [key, value] : set) params.set(key, value);
    engine = std::make_unique<Engine>(params, scheme, program, true, record_log);
    engine->run();
    for (const Stat& s : engine->stats()) stats[s.name] = s.value;
  }
  double stat(const std::string& name) const {
    auto it = stats.find(name);
    if (it == stats.end()) ADD_FAILURE() << "no stat " << name;
    return it == stats.end() ? -1 : it->second;
  }
  std::string violations() const {
    std::string out;
    for (const Violation& v : engine->violations()) out += v.what + "\n";
    return out;
  }
  std::unique_ptr<Engine> engine;
  std::map<std::string, double> stats;
};

}  // namespace percpu::test
