// `qlora export-adapter` end to end: the binary converts PEFT's own adapter
// directory into the file llama.cpp's convert_lora_to_gguf.py writes (byte for
// byte), converts that back into PEFT's safetensors, and fails with a message
// and exit code on bad input. Skipped when the CLI is not part of the build.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "io/lora_test_adapters.hpp"
#include "qlora/io/gguf_writer.hpp"
#include "cli_run.hpp"
#include "temp_dir.hpp"

namespace qlora {
namespace {

#ifdef QLORA_CLI_PATH

using test::CliRun;

CliRun run(const std::string& args) { return test::run_command(std::string(QLORA_CLI_PATH) + " export-adapter " + args); }

/// A base "model" with presets::tiny()'s metadata and no tensors: all
/// export-adapter reads from it.
std::string write_base(const test::TempDir& t, const std::string& arch) {
  const model::ModelConfig c = model::presets::tiny();
  io::GgufWriter w;
  const std::string p = arch + ".";
  EXPECT_TRUE(w.set_string("general.architecture", arch));
  EXPECT_TRUE(w.set_u32(p + "block_count", c.n_layer));
  EXPECT_TRUE(w.set_u32(p + "embedding_length", c.n_embd));
  EXPECT_TRUE(w.set_u32(p + "feed_forward_length", c.n_ff));
  EXPECT_TRUE(w.set_u32(p + "attention.head_count", c.n_head));
  EXPECT_TRUE(w.set_u32(p + "attention.head_count_kv", c.n_head_kv));
  EXPECT_TRUE(w.set_u32(p + "vocab_size", c.n_vocab));
  EXPECT_TRUE(w.set_f32(p + "attention.layer_norm_rms_epsilon", c.rms_eps));
  const std::string path = (t.dir / (arch + "_base.gguf")).string();
  EXPECT_TRUE(w.write_file(path));
  return path;
}

TEST(ExportAdapterCli, PeftToGgufToPeftReproducesTheReferenceFiles) {
  test::TempDir t("export_adapter", "roundtrip");
  const std::string base = write_base(t, "llama");
  const std::string gguf = (t.dir / "a.gguf").string();
  CliRun r = run(test::lora_data_dir() + "/tiny_llama_r4 --to gguf --out " + gguf + " --base " + base +
              " --name Tiny_Llama_R4");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("read PEFT adapter"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("r = 4, alpha = 8"), std::string::npos) << r.output;
  EXPECT_EQ(test::read_file_bytes(gguf), test::read_file_bytes(test::lora_data_dir() + "/tiny_llama_r4.f32.gguf"));

  const std::string peft = (t.dir / "peft").string();
  r = run(gguf + " --to peft --out " + peft + " --base " + base);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("read GGUF adapter"), std::string::npos) << r.output;
  EXPECT_EQ(test::read_file_bytes(peft + "/adapter_model.safetensors"),
            test::read_file_bytes(test::lora_data_dir() + "/tiny_llama_r4/adapter_model.safetensors"));
}

TEST(ExportAdapterCli, BadInputFailsWithAMessage) {
  test::TempDir t("export_adapter", "errors");
  const std::string llama = write_base(t, "llama");
  const std::string qwen = write_base(t, "qwen2");
  const std::string in = test::lora_data_dir() + "/tiny_llama_r4.f32.gguf";
  CliRun r = run(in + " --to gguf --out " + (t.dir / "x.gguf").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;  // no --base
  EXPECT_NE(r.output.find("--base"), std::string::npos) << r.output;
  r = run(in + " --to onnx --out x --base " + llama);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  r = run(in + " --to peft --out " + (t.dir / "p").string() + " --base " + qwen);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("architecture 'llama' but the base model is 'qwen2'"), std::string::npos) << r.output;
  r = run(in + " --to peft --dtype q8_0 --out " + (t.dir / "p").string() + " --base " + llama);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("f32, f16 or bf16"), std::string::npos) << r.output;
  r = run(llama + " --to peft --out " + (t.dir / "p").string() + " --base " + llama);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("general.type"), std::string::npos) << r.output;
}

#else

TEST(ExportAdapterCli, NeedsTheCli) { GTEST_SKIP() << "qlora CLI not built (QLORA_CLI_PATH undefined)"; }

#endif

}  // namespace
}  // namespace qlora
