// qlora/convert/hf_tokenizer.hpp — a Hugging Face byte-level BPE tokenizer
// (tokenizer.json, tokenizer_config.json, chat template files) as the
// tokenizer.ggml.* / tokenizer.chat_template keys llama.cpp's converter
// writes for it (its "gpt2" vocabulary path), in the same order and types.
//
// Vocabulary: one entry per id below config.json's vocab_size. The model's
// vocab and the added tokens give the strings; ids nobody names become
// "[PAD<id>]" of type UNUSED (Qwen2.5 pads its embedding matrix this way).
// An added token is CONTROL if it is special or looks like a control token
// (<|...|>, <｜...｜>, <pad>, <mask>, <unused...>, ...), else USER_DEFINED
// with SentencePiece's ▁ turned back into a space; model tokens are NORMAL.
//
// Pre-tokenizer name: the reference hashes the ids its tokenizer gives for a
// fixed test string and looks the hash up in a table of known models. We
// cannot run Hugging Face's tokenizer, so we read the pipeline that
// tokenizer.json declares instead and name the one of ours it is:
//   ByteLevel(use_regex)                          -> gpt-2
//   Digits(individual) + ByteLevel(use_regex)     -> smollm
//   Split(Llama-3 regex) + ByteLevel(no regex)    -> llama-bpe
//   Split(Qwen2 regex) + ByteLevel(no regex)      -> qwen2
// For the models these names come from (SmolLM2, Llama-3 and its Japanese
// continuations, Qwen2.5) that is the name the hash gives. Where the two
// differ — a new vocabulary with a known pipeline, which the reference
// refuses as unrecognised — we still convert, and the split is the one the
// tokenizer declares.
//
// Special tokens follow gguf-py's SpecialVocab: ids by content from
// tokenizer_config.json's <typ>_token looked up among the added tokens, then
// config.json's <typ>_token_id for types still unset; add_bos/add_eos/add_sep
// from the post-processor (ByteLevel: no BOS/EOS; a TemplateProcessing that
// starts with BOS adds it; ...) and then from tokenizer_config.json's
// add_<typ>_token. A SentencePiece tokenizer (tokenizer.model, or a BPE with
// byte_fallback) is refused: qlora's tokenizer is byte-level BPE only.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "qlora/convert/hf_config.hpp"
#include "qlora/core/status.hpp"
#include "qlora/io/gguf.hpp"

namespace qlora::convert {

/// Hugging Face's spelling of the two Split regexes we recognise.
inline constexpr std::string_view kHfLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline constexpr std::string_view kHfQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

/// An ordered list of GGUF KV records where setting an existing key keeps
/// its position (gguf-py's dict semantics, which the reference relies on
/// when it overrides add_bos_token after the special vocabulary).
class GgufKvList {
 public:
  void set(std::string key, io::GgufValue v) {
    for (auto& kv : kvs_)
      if (kv.key == key) {
        kv.value = std::move(v);
        return;
      }
    kvs_.push_back({std::move(key), std::move(v)});
  }
  const io::GgufValue* find(std::string_view key) const {
    for (const auto& kv : kvs_)
      if (kv.key == key) return &kv.value;
    return nullptr;
  }
  const std::vector<io::GgufKv>& items() const { return kvs_; }

 private:
  std::vector<io::GgufKv> kvs_;
};

namespace detail {

inline const nlohmann::json* json_field(const nlohmann::json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  const auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

inline bool json_flag(const nlohmann::json& obj, std::string_view key, bool fallback) {
  const nlohmann::json* v = json_field(obj, key);
  return v && v->is_boolean() ? v->get<bool>() : fallback;
}

inline std::string json_type(const nlohmann::json& obj) {
  const nlohmann::json* t = json_field(obj, "type");
  return t && t->is_string() ? t->get<std::string>() : std::string();
}

/// The reference's does_token_look_special.
inline bool looks_special(std::string_view t) {
  auto wrapped = [&](std::string_view open, std::string_view close) {
    return t.size() >= open.size() + close.size() && t.substr(0, open.size()) == open &&
           t.substr(t.size() - close.size()) == close;
  };
  return t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]" || wrapped("<|", "|>") ||
         wrapped("<\xEF\xBD\x9C", "\xEF\xBD\x9C>") || wrapped("<unused", ">");
}

inline std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (std::size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size()) s.replace(p, from.size(), to);
  return s;
}

}  // namespace detail

