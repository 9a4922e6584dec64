// qlora/io/safetensors.hpp — read and write .safetensors files.
//
//   byte 0        8                       8+N                       EOF
//        +--------+-----------------------+--------------------------+
//        | N u64  | JSON header, N bytes  | tensor data (no holes)   |
//        |  (LE)  | padded with ' ' to 8  | offsets relative to 8+N  |
//        +--------+-----------------------+--------------------------+
//   header: {"__metadata__":{"k":"v",...},            (optional, str -> str)
//            "name":{"dtype":"F32","shape":[2,3],"data_offsets":[begin,end]}, ...}
//
// Reading is strict in the same ways as the reference implementation (the
// Rust `safetensors` crate): header length <= 100 MB and inside the file,
// valid UTF-8 JSON, known dtype, end - begin == elements * dtype size, and
// the tensors tile the data section exactly (no overlap, no gap, nothing after
// the last one). Every error names the file and the offending tensor/offset.
// Data are little-endian, as the format requires and as this host is.
//
// Writing reproduces what the Python library writes byte-for-byte (checked
// against a file made by safetensors.numpy.save_file in tests/data/safetensors):
// tensors sorted by dtype, largest first in the crate's Dtype enum order
// (I64, F32, I32, BF16, F16, I8, U8 for ours), then by name; compact JSON
// with "__metadata__" first; header padded with spaces to a multiple of 8.
// One deliberate difference: the crate emits metadata keys in hash-map order
// (random for more than one key); we sort them.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "qlora/core/half.hpp"
#include "qlora/core/status.hpp"
#include "qlora/io/mapped_file.hpp"

namespace qlora::io {

/// The element types we read. Writing supports the same set.
enum class StDtype : std::uint8_t { U8, I8, F16, BF16, I32, F32, I64 };

struct StDtypeInfo {
  StDtype dtype;
  std::string_view name;  // header spelling
  std::size_t size;       // bytes per element
  int order;              // position in the Rust crate's Dtype enum (sort key)
};

inline constexpr StDtypeInfo kStDtypes[] = {
    {StDtype::U8, "U8", 1, 4},    {StDtype::I8, "I8", 1, 5},    {StDtype::F16, "F16", 2, 13},
    {StDtype::BF16, "BF16", 2, 14}, {StDtype::I32, "I32", 4, 15}, {StDtype::F32, "F32", 4, 17},
    {StDtype::I64, "I64", 8, 20},
};

constexpr const StDtypeInfo& st_dtype_info(StDtype d) { return kStDtypes[static_cast<int>(d)]; }

inline std::optional<StDtype> parse_st_dtype(std::string_view s) {
  for (const auto& i : kStDtypes)
    if (i.name == s) return i.dtype;
  return std::nullopt;
}

/// One tensor's header entry. `begin`/`end` are relative to the data section.
struct StTensorInfo {
  std::string name;
  StDtype dtype = StDtype::F32;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0, end = 0;
  std::uint64_t numel() const {
    std::uint64_t n = 1;
    for (auto d : shape) n *= std::uint64_t(d);
    return n;
  }
};

/// Largest header the reference reader accepts.
inline constexpr std::uint64_t kStMaxHeader = 100'000'000;

/// A parsed file: the header plus a view of the bytes (mapped or owned).
class SafetensorsFile {
 public:
  /// Map and parse `path`.
  static Result<SafetensorsFile> open(const std::string& path) {
    auto mf = MappedFile::open(path);
    if (!mf) return mf.status();
    SafetensorsFile f;
    f.name_ = path;
    f.mapped_ = std::move(*mf);
    f.bytes_ = f.mapped_.bytes();
    QLORA_TRY(f.parse());
    return f;
  }

  /// Parse an in-memory image; `name` is used in error messages.
  static Result<SafetensorsFile> from_bytes(std::vector<std::byte> bytes, std::string name) {
    SafetensorsFile f;
    f.name_ = std::move(name);
    f.owned_ = std::move(bytes);
    f.bytes_ = std::span<const std::byte>(f.owned_);
    QLORA_TRY(f.parse());
    return f;
  }

  SafetensorsFile(SafetensorsFile&& o) noexcept { *this = std::move(o); }
  SafetensorsFile& operator=(SafetensorsFile&& o) noexcept {
    // A moved vector keeps its buffer and a moved mapping keeps its pages, so
    // the span stays valid; re-derive it from whichever one owns the bytes.
    name_ = std::move(o.name_);
    owned_ = std::move(o.owned_);
    mapped_ = std::move(o.mapped_);
    bytes_ = mapped_.size() ? mapped_.bytes() : std::span<const std::byte>(owned_);
    tensors_ = std::move(o.tensors_);
    metadata_ = std::move(o.metadata_);
    data_start_ = o.data_start_;
    return *this;
  }

