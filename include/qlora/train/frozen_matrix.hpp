// qlora/train/frozen_matrix.hpp — a frozen base weight as the trainer holds it.
//
// QLoRA keeps the base model in 4-bit NF4 and dequantizes it on the fly, a
// panel at a time, inside every product — never a full-precision copy of a
// projection. A FrozenMatrix is one M x K weight (M output rows of K inputs,
// GGUF orientation: y = x W^T) stored either
//   * as NF4 blocks we own (the paper's base: bitsandbytes' NF4 with double
//     quantization of the block scales, blocksize 64), or
//   * as the GGUF tensor itself, in the file's type (F32/F16/BF16/Q8_0/Q4_K/...),
//     zero-copy — F32 gives an exact fp32 base for gradient checks against
//     PyTorch, the others let users train against the quantized file they serve.
// decode() produces any block-aligned panel in fp32; F32 tensors skip it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "qlora/core/parallel_for.hpp"
#include "qlora/core/status.hpp"
#include "qlora/model/weights.hpp"
#include "qlora/quant/nf4.hpp"
#include "qlora/quant/nf4_double_quant.hpp"
#include "qlora/quant/row.hpp"

namespace qlora::train {

/// How the trainer stores the frozen projections.
enum class BaseStorage {
  kNf4,          // NF4 + double-quantized scales (QLoRA; the default)
  kNf4Single,    // NF4 with fp32 scales (bnb_4bit_use_double_quant=False)
  kFileFormat,   // the GGUF tensor as stored, zero copy
};

inline Result<BaseStorage> parse_base_storage(std::string_view s) {
  if (s == "nf4") return BaseStorage::kNf4;
  if (s == "nf4-single") return BaseStorage::kNf4Single;
  if (s == "file" || s == "none") return BaseStorage::kFileFormat;
  return Status::invalid("unknown base storage '" + std::string(s) + "' (valid: nf4, nf4-single, file)");
}

class FrozenMatrix {
 public:
  using Nf4 = quant::FormatTraits<quant::format::NF4>;

  FrozenMatrix() = default;

  /// The GGUF tensor as stored (zero copy; `t`'s mapping must outlive this).
  static FrozenMatrix view(const model::TensorRef& t) {
    FrozenMatrix m;
    m.name_ = t.name;
    m.rows_ = t.rows;
    m.cols_ = t.cols;
    m.type_ = t.type;
    m.data_ = static_cast<const std::uint8_t*>(t.data);
    m.row_bytes_ = t.row_bytes();
    m.block_ = std::int64_t(quant::ggml_type_info(t.type)->block_elems);
    return m;
  }

  /// Re-quantize `t` (any decodable type) to NF4, as bitsandbytes does when it
  /// loads a bf16/fp16 model in 4 bits: absmax per 64 values, then (double)
  /// the absmax vector in 8-bit blocks of 256 with its mean subtracted.
  static Result<FrozenMatrix> to_nf4(const model::TensorRef& t, bool double_quant, ThreadPool& pool) {
    if (t.cols % Nf4::kBlockElems != 0)
      return Status::invalid(t.name + ": " + std::to_string(t.cols) + " columns are not a multiple of NF4's block of 64");
    FrozenMatrix m;
    m.name_ = t.name;
    m.rows_ = t.rows;
    m.cols_ = t.cols;
    m.type_ = quant::kNoGgmlType;
    m.block_ = Nf4::kBlockElems;
    const std::int64_t bpr = t.cols / Nf4::kBlockElems;
    m.nf4_.resize(std::size_t(t.rows * bpr));
    std::vector<Status> errs(parallel_chunks(std::size_t(t.rows), 16, pool), Status::ok());
    parallel_for(std::size_t(t.rows), 16, [&](std::size_t chunk, std::size_t r0, std::size_t r1) {
      std::vector<float> row(std::size_t(t.cols));
      for (std::size_t r = r0; r < r1; ++r) {
        Status s = quant::dequantize_row(t.type, t.row(std::int64_t(r)), row.data(), t.cols);
        if (!s.is_ok()) {
          errs[chunk] = std::move(s);
          return;
        }
        for (std::int64_t b = 0; b < bpr; ++b)
          Nf4::quantize_block(row.data() + b * Nf4::kBlockElems, m.nf4_[r * std::size_t(bpr) + std::size_t(b)]);
      }
    }, pool);
    for (auto& s : errs)
      if (!s.is_ok()) return s.with_context(t.name);
    if (double_quant) {
      // The absmax values are what double quantization changes; bitsandbytes
      // dequantizes them back before use, so we store the decoded values.
      std::vector<float> absmax(m.nf4_.size());
      for (std::size_t i = 0; i < absmax.size(); ++i) absmax[i] = m.nf4_[i].absmax;
      auto st = quant::double_quantize(absmax, quant::kNf4NestedBlocksize);
      if (!st) return st.status().with_context(t.name);
      const std::vector<float> decoded = quant::double_dequantize(*st);
      for (std::size_t i = 0; i < absmax.size(); ++i) m.nf4_[i].absmax = decoded[i];
    }
    return m;
  }

