// qlora/io/gguf_writer.hpp — GGUF v3 writer, byte-identical to gguf-py and
// llama-quantize for the same KVs and tensors in the same order.
//
// What "byte-identical" pins down (formats.md §1.1; layout in io/gguf.hpp):
//  * KVs are written in insertion order. set() of an existing key behaves
//    like ggml's gguf_set_val_*: the old record is *removed and the new one
//    appended at the end*, not replaced in place. A tool that rewrites a
//    model's general.file_type therefore moves that key last, exactly as
//    llama-quantize does, and our output matches theirs.
//  * Tensor infos and data are written in add order; offsets are assigned
//    by packing: offset_i = sum over j < i of pad(n_bytes_j, ALIGN).
//  * ALIGN is general.alignment when set (u32, power of two), else 32.
//  * Zero padding after the tensor infos up to ALIGN (always, even with no
//    tensors, as ggml does), and after every tensor including the last.
//  * n_dims is written as given (gguf-py writes len(shape); ggml drops
//    trailing 1s — pass the shape you want on disk).
//
// Tensor data comes either from a span (not copied: it must stay valid until
// the write) or from a producer callback that streams the bytes into a sink
// during the write, so a quantizer never has to hold the whole output model.
// Files are written atomically: a temporary file in the same directory is
// filled, fsync'ed and renamed over the target, so readers never see a
// half-written model and a failed write leaves any old file untouched.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "qlora/core/status.hpp"
#include "qlora/io/gguf.hpp"

namespace qlora::io {

/// Where a tensor producer writes its bytes, in as many chunks as it likes.
class GgufByteSink {
 public:
  virtual ~GgufByteSink() = default;
  virtual Status write(std::span<const std::byte> bytes) = 0;
  /// Convenience for typed buffers (floats, quant blocks).
  template <class T>
  Status write_values(std::span<const T> values) { return write(std::as_bytes(values)); }
};

/// Produces one tensor's bytes on demand; must write exactly its byte size.
using GgufTensorProducer = std::function<Status(GgufByteSink& sink)>;

/// Collects KVs and tensors, then writes a GGUF v3 file or buffer.
class GgufWriter {
 public:
  // ---- metadata ---------------------------------------------------------------
  /// Set `key`: removes any existing record with that key and appends the new
  /// one at the end (ggml gguf_set_val_* semantics; see the file comment).
  /// general.alignment must be a u32 power of two <= 1 MiB.
  Status set(std::string key, GgufValue value) {
    if (key.empty()) return Status::invalid("gguf writer: empty key");
    if (key == kGgufAlignmentKey) {
      const auto* a = value.scalar_if<std::uint32_t>();
      if (a == nullptr) return Status::invalid("gguf writer: general.alignment must be u32, got " + value.type_string());
      if (*a == 0 || (*a & (*a - 1)) != 0 || *a > kGgufMaxAlignment)
        return Status::invalid("gguf writer: general.alignment = " + std::to_string(*a) +
                               " must be a power of two <= " + std::to_string(kGgufMaxAlignment));
    }
    remove(key);
    kvs_.push_back({std::move(key), std::move(value)});
    return Status::ok();
  }
  Status set_u8(std::string k, std::uint8_t v) { return set(std::move(k), GgufValue(v)); }
  Status set_i8(std::string k, std::int8_t v) { return set(std::move(k), GgufValue(v)); }
  Status set_u16(std::string k, std::uint16_t v) { return set(std::move(k), GgufValue(v)); }
  Status set_i16(std::string k, std::int16_t v) { return set(std::move(k), GgufValue(v)); }
  Status set_u32(std::string k, std::uint32_t v) { return set(std::move(k), GgufValue(v)); }
  Status set_i32(std::string k, std::int32_t v) { return set(std::move(k), GgufValue(v)); }
  Status set_f32(std::string k, float v) { return set(std::move(k), GgufValue(v)); }
  Status set_bool(std::string k, bool v) { return set(std::move(k), GgufValue(v)); }
  Status set_string(std::string k, std::string_view v) { return set(std::move(k), GgufValue(v)); }
  Status set_u64(std::string k, std::uint64_t v) { return set(std::move(k), GgufValue(v)); }
  Status set_i64(std::string k, std::int64_t v) { return set(std::move(k), GgufValue(v)); }
  Status set_f64(std::string k, double v) { return set(std::move(k), GgufValue(v)); }
  /// Array of any non-array type (nested arrays cannot be expressed).
  template <GgufElement T>
  Status set_array(std::string k, std::vector<T> v) { return set(std::move(k), GgufValue(std::move(v))); }
  Status set_string_array(std::string k, std::vector<std::string> v) { return set_array(std::move(k), std::move(v)); }
  /// Shorthand for set_u32("general.alignment", a).
  Status set_alignment(std::uint32_t a) { return set_u32(std::string(kGgufAlignmentKey), a); }

