// `qlora inspect FILE.gguf|FILE.safetensors` — metadata and tensor table of a
// model file (by extension: .safetensors is safetensors, anything else GGUF).
#include <cxxopts.hpp>

#include <cstdio>
#include <map>
#include <string>

#include "cli_args.hpp"
#include "commands.hpp"
#include "qlora/io/gguf.hpp"
#include "qlora/io/safetensors.hpp"
#include "qlora/quant/row.hpp"

namespace qlora::app {
namespace {

int inspect_gguf(const std::string& path, bool all_values) {
  auto f = io::GgufFile::open(path);
  if (!f) {
    std::fprintf(stderr, "qlora inspect: %s\n", f.status().message().c_str());
    return 1;
  }
  std::printf("%s: GGUF v%u, %zu metadata keys, %zu tensors, alignment %u, data at offset %llu\n", path.c_str(),
              f->version(), f->kvs().size(), f->tensors().size(), f->alignment(),
              static_cast<unsigned long long>(f->data_offset()));
  std::printf("\nmetadata:\n");
  for (const auto& kv : f->kvs())
    std::printf("  %-44s %-12s %s\n", kv.key.c_str(), kv.value.type_string().c_str(),
                kv.value.to_string(all_values ? std::size_t(-1) : 8).c_str());
  std::printf("\n%-5s %-34s %-8s %-24s %12s %12s\n", "#", "tensor", "type", "shape", "elements", "bytes");
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> by_type;
  std::uint64_t n = 0, bytes = 0;
  std::size_t i = 0;
  for (const auto& t : f->tensors()) {
    std::string shape;
    for (std::uint32_t d = 0; d < t.n_dims; ++d) shape += (d ? " x " : "") + std::to_string(t.ne[d]);
    const std::string type = quant::ggml_type_name(t.type);
    std::printf("%-5zu %-34s %-8s %-24s %12llu %12llu\n", i++, t.name.c_str(), type.c_str(), shape.c_str(),
                static_cast<unsigned long long>(t.n_elements()), static_cast<unsigned long long>(t.n_bytes));
    by_type[type].first += t.n_elements();
    by_type[type].second += t.n_bytes;
    n += t.n_elements();
    bytes += t.n_bytes;
  }
  std::printf("\n%-8s %14s %12s %8s\n", "type", "elements", "MiB", "bits/w");
  for (const auto& [type, v] : by_type)
    std::printf("%-8s %14llu %12.2f %8.3f\n", type.c_str(), static_cast<unsigned long long>(v.first),
                double(v.second) / 1048576.0, 8.0 * double(v.second) / double(v.first));
  std::printf("%-8s %14llu %12.2f %8.3f\n", "total", static_cast<unsigned long long>(n), double(bytes) / 1048576.0,
              n ? 8.0 * double(bytes) / double(n) : 0.0);
  return 0;
}

/// safetensors: header metadata, tensors in file order, and which tensors
/// form a bitsandbytes 4-bit weight (the `weight.quant_state.*` marker).
int inspect_safetensors(const std::string& path) {
  auto f = io::SafetensorsFile::open(path);
  if (!f) {
    std::fprintf(stderr, "qlora inspect: %s\n", f.status().message().c_str());
    return 1;
  }
  std::printf("%s: safetensors, %zu tensors, %zu metadata entries\n", path.c_str(), f->tensors().size(),
              f->metadata().size());
  for (const auto& [k, v] : f->metadata()) std::printf("  %-32s %s\n", k.c_str(), v.c_str());
  std::printf("\n%-5s %-56s %-5s %-22s %12s\n", "#", "tensor", "dtype", "shape", "bytes");
  std::size_t i = 0, bnb4 = 0;
  std::uint64_t bytes = 0;
  for (const auto& t : f->tensors()) {
    std::string shape;
    for (std::size_t d = 0; d < t.shape.size(); ++d) shape += (d ? " x " : "") + std::to_string(t.shape[d]);
    std::printf("%-5zu %-56s %-5s %-22s %12llu\n", i++, t.name.c_str(), std::string(io::st_dtype_info(t.dtype).name).c_str(),
                shape.c_str(), static_cast<unsigned long long>(t.end - t.begin));
    bytes += t.end - t.begin;
    if (t.name.find(".quant_state.bitsandbytes__") != std::string::npos) ++bnb4;
  }
  std::printf("\ntotal %.2f MiB", double(bytes) / 1048576.0);
  if (bnb4) std::printf(", %zu bitsandbytes 4-bit weights", bnb4);
  std::printf("\n");
  return 0;
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

int cmd_inspect(int argc, char** argv) {
  cxxopts::Options o("qlora inspect", "Print a model file's metadata and tensor table.");
  o.positional_help("FILE.gguf|FILE.safetensors");
  o.add_options()("a,all", "print every element of array values")("h,help", "show this help")(
      "file", "model file", cxxopts::value<std::string>());
  o.parse_positional({"file"});
  cxxopts::ParseResult args;
  if (auto exit_code = parse_args(o, argc, argv, "qlora inspect", args)) return *exit_code;
  if (!args.count("file")) {
    std::fprintf(stderr, "qlora inspect: missing file\n%s\n", o.help().c_str());
    return 2;
  }
  const std::string path = args["file"].as<std::string>();
  if (ends_with(path, ".safetensors")) return inspect_safetensors(path);
  return inspect_gguf(path, args.count("all") > 0);
}

}  // namespace qlora::app
