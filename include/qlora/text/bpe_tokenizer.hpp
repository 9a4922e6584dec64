// qlora/text/bpe_tokenizer.hpp — byte-level BPE from a GGUF's tokenizer.ggml.*
// metadata, giving the same token ids as llama.cpp (llama-vocab.cpp).
//
// encode(text):
//   1. text must be valid UTF-8 (else an error naming the byte offset; llama.cpp
//      silently substitutes U+FFFD instead).
//   2. Special tokens are cut out first, as llama.cpp does: every control,
//      user-defined and unknown token, longest text first, replaces each of its
//      occurrences in the remaining raw text. With parse_special == false only
//      user-defined tokens are cut out (control tokens are then plain text).
//   3. Each raw fragment is split by the pre-tokenizer (pre_tokenizer.hpp).
//   4. Each piece is BPE-merged over its bytes: every byte starts as the token
//      of its GPT-2 "byte-level" character, then the adjacent pair with the
//      lowest merge rank is merged (leftmost first) until no pair has a rank.
//      Llama-3 ("ignore_merges") first takes a piece that is itself a token.
//   5. add_special: BOS in front if tokenizer.ggml.add_bos_token (default:
//      true for llama-bpe, false otherwise), EOS at the end if add_eos_token.
//
// decode(ids) concatenates the tokens' bytes, so decode(encode(s)) == s for
// every valid UTF-8 s (with or without parse_special) whose bytes all have a
// token — true of all text in practice; see find_unencodable_byte() for the
// few bytes a vocabulary may lack (llama.cpp drops them; so do we). llama.cpp's optional
// "clean_spaces" post-processing (" ," -> ",") is deliberately not applied: it
// breaks that round trip.
//
// Speed: merge ranks live in an open-addressing hash table keyed by the pair
// of token ids; BPE runs on ids with a binary heap; pieces already seen are
// served from a bounded cache (thread-safe: a thread that finds the cache busy
// just skips it). Memory: token texts and pieces live in string arenas
// (text/string_table.hpp), the file's token and merge arrays are read in
// place — ~4 MB for SmolLM2's vocabulary instead of ~11 MB.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "qlora/core/status.hpp"
#include "qlora/io/gguf.hpp"
#include "qlora/text/pre_tokenizer.hpp"
#include "qlora/text/string_table.hpp"
#include "qlora/text/utf8.hpp"

namespace qlora::text {

using TokenId = std::int32_t;
inline constexpr TokenId kNoToken = -1;

/// tokenizer.ggml.token_type values (llama.h's llama_token_type).
enum class TokenType : std::int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

/// The GPT-2 byte <-> character table: printable Latin-1 bytes map to
/// themselves, the other 68 bytes to U+0100.. in byte order.
struct ByteLevelMap {
  std::array<char32_t, 256> to_cp{};
  std::array<std::int16_t, 512> to_byte{};  // -1: not a byte-level character

  ByteLevelMap() {
    to_byte.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_cp[b] = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      to_byte[to_cp[b]] = static_cast<std::int16_t>(b);
    }
  }
  static const ByteLevelMap& get() {
    static const ByteLevelMap m;
    return m;
  }
  /// UTF-8 of the byte-level characters of raw bytes `s`.
  std::string encode(std::string_view s) const {
    std::string out;
    out.reserve(s.size() * 2);
    for (unsigned char b : s) append_utf8(out, to_cp[b]);
    return out;
  }
  /// Raw bytes of a byte-level string, or nullopt if a character is not in the table.
  std::optional<std::string> decode(std::string_view mapped) const {
    std::string out;
    out.reserve(mapped.size());
    std::size_t pos = 0;
    while (pos < mapped.size()) {
      const Utf8Step st = utf8_decode_at(mapped, pos);
      if (st.len == 0 || st.cp >= 512 || to_byte[st.cp] < 0) return std::nullopt;
      out.push_back(static_cast<char>(to_byte[st.cp]));
      pos += st.len;
    }
    return out;
  }
};

/// Everything a BpeTokenizer is built from (from_gguf fills it from metadata).
struct BpeVocabSpec {
  std::vector<std::string> tokens;       // tokenizer.ggml.tokens (byte-level strings)
  std::vector<std::int32_t> token_types;  // tokenizer.ggml.token_type; empty = all normal
  std::vector<std::string> merges;       // tokenizer.ggml.merges, "left right", rank = index
  std::string pre = "default";           // tokenizer.ggml.pre
  std::optional<TokenId> bos, eos, eot, unk, pad;
  std::optional<bool> add_bos, add_eos;
};

