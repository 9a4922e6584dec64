// qlora/net/http_server.hpp — a small threaded HTTP/1.1 server.
//
// Enough for `qlora serve` and for tests that need a peer on loopback: bind
// an address (default 127.0.0.1; port 0 picks a free port), accept on one
// thread, serve each connection on its own thread (at most max_connections at
// once; beyond that a 503 is sent and the connection closed), one request per
// connection. Requests are read with limits — 64 KiB of headers, max_body
// bytes of Content-Length body; a chunked request body is refused with 411 —
// and malformed ones get a 4xx JSON error without reaching the handler. The
// handler answers through a ResponseWriter: one complete response, or a
// chunked stream (NDJSON, server-sent events) written piece by piece.
#pragma once

#include <arpa/inet.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "qlora/core/status.hpp"
#include "qlora/net/http_message.hpp"
#include "qlora/net/socket.hpp"

namespace qlora::net {

/// How a handler answers. Either respond() once, or begin_stream(), any
/// number of write_chunk(), then end_stream() (called for you if forgotten).
class ResponseWriter {
 public:
  explicit ResponseWriter(const Socket& s, int timeout_ms) : s_(s), timeout_ms_(timeout_ms) {}
  ResponseWriter(const ResponseWriter&) = delete;
  ResponseWriter& operator=(const ResponseWriter&) = delete;

  Status respond(int status, std::string_view content_type, std::string_view body) {
    if (started_) return Status::invalid("response already started");
    started_ = done_ = true;
    std::string head = "HTTP/1.1 " + std::to_string(status) + " " + status_text(status) +
                       "\r\nContent-Type: " + std::string(content_type) +
                       "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
    head.append(body);
    return s_.send_all(head, timeout_ms_);
  }

  Status begin_stream(int status, std::string_view content_type) {
    if (started_) return Status::invalid("response already started");
    started_ = true;
    streaming_ = true;
    const std::string head = "HTTP/1.1 " + std::to_string(status) + " " + status_text(status) +
                             "\r\nContent-Type: " + std::string(content_type) +
                             "\r\nTransfer-Encoding: chunked\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n";
    return s_.send_all(head, timeout_ms_);
  }

  /// One chunk; an error means the client went away (stop generating).
  Status write_chunk(std::string_view data) {
    if (!streaming_ || done_) return Status::invalid("not streaming");
    if (data.empty()) return Status::ok();  // an empty chunk would end the body
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    std::string c = size;
    c.append(data);
    c += "\r\n";
    return s_.send_all(c, timeout_ms_);
  }

  Status end_stream() {
    if (!streaming_ || done_) return Status::ok();
    done_ = true;
    return s_.send_all("0\r\n\r\n", timeout_ms_);
  }

  bool started() const { return started_; }

 private:
  const Socket& s_;
  int timeout_ms_;
  bool started_ = false, streaming_ = false, done_ = false;
};

using Handler = std::function<void(const HttpRequest&, ResponseWriter&)>;

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0: any free port (see HttpServer::port())
  std::size_t max_connections = 16;
  std::size_t max_body = std::size_t(8) << 20;
  double timeout_s = 30.0;  // per read/write wait
};

inline std::string json_error(std::string_view message) {
  std::string s = "{\"error\":\"";
  for (char c : message) {
    if (c == '"' || c == '\\') s += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      s += ' ';
      continue;
    }
    s += c;
  }
  return s + "\"}";
}

class HttpServer {
 public:
  HttpServer() = default;
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  ~HttpServer() { stop(); }