/// tokenizer.json's pre_tokenizer -> the GGUF pre-tokenizer name (see the
/// file comment), or an error describing the pipeline.
inline Result<std::string> hf_pre_tokenizer_name(const nlohmann::json& tok, const std::string& file) {
  using detail::json_field;
  using detail::json_flag;
  using detail::json_type;
  const nlohmann::json* pre = json_field(tok, "pre_tokenizer");
  auto unsupported = [&](const std::string& what) {
    return Status::unsupported(file + ": pre_tokenizer " + what +
                               " is not one qlora's tokenizer implements (byte-level BPE with the GPT-2, SmolLM, "
                               "Llama-3 or Qwen2 split)");
  };
  if (!pre) return unsupported("(none)");
  auto byte_level = [&](const nlohmann::json& p, bool want_regex) {
    return json_type(p) == "ByteLevel" && !json_flag(p, "add_prefix_space", false) &&
           json_flag(p, "use_regex", true) == want_regex;
  };
  if (byte_level(*pre, true)) return std::string("gpt-2");
  const nlohmann::json* seq = json_type(*pre) == "Sequence" ? json_field(*pre, "pretokenizers") : nullptr;
  if (seq && seq->is_array() && seq->size() == 2) {
    const auto& a = (*seq)[0];
    const auto& b = (*seq)[1];
    if (json_type(a) == "Digits" && json_flag(a, "individual_digits", false) && byte_level(b, true))
      return std::string("smollm");
    if (json_type(a) == "Split" && byte_level(b, false) && !json_flag(a, "invert", false)) {
      const nlohmann::json* behavior = json_field(a, "behavior");
      const nlohmann::json* pattern = json_field(a, "pattern");
      const nlohmann::json* regex = pattern ? json_field(*pattern, "Regex") : nullptr;
      if (behavior && *behavior == "Isolated" && regex && regex->is_string()) {
        if (regex->get<std::string>() == kHfLlama3Regex) return std::string("llama-bpe");
        if (regex->get<std::string>() == kHfQwen2Regex) return std::string("qwen2");
      }
    }
  }
  return unsupported(pre->dump().substr(0, 300));
}

/// What convert_hf needs from the tokenizer files: the KV records, and how
/// many of the ids are real tokens (for the report).
struct HfTokenizerKvs {
  GgufKvList kvs;
  std::size_t n_tokens = 0, n_unused = 0, n_control = 0, n_merges = 0;
  std::string pre;
};

namespace detail {

/// tokenizer_config.json's "<typ>_token": a string, or {"content": ...}.
inline std::optional<std::string> special_content(const nlohmann::json* v) {
  if (!v) return std::nullopt;
  if (v->is_string()) return v->get<std::string>();
  if (v->is_object())
    if (const nlohmann::json* c = json_field(*v, "content"); c && c->is_string()) return c->get<std::string>();
  return std::nullopt;
}

/// gguf-py's SpecialVocab for a tokenizer.json, as ordered maps.
struct SpecialTokens {
  std::vector<std::string> types{"bos", "eos", "unk", "sep", "pad", "cls", "mask"};
  std::vector<std::pair<std::string, std::int64_t>> ids;  // insertion order
  std::vector<std::pair<std::string, bool>> add;         // insertion order

