// qlora/text/chat_template.hpp — the chat formats the paper's models were
// trained on, rendered without a Jinja engine.
//
//   ChatML (SmolLM2, Qwen2.5):
//     <|im_start|>{role}\n{content}<|im_end|>\n ...   generation: <|im_start|>assistant\n
//     When messages[0] is not "system", a default system turn goes first, as
//     the models' own templates do: SmolLM2 "You are a helpful AI assistant
//     named SmolLM, trained by Hugging Face", Qwen2.5 "You are Qwen, created by
//     Alibaba Cloud. You are a helpful assistant." (plain "chatml": none).
//   Llama-3 header format (Llama-3-Swallow, Llama-3-ELYZA-JP; Meta's template):
//     <|begin_of_text|><|start_header_id|>{role}<|end_header_id|>\n\n{content|trim}<|eot_id|> ...
//     generation: <|start_header_id|>assistant<|end_header_id|>\n\n
//     ({content|trim} strips what Python's str.strip() strips.)
//   Japanese Alpaca (Tanuki-8B):
//     <s>{system}\n\n### 指示:\n{user}\n\n### 応答:\n{assistant}</s>\n\n ...   generation: ### 応答:\n
//     default system "以下は、タスクを説明する指示です。要求を適切に満たす応答を書きなさい。"
//     (from Tanuki's model card; its Jinja template was not available here to
//     compare against — UNVERIFIED in its whitespace details).
//
// The rendered text contains special-token texts: tokenize it with
// parse_special = true and add_special = false (the template already holds BOS).
//
// split_answer() gives the prompt/answer boundary the trainer masks at: the
// prompt is exactly what inference feeds the model (all turns but the last, plus
// the generation prompt) and prompt + answer is the full conversation.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qlora/core/status.hpp"
#include "qlora/io/gguf.hpp"
#include "qlora/text/bpe_tokenizer.hpp"
#include "qlora/text/pre_tokenizer.hpp"
#include "qlora/text/utf8.hpp"

namespace qlora::text {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant" (ChatML and Llama-3 accept any role)
  std::string content;
};

enum class ChatFormat : std::uint8_t { kChatML, kLlama3, kJapaneseAlpaca };

inline constexpr std::string_view kSmolLM2SystemPrompt =
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face";
inline constexpr std::string_view kQwen25SystemPrompt =
    "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";
inline constexpr std::string_view kTanukiSystemPrompt =
    "以下は、タスクを説明する指示です。要求を適切に満たす応答を書きなさい。";
/// ELYZA's recommended system prompt (its model card passes it explicitly).
inline constexpr std::string_view kElyzaSystemPrompt =
    "あなたは誠実で優秀な日本人のアシスタントです。特に指示が無い場合は、常に日本語で回答してください。";

/// A rendered conversation and where its final answer starts.
struct PromptAnswer {
  std::string text;         // prompt + answer
  std::size_t prompt_size;  // bytes of text that are the prompt
  std::string_view prompt() const { return std::string_view(text).substr(0, prompt_size); }
  std::string_view answer() const { return std::string_view(text).substr(prompt_size); }
};

/// Token ids of a prompt/answer pair, tokenized as inference sees them.
struct PromptAnswerTokens {
  std::vector<TokenId> ids;      // prompt tokens then answer tokens
  std::size_t n_prompt = 0;      // ids[0, n_prompt) are the prompt (mask these out of the loss)
  bool same_as_joint = false;    // tokenizing the whole text at once gives the same ids
};

class ChatTemplate {
 public:
  ChatFormat format = ChatFormat::kChatML;
  std::string name = "chatml";
  std::string default_system;  // first turn when messages[0] is not system; empty = none
  std::string bos_text;        // text before the first turn ("<|begin_of_text|>", "<s>")
  std::string eos_text;        // after each assistant turn (Japanese Alpaca "</s>")

