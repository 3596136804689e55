#pragma once
// The two halves of a transformer block, each runnable in any variant of Note [block
// variants] (tidemark/runtime/block_variants.hpp). Private to the runtime: BlockImpl uses them.
#include <torch/torch.h>

#include "tidemark/runtime/block_variants.hpp"

namespace tidemark::runtime::block_ops {

// Causal attention of q, k, v ([B, H, T, D], q already scaled) with dropout p on the
// probabilities; returns [B, H, T, D]. `causal` is [T, T] bool, true where masked. `stage`
// labels the recompute spans a trace shows (-1: none).
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& causal, double p, bool train,
                        BlockVariant::Attention mode, int stage);

// fc_out(gelu(fc(u))).
torch::Tensor mlp(const torch::Tensor& u, torch::nn::Linear& fc, torch::nn::Linear& fc_out,
                  BlockVariant::Mlp mode, int stage);

}  // namespace tidemark::runtime::block_ops
