// `qlora quantize IN.gguf OUT.gguf --type q8_0|q4_k_m|f16`
// `qlora quantize IN.gguf OUT_DIR --type nf4`      (Hugging Face dir, bitsandbytes 4-bit)
// `qlora quantize IN.gguf --type all --out-dir DIR`  (every scheme + a comparison table)
//
// Runtime scheme strings dispatch to the explicit list of QuantScheme
// instantiations below; nothing else is instantiated.
#include <cxxopts.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "cli_args.hpp"
#include "commands.hpp"
#include "progress.hpp"
#include "qlora/convert/export_nf4.hpp"
#include "qlora/convert/quantize_gguf.hpp"
#include "qlora/report/svg_plot.hpp"

namespace qlora::app {
namespace {

using convert::QuantizeReport;


std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string shape_string(const std::vector<std::uint64_t>& ne) {
  std::string s;
  for (std::size_t i = 0; i < ne.size(); ++i) s += (i ? " x " : "") + std::to_string(ne[i]);
  return s;
}

double mib(std::uint64_t b) { return double(b) / (1024.0 * 1024.0); }

std::uint64_t n_elements(const io::GgufFile& f) {
  std::uint64_t n = 0;
  for (const auto& t : f.tensors()) n += t.n_elements();
  return n;
}

void print_tensor_table(const QuantizeReport& r, std::FILE* out) {
  std::fprintf(out, "%-34s %-18s %-6s -> %-6s %10s %10s %11s %10s\n", "tensor", "shape", "from", "to", "MiB in",
               "MiB out", "RMSE", "rel.RMSE");
  for (const auto& t : r.tensors) {
    std::fprintf(out, "%-34s %-18s %-6s -> %-6s %10.3f %10.3f ", t.name.c_str(), shape_string(t.ne).c_str(),
                 quant::ggml_type_name(t.src_type).c_str(), quant::ggml_type_name(t.dst_type).c_str(),
                 mib(t.src_bytes), mib(t.dst_bytes));
    if (t.copied) std::fprintf(out, "%11s %10s\n", "copied", "-");
    else std::fprintf(out, "%11.3e %9.3f%%\n", t.error.rmse(), 100.0 * t.error.relative_rmse());
  }
}

/// Totals per output type: how a recipe spent its bytes.
void print_type_mix(const QuantizeReport& r, std::FILE* out) {
  std::map<std::string, std::pair<int, std::uint64_t>> mix;
  for (const auto& t : r.tensors) {
    auto& m = mix[quant::ggml_type_name(t.dst_type)];
    m.first++;
    m.second += t.dst_bytes;
  }
  std::fprintf(out, "type mix:");
  for (const auto& [name, m] : mix) std::fprintf(out, "  %s x%d (%.1f MiB)", name.c_str(), m.first, mib(m.second));
  std::fprintf(out, "\n");
}

/// llama.cpp warns once per tensor; one summary line says the same.
void print_fallbacks(const QuantizeReport& r, std::FILE* out) {
  std::map<std::pair<std::uint32_t, std::uint32_t>, int> counts;
  for (const auto& f : r.fallbacks) counts[{f.wanted, f.used}]++;
  if (counts.empty()) return;
  std::fprintf(out, "note: %zu tensors have rows that are not whole blocks of their recipe type, so they use a fallback:",
               r.fallbacks.size());
  for (const auto& [k, n] : counts)
    std::fprintf(out, " %s->%s x%d", quant::ggml_type_name(k.first).c_str(), quant::ggml_type_name(k.second).c_str(), n);
  std::fprintf(out, "\n");
}

cpu::QuantError total_error(const QuantizeReport& r) {
  cpu::QuantError e;
  for (const auto& t : r.tensors) e.merge(t.error);
  return e;
}

/// Relative RMSE (%) per layer and projection: where a recipe hurts most.
report::Heatmap error_heatmap(const QuantizeReport& r) {
  static const std::vector<std::string> kRoles = {"attn_q", "attn_k", "attn_v", "attn_output",
                                                  "ffn_gate", "ffn_up", "ffn_down"};
  report::Heatmap h;
  h.title = r.scheme;
  h.col_labels = kRoles;
  for (const auto& t : r.tensors) {
    int layer = -1;
    char role[64] = {};
    if (std::sscanf(t.name.c_str(), "blk.%d.%63[^.].weight", &layer, role) != 2 || layer < 0) continue;
    const auto col = std::find(kRoles.begin(), kRoles.end(), role);
    if (col == kRoles.end()) continue;
    while (int(h.values.size()) <= layer) {
      h.row_labels.push_back("blk." + std::to_string(h.values.size()));
      h.values.emplace_back(kRoles.size(), NAN);
    }
    h.values[std::size_t(layer)][std::size_t(col - kRoles.begin())] =
        t.copied ? NAN : 100.0 * t.error.relative_rmse();
  }
  return h;
}

Status write_csv(const QuantizeReport& r, const std::string& path) {
  std::ofstream f(path);
  if (!f) return Status::io(path + ": cannot open for writing");
  f << "tensor,shape,src_type,dst_type,src_bytes,dst_bytes,copied,rmse,relative_rmse,max_abs_err,seconds\n";
  for (const auto& t : r.tensors)
    f << t.name << ',' << shape_string(t.ne) << ',' << quant::ggml_type_name(t.src_type) << ','
      << quant::ggml_type_name(t.dst_type) << ',' << t.src_bytes << ',' << t.dst_bytes << ',' << (t.copied ? 1 : 0)
      << ',' << t.error.rmse() << ',' << t.error.relative_rmse() << ',' << t.error.max_abs_err << ',' << t.seconds
      << '\n';
  if (!f) return Status::io(path + ": write failed");
  return Status::ok();
}

/// What the command line passes to every scheme runner.
struct RunFlags {
  bool measure_error = true;
  bool quiet = false;
  bool double_quant = true;  // nf4 only
};

/// A GGUF scheme: quantize_gguf<S> with a progress bar.
template <class S>
Result<QuantizeReport> run_gguf(const io::GgufFile& in, const std::string& out_path, const RunFlags& flags) {
  std::uint64_t total = 0;
  for (const auto& t : in.tensors()) total += t.n_bytes;
  ProgressBar bar("quantize " + std::string(quant::QuantScheme<S>::kName), mib(total), "MiB");
  double done = 0;
  convert::QuantizeOptions opt;
  opt.measure_error = flags.measure_error;
  opt.on_tensor = [&](const convert::TensorReport& t, std::size_t, std::size_t) {
    done += mib(t.src_bytes);
    if (!flags.quiet) bar.update(done, t.name);
  };
  auto r = convert::quantize_gguf<S>(in, out_path, opt);
  if (r && !flags.quiet) bar.finish(out_path);
  return r;
}

/// The NF4 scheme writes a Hugging Face directory (model.safetensors in
/// bitsandbytes' layout + config.json), not a GGUF; its report is folded into
/// a QuantizeReport so the comparison table treats all schemes alike.
Result<QuantizeReport> run_nf4(const io::GgufFile& in, const std::string& out_dir, const RunFlags& flags) {
  const bool quiet = flags.quiet;
  std::uint64_t total = 0;
  for (const auto& t : in.tensors()) total += t.n_bytes;
  ProgressBar bar("quantize nf4", mib(total), "MiB");
  double done = 0;
  convert::Nf4ExportOptions opt;
  opt.measure_error = flags.measure_error;
  opt.double_quant = flags.double_quant;
  QuantizeReport out;
  out.scheme = "nf4";
  opt.on_tensor = [&](const convert::HfTensorReport& t, std::size_t, std::size_t) {
    done += mib(t.src_bytes);
    if (!quiet) bar.update(done, t.name);
  };
  auto r = convert::export_nf4_hf(in, out_dir, opt);
  if (!r) return r.status();
  if (!quiet) bar.finish(out_dir);
  for (const auto& t : r->tensors) {
    convert::TensorReport x;
    x.name = t.gguf_name;
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) x.ne.push_back(std::uint64_t(*it));
    x.src_type = t.src_type;
    x.dst_type = t.nf4 ? quant::kNoGgmlType : (t.dtype == "F16" ? std::uint32_t(quant::GgmlType::F16)
                                                                 : std::uint32_t(quant::GgmlType::BF16));
    x.src_bytes = t.src_bytes;
    x.dst_bytes = t.bytes;
    // Only NF4 tensors count as re-quantized; 16-bit copies are reported
    // like a GGUF scheme's copied tensors.
    if (t.nf4) x.error = t.error;
    else x.copied = true;
    out.tensors.push_back(std::move(x));
  }
  out.src_bytes = r->src_bytes;
  out.dst_bytes = r->bytes;
  out.seconds = r->seconds;
  return out;
}

/// The schemes `qlora quantize` can produce: the explicit list of
/// instantiations a --type string can reach.
struct SchemeRow {
  std::string_view name;
  bool writes_directory;  // nf4: a Hugging Face model directory, not one GGUF file
  Result<QuantizeReport> (*run)(const io::GgufFile&, const std::string&, const RunFlags&);
};
constexpr SchemeRow kSchemes[] = {
    {quant::QuantScheme<quant::scheme::Q8_0>::kName, false, &run_gguf<quant::scheme::Q8_0>},
    {quant::QuantScheme<quant::scheme::Q4_K_M>::kName, false, &run_gguf<quant::scheme::Q4_K_M>},
    {quant::QuantScheme<quant::scheme::F16>::kName, false, &run_gguf<quant::scheme::F16>},
    {quant::QuantScheme<quant::scheme::NF4>::kName, true, &run_nf4},
};

std::string scheme_list() {
  std::string s;
  for (const auto& r : kSchemes) s += (s.empty() ? "" : ", ") + std::string(r.name);
  return s;
}

/// The bytes a scheme's output occupies (a directory: its model.safetensors).
std::uint64_t output_bytes(const SchemeRow& s, const std::string& path) {
  return std::filesystem::file_size(s.writes_directory ? std::filesystem::path(path) / "model.safetensors"
                                                       : std::filesystem::path(path));
}

}  // namespace

