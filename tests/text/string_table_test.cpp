// Pins text/string_table.hpp: strings come back by index byte for byte
// (including empty ones and embedded NULs), lookups by content find the first
// of equal strings across rehashes, and absent strings are reported absent.
#include "qlora/text/string_table.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using qlora::text::StringArena;
using qlora::text::StringTable;

TEST(StringArena, ReturnsEachStringByIndex) {
  StringArena a;
  const std::vector<std::string> in{"", "a", std::string("x\0y", 3), "\xE6\xB2\xB3\xE5\xB7\x9D", ""};
  for (const std::string& s : in) a.add(s);
  a.shrink_to_fit();
  ASSERT_EQ(a.size(), in.size());
  for (std::size_t i = 0; i < in.size(); ++i) EXPECT_EQ(a.at(std::int32_t(i)), in[i]) << i;
}

TEST(StringTable, FindsByContentAcrossRehashes) {
  StringTable t;
  std::vector<std::string> in;
  for (int i = 0; i < 5000; ++i) in.push_back("tok" + std::to_string(i * 7919 % 10007));
  for (const std::string& s : in) t.add(s);  // grows from 64 slots: many rehashes
  for (std::size_t i = 0; i < in.size(); ++i) {
    ASSERT_EQ(t.find(in[i]), std::int32_t(i)) << in[i];
    ASSERT_EQ(t.at(std::int32_t(i)), in[i]);
  }
  EXPECT_EQ(t.find("tok10007"), StringTable::kAbsent);
  EXPECT_EQ(t.find(""), StringTable::kAbsent);
  EXPECT_EQ(StringTable().find("a"), StringTable::kAbsent);
}

TEST(StringTable, EqualStringsFindTheFirst) {
  StringTable t;
  t.reserve(4, 8);
  EXPECT_EQ(t.add("ab"), 0);
  EXPECT_EQ(t.add("cd"), 1);
  EXPECT_EQ(t.add("ab"), 2);
  for (int i = 0; i < 200; ++i) t.add("pad" + std::to_string(i));  // force rehashes after the duplicate
  EXPECT_EQ(t.find("ab"), 0);
  EXPECT_EQ(t.at(2), "ab");
  EXPECT_EQ(t.add(""), 203);
  EXPECT_EQ(t.find(""), 203);
}

}  // namespace
