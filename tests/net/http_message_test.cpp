// net/http_message.hpp: URLs, heads and chunked bodies, including malformed ones.
#include "qlora/net/http_message.hpp"

#include <gtest/gtest.h>

namespace qlora::net {
namespace {

TEST(HttpMessage, Urls) {
  auto u = parse_url("http://127.0.0.1:11434/api/chat");
  ASSERT_TRUE(u.is_ok());
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 11434);
  EXPECT_EQ(u->path, "/api/chat");
  u = parse_url("http://localhost");
  ASSERT_TRUE(u.is_ok());
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->path, "/");
  EXPECT_NE(parse_url("https://x/").status().message().find("only http://"), std::string::npos);
  EXPECT_FALSE(parse_url("http://x:0/").is_ok());
  EXPECT_FALSE(parse_url("http://x:99999/").is_ok());
  EXPECT_FALSE(parse_url("http://:80/").is_ok());
}

TEST(HttpMessage, Heads) {
  auto h = parse_head("POST /api/chat HTTP/1.1\r\nHost: a\r\ncontent-length:  12 \r\n");
  ASSERT_TRUE(h.is_ok());
  EXPECT_EQ(h->first[0], "POST");
  EXPECT_EQ(h->first[1], "/api/chat");
  EXPECT_EQ(h->first[2], "HTTP/1.1");
  EXPECT_EQ(*header(h->headers, "Content-Length"), "12");
  EXPECT_FALSE(header(h->headers, "X").has_value());
  EXPECT_FALSE(parse_head("").is_ok());
  EXPECT_FALSE(parse_head("GET\r\n").is_ok());
  EXPECT_NE(parse_head("GET / HTTP/1.1\r\nno colon here\r\n").status().message().find("malformed header"),
            std::string::npos);
}

TEST(HttpMessage, ChunkedBodies) {
  auto d = decode_chunked("4\r\nWiki\r\n6;ext=1\r\npedia \r\n0\r\n\r\n");
  ASSERT_TRUE(d.is_ok());
  ASSERT_TRUE(d->has_value());
  EXPECT_EQ(**d, "Wikipedia ");
  auto partial = decode_chunked("4\r\nWi");
  ASSERT_TRUE(partial.is_ok());
  EXPECT_FALSE(partial->has_value());  // wait for more bytes
  EXPECT_FALSE(decode_chunked("zz\r\n").is_ok());
  EXPECT_FALSE(decode_chunked("2\r\nabX\r\n").is_ok());
}

}  // namespace
}  // namespace qlora::net
