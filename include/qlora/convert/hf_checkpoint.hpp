// qlora/convert/hf_checkpoint.hpp — the weights of a Hugging Face checkpoint
// directory: one model.safetensors, or shards listed by
// model.safetensors.index.json, mapped (not read) and listed in the order
// llama.cpp's converter visits them.
//
// That order decides the GGUF's tensor order, so it is part of being
// byte-identical: shard files sorted by name (from the index's weight_map
// when there is one, else every "model*.safetensors" in the directory), and
// within a shard the tensors sorted by name (Python's string order, which is
// byte order for these ASCII names; "layers.10" sorts before "layers.2").
// The index and the shards must agree exactly: a tensor the index names but
// no shard holds means a missing or truncated download, and is an error
// naming the shard files concerned.
#pragma once

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "qlora/convert/hf_config.hpp"
#include "qlora/core/status.hpp"
#include "qlora/io/safetensors.hpp"

namespace qlora::convert {

/// One tensor of the checkpoint: which shard, and its header entry.
struct HfTensorRef {
  std::size_t part = 0;
  const io::StTensorInfo* info = nullptr;
};

class HfCheckpoint {
 public:
  /// Open every shard of `dir` (headers parsed, data mapped lazily).
  static Result<HfCheckpoint> open(const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    HfCheckpoint c;
    c.dir_ = dir;
    if (!fs::is_directory(dir)) return Status::invalid(dir.string() + ": not a directory");
    std::vector<std::string> part_names;
    std::map<std::string, std::string> weight_map;  // tensor -> shard
    const fs::path index = dir / "model.safetensors.index.json";
    if (fs::exists(index)) {
      auto j = read_json_file(index.string());
      if (!j) return j.status();
      const auto wm = j->find("weight_map");
      if (wm == j->end() || !wm->is_object())
        return Status::invalid(index.string() + ": no 'weight_map' object");
      std::set<std::string> parts;
      for (const auto& [name, file] : wm->items()) {
        if (!file.is_string()) return Status::invalid(index.string() + ": weight_map['" + name + "'] is not a file name");
        const std::string f = file.get<std::string>();
        if (f.empty() || f.find('/') != std::string::npos || f == "." || f == "..")
          return Status::invalid(index.string() + ": weight_map['" + name + "'] = '" + f + "' is not a file in the directory");
        weight_map[name] = f;
        parts.insert(f);
      }
      part_names.assign(parts.begin(), parts.end());  // std::set: sorted
      for (const auto& p : part_names)
        if (!fs::exists(dir / p)) return Status::invalid(index.string() + ": shard '" + p + "' is missing from " + dir.string());
    } else {
      for (const auto& e : fs::directory_iterator(dir)) {
        const std::string n = e.path().filename().string();
        if (n.rfind("model", 0) == 0 && n.size() >= 12 && n.substr(n.size() - 12) == ".safetensors") part_names.push_back(n);
      }
      std::sort(part_names.begin(), part_names.end());
    }
    if (part_names.empty())
      return Status::invalid(dir.string() + ": no model*.safetensors weights (PyTorch .bin checkpoints are not read)");

    std::set<std::string> seen;
    for (std::size_t p = 0; p < part_names.size(); ++p) {
      auto f = io::SafetensorsFile::open((dir / part_names[p]).string());
      if (!f) return f.status();
      c.parts_.push_back(std::move(*f));
      c.part_names_.push_back(part_names[p]);
    }
    for (std::size_t p = 0; p < c.parts_.size(); ++p) {
      std::vector<const io::StTensorInfo*> sorted;
      for (const auto& t : c.parts_[p].tensors()) sorted.push_back(&t);
      std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->name < b->name; });
      for (const auto* t : sorted) {
        if (!seen.insert(t->name).second)
          return Status::invalid(dir.string() + ": tensor '" + t->name + "' is in more than one shard (second: " +
                                 part_names[p] + ")");
        c.tensors_.push_back({p, t});
      }
    }
    if (!weight_map.empty()) {
      std::vector<std::string> missing, extra;
      std::set<std::string> missing_files;
      for (const auto& [name, file] : weight_map)
        if (!seen.count(name)) {
          missing.push_back(name);
          missing_files.insert(file);
        }
      for (const auto& name : seen)
        if (!weight_map.count(name)) extra.push_back(name);
      auto list = [](const auto& v) {
        std::string s;
        std::size_t k = 0;
        for (const auto& x : v) {
          if (k++ == 5) {
            s += ", ... (" + std::to_string(v.size()) + " in all)";
            break;
          }
          s += (s.empty() ? "" : ", ") + x;
        }
        return s;
      };
      if (!missing.empty())
        return Status::corrupt(index.string() + ": tensors listed in the index are not in their shards (" +
                               list(missing_files) + "): " + list(missing));
      if (!extra.empty())
        return Status::corrupt(index.string() + ": shards hold tensors the index does not list: " + list(extra));
    }
    return c;
  }

  HfCheckpoint(HfCheckpoint&&) noexcept = default;
  HfCheckpoint& operator=(HfCheckpoint&&) noexcept = default;

  /// Tensors in the reference converter's visiting order (file comment).
  const std::vector<HfTensorRef>& tensors() const { return tensors_; }
  const std::string& part_name(std::size_t i) const { return part_names_[i]; }
  std::span<const std::byte> data(const HfTensorRef& t) const { return parts_[t.part].data(*t.info); }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  HfCheckpoint() = default;
  std::filesystem::path dir_;
  std::vector<io::SafetensorsFile> parts_;  // StTensorInfo pointers stay valid: parts_ is never resized after filling
  std::vector<std::string> part_names_;
  std::vector<HfTensorRef> tensors_;
};

}  // namespace qlora::convert
