// Python bindings for core/: the only file that sees both nanobind and the
// model. Errors become Python exceptions: ParamError and invalid_argument ->
// ValueError (bad input; ProgramError -> percpu._core.ProgramError, a
// ValueError), WorkloadError -> percpu._core.WorkloadError (a RuntimeError:
// the program did something the kernel refuses). Any other exception is a bug.
#include <iterator>

#include <nanobind/nanobind.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include "cache/overlap.h"
#include "config/params.h"
#include "engine/engine.h"
#include "engine/errors.h"
#include "linux/asid.h"
#include "root/names.h"
#include "root/registry.h"

namespace nb = nanobind;
using namespace percpu;

namespace {

using OpTuple = std::tuple<int, int, int64_t, int64_t, int64_t, int64_t>;
using VmaTuple = std::tuple<int, uint64_t, uint64_t, int>;  // name, start, end, prot
using MmTuple = std::pair<std::string, std::vector<VmaTuple>>;
using TaskTuple = std::tuple<std::string, int, std::vector<int>, bool, std::vector<OpTuple>>;

Program make_program(const std::vector<MmTuple>& mms, const std::vector<TaskTuple>& tasks,
                     const std::vector<std::string>& vma_names,
                     const std::vector<std::string>& chan_names) {
  Program p;
  p.vma_names = vma_names;
  p.chan_names = chan_names;
  for (const auto& [name, vmas] : mms) {
    MmTemplate m;
    m.name = name;
    for (const auto& [vname, start, end, prot] : vmas) {
      if (prot < 0 || prot > 0xff)
        throw ProgramError("mm '" + name + "': VMA protection " + std::to_string(prot) +
                           " is out of range (r, rw, rx, rwx: 1, 3, 5, 7)");
      m.vmas.push_back(Vma{start, end, static_cast<uint8_t>(prot), vname});
    }
    p.mms.push_back(std::move(m));
  }
  for (const auto& [name, mm, cpus, start, ops] : tasks) {
    TaskTemplate t;
    t.name = name;
    t.mm = mm;
    for (int c : cpus) {
      if (c < 0 || c >= kMaxCpus)
        throw ProgramError("task '" + name + "': CPU " + std::to_string(c) +
                           " is out of range 0.." + std::to_string(kMaxCpus - 1));
      t.cpus.set(c);
    }
    t.start = start;
    for (const auto& [code, flags, a, b, c, d] : ops) {  // code, then OP_FIELDS in order
      if (code < 1 || code > static_cast<int>(std::size(kOpCodeNames)))
        throw ProgramError("task '" + name + "': op code " + std::to_string(code) +
                           " is not one of percpu._core.OP_CODES");
      if (flags < 0 || flags > 0xffff)
        throw ProgramError("task '" + name + "': op flags " + std::to_string(flags) +
                           " are out of range 0..65535");
      t.ops.push_back(Op{static_cast<OpCode>(code), static_cast<uint16_t>(flags), a, b, c, d});
    }
    p.tasks.push_back(std::move(t));
  }
  return p;
}

Params make_params(const std::map<std::string, double>& values) {
  Params params;
  for (const auto& [k, v] : values) params.set(k, v);
  return params;
}

nb::dict run(const std::map<std::string, double>& values, const std::string& scheme,
             const std::vector<MmTuple>& mms, const std::vector<TaskTuple>& tasks,
             const std::vector<std::string>& vma_names, const std::vector<std::string>& chan_names,
             bool check, bool record_log, bool record_asid_events, nb::handle progress) {
  Params params = make_params(values);
  Program program = make_program(mms, tasks, vma_names, chan_names);
  std::unique_ptr<Engine> engine;
  {
    nb::gil_scoped_release release;
    engine = std::make_unique<Engine>(params, scheme, std::move(program), check, record_log);
    engine->record_asid_events(record_asid_events);
    // Polled now and then by the run loop: Ctrl-C, and progress(sim_seconds, refs) if
    // given (its exception, KeyboardInterrupt included, stops the run like Ctrl-C).
    // progress is borrowed: the caller's argument outlives the run.
    Engine* raw = engine.get();
    PyObject* progress_cb = progress.is_none() ? nullptr : progress.ptr();
    engine->set_interrupt_check([raw, progress_cb]() {
      nb::gil_scoped_acquire acquire;
      if (PyErr_CheckSignals() != 0) return true;
      if (progress_cb) {
        try {
          nb::handle callback(progress_cb);
          callback(raw->sim_seconds(), raw->memory_references());
        } catch (nb::python_error& e) {
          e.restore();
          return true;
        }
      }
      return false;
    });
    try {
      engine->run();
    } catch (const Engine::Interrupted&) {
      nb::gil_scoped_acquire acquire;
      throw nb::python_error();  // the KeyboardInterrupt PyErr_CheckSignals raised
    }
  }
  nb::dict out;
  nb::list stats;
  for (const auto& s : engine->stats()) stats.append(nb::make_tuple(s.name, s.value, s.desc, s.unit));
  out["stats"] = stats;
  nb::list violations;
  for (const auto& v : engine->violations())
    violations.append(nb::make_tuple(v.what, v.cpu, v.task, v.op_index, v.va));
  out["violations"] = violations;
  out["violation_count"] = engine->violation_count();
  out["memory_references"] = engine->memory_references();
  nb::list log;
  for (const auto& r : engine->log())
    log.append(nb::make_tuple(static_cast<int>(r.kind), r.mm, r.other_mm, r.va, r.end,
                              static_cast<int>(r.access), r.frame, r.writable));
  out["log"] = log;
  if (record_asid_events) {
    // (kind, cpu, ctx_id, tlb_gen, pages, freed_tables, trim, asid, need_flush, cause,
    //  allocated); kinds as in percpu._core.ASID_EVENT_KINDS, causes as kNewAsidCauseNames.
    nb::list events;
    for (const auto& e : engine->asid_events())
      events.append(nb::make_tuple(static_cast<int>(e.kind), e.cpu, e.ctx_id, e.tlb_gen, e.pages,
                                   e.freed_tables, e.trim, e.asid, e.need_flush,
                                   kNewAsidCauseNames[e.cause], e.allocated));
    out["asid_events"] = events;
  }
  return out;
}

// Linux's switch_mm ASID choice alone, for hand-worked sequences in tests.
class AsidState {
 public:
  explicit AsidState(bool pcid) : m_pcid(pcid) {}
  // Switch to mm ctx_id at tlb_gen; returns (asid, need_flush, cause).
  std::tuple<int, bool, std::string> switch_to(uint64_t ctx_id, uint64_t tlb_gen) {
    bool ever = m_seen.count(ctx_id) > 0;
    m_seen[ctx_id] = true;
    AsidChoice c = m_state.choose_new_asid(ctx_id, tlb_gen, m_pcid, ever);
    if (c.need_flush) m_state.ctx(c.asid) = {ctx_id, tlb_gen};
    m_state.set_loaded_asid(c.asid);
    return {c.asid, c.need_flush, cause_name(c.cause)};
  }
  std::pair<uint64_t, uint64_t> slot(int asid) const {
    return {m_state.ctx(asid).ctx_id, m_state.ctx(asid).tlb_gen};
  }
  void invalidate_other() { m_state.set_invalidate_other(); }