  /// Remove `key`; returns whether it was present.
  bool remove(std::string_view key) {
    auto it = std::find_if(kvs_.begin(), kvs_.end(), [&](const GgufKv& kv) { return kv.key == key; });
    if (it == kvs_.end()) return false;
    kvs_.erase(it);
    return true;
  }
  const GgufValue* find(std::string_view key) const {
    for (const auto& kv : kvs_)
      if (kv.key == key) return &kv.value;
    return nullptr;
  }
  const std::vector<GgufKv>& kvs() const { return kvs_; }
  /// ALIGN used for padding: general.alignment if set, else 32.
  std::uint32_t alignment() const {
    const GgufValue* v = find(kGgufAlignmentKey);
    return v ? *v->scalar_if<std::uint32_t>() : kGgufDefaultAlignment;  // type checked in set()
  }

  // ---- tensors ----------------------------------------------------------------
  /// Add a tensor whose bytes are `data` (not copied: keep it alive until the
  /// write). `ne` is in ggml order (ne[0] = row length), at most 4 entries.
  Status add_tensor(std::string name, std::vector<std::uint64_t> ne, std::uint32_t ggml_type,
                    std::span<const std::byte> data) {
    QLORA_TRY(add_info(std::move(name), std::move(ne), ggml_type));
    Pending& t = tensors_.back();
    if (data.size() != t.n_bytes) {
      const std::string msg = "gguf writer: tensor '" + t.name + "' needs " + std::to_string(t.n_bytes) +
                              " bytes, got " + std::to_string(data.size());
      tensors_.pop_back();
      return Status::invalid(msg);
    }
    t.data = data;
    return Status::ok();
  }
  /// Add a tensor whose bytes `produce` streams into a sink during the write.
  Status add_tensor(std::string name, std::vector<std::uint64_t> ne, std::uint32_t ggml_type,
                    GgufTensorProducer produce) {
    if (!produce) return Status::invalid("gguf writer: tensor '" + name + "' has an empty producer");
    QLORA_TRY(add_info(std::move(name), std::move(ne), ggml_type));
    tensors_.back().produce = std::move(produce);
    return Status::ok();
  }
  std::size_t tensor_count() const { return tensors_.size(); }

  // ---- output -----------------------------------------------------------------
  /// The whole file in memory (tests, fuzz seeds, small adapters).
  Result<std::vector<std::byte>> write_buffer() const {
    BufferOut out;
    QLORA_TRY(emit(out));
    return std::move(out.bytes);
  }

  /// Write `path` atomically (temp file in the same directory + rename).
  Status write_file(const std::string& path) const {
    std::string tmp = path + ".tmp-XXXXXX";
    const int fd = ::mkstemp(tmp.data());
    if (fd < 0) return os_error(path, "cannot create temporary file " + tmp);
    // mkstemp creates 0600; a model file should be readable like any other.
    ::fchmod(fd, 0644);
    FdOut out(fd, path);
    Status st = emit(out);
    if (st) st = out.flush();
    if (st && ::fsync(fd) != 0) st = os_error(path, "fsync of " + tmp + " failed");
    if (::close(fd) != 0 && st) st = os_error(path, "close of " + tmp + " failed");
    if (st && ::rename(tmp.c_str(), path.c_str()) != 0) st = os_error(path, "rename from " + tmp + " failed");
    if (!st) {
      ::unlink(tmp.c_str());  // best effort; the target is untouched
      return st;
    }
    sync_parent_dir(path);
    return Status::ok();
  }