  /// Replace W (rows x cols, row-major fp32) by the values an NF4 base made
  /// from it decodes to — the weights QLoRA trains an adapter against (the
  /// "nf4" merge target, convert/merge_gguf.hpp).
  static Status nf4_round_trip(float* W, std::int64_t rows, std::int64_t cols, bool double_quant, ThreadPool& pool) {
    model::TensorRef ref;
    ref.type = std::uint32_t(quant::GgmlType::F32);
    ref.data = W;
    ref.rows = rows;
    ref.cols = cols;
    ref.name = "weight";
    auto m = to_nf4(ref, double_quant, pool);
    if (!m) return m.status();
    m->decode(0, rows, 0, cols, W, cols);
    return Status::ok();
  }

  const std::string& name() const { return name_; }
  std::int64_t rows() const { return rows_; }
  std::int64_t cols() const { return cols_; }
  /// Elements per block along a row: panels' column edges must be multiples.
  std::int64_t block() const { return block_; }
  bool is_nf4() const { return type_ == quant::kNoGgmlType; }
  /// Row-major fp32 data when stored as F32 (no decode needed), else null.
  const float* dense() const {
    return !is_nf4() && type_ == std::uint32_t(quant::GgmlType::F32) ? reinterpret_cast<const float*>(data_) : nullptr;
  }
  /// The NF4 blocks (rows() x cols()/64, row-major) when is_nf4(), else null:
  /// for kernels that decode straight into their own layout (cpu/bf16_pack_nf4.hpp).
  const Nf4::Block* nf4_blocks() const { return is_nf4() ? nf4_.data() : nullptr; }
  /// The GGUF tensor's bytes and ggml type when held as the file stores it
  /// (rows of row-major blocks, back to back); null / kNoGgmlType for NF4.
  const void* file_data() const { return is_nf4() ? nullptr : data_; }
  std::uint32_t file_type() const { return type_; }
  /// Bytes the weight occupies (owned NF4 blocks or the file's bytes).
  std::size_t bytes() const {
    return is_nf4() ? nf4_.size() * sizeof(Nf4::Block) : std::size_t(rows_) * row_bytes_;
  }

  /// Decode rows [r0, r1) x columns [c0, c1) to fp32, row-major with leading
  /// dimension ld. c0 and c1 are multiples of block() (or c1 == cols()).
  void decode(std::int64_t r0, std::int64_t r1, std::int64_t c0, std::int64_t c1, float* out, std::int64_t ld) const {
    if (is_nf4()) {
      const std::int64_t bpr = cols_ / Nf4::kBlockElems;
      for (std::int64_t r = r0; r < r1; ++r) {
        const Nf4::Block* blk = nf4_.data() + r * bpr;
        float* o = out + (r - r0) * ld;
        for (std::int64_t c = c0; c < c1; c += Nf4::kBlockElems)
          Nf4::dequantize_block(blk[c / Nf4::kBlockElems], o + (c - c0));
      }
      return;
    }
    const auto info = quant::ggml_type_info(type_);
    for (std::int64_t r = r0; r < r1; ++r) {
      const std::uint8_t* row = data_ + std::size_t(r) * row_bytes_;
      const std::uint8_t* src = row + std::size_t(c0 / block_) * info->block_bytes;
      (void)quant::dequantize_row(type_, src, out + (r - r0) * ld, c1 - c0);  // type checked at bind time
    }
  }

 private:
  std::string name_;
  std::int64_t rows_ = 0, cols_ = 0, block_ = 1;
  std::uint32_t type_ = 0;
  const std::uint8_t* data_ = nullptr;
  std::size_t row_bytes_ = 0;
  std::vector<Nf4::Block> nf4_;
};

}  // namespace qlora::train