int cmd_quantize(int argc, char** argv) {
  cxxopts::Options o("qlora quantize",
                     "Rewrite a GGUF model with a quantization scheme; the output is byte-identical to "
                     "llama-quantize's for the same scheme.");
  o.positional_help("IN.gguf [OUT.gguf | OUT_DIR for nf4]");
  o.add_options()("t,type", "scheme: " + scheme_list() + ", or all", cxxopts::value<std::string>()->default_value("q4_k_m"))(
      "out-dir", "with --type all: directory for <model>.<scheme>.gguf", cxxopts::value<std::string>()->default_value("."))(
      "csv", "write the per-tensor report as CSV to this file (with --type all: a prefix)", cxxopts::value<std::string>())(
      "plot", "write a per-layer relative-RMSE heatmap (SVG) here (--type all: default <out-dir>/error_heatmap.svg)",
      cxxopts::value<std::string>())("no-error", "skip the RMSE measurement (slightly faster)")(
      "no-double-quant", "nf4: keep absmax in fp32 instead of bitsandbytes' 8-bit double quantization")("tensors", "print the per-tensor table")(
      "q,quiet", "no progress bar")("h,help", "show this help")("in", "input GGUF", cxxopts::value<std::string>())(
      "out", "output GGUF", cxxopts::value<std::string>());
  o.parse_positional({"in", "out"});
  cxxopts::ParseResult args;
  if (auto exit_code = parse_args(o, argc, argv, "qlora quantize", args)) return *exit_code;
  if (!args.count("in")) {
    std::fprintf(stderr, "qlora quantize: missing input file\n%s\n", o.help().c_str());
    return 2;
  }
  const std::string in_path = args["in"].as<std::string>();
  const std::string type = lower(args["type"].as<std::string>());
  RunFlags flags;
  flags.quiet = args.count("quiet") > 0;
  flags.measure_error = args.count("no-error") == 0;
  flags.double_quant = args.count("no-double-quant") == 0;
  const bool measure = flags.measure_error;

  std::vector<const SchemeRow*> chosen;
  for (const auto& s : kSchemes)
    if (type == "all" || type == s.name) chosen.push_back(&s);
  if (chosen.empty()) {
    std::fprintf(stderr, "qlora quantize: unknown --type '%s' (built: %s, all)\n", type.c_str(), scheme_list().c_str());
    return 2;
  }
  if (type != "all" && !args.count("out")) {
    std::fprintf(stderr, "qlora quantize: missing output file (or use --type all --out-dir DIR)\n");
    return 2;
  }

  auto in = io::GgufFile::open(in_path);
  if (!in) {
    std::fprintf(stderr, "qlora quantize: %s\n", in.status().message().c_str());
    return 1;
  }
  const std::uint64_t n_weights = n_elements(*in);
  std::uint64_t in_bytes = 0;
  for (const auto& t : in->tensors()) in_bytes += t.n_bytes;
  const std::string stem = std::filesystem::path(in_path).stem().string();

  struct Row {
    const SchemeRow* scheme;
    std::string path;
    QuantizeReport report;
  };
  std::vector<Row> rows;
  for (const SchemeRow* s : chosen) {
    const std::string suffix = s->writes_directory ? "" : ".gguf";
    std::string out_path = type == "all" ? (std::filesystem::path(args["out-dir"].as<std::string>()) /
                                            (stem + "." + std::string(s->name) + suffix))
                                               .string()
                                         : args["out"].as<std::string>();
    if (type == "all") std::filesystem::create_directories(args["out-dir"].as<std::string>());
    auto r = s->run(*in, out_path, flags);
    if (!r) {
      std::fprintf(stderr, "qlora quantize: %s\n", r.status().message().c_str());
      return 1;
    }
    print_fallbacks(*r, stderr);
    if (args.count("tensors")) print_tensor_table(*r, stdout);
    print_type_mix(*r, stdout);
    if (args.count("csv")) {
      const std::string csv = type == "all" ? args["csv"].as<std::string>() + "." + std::string(s->name) + ".csv"
                                            : args["csv"].as<std::string>();
      if (Status st = write_csv(*r, csv); !st) {
        std::fprintf(stderr, "qlora quantize: %s\n", st.message().c_str());
        return 1;
      }
    }
    rows.push_back({s, out_path, std::move(*r)});
  }

  // The size/error table: what each scheme costs and how far it moves the weights.
  std::printf("\n%s: %.2f M weights, %.2f MiB as stored (%.2f bits/weight)\n", in_path.c_str(), double(n_weights) / 1e6,
              mib(in_bytes), 8.0 * double(in_bytes) / double(n_weights));
  std::printf("%-8s %10s %9s %8s %12s %11s %8s  %s\n", "scheme", "MiB", "bits/w", "ratio", "RMSE", "rel.RMSE",
              "seconds", "file");
  for (const auto& row : rows) {
    const auto e = total_error(row.report);
    const std::uint64_t bytes = output_bytes(*row.scheme, row.path);
    char rmse[32] = "-", rel[32] = "-";  // not measured with --no-error
    if (flags.measure_error) {
      std::snprintf(rmse, sizeof rmse, "%.4e", e.rmse());
      std::snprintf(rel, sizeof rel, "%.3f%%", 100.0 * e.relative_rmse());
    }
    std::printf("%-8s %10.2f %9.3f %8.3f %12s %11s %8.2f  %s\n", std::string(row.scheme->name).c_str(), mib(bytes),
                8.0 * double(row.report.dst_bytes) / double(n_weights), double(bytes) / double(std::filesystem::file_size(in_path)),
                rmse, rel, row.report.seconds, row.path.c_str());
  }
  std::printf("(RMSE and rel.RMSE over the re-quantized weights, against the decoded input; copied tensors are left out)\n");

  std::string plot = args.count("plot") ? args["plot"].as<std::string>() : "";
  if (plot.empty() && type == "all") plot = (std::filesystem::path(args["out-dir"].as<std::string>()) / "error_heatmap.svg").string();
  if (!plot.empty() && measure) {
    std::vector<report::Heatmap> panels;
    for (const auto& row : rows) panels.push_back(error_heatmap(row.report));
    if (Status st = report::write_text_file(plot, report::render_heatmaps(panels, "relative RMSE, %")); !st) {
      std::fprintf(stderr, "qlora quantize: %s\n", st.message().c_str());
      return 1;
    }
    std::printf("heatmap of relative RMSE per layer and projection: %s\n", plot.c_str());
  }
  return 0;
}

}  // namespace qlora::app
