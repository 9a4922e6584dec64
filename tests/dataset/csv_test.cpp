// Tests for data/csv.hpp: RFC 4180 quoting, line numbers of records that
// span lines, CRLF/LF, BOM, delimiters, and every syntax and UTF-8 error
// naming file:line:column.
#include <gtest/gtest.h>

#include "temp_dir.hpp"
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "qlora/data/csv.hpp"

namespace qlora::data {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards (tests/temp_dir.hpp).
struct TempDir : qlora::test::TempDir {
  explicit TempDir(const std::string& tag) : qlora::test::TempDir("qlora_csv_test", tag) {}
};

std::vector<std::string> texts(const CsvRecord& r) {
  std::vector<std::string> v;
  for (const auto& f : r.fields) v.push_back(f.text);
  return v;
}

CsvTable parse_ok(const std::string& text, CsvOptions opt = {}) {
  auto t = parse_csv(text, "t.csv", opt);
  EXPECT_TRUE(t.is_ok()) << t.status().message();
  return t.is_ok() ? std::move(t).value() : CsvTable{};
}

std::string parse_err(const std::string& text, CsvOptions opt = {}) {
  auto t = parse_csv(text, "t.csv", opt);
  EXPECT_FALSE(t.is_ok());
  return t.is_ok() ? "" : t.status().message();
}

TEST(Csv, PlainRecordsAndLineNumbers) {
  auto t = parse_ok("a,b,c\n1,2,3\nx,,z\n");
  EXPECT_EQ(texts(t.header), (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(texts(t.rows[0]), (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_EQ(texts(t.rows[1]), (std::vector<std::string>{"x", "", "z"}));
  EXPECT_EQ(t.header.line, 1u);
  EXPECT_EQ(t.rows[0].line, 2u);
  EXPECT_EQ(t.rows[1].line, 3u);
  EXPECT_EQ(t.rows[1].fields[2].column, 4u);  // "x,,z": z starts at byte 4
}

TEST(Csv, QuotedCommasDoubledQuotesAndNewlines) {
  // Row 1 spans lines 2-4; row 2 must still say line 5.
  const std::string text =
      "id,text,n\n"
      "1,\"a, b \"\"quoted\"\"\nsecond line\nthird\",7\n"
      "2,\"\",8\n";
  auto t = parse_ok(text);
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0].fields[1].text, "a, b \"quoted\"\nsecond line\nthird");
  EXPECT_TRUE(t.rows[0].fields[1].quoted);
  EXPECT_EQ(t.rows[0].line, 2u);
  EXPECT_EQ(t.rows[0].fields[2].line, 4u);  // the field after the multi-line one
  EXPECT_EQ(t.rows[1].line, 5u);
  EXPECT_EQ(t.rows[1].fields[1].text, "");
  EXPECT_TRUE(t.rows[1].fields[1].quoted);   // "" is an empty string ...
  EXPECT_FALSE(t.rows[0].fields[0].quoted);  // ... distinct from nothing
}

TEST(Csv, CrlfReadsLikeLfAndKeepsCrlfInsideQuotes) {
  auto lf = parse_ok("a,b\n1,2\n3,4");  // last record without a line break
  auto crlf = parse_ok("a,b\r\n1,2\r\n3,4\r\n");
  ASSERT_EQ(lf.rows.size(), 2u);
  ASSERT_EQ(crlf.rows.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(texts(lf.rows[i]), texts(crlf.rows[i]));
    EXPECT_EQ(lf.rows[i].line, crlf.rows[i].line);
  }
  auto q = parse_ok("a\r\n\"x\r\ny\"\r\n");
  ASSERT_EQ(q.rows.size(), 1u);
  EXPECT_EQ(q.rows[0].fields[0].text, "x\r\ny");  // data inside quotes is kept byte for byte
}

TEST(Csv, BomIsDroppedAndColumnsStayFileRelative) {
  auto t = parse_ok("\xEF\xBB\xBFid,name\n1,堤防\n");
  EXPECT_EQ(t.header.fields[0].text, "id");  // not "\xEF\xBB\xBFid"
  EXPECT_EQ(t.header.fields[1].column, 7u);  // 3 BOM bytes + "id,"
  EXPECT_EQ(t.rows[0].fields[1].text, "堤防");
  // A stray quote on line 1 after the BOM: column counts the BOM bytes.
  EXPECT_NE(parse_err("\xEF\xBB\xBFi\"d,x\n").find("t.csv:1:5:"), std::string::npos);
}

TEST(Csv, ConfigurableDelimiter) {
  CsvOptions tab;
  tab.delimiter = '\t';
  auto t = parse_ok("a\tb\n\"x\ty\"\t2\n", tab);
  EXPECT_EQ(texts(t.rows[0]), (std::vector<std::string>{"x\ty", "2"}));
  CsvOptions semi;
  semi.delimiter = ';';
  auto s = parse_ok("a;b\n1,5;2\n", semi);
  EXPECT_EQ(texts(s.rows[0]), (std::vector<std::string>{"1,5", "2"}));
  CsvOptions bad;
  bad.delimiter = '"';
  EXPECT_FALSE(parse_csv("a\n", "t.csv", bad).is_ok());
}

TEST(Csv, EmptyLinesAreSkippedAndCounted) {
  auto t = parse_ok("a,b\n\n1,2\r\n\r\n3,4\n\n");
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0].line, 3u);
  EXPECT_EQ(t.rows[1].line, 5u);
  EXPECT_EQ(t.empty_lines_skipped, 3u);
  auto trailing = parse_ok("a,b\n1,\n");
  EXPECT_EQ(texts(trailing.rows[0]), (std::vector<std::string>{"1", ""}));
}

TEST(Csv, UnterminatedQuoteNamesTheLineWhereItOpened) {
  const auto m = parse_err("a,b\n1,2\n3,\"never closed\nmore\n");
  EXPECT_NE(m.find("t.csv:3:3:"), std::string::npos) << m;
  EXPECT_NE(m.find("unterminated"), std::string::npos) << m;
}

TEST(Csv, StrayQuoteInUnquotedField) {
  const auto m = parse_err("a,b\n1,ab\"c\n");
  EXPECT_NE(m.find("t.csv:2:5:"), std::string::npos) << m;
  EXPECT_NE(m.find("stray quote"), std::string::npos) << m;
}

TEST(Csv, TextAfterClosingQuote) {
  const auto m = parse_err("a,b\n\"x\"y,2\n");
  EXPECT_NE(m.find("t.csv:2:4:"), std::string::npos) << m;
}

TEST(Csv, BareCarriageReturnIsAnError) {
  const auto m = parse_err("a,b\n1\r2,3\n");
  EXPECT_NE(m.find("t.csv:2:2:"), std::string::npos) << m;
}

TEST(Csv, FieldCountMismatchNamesRecordStartLine) {
  const auto m = parse_err("a,b,c\n1,2,3\n\"multi\nline\",2\n");
  EXPECT_NE(m.find("t.csv:3:"), std::string::npos) << m;
  EXPECT_NE(m.find("2 fields"), std::string::npos) << m;
  EXPECT_NE(m.find("has 3"), std::string::npos) << m;
}

TEST(Csv, EmptyFileAndMissingFile) {
  EXPECT_NE(parse_err("").find("t.csv: empty"), std::string::npos);
  auto r = read_csv("/nonexistent/dir/x.csv");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kIo);
  EXPECT_NE(r.status().message().find("/nonexistent/dir/x.csv"), std::string::npos);
}

