// The op table (core/engine/program.h PERCPU_OPS): every op's operands are distinct
// fields with distinct names, and the named reads are the fields the table names.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "engine/program.h"

using namespace percpu;

TEST(OpTable, EveryOpHasANameAndDistinctOperandFieldsAndNames) {
  for (int code = 1; code <= kNumOpCodes; ++code) {
    const OpInfo& info = op_info(static_cast<OpCode>(code));
    EXPECT_STREQ(info.name, kOpCodeNames[code - 1]);
    std::set<int> slots;
    std::set<std::string> names;
    for (const OperandInfo& o : info.operands) {
      if (!o.name) break;
      EXPECT_TRUE(slots.insert(static_cast<int>(o.slot)).second) << info.name << " " << o.name;
      EXPECT_TRUE(names.insert(o.name).second) << info.name << " " << o.name;
    }
  }
}

TEST(OpTable, NamedReadsAreTheTablesFields) {
  Op op{OpCode::Access, 17, 1, 2, 3, 4};
  EXPECT_EQ(op_args::Access::mode(op), 17);
  EXPECT_EQ(op_args::Access::vma(op), 1);
  EXPECT_EQ(op_args::Access::offset(op), 2);
  EXPECT_EQ(op_args::Access::count(op), 3);
  EXPECT_EQ(op_args::Access::stride(op), 4);
  EXPECT_EQ(op_args::Brk::size(Op{OpCode::Brk, 0, 1, 2, 3, 4}), 3);
}
