// qlora/io/gguf.hpp — GGUF v3 reader: metadata values and zero-copy tensors.
//
// File layout (formats.md §1.1; all little-endian, nothing aligned before the
// data section):
//
//   "GGUF" | u32 version=3 | u64 n_tensors | u64 n_kv
//   n_kv x     { string key | u32 type | value }
//   n_tensors x{ string name | u32 n_dims | n_dims x u64 ne | u32 ggml_type | u64 offset }
//   zero padding to ALIGN                      <- data section starts here
//   tensor 0 bytes | pad | tensor 1 bytes | pad | ... | last tensor | pad
//
// string = u64 length + bytes (no NUL); array = u32 elem_type + u64 count +
// packed elements. ALIGN = general.alignment (u32, power of two) or 32.
//
// The reader accepts exactly what ggml's gguf_init_from_file accepts with
// tensor data loading on, and rejects the rest with a Status naming the file
// and the byte offset of the offending field. Every count and length is
// checked against the bytes that remain *before* anything is allocated, so a
// hostile header cannot make us reserve memory it does not back with bytes:
// parsing allocates at most a small multiple of the input size (the worst
// case, an array of empty strings, costs one std::string per 8 input bytes).
// Differences from ggml, all stricter: only version 3 is read (ggml also reads
// v2, which no current tool writes), and a key "general.alignment" of the
// wrong type is an error instead of an abort.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "qlora/core/status.hpp"
#include "qlora/io/mapped_file.hpp"
#include "qlora/quant/type_info.hpp"

namespace qlora::io {

static_assert(std::endian::native == std::endian::little,
              "GGUF fields are little-endian and read with memcpy; a big-endian host needs byte swaps");

inline constexpr std::uint32_t kGgufVersion = 3;
inline constexpr std::uint32_t kGgufDefaultAlignment = 32;  // GGUF_DEFAULT_ALIGNMENT
// ggml refuses larger alignments so a crafted file cannot demand megabytes of
// padding per tensor; legitimate files use 32..4096.
inline constexpr std::uint32_t kGgufMaxAlignment = 1u << 20;
inline constexpr std::size_t kGgufMaxDims = 4;      // GGML_MAX_DIMS
inline constexpr std::size_t kGgufMaxNameLen = 63;  // GGML_MAX_NAME - 1 (room for the NUL)
inline constexpr std::string_view kGgufAlignmentKey = "general.alignment";

/// GGUF metadata value types; the numbers are the on-disk type ids.
enum class GgufType : std::uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7,
  String = 8, Array = 9, U64 = 10, I64 = 11, F64 = 12,
};
inline constexpr std::uint32_t kGgufTypeCount = 13;

/// Short names as ggml prints them ("u32", "str", "arr").
constexpr std::string_view gguf_type_name(GgufType t) {
  constexpr std::string_view kNames[kGgufTypeCount] = {"u8",  "i8",  "u16", "i16", "u32", "i32", "f32",
                                                       "bool", "str", "arr", "u64", "i64", "f64"};
  const auto i = static_cast<std::uint32_t>(t);
  return i < kGgufTypeCount ? kNames[i] : std::string_view("invalid");
}

/// The GGUF type id of each C++ type a value or array element can hold.
template <class T> struct GgufTypeOf;
template <> struct GgufTypeOf<std::uint8_t>  { static constexpr GgufType kType = GgufType::U8; };
template <> struct GgufTypeOf<std::int8_t>   { static constexpr GgufType kType = GgufType::I8; };
template <> struct GgufTypeOf<std::uint16_t> { static constexpr GgufType kType = GgufType::U16; };
template <> struct GgufTypeOf<std::int16_t>  { static constexpr GgufType kType = GgufType::I16; };
template <> struct GgufTypeOf<std::uint32_t> { static constexpr GgufType kType = GgufType::U32; };
template <> struct GgufTypeOf<std::int32_t>  { static constexpr GgufType kType = GgufType::I32; };
template <> struct GgufTypeOf<float>         { static constexpr GgufType kType = GgufType::F32; };
template <> struct GgufTypeOf<bool>          { static constexpr GgufType kType = GgufType::Bool; };
template <> struct GgufTypeOf<std::string>   { static constexpr GgufType kType = GgufType::String; };
template <> struct GgufTypeOf<std::uint64_t> { static constexpr GgufType kType = GgufType::U64; };
template <> struct GgufTypeOf<std::int64_t>  { static constexpr GgufType kType = GgufType::I64; };
template <> struct GgufTypeOf<double>        { static constexpr GgufType kType = GgufType::F64; };

