// `qlora inspect FILE.gguf` — metadata and tensor table of a model file.
#include <cxxopts.hpp>

#include <cstdio>
#include <map>
#include <string>

#include "commands.hpp"
#include "qlora/io/gguf.hpp"
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

}  // namespace

int cmd_inspect(int argc, char** argv) {
  cxxopts::Options o("qlora inspect", "Print a model file's metadata and tensor table.");
  o.positional_help("FILE.gguf");
  o.add_options()("a,all", "print every element of array values")("h,help", "show this help")(
      "file", "model file", cxxopts::value<std::string>());
  o.parse_positional({"file"});
  cxxopts::ParseResult args;
  try {
    args = o.parse(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qlora inspect: %s\n", e.what());
    return 2;
  }
  if (args.count("help")) {
    std::printf("%s\n", o.help().c_str());
    return 0;
  }
  if (!args.count("file")) {
    std::fprintf(stderr, "qlora inspect: missing file\n%s\n", o.help().c_str());
    return 2;
  }
  return inspect_gguf(args["file"].as<std::string>(), args.count("all") > 0);
}

}  // namespace qlora::app
