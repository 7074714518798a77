// The C++ unit tests' one check (tests/core/root/root_schemes_test.cc,
// tests/gem5host/root_model_test.cc): print the failed condition, count it, go on.
// main() returns non-zero when g_failures is.
#pragma once
#include <cstdio>

namespace {
int g_failures = 0;
}  // namespace

#define EXPECT(cond)                                                 \
  do {                                                               \
    if (!(cond)) {                                                   \
      std::printf("%s:%d: FAILED: %s\n", __FILE__, __LINE__, #cond); \
      g_failures++;                                                  \
    }                                                                \
  } while (0)