/// A non-array GGUF value type: what a scalar or an array element may be.
template <class T>
concept GgufElement = requires { GgufTypeOf<T>::kType; };

/// Array payload. The variant index *is* the element type id; slot 9 (Array)
/// is a placeholder that is never engaged because ggml rejects nested arrays.
using GgufArray = std::variant<std::vector<std::uint8_t>, std::vector<std::int8_t>, std::vector<std::uint16_t>,
                               std::vector<std::int16_t>, std::vector<std::uint32_t>, std::vector<std::int32_t>,
                               std::vector<float>, std::vector<bool>, std::vector<std::string>, std::monostate,
                               std::vector<std::uint64_t>, std::vector<std::int64_t>, std::vector<double>>;

/// One metadata value: a scalar of any of the 12 element types, or an array of
/// one of them.
class GgufValue {
 public:
  // Variant index == GgufType id, so type() is just index().
  using Storage = std::variant<std::uint8_t, std::int8_t, std::uint16_t, std::int16_t, std::uint32_t, std::int32_t,
                               float, bool, std::string, GgufArray, std::uint64_t, std::int64_t, double>;

  GgufValue() = default;  // u8 0; exists so containers can default-construct
  /// Scalar of exactly type T (no conversions: 1u is u32, 1 is i32).
  template <GgufElement T>
  explicit GgufValue(T v) : v_(std::in_place_type<T>, std::move(v)) {}
  explicit GgufValue(std::string_view s) : v_(std::in_place_type<std::string>, s) {}
  explicit GgufValue(const char* s) : v_(std::in_place_type<std::string>, s) {}
  /// Array of T.
  template <GgufElement T>
  explicit GgufValue(std::vector<T> a) : v_(std::in_place_type<GgufArray>, std::in_place_type<std::vector<T>>, std::move(a)) {}

  GgufType type() const { return static_cast<GgufType>(v_.index()); }
  bool is_array() const { return type() == GgufType::Array; }
  /// Element type of an array (the value's own type for a scalar).
  GgufType element_type() const {
    return is_array() ? static_cast<GgufType>(std::get<GgufArray>(v_).index()) : type();
  }
  /// Number of elements (1 for a scalar).
  std::size_t size() const {
    if (!is_array()) return 1;
    return std::visit(
        [](const auto& a) -> std::size_t {
          if constexpr (std::is_same_v<std::decay_t<decltype(a)>, std::monostate>) return 0;
          else return a.size();
        },
        std::get<GgufArray>(v_));
  }
  /// "u32" or "arr[str]" — used in type-mismatch messages.
  std::string type_string() const {
    if (!is_array()) return std::string(gguf_type_name(type()));
    return "arr[" + std::string(gguf_type_name(element_type())) + "]";
  }

  /// The scalar if it has exactly type T, else nullptr.
  template <GgufElement T>
  const T* scalar_if() const { return std::get_if<T>(&v_); }
  /// The array if its elements have exactly type T, else nullptr.
  template <GgufElement T>
  const std::vector<T>* array_if() const {
    const auto* a = std::get_if<GgufArray>(&v_);
    return a ? std::get_if<std::vector<T>>(a) : nullptr;
  }
  const Storage& storage() const { return v_; }

  /// Human-readable rendering for inspect tools; arrays show at most
  /// `max_elems` elements; strings are quoted with control characters,
  /// quotes and backslashes escaped, so a chat template stays on one line.
  std::string to_string(std::size_t max_elems = 8) const {
    if (!is_array()) return std::visit([](const auto& x) { return element_to_string(x); }, v_);
    return std::visit(
        [&](const auto& a) -> std::string {
          if constexpr (std::is_same_v<std::decay_t<decltype(a)>, std::monostate>) {
            return "[]";
          } else {
            std::string out = "[";
            for (std::size_t i = 0; i < a.size() && i < max_elems; ++i) {
              if (i) out += ", ";
              out += element_to_string(static_cast<typename std::decay_t<decltype(a)>::value_type>(a[i]));
            }
            if (a.size() > max_elems) out += ", ... (" + std::to_string(a.size()) + " total)";
            return out + "]";
          }
        },
        std::get<GgufArray>(v_));
  }

  friend bool operator==(const GgufValue&, const GgufValue&) = default;

