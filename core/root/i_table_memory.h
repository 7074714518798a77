// What a root scheme sees of physical memory: 64-bit entries of table frames,
// and zeroed table frames from its own pool. Each host implements it once:
// the embedded engine over its PhysMem (mem/phys_table_memory.h), the gem5
// adapter over guest physical memory the config withholds from the guest, so
// that root reads and writes are real memory traffic there.
//
// Contract: a frame from alloc_table reads as 512 zero entries until written;
// after free_table the scheme never touches it again. The scheme allocates
// and frees in a deterministic order, so a host that hands out frames in
// order (the engine) gives every run the same frame numbers.
#pragma once
#include <cstdint>

#include "common/types.h"

namespace percpu {

// Which kind of table a scheme allocates (hosts may account them apart).
enum class TableKind : uint8_t {
  Root,     // a top-level table: a (cpu, asid) root, or the PTI user half of its pair
  Private,  // a lower-level table below a root-private kernel slot (private kmaps)
};

class ITableMemory {
 public:
  virtual ~ITableMemory() = default;

  virtual uint64_t read_entry(Frame table, int index) const = 0;
  virtual void write_entry(Frame table, int index, uint64_t value) = 0;
  virtual Frame alloc_table(TableKind kind) = 0;  // zeroed; never kNoFrame
  virtual void free_table(Frame table) = 0;

  // Conveniences with entry-by-entry defaults; a host may do them in bulk.
  // Entries [first, first + count) of src into the same indices of dst.
  virtual void copy_entries(Frame src, Frame dst, int first, int count) {
    for (int i = first; i < first + count; ++i) write_entry(dst, i, read_entry(src, i));
  }
  virtual void zero_table(Frame table) {
    for (int i = 0; i < kEntriesPerTable; ++i) write_entry(table, i, 0);
  }
};

}  // namespace percpu
