#pragma once
// The pieces of a transformer block (gpt's and llama's), each runnable in any variant of
// Note [block variants] (tidemark/runtime/block_variants.hpp). Private to the runtime: the
// blocks in gpt.cpp use them.
#include <array>
#include <functional>

#include <torch/torch.h>

#include "rng_state.hpp"
#include "tidemark/runtime/block_variants.hpp"

namespace tidemark::runtime::block_ops {

// Whether autograd records a graph through an op on `inputs`: only then does an autograd
// Function that keeps less pay; otherwise the plain ops run.
inline bool records_graph(std::initializer_list<at::Tensor> inputs) {
  if (!torch::GradMode::is_enabled()) return false;
  for (const auto& t : inputs) {
    if (t.defined() && t.requires_grad()) return true;
  }
  return false;
}

// Causal attention of q, k, v ([B, H, T, D], q already scaled) with dropout p on the
// probabilities; returns [B, H, T, D]. `causal` is [T, T] bool, true where masked. `stage`
// labels the recompute spans a trace shows (-1: none).
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& causal, double p, bool train,
                        BlockVariant::Attention mode, int stage);

// Note [chunked attention]
// Causal attention that never holds a B·H·T² tensor, for LibTorch without a fused kernel
// (1.13): the queries go in blocks of kAttentionBlock; a block's scores, softmax, dropout
// noise and P·V live only while that block is computed, so the transient peak is
// O(B·H·T·kAttentionBlock). An autograd Function keeps q, k, v and the output, and its
// backward rebuilds each block's probabilities (softmax of the same matmul, bit for bit)
// and its dropout noise (the generator's state before the forward's first draw is kept and
// restored for the replay, then the current state is put back). The softmax backward needs
// rowsum(dP∘P) per query, which equals rowsum(dO∘O): computed once from the kept output.
// The output is returned as [B, T, H, D] so that merging the heads is a view of it: what the
// Function keeps of it is what the out-projection keeps anyway. Saved bytes: the naive
// block's count without its T² terms, plus the generator states with dropout (Note [saved
// bytes of a block], gpt.hpp).
constexpr std::int64_t kAttentionBlock = 128;

// Causal attention of q ([B, H, T, D], already scaled), k and v ([B, KV, T, D], KV dividing
// H: grouped-query attention without repeating k and v, so they are kept at KV heads) with
// dropout p, returning [B, T, H, D] (contiguous).
torch::Tensor chunked_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                const torch::Tensor& causal, double p, bool train);

// What chunked attention's backward replays: the causal mask, the dropout rate and the
// generators' state before the forward's first draw (taken by chunked_forward).
struct ChunkedReplay {
  RngSnapshot rng;
  at::Tensor causal;
  double p = 0;
  bool dropout = false;
};

// Chunked attention's forward and backward, for an autograd Function that keeps q, k, v and
// the output itself (ChunkedAttention) or rebuilds q, k, v for the backward (attention-qkv).
at::Tensor chunked_forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, ChunkedReplay& r);
std::array<at::Tensor, 3> chunked_backward(const at::Tensor& grad_out, const at::Tensor& q, const at::Tensor& k,
                                           const at::Tensor& v, const at::Tensor& out, const ChunkedReplay& r);

// [B, KV, T, D] -> [B, KV·group, T, D], each key/value head serving `group` query heads in a
// row (HF's repeat_kv): a copy, which a kernel that takes k and v at every head keeps.
torch::Tensor repeat_heads(const torch::Tensor& x, std::int64_t group);

// Causal at::scaled_dot_product_attention of q ([B, H, T, D], already scaled) and k, v
// ([B, KV, T, D], KV dividing H) with dropout p, returning [B, H, T, D]. Where LibTorch's CPU
// flash kernel runs (the CPU without dropout, LibTorch 2.3 on) and KV < H, an autograd
// Function keeps k and v at KV heads and repeats them for each kernel call: the kernel takes
// them at H heads only (LibTorch 2.6's read NaN past a grouped k), and sdpa's own
// enable_gqa runs the math path on the CPU, which keeps the T² probabilities. Elsewhere k and
// v are repeated first and the kernel keeps the repeated copies.
torch::Tensor sdpa_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double p,
                             bool train);

// Heads [B, H, T, D] merged to [B, T, H·D]: a view where the heads are [B, T, H, D] in
// memory, else a copy.
torch::Tensor merge_heads(const torch::Tensor& heads);

// The attention's out-projection: linear(w, b) of the heads ([B, H, T, D]) merged to
// [B, T, H·D]. A kernel that keeps its own output for backward (sdpa's) and returns it
// head-major would otherwise be kept twice: once by the kernel, once as linear's merged
// copy. This keeps the heads themselves and merges them again in backward, a copy that costs
// little beside the matmuls (Note [saved bytes of a block]).
torch::Tensor merged_heads_linear(const torch::Tensor& heads, const torch::Tensor& w, const torch::Tensor& b);

// The norm in front of each half of a block: LayerNorm (gpt) or RMSNorm (llama: no bias).
struct NormWeights {
  torch::Tensor weight, bias;  // bias undefined for RMSNorm
  bool rms = false;
  double eps = 1e-5;
};

// The norm's output as the plain block computes it. RMSNorm is an autograd Function that
// keeps its input and 1/rms per row, as fused RMSNorm kernels do (composite ops would also
// keep the normalised input before the weight).
torch::Tensor norm(const torch::Tensor& x, const NormWeights& n);

// linear(norm(x), w, b). With Norm::Recompute the norm output is not kept: backward rebuilds
// it from x and the norm's statistics (Note [block variants]).
torch::Tensor norm_linear(const torch::Tensor& x, const NormWeights& n, const torch::Tensor& w,
                          const torch::Tensor& b, BlockVariant::Norm mode, int stage);

// The qkv projection's output [B, T, ·] split into the q, k, v the attention kernel takes
// ([B, heads, T, D], q scaled): the block's own heads, rotation and grouping.
using QkvSplit = std::function<std::array<torch::Tensor, 3>(const torch::Tensor& qkv)>;

// The heads of attention-qkv (Note [block variants]): `kind`'s attention ("chunked", or
// "sdpa" on the CPU without dropout) of split(linear(norm(x), w, b)), keeping neither q, k, v
// nor (with Norm::Recompute; else x is the norm output) the norm output: backward rebuilds
// them. Returns what the plain kernel returns: chunked [B, T, H, D], sdpa [B, H, T, D].
torch::Tensor qkv_attention(const std::string& kind, const torch::Tensor& x, const NormWeights& n,
                            BlockVariant::Norm norm_mode, const torch::Tensor& w, const torch::Tensor& b,
                            const QkvSplit& split, const torch::Tensor& causal, double p, bool train, int stage);

// The MLP's activation: gpt's GELU, or llama's SwiGLU silu(gate)·up on the two halves
// [gate, up] of the first projection's output.
enum class Activation : std::int64_t { Gelu, SwiGLU };
torch::Tensor activation(const torch::Tensor& h, Activation act);

// second(act(first(norm(x)))): the MLP half of a block, before its residual dropout.
torch::Tensor mlp(const torch::Tensor& x, const NormWeights& n, torch::nn::Linear& first,
                  torch::nn::Linear& second, Activation act, const BlockVariant& variant, int stage);

}  // namespace tidemark::runtime::block_ops
