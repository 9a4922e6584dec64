// qlora/data/qa_generate.hpp — knowledge graph → pool of Japanese QA pairs.
//
// Each relationship is read in both directions: every forward question of its
// type (asked about the start node) and every reverse question (asked about
// the end node) from qa_templates.hpp becomes one QA pair; with paraphrases
// on, each question also appears in `paraphrase_variants - 1` decorated forms
// (opener, closer, politer ending). Answers quote both nodes' descriptions
// and always cite the volume and chapter of the standard.
//
// Determinism: every random choice is a pure function of (seed, what is being
// chosen) through a SplitMix64 hash — no std:: distributions, whose output
// differs between standard libraries — so one seed gives byte-identical pools
// on every platform. Paraphrase decorations are keyed by the normalized
// question text, not by the edge, so the same question asked from two edges
// is decorated identically and the de-duplication below collapses it.
//
// De-duplication: questions are compared after normalize_text() (full-width
// ASCII folded to ASCII, case folded, whitespace and punctuation removed);
// the first occurrence is kept, and the summary counts what was removed per
// relation. Duplicates arise when one node has several relations of a type
// (「調査編にはどのような章がありますか？」 once per chapter) — the first
// answer already lists all of them ({ends}).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "qlora/core/status.hpp"
#include "qlora/data/knowledge_graph.hpp"
#include "qlora/core/rng.hpp"
#include "qlora/data/qa_jsonl.hpp"
#include "qlora/data/qa_templates.hpp"

namespace qlora::data {

// ============================================================ UTF-8 and normalization

/// Decode UTF-8; malformed bytes become U+FFFD one byte at a time (so a bad
/// byte never swallows its neighbours).
inline std::u32string utf8_decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    bool ok = len > 0 && i + len <= s.size();
    for (int k = 1; ok && k < len; ++k) {
      const unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d >> 6) != 2) ok = false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if (ok && ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
               (cp >= 0xD800 && cp <= 0xDFFF)))
      ok = false;
    if (!ok) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += len;
  }
  return out;
}

inline void utf8_append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

/// Length in code points (what the paper's "answer length in characters" counts).
inline std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

namespace detail {
inline bool is_space_cp(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200B) ||
         c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000 || c == 0xFEFF;
}
inline bool is_punct_cp(char32_t c) {
  if (c < 0x80) return c > 0x20 && c < 0x7F && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
  if (c >= 0x3000 && c <= 0x303F) return c < 0x3005 || c > 0x3007;  // keep 々 〆 〇, which are letters
  return (c >= 0x2010 && c <= 0x205E) ||  // dashes, quotes, ellipsis, ※
         c == 0x30FB ||                   // ・ katakana middle dot
         (c >= 0xFE30 && c <= 0xFE4F) ||  // CJK compatibility forms
         (c >= 0xFF5F && c <= 0xFF65) ||  // half-width 「」、。・
         c == 0xFFFD || c == 0x00B7 || c == 0x00A7 || c == 0x00B6;
}
}  // namespace detail

/// The comparison form of a text, as code points: NFKC-like width folding of
/// full-width ASCII (Ａ１？ → A1?) and the ideographic space, ASCII case
/// folding, then every whitespace and punctuation character removed — so
/// 「砂防堰堤とは？」 and 「砂防堰堤とは」 compare equal. Shared with
/// test_set_check.hpp, whose n-grams are taken over the same form.
inline std::u32string normalize_codepoints(std::string_view text) {
  std::u32string out;
  for (char32_t c : utf8_decode(text)) {
    if (c >= 0xFF01 && c <= 0xFF5E) c -= 0xFEE0;  // full-width ASCII block → ASCII
    if (c >= 'A' && c <= 'Z') c += 'a' - 'A';
    if (detail::is_space_cp(c) || detail::is_punct_cp(c)) continue;
    out.push_back(c);
  }
  return out;
}

/// normalize_codepoints() re-encoded as UTF-8 (the de-duplication key).
inline std::string normalize_text(std::string_view text) {
  std::string out;
  for (char32_t c : normalize_codepoints(text)) utf8_append(out, c);
  return out;
}

// ============================================================ categories and citations

