#pragma once
// A GPT-style decoder: token + position embeddings, N pre-norm blocks (causal multi-head
// attention, GELU MLP, dropout), final LayerNorm, LM head, cross-entropy.
//
// Note [saved bytes of a block]
// What autograd keeps for one block's backward, in fp32, for batch B, sequence T, width C,
// H heads, dropout on (bool masks are 1 byte), not counting the block's input and output:
//   ln1: mean, rstd                      8·B·T
//   ln1 output (qkv input)               4·B·T·C
//   q (scaled), k, v, contiguous         12·B·T·C
//   softmax output                       4·B·H·T²
//   attention dropout mask (bool)        1·B·H·T²
//   dropped probabilities (PV input)     4·B·H·T²
//   merged heads (out-projection input)  4·B·T·C
//   attention residual dropout mask      1·B·T·C
//   x1 = x + attn (ln2 input)            4·B·T·C
//   ln2: mean, rstd                      8·B·T
//   ln2 output (fc input)                4·B·T·C
//   fc output (GELU input)               16·B·T·C
//   GELU output (projection input)       16·B·T·C
//   MLP residual dropout mask            1·B·T·C
//   total                                62·B·T·C + 9·B·H·T² + 16·B·T
// Without dropout the masks go and the PV input is the softmax output itself:
//   60·B·T·C + 4·B·H·T² + 16·B·T. analytic_block_saved_bytes() computes this; the profiler's
// accuracy test compares it with what it measures.
#include <cstdint>
#include <torch/torch.h>
#include <torch/version.h>

#include "tidemark/core/model_config.hpp"
#include "tidemark/runtime/block_variants.hpp"
#include "tidemark/runtime/chain.hpp"
#include "tidemark/runtime/gradient_checkpointing.hpp"

// at::scaled_dot_product_attention with its `scale` argument (--attention sdpa).
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
#define TIDEMARK_HAVE_SDPA 1
#else
#define TIDEMARK_HAVE_SDPA 0
#endif

namespace tidemark::runtime {

// With a variant: what it keeps instead (Note [block variants]).
std::uint64_t analytic_block_saved_bytes(const ModelConfig& c, const BlockVariant& variant = {});

// Dropout that keeps a 1-byte mask for backward (at::native_dropout) instead of the float
// noise tensor the CPU at::dropout keeps.
torch::Tensor mask_dropout(const torch::Tensor& x, double p, bool train);

class BlockImpl : public torch::nn::Module, public GradientCheckpointingLayer {
 public:
  BlockImpl(const ModelConfig& c, torch::Tensor causal_mask);
  // HF-style: checkpointed when gradient checkpointing is enabled and in training mode.
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor forward_plain(const torch::Tensor& x);
  // In save mode with `variant` (Note [block variants]); `stage` labels the trace's partial
  // recompute spans (-1: none).
  torch::Tensor forward_variant(const torch::Tensor& x, const BlockVariant& variant, int stage);

  torch::nn::LayerNorm ln1{nullptr}, ln2{nullptr};
  torch::nn::Linear qkv{nullptr}, attn_out{nullptr}, fc{nullptr}, fc_out{nullptr};

 private:
  std::int64_t heads_;
  double dropout_;
  std::string attention_;  // ModelConfig::attention
  torch::Tensor mask_;  // [T, T] bool, true above the diagonal; shared by all blocks
};
TORCH_MODULE(Block);

class GPTImpl : public torch::nn::Module, public CheckpointableModel, public ChainModule {
 public:
  explicit GPTImpl(const ModelConfig& c);

  // Mean cross-entropy of predicting targets from idx ([B, T] int64 each).
  torch::Tensor forward(const torch::Tensor& idx, const torch::Tensor& targets);

  const ModelConfig& config() const { return config_; }
  std::int64_t parameter_count();

  // CheckpointableModel
  bool supports_gradient_checkpointing() const override { return true; }

  // ChainModule: stage 0 embedding, 1..L blocks, L+1 head (returns the loss).
  int num_stages() const override;
  std::string stage_name(int k) const override;
  std::string stage_kind(int k) const override;
  std::vector<std::string> stage_variants(int k) const override;
  torch::Tensor run_stage(int k, const torch::Tensor& input, const StageContext& ctx,
                          const std::string& variant) override;
  std::vector<torch::Tensor> stage_parameters(int k) override;
  std::string digest() const override { return config_.digest(); }

  torch::nn::Embedding tok_emb{nullptr}, pos_emb{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm ln_f{nullptr};
  torch::nn::Linear lm_head{nullptr};

 protected:
  torch::nn::Module& checkpointable_module() override { return *this; }
  std::string model_name() const override { return "GPT"; }

 private:
  bool is_block(int k) const;  // stage k is a transformer block (not embedding or head)
  torch::Tensor embed(const torch::Tensor& idx);
  torch::Tensor head_loss(const torch::Tensor& x, const torch::Tensor& targets);

  ModelConfig config_;
  torch::Tensor positions_;  // [T] int64 buffer
  torch::Tensor mask_;
};
TORCH_MODULE(GPT);

}  // namespace tidemark::runtime
