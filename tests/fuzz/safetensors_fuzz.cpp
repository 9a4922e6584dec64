// libFuzzer target for the safetensors reader (io/safetensors.hpp) and the
// bitsandbytes 4-bit loader on top of it (io/bnb_safetensors.hpp).
//
// Properties checked, beyond "no crash, no sanitizer report":
//  1. Every rejection names the input.
//  2. Every accepted tensor's bytes lie inside the input and match
//     dtype x shape.
//  3. Round trip: serializing what we parsed and parsing that again gives
//     the same tensors (names, dtypes, shapes, bytes).
//  4. Loading any "<prefix>weight" that has a bitsandbytes quant_state as an
//     NF4 weight either fails with a Status or yields a tensor that passes
//     validate() — never an out-of-bounds read.
// Seeds: tests/data/safetensors/*.safetensors and tests/data/golden/nf4/*.safetensors.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "qlora/io/bnb_safetensors.hpp"
#include "qlora/io/safetensors.hpp"

namespace {

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "safetensors_fuzz property violated: %s: %s\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string name = "fuzz.safetensors";
  std::vector<std::byte> bytes(reinterpret_cast<const std::byte*>(data), reinterpret_cast<const std::byte*>(data) + size);
  auto f = qlora::io::SafetensorsFile::from_bytes(bytes, name);
  if (!f) {
    if (f.status().message().find(name) == std::string::npos) fail("error without file name", f.status().message());
    return 0;
  }
  std::vector<qlora::io::StTensorView> views;
  for (const auto& t : f->tensors()) {
    const auto d = f->data(t);
    if (d.size() != t.numel() * qlora::io::st_dtype_info(t.dtype).size) fail("size mismatch", t.name);
    views.push_back({t.name, t.dtype, t.shape, d});
  }
  auto again = qlora::io::serialize_safetensors(views, f->metadata().empty() ? std::nullopt
                                                                             : std::optional(f->metadata()));
  if (!again) fail("cannot re-serialize an accepted file", again.status().message());
  auto g = qlora::io::SafetensorsFile::from_bytes(std::move(*again), "again");
  if (!g) fail("re-serialized file rejected", g.status().message());
  if (g->tensors().size() != f->tensors().size()) fail("round trip changed the tensor count", "");
  for (const auto& t : f->tensors()) {
    const auto* u = g->find(t.name);
    if (!u || u->dtype != t.dtype || u->shape != t.shape) fail("round trip changed a header entry", t.name);
    const auto a = f->data(t), b = g->data(*u);
    if (!std::equal(a.begin(), a.end(), b.begin(), b.end())) fail("round trip changed bytes", t.name);
  }
  for (const auto& t : f->tensors()) {
    const std::string marker = "weight.quant_state.bitsandbytes__nf4";
    const auto at = t.name.find(marker);
    if (at == std::string::npos) continue;
    auto w = qlora::io::load_bnb_nf4(*f, t.name.substr(0, at));
    if (w && !qlora::quant::validate(w->tensor).is_ok()) fail("loaded NF4 weight fails validate()", t.name);
  }
  return 0;
}