class BpeTokenizer {
 public:
  // ---- construction -----------------------------------------------------------------
  /// Build from a GGUF's tokenizer.ggml.* keys. Errors: missing keys, wrong
  /// types, a tokenizer.ggml.model other than "gpt2", an unknown pre-tokenizer.
  static Result<BpeTokenizer> from_gguf(const io::GgufFile& g) {
    const std::string where = g.name() + ": ";
    const io::GgufValue* model = g.find("tokenizer.ggml.model");
    if (model == nullptr)
      return Status::invalid(where + "key 'tokenizer.ggml.model' missing: the file has no tokenizer");
    auto model_name = g.get_string("tokenizer.ggml.model");
    if (!model_name) return model_name.status();
    if (*model_name != "gpt2") {
      std::string why = *model_name == "llama"
                            ? "SentencePiece ('llama') tokenizers are not supported yet"
                            : "tokenizer model '" + *model_name + "' is not supported";
      return Status::unsupported(where + why + "; supported: byte-level BPE ('gpt2': Llama-3, Qwen2, SmolLM2)");
    }
    // The token and merge arrays are read in place (no copy): a copy is
    // ~100k short strings, most of what the tokenizer would cost in memory.
    BpeVocabSpec spec;
    auto tokens = g.get_string_array("tokenizer.ggml.tokens");
    if (!tokens) return tokens.status();
    auto merges = g.get_string_array("tokenizer.ggml.merges");
    if (!merges) return merges.status();
    std::span<const std::int32_t> types;
    if (g.has("tokenizer.ggml.token_type")) {
      auto t = g.get_i32_array("tokenizer.ggml.token_type");
      if (!t) return t.status();
      types = *t;
    }
    if (g.has("tokenizer.ggml.pre")) {
      auto pre = g.get_string("tokenizer.ggml.pre");
      if (!pre) return pre.status();
      spec.pre = *pre;
    }
    struct IdKey {
      const char* key;
      std::optional<TokenId>* dst;
    };
    for (IdKey k : {IdKey{"tokenizer.ggml.bos_token_id", &spec.bos}, IdKey{"tokenizer.ggml.eos_token_id", &spec.eos},
                    IdKey{"tokenizer.ggml.eot_token_id", &spec.eot}, IdKey{"tokenizer.ggml.unknown_token_id", &spec.unk},
                    IdKey{"tokenizer.ggml.padding_token_id", &spec.pad}}) {
      if (!g.has(k.key)) continue;
      auto v = g.get_u32(k.key);
      if (!v) return v.status();
      *k.dst = static_cast<TokenId>(std::min<std::uint32_t>(*v, 0x7FFFFFFF));
    }
    for (auto [key, dst] : {std::pair{"tokenizer.ggml.add_bos_token", &spec.add_bos},
                            std::pair{"tokenizer.ggml.add_eos_token", &spec.add_eos}}) {
      if (!g.has(key)) continue;
      auto v = g.get_bool(key);
      if (!v) return v.status();
      *dst = *v;
    }
    BpeTokenizer t;
    if (Status st = t.init(spec, *tokens, *merges, types, g.name()); !st) return st;
    return t;
  }

  /// Build from an explicit vocabulary (tests, converters).
  static Result<BpeTokenizer> from_spec(BpeVocabSpec spec, const std::string& source = "vocabulary") {
    BpeTokenizer t;
    if (Status st = t.init(spec, spec.tokens, spec.merges, spec.token_types, source); !st) return st;
    return t;
  }

  // ---- encode / decode ------------------------------------------------------------------
  /// Token ids of `text` (see the file comment). add_special adds BOS/EOS as
  /// the model's flags say; parse_special turns control-token texts such as
  /// "<|im_start|>" into their ids instead of tokenizing them as text.
  Result<std::vector<TokenId>> encode(std::string_view text, bool add_special = true,
                                      bool parse_special = false) const {
    std::vector<TokenId> out;
    if (Status st = encode_append(text, out, add_special, parse_special); !st) return st;
    return out;
  }