  /// Bind, listen and start accepting; errors name the address.
  Status start(const ServerOptions& opt, Handler handler) {
    opt_ = opt;
    handler_ = std::move(handler);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* res = nullptr;
    const std::string where = opt.host + ":" + std::to_string(opt.port);
    if (int e = ::getaddrinfo(opt.host.c_str(), std::to_string(opt.port).c_str(), &hints, &res); e != 0)
      return Status::io("cannot resolve " + where + ": " + ::gai_strerror(e));
    Socket s(::socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol));
    int one = 1;
    ::setsockopt(s.fd(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    const bool bound = s.valid() && ::bind(s.fd(), res->ai_addr, res->ai_addrlen) == 0 && ::listen(s.fd(), 64) == 0;
    ::freeaddrinfo(res);
    if (!bound) return Status::io("cannot listen on " + where + ": " + std::strerror(errno));
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    ::getsockname(s.fd(), reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                                              : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
    listener_ = std::move(s);
    running_ = true;
    acceptor_ = std::thread([this] { accept_loop(); });
    return Status::ok();
  }

  std::uint16_t port() const { return port_; }

  /// Stop accepting and wait for the connections in progress to finish.
  void stop() {
    if (!running_.exchange(false)) return;
    ::shutdown(listener_.fd(), SHUT_RDWR);
    if (acceptor_.joinable()) acceptor_.join();
    listener_.close();
    std::unique_lock<std::mutex> lk(mu_);
    idle_.wait(lk, [&] { return active_ == 0; });
  }

 private:
  void accept_loop() {
    while (running_) {
      pollfd p{listener_.fd(), POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      const int fd = ::accept4(listener_.fd(), nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      Socket c(fd);
      {
        std::lock_guard<std::mutex> lk(mu_);
        if (active_ >= opt_.max_connections) {
          ResponseWriter w(c, 1000);
          (void)w.respond(503, "application/json", json_error("server busy: too many connections"));
          continue;
        }
        ++active_;
      }
      std::thread([this, c = std::move(c)]() mutable {
        serve(c);
        c.close();
        std::lock_guard<std::mutex> lk(mu_);
        if (--active_ == 0) idle_.notify_all();
      }).detach();
    }
  }

  void serve(const Socket& c) {
    const int timeout_ms = int(opt_.timeout_s * 1000.0);
    ResponseWriter w(c, timeout_ms);
    auto fail = [&](int code, const std::string& why) { (void)w.respond(code, "application/json", json_error(why)); };
    std::string data;
    std::size_t head_end = std::string::npos;
    while ((head_end = data.find("\r\n\r\n")) == std::string::npos) {
      if (data.size() > 65536) return fail(413, "request headers larger than 64 KiB");
      auto n = c.recv_some(data, timeout_ms);
      if (!n) return fail(408, n.status().message());
      if (*n == 0) return;  // client closed without a request
    }
    auto head = parse_head(std::string_view(data).substr(0, head_end));
    if (!head) return fail(400, head.status().message());
    HttpRequest req;
    req.method = head->first[0];
    req.target = head->first[1];
    req.headers = std::move(head->headers);
    if (head->first[2].rfind("HTTP/1.", 0) != 0) return fail(400, "expected HTTP/1.x, got '" + head->first[2] + "'");
    if (auto te = header(req.headers, "Transfer-Encoding"); te && !iequals(*te, "identity"))
      return fail(411, "send the request body with Content-Length (chunked request bodies are not accepted)");
    std::size_t want = 0;
    if (auto cl = header(req.headers, "Content-Length")) {
      try {
        want = std::stoull(*cl);
      } catch (...) {
        return fail(400, "bad Content-Length '" + *cl + "'");
      }
    }
    if (want > opt_.max_body)
      return fail(413, "request body of " + std::to_string(want) + " bytes exceeds " + std::to_string(opt_.max_body));
    req.body = data.substr(head_end + 4);
    while (req.body.size() < want) {
      auto n = c.recv_some(req.body, timeout_ms);
      if (!n) return fail(408, n.status().message());
      if (*n == 0) return;
    }
    req.body.resize(want);
    try {
      handler_(req, w);
    } catch (const std::exception& e) {
      if (!w.started()) return fail(500, std::string("internal error: ") + e.what());
    }
    if (!w.started()) return fail(500, "handler gave no response");
    (void)w.end_stream();
  }

  ServerOptions opt_;
  Handler handler_;
  Socket listener_;
  std::uint16_t port_ = 0;
  std::atomic<bool> running_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::condition_variable idle_;
  std::size_t active_ = 0;
};

}  // namespace qlora::net
