// Strict UTF-8: decode/encode round trips and errors that name the byte offset.
#include "qlora/text/utf8.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace qlora::text {
namespace {

TEST(Utf8, DecodesJapaneseWithOffsets) {
  const std::string s = "a堤防１😀";  // 1 + 3 + 3 + 3 + 4 bytes
  std::vector<char32_t> cps;
  std::vector<std::uint32_t> offs;
  ASSERT_TRUE(decode_utf8(s, cps, &offs));
  EXPECT_EQ(cps, (std::vector<char32_t>{U'a', U'堤', U'防', U'１', U'😀'}));
  EXPECT_EQ(offs, (std::vector<std::uint32_t>{0, 1, 4, 7, 10, 14}));
  auto u = decode_utf8(s);
  ASSERT_TRUE(u);
  EXPECT_EQ(*u, U"a堤防１😀");
  auto back = encode_utf8(*u);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, s);
}

TEST(Utf8, EveryScalarValueRoundTrips) {
  std::u32string all;
  for (char32_t c = 0; c <= kMaxCodePoint; ++c)
    if (c < 0xD800 || c > 0xDFFF) all.push_back(c);
  auto enc = encode_utf8(all);
  ASSERT_TRUE(enc);
  EXPECT_TRUE(validate_utf8(*enc));
  auto dec = decode_utf8(*enc);
  ASSERT_TRUE(dec);
  EXPECT_EQ(*dec, all);
}

struct Bad {
  std::string bytes;
  std::size_t offset;
  const char* why;
};

TEST(Utf8, ErrorsNameOffsetAndReason) {
  const std::vector<Bad> cases = {
      {"ok\x80", 2, "cannot start"},                 // lone continuation byte
      {"ab\xE5\xA0", 2, "truncated"},                // 堤 cut short
      {"\xE5\x41\x41", 0, "continuation"},           // bad continuation
      {"xy\xC0\xAF", 2, "overlong"},                 // overlong '/'
      {"\xE0\x80\xAF", 0, "overlong"},               // 3-byte overlong
      {"zz\xED\xA0\x80", 2, "surrogate"},            // U+D800
      {"\xF4\x90\x80\x80", 0, "above U+10FFFF"},     // U+110000
      {"\xF8\x88\x80\x80\x80", 0, "cannot start"},   // 5-byte form
      {"abcdefgh\xFF", 8, "cannot start"},           // after the 8-byte ASCII fast path
  };
  for (const Bad& c : cases) {
    const Status st = validate_utf8(c.bytes);
    ASSERT_FALSE(st) << c.why;
    EXPECT_NE(st.message().find("byte offset " + std::to_string(c.offset)), std::string::npos) << st.message();
    EXPECT_NE(st.message().find(c.why), std::string::npos) << st.message();
    EXPECT_EQ(utf8_find_invalid(c.bytes), c.offset);
    std::vector<char32_t> cps;
    EXPECT_FALSE(decode_utf8(c.bytes, cps));
  }
  EXPECT_TRUE(validate_utf8(""));
  EXPECT_TRUE(validate_utf8("河川砂防技術基準"));
}

TEST(Utf8, EncodeRejectsNonScalars) {
  auto r = encode_utf8(std::u32string{U'a', static_cast<char32_t>(0xD800)});
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("U+D800 at index 1"), std::string::npos) << r.status().message();
  EXPECT_FALSE(encode_utf8(std::u32string{static_cast<char32_t>(0x110000)}));
}

TEST(Utf8, IncompleteTail) {
  const std::string s = "堤防";
  EXPECT_EQ(utf8_incomplete_tail(s), 0u);
  EXPECT_EQ(utf8_incomplete_tail(s.substr(0, 5)), 2u);
  EXPECT_EQ(utf8_incomplete_tail(s.substr(0, 4)), 1u);
  EXPECT_EQ(utf8_incomplete_tail("a"), 0u);
  EXPECT_EQ(utf8_incomplete_tail("\xF0\x9F\x98"), 3u);
  EXPECT_EQ(utf8_incomplete_tail(""), 0u);
}

TEST(Utf8, UnicodeEscapes) {
  EXPECT_EQ(parse_u_escape("00e9"), std::optional<char32_t>(0xE9));
  EXPECT_EQ(parse_u_escape("6CB3"), std::optional<char32_t>(0x6CB3));  // 河
  EXPECT_FALSE(parse_u_escape("D800"));                                 // surrogates are not characters
  EXPECT_FALSE(parse_u_escape("dfff"));
  EXPECT_FALSE(parse_u_escape("12g4"));
  EXPECT_FALSE(parse_u_escape("123"));
}

}  // namespace
}  // namespace qlora::text
