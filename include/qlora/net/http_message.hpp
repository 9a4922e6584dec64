// qlora/net/http_message.hpp — HTTP/1.1 messages, URLs and header parsing.
//
// The judge client (Ollama / OpenAI-compatible servers) and `qlora serve`
// speak plain HTTP/1.1 on loopback or a LAN; TLS is out of scope (put a
// reverse proxy in front). This header holds what both sides share: the
// message structs, case-insensitive header lookup, the "http://host:port/path"
// URL form, and the parser of a request or response head with size limits,
// so a malformed or oversized message is an error with a reason, not a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "qlora/core/status.hpp"

namespace qlora::net {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;  // GET, POST, ...
  std::string target;  // path and query, e.g. /api/chat
  Headers headers;
  std::string body;
};

struct HttpResponse {
  int status = 0;
  std::string body;
  Headers headers;
};

inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = char(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = char(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

/// The value of header `name` (first occurrence, case-insensitive name).
inline std::optional<std::string> header(const Headers& h, std::string_view name) {
  for (const auto& [k, v] : h)
    if (iequals(k, name)) return v;
  return std::nullopt;
}

inline const char* status_text(int code) {
  switch (code) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

struct Url {
  std::string host;
  std::uint16_t port = 80;
  std::string path = "/";
};

/// "http://host[:port][/path]"; https and other schemes are refused by name.
inline Result<Url> parse_url(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme)
    return Status::invalid("URL '" + std::string(url) + "': only http://host:port/path is supported");
  std::string_view rest = url.substr(kScheme.size());
  const std::size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  Url u;
  u.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  const std::size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos) {
    const std::string_view port = authority.substr(colon + 1);
    unsigned long v = 0;
    if (port.empty() || port.size() > 5) return Status::invalid("URL '" + std::string(url) + "': bad port");
    for (char c : port) {
      if (c < '0' || c > '9') return Status::invalid("URL '" + std::string(url) + "': bad port");
      v = v * 10 + unsigned(c - '0');
    }
    if (v == 0 || v > 65535) return Status::invalid("URL '" + std::string(url) + "': port out of range");
    u.port = std::uint16_t(v);
    authority = authority.substr(0, colon);
  }
  if (authority.empty()) return Status::invalid("URL '" + std::string(url) + "': no host");
  u.host = std::string(authority);
  return u;
}

/// A parsed start line + headers ("head") of a request or a response.
struct MessageHead {
  std::string first[3];  // request: method, target, version; response: version, code, reason
  Headers headers;
};

/// Parse `head` (everything before the blank line, CRLF or LF line ends).
inline Result<MessageHead> parse_head(std::string_view head) {
  MessageHead m;
  std::size_t pos = 0;
  auto next_line = [&]() -> std::optional<std::string_view> {
    if (pos >= head.size()) return std::nullopt;
    std::size_t e = head.find('\n', pos);
    if (e == std::string_view::npos) e = head.size();
    std::string_view line = head.substr(pos, e - pos);
    pos = e + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
  };
  auto start = next_line();
  if (!start || start->empty()) return Status::invalid("empty start line");
  const std::size_t a = start->find(' ');
  const std::size_t b = a == std::string_view::npos ? a : start->find(' ', a + 1);
  if (a == std::string_view::npos) return Status::invalid("malformed start line '" + std::string(*start) + "'");
  m.first[0] = std::string(start->substr(0, a));
  m.first[1] = std::string(start->substr(a + 1, b == std::string_view::npos ? std::string_view::npos : b - a - 1));
  if (b != std::string_view::npos) m.first[2] = std::string(start->substr(b + 1));
  while (auto line = next_line()) {
    if (line->empty()) break;
    const std::size_t colon = line->find(':');
    if (colon == std::string_view::npos || colon == 0)
      return Status::invalid("malformed header line '" + std::string(*line) + "'");
    std::string_view v = line->substr(colon + 1);
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    m.headers.emplace_back(std::string(line->substr(0, colon)), std::string(v));
  }
  return m;
}

/// Decode a complete chunked body; nullopt while more bytes are needed,
/// an error when the framing is malformed.
inline Result<std::optional<std::string>> decode_chunked(std::string_view data) {
  std::string out;
  std::size_t pos = 0;
  for (;;) {
    const std::size_t e = data.find("\r\n", pos);
    if (e == std::string_view::npos) return std::optional<std::string>();
    std::size_t size = 0;
    std::size_t i = pos;
    for (; i < e && data[i] != ';'; ++i) {
      const char c = data[i];
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0 || size > (std::size_t(1) << 40)) return Status::invalid("malformed chunk size");
      size = size * 16 + std::size_t(d);
    }
    if (i == pos) return Status::invalid("malformed chunk size");
    pos = e + 2;
    if (size == 0) {
      // Trailers (ignored) end with an empty line.
      if (data.find("\r\n", pos) == std::string_view::npos) return std::optional<std::string>();
      return std::optional<std::string>(std::move(out));
    }
    if (data.size() < pos + size + 2) return std::optional<std::string>();
    out.append(data.substr(pos, size));
    pos += size;
    if (data.substr(pos, 2) != "\r\n") return Status::invalid("chunk not followed by CRLF");
    pos += 2;
  }
}

}  // namespace qlora::net
