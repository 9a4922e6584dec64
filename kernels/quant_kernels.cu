// kernels/quant_kernels.cu — the launchers declared in qlora/cuda/quant_launch.hpp
// and the one explicit instantiation of each per format.
//
// No algorithm code here (style.md §2.1): argument checks, grid sizing and the
// runtime-id -> format-tag bridge (quant::visit_format). The kernels are the
// shells in qlora/cuda/quant_kernels.cuh over the HD block math.
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <type_traits>

#include "qlora/cuda/check.cuh"
#include "qlora/cuda/launch.cuh"
#include "qlora/cuda/quant_kernels.cuh"
#include "qlora/cuda/quant_launch.hpp"
#include "qlora/quant/nf4.hpp"
#include "qlora/quant/row.hpp"

namespace qlora::cuda {
namespace {

/// Comma-separated names of the formats in an X-macro list, for errors.
#define QLORA_CUDA_NAME_(f) names += std::string(names.empty() ? "" : ", ") + std::string(quant::FormatTraits<quant::format::f>::kName);
std::string quantize_format_names() {
  std::string names;
  QLORA_CUDA_QUANTIZE_FORMATS(QLORA_CUDA_NAME_)
  return names;
}
std::string dequantize_format_names() {
  std::string names;
  QLORA_CUDA_DEQUANTIZE_FORMATS(QLORA_CUDA_NAME_)
  return names;
}
#undef QLORA_CUDA_NAME_

/// Shape and pointer checks shared by both directions; the kernels assume
/// whole blocks and naturally aligned Block pointers and do not re-check.
template <class F>
Status check_row(const char* op, const void* src, const void* dst, std::size_t src_align, std::size_t dst_align,
                 std::int64_t n) {
  using T = quant::FormatTraits<F>;
  const std::string where = std::string(op) + "<" + std::string(T::kName) + ">: ";
  if (n < 0) return Status::invalid(where + "negative element count " + std::to_string(n));
  if (n % T::kBlockElems != 0)
    return Status::invalid(where + "row of " + std::to_string(n) + " elements is not a multiple of the block (" +
                           std::to_string(T::kBlockElems) + ")");
  if (n == 0) return Status::ok();
  if (src == nullptr || dst == nullptr) return Status::invalid(where + "null device pointer");
  if (reinterpret_cast<std::uintptr_t>(src) % src_align != 0 || reinterpret_cast<std::uintptr_t>(dst) % dst_align != 0)
    return Status::invalid(where + "device pointer not aligned to its element type");
  return Status::ok();
}

}  // namespace

template <class F>
  requires kCudaQuantizes<F>
Status launch_quantize(const float* d_x, void* d_out, std::int64_t n, Stream s, QuantKernel kernel) {
  using T = quant::FormatTraits<F>;
  using Block = typename T::Block;
  constexpr bool kIsNf4 = std::is_same_v<F, quant::format::NF4>;
  QLORA_TRY(check_row<F>("launch_quantize", d_x, d_out, alignof(float), alignof(Block), n));
  if (kernel == QuantKernel::kWarpPerBlock && !kIsNf4)
    return Status::unsupported("launch_quantize<" + std::string(T::kName) +
                               ">: no warp-per-block kernel (only nf4 has one)");
  if (n == 0) return Status::ok();

  const std::int64_t nblocks = n / T::kBlockElems;
  auto* out = static_cast<Block*>(d_out);
  if constexpr (kIsNf4) {
    if (kernel != QuantKernel::kThreadPerBlock) {  // kAuto picks the warp kernel for NF4
      quantize_nf4_warp_kernel<kNf4WarpsPerCta>
          <<<grid_size(nblocks, kNf4WarpsPerCta), kNf4WarpsPerCta * 32, 0, to_cuda(s)>>>(d_x, out, nblocks);
      return QLORA_CUDA_CHECK(cudaGetLastError());
    }
  }
  quantize_blocks_kernel<F><<<grid_size(nblocks, kQuantThreads), kQuantThreads, 0, to_cuda(s)>>>(d_x, out, nblocks);
  return QLORA_CUDA_CHECK(cudaGetLastError());
}

template <class F>
  requires kCudaDequantizes<F>
Status launch_dequantize(const void* d_in, float* d_y, std::int64_t n, Stream s) {
  using T = quant::FormatTraits<F>;
  using Block = typename T::Block;
  QLORA_TRY(check_row<F>("launch_dequantize", d_in, d_y, alignof(Block), alignof(float), n));
  if (n == 0) return Status::ok();
  const std::int64_t nblocks = n / T::kBlockElems;
  dequantize_blocks_kernel<F><<<grid_size(nblocks, kQuantThreads), kQuantThreads, 0, to_cuda(s)>>>(
      static_cast<const Block*>(d_in), d_y, nblocks);
  return QLORA_CUDA_CHECK(cudaGetLastError());
}

Status launch_quantize(std::uint32_t ggml_type, const float* d_x, void* d_out, std::int64_t n, Stream s) {
  Status st = Status::unsupported("launch_quantize: no CUDA quantizer for " + quant::ggml_type_name(ggml_type) +
                                  " (built: " + quantize_format_names() + ")");
  quant::visit_format(ggml_type, [&]<class F>() {
    if constexpr (kCudaQuantizes<F>) st = launch_quantize<F>(d_x, d_out, n, s);
  });
  return st;
}

Status launch_dequantize(std::uint32_t ggml_type, const void* d_in, float* d_y, std::int64_t n, Stream s) {
  Status st = Status::unsupported("launch_dequantize: no CUDA dequantizer for " + quant::ggml_type_name(ggml_type) +
                                  " (built: " + dequantize_format_names() + ")");
  quant::visit_format(ggml_type, [&]<class F>() {
    if constexpr (kCudaDequantizes<F>) st = launch_dequantize<F>(d_in, d_y, n, s);
  });
  return st;
}

// Explicit instantiations: the definitions the extern declarations in
// quant_launch.hpp refer to, one per listed format.
#define QLORA_CUDA_INSTANTIATE_QUANTIZE_(f) \
  template Status launch_quantize<quant::format::f>(const float*, void*, std::int64_t, Stream, QuantKernel);
#define QLORA_CUDA_INSTANTIATE_DEQUANTIZE_(f) \
  template Status launch_dequantize<quant::format::f>(const void*, float*, std::int64_t, Stream);
QLORA_CUDA_QUANTIZE_FORMATS(QLORA_CUDA_INSTANTIATE_QUANTIZE_)
QLORA_CUDA_DEQUANTIZE_FORMATS(QLORA_CUDA_INSTANTIATE_DEQUANTIZE_)
#undef QLORA_CUDA_INSTANTIATE_QUANTIZE_
#undef QLORA_CUDA_INSTANTIATE_DEQUANTIZE_

}  // namespace qlora::cuda
