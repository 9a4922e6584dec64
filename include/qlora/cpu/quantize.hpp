// qlora/cpu/quantize.hpp — multi-threaded quantize/dequantize of 2-D tensors
// on the CPU, over the shared block math in quant/.
//
// Rows are split into contiguous chunks, one per pool thread; each row is
// quantized independently, so output bytes never depend on the thread count.
// Where a SIMD row kernel exists (Q8_0, Q4_K, Q6_K with AVX2) it is used; each
// is tested to produce the same bytes as the scalar reference. Optional error statistics
// (RMSE and max |error| against the input) are accumulated per chunk and
// merged in chunk order, so they are deterministic too.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "qlora/core/parallel_for.hpp"
#include "qlora/core/status.hpp"
#include "qlora/cpu/kquant_avx2.hpp"
#include "qlora/cpu/q8_0_avx2.hpp"
#include "qlora/quant/row.hpp"

namespace qlora::cpu {

/// Reconstruction error of a quantized tensor against its f32 source.
struct QuantError {
  double sum_sq_err = 0;   // sum (x - dequant(q(x)))^2
  double sum_sq_ref = 0;   // sum x^2, for relative error
  double max_abs_err = 0;
  std::int64_t n = 0;
  double rmse() const { return n ? std::sqrt(sum_sq_err / double(n)) : 0.0; }
  /// RMSE relative to the RMS of the source (0 for a zero tensor).
  double relative_rmse() const { return sum_sq_ref > 0 ? std::sqrt(sum_sq_err / sum_sq_ref) : 0.0; }
  void merge(const QuantError& o) {
    sum_sq_err += o.sum_sq_err;
    sum_sq_ref += o.sum_sq_ref;
    max_abs_err = std::max(max_abs_err, o.max_abs_err);
    n += o.n;
  }
};

/// Quantize one row with the fastest kernel that is byte-identical to the
/// reference. Caller has validated n and finiteness.
template <quant::QuantizableFormat F>
inline void quantize_row_fast(const float* x, void* dst, std::int64_t n) {
#if defined(__AVX2__)
  if constexpr (std::is_same_v<F, quant::format::Q8_0>) {
    quantize_row_q8_0_avx2(x, dst, n);
    return;
  } else if constexpr (std::is_same_v<F, quant::format::Q4_K>) {
    quantize_row_q4_K_avx2(x, dst, n);
    return;
  } else if constexpr (std::is_same_v<F, quant::format::Q6_K>) {
    quantize_row_q6_K_avx2(x, dst, n);
    return;
  }
#endif
  quant::quantize_row<F>(x, dst, n);
}

/// Quantize a [nrows x ncols] f32 matrix into `type` rows (row-major, each
/// row ggml_row_bytes long). NaN/Inf are rejected with the row and column;
/// a row length that is not a whole number of blocks is rejected up front.
/// If `err` is non-null, each row is dequantized again to measure the error.
inline Status quantize_rows(std::uint32_t type, const float* src, void* dst, std::int64_t nrows,
                            std::int64_t ncols, QuantError* err = nullptr,
                            ThreadPool& pool = ThreadPool::global()) {
  Status result = Status::unsupported("cannot produce tensors of type " + quant::ggml_type_name(type));
  quant::visit_format(type, [&]<class F>() {
    if constexpr (quant::QuantizableFormat<F>) {
      using T = quant::FormatTraits<F>;
      if (ncols % T::kBlockElems != 0) {
        result = Status::invalid("row length " + std::to_string(ncols) + " is not a multiple of the " +
                                 std::string(T::kName) + " block size " + std::to_string(T::kBlockElems));
        return;
      }
      const std::size_t row_bytes = std::size_t(ncols / T::kBlockElems) * T::kBlockBytes;
      const std::size_t chunks = parallel_chunks(std::size_t(nrows), 1, pool);
      std::vector<QuantError> part(chunks);
      std::vector<std::int64_t> bad_index(chunks, -1);
      parallel_for(std::size_t(nrows), 1, [&](std::size_t chunk, std::size_t r0, std::size_t r1) {
        std::vector<float> back(err ? std::size_t(ncols) : 0);
        for (std::size_t r = r0; r < r1; ++r) {
          const float* x = src + r * std::size_t(ncols);
          if (const std::int64_t bad = quant::find_non_finite(x, ncols); bad >= 0) {
            bad_index[chunk] = std::int64_t(r) * ncols + bad;
            return;
          }
          void* out = static_cast<std::uint8_t*>(dst) + r * row_bytes;
          quantize_row_fast<F>(x, out, ncols);
          if (err) {
            quant::dequantize_row<F>(out, back.data(), ncols);
            QuantError& e = part[chunk];
            for (std::int64_t i = 0; i < ncols; ++i) {
              const double d = double(x[i]) - double(back[std::size_t(i)]);
              e.sum_sq_err += d * d;
              e.sum_sq_ref += double(x[i]) * double(x[i]);
              e.max_abs_err = std::max(e.max_abs_err, std::fabs(d));
            }
            e.n += ncols;
          }
        }
      }, pool);
      for (std::int64_t b : bad_index) {
        if (b >= 0) {
          result = Status::numeric("non-finite value at row " + std::to_string(b / ncols) + ", column " +
                                   std::to_string(b % ncols));
          return;
        }
      }
      if (err) {
        for (const auto& p : part) err->merge(p);
      }
      result = Status::ok();
    }
  });
  return result;
}

/// Decode `n` elements of `type` into f32, in parallel over blocks.
inline Status dequantize(std::uint32_t type, const void* src, float* dst, std::int64_t n,
                         ThreadPool& pool = ThreadPool::global()) {
  Status result = Status::unsupported("cannot decode tensors of type " + quant::ggml_type_name(type));
  quant::visit_format(type, [&]<class F>() {
    using T = quant::FormatTraits<F>;
    if (n % T::kBlockElems != 0) {
      result = Status::invalid(std::to_string(n) + " elements is not a whole number of " + std::string(T::kName) +
                               " blocks");
      return;
    }
    const auto* blocks = static_cast<const typename T::Block*>(src);
    const std::size_t nblocks = std::size_t(n / T::kBlockElems);
    parallel_for(nblocks, 4096, [&](std::size_t b0, std::size_t b1) {
      for (std::size_t b = b0; b < b1; ++b) T::dequantize_block(blocks[b], dst + b * T::kBlockElems);
    }, pool);
    result = Status::ok();
  });
  return result;
}

}  // namespace qlora::cpu