/// The category a volume string belongs to (調査編 → Survey, 維持管理編（ダム編） → Maintenance-Dam).
inline std::optional<Category> category_of_volume(std::string_view volume) {
  auto has = [&](std::string_view w) { return volume.find(w) != std::string_view::npos; };
  if (has("維持管理")) {
    if (has("ダム")) return Category::MaintenanceDam;
    if (has("砂防")) return Category::MaintenanceSabo;
    if (has("河川")) return Category::MaintenanceRiver;
    return std::nullopt;
  }
  if (has("調査")) return Category::Survey;
  if (has("計画")) return Category::Planning;
  if (has("設計")) return Category::Design;
  return std::nullopt;
}

/// A node's category: its `category` property (either spelling), else the one
/// its `volume` implies; nullopt for nodes outside any volume (the Standard).
inline std::optional<Category> node_category(const Node& n) {
  if (auto c = parse_category(n.prop("category"))) return c;
  return category_of_volume(n.prop("volume"));
}

/// A relationship's category: the endpoints' category when they agree (or
/// only one is known); Comparative/Cross-Cutting when they differ or neither
/// is known — a question that spans two categories compares them.
inline Category relation_category(const Node& start, const Node& end) {
  const auto a = node_category(start), b = node_category(end);
  if (a && b) return *a == *b ? *a : Category::CrossCutting;
  if (a) return *a;
  if (b) return *b;
  return Category::CrossCutting;
}

/// "河川砂防技術基準 <volume> <chapter> <section>" from a node's own
/// properties; "" when the node has no volume or chapter.
inline std::string own_citation(const Node& n) {
  std::string c;
  for (const char* key : {"volume", "chapter", "section"}) {
    const std::string& v = n.prop(key);
    if (!v.empty()) c += (c.empty() ? "" : " ") + v;
  }
  return c.empty() ? c : "河川砂防技術基準 " + c;
}

// ============================================================ options and results

struct GenerateOptions {
  std::uint64_t seed = 42;
  bool paraphrases = false;           // add decorated variants of every question
  int paraphrase_variants = 4;        // questions per template with paraphrases on (the plain one + decorated ones)
  std::size_t max_listed = 8;         // names listed in {ends}/{starts} before 「など」
};

/// What the generator did, per relation type (nothing dropped silently).
struct GenerateSummary {
  std::size_t relationships = 0;                        // relationships in the graph
  std::size_t relationships_used = 0;                   // with a known relation type
  std::size_t generated = 0, kept = 0, duplicates_removed = 0;
  std::map<std::string, std::size_t> generated_per_relation, kept_per_relation, removed_per_relation;
  std::vector<std::string> skipped;                     // one line per skipped relationship: why
};

struct QaPool {
  std::vector<QaPair> pairs;                            // ids qa-000001…, in generation order
  GenerateSummary summary;
};

// ============================================================ template filling

/// Placeholder values for one relationship.
using TemplateFields = std::vector<std::pair<std::string_view, std::string>>;

/// Replace every {key} in `tpl` from `fields`; an unknown key is an error
/// naming it (templates are data, so a typo must not reach a training file).
inline Result<std::string> fill_template(std::string_view tpl, const TemplateFields& fields) {
  std::string out;
  out.reserve(tpl.size() * 2);
  for (std::size_t i = 0; i < tpl.size();) {
    if (tpl[i] != '{') {
      out += tpl[i++];
      continue;
    }
    const std::size_t close = tpl.find('}', i);
    if (close == std::string_view::npos) return Status::invalid("template has an unclosed '{': " + std::string(tpl));
    const std::string_view key = tpl.substr(i + 1, close - i - 1);
    const std::string* value = nullptr;
    for (const auto& [k, v] : fields)
      if (k == key) value = &v;
    if (!value) return Status::invalid("template uses unknown placeholder {" + std::string(key) + "}: " + std::string(tpl));
    out += *value;
    i = close + 1;
  }
  return out;
}