  /// "chatml", "smollm2", "qwen2.5" (alias "qwen2"), "llama3" (aliases
  /// "swallow", "elyza"), "tanuki" (alias "japanese-alpaca").
  static Result<ChatTemplate> from_name(std::string_view n) {
    ChatTemplate t;
    if (n == "chatml") return t;
    if (n == "smollm2" || n == "smollm") return chatml("smollm2", kSmolLM2SystemPrompt);
    if (n == "qwen2.5" || n == "qwen2") return chatml("qwen2.5", kQwen25SystemPrompt);
    if (n == "llama3" || n == "llama-3" || n == "swallow" || n == "elyza") {
      t.format = ChatFormat::kLlama3;
      t.name = "llama3";
      t.bos_text = "<|begin_of_text|>";
      return t;
    }
    if (n == "tanuki" || n == "japanese-alpaca") {
      t.format = ChatFormat::kJapaneseAlpaca;
      t.name = "tanuki";
      t.default_system = kTanukiSystemPrompt;
      t.bos_text = "<s>";
      t.eos_text = "</s>";
      return t;
    }
    return Status::unsupported("unknown chat template '" + std::string(n) + "'; supported: " + supported_names());
  }
  static std::string supported_names() {
    return "chatml, smollm2, qwen2.5 (qwen2), llama3 (swallow, elyza), tanuki (japanese-alpaca)";
  }

  /// Recognize a GGUF tokenizer.chat_template (Jinja source): ChatML with its
  /// default system prompt taken from the template, Meta's Llama-3 format, or
  /// Japanese Alpaca. Anything else is an error naming what is supported.
  static Result<ChatTemplate> detect(std::string_view jinja) {
    if (jinja.find("<|im_start|>") != std::string_view::npos) {
      ChatTemplate t;
      t.name = "chatml";
      t.default_system = literal_after(jinja, "<|im_start|>system", "<|im_end|>");
      if (t.default_system == kSmolLM2SystemPrompt) t.name = "smollm2";
      if (t.default_system == kQwen25SystemPrompt) t.name = "qwen2.5";
      return t;
    }
    if (jinja.find("<|start_header_id|>") != std::string_view::npos) {
      if (jinja.find("Cutting Knowledge Date") != std::string_view::npos)
        return Status::unsupported(
            "chat template is Llama-3.1's (adds a 'Cutting Knowledge Date' system header), which is not "
            "supported yet; select 'llama3' by name for the plain Llama-3 header format");
      auto t = from_name("llama3");
      t->default_system = literal_after(jinja, "system<|end_header_id|>", "<|eot_id|>");
      return t;
    }
    if (jinja.find("### 指示") != std::string_view::npos) return from_name("tanuki");
    return Status::unsupported("chat template not recognized (not ChatML, Llama-3 or Japanese Alpaca); select one "
                               "by name; supported: " +
                               supported_names());
  }

  /// detect() on the GGUF's tokenizer.chat_template.
  static Result<ChatTemplate> from_gguf(const io::GgufFile& g) {
    auto src = g.get_string("tokenizer.chat_template");
    if (!src) return src.status();
    auto t = detect(*src);
    if (!t) return t.status().with_context(g.name() + ": tokenizer.chat_template");
    return t;
  }

  /// The conversation as the model saw it in training; add_generation_prompt
  /// appends the header of the assistant turn that the model should write.
  Result<std::string> apply(std::span<const ChatMessage> messages, bool add_generation_prompt) const {
    if (messages.empty()) return Status::invalid("chat template: no messages");
    for (std::size_t i = 0; i < messages.size(); ++i) {
      if (Status st = validate_utf8(messages[i].content); !st)
        return st.with_context("chat message " + std::to_string(i) + " content");
      if (format == ChatFormat::kJapaneseAlpaca && messages[i].role != "system" && messages[i].role != "user" &&
          messages[i].role != "assistant")
        return Status::invalid("chat message " + std::to_string(i) + ": role '" + messages[i].role +
                               "' is not one of system, user, assistant (" + name + " template)");
      if (messages[i].role.empty()) return Status::invalid("chat message " + std::to_string(i) + " has no role");
    }
    std::string out = bos_text;
    const bool has_system = messages.front().role == "system";
    if (!has_system && !default_system.empty()) append_turn(out, "system", default_system);
    for (const ChatMessage& m : messages) append_turn(out, m.role, m.content);
    if (add_generation_prompt) out += generation_prompt();
    return out;
  }

  /// Split a conversation whose last message is the assistant's answer.
  Result<PromptAnswer> split_answer(std::span<const ChatMessage> messages) const {
    if (messages.size() < 2 || messages.back().role != "assistant")
      return Status::invalid("split_answer: the conversation must end with an assistant message after a prompt");
    auto prompt = apply(messages.first(messages.size() - 1), /*add_generation_prompt=*/true);
    if (!prompt) return prompt.status();
    auto full = apply(messages, /*add_generation_prompt=*/false);
    if (!full) return full.status();
    if (full->compare(0, prompt->size(), *prompt) != 0)  // holds for every format here
      return Status::invalid("split_answer: prompt is not a prefix of the conversation (" + name + ")");
    return PromptAnswer{std::move(*full), prompt->size()};
  }

