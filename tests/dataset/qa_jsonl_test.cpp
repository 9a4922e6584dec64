// Tests for data/qa_jsonl.hpp: the exact bytes of the three forms, round
// trips, one reader for all forms (ours and foreign: Alpaca with input,
// system turns, multi-turn, content parts), the test set, and every bad
// input naming file and line.
#include <gtest/gtest.h>

#include "temp_dir.hpp"
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "qlora/data/qa_jsonl.hpp"

namespace qlora::data {
namespace {

namespace fs = std::filesystem;

struct TempDir : qlora::test::TempDir {
  explicit TempDir(const std::string& tag) : qlora::test::TempDir("qlora_qa_test", tag) {}
  std::string path(const std::string& name) const { return (dir / name).string(); }
};

std::string slurp(const std::string& p) {
  auto t = read_text_file(p);
  return t.is_ok() ? *t : "";
}

#define EXPECT_HAS(msg, part) EXPECT_NE((msg).find(part), std::string::npos) << (msg)

QaPair sample(int i = 1) {
  QaPair q;
  q.id = "qa-" + std::to_string(i);
  q.question = "堤防の設計で計画高水流量はどう使われますか？";
  q.answer = "計画高水流量は堤防の高さ・断面を決める \"基本量\" です。\n改行も含む。";
  q.relation = "USED_IN";
  q.category = "Design";
  q.source = "c_keikaku -USED_IN-> c_teibo";
  return q;
}

bool same(const QaPair& a, const QaPair& b) {
  return a.id == b.id && a.question == b.question && a.answer == b.answer && a.relation == b.relation &&
         a.category == b.category && a.source == b.source && a.system == b.system;
}

TEST(QaJsonl, ExactLinesOfTheThreeForms) {
  QaPair q;
  q.id = "1";
  q.question = "堤防とは？";
  q.answer = "河川の氾濫を防ぐ構造物。";
  q.relation = "DEFINED_IN";
  q.category = "Design";
  q.source = "a -DEFINED_IN-> b";
  EXPECT_EQ(*qa_to_json(q, QaFormat::Plain),
            R"({"id":"1","question":"堤防とは？","answer":"河川の氾濫を防ぐ構造物。","relation":"DEFINED_IN","category":"Design","source":"a -DEFINED_IN-> b"})");
  EXPECT_EQ(*qa_to_json(q, QaFormat::Alpaca),
            R"({"instruction":"堤防とは？","input":"","output":"河川の氾濫を防ぐ構造物。","metadata":{"id":"1","relation":"DEFINED_IN","category":"Design","source":"a -DEFINED_IN-> b"}})");
  EXPECT_EQ(*qa_to_json(q, QaFormat::Messages),
            R"({"messages":[{"role":"user","content":"堤防とは？"},{"role":"assistant","content":"河川の氾濫を防ぐ構造物。"}],"metadata":{"id":"1","relation":"DEFINED_IN","category":"Design","source":"a -DEFINED_IN-> b"}})");
  EXPECT_EQ(parse_qa_format("alpaca"), QaFormat::Alpaca);
  EXPECT_FALSE(parse_qa_format("sharegpt").has_value());
}

TEST(QaJsonl, RoundTripsAllThreeForms) {
  TempDir td("roundtrip");
  std::vector<QaPair> pairs = {sample(1), sample(2), sample(3)};
  pairs[2].question = "タブ\tと \\ バックスラッシュ、絵文字 😀";
  for (QaFormat f : {QaFormat::Plain, QaFormat::Alpaca, QaFormat::Messages}) {
    const auto p = td.path(std::string(qa_format_name(f)) + ".jsonl");
    ASSERT_TRUE(write_qa_jsonl(p, pairs, f).is_ok());
    const std::string text = slurp(p);
    EXPECT_HAS(text, "堤防の設計");  // UTF-8 as is, not \u escapes
    EXPECT_EQ(text.find("\\u"), std::string::npos);
    EXPECT_FALSE(fs::exists(p + ".tmp"));
    QaReadSummary sum;
    auto back = read_qa_jsonl(p, &sum);
    ASSERT_TRUE(back.is_ok()) << back.status().message();
    ASSERT_EQ(back->size(), pairs.size());
    for (std::size_t i = 0; i < pairs.size(); ++i) EXPECT_TRUE(same((*back)[i], pairs[i])) << qa_format_name(f) << i;
    EXPECT_EQ(sum.plain + sum.alpaca + sum.messages, pairs.size());
  }
  // A system message survives the messages form.
  pairs[0].system = "あなたは河川砂防技術基準の専門家です。";
  const auto p = td.path("sys.jsonl");
  ASSERT_TRUE(write_qa_jsonl(p, pairs, QaFormat::Messages).is_ok());
  auto back = read_qa_jsonl(p);
  ASSERT_TRUE(back.is_ok());
  EXPECT_TRUE(same((*back)[0], pairs[0]));
}

TEST(QaJsonl, ReadsForeignAlpacaAndMessages) {
  TempDir td("foreign");
  const auto p = td.write("foreign.jsonl",
                          // Alpaca with input, no metadata, top-level integer id.
                          R"({"id":17,"instruction":"次の文を要約せよ。","input":"堤防は洪水を防ぐ。","output":"堤防は治水施設。"})"
                          "\n"
                          // Alpaca without "input" at all.
                          R"({"instruction":"砂防とは？","output":"土砂災害を防ぐこと。","category":"Hazard"})"
                          "\r\n\n"
                          // Messages with a system turn, content parts and an extra turn.
                          R"({"messages":[{"role":"system","content":"専門家として答えよ。"},)"
                          R"({"role":"user","content":[{"type":"text","text":"ダムの"},{"type":"text","text":"点検は？"}]},)"
                          R"({"role":"assistant","content":"定期点検を行う。"},{"role":"user","content":"もっと"}]})"
                          "\n"
                          // Plain, minimal.
                          R"({"question":"Q?","answer":"A."})"
                          "\n");
  QaReadSummary sum;
  auto r = read_qa_jsonl(p, &sum);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[0].question, "次の文を要約せよ。\n堤防は洪水を防ぐ。");
  EXPECT_EQ((*r)[0].id, "17");
  EXPECT_EQ((*r)[1].question, "砂防とは？");
  EXPECT_EQ((*r)[1].category, "Hazard");
  EXPECT_EQ((*r)[2].system, "専門家として答えよ。");
  EXPECT_EQ((*r)[2].question, "ダムの点検は？");
  EXPECT_EQ((*r)[2].answer, "定期点検を行う。");
  EXPECT_EQ((*r)[3].answer, "A.");
  EXPECT_EQ(sum.alpaca, 2u);
  EXPECT_EQ(sum.messages, 1u);
  EXPECT_EQ(sum.plain, 1u);
  ASSERT_EQ(sum.notes.size(), 1u);
  EXPECT_HAS(sum.notes[0], p + ":4: 1 later message(s) ignored");
}

TEST(QaJsonl, BadRecordsNameFileAndLine) {
  TempDir td("bad");
  const std::string good = R"({"question":"Q","answer":"A","id":"x"})"
                           "\n";
  struct Case {
    std::string line;
    std::string want;
  };
  const Case cases[] = {
      {R"({"question":"Q","answer":)", ":2:26: malformed JSON"},
      {R"(["question"])", ":2: a JSON array"},
      {R"(42)", ":2: line is number, want an object"},
      {R"({"prompt":"Q","completion":"A"})", ":2: not a QA record"},
      {R"({"question":"Q"})", ":2: empty or missing answer"},
      {R"({"question":" 　","answer":"A"})", ":2: empty question"},
      {R"({"question":"Q","answer":"\n\t"})", ":2: empty or missing answer"},
      {R"({"question":7,"answer":"A"})", ":2: \"question\" is number, want a string"},
      {R"({"question":"Q","answer":"A","category":["x"]})", ":2: \"category\" is array"},
      {R"({"question":"Q","answer":"A","id":"x"})", ":2: duplicate id 'x' (first at line 1)"},
      {R"({"instruction":"Q","input":3,"output":"A"})", ":2: \"input\" is number"},
      {R"({"instruction":"Q","output":"A","metadata":"m"})", ":2: \"metadata\" is string"},
      {R"({"instruction":"Q","output":"A","metadata":{"id":1.5}})", ":2: metadata: \"id\" is number"},
      {R"({"instruction":"","output":"A"})", ":2: empty instruction"},
      {R"({"messages":"hi"})", ":2: \"messages\" is string"},
      {R"({"messages":[{"role":"assistant","content":"A"},{"role":"user","content":"Q"}]})", ":2: messages: want a \"user\" turn"},
      {R"({"messages":[{"role":"user","content":"Q"}]})", ":2: messages: want an \"assistant\" turn"},
      {R"({"messages":[{"role":"user","content":"Q"},{"role":"assistant"}]})", ":2: messages[1] has no \"content\""},
      {R"({"messages":[{"role":"user","content":{"t":1}},{"role":"assistant","content":"A"}]})", ":2: messages[0].content is object"},
      {R"({"messages":[1,{"role":"assistant","content":"A"}]})", ":2: messages[0] is not an object"},
  };
  for (const auto& c : cases) {
    const auto p = td.write("q.jsonl", good + c.line + "\n");
    auto r = read_qa_jsonl(p);
    ASSERT_FALSE(r.is_ok()) << c.line;
    EXPECT_HAS(r.status().message(), p + c.want);
  }
  const auto utf = td.write("u.jsonl", good + "{\"question\":\"Q\xF0\x9F\",\"answer\":\"A\"}\n");
  auto r = read_qa_jsonl(utf);
  ASSERT_FALSE(r.is_ok());
  EXPECT_HAS(r.status().message(), utf + ":2:15: invalid UTF-8");
}

TEST(QaJsonl, WriterRefusesWhatTheReaderWouldReject) {
  TempDir td("writer");
  QaPair q = sample();
  q.answer = "bad \xC0\xAF";
  auto s = write_qa_jsonl(td.path("w.jsonl"), {sample(), q}, QaFormat::Plain);
  ASSERT_FALSE(s.is_ok());
  EXPECT_HAS(s.message(), "record 2");
  EXPECT_HAS(s.message(), "\"answer\" is not valid UTF-8");
  EXPECT_FALSE(fs::exists(td.path("w.jsonl")));
  q = sample();
  q.question = "";
  EXPECT_HAS(qa_to_json(q, QaFormat::Alpaca).status().message(), "empty question");
  EXPECT_EQ(write_qa_jsonl("/nonexistent/dir/x.jsonl", {sample()}, QaFormat::Plain).code(), ErrorCode::kIo);
}

TEST(QaJsonl, TestSetRoundTripAndErrors) {
  TempDir td("testset");
  std::vector<TestItem> items = {
      {"t001", "調査", "雨量観測所の配置の考え方は？", "流域内に偏りなく配置する。", "調査編 第2章 水文・水理観測 第3節 雨量観測"},
      {"t002", "Maintenance-Dam", "ダムの定期検査とは？", "一定期間ごとに行う検査。", "維持管理編（ダム編） 第1章"},
  };
  const auto p = td.path("test_set.jsonl");
  ASSERT_TRUE(write_test_set(p, items).is_ok());
  EXPECT_EQ(slurp(p).rfind(R"({"id":"t001","category":"調査","question":)", 0), 0u);  // documented key order
  auto back = read_test_set(p);
  ASSERT_TRUE(back.is_ok()) << back.status().message();
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[1].citation, items[1].citation);
  EXPECT_EQ((*back)[0].category, "調査");

  const std::string good = slurp(p);
  struct Case {
    std::string line;
    std::string want;
  };
  const Case cases[] = {
      {R"({"id":"t9","category":"Geology","question":"Q","reference_answer":"A","citation":"C"})", ":3: unknown category 'Geology'"},
      {R"({"id":"t9","category":"Design","question":"Q","reference_answer":"A"})", ":3: missing or empty \"citation\""},
      {R"({"id":"t9","category":"Design","question":"","reference_answer":"A","citation":"C"})", ":3: missing or empty \"question\""},
      {R"({"id":"t001","category":"Design","question":"Q","reference_answer":"A","citation":"C"})", ":3: duplicate id 't001' (first at line 1)"},
      {R"({"id":"t9","category":"Design","question":"Q","reference_answer":5,"citation":"C"})", ":3: \"reference_answer\" is number"},
      {R"({"id":"t9",)", ":3:12: malformed JSON"},
  };
  for (const auto& c : cases) {
    const auto q = td.write("ts.jsonl", good + c.line + "\n");
    auto r = read_test_set(q);
    ASSERT_FALSE(r.is_ok()) << c.line;
    EXPECT_HAS(r.status().message(), q + c.want);
  }
}

}  // namespace
}  // namespace qlora::data
