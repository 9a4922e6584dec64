// apps/qlora/model_session.hpp — what generate / nll / tokenize / bench share:
// open a GGUF, its tokenizer, its chat template and a decoder, each failure a
// message naming the file, and a thread pool of the requested size.
#pragma once

#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include <cxxopts.hpp>

#include "adapter_input.hpp"
#include "qlora/core/parallel_for.hpp"
#include "qlora/lora/runtime_lora.hpp"
#include "qlora/io/gguf.hpp"
#include "qlora/model/decoder.hpp"
#include "qlora/quant/row.hpp"
#include "qlora/text/bpe_tokenizer.hpp"
#include "qlora/text/chat_template.hpp"

namespace qlora::app {

/// A model file opened for evaluation. Heap-allocated so the decoder's views
/// into the mapped file stay valid.
struct ModelSession {
  io::GgufFile file;
  std::optional<text::BpeTokenizer> tok;
  std::optional<model::Decoder> dec;
  std::unique_ptr<ThreadPool> own_pool;  // when --threads asks for a pool size
  std::unique_ptr<AdapterInput> lora_in;          // --lora: the adapter ...
  std::unique_ptr<lora::RuntimeLora> lora_addend;  // ... applied in every forward

  ThreadPool& pool() { return own_pool ? *own_pool : ThreadPool::global(); }

  /// Open the file and its tokenizer; print the error (prefixed `cmd`) and
  /// return null on failure.
  static std::unique_ptr<ModelSession> open(const std::string& cmd, const std::string& path, int threads = 0) {
    auto f = io::GgufFile::open(path);
    if (!f) {
      std::fprintf(stderr, "%s: %s\n", cmd.c_str(), f.status().message().c_str());
      return nullptr;
    }
    auto s = std::make_unique<ModelSession>(
        ModelSession{std::move(*f), std::nullopt, std::nullopt, nullptr, nullptr, nullptr});
    auto t = text::BpeTokenizer::from_gguf(s->file);
    if (!t) {
      std::fprintf(stderr, "%s: %s\n", cmd.c_str(), t.status().message().c_str());
      return nullptr;
    }
    s->tok.emplace(std::move(*t));
    if (threads > 0) s->own_pool = std::make_unique<ThreadPool>(threads);
    return s;
  }

  /// Bind the decoder with a KV cache of n_ctx positions (capped at the model's context).
  bool open_decoder(const std::string& cmd, std::uint32_t n_ctx) {
    auto d = model::Decoder::open(file, {n_ctx, &pool()});
    if (!d) {
      std::fprintf(stderr, "%s: %s\n", cmd.c_str(), d.status().message().c_str());
      return false;
    }
    dec.emplace(std::move(*d));
    return true;
  }

  /// The --lora option of the commands that run a decoder.
  static void add_lora_option(cxxopts::Options& o) {
    o.add_options()("lora", "apply a LoRA adapter at run time, unmerged (a qlora checkpoint, PEFT dir or GGUF LoRA)",
                    cxxopts::value<std::string>());
  }

  /// After open_decoder: apply the adapter of --lora, if given, to every
  /// forward. False (after a message) when it cannot be read or does not fit.
  bool apply_lora_option(const cxxopts::ParseResult& args, const std::string& cmd) {
    if (!args.count("lora")) return true;
    const std::string path = args["lora"].as<std::string>();
    auto in = read_any_adapter(path, dec->config());
    if (!in) {
      std::fprintf(stderr, "%s: --lora: %s\n", cmd.c_str(), in.status().message().c_str());
      return false;
    }
    lora_in = std::make_unique<AdapterInput>(std::move(*in));
    lora_addend = std::make_unique<lora::RuntimeLora>(lora_in->adapter, pool());
    dec->set_addend(lora_addend.get());
    std::fprintf(stderr, "%s: LoRA %s (%s, r=%d, alpha=%g, %zu projections) applied at run time\n", cmd.c_str(),
                 path.c_str(), lora_in->kind.c_str(), lora_in->adapter.rank(), double(lora_in->adapter.config().alpha),
                 lora_in->adapter.slots().size());
    return true;
  }

  /// The template named `name`, or the GGUF's own when `name` is empty.
  std::optional<text::ChatTemplate> chat_template(const std::string& cmd, const std::string& name) const {
    auto t = name.empty() ? text::ChatTemplate::from_gguf(file) : text::ChatTemplate::from_name(name);
    if (!t) {
      std::fprintf(stderr, "%s: %s (choose one with --template: %s)\n", cmd.c_str(), t.status().message().c_str(),
                   text::ChatTemplate::supported_names().c_str());
      return std::nullopt;
    }
    return *t;
  }
};

/// `s` with bytes that are not valid UTF-8 shown as \xNN (for printing pieces).
inline std::string printable_piece(std::string_view s) {
  std::string out;
  std::size_t i = 0;
  while (i < s.size()) {
    const text::Utf8Step st = text::utf8_decode_at(s, i);
    if (st.len == 0) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", unsigned(static_cast<unsigned char>(s[i])));
      out += buf;
      ++i;
    } else {
      out.append(s.substr(i, st.len));
      i += st.len;
    }
  }
  return out;
}

}  // namespace qlora::app
