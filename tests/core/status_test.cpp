// Pins core/status.hpp: errors carry code and message, context prefixes them,
// and Result holds either a value or the Status explaining its absence.
#include "qlora/core/status.hpp"

#include <gtest/gtest.h>

namespace {

qlora::Status fails() { return qlora::Status::corrupt("bad magic at offset 0"); }
qlora::Status chain() {
  QLORA_TRY(qlora::Status::ok());
  QLORA_TRY(fails());
  return qlora::Status::invalid("unreachable");
}

TEST(Status, OkAndErrors) {
  EXPECT_TRUE(qlora::Status::ok().is_ok());
  const qlora::Status s = fails().with_context("model.gguf");
  EXPECT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), qlora::ErrorCode::kCorrupt);
  EXPECT_EQ(s.message(), "model.gguf: bad magic at offset 0");
}

TEST(Status, TryReturnsFirstError) {
  const qlora::Status s = chain();
  EXPECT_EQ(s.code(), qlora::ErrorCode::kCorrupt);
}

TEST(Result, ValueOrStatus) {
  qlora::Result<int> good = 42;
  ASSERT_TRUE(good.is_ok());
  EXPECT_EQ(*good, 42);
  qlora::Result<int> bad = qlora::Status::io("x: open failed");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().message(), "x: open failed");
}

}  // namespace
