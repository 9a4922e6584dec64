// qlora/net/socket.hpp — the few POSIX socket operations HTTP needs, with
// timeouts and errors as Status: a connection that owns its descriptor,
// connect to host:port (IPv4/IPv6 via getaddrinfo) bounded by a timeout, and
// send-all / receive-some that wait with poll() so nothing blocks forever.
#pragma once

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>

#include "qlora/core/status.hpp"

namespace qlora::net {

/// An owned socket descriptor (closed on destruction; movable).
class Socket {
 public:
  Socket() = default;
  explicit Socket(int fd) : fd_(fd) {}
  Socket(Socket&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Socket& operator=(Socket&& o) noexcept {
    if (this != &o) {
      close();
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() { close(); }

  int fd() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  /// Send every byte of `data`, waiting at most `timeout_ms` for each write.
  Status send_all(std::string_view data, int timeout_ms) const {
    std::size_t sent = 0;
    while (sent < data.size()) {
      pollfd p{fd_, POLLOUT, 0};
      const int r = ::poll(&p, 1, timeout_ms);
      if (r == 0) return Status::io("send timed out");
      if (r < 0 && errno != EINTR) return Status::io(std::string("poll: ") + std::strerror(errno));
      if (r < 0) continue;
      const ssize_t n = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return Status::io(std::string("send: ") + std::strerror(errno));
      }
      sent += std::size_t(n);
    }
    return Status::ok();
  }

  /// Append what arrives (up to 64 KiB) to `out`; 0 at end of stream.
  Result<std::size_t> recv_some(std::string& out, int timeout_ms) const {
    for (;;) {
      pollfd p{fd_, POLLIN, 0};
      const int r = ::poll(&p, 1, timeout_ms);
      if (r == 0) return Status::io("receive timed out after " + std::to_string(timeout_ms) + " ms");
      if (r < 0) {
        if (errno == EINTR) continue;
        return Status::io(std::string("poll: ") + std::strerror(errno));
      }
      char buf[65536];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return Status::io(std::string("recv: ") + std::strerror(errno));
      }
      out.append(buf, std::size_t(n));
      return std::size_t(n);
    }
  }

 private:
  int fd_ = -1;
};

/// Connect to host:port within `timeout_ms`.
inline Result<Socket> connect_tcp(const std::string& host, std::uint16_t port, int timeout_ms) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string port_s = std::to_string(port);
  if (int e = ::getaddrinfo(host.c_str(), port_s.c_str(), &hints, &res); e != 0)
    return Status::io("cannot resolve " + host + ": " + ::gai_strerror(e));
  std::string last = "no address";
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    Socket s(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
    if (!s.valid()) continue;
    const int flags = ::fcntl(s.fd(), F_GETFL, 0);
    ::fcntl(s.fd(), F_SETFL, flags | O_NONBLOCK);
    int r = ::connect(s.fd(), a->ai_addr, a->ai_addrlen);
    if (r < 0 && errno == EINPROGRESS) {
      pollfd p{s.fd(), POLLOUT, 0};
      r = ::poll(&p, 1, timeout_ms);
      if (r == 0) {
        last = "connect timed out";
        continue;
      }
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(s.fd(), SOL_SOCKET, SO_ERROR, &err, &len);
      r = err == 0 ? 0 : -1;
      if (err) errno = err;
    }
    if (r < 0) {
      last = std::strerror(errno);
      continue;
    }
    ::fcntl(s.fd(), F_SETFL, flags);
    int one = 1;
    ::setsockopt(s.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::freeaddrinfo(res);
    return s;
  }
  ::freeaddrinfo(res);
  return Status::io("cannot connect to " + host + ":" + port_s + ": " + last);
}

}  // namespace qlora::net
