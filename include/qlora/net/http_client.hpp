// qlora/net/http_client.hpp — a blocking HTTP/1.1 client for JSON APIs.
//
// One request per connection ("Connection: close"): the judge sends a few
// hundred requests that each take seconds, so connection reuse would save
// nothing worth its complexity. The response body is read by Content-Length,
// by chunked decoding (Ollama and OpenAI servers stream that way), or to the
// end of the stream. Every error names the URL; the timeout bounds connect
// and each wait for data.
#pragma once

#include <string>
#include <string_view>

#include "qlora/core/status.hpp"
#include "qlora/net/http_message.hpp"
#include "qlora/net/socket.hpp"

namespace qlora::net {

struct ClientOptions {
  double timeout_s = 120.0;
};

namespace client_detail {

inline Result<HttpResponse> request(std::string_view method, std::string_view url, std::string_view body,
                                    std::string_view content_type, const ClientOptions& opt) {
  auto u = parse_url(url);
  if (!u) return u.status();
  const std::string where = std::string(method) + " " + std::string(url) + ": ";
  const int timeout_ms = int(opt.timeout_s * 1000.0);
  auto sock = connect_tcp(u->host, u->port, timeout_ms);
  if (!sock) return Status::io(where + sock.status().message());
  std::string req = std::string(method) + " " + u->path + " HTTP/1.1\r\nHost: " + u->host + ":" +
                    std::to_string(u->port) + "\r\nConnection: close\r\nAccept: */*\r\n";
  if (!body.empty() || method == "POST")
    req += "Content-Type: " + std::string(content_type) + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n";
  req.append(body);
  if (Status st = sock->send_all(req, timeout_ms); !st.is_ok()) return Status::io(where + st.message());

  std::string data;
  std::size_t head_end = std::string::npos;
  bool eof = false;
  while (head_end == std::string::npos) {
    auto n = sock->recv_some(data, timeout_ms);
    if (!n) return Status::io(where + n.status().message());
    if (*n == 0) return Status::io(where + "connection closed before the response headers");
    head_end = data.find("\r\n\r\n");
    if (data.size() > (1u << 20) && head_end == std::string::npos) return Status::io(where + "response headers too large");
  }
  auto head = parse_head(std::string_view(data).substr(0, head_end));
  if (!head) return Status::io(where + "bad response: " + head.status().message());
  HttpResponse r;
  r.headers = std::move(head->headers);
  try {
    r.status = std::stoi(head->first[1]);
  } catch (...) {
    return Status::io(where + "bad status line");
  }
  std::string rest = data.substr(head_end + 4);
  const auto te = header(r.headers, "Transfer-Encoding");
  const auto cl = header(r.headers, "Content-Length");
  if (te && iequals(*te, "chunked")) {
    for (;;) {
      auto decoded = decode_chunked(rest);
      if (!decoded) return Status::io(where + decoded.status().message());
      if (*decoded) {
        r.body = std::move(**decoded);
        return r;
      }
      auto n = sock->recv_some(rest, timeout_ms);
      if (!n) return Status::io(where + n.status().message());
      if (*n == 0) return Status::io(where + "connection closed inside a chunked body");
    }
  }
  if (cl) {
    std::size_t want = 0;
    try {
      want = std::stoull(*cl);
    } catch (...) {
      return Status::io(where + "bad Content-Length '" + *cl + "'");
    }
    while (rest.size() < want) {
      auto n = sock->recv_some(rest, timeout_ms);
      if (!n) return Status::io(where + n.status().message());
      if (*n == 0) return Status::io(where + "connection closed after " + std::to_string(rest.size()) + " of " +
                                     std::to_string(want) + " body bytes");
    }
    rest.resize(want);
    r.body = std::move(rest);
    return r;
  }
  while (!eof) {
    auto n = sock->recv_some(rest, timeout_ms);
    if (!n) return Status::io(where + n.status().message());
    eof = *n == 0;
  }
  r.body = std::move(rest);
  return r;
}

}  // namespace client_detail

inline Result<HttpResponse> http_post_json(std::string_view url, std::string_view json_body,
                                           const ClientOptions& opt = {}) {
  return client_detail::request("POST", url, json_body, "application/json", opt);
}

inline Result<HttpResponse> http_get(std::string_view url, const ClientOptions& opt = {}) {
  return client_detail::request("GET", url, {}, {}, opt);
}

}  // namespace qlora::net