  /// Like encode(), appending to `out` (nothing appended on error).
  Status encode_append(std::string_view text, std::vector<TokenId>& out, bool add_special = true,
                       bool parse_special = false) const {
    QLORA_TRY(validate_utf8(text));
    const std::size_t out0 = out.size();
    if (add_special && add_bos_) out.push_back(bos_);
    std::vector<Fragment> frags;
    partition_special(text, parse_special, frags);
    PreTokenizer::Scratch scratch;
    std::vector<std::string_view> pieces;
    WordWork work;
    std::unique_lock<std::mutex> lock(cache_->mu, std::defer_lock);
    if (cache_enabled_) (void)lock.try_lock();
    auto* cache = lock.owns_lock() ? &cache_->map : nullptr;
    for (const Fragment& f : frags) {
      if (f.token != kNoToken) {
        out.push_back(f.token);
        continue;
      }
      if (Status st = pre_.split(text.substr(f.begin, f.len), pieces, scratch); !st) {
        out.resize(out0);
        return st;
      }
      for (std::string_view p : pieces) encode_piece(p, out, work, cache);
    }
    if (add_special && add_eos_) out.push_back(eos_);
    return Status::ok();
  }

  /// Byte offset of the first byte of `text` that has no token of its own in
  /// this vocabulary (SmolLM2 lacks 21 byte tokens: 0x04, 0x06, 0x13, 0x14,
  /// 0x16, 0x1D, and the UTF-8 lead bytes 0xF1/0xF2 of the unassigned planes
  /// 4-11, plus bytes valid UTF-8 never uses), or nullopt. encode() drops such
  /// bytes exactly as llama.cpp does, so decode(encode(s)) == s holds iff this
  /// returns nullopt; callers that must not lose text check it first.
  std::optional<std::size_t> find_unencodable_byte(std::string_view text) const {
    for (std::size_t i = 0; i < text.size(); ++i)
      if (byte_token_[static_cast<unsigned char>(text[i])] >= n_vocab_) return i;
    return std::nullopt;
  }

