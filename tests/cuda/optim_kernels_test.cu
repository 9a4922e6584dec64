// tests/cuda/optim_kernels_test.cu — the CUDA AdamW step against the CPU
// optim::adamw_step, bit for bit.
//
// Both run optim::adamw_update (QLORA_HD, qlora/optim/adamw.hpp) with the same
// host-computed step scalars, and the CPU side is pinned to torch by
// tests/optim/adamw_test.cpp; so equal bits here carry the torch match over
// to the GPU. Every moment update x FMA rounding is run for several steps on
// an odd-length buffer (a partial last CTA) with gradients over ten binades,
// exact zeros and a changing learning rate.
//
// Without a usable device the GPU cases skip with the reason; the launcher's
// argument checks run everywhere, since they fail before any CUDA call.
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gpu_fixture.cuh"
#include "qlora/cuda/check.cuh"
#include "qlora/cuda/optim_launch.hpp"
#include "qlora/optim/adamw.hpp"

namespace qlora::cuda {
namespace {

using gpu_test::DeviceBuffer;
using gpu_test::GpuTest;
using gpu_test::StreamGuard;

TEST(AdamWLaunch, RejectsBadArgumentsBeforeTouchingTheDevice) {
  optim::AdamWStepScalars s;
  float* fake = reinterpret_cast<float*>(std::uintptr_t(256));  // never dereferenced: checks fail first
  EXPECT_EQ(launch_adamw_step(fake, fake, fake, fake, -1, s).code(), ErrorCode::kInvalidArgument);
  const Status null_m = launch_adamw_step(fake, fake, nullptr, fake, 10, s);
  EXPECT_EQ(null_m.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(null_m.message().find("exp_avg"), std::string::npos) << null_m.message();
  float* odd = reinterpret_cast<float*>(std::uintptr_t(258));
  EXPECT_NE(launch_adamw_step(fake, odd, fake, fake, 10, s).message().find("aligned"), std::string::npos);
  EXPECT_TRUE(launch_adamw_step(nullptr, nullptr, nullptr, nullptr, 0, s).is_ok());  // nothing to do
}

class AdamWKernelTest : public GpuTest {};

struct Host {
  std::vector<float> p, g;
};

Host random_host(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Host h{std::vector<float>(n), std::vector<float>(n)};
  for (std::size_t i = 0; i < n; ++i) {
    h.p[i] = 0.05f * normal(rng);
    h.g[i] = i % 17 == 0 ? 0.0f : std::pow(10.0f, -5.0f + float(i % 11) * 0.5f) * normal(rng);
  }
  return h;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b, std::string* where) {
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) {
      *where = "index " + std::to_string(i) + ": gpu " + std::to_string(a[i]) + " cpu " + std::to_string(b[i]);
      return false;
    }
  return true;
}

TEST_F(AdamWKernelTest, MatchesCpuStepBitForBit) {
  const std::size_t n = 100003;  // not a multiple of the CTA size
  const std::size_t bytes = n * sizeof(float);
  const double lrs[] = {0.0, 1e-3, 2e-4, 5e-2, 1e-3, 3e-4};  // a warmup-like start at 0, then varying
  for (auto moment : {optim::MomentUpdate::kLerp, optim::MomentUpdate::kMulAdd})
    for (auto fma : {optim::FmaRounding::kFused, optim::FmaRounding::kUnfused})
      for (double wd : {0.0, 0.1}) {
        SCOPED_TRACE("moment " + std::to_string(int(moment)) + " fma " + std::to_string(int(fma)) + " wd " +
                     std::to_string(wd));
        optim::AdamWHyperParams hp;
        hp.weight_decay = wd;
        hp.moment = moment;
        hp.fma = fma;
        Host h = random_host(n, 11);
        optim::AdamWState cpu = optim::AdamWState::zeros(n);
        std::vector<float> cpu_p = h.p;

        DeviceBuffer d_p, d_g, d_m, d_v;
        StreamGuard stream;
        ASSERT_TRUE(d_p.allocate(bytes).is_ok() && d_g.allocate(bytes).is_ok() && d_m.allocate(bytes).is_ok() &&
                    d_v.allocate(bytes).is_ok() && stream.create().is_ok());
        ASSERT_EQ(cudaMemcpy(d_p.get(), h.p.data(), bytes, cudaMemcpyHostToDevice), cudaSuccess);
        ASSERT_EQ(cudaMemcpy(d_g.get(), h.g.data(), bytes, cudaMemcpyHostToDevice), cudaSuccess);
        ASSERT_EQ(cudaMemset(d_m.get(), 0, bytes), cudaSuccess);
        ASSERT_EQ(cudaMemset(d_v.get(), 0, bytes), cudaSuccess);

        std::int64_t gpu_step = 0;
        for (double lr : lrs) {
          hp.lr = lr;
          ASSERT_TRUE(optim::adamw_step(cpu_p, h.g, cpu, hp).is_ok());
          auto s = optim::adamw_step_scalars(hp, ++gpu_step);
          ASSERT_TRUE(s.is_ok());
          const Status st = launch_adamw_step(static_cast<float*>(d_p.get()), static_cast<const float*>(d_g.get()),
                                              static_cast<float*>(d_m.get()), static_cast<float*>(d_v.get()),
                                              std::int64_t(n), *s, stream.opaque());
          ASSERT_TRUE(st.is_ok()) << st.message();
        }
        ASSERT_EQ(cudaStreamSynchronize(stream.get()), cudaSuccess);
        std::vector<float> p(n), m(n), v(n);
        ASSERT_EQ(cudaMemcpy(p.data(), d_p.get(), bytes, cudaMemcpyDeviceToHost), cudaSuccess);
        ASSERT_EQ(cudaMemcpy(m.data(), d_m.get(), bytes, cudaMemcpyDeviceToHost), cudaSuccess);
        ASSERT_EQ(cudaMemcpy(v.data(), d_v.get(), bytes, cudaMemcpyDeviceToHost), cudaSuccess);
        std::string where;
        EXPECT_TRUE(same_bits(p, cpu_p, &where)) << "params " << where;
        EXPECT_TRUE(same_bits(m, cpu.m, &where)) << "exp_avg " << where;
        EXPECT_TRUE(same_bits(v, cpu.v, &where)) << "exp_avg_sq " << where;
      }
}

}  // namespace
}  // namespace qlora::cuda
