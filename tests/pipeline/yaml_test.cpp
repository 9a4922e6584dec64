// pipeline/yaml.hpp: the YAML subset a config uses — block mappings and
// sequences, sequences of mappings, one-line flow collections, quoting and
// YAML 1.2 core-schema scalars — and a clear error, with its line, for what
// the subset does not read.
#include "qlora/pipeline/yaml.hpp"

#include <gtest/gtest.h>

#include "qlora/pipeline/config.hpp"

namespace qlora::pipeline {
namespace {

TEST(Yaml, BlocksFlowsAndScalars) {
  const char* text = R"(---
# a comment
run:
  out_dir: "runs/a # not a comment"
  seeds: [1, 2, 3]   # flow sequence
data:
  subsets:
  - 16
  - 32
  test_questions: 0
train:
  lr: 5e-4
  alpha: 16.0
  base: nf4
  flag: true
  nothing: ~
  quoted: 'it''s'
  escaped: "a\tb\u00e9"
stage2:
  models:
    - name: Swallow 8B
      path: models/swallow.gguf
    - {name: Qwen, path: 'q.gguf'}
)";
  auto doc = parse_yaml(text, "c.yaml");
  ASSERT_TRUE(doc.is_ok()) << doc.status().message();
  const auto& r = doc->root;
  EXPECT_EQ(r["run"]["out_dir"], "runs/a # not a comment");
  EXPECT_EQ(r["run"]["seeds"], nlohmann::ordered_json({1, 2, 3}));
  EXPECT_EQ(r["data"]["subsets"], nlohmann::ordered_json({16, 32}));
  EXPECT_TRUE(r["data"]["test_questions"].is_number_integer());
  EXPECT_TRUE(r["train"]["lr"].is_number_float());  // YAML 1.2: 5e-4 is a number
  EXPECT_DOUBLE_EQ(r["train"]["lr"].get<double>(), 5e-4);
  EXPECT_TRUE(r["train"]["alpha"].is_number_float());
  EXPECT_EQ(r["train"]["base"], "nf4");
  EXPECT_EQ(r["train"]["flag"], true);
  EXPECT_TRUE(r["train"]["nothing"].is_null());
  EXPECT_EQ(r["train"]["quoted"], "it's");
  EXPECT_EQ(r["train"]["escaped"], "a\tb\xc3\xa9");
  ASSERT_EQ(r["stage2"]["models"].size(), 2u);
  EXPECT_EQ(r["stage2"]["models"][0]["name"], "Swallow 8B");
  EXPECT_EQ(r["stage2"]["models"][0]["path"], "models/swallow.gguf");
  EXPECT_EQ(r["stage2"]["models"][1]["path"], "q.gguf");
  EXPECT_EQ(doc->lines.at("train.lr"), 12u);
  EXPECT_EQ(doc->lines.at("stage2.models"), 20u);
}

TEST(Yaml, WhatTheSubsetRefusesIsNamedByLine) {
  auto err = [](const char* text) {
    auto d = parse_yaml(text, "c.yaml");
    EXPECT_FALSE(d.is_ok()) << text;
    return d.is_ok() ? std::string() : d.status().message();
  };
  EXPECT_NE(err("a: 1\n\tb: 2\n").find("c.yaml:2: tabs cannot indent"), std::string::npos);
  EXPECT_NE(err("a: 1\na: 2\n").find("c.yaml:2: duplicate key 'a'"), std::string::npos);
  EXPECT_NE(err("a: &x 1\n").find("c.yaml:1: anchors and aliases"), std::string::npos);
  EXPECT_NE(err("a: |\n  text\n").find("c.yaml:1: block scalars"), std::string::npos);
  EXPECT_NE(err("a: [1, 2\n").find("c.yaml:1: unclosed '['"), std::string::npos);
  EXPECT_NE(err("a: 1\n---\nb: 2\n").find("c.yaml:2: only one YAML document"), std::string::npos);
  EXPECT_NE(err("a:\n  b: 1\n    c: 2\n").find("c.yaml:3: unexpected indentation"), std::string::npos);
  EXPECT_NE(err("just text\n").find("c.yaml:1: expected 'key: value'"), std::string::npos);
  EXPECT_NE(err("a: \"open\n").find("c.yaml:1: unclosed quoted string"), std::string::npos);
  EXPECT_NE(err("a: \"\\uDC00\"\n").find("c.yaml:1: \\u needs four hex digits of a character"), std::string::npos);
  EXPECT_NE(err("a: \"\\u00\"\n").find("c.yaml:1: \\u needs four hex digits"), std::string::npos);
  EXPECT_NE(err("- 1\n- 2\n").find("must be a mapping"), std::string::npos);
}

TEST(Yaml, ConfigFromYamlEqualsTheTomlOne) {
  const char* toml = R"([data]
subsets = [4, 8]
[train]
lr = 1e-3
epochs = 1.0
[stage2]
models = [{name = "a", path = "a.gguf"}]
)";
  const char* yaml = R"(data:
  subsets: [4, 8]
train:
  lr: 1e-3
  epochs: 1.0
stage2:
  models:
    - name: a
      path: a.gguf
)";
  auto a = parse_config_text(toml, "c.toml");
  auto b = parse_config_text(yaml, "c.yml");
  ASSERT_TRUE(a.is_ok()) << a.status().message();
  ASSERT_TRUE(b.is_ok()) << b.status().message();
  EXPECT_EQ(config_to_json(*a), config_to_json(*b));
  // Schema errors carry the YAML line, as with TOML.
  auto bad = parse_config_text("train:\n  rank: 16\n  rnak: 8\n", "c.yaml");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("c.yaml:3: train.rnak: unknown field"), std::string::npos)
      << bad.status().message();
  auto typed = parse_config_text("train:\n  rank: \"16\"\n", "c.yaml");
  ASSERT_FALSE(typed.is_ok());
  EXPECT_NE(typed.status().message().find("c.yaml:2: train.rank: expected an integer, got string"), std::string::npos)
      << typed.status().message();
}

}  // namespace
}  // namespace qlora::pipeline
