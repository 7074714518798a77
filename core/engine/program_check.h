// Checks an op program before the engine runs it: every index an op or a task
// holds (VMA, channel, task, mm template, CPU) is in range, loops nest, op
// codes and access kinds are known, counts and sizes are non-negative and
// addresses stay in the user half. The interpreter relies on this and does
// not check again, so a program from any source (the Python parser, a test
// building ops by hand) gives a ProgramError instead of undefined behaviour.
#pragma once
#include "engine/program.h"

namespace percpu {

// Throws ProgramError naming the task, the op index and the fix.
void check_program(const Program& program, int ncpus);

}  // namespace percpu
