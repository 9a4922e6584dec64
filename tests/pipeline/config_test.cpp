// pipeline/config.hpp: defaults, TOML and JSON configs onto them, and the
// errors a user meets — unknown field, wrong type, bad value — each naming
// the file, line and field.
#include "qlora/pipeline/config.hpp"

#include <gtest/gtest.h>

namespace qlora::pipeline {
namespace {

TEST(PipelineConfig, DefaultsAreThePapers) {
  const PipelineConfig c;
  EXPECT_EQ(c.rank, 16);
  EXPECT_DOUBLE_EQ(c.alpha, 16.0);
  EXPECT_DOUBLE_EQ(c.lr, 2e-4);
  EXPECT_DOUBLE_EQ(c.epochs, 3.0);
  EXPECT_EQ(c.batch * c.accum, 8);
  EXPECT_EQ(c.stage2_rank, 32);
  EXPECT_DOUBLE_EQ(c.stage2_dropout, 0.05);
  EXPECT_EQ(c.formats, (std::vector<std::string>{"f16", "q8_0", "q4_k_m"}));
  EXPECT_TRUE(check_values(c, "defaults").is_ok());
}

TEST(PipelineConfig, TomlAndJsonSetTheSameFields) {
  const char* toml = R"(
[data]
subsets = [100, 200]   # scaled down
[train]
epochs = 1
max_seq_len = 512
[stage2]
models = [{ name = "smol", path = "a.gguf" }]
[judge]
kind = "ollama"
reference = true
)";
  auto a = parse_config_text(toml, "x.toml");
  ASSERT_TRUE(a.is_ok()) << a.status().message();
  EXPECT_EQ(a->subsets, (std::vector<std::int64_t>{100, 200}));
  EXPECT_DOUBLE_EQ(a->epochs, 1.0);  // an integer is a number
  EXPECT_EQ(a->max_seq_len, 512);
  ASSERT_EQ(a->stage2_models.size(), 1u);
  EXPECT_EQ(a->stage2_models[0].name, "smol");
  EXPECT_EQ(a->judge, "ollama");
  EXPECT_TRUE(a->reference);
  EXPECT_EQ(a->rank, 16);  // untouched fields keep their defaults
  // The resolved config written back reads to the same values.
  const std::string back = config_to_json(*a).dump();
  auto b = parse_config_text(back, "resolved.json");
  ASSERT_TRUE(b.is_ok()) << b.status().message();
  EXPECT_EQ(config_to_json(*b), config_to_json(*a));
}

TEST(PipelineConfig, ErrorsNameFileLineAndField) {
  const std::pair<const char*, const char*> bad[] = {
      {"[train]\nepochs = 1\nrnak = 16\n", "c.toml:3: train.rnak: unknown field (valid in [train]: rank, alpha"},
      {"[data]\nsubsets = \"1000\"\n", "c.toml:2: data.subsets: expected an array of integers, got string"},
      {"[train]\nrank = 16.5\n", "c.toml:2: train.rank: expected an integer, got float"},
      {"[trian]\n", "c.toml:1: trian: unknown section (valid: [run], [data], [model], [train]"},
      {"[stage3]\nformats = [\"q4_0\"]\n", "c.toml: stage3.formats: unknown format 'q4_0'"},
      {"[judge]\nkind = \"gpt\"\n", "c.toml: judge.kind: 'gpt' is not offline, ollama or openai"},
      {"[stage2]\nmodels = [{ path = \"a\", size = 3 }]\n", "c.toml:2: stage2.models: expected an array of {name, path, preset} tables"},
      {"train = 3\n", "c.toml:1: train: expected a table, got integer"},
      {"rank = 3\n", "c.toml:1: rank: unknown section"},
  };
  for (const auto& [text, want] : bad) {
    auto c = parse_config_text(text, "c.toml");
    ASSERT_FALSE(c.is_ok()) << text;
    EXPECT_NE(c.status().message().find(want), std::string::npos) << text << " -> " << c.status().message();
  }
  auto j = parse_config_text("{\"train\": {\"lr\": \"fast\"}}", "c.json");
  EXPECT_NE(j.status().message().find("c.json: train.lr: expected a number, got string"), std::string::npos)
      << j.status().message();
  auto broken = parse_config_text("{\n\"train\": {,}}", "c.json");
  EXPECT_NE(broken.status().message().find("c.json:2: invalid JSON"), std::string::npos) << broken.status().message();
  EXPECT_FALSE(parse_config_text("", "c.ini").is_ok());
  auto preset = parse_config_text("[stage2]\nmodels = [{path = \"a.gguf\", preset = \"llama-9\"}]\n", "c.toml");
  ASSERT_FALSE(preset.is_ok());
  EXPECT_NE(preset.status().message().find("stage2.models (a.gguf).preset: no preset matches 'llama-9'"),
            std::string::npos)
      << preset.status().message();
  // An adapter trained on the stored base merges into that base, not NF4.
  auto mixed = parse_config_text("[train]\nbase = \"file\"\n[stage3]\nmerge_target = \"nf4\"\n", "c.toml");
  ASSERT_FALSE(mixed.is_ok());
  EXPECT_NE(mixed.status().message().find("stage3.merge_target"), std::string::npos) << mixed.status().message();
}

}  // namespace
}  // namespace qlora::pipeline