 private:
  template <class T>
  static std::string element_to_string(const T& x) {
    if constexpr (std::is_same_v<T, std::string>) return quote(x);
    else if constexpr (std::is_same_v<T, bool>) return x ? "true" : "false";
    else if constexpr (std::is_same_v<T, GgufArray>) return "<array>";  // unreachable: handled above
    else if constexpr (sizeof(T) == 1) return std::to_string(static_cast<int>(x));  // not as a char
    else if constexpr (std::is_floating_point_v<T>) {
      // Shortest round-trip form: std::to_string would print 1e-05 as 0.000010.
      char buf[32];
      auto res = std::to_chars(buf, buf + sizeof buf, x);
      return std::string(buf, res.ptr);
    } else return std::to_string(x);
  }

  static std::string quote(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
      switch (c) {
        case '\n': out += "\\n"; break;
        case '\t': out += "\\t"; break;
        case '\r': out += "\\r"; break;
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        default:
          if (c < 0x20) {
            static constexpr char kHex[] = "0123456789abcdef";
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 15];
          } else {
            out += char(c);
          }
      }
    }
    return out + "\"";
  }

  Storage v_;
};

/// One key/value record, in file order.
struct GgufKv {
  std::string key;
  GgufValue value;
  friend bool operator==(const GgufKv&, const GgufKv&) = default;
};

/// A tensor's info record plus a view of its bytes inside the file.
struct GgufTensorInfo {
  std::string name;
  std::uint32_t n_dims = 0;                     // as stored (0..4)
  std::array<std::uint64_t, kGgufMaxDims> ne{};  // ne[0] = contiguous row; dims >= n_dims are 1
  std::uint32_t type = 0;                       // ggml type id (see quant/type_info.hpp)
  std::uint64_t offset = 0;                     // from the start of the data section
  std::uint64_t n_bytes = 0;                    // unpadded
  std::span<const std::byte> data;              // n_bytes at data_offset + offset

  std::uint64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }  // checked at parse
  std::span<const std::uint64_t> shape() const { return {ne.data(), n_dims}; }
};

/// Byte size of a tensor of ggml type id `type` and shape `ne` (n_dims
/// entries), or why no such tensor can exist in a GGUF file: unknown type,
/// more than 4 dims, ne[0] not a whole number of blocks, or an element count
/// or byte size that overflows (ggml keeps both in int64 / size_t).
inline Result<std::uint64_t> gguf_tensor_bytes(std::span<const std::uint64_t> ne, std::uint32_t type) {
  const auto info = quant::ggml_type_info(type);
  if (!info) return Status::invalid("unknown ggml type id " + std::to_string(type));
  if (ne.size() > kGgufMaxDims)
    return Status::invalid(std::to_string(ne.size()) + " dims, the limit is " + std::to_string(kGgufMaxDims));
  std::uint64_t n_elements = 1;
  for (std::size_t d = 0; d < ne.size(); ++d)
    if (ne[d] > static_cast<std::uint64_t>(INT64_MAX) || __builtin_mul_overflow(n_elements, ne[d], &n_elements) ||
        n_elements > static_cast<std::uint64_t>(INT64_MAX))
      return Status::invalid("element count overflows int64 at ne[" + std::to_string(d) + "] = " + std::to_string(ne[d]));
  const std::uint64_t row = ne.empty() ? 1 : ne[0];
  if (row % info->block_elems != 0)
    return Status::invalid("type " + std::string(info->name) + " needs ne[0] to be a multiple of " +
                           std::to_string(info->block_elems) + ", got " + std::to_string(row));
  // Rows are whole blocks, so bytes = elements / block_elems * block_bytes.
  // The cap leaves room to add padding without wrapping.
  std::uint64_t n_bytes = 0;
  if (__builtin_mul_overflow(n_elements / info->block_elems, std::uint64_t{info->block_bytes}, &n_bytes) ||
      n_bytes > UINT64_MAX - kGgufMaxAlignment)
    return Status::invalid("byte size overflows");
  return n_bytes;
}

namespace detail {

/// Bounds-checked little-endian reads over a byte span. Every failure names
/// the file and the offset of the field being read.
class GgufCursor {
 public:
  GgufCursor(std::span<const std::byte> bytes, const std::string& name) : bytes_(bytes), name_(name) {}

  std::size_t pos() const { return pos_; }
  std::size_t remaining() const { return bytes_.size() - pos_; }
  std::size_t file_size() const { return bytes_.size(); }

  Status error_at(std::size_t at, const std::string& what) const {
    return Status::corrupt(name_ + ": offset " + std::to_string(at) + ": " + what);
  }

