// Pre-tokenizer splits: hand-checked cases, and every corpus string against
// the published regexes run with Python's `regex` module
// (tests/data/tokenizer/splits_<pre>.jsonl, tools/gen_tokenizer_golden.py).
#include "qlora/text/pre_tokenizer.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace qlora::text {
namespace {

const std::string kDataDir = std::string(QLORA_TEST_DATA_DIR) + "/tokenizer";

std::vector<std::string> split(const std::string& pre, const std::string& text) {
  auto p = PreTokenizer::from_name(pre);
  EXPECT_TRUE(p) << p.status().message();
  auto r = p->split_to_strings(text);
  EXPECT_TRUE(r) << r.status().message();
  return r ? *r : std::vector<std::string>{};
}

using V = std::vector<std::string>;

TEST(UnicodeFlags, Categories) {
  EXPECT_EQ(unicode_flags('a'), CpFlags::kLetter);
  EXPECT_EQ(unicode_flags('7'), CpFlags::kNumber);
  EXPECT_EQ(unicode_flags(' '), CpFlags::kSeparator | CpFlags::kWhitespace);
  EXPECT_EQ(unicode_flags('\n'), CpFlags::kControl | CpFlags::kWhitespace);
  EXPECT_EQ(unicode_flags(0x1C), CpFlags::kControl);  // not White_Space (Python's isspace says yes)
  EXPECT_EQ(unicode_flags(U'あ'), CpFlags::kLetter);
  EXPECT_EQ(unicode_flags(U'堤'), CpFlags::kLetter);
  EXPECT_EQ(unicode_flags(U'一'), CpFlags::kLetter);  // kanji numerals are letters (Lo)
  EXPECT_EQ(unicode_flags(U'１'), CpFlags::kNumber);  // full-width digit (Nd)
  EXPECT_EQ(unicode_flags(U'①'), CpFlags::kNumber);  // No
  EXPECT_EQ(unicode_flags(U'Ⅻ'), CpFlags::kNumber);  // Nl
  EXPECT_EQ(unicode_flags(U'。'), CpFlags::kPunct);
  EXPECT_EQ(unicode_flags(U'ー'), CpFlags::kLetter);  // prolonged sound mark (Lm)
  EXPECT_EQ(unicode_flags(0x3000), CpFlags::kSeparator | CpFlags::kWhitespace);
  EXPECT_EQ(unicode_flags(0x0085), CpFlags::kControl | CpFlags::kWhitespace);
  EXPECT_EQ(unicode_flags(0x0301), CpFlags::kMark);
  EXPECT_EQ(unicode_flags(0x0378), CpFlags::kUnassigned);
  EXPECT_EQ(unicode_flags(0x2EBF0), CpFlags::kLetter);  // CJK Ext I (Unicode 15.1)
  EXPECT_EQ(unicode_flags(0xE000), CpFlags::kControl);  // private use
  EXPECT_EQ(unicode_flags(0x1F600), CpFlags::kSymbol);
  EXPECT_EQ(unicode_flags(0x10FFFF), CpFlags::kUnassigned);
  EXPECT_EQ(unicode_flags(0x110000), CpFlags::kUnassigned);
  EXPECT_STREQ(tables::kUnicodeVersion, "15.1.0");
  EXPECT_EQ(fold_to_ascii_lower('S'), U's');
  EXPECT_EQ(fold_to_ascii_lower(0x212A), U'k');  // KELVIN SIGN
  EXPECT_EQ(fold_to_ascii_lower(U'あ'), U'あ');
}

TEST(PreTokenizer, Gpt2) {
  EXPECT_EQ(split("gpt-2", "Hello world, it's 2026!"), (V{"Hello", " world", ",", " it", "'s", " 2026", "!"}));
  EXPECT_EQ(split("gpt-2", "a   b  "), (V{"a", "  ", " b", "  "}));
  EXPECT_EQ(split("gpt-2", "IT'S"), (V{"IT", "'", "S"}));  // case-sensitive contractions
}

TEST(PreTokenizer, SmolLMIsolatesEveryDigit) {
  EXPECT_EQ(split("smollm", "x 2026年"), (V{"x", " ", "2", "0", "2", "6", "年"}));
  EXPECT_EQ(split("smollm", "１２３"), (V{"１", "２", "３"}));
  EXPECT_EQ(split("smollm", "a1b"), (V{"a", "1", "b"}));
}

TEST(PreTokenizer, Llama3) {
  EXPECT_EQ(split("llama-bpe", "1234567"), (V{"123", "456", "7"}));
  EXPECT_EQ(split("llama-bpe", "IT'S we'RE"), (V{"IT", "'S", " we", "'RE"}));  // (?i:...)
  EXPECT_EQ(split("llama-bpe", "a\r\n\r\nb"), (V{"a", "\r\n\r\n", "b"}));
  EXPECT_EQ(split("llama-bpe", "x  \n  y"), (V{"x", "  \n", " ", " y"}));
  EXPECT_EQ(split("llama-bpe", "!!\n\nok"), (V{"!!\n\n", "ok"}));
  EXPECT_EQ(split("llama-bpe", "「堤防」の高さ"), (V{"「堤防", "」の高さ"}));
  EXPECT_EQ(split("llama-bpe", "水位3.45m"), (V{"水位", "3", ".", "45", "m"}));
  EXPECT_EQ(split("llama-bpe", "　全角"), (V{"　全角"}));  // U+3000 is a valid one-char prefix
  EXPECT_EQ(split("llama3", "x"), (V{"x"}));
  EXPECT_EQ(split("llama-v3", "x"), (V{"x"}));
}

TEST(PreTokenizer, Qwen2SplitsSingleDigits) {
  EXPECT_EQ(split("qwen2", "1234"), (V{"1", "2", "3", "4"}));
  EXPECT_EQ(split("qwen2", "２０２６年"), (V{"２", "０", "２", "６", "年"}));
}

TEST(PreTokenizer, Default) {
  EXPECT_EQ(split("default", "x=12345;"), (V{"x", "=", "123", "45", ";"}));
}

TEST(PreTokenizer, EmptyAndErrors) {
  EXPECT_TRUE(split("qwen2", "").empty());
  auto bad = PreTokenizer::from_name("tekken");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.status().code(), ErrorCode::kUnsupported);
  EXPECT_NE(bad.status().message().find("unknown pre-tokenizer 'tekken'; supported: default, gpt-2"),
            std::string::npos)
      << bad.status().message();
  auto p = PreTokenizer::from_name("qwen2");
  auto r = p->split_to_strings(std::string("ab\xC0\x80", 4));
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("byte offset 2"), std::string::npos) << r.status().message();
}

