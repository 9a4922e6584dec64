// qlora/io/bnb_safetensors.hpp — an NF4 weight in the state-dict layout that
// transformers + bitsandbytes write for a Linear4bit (Params4bit) layer.
//
// For a layer saved under `<prefix>` (e.g. "model.layers.0.mlp.down_proj."):
//
//   <prefix>weight                                U8  [(n+1)/2, 1]  packed nibbles
//   <prefix>weight.absmax                         U8  [blocks]  nested codes   (double quant)
//                                                 F32 [blocks]  block absmax   (otherwise)
//   <prefix>weight.quant_map                      F32 [16]      the NF4 codebook
//   <prefix>weight.nested_absmax                  F32 [ceil(blocks/256)]   (double quant only)
//   <prefix>weight.nested_quant_map               F32 [256]     dynamic map   (double quant only)
//   <prefix>weight.quant_state.bitsandbytes__nf4  U8  [len]     UTF-8 JSON:
//     {"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [out, in],
//      "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 8.55...}
//
// The JSON is Python's json.dumps of QuantState.as_dict's non-tensor items, so
// keys come in that insertion order, separators are ", " and ": ", and the
// offset is Python's repr of the fp32 value widened to double (shortest
// round-trip digits). We reproduce it exactly, so a loaded checkpoint
// re-saves to identical bytes (tested against a file bitsandbytes wrote).
// `dtype` is the torch dtype of the unquantized weight without "torch.".
// Loading trusts the stored nested_quant_map and nested_offset (see
// quant/nf4_double_quant.hpp); a quant_map other than NF4 (e.g. FP4) is
// reported as unsupported.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "qlora/core/status.hpp"
#include "qlora/io/safetensors.hpp"
#include "qlora/quant/nf4.hpp"

