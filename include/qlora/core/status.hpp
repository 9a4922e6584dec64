// qlora/core/status.hpp — errors with context, for host APIs.
//
// Library code never exits or prints: host functions that can fail on user
// input return Status (or Result<T>), whose message names the file, offset or
// line. Apps turn a failed Status into an exit code; tests assert on messages.
#pragma once

#include <cassert>
#include <cstdint>
#include <string>
#include <utility>
#include <variant>

namespace qlora {

enum class ErrorCode : std::uint8_t {
  kOk = 0,
  kInvalidArgument,  // caller passed something impossible (shape, type, option)
  kCorrupt,          // a file's bytes contradict its own format
  kIo,               // the OS refused (open, mmap, write, rename)
  kUnsupported,      // valid input we deliberately do not handle (lists what is)
  kNumeric,          // NaN / Inf where finite values are required
};

/// Outcome of a host operation: ok, or an error code with a human message.
class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status ok() { return {}; }
  static Status error(ErrorCode code, std::string message) { return Status(code, std::move(message)); }
  static Status invalid(std::string m) { return error(ErrorCode::kInvalidArgument, std::move(m)); }
  static Status corrupt(std::string m) { return error(ErrorCode::kCorrupt, std::move(m)); }
  static Status io(std::string m) { return error(ErrorCode::kIo, std::move(m)); }
  static Status unsupported(std::string m) { return error(ErrorCode::kUnsupported, std::move(m)); }
  static Status numeric(std::string m) { return error(ErrorCode::kNumeric, std::move(m)); }

  bool is_ok() const { return code_ == ErrorCode::kOk; }
  explicit operator bool() const { return is_ok(); }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }

  /// Prefix the message with where it happened ("model.gguf: ").
  Status with_context(const std::string& where) const& {
    if (is_ok()) return *this;
    return Status(code_, where + ": " + message_);
  }

 private:
  Status(ErrorCode c, std::string m) : code_(c), message_(std::move(m)) {}
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

/// A value or the Status that explains why there is none.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}            // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {       // NOLINT: implicit by design
    assert(!std::get<Status>(v_).is_ok() && "a Result needs a value or an error");
  }
  bool is_ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return is_ok(); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  /// The error, or an ok Status. A reference into this Result (or to a shared
  /// ok value), so `const auto& m = r.status().message();` does not dangle
  /// while `r` lives.
  const Status& status() const {
    static const Status kOk;
    return is_ok() ? kOk : std::get<Status>(v_);
  }

 private:
  std::variant<T, Status> v_;
};

}  // namespace qlora

/// Return early from a Status-returning function when `expr` failed.
#define QLORA_TRY(expr)                              \
  do {                                               \
    ::qlora::Status qlora_try_status_ = (expr);      \
    if (!qlora_try_status_.is_ok()) return qlora_try_status_; \
  } while (0)
