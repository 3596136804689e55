#pragma once
// The configuration of tidemark's own model (a GPT-2- or LLaMA-style decoder), shared by
// profile, plan, train and reports. Lives in core because profiles and plans carry it and the
// planner must not depend on the runtime.
#include <cstdint>
#include <string>

namespace tidemark {

struct ModelConfig {
  // The block: "gpt" (LayerNorm, learned positions, GELU MLP, biases) or "llama" (RMSNorm,
  // rotary q/k, grouped-query attention, SwiGLU MLP, no biases).
  std::string arch = "gpt";
  std::int64_t layers = 8;     // transformer blocks
  std::int64_t d_model = 256;
  std::int64_t heads = 8;
  std::int64_t kv_heads = 0;   // llama: key/value heads (grouped-query attention); 0 = heads
  std::int64_t seq = 256;      // sequence length (and the position-embedding size)
  std::int64_t batch = 8;
  std::int64_t vocab = 256;    // byte-level by default
  double dropout = 0.1;
  std::uint64_t seed = 1234;
  std::string dtype = "float32";  // or "bfloat16" (CPU autocast)
  std::string device = "cpu";     // or "cuda"
  // How a block computes attention: "naive" (scores and probabilities as B·H·T² tensors),
  // "chunked" (query blocks, nothing T² kept: Note [chunked attention]) or "sdpa"
  // (at::scaled_dot_product_attention, LibTorch >= 2.1).
  std::string attention = "naive";

  // Throws UserError with the offending flag named (--heads must divide --d-model, ...).
  void validate() const;

  // Stable digest of everything that changes memory or the stage chain (not the seed).
  // Plans and saved states carry it so they are refused on another model.
  std::string digest() const;

  // Key/value heads: kv_heads, or heads when it is 0.
  std::int64_t key_value_heads() const { return kv_heads > 0 ? kv_heads : heads; }
  // Width of the MLP's hidden layer: 4·d_model for gpt; for llama 8/3·d_model rounded up to
  // a multiple of 256, as LLaMA sizes its SwiGLU.
  std::int64_t mlp_hidden() const;

  // Chain stages: embedding, one per block, head (final norm + LM head + loss).
  std::int64_t stages() const { return layers + 2; }

  std::string describe() const;  // "8 layers, d_model 256, 8 heads, seq 256, batch 8, ..."
};

// FNV-1a 64-bit of `text`, as 16 hex digits.
std::string fnv1a_hex(const std::string& text);

}  // namespace tidemark
