// libFuzzer target for the GGUF reader (io/gguf.hpp) and, on inputs it
// accepts, the writer (io/gguf_writer.hpp).
//
// Properties checked, beyond "no crash, no sanitizer report":
//  1. Every rejection carries the input name and a byte offset, or names a
//     key (general.alignment errors, which have no single offset).
//  2. Every tensor view lies inside the input.
//  3. Round trip: writing what we parsed and parsing + writing that again
//     yields identical bytes (we compare bytes, not values, so NaN metadata
//     does not count as a difference).
//
// Built twice by tests/fuzz/CMakeLists.txt: as the fuzzer, and with
// QLORA_FUZZ_SEED_MAIN as `gguf_fuzz_seeds DIR`, which writes a few valid
// files made by GgufWriter to seed the corpus (see docs/fuzzing.md).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "qlora/io/gguf.hpp"
#include "qlora/io/gguf_writer.hpp"

namespace {

using qlora::Result;
using qlora::Status;
using qlora::io::GgufFile;
using qlora::io::GgufWriter;

}  // namespace

#ifndef QLORA_FUZZ_SEED_MAIN

namespace {

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "gguf_fuzz property violated: %s: %s\n", what, detail.c_str());
  std::abort();
}

// Re-encode a parsed file with our writer, tensors pointing at the parsed views.
Result<std::vector<std::byte>> rewrite(const GgufFile& f) {
  GgufWriter w;
  for (const auto& kv : f.kvs()) QLORA_TRY(w.set(kv.key, kv.value));
  for (const auto& t : f.tensors()) {
    std::vector<std::uint64_t> ne(t.ne.begin(), t.ne.begin() + t.n_dims);
    QLORA_TRY(w.add_tensor(t.name, std::move(ne), t.type, t.data));
  }
  return w.write_buffer();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Copy into an exact-size heap buffer so ASan catches any read past the end
  // (libFuzzer's own buffer is exact-size too; this keeps it explicit).
  std::vector<std::byte> input(reinterpret_cast<const std::byte*>(data),
                               reinterpret_cast<const std::byte*>(data) + size);
  auto parsed = GgufFile::parse(input, "fuzz.gguf");
  if (!parsed) {
    const std::string msg = parsed.status().message();
    if (msg.rfind("fuzz.gguf: offset ", 0) != 0 && msg.rfind("fuzz.gguf: key '", 0) != 0)
      fail("error without file name and offset", msg);
    return 0;
  }
  const GgufFile& f = *parsed;
  for (const auto& t : f.tensors()) {
    const std::byte* lo = input.data();
    if (t.data.data() < lo || t.data.data() + t.data.size() > lo + input.size())
      fail("tensor view outside the input", t.name);
  }

  auto once = rewrite(f);
  if (!once) fail("writer refused what the reader accepted", once.status().message());
  auto reparsed = GgufFile::parse(*once, "rewritten.gguf");
  if (!reparsed) fail("reader refused the writer's output", reparsed.status().message());
  auto twice = rewrite(*reparsed);
  if (!twice) fail("second rewrite failed", twice.status().message());
  if (*once != *twice) fail("rewrite is not idempotent", std::to_string(once->size()) + " vs " + std::to_string(twice->size()));
  return 0;
}

#else  // QLORA_FUZZ_SEED_MAIN: write seed files into argv[1]

namespace {

Status write_seeds(const std::string& dir) {
  std::vector<float> f32(64);
  for (int i = 0; i < 64; ++i) f32[i] = 0.25f * i - 3.0f;
  std::vector<std::uint8_t> q8_0(34 * 2, 0x11), q4_k(144, 0x22), q6_k(210, 0x33);

  {  // metadata only, every value type
    GgufWriter w;
    QLORA_TRY(w.set_u8("s.u8", 1));
    QLORA_TRY(w.set_i8("s.i8", -1));
    QLORA_TRY(w.set_u16("s.u16", 2));
    QLORA_TRY(w.set_i16("s.i16", -2));
    QLORA_TRY(w.set_u32("s.u32", 3));
    QLORA_TRY(w.set_i32("s.i32", -3));
    QLORA_TRY(w.set_f32("s.f32", 0.5f));
    QLORA_TRY(w.set_bool("s.bool", true));
    QLORA_TRY(w.set_string("s.str", "text"));
    QLORA_TRY(w.set_u64("s.u64", 4));
    QLORA_TRY(w.set_i64("s.i64", -4));
    QLORA_TRY(w.set_f64("s.f64", 0.25));
    QLORA_TRY(w.set_array<std::uint8_t>("a.u8", {1, 2}));
    QLORA_TRY(w.set_array<std::int16_t>("a.i16", {-1, 1}));
    QLORA_TRY(w.set_array<bool>("a.bool", {true, false}));
    QLORA_TRY(w.set_string_array("a.str", {"a", "", "bc"}));
    QLORA_TRY(w.set_array<double>("a.f64", {1.0}));
    QLORA_TRY(w.write_file(dir + "/kv_only.gguf"));
  }
  {  // a tiny llama-shaped model, default alignment
    GgufWriter w;
    QLORA_TRY(w.set_string("general.architecture", "llama"));
    QLORA_TRY(w.set_u32("llama.block_count", 1));
    QLORA_TRY(w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f));
    QLORA_TRY(w.set_string_array("tokenizer.ggml.tokens", {"<s>", "</s>", "a"}));
    QLORA_TRY(w.set_array<std::int32_t>("tokenizer.ggml.token_type", {3, 3, 1}));
    QLORA_TRY(w.add_tensor("output_norm.weight", {32}, 0, std::as_bytes(std::span(f32).first(32))));
    QLORA_TRY(w.add_tensor("blk.0.attn_q.weight", {32, 2}, 8, std::as_bytes(std::span(q8_0))));
    QLORA_TRY(w.add_tensor("x", {4, 2, 2, 2}, 0, std::as_bytes(std::span(f32).first(32))));
    QLORA_TRY(w.write_file(dir + "/tiny_llama.gguf"));
  }
  {  // K-quants with a custom alignment
    GgufWriter w;
    QLORA_TRY(w.set_alignment(64));
    QLORA_TRY(w.set_u32("general.quantization_version", 2));
    QLORA_TRY(w.add_tensor("k4", {256}, 12, std::as_bytes(std::span(q4_k))));
    QLORA_TRY(w.add_tensor("k6", {256}, 14, std::as_bytes(std::span(q6_k))));
    QLORA_TRY(w.add_tensor("s", {}, 0, std::as_bytes(std::span(f32).first(1))));
    QLORA_TRY(w.write_file(dir + "/kquants_align64.gguf"));
  }
  return Status::ok();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const Status st = write_seeds(argv[1]);
  if (!st) {
    std::fprintf(stderr, "%s\n", st.message().c_str());
    return 1;
  }
  return 0;
}

#endif
