// tests/cxx/cr3_write_classifier.test.cc in gem5's GTest build: the same tests CI runs.
#include "../../tests/cxx/cr3_write_classifier.test.cc"