namespace detail {

/// A description as a full sentence: 「。」 appended when it does not end a sentence.
inline std::string as_sentence(const std::string& s) {
  if (s.empty()) return s;
  for (std::string_view end : {"。", "．", "！", "？", ".", "!", "?"})
    if (s.size() >= end.size() && s.compare(s.size() - end.size(), end.size(), end) == 0) return s;
  return s + "。";
}

/// Description of a node, with a label-based fallback so that templates such
/// as 「このうち{start}については、{start_desc}」 always read as sentences.
inline std::string describe(const Node& n) {
  const std::string& d = n.prop("description");
  if (!d.empty()) return as_sentence(d);
  const std::string name = n.prop("name").empty() ? n.id : n.prop("name");
  if (n.has_label("Standard")) return name + "は、河川・砂防の調査、計画、設計、維持管理に関する技術的な基準です。";
  if (n.has_label("Volume")) return name + "は、河川砂防技術基準を構成する編の一つです。";
  return name + "は、河川砂防技術基準で扱われる事項の一つです。";
}

inline std::string join_names(const std::vector<std::string>& names, std::size_t max_listed) {
  std::string s;
  for (std::size_t i = 0; i < names.size() && i < max_listed; ++i) s += (i ? "、" : "") + names[i];
  if (names.size() > max_listed) s += "など";
  return s;
}

/// Decorate a question: opener, closer and/or politer ending, chosen by `draw`.
/// Returns "" when the draw selects no change (the caller tries another draw).
inline std::string decorate_question(const std::string& q, std::uint64_t draw) {
  const std::size_t n_open = std::size(kQuestionOpeners), n_close = std::size(kQuestionClosers);
  const std::size_t opener = bounded(splitmix64(draw ^ 1), n_open);
  const std::size_t closer = bounded(splitmix64(draw ^ 2), n_close);
  const bool polite = bounded(splitmix64(draw ^ 3), 2) == 1;
  std::string core = q;
  bool changed = false;
  if (polite) {
    for (const auto& r : kPoliteEndings) {
      if (core.size() >= r.from.size() && core.compare(core.size() - r.from.size(), r.from.size(), r.from) == 0) {
        core = core.substr(0, core.size() - r.from.size()) + std::string(r.to);
        changed = true;
        break;
      }
    }
  }
  const std::string_view open = kQuestionOpeners[opener], close = kQuestionClosers[closer];
  if (open.empty() && close.empty() && !changed) return "";
  return std::string(open) + core + std::string(close);
}

}  // namespace detail

// ============================================================ generation

