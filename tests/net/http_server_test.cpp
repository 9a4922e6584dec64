// net/http_server.hpp with net/http_client.hpp over real loopback sockets:
// complete and streamed responses, errors for malformed requests before the
// handler sees them, and concurrent clients each getting their own answer.
#include "qlora/net/http_server.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "qlora/net/http_client.hpp"

namespace qlora::net {
namespace {

std::string base(const HttpServer& s) { return "http://127.0.0.1:" + std::to_string(s.port()); }

void echo(const HttpRequest& r, ResponseWriter& w) {
  if (r.target == "/stream") {
    ASSERT_TRUE(w.begin_stream(200, "application/x-ndjson").is_ok());
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(w.write_chunk("{\"i\":" + std::to_string(i) + "}\n").is_ok());
    return;  // the server ends the stream
  }
  if (r.target == "/missing") {
    (void)w.respond(404, "application/json", json_error("no such path"));
    return;
  }
  (void)w.respond(200, "text/plain", r.method + " " + r.target + " " + r.body);
}

TEST(HttpServer, RequestAndResponse) {
  HttpServer s;
  ASSERT_TRUE(s.start({}, echo).is_ok());
  ASSERT_NE(s.port(), 0);
  auto r = http_post_json(base(s) + "/api/chat", "{\"a\":\"日本語\"}");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "POST /api/chat {\"a\":\"日本語\"}");
  r = http_get(base(s) + "/missing");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->body, "{\"error\":\"no such path\"}");
}

TEST(HttpServer, StreamedResponseIsDecoded) {
  HttpServer s;
  ASSERT_TRUE(s.start({}, echo).is_ok());
  auto r = http_get(base(s) + "/stream");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->body, "{\"i\":0}\n{\"i\":1}\n{\"i\":2}\n{\"i\":3}\n{\"i\":4}\n");
  EXPECT_EQ(*header(r->headers, "transfer-encoding"), "chunked");
}

/// Send raw bytes and return the response's status code.
int raw_status(const HttpServer& s, const std::string& bytes) {
  auto c = connect_tcp("127.0.0.1", s.port(), 2000);
  EXPECT_TRUE(c.is_ok());
  EXPECT_TRUE(c->send_all(bytes, 2000).is_ok());
  std::string in;
  for (;;) {
    auto n = c->recv_some(in, 5000);
    if (!n || *n == 0) break;
  }
  return in.size() > 12 ? std::stoi(in.substr(9, 3)) : -1;
}

TEST(HttpServer, MalformedRequestsGet4xx) {
  HttpServer s;
  std::atomic<bool> reached{false};
  ASSERT_TRUE(s.start({}, [&](const HttpRequest&, ResponseWriter& w) {
                 reached = true;
                 (void)w.respond(200, "text/plain", "ok");
               }).is_ok());
  EXPECT_EQ(raw_status(s, "GARBAGE\r\n\r\n"), 400);
  EXPECT_EQ(raw_status(s, "GET / SPDY/3\r\n\r\n"), 400);
  EXPECT_EQ(raw_status(s, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), 411);
  EXPECT_EQ(raw_status(s, "POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n"), 413);
  EXPECT_EQ(raw_status(s, "POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n"), 400);
  EXPECT_FALSE(reached);
  EXPECT_EQ(raw_status(s, "GET / HTTP/1.1\r\n\r\n"), 200);
}

TEST(HttpServer, ConcurrentClientsGetTheirOwnAnswers) {
  HttpServer s;
  ServerOptions o;
  o.max_connections = 8;
  ASSERT_TRUE(s.start(o, [](const HttpRequest& r, ResponseWriter& w) {
                 std::this_thread::sleep_for(std::chrono::milliseconds(20));  // overlap the requests
                 (void)w.respond(200, "text/plain", r.body + r.body);
               }).is_ok());
  std::vector<std::string> got(6);
  std::vector<std::thread> th;
  for (std::size_t i = 0; i < got.size(); ++i)
    th.emplace_back([&, i] {
      auto r = http_post_json(base(s) + "/", "client" + std::to_string(i));
      got[i] = r.is_ok() ? r->body : r.status().message();
    });
  for (auto& t : th) t.join();
  for (std::size_t i = 0; i < got.size(); ++i)
    EXPECT_EQ(got[i], "client" + std::to_string(i) + "client" + std::to_string(i));
}

TEST(HttpClient, ErrorsNameTheUrl) {
  HttpServer s;
  ASSERT_TRUE(s.start({}, echo).is_ok());
  const std::string url = base(s);
  s.stop();
  auto r = http_get(url + "/x", {2.0});
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find(url + "/x"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace qlora::net