TEST(Csv, ValidUtf8IsAccepted) {
  EXPECT_TRUE(validate_utf8("ascii 河川砂防 ü 😀 \xEF\xBF\xBF \xF4\x8F\xBF\xBF", "x").is_ok());
}

TEST(Csv, InvalidUtf8NamesFileLineAndByteColumn) {
  struct Case {
    std::string bytes;
    const char* why;
  };
  const Case cases[] = {
      {"\xFF", "not allowed"},
      {"\xC0\xAF", "overlong"},
      {"\xE0\x80\xAF", "overlong"},
      {"\xF0\x80\x80\xAF", "overlong"},
      {"\xED\xA0\x80", "surrogate"},
      {"\xF4\x90\x80\x80", "above U+10FFFF"},
      {"\x80", "continuation"},
      {"\xE6\xB2", "truncated"},  // at end of input
      {"\xE6\xB2x", "truncated"},
  };
  for (const auto& c : cases) {
    const std::string text = "a,b\n1,ok\n2,xy" + c.bytes + "\n";
    const auto m = parse_err(text);
    EXPECT_NE(m.find("t.csv:3:5: invalid UTF-8"), std::string::npos) << m;
    EXPECT_NE(m.find(c.why), std::string::npos) << m;
  }
}

TEST(Csv, ReadsFromFileAndNamesIt) {
  TempDir td("file");
  const auto p = td.write("n.csv", "a,b\n1,\"2\n");
  auto r = read_csv(p);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find(p + ":2:3:"), std::string::npos) << r.status().message();
  const auto ok = td.write("m.csv", "a,b\r\n1,2\r\n");
  auto t = read_csv(ok);
  ASSERT_TRUE(t.is_ok()) << t.status().message();
  EXPECT_EQ(t->name, ok);
  EXPECT_EQ(t->rows.size(), 1u);
}

TEST(Csv, ForEachLineStripsCrAndNumbersLines) {
  std::vector<std::pair<std::size_t, std::string>> got;
  ASSERT_TRUE(for_each_line("a\r\n\nb\nc", [&](std::size_t n, std::string_view l) {
                got.emplace_back(n, std::string(l));
                return Status::ok();
              }).is_ok());
  const std::vector<std::pair<std::size_t, std::string>> want = {{1, "a"}, {2, ""}, {3, "b"}, {4, "c"}};
  EXPECT_EQ(got, want);
}

}  // namespace
}  // namespace qlora::data
