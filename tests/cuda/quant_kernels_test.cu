// tests/cuda/quant_kernels_test.cu — the CUDA quantize/dequantize kernels
// against the CPU reference, byte for byte and bit for bit.
//
// Both sides run the same QLORA_HD block math (include/qlora/quant/*.hpp), so
// any difference is a bug in a shell, a launcher, or in the floating-point
// environment (FMA contraction, non-IEEE div/sqrt) — exactly what this test is
// here to catch. Every format is fed random rows at several scales plus edge
// rows (zeros, ties, rounding half-way points, NF4 thresholds, fp16/bf16
// limits, subnormals); all inputs are finite, as quant::quantize_row(type, ...)
// requires on the CPU.
//
// Without a usable device every GPU case calls GTEST_SKIP() with the reason;
// the launcher argument checks run everywhere, since they fail before any
// CUDA call is made.
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gpu_fixture.cuh"
#include "qlora/cuda/check.cuh"
#include "qlora/cuda/quant_launch.hpp"
#include "qlora/quant/nf4.hpp"
#include "qlora/quant/row.hpp"

namespace qlora::cuda {
namespace {

namespace fmt = quant::format;

// ---------------------------------------------------------------------------
// Device plumbing
// ---------------------------------------------------------------------------

using gpu_test::DeviceBuffer;
using gpu_test::GpuTest;
using gpu_test::StreamGuard;

/// Copy `in` to the device, run launch(d_in, d_out, stream) and copy
/// `out.size()` bytes back. The output buffer is filled with 0xA5 first so
/// bytes a kernel forgot to write cannot match the reference by accident.
template <class Launch>
Status run_on_device(const void* in, std::size_t in_bytes, void* out, std::size_t out_bytes, Launch&& launch) {
  DeviceBuffer d_in, d_out;
  StreamGuard stream;
  QLORA_TRY(d_in.allocate(in_bytes));
  QLORA_TRY(d_out.allocate(out_bytes));
  QLORA_TRY(stream.create());
  QLORA_CUDA_TRY(cudaMemcpyAsync(d_in.get(), in, in_bytes, cudaMemcpyHostToDevice, stream.get()));
  QLORA_CUDA_TRY(cudaMemsetAsync(d_out.get(), 0xA5, out_bytes, stream.get()));
  QLORA_TRY(launch(d_in.get(), d_out.get(), stream.opaque()));
  QLORA_CUDA_TRY(cudaMemcpyAsync(out, d_out.get(), out_bytes, cudaMemcpyDeviceToHost, stream.get()));
  return QLORA_CUDA_CHECK(cudaStreamSynchronize(stream.get()));
}

// ---------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------

/// Edge rows are built in chunks of this many floats: a multiple of every
/// block size (1, 32, 64, 256), so each chunk is whole blocks of any format.
constexpr int kChunk = 256;

/// Values chosen to sit on the decisions the quantizers make.
std::vector<float> edge_rows() {
  std::vector<float> x;
  auto chunk = [&](auto&& value_at) {
    for (int i = 0; i < kChunk; ++i) x.push_back(float(value_at(i)));
  };
  chunk([](int) { return 0.0f; });                                    // all-zero blocks (zero scale paths)
  chunk([](int) { return -0.0f; });                                   // sign of zero must survive
  chunk([](int) { return 1.0f; });                                    // constant: max == min in K-quant search
  chunk([](int i) { return i % 2 ? -1.0f : 1.0f; });                  // alternating extremes
  chunk([](int i) { return i == 37 ? 7.5f : 0.0f; });                 // one spike, rest zero
  chunk([](int i) { return i == 200 ? -3.0f : 1e-3f * float(i); });   // negative extreme, positive ramp
  chunk([](int i) { return float(i - 128) / 128.0f; });               // symmetric ramp
  chunk([](int i) { return float(i % 3 - 1) * 1e-20f; });             // scales underflow fp16
  chunk([](int i) { return float(i % 5 - 2) * 1e-40f; });             // fp32 subnormals
  chunk([](int i) { return (i % 2 ? -1.0f : 1.0f) * (3e4f + float(i)); });  // large magnitudes
  // +max and -max of equal magnitude: Q5_0/Q8_K/Q6_K keep the first one.
  chunk([](int i) { return i % 32 == 5 ? -4.0f : (i % 32 == 9 ? 4.0f : 0.5f); });
  chunk([](int i) { return i % 32 == 9 ? -4.0f : (i % 32 == 5 ? 4.0f : 0.5f); });
  // Q8_0: amax 127 makes d = 1, so k + 0.5 is a rounding tie (half away from zero).
  chunk([](int i) { return i % 32 == 0 ? 127.0f : float(i % 32) - 15.5f; });
  // Q8_K / K-quants: ties for nearest_int (half to even) at amax 127.
  chunk([](int i) { return i % 64 == 0 ? -127.0f : float(i % 64) * 0.5f - 16.0f; });
  // NF4: absmax 1 per 64-block, then every codebook value, the midpoints
  // between neighbours (the decision thresholds) and the floats either side.
  chunk([](int i) {
    const int j = i % 64;
    if (j == 0) return 1.0f;
    if (j < 16) return quant::nf4_value(j);
    const int t = j % 15;  // threshold between codes t and t+1
    const float mid = (quant::nf4_value(t) + quant::nf4_value(t + 1)) / 2.0f;
    if (j < 32) return mid;
    return j < 48 ? std::nextafter(mid, -2.0f) : std::nextafter(mid, 2.0f);
  });
  // fp16 / bf16 limits: max finite, just below/at the overflow rounding point,
  // smallest normal, smallest subnormal, half of it (rounds to even = 0), a
  // tie between two halves and a tie between two bf16s. Nothing larger: the
  // K-quant searches cube their inputs, and an overflow to NaN would carry a
  // payload that legitimately differs between x86 and the GPU.
  chunk([](int i) {
    constexpr float kValues[] = {65504.0f,       65519.996f,  65520.0f,        6.103515625e-05f, 5.9604645e-08f,
                                 2.9802322e-08f, 1.00048828125f, 1.00390625f, -65504.0f};
    return kValues[i % 9] * (i % 18 < 9 ? 1.0f : -1.0f);
  });
  return x;
}

/// Random rows at the scales real tensors have (LLM weights are ~N(0, 0.02)),
/// plus a heavy-tailed row so some blocks have one dominant outlier.
std::vector<float> random_rows(std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(0.05f, 1.0f);
  std::vector<float> x;
  for (float scale : {1.0f, 0.02f, 100.0f})
    for (int i = 0; i < 16 * kChunk; ++i) x.push_back(scale * normal(rng));
  for (int i = 0; i < 16 * kChunk; ++i) x.push_back(normal(rng) / uniform(rng));
  return x;
}

std::vector<float> test_input() {
  std::vector<float> x = edge_rows();
  const std::vector<float> r = random_rows(20240611u);
  x.insert(x.end(), r.begin(), r.end());
  return x;
}

// ---------------------------------------------------------------------------
// Comparisons
// ---------------------------------------------------------------------------

std::string hex(const std::uint8_t* p, std::size_t n) {
  std::string s;
  char buf[4];
  for (std::size_t i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", p[i]);
    s += buf;
  }
  return s;
}

/// Byte-compare whole blocks; on mismatch name the first bad block and its input.
template <class F>
void expect_same_blocks(const std::vector<std::uint8_t>& want, const std::vector<std::uint8_t>& got,
                        const std::vector<float>& x, const std::string& what) {
  using T = quant::FormatTraits<F>;
  ASSERT_EQ(want.size(), got.size());
  const std::size_t nblocks = want.size() / T::kBlockBytes;
  std::size_t bad = 0, first = nblocks;
  for (std::size_t b = 0; b < nblocks; ++b) {
    if (std::memcmp(want.data() + b * T::kBlockBytes, got.data() + b * T::kBlockBytes, T::kBlockBytes) != 0) {
      ++bad;
      if (first == nblocks) first = b;
    }
  }
  if (bad == 0) return;
  ADD_FAILURE() << what << ": " << bad << " of " << nblocks << " " << T::kName << " blocks differ; first is block "
                << first << " (input element " << first * T::kBlockElems << " = " << x[first * T::kBlockElems]
                << ")\n  cpu: " << hex(want.data() + first * T::kBlockBytes, T::kBlockBytes)
                << "\n  gpu: " << hex(got.data() + first * T::kBlockBytes, T::kBlockBytes);
}

/// Bitwise float compare (so -0 vs +0 and NaN payloads count as differences).
void expect_same_floats(const std::vector<float>& want, const std::vector<float>& got, const std::string& what) {
  ASSERT_EQ(want.size(), got.size());
  std::size_t bad = 0, first = want.size();
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (f32_bits(want[i]) != f32_bits(got[i])) {
      ++bad;
      if (first == want.size()) first = i;
    }
  }
  if (bad == 0) return;
  ADD_FAILURE() << what << ": " << bad << " of " << want.size() << " floats differ; first at " << first
                << ": cpu " << want[first] << " (0x" << std::hex << f32_bits(want[first]) << "), gpu " << got[first]
                << " (0x" << f32_bits(got[first]) << ")" << std::dec;
}

const char* kernel_name(QuantKernel k) {
  switch (k) {
    case QuantKernel::kAuto: return "kAuto";
    case QuantKernel::kThreadPerBlock: return "kThreadPerBlock";
    case QuantKernel::kWarpPerBlock: return "kWarpPerBlock";
  }
  return "?";
}

// ---------------------------------------------------------------------------
// Every format with a quantizer: quantize and dequantize vs the CPU
// ---------------------------------------------------------------------------

struct FormatName {
  template <class F>
  static std::string GetName(int) {
    return std::string(quant::FormatTraits<F>::kName);
  }
};

template <class F>
class QuantizeKernelTest : public GpuTest {};

using QuantizeFormats = testing::Types<fmt::F32, fmt::F16, fmt::BF16, fmt::Q8_0, fmt::Q5_0, fmt::Q4_K, fmt::Q6_K,
                                       fmt::Q8_K, fmt::NF4>;
TYPED_TEST_SUITE(QuantizeKernelTest, QuantizeFormats, FormatName);

TYPED_TEST(QuantizeKernelTest, QuantizeMatchesCpuReferenceBytes) {
  using F = TypeParam;
  using T = quant::FormatTraits<F>;
  const std::vector<float> x = test_input();
  const auto n = std::int64_t(x.size());
  ASSERT_EQ(n % T::kBlockElems, 0);
  std::vector<std::uint8_t> want(std::size_t(n / T::kBlockElems) * T::kBlockBytes);
  quant::quantize_row<F>(x.data(), want.data(), n);

  // Every kernel variant the format has (both branches of the NF4 choice).
  std::vector<QuantKernel> variants = {QuantKernel::kAuto, QuantKernel::kThreadPerBlock};
  if constexpr (std::is_same_v<F, fmt::NF4>) variants.push_back(QuantKernel::kWarpPerBlock);
  for (QuantKernel k : variants) {
    std::vector<std::uint8_t> got(want.size());
    const Status st = run_on_device(x.data(), x.size() * sizeof(float), got.data(), got.size(),
                                    [&](void* d_in, void* d_out, Stream s) {
                                      return launch_quantize<F>(static_cast<const float*>(d_in), d_out, n, s, k);
                                    });
    ASSERT_TRUE(st.is_ok()) << kernel_name(k) << ": " << st.message();
    expect_same_blocks<F>(want, got, x, kernel_name(k));
  }

  // The runtime-typed entry point reaches the same kernel.
  if constexpr (T::kGgmlType != quant::kNoGgmlType) {
    std::vector<std::uint8_t> got(want.size());
    const Status st = run_on_device(x.data(), x.size() * sizeof(float), got.data(), got.size(),
                                    [&](void* d_in, void* d_out, Stream s) {
                                      return launch_quantize(T::kGgmlType, static_cast<const float*>(d_in), d_out, n, s);
                                    });
    ASSERT_TRUE(st.is_ok()) << st.message();
    expect_same_blocks<F>(want, got, x, "launch_quantize(ggml type id)");
  }
}

TYPED_TEST(QuantizeKernelTest, DequantizeMatchesCpuReferenceFloats) {
  using F = TypeParam;
  using T = quant::FormatTraits<F>;
  const std::vector<float> x = test_input();
  const auto n = std::int64_t(x.size());
  std::vector<std::uint8_t> blocks(std::size_t(n / T::kBlockElems) * T::kBlockBytes);
  quant::quantize_row<F>(x.data(), blocks.data(), n);
  std::vector<float> want(x.size());
  quant::dequantize_row<F>(blocks.data(), want.data(), n);

  std::vector<float> got(x.size());
  Status st = run_on_device(blocks.data(), blocks.size(), got.data(), got.size() * sizeof(float),
                            [&](void* d_in, void* d_out, Stream s) {
                              return launch_dequantize<F>(d_in, static_cast<float*>(d_out), n, s);
                            });
  ASSERT_TRUE(st.is_ok()) << st.message();
  expect_same_floats(want, got, "launch_dequantize<F>");

  if constexpr (T::kGgmlType != quant::kNoGgmlType) {
    std::vector<float> got_rt(x.size());
    st = run_on_device(blocks.data(), blocks.size(), got_rt.data(), got_rt.size() * sizeof(float),
                       [&](void* d_in, void* d_out, Stream s) {
                         return launch_dequantize(T::kGgmlType, d_in, static_cast<float*>(d_out), n, s);
                       });
    ASSERT_TRUE(st.is_ok()) << st.message();
    expect_same_floats(want, got_rt, "launch_dequantize(ggml type id)");
  }
}

// ---------------------------------------------------------------------------
// Decode-only checks
// ---------------------------------------------------------------------------

class DequantizeKernelTest : public GpuTest {};

/// Q4_1 has no quantizer: decode random blocks with finite fp16 d and m.
TEST_F(DequantizeKernelTest, Q4_1MatchesCpuReference) {
  using T = quant::FormatTraits<fmt::Q4_1>;
  std::mt19937 rng(7u);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<T::Block> blocks(4096);
  for (T::Block& b : blocks) {
    b.d = Half::from_float(std::fabs(normal(rng)));
    b.m = Half::from_float(normal(rng) * 8.0f);
    for (std::uint8_t& q : b.qs) q = std::uint8_t(byte(rng));
  }
  const auto n = std::int64_t(blocks.size()) * T::kBlockElems;
  std::vector<float> want(static_cast<std::size_t>(n)), got(static_cast<std::size_t>(n));
  quant::dequantize_row<fmt::Q4_1>(blocks.data(), want.data(), n);
  const Status st = run_on_device(blocks.data(), blocks.size() * sizeof(T::Block), got.data(), got.size() * sizeof(float),
                                  [&](void* d_in, void* d_out, Stream s) {
                                    return launch_dequantize(T::kGgmlType, d_in, static_cast<float*>(d_out), n, s);
                                  });
  ASSERT_TRUE(st.is_ok()) << st.message();
  expect_same_floats(want, got, "q4_1");
}

/// All 65,536 fp16 and bf16 bit patterns, NaNs included: the decoders are
/// integer-only, so even NaN payloads must match.
template <class F>
void check_all_16bit_patterns() {
  std::vector<std::uint16_t> bits(65536);
  for (std::size_t i = 0; i < bits.size(); ++i) bits[i] = std::uint16_t(i);
  const auto n = std::int64_t(bits.size());
  std::vector<float> want(bits.size()), got(bits.size());
  quant::dequantize_row<F>(bits.data(), want.data(), n);
  const Status st = run_on_device(bits.data(), bits.size() * 2, got.data(), got.size() * sizeof(float),
                                  [&](void* d_in, void* d_out, Stream s) {
                                    return launch_dequantize<F>(d_in, static_cast<float*>(d_out), n, s);
                                  });
  ASSERT_TRUE(st.is_ok()) << st.message();
  expect_same_floats(want, got, std::string(quant::FormatTraits<F>::kName) + " all patterns");
}
TEST_F(DequantizeKernelTest, F16AllBitPatterns) { check_all_16bit_patterns<fmt::F16>(); }
TEST_F(DequantizeKernelTest, BF16AllBitPatterns) { check_all_16bit_patterns<fmt::BF16>(); }

// ---------------------------------------------------------------------------
// Launcher argument checks: these fail before any CUDA call, so they run (and
// must pass) on machines without a GPU too. The pointers are never touched.
// ---------------------------------------------------------------------------

const float* fake_x() { return reinterpret_cast<const float*>(std::uintptr_t(4096)); }
void* fake_out() { return reinterpret_cast<void*>(std::uintptr_t(8192)); }

TEST(QuantLaunchArgs, RejectsPartialBlocks) {
  const Status st = launch_quantize<fmt::Q4_K>(fake_x(), fake_out(), 300);
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(st.message().find("not a multiple of the block (256)"), std::string::npos) << st.message();
  EXPECT_EQ(launch_dequantize<fmt::Q8_0>(fake_out(), const_cast<float*>(fake_x()), 33).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(launch_quantize(std::uint32_t(quant::GgmlType::Q5_0), fake_x(), fake_out(), 31).code(),
            ErrorCode::kInvalidArgument);
}

TEST(QuantLaunchArgs, RejectsNegativeNullAndMisaligned) {
  EXPECT_EQ(launch_quantize<fmt::Q8_0>(fake_x(), fake_out(), -32).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(launch_quantize<fmt::Q8_0>(nullptr, fake_out(), 32).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(launch_dequantize<fmt::NF4>(nullptr, const_cast<float*>(fake_x()), 64).code(), ErrorCode::kInvalidArgument);
  // Q8_K blocks hold a float, so they must be 4-byte aligned.
  void* odd = reinterpret_cast<void*>(std::uintptr_t(8194));
  const Status st = launch_quantize<fmt::Q8_K>(fake_x(), odd, 256);
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(st.message().find("aligned"), std::string::npos) << st.message();
}

TEST(QuantLaunchArgs, EmptyRowIsANoOp) {
  // n == 0 launches nothing, so it succeeds even without a device.
  EXPECT_TRUE(launch_quantize<fmt::Q6_K>(nullptr, nullptr, 0).is_ok());
  EXPECT_TRUE(launch_dequantize<fmt::Q4_1>(nullptr, nullptr, 0).is_ok());
}

TEST(QuantLaunchArgs, WarpKernelOnlyForNf4) {
  const Status st = launch_quantize<fmt::Q8_0>(fake_x(), fake_out(), 32, {}, QuantKernel::kWarpPerBlock);
  EXPECT_EQ(st.code(), ErrorCode::kUnsupported);
  EXPECT_NE(st.message().find("only nf4"), std::string::npos) << st.message();
}

TEST(QuantLaunchArgs, UnsupportedTypesListWhatIsBuilt) {
  // Q4_1 is decode-only; type 2 (Q4_0) is not a format we handle at all.
  Status st = launch_quantize(std::uint32_t(quant::GgmlType::Q4_1), fake_x(), fake_out(), 32);
  EXPECT_EQ(st.code(), ErrorCode::kUnsupported);
  EXPECT_NE(st.message().find("built: f32, f16, bf16, q8_0, q5_0, q4_K, q6_K, q8_K, nf4"), std::string::npos)
      << st.message();
  st = launch_dequantize(2u, fake_out(), const_cast<float*>(fake_x()), 32);
  EXPECT_EQ(st.code(), ErrorCode::kUnsupported);
  EXPECT_NE(st.message().find("q4_1"), std::string::npos) << st.message();
}

TEST(CudaCheck, StatusCarriesFileLineAndErrorName) {
  const Status ok = QLORA_CUDA_CHECK(cudaSuccess);
  EXPECT_TRUE(ok.is_ok());
  const Status st = QLORA_CUDA_CHECK(cudaErrorInvalidValue);
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(st.message().find("quant_kernels_test.cu:"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("cudaErrorInvalidValue"), std::string::npos) << st.message();
  EXPECT_EQ(QLORA_CUDA_CHECK(cudaErrorNoDevice).code(), ErrorCode::kUnsupported);
}

TEST(CudaCheck, DeviceCountIsZeroNotAnErrorWithoutADevice) {
  // No driver / no GPU must read as 0 devices, the same on every call (the
  // runtime keeps reporting an initialisation failure, so the answer must not
  // depend on the error state a previous probe left behind).
  const int n = device_count();
  EXPECT_GE(n, 0);
  EXPECT_EQ(device_count(), n);
}

}  // namespace
}  // namespace qlora::cuda