  template <class T>
  Status read(T& out, std::string_view what) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (remaining() < sizeof(T))
      return error_at(pos_, "truncated " + std::string(what) + ": needs " + std::to_string(sizeof(T)) +
                                " bytes, " + std::to_string(remaining()) + " left");
    std::memcpy(&out, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status::ok();
  }

  Status read_string(std::string& out, std::string_view what) {
    const std::size_t at = pos_;
    std::uint64_t len = 0;
    QLORA_TRY(read(len, std::string(what) + " length"));
    if (len > remaining())
      return error_at(at, std::string(what) + " length " + std::to_string(len) + " runs past the end of the file (" +
                              std::to_string(remaining()) + " bytes left)");
    out.assign(reinterpret_cast<const char*>(bytes_.data() + pos_), static_cast<std::size_t>(len));
    pos_ += static_cast<std::size_t>(len);
    return Status::ok();
  }

  /// Fail unless `count` records of at least `min_bytes` each can still fit.
  /// Called before any allocation sized by `count`.
  Status check_count(std::size_t at, std::uint64_t count, std::uint64_t min_bytes, std::string_view what) const {
    if (count > remaining() / min_bytes)
      return error_at(at, std::string(what) + " " + std::to_string(count) + " cannot fit in the " +
                              std::to_string(remaining()) + " bytes left");
    return Status::ok();
  }

 private:
  std::span<const std::byte> bytes_;
  const std::string& name_;
  std::size_t pos_ = 0;
};

// Smallest encodings, used to bound counts: a KV is a non-empty key (8+1),
// a type (4) and at least a 1-byte value; a tensor info is an (empty) name,
// n_dims, type and offset.
inline constexpr std::uint64_t kMinKvBytes = 8 + 1 + 4 + 1;
inline constexpr std::uint64_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;

constexpr std::uint64_t pad_to(std::uint64_t x, std::uint64_t align) { return (x + align - 1) / align * align; }

}  // namespace detail

/// A parsed GGUF file. Metadata is copied out; tensor data stays in the file
/// bytes (the mapping owned by this object for open(), the caller's buffer
/// for parse()).
class GgufFile {
 public:
  /// Map `path` and parse it. Errors name the path and a byte offset.
  static Result<GgufFile> open(const std::string& path) {
    auto mapped = MappedFile::open(path);
    if (!mapped) return mapped.status();
    GgufFile file;
    file.mapping_ = std::move(mapped).value();
    // The span outlives the move into `file` because moving MappedFile keeps
    // the pages where they are.
    QLORA_TRY(file.parse_into(file.mapping_.bytes(), path));
    return file;
  }

  /// Parse bytes owned by the caller, who must keep them alive while tensor
  /// views are used. `name` appears in every error message.
  static Result<GgufFile> parse(std::span<const std::byte> bytes, std::string name) {
    GgufFile file;
    QLORA_TRY(file.parse_into(bytes, std::move(name)));
    return file;
  }

  const std::string& name() const { return name_; }
  std::uint32_t version() const { return version_; }
  /// ALIGN: general.alignment or 32.
  std::uint32_t alignment() const { return alignment_; }
  /// Absolute file offset where tensor data starts.
  std::uint64_t data_offset() const { return data_offset_; }
  /// Bytes of the data section including every tensor's padding.
  std::uint64_t data_size() const { return data_size_; }

  // ---- metadata -----------------------------------------------------------
  const std::vector<GgufKv>& kvs() const { return kvs_; }
  bool has(std::string_view key) const { return find(key) != nullptr; }
  /// The value under `key`, or nullptr.
  const GgufValue* find(std::string_view key) const {
    auto it = kv_index_.find(key);
    return it == kv_index_.end() ? nullptr : &kvs_[it->second].value;
  }