  void set_id(const std::string& typ, std::int64_t id) {
    for (const auto& e : ids)
      if (e.first == typ) return;  // first one wins
    ids.emplace_back(typ, id);
  }
  void set_add(const std::string& typ, bool v, bool overwrite) {
    for (auto& e : add)
      if (e.first == typ) {
        if (overwrite) e.second = v;
        return;
      }
    add.emplace_back(typ, v);
  }
};

inline std::optional<std::string> template_special(const nlohmann::json& item) {
  const nlohmann::json* st = json_field(item, "SpecialToken");
  const nlohmann::json* id = st ? json_field(*st, "id") : nullptr;
  if (id && id->is_string() && !id->get<std::string>().empty()) return id->get<std::string>();
  return std::nullopt;
}
inline std::optional<std::string> template_sequence(const nlohmann::json& item) {
  const nlohmann::json* sq = json_field(item, "Sequence");
  const nlohmann::json* id = sq ? json_field(*sq, "id") : nullptr;
  if (id && id->is_string()) return id->get<std::string>();
  return std::nullopt;
}

/// Python truthiness of a JSON value (None, "", {}, [], 0 and false are false).
inline bool truthy(const nlohmann::json& v) {
  if (v.is_null()) return false;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_string() || v.is_object() || v.is_array()) return !v.empty();
  if (v.is_number()) return v.get<double>() != 0;
  return true;
}

/// Python `s in (a, b)` for a token string s against raw config values (a
/// dict never equals a string, which the reference's comparisons inherit).
inline bool raw_is(const std::optional<std::string>& s, const nlohmann::json& v) {
  return s && v.is_string() && v.get<std::string>() == *s;
}

/// The post-processor's say on add_bos/add_eos/add_sep, with the
/// tokenizer_config entries it fills in — SpecialVocab's logic, comparing
/// the raw tokenizer_config values as it does.
inline void apply_post_processor(const nlohmann::json& tok, nlohmann::json& tc, bool have_tc, SpecialTokens& sp) {
  const nlohmann::json* pp = json_field(tok, "post_processor");
  if (!pp) return;
  std::vector<const nlohmann::json*> procs;
  if (const nlohmann::json* list = json_field(*pp, "processors"); list && list->is_array()) {
    for (const auto& p : *list) procs.push_back(&p);
  } else {
    procs.push_back(pp);
  }
  auto raw = [&](const char* k) { return have_tc && tc.contains(k) ? tc[k] : nlohmann::json(); };
  nlohmann::json bos = raw("bos_token"), eos = raw("eos_token"), sep = raw("sep_token"), cls = raw("cls_token");
  auto has_type = [&](const char* t) { return std::find(sp.types.begin(), sp.types.end(), t) != sp.types.end(); };
  for (const nlohmann::json* p : procs) {
    const std::string type = json_type(*p);
    if (type == "ByteLevel") {
      sp.set_add("bos", false, false);
      sp.set_add("eos", false, false);
    } else if (type == "RobertaProcessing") {
      sp.set_add("bos", true, true);
      sp.set_add("eos", true, true);
      sp.set_add("sep", true, true);
      if (!truthy(cls) && have_tc) {
        const nlohmann::json* c = json_field(*p, "cls");
        tc["cls_token"] = cls = (c && c->is_array() && !c->empty()) ? (*c)[0] : bos;
      }
      if (!truthy(sep) && have_tc) {
        const nlohmann::json* s = json_field(*p, "sep");
        tc["sep_token"] = sep = (s && s->is_array() && !s->empty()) ? (*s)[0] : eos;
      }
    } else if (type == "TemplateProcessing") {
      const nlohmann::json* single = json_field(*p, "single");
      const nlohmann::json* pair = json_field(*p, "pair");
      std::optional<std::string> first, last;
      if (single && single->is_array() && single->size() > 1) {
        if ((first = template_special(single->front()))) {
          if (!have_tc) {
            bos = *first;
          } else if (!raw_is(first, bos) && !raw_is(first, cls)) {
            if (!truthy(bos)) tc["bos_token"] = bos = *first;
            if (!truthy(cls)) tc["cls_token"] = cls = *first;
          }
          sp.set_add("bos", raw_is(first, bos) || raw_is(first, cls), true);
        }
        if ((last = template_special(single->back()))) {
          if (!have_tc) {
            eos = *last;
          } else if (!raw_is(last, eos)) {
            if (!has_type("eot")) {
              sp.types.push_back("eot");
              tc["eot_token"] = eos;
            } else if (!has_type("eom")) {
              sp.types.push_back("eom");
              tc["eom_token"] = eos;
            }
            tc["eos_token"] = eos = *last;
          }
          sp.set_add("eos", raw_is(last, eos), true);
        }
      }
      if (pair && pair->is_array() && !pair->empty()) {
        const std::vector<nlohmann::json> items(pair->begin(), pair->end());
        const std::size_t start = first && template_special(items.front()) == first ? 1 : 0;
        const bool drop_last = last && template_special(items.back()) == last;
        const std::size_t stop = items.size() - (drop_last ? 1 : 0);
        if (start < stop) {
          const std::vector<nlohmann::json> mid(items.begin() + std::ptrdiff_t(start), items.begin() + std::ptrdiff_t(stop));
          // "A [sep] [eos] B": whether a separator goes between the two.
          if (template_sequence(mid.front()) == "A" && template_sequence(mid.back()) == "B" && mid.size() > 2) {
            bool add_sep = false;
            if (auto e = template_special(mid[1]); e && (raw_is(e, sep) || raw_is(e, eos)) && !last) add_sep = true;
            if (mid.size() == 4)
              if (auto e = template_special(mid[2]); e && (raw_is(e, sep) || raw_is(e, eos))) add_sep = true;
            sp.set_add("sep", add_sep, true);
            if (add_sep && !truthy(sep) && have_tc) tc["sep_token"] = eos;
          }
        }
      }
    }
  }
}

}  // namespace detail

