// Where every simulated cycle goes (system.cpuN.cycles::<name>): the one list
// of categories; Python takes the names from the binding
// (percpu._core.CYCLE_CATEGORIES).
#pragma once
#include <cstdint>

namespace percpu {

#define PERCPU_CYCLE_CATEGORIES(X)                                                  \
  X(User, "user") X(Walk, "walk") X(RootCopy, "rootCopy") X(LazyFault, "lazyFault")  \
  X(PageFault, "pageFault") X(Flush, "flush") X(Ipi, "ipi") X(Kmap, "kmap")          \
  X(PercpuData, "percpuData") X(CtxSwitch, "ctxSwitch") X(Syscall, "syscall")        \
  X(Kernel, "kernel") X(Idle, "idle") X(Other, "other")

enum class Cat : uint8_t {
#define PERCPU_CAT_ENUM(id, name) id,
  PERCPU_CYCLE_CATEGORIES(PERCPU_CAT_ENUM)
#undef PERCPU_CAT_ENUM
  Count
};
constexpr const char* kCatNames[] = {
#define PERCPU_CAT_NAME(id, name) name,
    PERCPU_CYCLE_CATEGORIES(PERCPU_CAT_NAME)
#undef PERCPU_CAT_NAME
};
inline const char* cat_name(Cat c) { return kCatNames[static_cast<int>(c)]; }

}  // namespace percpu