 private:
  struct Pending {
    std::string name;
    std::vector<std::uint64_t> ne;
    std::uint32_t type = 0;
    std::uint64_t n_bytes = 0;
    std::span<const std::byte> data;  // used when produce is empty
    GgufTensorProducer produce;
  };

  Status add_info(std::string name, std::vector<std::uint64_t> ne, std::uint32_t type) {
    if (name.size() > kGgufMaxNameLen)
      return Status::invalid("gguf writer: tensor name '" + name + "' is longer than " + std::to_string(kGgufMaxNameLen) +
                             " bytes");
    for (const auto& t : tensors_)
      if (t.name == name) return Status::invalid("gguf writer: duplicate tensor name '" + name + "'");
    auto n_bytes = gguf_tensor_bytes(ne, type);
    if (!n_bytes) return Status::invalid("gguf writer: tensor '" + name + "': " + n_bytes.status().message());
    tensors_.push_back({std::move(name), std::move(ne), type, *n_bytes, {}, {}});
    return Status::ok();
  }

  // Outputs: a sink that also counts bytes, so padding can be computed from
  // the running position exactly as gguf-py's write_padding does.
  struct BufferOut {
    std::vector<std::byte> bytes;
    std::uint64_t written = 0;
    Status put(const void* p, std::size_t n) {
      const auto* b = static_cast<const std::byte*>(p);
      bytes.insert(bytes.end(), b, b + n);
      written += n;
      return Status::ok();
    }
  };
  struct FdOut {
    static constexpr std::size_t kBufferBytes = 1 << 20;  // few syscalls, modest memory
    int fd;
    const std::string& path;
    std::vector<std::byte> buf;
    std::uint64_t written = 0;
    FdOut(int f, const std::string& p) : fd(f), path(p) { buf.reserve(kBufferBytes); }
    Status put(const void* p, std::size_t n) {
      const auto* b = static_cast<const std::byte*>(p);
      written += n;
      if (buf.size() + n > kBufferBytes) {
        QLORA_TRY(flush());
        if (n >= kBufferBytes) return write_all(b, n);  // big tensor: skip the copy
      }
      buf.insert(buf.end(), b, b + n);
      return Status::ok();
    }
    Status flush() {
      Status st = write_all(buf.data(), buf.size());
      buf.clear();
      return st;
    }
    Status write_all(const std::byte* b, std::size_t n) {
      while (n > 0) {
        const ::ssize_t k = ::write(fd, b, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return os_error(path, "write failed");
        b += k;
        n -= static_cast<std::size_t>(k);
      }
      return Status::ok();
    }
  };

  // Forwards a producer's chunks to the output, refusing to overrun the
  // tensor's declared size (that would shift every later tensor).
  template <class Out>
  class CountingSink final : public GgufByteSink {
   public:
    CountingSink(Out& out, const Pending& t) : out_(out), t_(t) {}
    Status write(std::span<const std::byte> bytes) override {
      if (bytes.size() > t_.n_bytes - count_)
        return Status::invalid("gguf writer: producer of tensor '" + t_.name + "' wrote more than its " +
                               std::to_string(t_.n_bytes) + " bytes");
      count_ += bytes.size();
      return out_.put(bytes.data(), bytes.size());
    }
    std::uint64_t count() const { return count_; }

   private:
    Out& out_;
    const Pending& t_;
    std::uint64_t count_ = 0;
  };

  template <class Out, class T>
  static Status put_pod(Out& out, const T& v) { return out.put(&v, sizeof v); }

  template <class Out>
  static Status put_string(Out& out, std::string_view s) {
    QLORA_TRY(put_pod(out, static_cast<std::uint64_t>(s.size())));
    return out.put(s.data(), s.size());
  }