 private:
  CpuTlbState m_state{1};
  bool m_pcid;
  std::map<uint64_t, bool> m_seen;
};

}  // namespace

NB_MODULE(_core, m) {
  m.doc() = "percpu's C++ model (core/): the embedded engine";
  nb::exception<ProgramError>(m, "ProgramError", PyExc_ValueError);
  nb::exception<WorkloadError>(m, "WorkloadError", PyExc_RuntimeError);
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const ParamError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
  m.def("param_specs", []() {
    nb::list out;
    for (const auto& s : param_specs())
      out.append(nb::make_tuple(s.key, s.default_value, s.min_value, s.max_value, s.unit, s.help,
                                s.source));
    return out;
  });
  m.def("scheme_names", []() {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [name, info] : root_scheme_registry()) out.emplace_back(name, info.summary);
    return out;
  });
  m.def("run", &run, nb::arg("params"), nb::arg("scheme"), nb::arg("mms"), nb::arg("tasks"),
        nb::arg("vma_names"), nb::arg("chan_names"), nb::arg("check") = false,
        nb::arg("record_log") = false, nb::arg("record_asid_events") = false, nb::arg("progress") = nb::none());
  // Test-only fault injection (core/common/mutation.h): tests/core/test_asid_oracle.py.
  m.def("set_mutation", [](const std::string& name) {
    for (size_t i = 0; i < std::size(kMutationNames); ++i)
      if (name == kMutationNames[i]) {
        g_mutation = static_cast<Mutation>(i);
        return;
      }
    throw std::invalid_argument("unknown mutation '" + name + "'");
  }, nb::arg("name"));
  m.def("mutation", []() { return std::string(kMutationNames[static_cast<int>(g_mutation)]); });
  {
    nb::list names;
    for (const char* name : kMutationNames) names.append(name);
    m.attr("MUTATIONS") = nb::tuple(names);
  }
  m.attr("ASID_EVENT_KINDS") = nb::make_tuple("switch", "lazy", "flush", "cpuOnline",
                                              "cpuOffline", "invalidateOther",
                                              "considerGlobalAsid", "globalAsidFree");
  nb::class_<AsidState>(m, "AsidState")
      .def(nb::init<bool>(), nb::arg("pcid") = true)
      .def("switch_to", &AsidState::switch_to)
      .def("slot", &AsidState::slot)
      .def("invalidate_other", &AsidState::invalidate_other);
  m.attr("TLB_NR_DYN_ASIDS") = kTlbNrDynAsids;
  // The lists core/ defines once; Python reads them from here.
  nb::list op_codes, categories, causes;
  for (const char* name : kOpCodeNames) op_codes.append(name);  // op code = index + 1
  for (const char* name : kCatNames) categories.append(name);
  for (int k = 1; k < kNumNewAsidCauses; ++k) causes.append(kNewAsidCauseNames[k]);  // not "none"
  m.attr("OP_CODES") = nb::tuple(op_codes);
  // Each op's operands, (field of the op tuple, name, kind), in the table's order
  // (engine/program.h PERCPU_OPS): the Python encoder places them by name.
  nb::dict op_operands;
  for (const OpInfo& info : kOpInfo) {
    nb::list operands;
    for (const OperandInfo& o : info.operands)
      if (o.name)
        operands.append(nb::make_tuple(kOperandSlotNames[static_cast<int>(o.slot)], o.name,
                                       kOperandKindNames[static_cast<int>(o.kind)]));
    op_operands[info.name] = nb::tuple(operands);
  }
  m.attr("OP_OPERANDS") = op_operands;
  nb::list fields, access_kinds;
  for (const char* name : kOperandSlotNames) fields.append(name);  // the op tuple after its code
  for (const char* name : kAccessNames) access_kinds.append(name);  // the access mode's kind
  m.attr("OP_FIELDS") = nb::tuple(fields);
  m.attr("ACCESS_KINDS") = nb::tuple(access_kinds);
  m.attr("ACCESS_RANDOM") = kAccessRandom;
  m.attr("VMA_AUTO") = kVmaAuto;
  m.attr("VMA_POPULATE") = kVmaPopulate;
  m.attr("MM_KERNEL") = kMmKernel;
  m.attr("MM_FORK") = kMmFork;
  m.attr("MAX_CPUS") = kMaxCpus;
  m.attr("CYCLE_CATEGORIES") = nb::tuple(categories);
  m.attr("ROOT_ALLOC_CAUSES") = nb::tuple(causes);
  // The root stats' names, as every host spells them (root/names.h).
  nb::list root_stats;
