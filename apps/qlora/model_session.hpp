// apps/qlora/model_session.hpp — what generate / nll / tokenize / bench share:
// open a GGUF, its tokenizer, its chat template and a decoder, each failure a
// message naming the file, and a thread pool of the requested size.
#pragma once

#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "qlora/core/parallel_for.hpp"
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

  ThreadPool& pool() { return own_pool ? *own_pool : ThreadPool::global(); }

  /// Open the file and its tokenizer; print the error (prefixed `cmd`) and
  /// return null on failure.
  static std::unique_ptr<ModelSession> open(const std::string& cmd, const std::string& path, int threads = 0) {
    auto f = io::GgufFile::open(path);
    if (!f) {
      std::fprintf(stderr, "%s: %s\n", cmd.c_str(), f.status().message().c_str());
      return nullptr;
    }
    auto s = std::make_unique<ModelSession>(ModelSession{std::move(*f), std::nullopt, std::nullopt, nullptr});
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
