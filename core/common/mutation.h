// Test-only fault injection. tests/core/test_asid_oracle.py switches one of these on
// (percpu._core.set_mutation) to show that the independent ASID oracle notices a
// wrong engine; every real run leaves g_mutation at None. One branch each, on paths
// taken once per switch or flush, so the cost is nil.
#pragma once

namespace percpu {

#define PERCPU_MUTATIONS(X)                                                                  \
  X(None, "none")                                                                            \
  X(StaleFalse, "stale_false")          /* choose_new_asid: a kept slot is never stale */    \
  X(WrapAtFive, "wrap_at_five")         /* round-robin over 5 slots instead of 6 */          \
  X(NoLocalGen, "no_local_gen")         /* flush_tlb_func does not advance the local gen */ \
  X(SkipLazyFreed, "skip_lazy_freed")   /* freed_tables IPIs skip lazy CPUs too */           \
  X(NoCpumaskSet, "no_cpumask_set")     /* switch_mm does not set the CPU in mm_cpumask */

enum class Mutation : int {
#define PERCPU_MUTATION_ENUM(id, name) id,
  PERCPU_MUTATIONS(PERCPU_MUTATION_ENUM)
#undef PERCPU_MUTATION_ENUM
};
constexpr const char* kMutationNames[] = {
#define PERCPU_MUTATION_NAME(id, name) name,
    PERCPU_MUTATIONS(PERCPU_MUTATION_NAME)
#undef PERCPU_MUTATION_NAME
};

inline Mutation g_mutation = Mutation::None;
inline bool mutated(Mutation m) { return g_mutation == m; }

}  // namespace percpu