  /// Tensors in file (offset) order.
  const std::vector<StTensorInfo>& tensors() const { return tensors_; }
  /// `__metadata__`, empty if absent.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& name() const { return name_; }

  const StTensorInfo* find(std::string_view tensor) const {
    for (const auto& t : tensors_)
      if (t.name == tensor) return &t;
    return nullptr;
  }

  /// Raw little-endian bytes of a tensor (bounds were checked at parse time).
  std::span<const std::byte> data(const StTensorInfo& t) const {
    return bytes_.subspan(std::size_t(data_start_ + t.begin), std::size_t(t.end - t.begin));
  }

  /// A tensor's bytes, requiring its dtype (and, if given, its shape).
  Result<std::span<const std::byte>> get(std::string_view tensor, StDtype want,
                                         const std::vector<std::int64_t>* shape = nullptr) const {
    const StTensorInfo* t = find(tensor);
    if (!t) return Status::invalid(name_ + ": no tensor '" + std::string(tensor) + "'");
    if (t->dtype != want)
      return Status::invalid(name_ + ": tensor '" + t->name + "' is " + std::string(st_dtype_info(t->dtype).name) +
                             ", expected " + std::string(st_dtype_info(want).name));
    if (shape && *shape != t->shape) return Status::invalid(name_ + ": tensor '" + t->name + "' has an unexpected shape");
    return data(*t);
  }

  /// Any float tensor (F32/F16/BF16) converted to fp32.
  Result<std::vector<float>> read_f32(std::string_view tensor) const {
    const StTensorInfo* t = find(tensor);
    if (!t) return Status::invalid(name_ + ": no tensor '" + std::string(tensor) + "'");
    const auto b = data(*t);
    std::vector<float> out(std::size_t(t->numel()));
    for (std::size_t i = 0; i < out.size(); ++i) {
      if (t->dtype == StDtype::F32) {
        std::memcpy(&out[i], b.data() + 4 * i, 4);
      } else if (t->dtype == StDtype::F16 || t->dtype == StDtype::BF16) {
        std::uint16_t h;
        std::memcpy(&h, b.data() + 2 * i, 2);
        out[i] = t->dtype == StDtype::F16 ? fp16_to_f32(h) : bf16_to_f32(h);
      } else {
        return Status::invalid(name_ + ": tensor '" + t->name + "' is not a float tensor");
      }
    }
    return out;
  }

 private:
  SafetensorsFile() = default;

  Status fail(const std::string& what) const { return Status::corrupt(name_ + ": " + what); }