  /// Scalar of exactly type T (llama.cpp matches KV types exactly, so a u32
  /// key stored as i32 is an error, not a conversion).
  template <GgufElement T>
  Result<T> get(std::string_view key) const {
    const GgufValue* v = find(key);
    if (v == nullptr) return missing(key);
    if (const T* x = v->scalar_if<T>()) return *x;
    return mismatch(key, *v, std::string(gguf_type_name(GgufTypeOf<T>::kType)));
  }
  Result<std::uint8_t> get_u8(std::string_view k) const { return get<std::uint8_t>(k); }
  Result<std::int8_t> get_i8(std::string_view k) const { return get<std::int8_t>(k); }
  Result<std::uint16_t> get_u16(std::string_view k) const { return get<std::uint16_t>(k); }
  Result<std::int16_t> get_i16(std::string_view k) const { return get<std::int16_t>(k); }
  Result<std::uint32_t> get_u32(std::string_view k) const { return get<std::uint32_t>(k); }
  Result<std::int32_t> get_i32(std::string_view k) const { return get<std::int32_t>(k); }
  Result<float> get_f32(std::string_view k) const { return get<float>(k); }
  Result<bool> get_bool(std::string_view k) const { return get<bool>(k); }
  Result<std::string> get_string(std::string_view k) const { return get<std::string>(k); }
  Result<std::uint64_t> get_u64(std::string_view k) const { return get<std::uint64_t>(k); }
  Result<std::int64_t> get_i64(std::string_view k) const { return get<std::int64_t>(k); }
  Result<double> get_f64(std::string_view k) const { return get<double>(k); }

  /// Array whose elements have exactly type T, as a view valid while this
  /// GgufFile lives. Bool arrays are std::vector<bool> (no span): use
  /// get_bool_array.
  template <GgufElement T>
    requires(!std::is_same_v<T, bool>)
  Result<std::span<const T>> get_array(std::string_view key) const {
    const GgufValue* v = find(key);
    if (v == nullptr) return missing(key);
    if (const auto* a = v->array_if<T>()) return std::span<const T>(*a);
    return mismatch(key, *v, "arr[" + std::string(gguf_type_name(GgufTypeOf<T>::kType)) + "]");
  }
  Result<std::span<const std::string>> get_string_array(std::string_view k) const { return get_array<std::string>(k); }
  Result<std::span<const float>> get_f32_array(std::string_view k) const { return get_array<float>(k); }
  Result<std::span<const std::int32_t>> get_i32_array(std::string_view k) const { return get_array<std::int32_t>(k); }
  Result<std::span<const std::uint32_t>> get_u32_array(std::string_view k) const { return get_array<std::uint32_t>(k); }
  Result<std::vector<bool>> get_bool_array(std::string_view key) const {
    const GgufValue* v = find(key);
    if (v == nullptr) return missing(key);
    if (const auto* a = v->array_if<bool>()) return *a;
    return mismatch(key, *v, "arr[bool]");
  }

  // ---- tensors --------------------------------------------------------------
  /// Tensor infos in file order.
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  /// The tensor called `name`, or nullptr.
  const GgufTensorInfo* find_tensor(std::string_view name) const {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
  }

 private:
  Status missing(std::string_view key) const {
    return Status::invalid(name_ + ": key '" + std::string(key) + "' missing");
  }
  Status mismatch(std::string_view key, const GgufValue& v, const std::string& expected) const {
    return Status::invalid(name_ + ": key '" + std::string(key) + "' has type " + v.type_string() + ", expected " +
                           expected);
  }

  Status parse_into(std::span<const std::byte> bytes, std::string name);
  Status parse_header(detail::GgufCursor& in, std::uint64_t& n_tensors, std::uint64_t& n_kv);
  Status parse_kv(detail::GgufCursor& in);
  Status parse_value(detail::GgufCursor& in, GgufType type, const std::string& key, GgufValue& out);
  Status parse_alignment();
  Status parse_tensor_info(detail::GgufCursor& in);
  Status locate_tensor_data(detail::GgufCursor& in, std::span<const std::byte> bytes);

  template <class T>
  static Status parse_array_of(detail::GgufCursor& in, std::uint64_t count, GgufValue& out) {
    std::vector<T> elems;
    elems.reserve(static_cast<std::size_t>(count));  // bounded by check_count already
    for (std::uint64_t i = 0; i < count; ++i) {
      if constexpr (std::is_same_v<T, std::string>) {
        QLORA_TRY(in.read_string(elems.emplace_back(), "array string"));
      } else if constexpr (std::is_same_v<T, bool>) {
        std::uint8_t b = 0;
        QLORA_TRY(in.read(b, "array bool"));
        elems.push_back(b != 0);  // like ggml: any non-zero byte is true
      } else {
        T x{};
        QLORA_TRY(in.read(x, "array element"));
        elems.push_back(x);
      }
    }
    out = GgufValue(std::move(elems));
    return Status::ok();
  }

