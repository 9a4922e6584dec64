// qlora/train/checkpoint.hpp — everything a training run needs to continue
// exactly where it stopped, in one safetensors file written atomically.
//
//   tensors   "lora.params"   [n]  the adapter (flat layout, lora/adapter.hpp)
//             "adamw.exp_avg" [n]  AdamW first moments
//             "adamw.exp_avg_sq" [n]
//   metadata  "qlora.checkpoint"  format version ("1")
//             "step"              optimizer steps taken (the schedule position;
//                                 the data order and dropout masks are pure
//                                 functions of (seed, step), so nothing else
//                                 about randomness needs saving)
//             "run"               the run's fingerprint: hyper-parameters,
//                                 adapter layout, data — resuming with anything
//                                 different is refused, naming what differs
//             "lora.*"            rank, alpha, dropout, targets, seed
//
// The file is written to a temporary sibling and renamed (io/safetensors.hpp),
// so a run killed mid-write leaves the previous checkpoint intact. A resumed
// run reproduces the uninterrupted one bit for bit on the same machine and
// thread count (tests/train/trainer_test.cpp).
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "qlora/core/status.hpp"
#include "qlora/io/safetensors.hpp"
#include "qlora/lora/adapter.hpp"
#include "qlora/optim/adamw.hpp"

namespace qlora::train {

inline constexpr const char* kCheckpointVersion = "1";

struct CheckpointState {
  std::int64_t step = 0;
  std::string run_fingerprint;
  std::vector<float> params, exp_avg, exp_avg_sq;
};

/// "<dir>/checkpoint-<step>.safetensors" (zero-padded so names sort by step).
inline std::string checkpoint_path(const std::string& dir, std::int64_t step) {
  std::string s = std::to_string(step);
  if (s.size() < 7) s.insert(0, 7 - s.size(), '0');
  return (std::filesystem::path(dir) / ("checkpoint-" + s + ".safetensors")).string();
}

/// The newest checkpoint in `dir` (by step), or "" if there is none.
inline std::string latest_checkpoint(const std::string& dir) {
  std::error_code ec;
  std::string best;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("checkpoint-", 0) == 0 && n.size() > 12 && n.substr(n.size() - 12) == ".safetensors" &&
        (best.empty() || n > std::filesystem::path(best).filename().string()))
      best = e.path().string();
  }
  return best;
}

/// A float printed so that it reads back to the same value.
inline std::string exact(float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", double(v));
  return buf;
}

inline Status save_checkpoint(const std::string& path, const lora::LoraAdapter& adapter,
                              const optim::AdamWState& opt, const std::string& run_fingerprint) {
  const auto n = std::int64_t(adapter.params().size());
  if (opt.m.size() != std::size_t(n) || opt.v.size() != std::size_t(n))
    return Status::invalid("checkpoint: optimizer state does not match the adapter");
  auto bytes = [](std::span<const float> v) { return std::as_bytes(v); };
  std::vector<io::StTensorView> t = {
      {"adamw.exp_avg", io::StDtype::F32, {n}, bytes(opt.m)},
      {"adamw.exp_avg_sq", io::StDtype::F32, {n}, bytes(opt.v)},
      {"lora.params", io::StDtype::F32, {n}, bytes(adapter.params())},
  };
  const lora::LoraConfig& c = adapter.config();
  std::map<std::string, std::string> meta = {
      {"qlora.checkpoint", kCheckpointVersion},
      {"step", std::to_string(opt.step)},
      {"run", run_fingerprint},
      {"lora.rank", std::to_string(c.rank)},
      {"lora.alpha", exact(c.alpha)},
      {"lora.dropout", exact(c.dropout)},
      {"lora.targets", std::to_string(unsigned(c.targets))},
      {"lora.seed", std::to_string(c.seed)},
  };
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  return io::save_safetensors(path, std::move(t), meta);
}

/// Read a checkpoint. Errors name the file and what is missing or malformed.
inline Result<CheckpointState> load_checkpoint(const std::string& path) {
  auto f = io::SafetensorsFile::open(path);
  if (!f) return f.status();
  const auto& meta = f->metadata();
  auto get = [&](const char* key) -> Result<std::string> {
    auto it = meta.find(key);
    if (it == meta.end()) return Status::corrupt(path + ": checkpoint metadata has no '" + key + "'");
    return it->second;
  };
  auto version = get("qlora.checkpoint");
  if (!version) return Status::corrupt(path + ": not a qlora training checkpoint (no 'qlora.checkpoint' metadata)");
  if (*version != kCheckpointVersion)
    return Status::unsupported(path + ": checkpoint format version " + *version + " (this build reads " +
                               kCheckpointVersion + ")");
  CheckpointState st;
  auto step = get("step");
  if (!step) return step.status();
  try {
    st.step = std::stoll(*step);
  } catch (...) {
    return Status::corrupt(path + ": checkpoint step '" + *step + "' is not a number");
  }
  auto run = get("run");
  if (!run) return run.status();
  st.run_fingerprint = *run;
  for (auto [name, dst] : {std::pair{"lora.params", &st.params}, std::pair{"adamw.exp_avg", &st.exp_avg},
                           std::pair{"adamw.exp_avg_sq", &st.exp_avg_sq}}) {
    auto v = f->read_f32(name);
    if (!v) return v.status().with_context(path);
    *dst = std::move(*v);
  }
  if (st.exp_avg.size() != st.params.size() || st.exp_avg_sq.size() != st.params.size())
    return Status::corrupt(path + ": checkpoint tensors have different lengths");
  return st;
}

/// The adapter a checkpoint holds, for `model` (its shape must match the
/// adapter's layout). The LoRA hyper-parameters come from the metadata.
inline Result<lora::LoraAdapter> load_checkpoint_adapter(const std::string& path, const model::ModelConfig& model) {
  auto f = io::SafetensorsFile::open(path);
  if (!f) return f.status();
  const auto& meta = f->metadata();
  auto num = [&](const char* key, double& out) -> Status {
    auto it = meta.find(key);
    if (it == meta.end()) return Status::corrupt(path + ": checkpoint metadata has no '" + key + "'");
    try {
      out = std::stod(it->second);
    } catch (...) {
      return Status::corrupt(path + ": checkpoint metadata '" + key + "' = '" + it->second + "' is not a number");
    }
    return Status::ok();
  };
  double rank = 0, alpha = 0, dropout = 0, targets = 0, seed = 0;
  QLORA_TRY(num("lora.rank", rank));
  QLORA_TRY(num("lora.alpha", alpha));
  QLORA_TRY(num("lora.dropout", dropout));
  QLORA_TRY(num("lora.targets", targets));
  QLORA_TRY(num("lora.seed", seed));
  lora::LoraConfig c;
  c.rank = int(rank);
  c.alpha = float(alpha);
  c.dropout = float(dropout);
  c.targets = lora::TargetMask(targets);
  c.seed = std::uint64_t(seed);
  QLORA_TRY(c.validate().with_context(path));
  lora::LoraAdapter ad = lora::LoraAdapter::layout(model, c);
  auto p = f->read_f32("lora.params");
  if (!p) return p.status().with_context(path);
  if (p->size() != ad.params().size())
    return Status::invalid(path + ": the checkpoint's adapter has " + std::to_string(p->size()) +
                           " parameters; rank " + std::to_string(c.rank) + " on " + model.name + " needs " +
                           std::to_string(ad.params().size()) + " (another model?)");
  std::copy(p->begin(), p->end(), ad.params().begin());
  return ad;
}

}  // namespace qlora::train
