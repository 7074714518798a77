// Cost-table entries the hot paths read, cached out of Params' map once per run.
#pragma once
#include "common/types.h"
#include "config/params.h"

namespace percpu {

#define PERCPU_COST_FIELDS(X) \
  X(l1_latency, "cache.l1d.latency") \
  X(stlb_hit, "tlb.stlb.hit_cycles") \
  X(walk_base, "walk.base_cycles") \
  X(cr3_flush, "cost.cr3_flush") \
  X(cr3_noflush, "cost.cr3_noflush") \
  X(switch_mm, "cost.switch_mm") \
  X(invlpg, "cost.invlpg") \
  X(invlpgb, "cost.invlpgb") \
  X(tlbsync, "cost.tlbsync") \
  X(flush_ipi_send, "cost.flush_ipi_send") \
  X(flush_ipi_send_per_cpu, "cost.flush_ipi_send_per_cpu") \
  X(ipi_receive, "cost.ipi_receive") \
  X(flush_full_extra, "cost.flush_full_extra") \
  X(page_fault, "cost.page_fault") \
  X(zero_page, "cost.zero_page") \
  X(pte_write, "cost.pte_write") \
  X(lazy_fault, "cost.lazy_fault") \
  X(root_alloc, "cost.root_alloc") \
  X(syscall, "cost.syscall") \
  X(ctx_switch, "cost.ctx_switch") \
  X(fork, "cost.fork") \
  X(exec, "cost.exec") \
  X(exit, "cost.exit") \
  X(clone_thread, "cost.clone_thread") \
  X(wakeup, "cost.wakeup") \
  X(kmap_local, "cost.kmap_local") \
  X(kmap, "cost.kmap") \
  X(gs_prefix, "cost.gs_prefix") \

struct CostCache {
#define PERCPU_DECLARE_COST(field, key) Cycles field = 0;
  PERCPU_COST_FIELDS(PERCPU_DECLARE_COST)
#undef PERCPU_DECLARE_COST
  void load(const Params& p) {
#define PERCPU_LOAD_COST(field, key) field = static_cast<Cycles>(p.get(key));
    PERCPU_COST_FIELDS(PERCPU_LOAD_COST)
#undef PERCPU_LOAD_COST
  }
};

}  // namespace percpu
