// An address space as a root scheme sees it: what hardware and a CR3 write
// reveal (docs/references.md, "The gem5 host"), nothing of the kernel's own state.
#pragma once
#include <cstdint>

#include "common/types.h"

namespace percpu {

struct MmView {
  uint64_t ctx_id = 0;        // identifies the mm (Linux's ctx_id; under gem5, the pgd pair)
  Frame pgd = kNoFrame;       // the canonical top level (the kernel pgd under PTI)
  Frame user_pgd = kNoFrame;  // PTI: the user pgd of the pair (pgd + 4 KiB on Linux)
};

}  // namespace percpu