namespace qlora::io {

/// An NF4 weight plus the torch dtype bitsandbytes records for it.
struct BnbNf4Weight {
  quant::Nf4Tensor tensor;
  std::string dtype = "bfloat16";  // "float16", "bfloat16" or "float32"
};

namespace detail {

/// Python's repr(float) for a double: shortest round-trip digits, fixed
/// notation for decimal exponents in [-4, 16), otherwise d.ddde+XX with at
/// least two exponent digits. Finite inputs only.
inline std::string python_float_repr(double v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string s(buf, r.ptr);  // "-d.dddde+XX"
  std::string sign;
  if (s[0] == '-') {
    sign = "-";
    s.erase(0, 1);
  }
  const auto epos = s.find('e');
  const int exp = std::atoi(s.c_str() + epos + 1);
  std::string digits = s.substr(0, epos);
  if (digits.size() > 1) digits.erase(1, 1);  // drop the '.'
  if (exp >= -4 && exp < 16) {
    std::string out;
    if (exp < 0) {
      out = "0." + std::string(std::size_t(-exp - 1), '0') + digits;
    } else if (std::size_t(exp) + 1 >= digits.size()) {
      out = digits + std::string(std::size_t(exp) + 1 - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, std::size_t(exp) + 1) + "." + digits.substr(std::size_t(exp) + 1);
    }
    return sign + out;
  }
  std::string mant = digits.substr(0, 1);
  if (digits.size() > 1) mant += "." + digits.substr(1);
  char e[16];
  std::snprintf(e, sizeof e, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
  return sign + mant + e;
}

template <class T>
std::vector<T> copy_out(std::span<const std::byte> b) {
  std::vector<T> v(b.size() / sizeof(T));
  if (!v.empty()) std::memcpy(v.data(), b.data(), v.size() * sizeof(T));
  return v;
}

}  // namespace detail

/// The quant_state JSON exactly as bitsandbytes writes it.
inline std::string bnb_quant_state_json(const quant::Nf4Tensor& t, std::string_view dtype) {
  std::string j = "{\"quant_type\": \"nf4\", \"blocksize\": " + std::to_string(t.blocksize) + ", \"dtype\": \"" +
                  std::string(dtype) + "\", \"shape\": [";
  for (std::size_t i = 0; i < t.shape.size(); ++i) j += (i ? ", " : "") + std::to_string(t.shape[i]);
  j += "]";
  if (t.double_quant) {
    j += ", \"nested_blocksize\": " + std::to_string(t.double_quant->blocksize) +
         ", \"nested_dtype\": \"float32\", \"nested_offset\": " +
         detail::python_float_repr(double(t.double_quant->offset));
  }
  return j + "}";
}

/// The state-dict tensors of one weight, named `<prefix>weight...`.
inline Result<std::vector<StTensor>> bnb_nf4_tensors(std::string_view prefix, const BnbNf4Weight& w) {
  const quant::Nf4Tensor& t = w.tensor;
  QLORA_TRY(quant::validate(t));
  const std::string base = std::string(prefix) + "weight";
  std::vector<StTensor> out;
  out.push_back(StTensor::from<std::uint8_t>(base, StDtype::U8, {std::int64_t(t.packed.size()), 1},
                                             std::span<const std::uint8_t>(t.packed)));
  if (t.double_quant) {
    const auto& dq = *t.double_quant;
    out.push_back(StTensor::from<std::uint8_t>(base + ".absmax", StDtype::U8, {std::int64_t(dq.qabsmax.size())},
                                               std::span<const std::uint8_t>(dq.qabsmax)));
    out.push_back(StTensor::from<float>(base + ".nested_absmax", StDtype::F32, {std::int64_t(dq.absmax2.size())},
                                        std::span<const float>(dq.absmax2)));
    out.push_back(StTensor::from<float>(base + ".nested_quant_map", StDtype::F32, {256},
                                        std::span<const float>(dq.code.data(), 256)));
  } else {
    out.push_back(StTensor::from<float>(base + ".absmax", StDtype::F32, {std::int64_t(t.absmax.size())},
                                        std::span<const float>(t.absmax)));
  }
  out.push_back(StTensor::from<float>(base + ".quant_map", StDtype::F32, {16},
                                      std::span<const float>(quant::kNf4Codebook, 16)));
  const std::string js = bnb_quant_state_json(t, w.dtype);
  out.push_back(StTensor::from<char>(base + ".quant_state.bitsandbytes__nf4", StDtype::U8, {std::int64_t(js.size())},
                                     std::span<const char>(js.data(), js.size())));
  return out;
}

/// Write one weight as its own .safetensors file (no __metadata__, as
/// safetensors.torch.save_file(state_dict) writes).
inline Status save_bnb_nf4(const std::string& path, std::string_view prefix, const BnbNf4Weight& w) {
  auto ts = bnb_nf4_tensors(prefix, w);
  if (!ts) return ts.status().with_context(path);
  std::vector<StTensorView> v;
  for (const auto& t : *ts) v.push_back(t.view());
  return save_safetensors(path, std::move(v));
}

/// Load the weight stored under `prefix` (e.g. "model.layers.0.mlp.down_proj.").
inline Result<BnbNf4Weight> load_bnb_nf4(const SafetensorsFile& f, std::string_view prefix) {
  const std::string base = std::string(prefix) + "weight";
  auto bad = [&](const std::string& m) { return Status::corrupt(f.name() + ": " + base + ": " + m); };

  // The JSON blob is what identifies the layer as 4-bit; its suffix names
  // the quant type, so an FP4 layer is recognised and refused explicitly.
  auto qs = f.get(base + ".quant_state.bitsandbytes__nf4", StDtype::U8);
  if (!qs) {
    if (f.find(base + ".quant_state.bitsandbytes__fp4"))
      return Status::unsupported(f.name() + ": " + base + " is FP4; only NF4 is supported");
    return qs.status();
  }
  const char* jp = reinterpret_cast<const char*>(qs->data());
  const nlohmann::json j = nlohmann::json::parse(jp, jp + qs->size(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad("quant_state is not a JSON object");
  auto field = [&](const char* k) -> const nlohmann::json* {
    const auto it = j.find(k);
    return it == j.end() ? nullptr : &*it;
  };
  const auto* qt = field("quant_type");
  if (!qt || !qt->is_string() || qt->get<std::string>() != "nf4") return bad("quant_type is not \"nf4\"");
  const auto* bs = field("blocksize");
  const auto* dt = field("dtype");
  const auto* sh = field("shape");
  if (!bs || !bs->is_number_integer() || !dt || !dt->is_string() || !sh || !sh->is_array())
    return bad("quant_state needs integer blocksize, string dtype and array shape");

  BnbNf4Weight w;
  w.dtype = dt->get<std::string>();
  quant::Nf4Tensor& t = w.tensor;
  // Clamp before narrowing so a hostile 2^40 cannot wrap into a valid size.
  const std::int64_t blocksize = bs->get<std::int64_t>();
  if (!quant::nf4_blocksize_ok(int(std::clamp<std::int64_t>(blocksize, 0, 1 << 20))))
    return bad("blocksize " + std::to_string(blocksize) + " is not a power of two in [32, 4096]");
  t.blocksize = int(blocksize);
  t.n = 1;
  for (const auto& d : *sh) {
    if (!d.is_number_unsigned()) return bad("shape entries must be non-negative integers");
    const std::uint64_t x = d.get<std::uint64_t>();
    if (x > (1ull << 40) || (x != 0 && t.n > (1ull << 50) / x)) return bad("shape is implausibly large");
    t.shape.push_back(std::int64_t(x));
    t.n *= x;
  }

  // The codebook must be NF4's, bit for bit; anything else is another format.
  auto qm = f.get(base + ".quant_map", StDtype::F32);
  if (!qm) return qm.status();
  if (qm->size() != 64 || std::memcmp(qm->data(), quant::kNf4Codebook, 64) != 0)
    return Status::unsupported(f.name() + ": " + base + ".quant_map is not the NF4 codebook");

  auto packed = f.get(base, StDtype::U8);
  if (!packed) return packed.status();
  t.packed = detail::copy_out<std::uint8_t>(*packed);

  const StTensorInfo* am = f.find(base + ".absmax");
  if (!am) return bad("missing .absmax");
  // Double quant is signalled by the presence of nested_absmax, as in bnb's
  // QuantState.from_dict; `.absmax` then holds u8 codes instead of floats.
  if (f.find(base + ".nested_absmax")) {
    const auto* nb = field("nested_blocksize");
    const auto* no = field("nested_offset");
    const auto* nd = field("nested_dtype");
    if (!nb || !nb->is_number_integer() || !no || !no->is_number() || !nd || !nd->is_string())
      return bad("nested quant_state needs nested_blocksize, nested_offset and nested_dtype");
    if (nd->get<std::string>() != "float32")
      return Status::unsupported(f.name() + ": " + base + ": nested_dtype " + nd->get<std::string>());
    auto code = f.get(base + ".nested_absmax", StDtype::F32);  // absmax2
    auto map = f.get(base + ".nested_quant_map", StDtype::F32);
    auto q = f.get(base + ".absmax", StDtype::U8);
    if (!code) return code.status();
    if (!map) return map.status();
    if (!q) return q.status();
    if (map->size() != 256 * 4) return bad("nested_quant_map must hold 256 floats");
    quant::DoubleQuantState dq;
    dq.blocksize = int(std::clamp<std::int64_t>(nb->get<std::int64_t>(), 0, 1 << 20));
    dq.offset = float(no->get<double>());  // authoritative: never recomputed
    dq.absmax2 = detail::copy_out<float>(*code);
    dq.qabsmax = detail::copy_out<std::uint8_t>(*q);
    std::memcpy(dq.code.data(), map->data(), 256 * 4);
    t.double_quant = std::move(dq);
  } else {
    auto a = f.get(base + ".absmax", StDtype::F32);
    if (!a) return a.status();
    t.absmax = detail::copy_out<float>(*a);
  }
  // Final cross-check of sizes (packed vs shape, absmax vs blocks) so a
  // consistent-looking but wrong file fails here, not in a kernel.
  if (Status s = quant::validate(t); !s) return Status::corrupt(f.name() + ": " + base + ": " + s.message());
  return w;
}

}  // namespace qlora::io
