// core/root/'s scheme tests (tests/core/root/root_schemes_test.cc) in gem5's GTest build.
#include <gtest/gtest.h>

#define main root_scheme_unit_tests
#include "../../tests/core/root/root_schemes_test.cc"
#undef main

TEST(PercpuRootSchemesTest, UnitTestsPass) { EXPECT_EQ(root_scheme_unit_tests(), 0); }
