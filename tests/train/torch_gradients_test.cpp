// The trainer's gradients against PyTorch: for each golden case written by
// tools/gen_lora_grad_golden.py (a GQA/tied llama with two sequences of
// different lengths, an MHA/biased qwen2), our loss and every adapter
// gradient, computed through an F32 base ("file" storage), equal the values
// torch computed for the same weights, inputs and mask.
#include "qlora/train/trainable_decoder.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "lora/grad_golden.hpp"

namespace {

using namespace qlora;

class TorchGradients : public ::testing::TestWithParam<std::string> {};

TEST_P(TorchGradients, LossAndEveryAdapterGradientMatch) {
  auto g = test::read_grad_golden(test::grad_golden_path(GetParam()));
  ASSERT_TRUE(g.is_ok()) << g.status().message();
  auto image = test::golden_gguf(*g, g->base);
  ASSERT_TRUE(image.is_ok());
  auto f = io::GgufFile::parse(*image, g->path + " (as GGUF)");
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  train::TrainableOptions o;
  o.storage = train::BaseStorage::kFileFormat;  // exact fp32 base, as torch holds it
  o.compute = cpu::Compute::kF32;                // and fp32 products, as torch computes
  auto dec = train::TrainableDecoder::open(*f, o);
  ASSERT_TRUE(dec.is_ok()) << dec.status().message();
  const lora::LoraAdapter ad = test::golden_adapter(*g);
  const lora::LoraAdapter want = test::golden_adapter(*g, /*grads=*/true);

  // The batch's loss is normalised by all its answer tokens (the trainer's rule).
  std::int64_t total = 0;
  for (const auto& m : g->loss_mask)
    for (auto b : m) total += b;
  ASSERT_GT(total, 0);
  std::vector<float> grads(ad.params().size(), 0.0f);
  double nll = 0;
  for (std::size_t s = 0; s < g->tokens.size(); ++s) {
    const std::vector<std::uint8_t> mask(g->loss_mask[s].begin(), g->loss_mask[s].end() - 1);  // t < T-1
    auto r = dec->forward_backward(g->tokens[s], mask, ad, grads, 1.0f / float(total));
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    nll += r->nll_sum;
  }
  EXPECT_NEAR(nll / double(total), double(g->loss), 1e-5 * std::fabs(g->loss_f64));

  // Per matrix: max |ours - torch| relative to max |torch|. fp32 against fp32
  // with different summation orders: the generator measured torch's own fp32
  // error against float64 (grad_rel_err_f32); we allow 20x that, floored at 1e-5.
  const double tol = std::max(1e-5, 20.0 * g->grad_rel_err_f32);  // measured: 1.4e-6
  double worst = 0;
  for (const auto& s : ad.slots()) {
    for (int which = 0; which < 2; ++which) {
      const std::size_t off = which == 0 ? s.a_off : s.b_off;
      const std::size_t n = std::size_t(which == 0 ? ad.rank() * s.in : s.out * ad.rank());
      double err = 0, range = 0;
      for (std::size_t i = 0; i < n; ++i) {
        err = std::max(err, double(std::fabs(grads[off + i] - want.params()[off + i])));
        range = std::max(range, double(std::fabs(want.params()[off + i])));
      }
      ASSERT_GT(range, 0.0);
      worst = std::max(worst, err / range);
      EXPECT_LT(err / range, tol) << lora::LoraAdapter::gguf_base(s) << (which ? " lora_B" : " lora_A");
    }
  }
  std::printf("[ torch grads %-9s ] loss %.7f vs %.7f, worst gradient rel. error %.2e (torch fp32 vs fp64: %.2e)\n",
              GetParam().c_str(), nll / double(total), double(g->loss), worst, g->grad_rel_err_f32);
}

INSTANTIATE_TEST_SUITE_P(Goldens, TorchGradients, ::testing::ValuesIn(test::grad_golden_cases()),
                         [](const auto& info) { return info.param; });

}  // namespace
