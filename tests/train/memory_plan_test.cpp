// Tests for qlora/train/memory_plan.hpp: parameter counts equal the published
// ones (PEFT reports 41,943,040 trainable parameters for r=16 on all seven
// projections of a Llama-3 8B), the byte arithmetic of each item, and that
// checkpointing is what brings an 8B model under a 16 GB card.
#include "qlora/train/memory_plan.hpp"

#include <gtest/gtest.h>

namespace {

using namespace qlora;

TEST(MemoryPlan, Llama3_8bCountsAndBytes) {
  train::MemoryPlanInput in;
  in.model = model::presets::swallow_8b();
  const train::MemoryPlan p = train::plan_memory(in);
  EXPECT_EQ(p.lora_params, 41943040);            // PEFT's print_trainable_parameters for Llama-3-8B, r=16
  EXPECT_EQ(p.frozen_params, 8030261248);        // Llama-3-8B's published parameter count
  EXPECT_EQ(p.projection_params, 6979321856);    // 32 x (4096·(4096 + 2·1024 + 4096) + 3·4096·14336)
  EXPECT_NEAR(p.items[0].bytes, 6979321856.0 * (0.5 + 1.0 / 64 + 4.0 / 16384), 1.0);
  EXPECT_NEAR(p.items[3].bytes + p.items[4].bytes, 41943040.0 * 16, 1.0);  // fp32 params, grads, 2 moments
  EXPECT_GT(p.total(), 16e9);                    // without checkpointing: too big for the paper's card
  in.gradient_checkpointing = true;
  EXPECT_LT(train::plan_memory(in).total(), 16e9);
  in.lora.rank = 32;
  EXPECT_EQ(train::plan_memory(in).lora_params, 2 * 41943040);
}

TEST(MemoryPlan, ActivationsScaleWithTokensAndType) {
  train::MemoryPlanInput in;
  in.model = model::presets::smollm2_135m();
  in.batch = 1;
  in.seq_len = 256;
  const double a1 = train::plan_memory(in).items[5].bytes;
  in.batch = 2;
  EXPECT_DOUBLE_EQ(train::plan_memory(in).items[5].bytes, 2 * a1);
  in.activation_bytes = 4;
  EXPECT_DOUBLE_EQ(train::plan_memory(in).items[5].bytes, 4 * a1);
}

}  // namespace