// Every piece boundary for every corpus string equals the published regex's.
class RegexOracle : public ::testing::TestWithParam<std::string> {};

TEST_P(RegexOracle, CorpusSplitsMatch) {
  const std::string pre = GetParam();
  std::ifstream corpus(kDataDir + "/corpus.jsonl"), splits(kDataDir + "/splits_" + pre + ".jsonl");
  ASSERT_TRUE(corpus && splits);
  std::string a, b;
  int n = 0, ok = 0;
  while (std::getline(corpus, a) && std::getline(splits, b)) {
    const std::string text = nlohmann::json::parse(a).at("text");
    const auto want = nlohmann::json::parse(b).at("pieces").get<V>();
    const V got = split(pre, text);
    ++n;
    ok += got == want;
    EXPECT_EQ(got, want) << pre << ": \"" << text << "\"";
  }
  EXPECT_GE(n, 200);
  std::printf("[ %-9s ] %d/%d corpus splits equal the regex module's\n", pre.c_str(), ok, n);
}

INSTANTIATE_TEST_SUITE_P(Pre, RegexOracle, ::testing::Values("smollm", "gpt-2", "llama-bpe", "qwen2"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s)
                             if (c == '-') c = '_';
                           return s;
                         });

}  // namespace
}  // namespace qlora::text
