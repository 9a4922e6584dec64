// qlora/pipeline/config.hpp — the configuration of `qlora pipeline` and the
// stage commands, read from TOML, YAML or JSON.
//
// Every field has a default (the struct initialisers below: the paper's
// hyper-parameters, scaled-down sizes for the embedded default live in
// configs/default.toml), so a config names only what it changes. The reader
// is strict: an unknown field — usually a typo that would otherwise be
// silently ignored and run the wrong experiment — and a value of the wrong
// type are errors naming the file, the line (TOML) and the dotted field, with
// what was expected. One table of fields drives reading, checking and writing
// the resolved config back into the report.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string_view>
#include <type_traits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "qlora/core/status.hpp"
#include "qlora/data/csv.hpp"  // read_text_file
#include "qlora/model/model_config.hpp"
#include "qlora/pipeline/toml.hpp"
#include "qlora/pipeline/yaml.hpp"

namespace qlora::pipeline {

struct ModelEntry {
  std::string name;    // label in tables
  std::string path;    // GGUF
  std::string preset;  // optional: a model preset the file must match ("swallow", "qwen2.5-7b", ...)
};

struct PipelineConfig {
  // [run]
  std::string out_dir = "runs/pipeline";
  std::vector<std::int64_t> seeds = {42};
  std::int64_t threads = 0;
  // [data]
  std::string graph;                                // empty: the shipped sample graph
  std::string test_set = "data/test_set.jsonl";
  std::vector<std::int64_t> subsets = {1000, 2000, 3000, 4000, 5000};
  std::int64_t test_questions = 0;                  // 0: all
  // [model]
  std::string model = ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  // [train] — the paper's Stage 1 recipe
  std::int64_t rank = 16;
  double alpha = 16.0;
  double dropout = 0.0;
  double lr = 2e-4;
  double epochs = 3.0;
  std::int64_t batch = 2;
  std::int64_t accum = 4;
  double warmup_ratio = 0.1;
  std::int64_t max_seq_len = 2048;
  std::int64_t max_steps = -1;
  std::string base = "nf4";
  std::string compute = "bf16";
  // [stage1]
  bool stage1 = true;
  // [stage2] — the paper's Stage 2 recipe on several bases
  bool stage2 = true;
  std::vector<ModelEntry> stage2_models;  // empty: [model] only
  std::int64_t stage2_subset = 4000;
  std::int64_t stage2_rank = 32;
  double stage2_dropout = 0.05;
  bool stage2_include_base = true;        // also answer with each untuned base: the reference row
  // [stage3]
  bool stage3 = true;
  std::vector<std::string> formats = {"f16", "q8_0", "q4_k_m"};
  std::string merge_target = "nf4";
  // [judge]
  std::string judge = "offline";  // offline | ollama | openai
  std::string judge_url;
  std::string judge_model = "qwen2.5:14b";
  bool reference = false;
  std::int64_t repeat = 1;
  std::int64_t answer_tokens = 256;
};

namespace config_detail {

using Json = nlohmann::ordered_json;

/// One field: its dotted name, the JSON type it takes (for messages), and how
/// to read / write it.
struct Field {
  const char* name;
  const char* type;
  std::function<bool(const Json&, PipelineConfig&)> read;  // false: wrong type
  std::function<Json(const PipelineConfig&)> write;
};

template <class T>
Field scalar(const char* name, T PipelineConfig::*m) {
  const char* type = std::is_same_v<T, std::string> ? "a string"
                     : std::is_same_v<T, bool>      ? "a boolean"
                     : std::is_same_v<T, double>    ? "a number"
                                                    : "an integer";
  return {name, type,
          [m](const Json& v, PipelineConfig& c) {
            if constexpr (std::is_same_v<T, std::string>) {
              if (!v.is_string()) return false;
            } else if constexpr (std::is_same_v<T, bool>) {
              if (!v.is_boolean()) return false;
            } else if constexpr (std::is_same_v<T, double>) {
              if (!v.is_number()) return false;
            } else {
              if (!v.is_number_integer()) return false;
            }
            c.*m = v.get<T>();
            return true;
          },
          [m](const PipelineConfig& c) { return Json(c.*m); }};
}

template <class T>
Field list(const char* name, std::vector<T> PipelineConfig::*m) {
  return {name, std::is_same_v<T, std::string> ? "an array of strings" : "an array of integers",
          [m](const Json& v, PipelineConfig& c) {
            if (!v.is_array()) return false;
            std::vector<T> out;
            for (const auto& x : v) {
              if constexpr (std::is_same_v<T, std::string>) {
                if (!x.is_string()) return false;
              } else {
                if (!x.is_number_integer()) return false;
              }
              out.push_back(x.get<T>());
            }
            c.*m = std::move(out);
            return true;
          },
          [m](const PipelineConfig& c) { return Json(c.*m); }};
}

inline const std::vector<Field>& fields() {
  static const std::vector<Field> f = {
      scalar("run.out_dir", &PipelineConfig::out_dir),
      list("run.seeds", &PipelineConfig::seeds),
      scalar("run.threads", &PipelineConfig::threads),
      scalar("data.graph", &PipelineConfig::graph),
      scalar("data.test_set", &PipelineConfig::test_set),
      list("data.subsets", &PipelineConfig::subsets),
      scalar("data.test_questions", &PipelineConfig::test_questions),
      scalar("model.path", &PipelineConfig::model),
      scalar("train.rank", &PipelineConfig::rank),
      scalar("train.alpha", &PipelineConfig::alpha),
      scalar("train.dropout", &PipelineConfig::dropout),
      scalar("train.lr", &PipelineConfig::lr),
      scalar("train.epochs", &PipelineConfig::epochs),
      scalar("train.batch", &PipelineConfig::batch),
      scalar("train.accum", &PipelineConfig::accum),
      scalar("train.warmup_ratio", &PipelineConfig::warmup_ratio),
      scalar("train.max_seq_len", &PipelineConfig::max_seq_len),
      scalar("train.max_steps", &PipelineConfig::max_steps),
      scalar("train.base", &PipelineConfig::base),
      scalar("train.compute", &PipelineConfig::compute),
      scalar("stage1.enabled", &PipelineConfig::stage1),
      scalar("stage2.enabled", &PipelineConfig::stage2),
      {"stage2.models", "an array of {name, path, preset} tables (path required)",
       [](const Json& v, PipelineConfig& c) {
         if (!v.is_array()) return false;
         std::vector<ModelEntry> out;
         for (const auto& x : v) {
           if (!x.is_object() || !x.contains("path") || !x["path"].is_string()) return false;
           for (const auto& [k, val] : x.items())
             if ((k != "name" && k != "path" && k != "preset") || !val.is_string()) return false;
           out.push_back({x.value("name", x["path"].get<std::string>()), x["path"].get<std::string>(),
                          x.value("preset", "")});
         }
         c.stage2_models = std::move(out);
         return true;
       },
       [](const PipelineConfig& c) {
         Json a = Json::array();
         for (const auto& m : c.stage2_models) {
           Json e = {{"name", m.name}, {"path", m.path}};
           if (!m.preset.empty()) e["preset"] = m.preset;
           a.push_back(std::move(e));
         }
         return a;
       }},
      scalar("stage2.subset", &PipelineConfig::stage2_subset),
      scalar("stage2.rank", &PipelineConfig::stage2_rank),
      scalar("stage2.dropout", &PipelineConfig::stage2_dropout),
      scalar("stage2.include_base", &PipelineConfig::stage2_include_base),
      scalar("stage3.enabled", &PipelineConfig::stage3),
      list("stage3.formats", &PipelineConfig::formats),
      scalar("stage3.merge_target", &PipelineConfig::merge_target),
      scalar("judge.kind", &PipelineConfig::judge),
      scalar("judge.url", &PipelineConfig::judge_url),
      scalar("judge.model", &PipelineConfig::judge_model),
      scalar("judge.reference", &PipelineConfig::reference),
      scalar("judge.repeat", &PipelineConfig::repeat),
      scalar("judge.answer_tokens", &PipelineConfig::answer_tokens),
  };
  return f;
}

inline std::string json_type(const Json& v) {
  if (v.is_number_integer()) return "integer";
  if (v.is_number_float()) return "float";
  return v.type_name();
}

}  // namespace config_detail

/// Values that parse but make no sense (a rank of 0, an unknown format).
inline Status check_values(const PipelineConfig& c, const std::string& file) {
  auto bad = [&](const std::string& field, const std::string& why) {
    return Status::invalid(file + ": " + field + ": " + why);
  };
  if (c.seeds.empty()) return bad("run.seeds", "needs at least one seed");
  if (c.subsets.empty()) return bad("data.subsets", "needs at least one subset size");
  for (std::int64_t n : c.subsets)
    if (n <= 0) return bad("data.subsets", "sizes must be positive, got " + std::to_string(n));
  if (c.rank <= 0 || c.stage2_rank <= 0) return bad("train.rank / stage2.rank", "ranks must be positive");
  if (c.batch <= 0 || c.accum <= 0) return bad("train.batch / train.accum", "must be positive");
  if (!(c.lr > 0)) return bad("train.lr", "must be positive");
  for (const std::string& f : c.formats)
    if (f != "f16" && f != "q8_0" && f != "q4_k_m") return bad("stage3.formats", "unknown format '" + f + "' (f16, q8_0, q4_k_m)");
  if (c.merge_target != "nf4" && c.merge_target != "original")
    return bad("stage3.merge_target", "'" + c.merge_target + "' is not nf4 or original");
  for (const ModelEntry& m : c.stage2_models)
    if (!m.preset.empty())
      if (auto p = model::presets::find(m.preset); !p) return bad("stage2.models (" + m.name + ").preset", p.status().message());
  if (c.base == "file" && c.merge_target == "nf4")
    return bad("stage3.merge_target", "\"nf4\" merges into an NF4 base, but train.base = \"file\" trains on the base as "
                                      "stored: use \"original\"");
  if (c.judge != "offline" && c.judge != "ollama" && c.judge != "openai")
    return bad("judge.kind", "'" + c.judge + "' is not offline, ollama or openai");
  if (c.repeat < 1) return bad("judge.repeat", "must be at least 1");
  return Status::ok();
}

/// Apply a parsed document onto the defaults. `lines` (from TOML) puts the
/// line of the offending key into errors.
inline Status apply_config(const nlohmann::ordered_json& root, const std::map<std::string, std::size_t>& lines,
                           const std::string& file, PipelineConfig& c) {
  using namespace config_detail;
  auto where = [&](const std::string& field) {
    // Appended piecewise: GCC 12 warns (-Wrestrict, a false positive) on the
    // equivalent chain of operator+.
    std::string s = file;
    if (auto it = lines.find(field); it != lines.end()) {
      s += ':';
      s += std::to_string(it->second);
    }
    s += ": ";
    s += field;
    return s;
  };
  if (!root.is_object()) return Status::invalid(file + ": the config must be a table / JSON object");
  for (const auto& [section, body] : root.items()) {
    std::vector<const Field*> in_section;
    for (const Field& f : fields())
      if (std::string(f.name).rfind(section + ".", 0) == 0) in_section.push_back(&f);
    if (in_section.empty()) {
      std::string valid;
      for (const Field& f : fields()) {
        const std::string s = std::string(f.name).substr(0, std::string(f.name).find('.'));
        if (valid.find("[" + s + "]") == std::string::npos) valid += (valid.empty() ? "" : ", ") + ("[" + s + "]");
      }
      return Status::invalid(where(section) + ": unknown section (valid: " + valid + ")");
    }
    if (!body.is_object()) return Status::invalid(where(section) + ": expected a table, got " + json_type(body));
    for (const auto& [key, value] : body.items()) {
      const std::string name = section + "." + key;
      const Field* hit = nullptr;
      for (const Field* f : in_section)
        if (name == f->name) hit = f;
      if (hit == nullptr) {
        std::string valid;
        for (const Field* f : in_section) valid += (valid.empty() ? "" : ", ") + std::string(f->name).substr(section.size() + 1);
        return Status::invalid(where(name) + ": unknown field (valid in [" + section + "]: " + valid + ")");
      }
      if (!hit->read(value, c))
        return Status::invalid(where(name) + ": expected " + hit->type + ", got " + json_type(value));
    }
  }
  return check_values(c, file);
}

/// Parse config text; `path` names it in errors and its extension picks the
/// syntax (.toml, .yaml / .yml or .json).
inline Result<PipelineConfig> parse_config_text(std::string_view text, const std::string& path) {
  PipelineConfig c;
  auto ends_with = [&](std::string_view suffix) {
    return path.size() >= suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (ends_with(".json")) {
    nlohmann::ordered_json j;
    try {
      j = nlohmann::ordered_json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
      std::size_t line = 1;
      for (std::size_t i = 0; i < e.byte && i < text.size(); ++i) line += text[i] == '\n';
      return Status::invalid(path + ":" + std::to_string(line) + ": invalid JSON (" + e.what() + ")");
    }
    QLORA_TRY(apply_config(j, {}, path, c));
    return c;
  }
  if (ends_with(".yaml") || ends_with(".yml")) {
    auto doc = parse_yaml(text, path);
    if (!doc) return doc.status();
    QLORA_TRY(apply_config(doc->root, doc->lines, path, c));
    return c;
  }
  if (!ends_with(".toml")) return Status::invalid(path + ": a config is .toml, .yaml / .yml or .json");
  auto doc = parse_toml(text, path);
  if (!doc) return doc.status();
  QLORA_TRY(apply_config(doc->root, doc->lines, path, c));
  return c;
}

/// Read a config file: .toml, .yaml / .yml or .json; anything else is refused by name.
inline Result<PipelineConfig> load_config(const std::string& path) {
  auto text = data::read_text_file(path);
  if (!text) return text.status();
  return parse_config_text(*text, path);
}

/// The resolved config as TOML-compatible JSON (for the report).
inline nlohmann::ordered_json config_to_json(const PipelineConfig& c) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const auto& f : config_detail::fields()) {
    const std::string name = f.name;
    const std::size_t dot = name.find('.');
    j[name.substr(0, dot)][name.substr(dot + 1)] = f.write(c);
  }
  return j;
}

}  // namespace qlora::pipeline