  MappedFile mapping_;  // empty for parse()
  std::string name_;
  std::uint32_t version_ = 0;
  std::uint32_t alignment_ = kGgufDefaultAlignment;
  std::uint64_t data_offset_ = 0;
  std::uint64_t data_size_ = 0;
  std::vector<GgufKv> kvs_;
  std::vector<GgufTensorInfo> tensors_;
  // Name -> index. std::less<> allows lookups by string_view without a copy.
  std::map<std::string, std::size_t, std::less<>> kv_index_;
  std::map<std::string, std::size_t, std::less<>> tensor_index_;
};

// ---- parsing ----------------------------------------------------------------

inline Status GgufFile::parse_into(std::span<const std::byte> bytes, std::string name) {
  name_ = std::move(name);
  detail::GgufCursor in(bytes, name_);
  std::uint64_t n_tensors = 0, n_kv = 0;
  QLORA_TRY(parse_header(in, n_tensors, n_kv));
  kvs_.reserve(static_cast<std::size_t>(n_kv));  // bounded in parse_header
  for (std::uint64_t i = 0; i < n_kv; ++i) QLORA_TRY(parse_kv(in));
  QLORA_TRY(parse_alignment());
  // Re-bound the tensor count by what the KVs left over, before reserving.
  QLORA_TRY(in.check_count(8, n_tensors, detail::kMinTensorInfoBytes, "tensor count"));
  tensors_.reserve(static_cast<std::size_t>(n_tensors));
  for (std::uint64_t i = 0; i < n_tensors; ++i) QLORA_TRY(parse_tensor_info(in));
  return locate_tensor_data(in, bytes);
}

inline Status GgufFile::parse_header(detail::GgufCursor& in, std::uint64_t& n_tensors, std::uint64_t& n_kv) {
  std::array<char, 4> magic{};
  QLORA_TRY(in.read(magic, "magic"));
  if (std::memcmp(magic.data(), "GGUF", 4) != 0) {
    std::string shown;
    for (char c : magic) shown += (c >= 0x20 && c < 0x7f) ? c : '?';
    return in.error_at(0, "bad magic '" + shown + "', expected 'GGUF'");
  }
  QLORA_TRY(in.read(version_, "version"));
  if (version_ != kGgufVersion) {
    // A v3 file written on a big-endian host reads as 0x03000000 here: ggml
    // uses "low 16 bits are zero" as its byte-order heuristic, and so do we.
    const std::string v = std::to_string(version_);
    if ((version_ & 0xFFFFu) == 0)
      return Status::unsupported(name_ + ": offset 4: version " + v +
                                 " looks byte-swapped: big-endian GGUF files are not supported");
    return Status::unsupported(name_ + ": offset 4: GGUF version " + v + " is not supported (only version 3)");
  }
  QLORA_TRY(in.read(n_tensors, "tensor count"));
  const std::size_t kv_at = in.pos();
  QLORA_TRY(in.read(n_kv, "kv count"));
  // Both counts must fit in what is left. n_tensors is checked again after
  // the KVs (parse_into), against the smaller remainder, before reserving.
  QLORA_TRY(in.check_count(kv_at, n_kv, detail::kMinKvBytes, "kv count"));
  if (n_tensors > in.remaining() / detail::kMinTensorInfoBytes)
    return in.error_at(8, "tensor count " + std::to_string(n_tensors) + " cannot fit in the " +
                              std::to_string(in.remaining()) + " bytes left");
  return Status::ok();
}

inline Status GgufFile::parse_kv(detail::GgufCursor& in) {
  const std::size_t at = in.pos();
  std::string key;
  QLORA_TRY(in.read_string(key, "key"));
  if (key.empty()) return in.error_at(at, "empty key");
  if (kv_index_.count(key) != 0) return in.error_at(at, "duplicate key '" + key + "'");

  const std::size_t type_at = in.pos();
  std::uint32_t type = 0;
  QLORA_TRY(in.read(type, "value type of '" + key + "'"));
  if (type >= kGgufTypeCount)
    return in.error_at(type_at, "key '" + key + "' has invalid value type " + std::to_string(type));

  GgufValue value;
  QLORA_TRY(parse_value(in, static_cast<GgufType>(type), key, value));
  kv_index_.emplace(key, kvs_.size());
  kvs_.push_back({std::move(key), std::move(value)});
  return Status::ok();
}