  Status parse() {
    const std::uint64_t size = bytes_.size();
    if (size < 8) return fail("file is " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
    std::uint64_t n = 0;
    std::memcpy(&n, bytes_.data(), 8);  // little-endian host
    if (n > kStMaxHeader) return fail("header length " + std::to_string(n) + " at offset 0 exceeds 100000000");
    if (n > size - 8)
      return fail("header length " + std::to_string(n) + " at offset 0 runs past the end of the file (" +
                  std::to_string(size) + " bytes)");
    // Tensor offsets are relative to here. The reference writer pads the
    // header with spaces so this is a multiple of 8; readers must not assume it.
    data_start_ = 8 + n;
    const char* hp = reinterpret_cast<const char*>(bytes_.data() + 8);
    // No exceptions: a parse error yields a "discarded" value.
    const nlohmann::json h = nlohmann::json::parse(hp, hp + n, nullptr, /*allow_exceptions=*/false);
    if (h.is_discarded()) return fail("header (offset 8, " + std::to_string(n) + " bytes) is not valid UTF-8 JSON");
    if (!h.is_object()) return fail("header is not a JSON object");
    // nlohmann keeps the last of duplicate keys; serde_json (the reference)
    // does the same when it builds its map, so both readers agree.
    for (const auto& [key, v] : h.items()) {
      if (key == "__metadata__") {
        if (!v.is_object()) return fail("__metadata__ is not an object");
        for (const auto& [mk, mv] : v.items()) {
          if (!mv.is_string()) return fail("__metadata__ value for '" + mk + "' is not a string");
          metadata_[mk] = mv.get<std::string>();
        }
        continue;
      }
      QLORA_TRY(parse_tensor(key, v));
    }
    // Tile check: sorted by offset, each tensor starts where the last ended.
    // The spec forbids holes (they would allow polyglot files) and overlaps
    // (aliasing); zero-size tensors may share an offset with their successor,
    // hence the tie-break on `end`.
    std::sort(tensors_.begin(), tensors_.end(), [](const StTensorInfo& a, const StTensorInfo& b) {
      return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    std::uint64_t at = 0;
    for (const auto& t : tensors_) {
      if (t.begin < at) return fail("tensor '" + t.name + "' at data offset " + std::to_string(t.begin) + " overlaps the previous tensor (which ends at " + std::to_string(at) + ")");
      if (t.begin > at) return fail("gap before tensor '" + t.name + "': data offsets " + std::to_string(at) + ".." + std::to_string(t.begin) + " belong to no tensor");
      at = t.end;
    }
    const std::uint64_t data_len = size - data_start_;
    if (at > data_len)
      return fail("tensor data ends at file offset " + std::to_string(data_start_ + at) + " but the file has " +
                  std::to_string(size) + " bytes");
    if (at < data_len) return fail(std::to_string(data_len - at) + " trailing bytes after the last tensor (file offset " + std::to_string(data_start_ + at) + ")");
    return Status::ok();
  }

  Status parse_tensor(const std::string& key, const nlohmann::json& v) {
    const std::string where = "tensor '" + key + "'";
    if (!v.is_object()) return fail(where + ": entry is not an object");
    const auto dt = v.find("dtype");
    const auto sh = v.find("shape");
    const auto off = v.find("data_offsets");
    if (dt == v.end() || sh == v.end() || off == v.end())
      return fail(where + ": needs dtype, shape and data_offsets");
    if (!dt->is_string()) return fail(where + ": dtype is not a string");
    const auto d = parse_st_dtype(dt->get<std::string>());
    if (!d) return fail(where + ": unsupported dtype '" + dt->get<std::string>() + "' (supported: U8 I8 F16 BF16 I32 F32 I64)");
    StTensorInfo t;
    t.name = key;
    t.dtype = *d;
    if (!sh->is_array()) return fail(where + ": shape is not an array");
    // Shapes come from untrusted input: check every product for overflow
    // before it is compared with the byte range.
    std::uint64_t numel = 1;
    bool overflow = false;
    for (const auto& e : *sh) {
      if (!e.is_number_unsigned()) return fail(where + ": shape entries must be non-negative integers");
      const std::uint64_t x = e.get<std::uint64_t>();
      if (x > std::uint64_t(INT64_MAX)) return fail(where + ": dimension too large");
      if (x != 0 && numel > UINT64_MAX / x) overflow = true;
      numel = overflow ? 0 : numel * x;
      t.shape.push_back(std::int64_t(x));
    }
    if (!off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() || !(*off)[1].is_number_unsigned())
      return fail(where + ": data_offsets must be [begin, end] non-negative integers");
    t.begin = (*off)[0].get<std::uint64_t>();
    t.end = (*off)[1].get<std::uint64_t>();
    if (t.end < t.begin)
      return fail(where + ": data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) + "] end before they begin");
    const std::size_t es = st_dtype_info(t.dtype).size;
    if (overflow || numel > UINT64_MAX / es) return fail(where + ": shape overflows");
    if (t.end - t.begin != numel * es)
      return fail(where + ": data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) + "] hold " +
                  std::to_string(t.end - t.begin) + " bytes but " + std::string(dt->get<std::string>()) +
                  " shape needs " + std::to_string(numel * es));
    if (t.end > bytes_.size() - data_start_)
      return fail(where + ": data_offsets end " + std::to_string(t.end) + " (file offset " +
                  std::to_string(data_start_ + t.end) + ") is past the end of the file (" + std::to_string(bytes_.size()) + " bytes)");
    tensors_.push_back(std::move(t));
    return Status::ok();
  }

  std::string name_;                   // path or caller-given label, for errors
  std::vector<std::byte> owned_;       // bytes when built by from_bytes()
  MappedFile mapped_;                  // bytes when built by open()
  std::span<const std::byte> bytes_;   // whichever of the two holds the file
  std::vector<StTensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
  std::uint64_t data_start_ = 0;       // 8 + header length
};

// ---------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------

/// A tensor to write: borrowed bytes, little-endian, row-major.
struct StTensorView {
  std::string name;
  StDtype dtype = StDtype::F32;
  std::vector<std::int64_t> shape;
  std::span<const std::byte> bytes;
};

/// A tensor that owns its bytes (handy for building state dicts).
struct StTensor {
  std::string name;
  StDtype dtype = StDtype::F32;
  std::vector<std::int64_t> shape;
  std::vector<std::byte> bytes;
  StTensorView view() const { return {name, dtype, shape, bytes}; }

  template <class T>
  static StTensor from(std::string name, StDtype dtype, std::vector<std::int64_t> shape, std::span<const T> values) {
    StTensor t{std::move(name), dtype, std::move(shape), {}};
    t.bytes.resize(values.size_bytes());
    if (!values.empty()) std::memcpy(t.bytes.data(), values.data(), values.size_bytes());
    return t;
  }
};

namespace detail {
/// JSON string literal escaped as serde_json does (", \, control chars).
inline void json_escape(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += char(c);
        }
    }
  }
  out += '"';
}
}  // namespace detail