#define PERCPU_ROOT_STAT_NAME(id) root_stats.append(stat::k##id);
  PERCPU_ROOT_STATS(PERCPU_ROOT_STAT_NAME)
#undef PERCPU_ROOT_STAT_NAME
  m.attr("ROOT_STAT_GROUP") = stat::kGroup;
  m.attr("ROOT_STAT_NAMES") = nb::tuple(root_stats);
  // The proposal's bounds (root/bounds.h, through root/names.h).
  m.attr("LAZY_FAULT_BOUND") = kLazyFaultBound;
  m.def("root_pool_bound_bytes", &root_pool_bound_bytes, nb::arg("ncpus"), nb::arg("pti"),
        "the proposal's bound on root pool bytes: 4 KiB x cpus x 6, x2 with PTI");
  // A root allocation's copy, its misses overlapped (cache/overlap.h): for the reference
  // model in tests/core/test_copy_overlap.py.
  m.def("overlapped_cycles", [](const std::vector<Cycles>& latencies, int mshrs, Cycles issue) {
    if (mshrs < 1) throw std::invalid_argument("mshrs must be at least 1");
    return overlapped_cycles(latencies, mshrs, issue);
  }, nb::arg("latencies"), nb::arg("mshrs"), nb::arg("issue"),
        "cycles of a burst of accesses with these latencies, overlapped up to mshrs at a time, "
        "one issued every issue cycles");
  m.attr("TICK_SECONDS") = 1e-12;  // simTicks: 1 tick = 1 ps, as in gem5
}
