// qlora/serve/modelfile.hpp — an Ollama Modelfile for an exported model.
//
// For users who deploy to Ollama itself: FROM the GGUF, ADAPTER the GGUF LoRA
// (when the adapter is not merged), TEMPLATE the model's chat format in
// Ollama's Go-template syntax, SYSTEM the default system prompt, and
// PARAMETER lines for the end-of-turn stop string and greedy decoding (the
// paper's comparison). A Modelfile without TEMPLATE is a known source of bad
// answers after export (Ollama falls back to a bare prompt), so the template
// always comes from the same ChatTemplate our own generation uses; the turn
// markup below mirrors ChatTemplate::apply for each ChatFormat.
#pragma once

#include <string>

#include "qlora/text/chat_template.hpp"

namespace qlora::serve {

struct ModelfileOptions {
  std::string from;       // path of the GGUF (relative to the Modelfile, or absolute)
  std::string adapter;    // optional GGUF LoRA
  float temperature = 0.0f;
  unsigned num_ctx = 4096;
};

/// The chat format as an Ollama Go template.
inline std::string ollama_template(const text::ChatTemplate& t) {
  switch (t.format) {
    case text::ChatFormat::kChatML:
      return "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
             "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
             "<|im_start|>assistant\n";
    case text::ChatFormat::kLlama3:
      return "{{- if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}"
             "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>"
             "{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n";
    case text::ChatFormat::kJapaneseAlpaca:
      return "{{- if .System }}{{ .System }}\n\n{{ end }}"
             "{{- range .Messages }}{{ if eq .Role \"user\" }}### 指示:\n{{ .Content }}\n\n"
             "{{ else if eq .Role \"assistant\" }}### 応答:\n{{ .Content }}</s>\n\n{{ end }}{{ end }}### 応答:\n";
  }
  return "";
}

inline std::string modelfile_text(const text::ChatTemplate& t, const ModelfileOptions& o) {
  std::string s = "# Ollama Modelfile written by qlora (chat template: " + t.name + ")\n";
  s += "FROM " + o.from + "\n";
  if (!o.adapter.empty()) s += "ADAPTER " + o.adapter + "\n";
  s += "TEMPLATE \"\"\"" + ollama_template(t) + "\"\"\"\n";
  if (!t.default_system.empty()) s += "SYSTEM \"\"\"" + t.default_system + "\"\"\"\n";
  s += "PARAMETER stop \"" + std::string(t.end_of_turn()) + "\"\n";
  char buf[64];
  std::snprintf(buf, sizeof buf, "PARAMETER temperature %g\n", double(o.temperature));
  s += buf;
  s += "PARAMETER num_ctx " + std::to_string(o.num_ctx) + "\n";
  return s;
}

}  // namespace qlora::serve
