// serve/modelfile.hpp: FROM/ADAPTER/TEMPLATE/SYSTEM/PARAMETER lines, and a
// template whose turn markup is the same as our own chat formatting.
#include "qlora/serve/modelfile.hpp"

#include <gtest/gtest.h>

namespace qlora::serve {
namespace {

/// Expand the Go template for one user message without a system prompt —
/// the subset of Go-template semantics our templates use for that case.
std::string expand_single_user(std::string tmpl, const std::string& content) {
  auto cut = [&](const std::string& open, const std::string& close) {
    const std::size_t a = tmpl.find(open);
    if (a == std::string::npos) return std::string();
    const std::size_t b = tmpl.find(close, a);
    std::string inner = tmpl.substr(a + open.size(), b - a - open.size());
    tmpl.erase(a, b + close.size() - a);
    return inner;
  };
  cut("{{- if .System }}", "{{ end }}");  // no system message
  const std::size_t pos = tmpl.find("{{- range .Messages }}");
  std::string body = cut("{{- range .Messages }}", "{{ end }}");
  for (std::string k : {"{{ .Role }}"}) body.replace(body.find(k), k.size(), "user");
  body.replace(body.find("{{ .Content }}"), 14, content);
  tmpl.insert(pos, body);
  return tmpl;
}

TEST(Modelfile, ChatMLAndLlama3MatchOurTemplates) {
  for (const char* name : {"chatml", "llama3"}) {
    auto t = text::ChatTemplate::from_name(name);
    ASSERT_TRUE(t.is_ok());
    t->bos_text.clear();  // Ollama adds BOS from the GGUF, not the template
    std::vector<text::ChatMessage> m{{"user", "質問です"}};
    auto ours = t->apply(m, true);
    ASSERT_TRUE(ours.is_ok());
    EXPECT_EQ(expand_single_user(ollama_template(*t), "質問です"), *ours) << name;
  }
}

TEST(Modelfile, Lines) {
  auto t = text::ChatTemplate::from_name("smollm2");
  ASSERT_TRUE(t.is_ok());
  ModelfileOptions o;
  o.from = "./merged.q4_k_m.gguf";
  o.adapter = "./adapter.gguf";
  const std::string s = modelfile_text(*t, o);
  EXPECT_NE(s.find("\nFROM ./merged.q4_k_m.gguf\n"), std::string::npos) << s;
  EXPECT_NE(s.find("\nADAPTER ./adapter.gguf\n"), std::string::npos);
  EXPECT_NE(s.find("\nTEMPLATE \"\"\"{{- if .System }}<|im_start|>system"), std::string::npos);
  EXPECT_NE(s.find("\nSYSTEM \"\"\"You are a helpful AI assistant named SmolLM"), std::string::npos);
  EXPECT_NE(s.find("\nPARAMETER stop \"<|im_end|>\"\n"), std::string::npos);
  EXPECT_NE(s.find("\nPARAMETER temperature 0\n"), std::string::npos);
  o.adapter.clear();
  EXPECT_EQ(modelfile_text(*t, o).find("ADAPTER"), std::string::npos);
  auto tanuki = text::ChatTemplate::from_name("tanuki");
  EXPECT_NE(modelfile_text(*tanuki, o).find("PARAMETER stop \"</s>\""), std::string::npos);
}

}  // namespace
}  // namespace qlora::serve
