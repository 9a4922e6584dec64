// Pins core/sha256.hpp against the FIPS 180-4 example digests.
#include "qlora/core/sha256.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

std::string hash(const std::string& s) { return qlora::sha256_hex(std::as_bytes(std::span(s.data(), s.size()))); }

TEST(Sha256, KnownDigests) {
  EXPECT_EQ(hash(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hash("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(hash(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, StreamingEqualsOneShot) {
  std::string s(1000, 'x');
  for (std::size_t i = 0; i < s.size(); ++i) s[i] = char(i * 7);
  qlora::Sha256 h;
  for (std::size_t i = 0; i < s.size(); i += 37)
    h.update(std::as_bytes(std::span(s.data() + i, std::min<std::size_t>(37, s.size() - i))));
  EXPECT_EQ(h.hex_digest(), hash(s));
}

}  // namespace