  template <class Out>
  static Status pad(Out& out, std::uint64_t align) {
    static constexpr std::byte kZeros[256] = {};
    std::uint64_t n = detail::pad_to(out.written, align) - out.written;
    while (n > 0) {
      const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(n, sizeof kZeros));
      QLORA_TRY(out.put(kZeros, k));
      n -= k;
    }
    return Status::ok();
  }

  // One element of a scalar or array, in its on-disk encoding.
  template <class Out, class T>
  static Status put_element(Out& out, const T& x) {
    if constexpr (std::is_same_v<T, std::string>) return put_string(out, x);
    else if constexpr (std::is_same_v<T, bool>) return put_pod(out, static_cast<std::uint8_t>(x ? 1 : 0));
    else return put_pod(out, x);
  }

  template <class Out>
  static Status put_value(Out& out, const GgufValue& v) {
    QLORA_TRY(put_pod(out, static_cast<std::uint32_t>(v.type())));
    return std::visit(
        [&](const auto& x) -> Status {
          using T = std::decay_t<decltype(x)>;
          if constexpr (!std::is_same_v<T, GgufArray>) {
            return put_element(out, x);
          } else {
            QLORA_TRY(put_pod(out, static_cast<std::uint32_t>(v.element_type())));
            QLORA_TRY(put_pod(out, static_cast<std::uint64_t>(v.size())));
            return std::visit(
                [&](const auto& a) -> Status {
                  if constexpr (!std::is_same_v<std::decay_t<decltype(a)>, std::monostate>) {
                    using E = typename std::decay_t<decltype(a)>::value_type;
                    // Plain numbers are already in file layout: one put.
                    if constexpr (!std::is_same_v<E, bool> && !std::is_same_v<E, std::string>)
                      return out.put(a.data(), a.size() * sizeof(E));
                    for (const auto& e : a) QLORA_TRY(put_element(out, static_cast<E>(e)));
                  }
                  return Status::ok();
                },
                x);
          }
        },
        v.storage());
  }

  template <class Out>
  Status emit(Out& out) const {
    const std::uint64_t align = alignment();
    QLORA_TRY(out.put("GGUF", 4));
    QLORA_TRY(put_pod(out, kGgufVersion));
    QLORA_TRY(put_pod(out, static_cast<std::uint64_t>(tensors_.size())));
    QLORA_TRY(put_pod(out, static_cast<std::uint64_t>(kvs_.size())));
    for (const auto& kv : kvs_) {
      QLORA_TRY(put_string(out, kv.key));
      QLORA_TRY(put_value(out, kv.value));
    }
    std::uint64_t offset = 0;
    for (const auto& t : tensors_) {
      QLORA_TRY(put_string(out, t.name));
      QLORA_TRY(put_pod(out, static_cast<std::uint32_t>(t.ne.size())));
      for (std::uint64_t n : t.ne) QLORA_TRY(put_pod(out, n));
      QLORA_TRY(put_pod(out, t.type));
      QLORA_TRY(put_pod(out, offset));
      offset += detail::pad_to(t.n_bytes, align);
    }
    QLORA_TRY(pad(out, align));
    for (const auto& t : tensors_) {
      if (t.produce) {
        CountingSink<Out> sink(out, t);
        QLORA_TRY(t.produce(sink));
        if (sink.count() != t.n_bytes)
          return Status::invalid("gguf writer: producer of tensor '" + t.name + "' wrote " +
                                 std::to_string(sink.count()) + " bytes, expected " + std::to_string(t.n_bytes));
      } else {
        QLORA_TRY(out.put(t.data.data(), t.data.size()));
      }
      QLORA_TRY(pad(out, align));
    }
    return Status::ok();
  }

  static Status os_error(const std::string& path, const std::string& what) {
    const int err = errno;
    return Status::io(path + ": " + what + ": " + std::strerror(err));
  }

  // After a rename the new directory entry is durable only once the directory
  // itself is synced. Failure here cannot un-write the file, so it is ignored.
  static void sync_parent_dir(const std::string& path) {
    const auto slash = path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  }

  std::vector<GgufKv> kvs_;
  std::vector<Pending> tensors_;
};

}  // namespace qlora::io