  /// Prompt and answer tokenized separately (as inference feeds the prompt and
  /// then generates), with parse_special = true and no extra BOS/EOS.
  Result<PromptAnswerTokens> tokenize_answer(const BpeTokenizer& tok, std::span<const ChatMessage> messages) const {
    auto pa = split_answer(messages);
    if (!pa) return pa.status();
    PromptAnswerTokens r;
    QLORA_TRY(tok.encode_append(pa->prompt(), r.ids, /*add_special=*/false, /*parse_special=*/true));
    r.n_prompt = r.ids.size();
    QLORA_TRY(tok.encode_append(pa->answer(), r.ids, false, true));
    auto joint = tok.encode(pa->text, false, true);
    if (!joint) return joint.status();
    r.same_as_joint = *joint == r.ids;
    return r;
  }

  /// Text that ends an assistant turn (a stop string for generation).
  std::string_view end_of_turn() const {
    switch (format) {
      case ChatFormat::kChatML: return "<|im_end|>";
      case ChatFormat::kLlama3: return "<|eot_id|>";
      case ChatFormat::kJapaneseAlpaca: return "</s>";
    }
    return "";
  }

  std::string generation_prompt() const {
    switch (format) {
      case ChatFormat::kChatML: return "<|im_start|>assistant\n";
      case ChatFormat::kLlama3: return "<|start_header_id|>assistant<|end_header_id|>\n\n";
      case ChatFormat::kJapaneseAlpaca: return "### 応答:\n";
    }
    return "";
  }

 private:
  static ChatTemplate chatml(std::string n, std::string_view system) {
    ChatTemplate t;
    t.name = std::move(n);
    t.default_system = system;
    return t;
  }

  void append_turn(std::string& out, const std::string& role, std::string_view content) const {
    switch (format) {
      case ChatFormat::kChatML:
        out += "<|im_start|>";
        out += role;
        out += '\n';
        out += content;
        out += "<|im_end|>\n";
        return;
      case ChatFormat::kLlama3:
        out += "<|start_header_id|>";
        out += role;
        out += "<|end_header_id|>\n\n";
        out += python_strip(content);
        out += "<|eot_id|>";
        return;
      case ChatFormat::kJapaneseAlpaca:
        if (role == "system") {
          out += content;
        } else if (role == "user") {
          out += "### 指示:\n";
          out += content;
        } else {
          out += "### 応答:\n";
          out += content;
          out += eos_text;
        }
        out += "\n\n";
        return;
    }
  }

  // Jinja's `trim` = Python str.strip(): White_Space plus U+001C..U+001F.
  static std::string_view python_strip(std::string_view s) {
    auto is_space = [](char32_t c) {
      return (c >= 0x1C && c <= 0x1F) || (unicode_flags(c) & CpFlags::kWhitespace) != 0;
    };
    std::size_t b = 0;
    while (b < s.size()) {
      const Utf8Step st = utf8_decode_at(s, b);
      if (st.len == 0 || !is_space(st.cp)) break;
      b += st.len;
    }
    std::size_t e = s.size();
    while (e > b) {
      std::size_t k = e - 1;
      while (k > b && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
      const Utf8Step st = utf8_decode_at(s, k);
      if (st.len == 0 || !is_space(st.cp)) break;
      e = k;
    }
    return s.substr(b, e - b);
  }

  // The literal text a template writes between `head` (+ a newline, written as
  // a real newline or as "\n") and `tail`, if it is plain text; else "".
  static std::string literal_after(std::string_view src, std::string_view head, std::string_view tail) {
    for (std::size_t at = src.find(head); at != std::string_view::npos; at = src.find(head, at + 1)) {
      std::size_t p = at + head.size();
      while (p < src.size() && (src[p] == '\n' || src.compare(p, 2, "\\n") == 0)) p += src[p] == '\n' ? 1 : 2;
      const std::size_t q = src.find(tail, p);
      if (q == std::string_view::npos) continue;
      const std::string_view lit = src.substr(p, q - p);
      if (lit.empty() || lit.find_first_of("'\"{}+") != std::string_view::npos) continue;
      return std::string(lit);
    }
    return {};
  }
};

}  // namespace qlora::text
