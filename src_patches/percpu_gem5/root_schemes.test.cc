// tests/cxx/root_schemes.test.cc in gem5's GTest build: the same tests CI runs.
#include "../../tests/cxx/root_schemes.test.cc"