inline Status GgufFile::parse_value(detail::GgufCursor& in, GgufType type, const std::string& key, GgufValue& out) {
  // Scalars: read the exact-width field into the matching variant slot.
  auto scalar = [&]<class T>() -> Status {
    if constexpr (std::is_same_v<T, std::string>) {
      std::string s;
      QLORA_TRY(in.read_string(s, "string value of '" + key + "'"));
      out = GgufValue(std::move(s));
    } else if constexpr (std::is_same_v<T, bool>) {
      std::uint8_t b = 0;
      QLORA_TRY(in.read(b, "bool value of '" + key + "'"));
      out = GgufValue(b != 0);
    } else {
      T x{};
      QLORA_TRY(in.read(x, "value of '" + key + "'"));
      out = GgufValue(x);
    }
    return Status::ok();
  };
  switch (type) {
    case GgufType::U8: return scalar.operator()<std::uint8_t>();
    case GgufType::I8: return scalar.operator()<std::int8_t>();
    case GgufType::U16: return scalar.operator()<std::uint16_t>();
    case GgufType::I16: return scalar.operator()<std::int16_t>();
    case GgufType::U32: return scalar.operator()<std::uint32_t>();
    case GgufType::I32: return scalar.operator()<std::int32_t>();
    case GgufType::F32: return scalar.operator()<float>();
    case GgufType::Bool: return scalar.operator()<bool>();
    case GgufType::String: return scalar.operator()<std::string>();
    case GgufType::U64: return scalar.operator()<std::uint64_t>();
    case GgufType::I64: return scalar.operator()<std::int64_t>();
    case GgufType::F64: return scalar.operator()<double>();
    case GgufType::Array: break;
  }

  const std::size_t elem_at = in.pos();
  std::uint32_t elem = 0;
  QLORA_TRY(in.read(elem, "array element type of '" + key + "'"));
  if (elem == static_cast<std::uint32_t>(GgufType::Array))
    return in.error_at(elem_at, "key '" + key + "' is a nested array (not supported by ggml)");
  if (elem >= kGgufTypeCount)
    return in.error_at(elem_at, "key '" + key + "' has invalid array element type " + std::to_string(elem));

  const std::size_t count_at = in.pos();
  std::uint64_t count = 0;
  QLORA_TRY(in.read(count, "array length of '" + key + "'"));
  // Smallest element on disk: a string is at least its 8-byte length.
  static constexpr std::uint64_t kElemBytes[kGgufTypeCount] = {1, 1, 2, 2, 4, 4, 4, 1, 8, 0, 8, 8, 8};
  QLORA_TRY(in.check_count(count_at, count, kElemBytes[elem], "array length of '" + key + "'"));

  switch (static_cast<GgufType>(elem)) {
    case GgufType::U8: return parse_array_of<std::uint8_t>(in, count, out);
    case GgufType::I8: return parse_array_of<std::int8_t>(in, count, out);
    case GgufType::U16: return parse_array_of<std::uint16_t>(in, count, out);
    case GgufType::I16: return parse_array_of<std::int16_t>(in, count, out);
    case GgufType::U32: return parse_array_of<std::uint32_t>(in, count, out);
    case GgufType::I32: return parse_array_of<std::int32_t>(in, count, out);
    case GgufType::F32: return parse_array_of<float>(in, count, out);
    case GgufType::Bool: return parse_array_of<bool>(in, count, out);
    case GgufType::String: return parse_array_of<std::string>(in, count, out);
    case GgufType::U64: return parse_array_of<std::uint64_t>(in, count, out);
    case GgufType::I64: return parse_array_of<std::int64_t>(in, count, out);
    case GgufType::F64: return parse_array_of<double>(in, count, out);
    case GgufType::Array: break;  // rejected above
  }
  return in.error_at(elem_at, "unreachable array type");
}

inline Status GgufFile::parse_alignment() {
  const GgufValue* v = find(kGgufAlignmentKey);
  if (v == nullptr) return Status::ok();  // default 32
  // The KV's file offset is gone by now; the key name locates the problem.
  const std::string where = name_ + ": key '" + std::string(kGgufAlignmentKey) + "'";
  const auto* a = v->scalar_if<std::uint32_t>();
  if (a == nullptr) return Status::corrupt(where + " has type " + v->type_string() + ", expected u32");
  if (*a == 0 || !std::has_single_bit(*a))
    return Status::corrupt(where + " = " + std::to_string(*a) + " is not a power of two");
  if (*a > kGgufMaxAlignment)
    return Status::corrupt(where + " = " + std::to_string(*a) + " exceeds the maximum " +
                           std::to_string(kGgufMaxAlignment));
  alignment_ = *a;
  return Status::ok();
}

