#pragma once
// tidemark's own model: a decoder of N pre-norm blocks between an embedding and an LM head
// with cross-entropy. ModelConfig::arch picks the block:
//   gpt    GPT-2: learned positions, LayerNorm, causal multi-head attention, GELU MLP (4·d),
//          biases.
//   llama  LLaMA: RMSNorm, rotary embeddings on q and k, grouped-query attention
//          (--kv-heads), SwiGLU MLP (hidden 8/3·d rounded up to 256), no biases, untied head.
// Both with dropout on the embedding, the attention probabilities and the two residual
// branches (--dropout; 0 turns it off, as LLaMA trains).
//
// Note [saved bytes of a block]
// What autograd keeps for one block's backward, in fp32, for batch B, sequence T, width C,
// H heads, MLP width F (ModelConfig::mlp_hidden()), dropout on (bool masks are 1 byte), not
// counting the block's input and output:
//   first norm: gpt mean, rstd 8·B·T; llama rstd    4·B·T or 8·B·T
//   first norm output (qkv input)                   4·B·T·C
//   q (scaled, rotated for llama), k, v, contiguous 12·B·T·C
//     (llama with fewer kv heads: naive attention takes k and v repeated to H heads, as
//     HF's repeat_kv does, and keeps the repeated ones, so the count does not depend on KV;
//     chunked attention, and sdpa where the CPU's flash kernel runs (runs_cpu_flash()),
//     keep k and v at KV heads: 8·B·T·C·(1 - KV/H) less)
//   softmax output                                  4·B·H·T²
//   attention dropout mask (bool)                   1·B·H·T²
//   dropped probabilities (PV input)                4·B·H·T²
//   merged heads (out-projection input)             4·B·T·C
//   attention residual dropout mask                 1·B·T·C
//   x1 = x + attn (second norm's input)             4·B·T·C
//   second norm statistics                          8·B·T or 4·B·T
//   second norm output (MLP input)                  4·B·T·C
//   gpt: fc output (GELU input), GELU output        8·B·T·F
//   llama: gate and up outputs, SiLU output,
//          SwiGLU product (down-projection input)   16·B·T·F
//   MLP residual dropout mask                       1·B·T·C
//   total  30·B·T·C + 9·B·H·T² + (8 or 16)·B·T·F + (16 or 8)·B·T
// (gpt: F = 4·C, so 62·B·T·C + 9·B·H·T² + 16·B·T.) Without dropout the masks go and the PV
// input is the softmax output itself: 28·B·T·C + 4·B·H·T² + the same F and B·T terms.
// Chunked and sdpa attention change the T² terms (analytic_block_saved_bytes()).
// analytic_block_saved_bytes() computes this; the profiler's accuracy test compares it with
// what it measures.
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

// The attention kind a model gets when --attention is not given: the fastest this build has
// for it, and of equally fast ones the one that keeps least. sdpa on CUDA (fused kernels,
// with or without dropout) and on the CPU without dropout (LibTorch's flash kernel); else
// chunked from sequence kChunkedFrom on, where it measured no slower than naive, and naive
// below. (The CPU's sdpa with dropout runs its math path, which keeps the T² probabilities.)
constexpr std::int64_t kChunkedFrom = 1024;
std::string best_attention(const ModelConfig& c);

// With a variant: what it keeps instead (Note [block variants]).
std::uint64_t analytic_block_saved_bytes(const ModelConfig& c, const BlockVariant& variant = {});

// Dropout that keeps a 1-byte mask for backward (at::native_dropout) instead of the float
// noise tensor the CPU at::dropout keeps.
torch::Tensor mask_dropout(const torch::Tensor& x, double p, bool train);

// A transformer block of either arch, runnable plain or in any of its variants.
class DecoderBlock : public GradientCheckpointingLayer {
 public:
  // HF-style: checkpointed when gradient checkpointing is enabled and in training mode.
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
  // In save mode with `variant` (Note [block variants]); `stage` labels the trace's partial
  // recompute spans (-1: none).
  virtual torch::Tensor forward_variant(const torch::Tensor& x, const BlockVariant& variant, int stage) = 0;
};

// RMSNorm (llama): x / rms(x) · weight, no bias.
class RMSNormImpl : public torch::nn::Module {
 public:
  explicit RMSNormImpl(std::int64_t dim, double eps = 1e-5);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;
  double eps;
};
TORCH_MODULE(RMSNorm);

// The gpt block.
class BlockImpl : public torch::nn::Module, public DecoderBlock {
 public:
  BlockImpl(const ModelConfig& c, torch::Tensor causal_mask);
  torch::Tensor forward(const torch::Tensor& x) override;
  torch::Tensor forward_variant(const torch::Tensor& x, const BlockVariant& variant, int stage) override;

  torch::nn::LayerNorm ln1{nullptr}, ln2{nullptr};
  torch::nn::Linear qkv{nullptr}, attn_out{nullptr}, fc{nullptr}, fc_out{nullptr};

 private:
  std::int64_t heads_;
  double dropout_;
  std::string attention_;  // ModelConfig::attention
  torch::Tensor mask_;  // [T, T] bool, true above the diagonal; shared by all blocks
};
TORCH_MODULE(Block);

// The llama block.
class LlamaBlockImpl : public torch::nn::Module, public DecoderBlock {
 public:
  // `cos` and `sin` are the rotary tables, [T, head size], shared by all blocks.
  LlamaBlockImpl(const ModelConfig& c, torch::Tensor causal_mask, torch::Tensor cos, torch::Tensor sin);
  torch::Tensor forward(const torch::Tensor& x) override;
  torch::Tensor forward_variant(const torch::Tensor& x, const BlockVariant& variant, int stage) override;

  RMSNorm attn_norm{nullptr}, mlp_norm{nullptr};
  // qkv: C -> C + 2·kv_heads·head size; gate_up: C -> 2·F ([gate, up]); no biases.
  torch::nn::Linear qkv{nullptr}, attn_out{nullptr}, gate_up{nullptr}, down{nullptr};

 private:
  std::int64_t heads_, kv_heads_;
  double dropout_;
  std::string attention_;
  torch::Tensor mask_, cos_, sin_;
};
TORCH_MODULE(LlamaBlock);

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
  Activations run_stage(int k, const Activations& inputs, const StageContext& ctx,
                        const std::string& variant) override;
  std::vector<torch::Tensor> stage_parameters(int k) override;
  std::string digest() const override { return config_.digest(); }

  torch::nn::Embedding tok_emb{nullptr}, pos_emb{nullptr};  // pos_emb: gpt only
  torch::nn::ModuleList blocks{nullptr};                    // Block or LlamaBlock
  torch::nn::LayerNorm ln_f{nullptr};                       // gpt
  RMSNorm norm_f{nullptr};                                  // llama
  torch::nn::Linear lm_head{nullptr};

  DecoderBlock& block(std::int64_t i);

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
  torch::Tensor cos_, sin_;  // llama: rotary tables [T, head size]
};
TORCH_MODULE(GPT);

}  // namespace tidemark::runtime