  /// The bytes of `ids` concatenated. Control/unknown tokens render as their
  /// text when render_special, else as nothing. An id out of range is an error.
  Result<std::string> decode(std::span<const TokenId> ids, bool render_special = true) const {
    std::string out;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (!is_valid(ids[i]))
        return Status::invalid("token id " + std::to_string(ids[i]) + " at index " + std::to_string(i) +
                               " is out of range (vocabulary has " + std::to_string(n_vocab_) + " tokens)");
      out += token_to_piece(ids[i], render_special);
    }
    return out;
  }

  /// The bytes token `id` stands for (llama_token_to_piece); empty for ids out
  /// of range, for control/unknown tokens when !render_special, and for unused
  /// tokens. May be part of a UTF-8 sequence (see utf8_incomplete_tail()).
  std::string_view token_to_piece(TokenId id, bool render_special = true) const {
    if (!is_valid(id)) return {};
    if (!render_special && (attr_[id] & (kAttrControl | kAttrUnknown))) return {};
    return pieces_.at(id);
  }

  // ---- vocabulary -------------------------------------------------------------------------
  std::size_t vocab_size() const { return static_cast<std::size_t>(n_vocab_); }
  bool is_valid(TokenId id) const { return id >= 0 && id < n_vocab_; }
  /// The token's string as stored in the GGUF (byte-level characters).
  /// Throws std::out_of_range for an id outside the vocabulary.
  std::string_view token_text(TokenId id) const {
    if (!is_valid(id)) throw std::out_of_range("token id " + std::to_string(id) + " outside the vocabulary");
    return texts_.at(id);
  }
  TokenType token_type(TokenId id) const { return types_.at(static_cast<std::size_t>(id)); }
  bool is_control(TokenId id) const { return is_valid(id) && (attr_[id] & kAttrControl); }
  /// Id of the token whose stored text is exactly `text`, or kNoToken.
  TokenId find_token(std::string_view text) const {
    const TokenId id = texts_.find(text);
    return id < n_vocab_ ? id : kNoToken;  // kAbsent (-1) is kNoToken; ids >= n_vocab are merge-only symbols
  }
  TokenId bos_id() const { return bos_; }
  TokenId eos_id() const { return eos_; }
  /// End of turn (<|im_end|>, <|eot_id|>, ...), or kNoToken.
  TokenId eot_id() const { return eot_; }
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  /// Tokens that end generation (EOS, EOT and the usual end-of-turn names).
  bool is_eog(TokenId id) const { return std::find(eog_.begin(), eog_.end(), id) != eog_.end(); }
  const std::vector<TokenId>& eog_ids() const { return eog_; }
  const PreTokenizer& pre_tokenizer() const { return pre_; }
  /// Things llama.cpp would log while loading (bad special ids, ...).
  const std::vector<std::string>& warnings() const { return warnings_; }
  std::size_t merge_count() const { return n_merges_; }

  /// Turn the piece cache on (default) or off, e.g. to benchmark cold BPE.
  /// Not to be called while another thread encodes.
  void set_cache_enabled(bool on) {
    cache_enabled_ = on;
    std::lock_guard<std::mutex> g(cache_->mu);
    cache_->map.clear();
  }

 private:
  static constexpr std::uint8_t kAttrNormal = 1, kAttrControl = 2, kAttrUser = 4, kAttrUnknown = 8,
                                kAttrUnused = 16, kAttrByte = 32;

  struct Fragment {
    TokenId token;  // kNoToken for raw text
    std::size_t begin, len;
  };

  // Open-addressing map (left id, right id) -> rank; the merged id by rank.
  // 12-byte slots at load <= 1/2 (the pair kept for the compare, the merged
  // id apart since only an applied merge needs it): ~1.7 MB for 50k merges.
  struct MergeTable {
    struct Slot {
      TokenId a = 0, b = 0;
      std::int32_t rank = -1;  // -1: empty
    };
    std::vector<Slot> slots;
    std::vector<TokenId> result;  // merged id by rank (ranks without a slot: unused)
    std::uint64_t mask = 0;
    static std::uint64_t hash(TokenId a, TokenId b) {
      std::uint64_t k = (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
      k ^= k >> 33;
      k *= 0xff51afd7ed558ccdull;
      k ^= k >> 33;
      return k;
    }
    void reserve(std::size_t n) {
      std::size_t cap = 16;
      while (cap < n * 2) cap <<= 1;
      slots.assign(cap, Slot{});
      mask = cap - 1;
      result.reserve(n);
    }
    // First insertion wins, like llama.cpp's bpe_ranks.emplace. Ranks arrive
    // in increasing order.
    void insert(TokenId a, TokenId b, std::int32_t rank, TokenId merged) {
      if (result.size() <= std::size_t(rank)) result.resize(std::size_t(rank) + 1, kNoToken);
      for (std::uint64_t i = hash(a, b) & mask;; i = (i + 1) & mask) {
        Slot& sl = slots[i];
        if (sl.rank < 0) {
          sl = {a, b, rank};
          result[std::size_t(rank)] = merged;
          return;
        }
        if (sl.a == a && sl.b == b) return;
      }
    }
    /// The rank of merging (a, b), or -1.
    std::int32_t rank_of(TokenId a, TokenId b) const {
      for (std::uint64_t i = hash(a, b) & mask;; i = (i + 1) & mask) {
        const Slot& sl = slots[i];
        if (sl.rank < 0) return -1;
        if (sl.a == a && sl.b == b) return sl.rank;
      }
    }
    TokenId merged(std::int32_t rank) const { return result[std::size_t(rank)]; }
  };

  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Cache {
    std::mutex mu;
    std::unordered_map<std::string, std::vector<TokenId>, StringHash, std::equal_to<>> map;
  };
  static constexpr std::size_t kCacheMaxEntries = 1 << 16;

  struct WordWork {
    struct Sym {
      TokenId id;
      std::int32_t prev, next;
    };
    struct Cand {
      std::int32_t rank, left;
      TokenId left_id, right_id;
    };
    std::vector<Sym> syms;
    std::vector<Cand> heap;
    std::vector<TokenId> out;
  };

  /// `spec` supplies everything but the three arrays, which are passed
  /// separately so that from_gguf can hand over the file's own.
  Status init(const BpeVocabSpec& spec, std::span<const std::string> tokens, std::span<const std::string> merges,
              std::span<const std::int32_t> token_types, const std::string& source) {
    const std::string where = source + ": ";
    if (tokens.empty()) return Status::invalid(where + "tokenizer.ggml.tokens is empty");
    if (tokens.size() > 0x7FFFFFFF) return Status::invalid(where + "too many tokens");
    auto pre = PreTokenizer::from_name(spec.pre);
    if (!pre) return pre.status().with_context(source + ": tokenizer.ggml.pre");
    pre_ = *pre;
    n_vocab_ = static_cast<TokenId>(tokens.size());
    if (!token_types.empty() && token_types.size() < tokens.size())
      return Status::invalid(where + "tokenizer.ggml.token_type has " + std::to_string(token_types.size()) +
                             " entries for " + std::to_string(tokens.size()) + " tokens");
    std::size_t text_bytes = 0;
    for (const std::string& t : tokens) text_bytes += t.size();
    texts_.reserve(tokens.size(), text_bytes);
    types_.resize(tokens.size());
    attr_.resize(tokens.size());
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      const std::string empty = tokens[i].empty() ? "[EMPTY_" + std::to_string(i) + "]" : std::string();  // as llama.cpp
      const std::string_view tv = tokens[i].empty() ? std::string_view(empty) : std::string_view(tokens[i]);
      const std::int32_t t = token_types.empty() ? 1 : token_types[i];
      types_[i] = static_cast<TokenType>(t);
      attr_[i] = t == 1 ? kAttrNormal : t == 2 ? kAttrUnknown : t == 3 ? kAttrControl : t == 4 ? kAttrUser
               : t == 5 ? kAttrUnused : t == 6 ? kAttrByte : 0;
      if (const TokenId first = texts_.find(tv); first != kNoToken)
        return Status::invalid(where + "tokenizer.ggml.tokens holds '" + std::string(tv) + "' twice (ids " +
                               std::to_string(first) + " and " + std::to_string(i) + ")");
      texts_.add(tv);
    }

    // Per-pre-tokenizer flags, as llama.cpp's llama_vocab::impl::load.
    const bool llama3 = pre_.kind() == PreTokenizerKind::kLlama3;
    ignore_merges_ = llama3;
    add_bos_ = spec.add_bos.value_or(llama3);
    add_eos_ = spec.add_eos.value_or(false);
    auto pick = [&](std::optional<TokenId> v, TokenId dflt, const char* what) {
      if (dflt >= n_vocab_) dflt = kNoToken;
      if (!v) return dflt;
      if (*v < 0 || *v >= n_vocab_) {
        warnings_.push_back(std::string("bad special token ") + what + " = " + std::to_string(*v) +
                            ", using the default");
        return dflt;
      }
      return *v;
    };
    bos_ = pick(spec.bos, 11, "bos");  // llama.cpp's defaults for 'gpt2' vocabularies
    eos_ = pick(spec.eos, 11, "eos");
    eot_ = pick(spec.eot, kNoToken, "eot");
    if (add_bos_ && bos_ == kNoToken) return Status::invalid(where + "add_bos_token is true but there is no BOS token");
    if (add_eos_ && eos_ == kNoToken) return Status::invalid(where + "add_eos_token is true but there is no EOS token");

    // End-of-generation names (llama.cpp marks them control and EOG).
    static constexpr std::string_view kEogNames[] = {
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>",
        "_<EOT>", "<|end_of_text|>", "<end_of_utterance>"};
    static constexpr std::string_view kEotNames[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                                                     "<|endoftext|>", "<EOT>", "_<EOT>", "<｜end▁of▁sentence｜>"};
    if (eot_ == kNoToken) {
      for (std::string_view n : kEotNames)
        if (TokenId id = find_token(n); id != kNoToken) {
          eot_ = id;
          break;
        }
    }
    for (std::string_view n : kEogNames)
      if (TokenId id = find_token(n); id != kNoToken) {
        attr_[id] |= kAttrControl;
        eog_.push_back(id);
      }
    for (TokenId id : {eos_, eot_})
      if (id != kNoToken && !is_eog(id)) eog_.push_back(id);
    std::sort(eog_.begin(), eog_.end());
    for (std::string_view n : {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"})
      if (TokenId id = find_token(n); id != kNoToken) attr_[id] = kAttrUser;  // llama.cpp's gpt-oss rule

    // Special tokens, longest text first (ties: lower id first).
    for (TokenId id = 0; id < n_vocab_; ++id)
      if (attr_[id] & (kAttrControl | kAttrUser | kAttrUnknown)) specials_.push_back(id);
    std::stable_sort(specials_.begin(), specials_.end(),
                     [&](TokenId a, TokenId b) { return texts_.at(a).size() > texts_.at(b).size(); });

    // Pieces (llama_token_to_piece with special = true).
    const ByteLevelMap& bl = ByteLevelMap::get();
    pieces_.reserve(tokens.size(), text_bytes);
    for (TokenId id = 0; id < n_vocab_; ++id) pieces_.add(make_piece(id, bl));
    pieces_.shrink_to_fit();

    // Initial symbols: the token of each byte's byte-level character.
    for (int b = 0; b < 256; ++b) {
      std::string ch;
      append_utf8(ch, bl.to_cp[b]);
      byte_token_[b] = symbol_id(ch);
    }
    // Merges.
    merges_.reserve(merges.size() + 16);
    n_merges_ = merges.size();
    for (std::size_t r = 0; r < merges.size(); ++r) {
      const std::string& m = merges[r];
      const std::size_t sp = m.find(' ', 1);
      if (sp == std::string::npos) continue;  // llama.cpp keeps ("", ""), which never matches
      const std::string left = m.substr(0, sp), right = m.substr(sp + 1);
      if (left.empty() || right.empty()) continue;
      const TokenId a = symbol_id(left), b = symbol_id(right);
      const TokenId ab = symbol_id(left + right);
      merges_.insert(a, b, static_cast<std::int32_t>(r), ab);
    }
    texts_.shrink_to_fit();
    if (ignore_merges_) {
      for (TokenId id = 0; id < n_vocab_; ++id)
        if (auto raw = bl.decode(texts_.at(id))) {
          raw_texts_.add(*raw);
          raw_ids_.push_back(id);
        }
      raw_texts_.shrink_to_fit();
    }
    return Status::ok();
  }

  // Id of a BPE symbol string: the token id, or a synthetic id >= n_vocab for
  // strings that merges build but the vocabulary lacks (appended to texts_
  // after the vocabulary, so the synthetic id is its index there).
  TokenId symbol_id(const std::string& s) {
    const TokenId id = texts_.find(s);
    return id != kNoToken ? id : texts_.add(s);
  }

  std::string make_piece(TokenId id, const ByteLevelMap& bl) const {
    const std::string_view t = texts_.at(id);
    const std::uint8_t a = attr_[id];
    if (a & (kAttrControl | kAttrUnknown | kAttrUser)) return std::string(t);
    if (a & kAttrNormal) {
      std::string out;
      std::size_t pos = 0;
      while (pos < t.size()) {
        const Utf8Step st = utf8_decode_at(t, pos);
        const std::size_t len = st.len ? st.len : 1;
        if (st.len && st.cp < 512 && bl.to_byte[st.cp] >= 0) {
          out.push_back(static_cast<char>(bl.to_byte[st.cp]));
        } else {  // llama.cpp's marker for a character outside the byte-level table
          out += "[UNK_BYTE_0x";
          char hex[4];
          for (std::size_t k = 0; k < len; ++k) {
            std::snprintf(hex, sizeof hex, "%02x", static_cast<unsigned>(static_cast<unsigned char>(t[pos + k])));
            out += hex;
          }
          out += t;
          out += ']';
        }
        pos += len;
      }
      return out;
    }
    if (a & kAttrByte) {
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>')
        return std::string(1, static_cast<char>(std::stoi(std::string(t.substr(3, 2)), nullptr, 16)));
      if (auto raw = bl.decode(t); raw && raw->size() == 1) return *raw;
    }
    return {};
  }

  // Cut special tokens out of `text` (llama.cpp's tokenizer_st_partition).
  void partition_special(std::string_view text, bool parse_special, std::vector<Fragment>& frags) const {
    frags.clear();
    if (text.empty()) return;
    frags.push_back({kNoToken, 0, text.size()});
    std::vector<Fragment> next;
    for (TokenId sid : specials_) {
      if (!parse_special && (attr_[sid] & (kAttrControl | kAttrUnknown))) continue;
      const std::string_view st = texts_.at(sid);
      if (text.find(st) == std::string_view::npos) continue;
      next.clear();
      for (const Fragment& f : frags) {
        if (f.token != kNoToken) {
          next.push_back(f);
          continue;
        }
        std::size_t b = f.begin;
        const std::size_t e = f.begin + f.len;
        while (b < e) {
          const std::size_t m = text.substr(0, e).find(st, b);
          if (m == std::string_view::npos) break;
          if (m > b) next.push_back({kNoToken, b, m - b});
          next.push_back({sid, m, st.size()});
          b = m + st.size();
        }
        if (b < e) next.push_back({kNoToken, b, e - b});
      }
      frags.swap(next);
    }
  }

  void encode_piece(std::string_view word, std::vector<TokenId>& out, WordWork& w,
                    std::unordered_map<std::string, std::vector<TokenId>, StringHash, std::equal_to<>>* cache) const {
    if (word.size() == 1) {  // fast path: one byte
      emit(byte_token_[static_cast<unsigned char>(word[0])], out);
      return;
    }
    if (ignore_merges_) {
      if (const std::int32_t i = raw_texts_.find(word); i != StringTable::kAbsent) {
        out.push_back(raw_ids_[std::size_t(i)]);
        return;
      }
    }
    if (cache) {
      auto it = cache->find(word);
      if (it != cache->end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    bpe(word, w);
    if (cache) {
      if (cache->size() >= kCacheMaxEntries) cache->clear();
      cache->emplace(std::string(word), w.out);
    }
    out.insert(out.end(), w.out.begin(), w.out.end());
  }

  void emit(TokenId id, std::vector<TokenId>& out) const {
    if (id < n_vocab_) {
      out.push_back(id);
      return;
    }
    // A symbol the vocabulary lacks: llama.cpp looks up each byte of its text.
    for (char c : texts_.at(id))
      if (const TokenId b = find_token(std::string_view(&c, 1)); b != kNoToken) out.push_back(b);
  }

  // Lowest rank first, then leftmost (llama.cpp's llm_bigram_bpe::comparator).
  static bool worse(const WordWork::Cand& x, const WordWork::Cand& y) {
    return x.rank > y.rank || (x.rank == y.rank && x.left > y.left);
  }

  void try_pair(WordWork& w, std::int32_t left) const {
    if (left < 0) return;
    const std::int32_t right = w.syms[left].next;
    if (right < 0) return;
    const std::int32_t rank = merges_.rank_of(w.syms[left].id, w.syms[right].id);
    if (rank < 0) return;
    w.heap.push_back({rank, left, w.syms[left].id, w.syms[right].id});
    std::push_heap(w.heap.begin(), w.heap.end(), worse);
  }

  void bpe(std::string_view word, WordWork& w) const {
    const auto n = static_cast<std::int32_t>(word.size());
    w.syms.resize(static_cast<std::size_t>(n));
    for (std::int32_t i = 0; i < n; ++i)
      w.syms[i] = {byte_token_[static_cast<unsigned char>(word[i])], i - 1, i + 1 < n ? i + 1 : -1};
    w.heap.clear();
    for (std::int32_t i = 0; i + 1 < n; ++i) try_pair(w, i);
    while (!w.heap.empty()) {
      std::pop_heap(w.heap.begin(), w.heap.end(), worse);
      const WordWork::Cand c = w.heap.back();
      w.heap.pop_back();
      WordWork::Sym& l = w.syms[c.left];
      if (l.id != c.left_id || l.next < 0) continue;  // stale: the left symbol changed
      WordWork::Sym& r = w.syms[l.next];
      if (r.id != c.right_id) continue;  // stale: the right symbol changed
      // merge r into l
      l.id = merges_.merged(c.rank);
      r.id = kNoToken;
      l.next = r.next;
      if (r.next >= 0) w.syms[r.next].prev = c.left;
      try_pair(w, l.prev);
      try_pair(w, c.left);
    }
    w.out.clear();
    for (std::int32_t i = 0; i >= 0; i = w.syms[i].next) emit(w.syms[i].id, w.out);
  }

  PreTokenizer pre_;
  TokenId n_vocab_ = 0;
  StringTable texts_;  // the vocabulary's texts (ids < n_vocab), then merge-only symbols
  std::vector<TokenType> types_;
  std::vector<std::uint8_t> attr_;
  StringArena pieces_;            // llama_token_to_piece bytes per id
  StringTable raw_texts_;         // raw bytes of each token (ignore_merges only) ...
  std::vector<TokenId> raw_ids_;  // ... and its id
  std::array<TokenId, 256> byte_token_{};
  MergeTable merges_;
  std::size_t n_merges_ = 0;
  std::vector<TokenId> specials_;
  std::vector<TokenId> eog_;
  TokenId bos_ = kNoToken, eos_ = kNoToken, eot_ = kNoToken;
  bool add_bos_ = false, add_eos_ = false, ignore_merges_ = false;
  bool cache_enabled_ = true;
  std::vector<std::string> warnings_;
  std::unique_ptr<Cache> cache_ = std::make_unique<Cache>();
};

}  // namespace qlora::text
