// pipeline/toml.hpp: the TOML subset our configs use, and every unsupported
// or malformed construct rejected with the line.
#include "qlora/pipeline/toml.hpp"

#include <gtest/gtest.h>

namespace qlora::pipeline {
namespace {

TEST(Toml, ReadsTheSubset) {
  const char* text = R"(# pipeline config
out_dir = "runs/default"   # where results go
seed = 42
lr = 2e-4
big = 1_000_000
neg = -3
ok = true

[stage1]
subsets = [1000, 2000,
           3000,]  # trailing comma, multi-line
name = 'literal \n stays'
esc = "tab\there \u00e9"
[stage1.train]
epochs = 3.0
models = [ { name = "smollm2", path = "a.gguf" }, {} ]
)";
  auto d = parse_toml(text, "c.toml");
  ASSERT_TRUE(d.is_ok()) << d.status().message();
  const auto& j = d->root;
  EXPECT_EQ(j["out_dir"], "runs/default");
  EXPECT_EQ(j["seed"], 42);
  EXPECT_DOUBLE_EQ(j["lr"].get<double>(), 2e-4);
  EXPECT_EQ(j["big"], 1000000);
  EXPECT_EQ(j["neg"], -3);
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["stage1"]["subsets"], nlohmann::ordered_json({1000, 2000, 3000}));
  EXPECT_EQ(j["stage1"]["name"], "literal \\n stays");
  EXPECT_EQ(j["stage1"]["esc"], "tab\there \xC3\xA9");
  EXPECT_TRUE(j["stage1"]["train"]["epochs"].is_number_float());
  EXPECT_EQ(j["stage1"]["train"]["models"][0]["path"], "a.gguf");
  EXPECT_EQ(d->lines.at("seed"), 3u);
  EXPECT_EQ(d->lines.at("stage1.subsets"), 10u);
  EXPECT_EQ(d->lines.at("stage1.train.epochs"), 15u);
}

TEST(Toml, ErrorsNameTheLine) {
  const std::pair<const char*, const char*> bad[] = {
      {"a = 1\na = 2\n", "c.toml:2: key 'a' defined twice"},
      {"[t]\n[t]\n", "c.toml:2: table [t] defined twice"},
      {"x = hello\n", "c.toml:1: cannot read value 'hello' (strings need quotes)"},
      {"x = \"open\n", "c.toml:1: unterminated string"},
      {"[[runs]]\n", "c.toml:1: arrays of tables"},
      {"a.b = 1\n", "c.toml:1: dotted keys are not supported"},
      {"a = 1 2\n", "c.toml:1: unexpected text after the value"},
      {"a = [1 2]\n", "c.toml:1: expected ',' or ']'"},
      {"\n\na =\n", "c.toml:3: missing value"},
      {"a = 1__0\n", "c.toml:1: misplaced '_'"},
      {"a = \"\"\"x\"\"\"\n", "c.toml:1: multi-line strings"},
      {"a = 1\n[a]\n", "c.toml:2: 'a' is already a value"},
      {"a = \"\\uD800\"\n", "c.toml:1: bad \\u escape"},  // a lone surrogate is no character
      {"a = \"\\u12G4\"\n", "c.toml:1: bad \\u escape"},
  };
  for (const auto& [text, want] : bad) {
    auto d = parse_toml(text, "c.toml");
    ASSERT_FALSE(d.is_ok()) << text;
    EXPECT_NE(d.status().message().find(want), std::string::npos) << text << " -> " << d.status().message();
  }
}

}  // namespace
}  // namespace qlora::pipeline