/// Build a complete file image. Metadata, if given, is written (even empty).
inline Result<std::vector<std::byte>> serialize_safetensors(
    std::vector<StTensorView> tensors, const std::optional<std::map<std::string, std::string>>& metadata = std::nullopt) {
  for (const auto& t : tensors) {
    std::uint64_t numel = 1;
    for (auto d : t.shape) {
      if (d < 0) return Status::invalid("safetensors: tensor '" + t.name + "' has a negative dimension");
      numel *= std::uint64_t(d);
    }
    if (numel * st_dtype_info(t.dtype).size != t.bytes.size())
      return Status::invalid("safetensors: tensor '" + t.name + "' has " + std::to_string(t.bytes.size()) +
                             " bytes, its dtype and shape need " + std::to_string(numel * st_dtype_info(t.dtype).size));
    if (t.name == "__metadata__") return Status::invalid("safetensors: '__metadata__' is reserved");
  }
  // The crate's order: dtype descending by enum position, then name (bytes).
  std::sort(tensors.begin(), tensors.end(), [](const StTensorView& a, const StTensorView& b) {
    const int oa = st_dtype_info(a.dtype).order, ob = st_dtype_info(b.dtype).order;
    return oa != ob ? oa > ob : a.name < b.name;
  });
  {
    std::vector<std::string_view> names;
    for (const auto& t : tensors) names.push_back(t.name);
    std::sort(names.begin(), names.end());
    const auto dup = std::adjacent_find(names.begin(), names.end());
    if (dup != names.end()) return Status::invalid("safetensors: duplicate tensor name '" + std::string(*dup) + "'");
  }
  // Compact JSON, built by hand so the bytes (key order, no spaces) are ours
  // to control: nlohmann would sort keys and format numbers its own way.
  std::string h = "{";
  bool first = true;
  if (metadata) {
    h += "\"__metadata__\":{";
    bool mfirst = true;
    for (const auto& [k, v] : *metadata) {  // std::map: sorted keys
      if (!mfirst) h += ',';
      mfirst = false;
      detail::json_escape(h, k);
      h += ':';
      detail::json_escape(h, v);
    }
    h += '}';
    first = false;
  }
  std::uint64_t offset = 0;
  for (const auto& t : tensors) {
    if (!first) h += ',';
    first = false;
    detail::json_escape(h, t.name);
    h += ":{\"dtype\":\"";
    h += st_dtype_info(t.dtype).name;
    h += "\",\"shape\":[";
    for (std::size_t i = 0; i < t.shape.size(); ++i) {
      if (i) h += ',';
      h += std::to_string(t.shape[i]);
    }
    h += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + t.bytes.size()) + "]}";
    offset += t.bytes.size();
  }
  h += '}';
  h.resize((h.size() + 7) / 8 * 8, ' ');  // pad to 8 so tensor data is 8-aligned
  if (h.size() > kStMaxHeader) return Status::invalid("safetensors: header exceeds 100000000 bytes");
  std::vector<std::byte> out(8 + h.size() + offset);
  const std::uint64_t n = h.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, h.data(), h.size());
  std::size_t at = 8 + h.size();
  for (const auto& t : tensors) {
    if (!t.bytes.empty()) std::memcpy(out.data() + at, t.bytes.data(), t.bytes.size());
    at += t.bytes.size();
  }
  return out;
}

/// Write a file (via a temporary sibling and rename, so readers never see a
/// half-written file).
inline Status save_safetensors(const std::string& path, std::vector<StTensorView> tensors,
                               const std::optional<std::map<std::string, std::string>>& metadata = std::nullopt) {
  auto img = serialize_safetensors(std::move(tensors), metadata);
  if (!img) return img.status().with_context(path);
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return Status::io(tmp + ": cannot open for writing: " + std::strerror(errno));
  const bool ok = std::fwrite(img->data(), 1, img->size(), f) == img->size();
  const bool closed = std::fclose(f) == 0;
  if (!ok || !closed) {
    std::remove(tmp.c_str());
    return Status::io(tmp + ": write failed");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return Status::io(path + ": rename failed: " + std::strerror(errno));
  return Status::ok();
}

}  // namespace qlora::io