/// Read `dir`'s tokenizer files into the GGUF tokenizer keys. `cfg` gives
/// vocab_size and the architecture; `config_json` is config.json as parsed
/// (its <typ>_token_id fields are the last source of special ids).
inline Result<HfTokenizerKvs> read_hf_tokenizer(const std::filesystem::path& dir, const HfModelConfig& cfg,
                                                const nlohmann::json& config_json) {
  namespace fs = std::filesystem;
  using detail::json_field;
  const fs::path tok_path = dir / "tokenizer.json";
  if (fs::exists(dir / "tokenizer.model"))
    return Status::unsupported((dir / "tokenizer.model").string() +
                               ": a SentencePiece vocabulary; qlora converts byte-level BPE tokenizers (tokenizer.json) only");
  if (!fs::exists(tok_path))
    return Status::invalid(dir.string() + ": no tokenizer.json (a byte-level BPE tokenizer is needed to convert)");
  auto tok = read_json_file(tok_path.string());
  if (!tok) return tok.status();
  const std::string tfile = tok_path.string();
  const nlohmann::json* model = json_field(*tok, "model");
  if (!model || detail::json_type(*model) != "BPE")
    return Status::unsupported(tfile + ": model.type is '" + (model ? detail::json_type(*model) : std::string()) +
                               "'; qlora converts byte-level BPE tokenizers only (a Unigram model is a SentencePiece "
                               "vocabulary, as Tanuki-8B's is)");
  if (detail::json_flag(*model, "byte_fallback", false))
    return Status::unsupported(tfile + ": a BPE with byte_fallback is a SentencePiece-style vocabulary; "
                               "qlora's tokenizer is byte-level BPE only");
  const nlohmann::json* vocab = json_field(*model, "vocab");
  if (!vocab || !vocab->is_object()) return Status::invalid(tfile + ": model.vocab must be an object");

  HfTokenizerKvs out;
  auto pre = hf_pre_tokenizer_name(*tok, tfile);
  if (!pre) return pre.status();
  out.pre = *pre;

  // id -> string, and the added tokens by id and by content.
  const std::int64_t n_vocab = cfg.vocab_size;
  std::vector<std::optional<std::string>> by_id(static_cast<std::size_t>(n_vocab));
  auto place = [&](std::int64_t id, const std::string& s, const std::string& where) -> Status {
    if (id < 0 || id >= n_vocab)
      return Status::invalid(tfile + ": " + where + " id " + std::to_string(id) + " of '" + s +
                             "' is outside config.json's vocab_size " + std::to_string(n_vocab));
    by_id[std::size_t(id)] = s;
    return Status::ok();
  };
  for (const auto& [s, id] : vocab->items()) {
    if (!id.is_number_integer()) return Status::invalid(tfile + ": model.vocab['" + s + "'] is not an integer id");
    QLORA_TRY(place(id.get<std::int64_t>(), s, "model.vocab"));
  }
  struct Added {
    std::string content;
    bool special = false;
  };
  std::map<std::int64_t, Added> added_by_id;
  std::map<std::string, std::int64_t> added_by_content;
  std::vector<std::pair<std::string, std::int64_t>> added_list;  // file order, for special-id lookup
  if (const nlohmann::json* added = json_field(*tok, "added_tokens")) {
    if (!added->is_array()) return Status::invalid(tfile + ": added_tokens must be a list");
    for (std::size_t i = 0; i < added->size(); ++i) {
      const auto& a = (*added)[i];
      const nlohmann::json* id = json_field(a, "id");
      const nlohmann::json* content = json_field(a, "content");
      if (!id || !id->is_number_integer() || !content || !content->is_string())
        return Status::invalid(tfile + ": added_tokens[" + std::to_string(i) + "] needs an integer id and a string content");
      const std::int64_t tid = id->get<std::int64_t>();
      const std::string c = content->get<std::string>();
      QLORA_TRY(place(tid, c, "added_tokens[" + std::to_string(i) + "]"));
      added_by_id[tid] = {c, detail::json_flag(a, "special", false)};
      added_by_content[c] = tid;
      added_list.emplace_back(c, tid);
    }
  }

  std::vector<std::string> tokens;
  std::vector<std::int32_t> types;
  tokens.reserve(std::size_t(n_vocab));
  types.reserve(std::size_t(n_vocab));
  for (std::int64_t i = 0; i < n_vocab; ++i) {
    const auto& s = by_id[std::size_t(i)];
    if (!s) {
      tokens.push_back("[PAD" + std::to_string(i) + "]");
      types.push_back(5);  // UNUSED
      ++out.n_unused;
      continue;
    }
    std::string t = *s;
    std::int32_t type = 1;  // NORMAL
    if (added_by_content.count(t)) {
      const auto it = added_by_id.find(i);
      const bool special = it != added_by_id.end() ? it->second.special : false;
      if (special || detail::looks_special(t)) {
        type = 3;  // CONTROL
        ++out.n_control;
      } else {
        t = detail::replace_all(std::move(t), "\xE2\x96\x81", " ");
        type = 4;  // USER_DEFINED
      }
    }
    tokens.push_back(std::move(t));
    types.push_back(type);
  }
  out.n_tokens = tokens.size();

  // Merges: "a b" strings, or [a, b] pairs whose spaces become U+0120.
  std::vector<std::string> merges;
  if (const nlohmann::json* m = json_field(*model, "merges")) {
    if (!m->is_array()) return Status::invalid(tfile + ": model.merges must be a list");
    merges.reserve(m->size());
    for (std::size_t i = 0; i < m->size(); ++i) {
      const auto& e = (*m)[i];
      if (e.is_string()) {
        merges.push_back(e.get<std::string>());
      } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
        merges.push_back(detail::replace_all(e[0].get<std::string>(), " ", "\xC4\xA0") + " " +
                         detail::replace_all(e[1].get<std::string>(), " ", "\xC4\xA0"));
      } else {
        return Status::invalid(tfile + ": model.merges[" + std::to_string(i) + "] is neither \"a b\" nor [a, b]");
      }
    }
  }
  out.n_merges = merges.size();

  // tokenizer_config.json (optional) and the special tokens.
  nlohmann::json tc;
  bool have_tc = false;
  const fs::path tc_path = dir / "tokenizer_config.json";
  if (fs::exists(tc_path)) {
    auto j = read_json_file(tc_path.string());
    if (!j) return j.status();
    if (!j->is_object()) return Status::invalid(tc_path.string() + ": expected a JSON object");
    tc = std::move(*j);
    have_tc = !tc.empty();  // the reference tests the dict's truth
  }
  detail::SpecialTokens sp;
  if (have_tc) {
    auto raw = [&](const char* k) { return tc.contains(k) ? tc[k] : nlohmann::json(); };
    if (!detail::truthy(raw("bos_token")) && detail::truthy(raw("cls_token"))) tc["bos_token"] = raw("cls_token");
    if (!detail::truthy(raw("eos_token")) && detail::truthy(raw("sep_token"))) tc["eos_token"] = raw("sep_token");
  }
  detail::apply_post_processor(*tok, tc, have_tc, sp);

  std::optional<std::string> chat_template;
  std::vector<std::pair<std::string, std::string>> named_templates;  // name -> template
  if (have_tc) {
    // Chat template: tokenizer_config.json, else chat_template.jinja (with
    // additional_chat_templates/*.jinja as named ones), else chat_template.json.
    nlohmann::json alt;
    const fs::path jinja = dir / "chat_template.jinja", tjson = dir / "chat_template.json";
    if (fs::exists(jinja)) {
      auto t = read_text_file(jinja.string());
      if (!t) return t.status();
      alt = *t;
      const fs::path extra = dir / "additional_chat_templates";
      if (fs::is_directory(extra)) {
        std::vector<fs::path> files;
        for (const auto& e : fs::directory_iterator(extra))
          if (e.path().extension() == ".jinja") files.push_back(e.path());
        std::sort(files.begin(), files.end());
        if (!files.empty()) {
          nlohmann::json list = nlohmann::json::array({{{"name", "default"}, {"template", alt}}});
          for (const auto& f : files) {
            auto t2 = read_text_file(f.string());
            if (!t2) return t2.status();
            list.push_back({{"name", f.stem().string()}, {"template", *t2}});
          }
          alt = std::move(list);
        }
      }
    } else if (fs::exists(tjson)) {
      auto j = read_json_file(tjson.string());
      if (!j) return j.status();
      if (const nlohmann::json* c = json_field(*j, "chat_template")) alt = *c;
    }
    const nlohmann::json ct = tc.contains("chat_template") ? tc["chat_template"] : alt;
    if (ct.is_string()) {
      chat_template = ct.get<std::string>();
    } else if (ct.is_array()) {
      for (const auto& choice : ct) {
        const nlohmann::json* n = json_field(choice, "name");
        const nlohmann::json* t = json_field(choice, "template");
        std::string name = n && n->is_string() ? n->get<std::string>() : "";
        for (char& ch : name)
          if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))) ch = '_';
        if (name.empty() || !t || !t->is_string()) continue;
        if (name == "default") chat_template = t->get<std::string>();
        else named_templates.emplace_back(name, t->get<std::string>());
      }
    }
    for (const std::string& typ : sp.types) {
      if (const nlohmann::json* a = json_field(tc, "add_" + typ + "_token"); a && a->is_boolean())
        sp.set_add(typ, a->get<bool>(), false);
      const auto content = detail::special_content(json_field(tc, typ + "_token"));
      if (!content) continue;
      for (const auto& [c, id] : added_list)
        if (c == *content) {
          sp.set_id(typ, id);
          break;
        }
    }
  }
  for (const std::string& typ : sp.types) {
    const nlohmann::json* id = json_field(config_json, typ + "_token_id");
    if (id && id->is_number_integer()) {
      if (id->get<std::int64_t>() < 0)
        return Status::invalid("config.json: " + typ + "_token_id " + id->dump() + " is negative");
      sp.set_id(typ, id->get<std::int64_t>());
    }
  }

  // Emit, in the reference's order.
  GgufKvList& kv = out.kvs;
  if (cfg.arch == HfArch::kLlama && have_tc)
    if (const nlohmann::json* a = json_field(tc, "add_prefix_space"); a && a->is_boolean())
      kv.set("tokenizer.ggml.add_space_prefix", io::GgufValue(a->get<bool>()));
  kv.set("tokenizer.ggml.model", io::GgufValue("gpt2"));
  kv.set("tokenizer.ggml.pre", io::GgufValue(std::string_view(out.pre)));
  kv.set("tokenizer.ggml.tokens", io::GgufValue(std::move(tokens)));
  kv.set("tokenizer.ggml.token_type", io::GgufValue(std::move(types)));
  if (!merges.empty()) kv.set("tokenizer.ggml.merges", io::GgufValue(std::move(merges)));
  static const std::map<std::string, std::string> kIdKey = {
      {"bos", "bos_token_id"},   {"eos", "eos_token_id"},      {"unk", "unknown_token_id"},
      {"sep", "seperator_token_id"}, {"pad", "padding_token_id"}, {"mask", "mask_token_id"},
      {"eot", "eot_token_id"},   {"eom", "eom_token_id"}};  // no "cls": the reference has no key for it
  for (const auto& [typ, id] : sp.ids) {
    const auto k = kIdKey.find(typ);
    if (k == kIdKey.end()) continue;
    if (id > std::int64_t(0xFFFFFFFF)) return Status::invalid("special token " + typ + " id is out of range");
    kv.set("tokenizer.ggml." + k->second, io::GgufValue(std::uint32_t(id)));
  }
  for (const auto& [typ, v] : sp.add)
    if (typ == "bos" || typ == "eos" || typ == "sep") kv.set("tokenizer.ggml.add_" + typ + "_token", io::GgufValue(v));
  if (!named_templates.empty()) {
    std::sort(named_templates.begin(), named_templates.end());  // the reference's order is a set's
    std::vector<std::string> names;
    for (const auto& [n, t] : named_templates) {
      kv.set("tokenizer.chat_template." + n, io::GgufValue(std::string_view(t)));
      names.push_back(n);
    }
    kv.set("tokenizer.chat_templates", io::GgufValue(std::move(names)));
  }
  if (chat_template) kv.set("tokenizer.chat_template", io::GgufValue(std::string_view(*chat_template)));
  // Normalizer flags (Lowercase / StripAccents / BertNormalizer, nested in Sequence).
  std::optional<bool> lower, strip;
  std::function<void(const nlohmann::json&)> norm = [&](const nlohmann::json& n) {
    const std::string t = detail::json_type(n);
    if (t == "Lowercase") lower = true;
    else if (t == "StripAccents") strip = true;
    else if (t == "BertNormalizer") {
      if (const nlohmann::json* v = json_field(n, "lowercase")) lower = v->is_boolean() && v->get<bool>();
      if (const nlohmann::json* v = json_field(n, "strip_accents")) strip = v->is_boolean() && v->get<bool>();
    } else if (t == "Sequence") {
      if (const nlohmann::json* l = json_field(n, "normalizers"); l && l->is_array())
        for (const auto& x : *l) norm(x);
    }
  };
  if (const nlohmann::json* n = json_field(*tok, "normalizer")) norm(*n);
  if (lower) kv.set("tokenizer.ggml.normalizer.lowercase", io::GgufValue(*lower));
  if (strip) kv.set("tokenizer.ggml.normalizer.strip_accents", io::GgufValue(*strip));

  // llama.cpp's LlamaModel turns BOS off for every 49152-token vocabulary
  // (meant for Granite's small models; it catches SmolLM2 too). The key
  // keeps its place if the special vocabulary already set it.
  if (cfg.arch == HfArch::kLlama && cfg.vocab_size == 49152)
    kv.set("tokenizer.ggml.add_bos_token", io::GgufValue(false));
  return out;
}

}  // namespace qlora::convert
