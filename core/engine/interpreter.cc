// The op interpreter: one op of a task's program per call, dispatched to the
// kernel (linux/), the scheduler (sched/) or the MMU (engine/mmu.cc).
#include <algorithm>

#include "engine/engine_state.h"

namespace percpu {

// A system call's entry and exit (the syscall op, and sched_yield, nanosleep, a pipe's
// read and write that yield, sleep, wait and signal stand for): cost.syscall, and with
// PTI the two CR3 switches of the entry and exit paths.
void Engine::system_call(Cpu& c) {
  c.n.syscalls++;
  charge(c, Cat::Syscall, m_cost.syscall);
  kernel_entry_exit(c, Cat::Syscall);
}

bool Engine::run_op(Cpu& c, Task* t) {
  const auto& ops = m_program.tasks[t->tmpl].ops;
  if (t->pc >= ops.size()) {
    m_current_op = static_cast<int>(t->pc);
    do_exit(c, t);
    return false;
  }
  const Op& op = ops[t->pc];
  m_current_op = static_cast<int>(t->pc);
  switch (op.code) {
    case OpCode::Invalid:
      workload_error(t, "invalid op code");
    case OpCode::Access:
      op_access(c, t, op, c.clock + kStepCycles);
      if (t->progress < op_args::Access::count(op)) return true;  // the rest in a later step
      t->progress = 0;
      break;
    case OpCode::Compute: {
      Cycles work = m_noise.jittered(static_cast<Cycles>(op_args::Compute::cycles(op)), t->key,
                                    t->computes++);
      m_noise_work_cycles += work;
      charge(c, Cat::User, work);
      break;
    }
    case OpCode::Syscall:
      system_call(c);
      {
        Cycles work = m_noise.jittered(static_cast<Cycles>(op_args::Syscall::cycles(op)), t->key,
                                       t->computes++);
        m_noise_work_cycles += work;
        charge(c, Cat::Kernel, work);
      }
      break;
    case OpCode::Mmap:
      do_mmap(c, t, op);
      break;
    case OpCode::Munmap:
      do_munmap_vma(c, t, op);
      break;
    case OpCode::Mprotect:
      do_mprotect(c, t, op);
      break;
    case OpCode::Brk:
      do_brk(c, t, op);
      break;
    case OpCode::Repeat:
      if (op_args::Repeat::count(op) <= 0) {
        t->pc = static_cast<size_t>(op_args::Repeat::end(op)) + 1;
        return true;
      }
      t->loops.emplace_back(t->pc, op_args::Repeat::count(op));
      break;
    case OpCode::End: {
      auto& top = t->loops.back();
      if (--top.second > 0) {
        t->pc = top.first + 1;
        return true;
      }
      t->loops.pop_back();
      break;
    }
    case OpCode::Yield:
      t->pc++;
      system_call(c);
      if (c.runq.empty()) return true;
      requeue_current(c, t, &c);
      schedule_next(c);
      return false;
    case OpCode::Sleep:
      t->pc++;
      system_call(c);
      t->wake_time = c.clock + static_cast<Cycles>(op_args::Sleep::cycles(op));
      if (m_noise.slack()) {  // hrtimer slack: the wake-up comes up to timer_slack_ns late
        auto late = static_cast<Cycles>(m_noise.unit(Noise::Sleep, t->key, t->sleeps++) *
                                        m_noise.slack_us() * static_cast<double>(m_cycles_per_second) / 1e6);
        t->wake_time += late;
        m_noise_slack_cycles += late;
      }
      block_current(c, TaskState::Sleeping);
      schedule_next(c);
      return false;
    case OpCode::Wait: {
      Chan& ch = *m_chans[op_args::Wait::chan(op)];
      system_call(c);
      t->pc++;
      if (ch.count > 0) {
        ch.count--;
        return true;
      }
      ch.waiters.push_back(t);
      block_current(c, TaskState::Blocked);
      schedule_next(c);
      return false;
    }
    case OpCode::Signal: {
      Chan& ch = *m_chans[op_args::Signal::chan(op)];
      system_call(c);
      ch.count += op_args::Signal::n(op);
      while (ch.count > 0 && !ch.waiters.empty()) {
        Task* w = ch.waiters.front();
        ch.waiters.pop_front();
        ch.count--;
        charge(c, Cat::Syscall, m_cost.wakeup);
        wake(w, c.clock);
      }
      break;
    }
    case OpCode::Spawn:
      t->pc++;
      do_spawn(c, t, static_cast<int>(op_args::Spawn::task(op)), op_args::Spawn::waiting(op) == 1);
      return true;
    case OpCode::Fork:
      t->pc++;
      do_fork(c, t, static_cast<int>(op_args::Fork::task(op)));
      return true;
    case OpCode::Exec:
      do_exec(c, t, static_cast<int>(op_args::Exec::mm(op)));
      break;
    case OpCode::Exit:
      do_exit(c, t);
      return false;
    case OpCode::KmapLocal:
      for (int64_t i = 0; i < std::max<int64_t>(op_args::KmapLocal::count(op), 1); ++i)
        kmap_local_page(c, t);
      break;
    case OpCode::KunmapLocal:
      for (int64_t i = 0; i < std::max<int64_t>(op_args::KunmapLocal::count(op), 1); ++i)
        kunmap_local(c, t);
      break;
    case OpCode::Kmap:
      for (int64_t i = 0; i < std::max<int64_t>(op_args::Kmap::count(op), 1); ++i) kmap(c, t);
      break;
    case OpCode::Kunmap:
      for (int64_t i = 0; i < std::max<int64_t>(op_args::Kunmap::count(op), 1); ++i) kunmap(c, t);
      break;
    case OpCode::Kcopy:
      kcopy(c, t, static_cast<uint64_t>(op_args::Kcopy::bytes(op)));
      break;
    case OpCode::PercpuAccess:
      this_cpu_read(c, static_cast<uint64_t>(std::max<int64_t>(op_args::PercpuAccess::count(op), 1)));
      break;
    case OpCode::Migrate:
      t->pc++;
      return sched_migrate(c, t, static_cast<int>(op_args::Migrate::cpu(op)));
    case OpCode::Affinity:
      if (!sched_setaffinity(c, t, op)) return false;
      break;
    case OpCode::MigrateDisable:
      t->migrate_disabled++;
      break;
    case OpCode::MigrateEnable:
      if (!sched_migrate_enable(c, t)) return false;
      break;
    case OpCode::CpuOffline:
      t->pc++;
      return cpu_offline(c, t, static_cast<int>(op_args::CpuOffline::cpu(op)));
    case OpCode::CpuOnline:
      cpu_online(c, t, static_cast<int>(op_args::CpuOnline::cpu(op)));
      break;
    case OpCode::KernelPgdAdd:
      sync_global_pgds(c, t);
      break;
  }
  t->pc++;
  return true;
}

// access: count references into a VMA from an offset, strided or at random.
void Engine::op_access(Cpu& c, Task* t, const Op& op, Cycles budget_end) {
  namespace arg = op_args::Access;
  const Vma& v = vma_of(t, arg::vma(op));
  uint64_t size = v.end - v.start;
  if (size == 0)  // brk shrank it to nothing: no offset exists in it
    workload_error(t, "access to VMA '" + m_program.vma_names[arg::vma(op)] +
                          "', which brk shrank to 0 bytes: grow it with brk first");
  Access kind = static_cast<Access>(arg::mode(op) & 3);
  bool random = arg::mode(op) & kAccessRandom;
  uint64_t stride = static_cast<uint64_t>(arg::stride(op));
  const int64_t count = arg::count(op);
  uint64_t lines = size >> kLineShift;
  uint64_t next_off = (static_cast<uint64_t>(arg::offset(op)) + static_cast<uint64_t>(t->progress) * stride) % size;
  uint64_t step = stride % size;
  bool runs = !random && step > 0 && step < kPageSize;
  while (t->progress < count && c.clock < budget_end) {
    uint64_t off = random ? t->rng.below(lines) << kLineShift : next_off;
    uint64_t n = 1;
    if (runs) {
      // Every reference left in this page (and before the VMA's end) in one go.
      uint64_t in_page = kPageSize - ((v.start + off) & (kPageSize - 1));
      n = std::min<uint64_t>({static_cast<uint64_t>(count - t->progress), (in_page - 1) / step + 1,
                              (size - off - 1) / step + 1});
    }
    bool segv = false;
    memory_access_run(c, v.start + off, step, n, kind, Cat::User, &segv);
    if (segv) n = 1;  // a refused reference: the next one tries again
    t->progress += static_cast<int64_t>(n);
    if (!random) {
      next_off += n * step;
      while (next_off >= size) next_off -= size;
    }
  }
}

}  // namespace percpu