/// Generate the de-duplicated QA pool of a graph. Errors only on broken
/// templates; relationships of unknown types are skipped and listed.
inline Result<QaPool> generate_qa(const KnowledgeGraph& g, const GenerateOptions& opt = {}) {
  QaPool pool;
  GenerateSummary& sum = pool.summary;
  sum.relationships = g.relationships.size();
  const int variants = opt.paraphrases ? std::max(1, opt.paraphrase_variants) : 1;

  auto name_of = [&](std::size_t i) -> const std::string& {
    const Node& n = g.nodes[i];
    return n.prop("name").empty() ? n.id : n.prop("name");
  };
  // Citations: a node's own, else that of the first chapter/section/item it is
  // DESCRIBED_IN or DEFINED_IN (concepts often carry no volume themselves).
  std::vector<std::string> own(g.nodes.size()), resolved(g.nodes.size());
  for (std::size_t i = 0; i < g.nodes.size(); ++i) resolved[i] = own[i] = own_citation(g.nodes[i]);
  for (const auto& r : g.relationships)
    if ((r.type == "DESCRIBED_IN" || r.type == "DEFINED_IN") && resolved[r.start].empty()) resolved[r.start] = own[r.end];
  // Neighbour lists for {ends} and {starts}, in graph order.
  std::map<std::pair<std::size_t, std::string>, std::vector<std::string>> ends_of, starts_of;
  for (const auto& r : g.relationships) {
    auto& e = ends_of[{r.start, r.type}];
    if (std::find(e.begin(), e.end(), name_of(r.end)) == e.end()) e.push_back(name_of(r.end));
    auto& s = starts_of[{r.end, r.type}];
    if (std::find(s.begin(), s.end(), name_of(r.start)) == s.end()) s.push_back(name_of(r.start));
  }

  std::unordered_set<std::string> seen;
  for (std::size_t ri = 0; ri < g.relationships.size(); ++ri) {
    const Relationship& r = g.relationships[ri];
    const Node& a = g.nodes[r.start];
    const Node& b = g.nodes[r.end];
    const RelationTemplates* t = find_templates(r.type, b.labels.empty() ? "" : b.labels.front());
    const std::string source = a.id + " -" + r.type + "-> " + b.id;
    if (!t) {
      sum.skipped.push_back("relationship " + source + ": no templates for relation type " + r.type);
      continue;
    }
    ++sum.relationships_used;

    std::string cite = !own[r.end].empty()     ? own[r.end]
                       : !own[r.start].empty() ? own[r.start]
                       : !resolved[r.end].empty() ? resolved[r.end]
                       : !resolved[r.start].empty() ? resolved[r.start]
                                                    : std::string("河川砂防技術基準");
    // Point at the other endpoint's own citation when it is a different place.
    std::string see_also;
    for (const std::string* other : {&own[r.start], &resolved[r.start], &own[r.end]})
      if (!other->empty() && *other != cite && cite.find(*other) == std::string::npos) {
        see_also = "関連する記述は" + *other + "にもあります。";
        break;
      }
    std::string clause_type = b.prop("clause_type").empty() ? a.prop("clause_type") : b.prop("clause_type");
    std::string clause = clause_type.empty() ? "" : "なお、この規定は「" + clause_type + "」に位置づけられています。";

    TemplateFields fields = {
        {"start", name_of(r.start)},
        {"end", name_of(r.end)},
        {"start_desc", detail::describe(a)},
        {"end_desc", detail::describe(b)},
        {"ends", detail::join_names(ends_of[{r.start, r.type}], opt.max_listed)},
        {"starts", detail::join_names(starts_of[{r.end, r.type}], opt.max_listed)},
        {"cite", cite},
        {"see_also", see_also},
        {"clause", clause},
        {"practice", ""},  // last: filled per pair below, since practice sentences use the other fields
    };
    std::string& practice_field = fields.back().second;
    const std::string category = category_name(relation_category(a, b));

    for (int dir = 0; dir < 2; ++dir) {
      const auto questions = dir == 0 ? t->forward_questions : t->reverse_questions;
      const auto answers = dir == 0 ? t->forward_answers : t->reverse_answers;
      for (std::size_t k = 0; k < questions.size(); ++k) {
        auto core = fill_template(questions[k], fields);
        if (!core) return core.status();
        const std::uint64_t qkey = fnv1a64(normalize_text(*core));
        std::vector<std::string> asked{*core};
        for (int v = 1; v < variants; ++v) {
          // A few draws per variant: skip draws that change nothing or repeat a variant.
          for (std::uint64_t attempt = 0; attempt < 16; ++attempt) {
            std::string q = detail::decorate_question(*core, hash_key(opt.seed, {qkey, std::uint64_t(v), attempt}));
            if (!q.empty() && std::find(asked.begin(), asked.end(), q) == asked.end()) {
              asked.push_back(std::move(q));
              break;
            }
          }
        }
        for (std::size_t v = 0; v < asked.size(); ++v) {
          const std::uint64_t h = hash_key(opt.seed, {ri, std::uint64_t(dir), k, v});
          auto practice = fill_template(t->practices[bounded(splitmix64(h ^ 7), t->practices.size())], fields);
          if (!practice) return practice.status();
          practice_field = *practice;
          auto answer = fill_template(answers[bounded(h, answers.size())], fields);
          if (!answer) return answer.status();
          ++sum.generated;
          ++sum.generated_per_relation[r.type];
          if (!seen.insert(normalize_text(asked[v])).second) {
            ++sum.duplicates_removed;
            ++sum.removed_per_relation[r.type];
            continue;
          }
          ++sum.kept_per_relation[r.type];
          char id[24];
          std::snprintf(id, sizeof id, "qa-%06zu", pool.pairs.size() + 1);
          QaPair p;
          p.id = id;
          p.question = asked[v];
          p.answer = std::move(*answer);
          p.relation = r.type;
          p.category = category;
          p.source = source;
          pool.pairs.push_back(std::move(p));
        }
      }
    }
  }
  sum.kept = pool.pairs.size();
  return pool;
}

}  // namespace qlora::data