inline Status GgufFile::parse_tensor_info(detail::GgufCursor& in) {
  const std::size_t at = in.pos();
  GgufTensorInfo t;
  QLORA_TRY(in.read_string(t.name, "tensor name"));
  if (t.name.size() > kGgufMaxNameLen)
    return in.error_at(at, "tensor name '" + t.name.substr(0, 32) + "...' is " + std::to_string(t.name.size()) +
                               " bytes, the limit is " + std::to_string(kGgufMaxNameLen));
  if (tensor_index_.count(t.name) != 0) return in.error_at(at, "duplicate tensor name '" + t.name + "'");
  const std::string what = "tensor '" + t.name + "'";

  const std::size_t dims_at = in.pos();
  QLORA_TRY(in.read(t.n_dims, what + " n_dims"));
  if (t.n_dims > kGgufMaxDims)
    return in.error_at(dims_at, what + " has " + std::to_string(t.n_dims) + " dims, the limit is 4");
  t.ne.fill(1);
  std::uint64_t n_elements = 1;
  for (std::uint32_t d = 0; d < t.n_dims; ++d) {
    const std::size_t ne_at = in.pos();
    QLORA_TRY(in.read(t.ne[d], what + " ne"));
    // ggml stores ne as int64 and needs the element count to fit in one.
    if (t.ne[d] > static_cast<std::uint64_t>(INT64_MAX) ||
        __builtin_mul_overflow(n_elements, t.ne[d], &n_elements) || n_elements > static_cast<std::uint64_t>(INT64_MAX))
      return in.error_at(ne_at, what + " element count overflows int64 at ne[" + std::to_string(d) + "] = " +
                                    std::to_string(t.ne[d]));
  }

  const std::size_t type_at = in.pos();
  QLORA_TRY(in.read(t.type, what + " type"));
  auto n_bytes = gguf_tensor_bytes(t.shape(), t.type);
  if (!n_bytes) return in.error_at(type_at, what + ": " + n_bytes.status().message());
  t.n_bytes = *n_bytes;

  QLORA_TRY(in.read(t.offset, what + " offset"));
  tensor_index_.emplace(t.name, tensors_.size());
  tensors_.push_back(std::move(t));
  return Status::ok();
}

inline Status GgufFile::locate_tensor_data(detail::GgufCursor& in, std::span<const std::byte> bytes) {
  const std::uint64_t file_size = in.file_size();
  data_offset_ = detail::pad_to(in.pos(), alignment_);
  data_size_ = 0;
  if (tensors_.empty()) {
    // ggml skips the header padding when there is nothing after it, so a
    // metadata-only file may end right after its last KV.
    data_offset_ = std::min<std::uint64_t>(data_offset_, file_size);
    return Status::ok();
  }
  if (data_offset_ > file_size)
    return in.error_at(in.pos(), "header padding to " + std::to_string(data_offset_) + " runs past the end of the file (" +
                                     std::to_string(file_size) + " bytes)");

  // ggml requires tensors packed in info order: offset_i = sum of padded sizes
  // before it. That implies alignment and rules out gaps and overlaps, but we
  // report misalignment separately because it is the more common writer bug.
  for (auto& t : tensors_) {
    const std::string what = "tensor '" + t.name + "'";
    if (t.offset % alignment_ != 0)
      return Status::corrupt(name_ + ": offset " + std::to_string(data_offset_) + ": " + what + " data offset " +
                             std::to_string(t.offset) + " is not a multiple of the alignment " +
                             std::to_string(alignment_));
    if (t.offset != data_size_)
      return Status::corrupt(name_ + ": offset " + std::to_string(data_offset_) + ": " + what + " data offset " +
                             std::to_string(t.offset) + ", expected " + std::to_string(data_size_) +
                             " (tensors must be packed in info order)");
    const std::uint64_t padded = detail::pad_to(t.n_bytes, alignment_);
    const std::uint64_t avail = file_size - data_offset_;
    // Include the padding of every tensor, the last one too: ggml reads the
    // whole padded data section and fails on a file that stops short.
    if (padded > avail || data_size_ > avail - padded)
      return Status::corrupt(name_ + ": offset " + std::to_string(data_offset_ + t.offset) + ": " + what + " needs " +
                             std::to_string(padded) + " bytes (with padding) but the file ends at " +
                             std::to_string(file_size));
    t.data = bytes.subspan(static_cast<std::size_t>(data_offset_ + t.offset), static_cast<std::size_t>(t.n_bytes));
    data_size_ += padded;
  }
  return Status::ok();
}

}  // namespace qlora::io
