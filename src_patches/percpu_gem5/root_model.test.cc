// The root model's and the root schemes' unit tests, in gem5's GTest build: the same
// files CI compiles without gem5 (tests/gem5host/test_root_model_core.py,
// tests/core/root/test_root_schemes.py), so both builds run the same tests.
#include <gtest/gtest.h>

#define main root_model_unit_tests
#include "../../tests/gem5host/root_model_test.cc"
#undef main

TEST(PercpuRootModelTest, UnitTestsPass) { EXPECT_EQ(root_model_unit_tests(), 0); }
