// model/model_config.hpp: presets found by a part of their name, and a
// model's shape checked against a preset with the first differing field named.
#include "qlora/model/model_config.hpp"

#include <gtest/gtest.h>

namespace qlora::model {
namespace {

TEST(ModelConfig, PresetsAreFoundByAPartOfTheirName) {
  auto q = presets::find("QWEN2.5-7b");
  ASSERT_TRUE(q.is_ok());
  EXPECT_EQ(q->n_head_kv, presets::qwen25_7b().n_head_kv);
  EXPECT_EQ(presets::find("tanuki")->n_layer, presets::tanuki_8b().n_layer);
  auto none = presets::find("gpt-5");
  ASSERT_FALSE(none.is_ok());
  EXPECT_NE(none.status().message().find("no preset matches 'gpt-5' (presets: "), std::string::npos);
  EXPECT_FALSE(presets::find("").is_ok());
}

TEST(ModelConfig, ShapeAgainstAPresetNamesTheFirstDifference) {
  const ModelConfig s = presets::smollm2_135m();
  EXPECT_TRUE(check_shape(s, s, "m.gguf", "the preset 'smollm2'").is_ok());
  ModelConfig other = s;
  other.n_head_kv = 9;
  const Status st = check_shape(other, s, "m.gguf", "the preset 'smollm2'");
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("m.gguf: does not match the preset 'smollm2' (" + s.name +
                              "): KV heads is 9 in the file, 3 in the preset"),
            std::string::npos)
      << st.message();
  EXPECT_NE(check_shape(s, presets::qwen25_05b(), "m.gguf", "x").message().find("architecture is llama in the file, "
                                                                                  "qwen2 in the preset"),
            std::string::npos);
}

}  // namespace
}  // namespace qlora::model
