// The two kinds of error a run reports to its caller, kept apart so that the
// binding can tell a user's mistake from a bug in the model: anything else
// that escapes the engine (std::logic_error, std::out_of_range, ...) is a bug.
#pragma once
#include <stdexcept>
#include <string>

namespace percpu {

// The op program handed to the engine is malformed (an index out of range, a
// loop that does not nest, an unknown op code): found before it runs.
struct ProgramError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// The program is well formed but does something the modelled kernel refuses
// while it runs (a deadlock, kunmap without kmap, brk into another VMA, ...).
struct WorkloadError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace percpu
