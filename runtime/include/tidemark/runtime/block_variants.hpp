#pragma once
// Selective recompute inside a transformer block: ways to run a block in save mode that keep
// fewer tensors for backward and recompute the rest there, cheapest first.
//
// Note [block variants]
// Of what a block saves (Note [saved bytes of a block], gpt.hpp), three groups are large and
// cheap to rebuild. A variant names one choice per group, joined by '+' in this order:
// "attention-core+norm+mlp-activation".
//  attention
//   - attention-dropout: the dropped-out probabilities (4·B·H·T²) are rebuilt in backward
//     from the softmax output and the dropout mask, which are kept anyway: one elementwise
//     multiply. Only with dropout on.
//   - attention-core: q, k, v and the dropout mask are kept; backward rebuilds the scores,
//     softmax and dropped-out probabilities (one matmul, q·kᵀ, plus elementwise work). The
//     P·V matmul of the forward is not redone, as a checkpoint of the core would. Frees
//     8·B·H·T² (4·B·H·T² without dropout); the 1-byte mask stays so no random numbers are
//     drawn again.
//     (These two are naive attention's only: chunked and sdpa keep no T² tensor to begin with.)
//   - attention-qkv: q, k and v, which chunked and fused attention keep (12·B·T·C, less
//     with grouped-query heads, kept at KV heads), are rebuilt in backward from the qkv
//     projection's input: one matmul of C·(C + 2·KV·D) a token, the rotation and copies; the
//     kernel's own backward then runs on them. Chunked attention, and sdpa on the CPU without
//     dropout (LibTorch's flash kernel, whose backward op can be called directly).
//  norm
//   - norm: the outputs of the block's two norms (LayerNorm for gpt, RMSNorm for llama),
//     which the projections after them keep (4·B·T·C each), are rebuilt in backward from
//     the norm's input and statistics, which the norm keeps anyway: elementwise work. With
//     attention-qkv or mlp-core, the Function that rebuilds the rest rebuilds the norm
//     output first.
//  mlp (F = the MLP's hidden width, ModelConfig::mlp_hidden())
//   - mlp-activation: the activation is rebuilt from the first projection's output, which
//     is kept: gpt's GELU output (4·B·T·F), or llama's SiLU output and SwiGLU product
//     silu(gate)·up (8·B·T·F) from the gate and up projections.
//   - mlp-core: only the MLP input (the norm output) is kept; backward redoes the first
//     projection (gpt's fc, llama's gate and up) and the activation. Frees 8·B·T·F (gpt)
//     or 16·B·T·F (llama).
//   Both MLP variants rebuild and consume their wide tensors a range of tokens at a time
//   (about N·C/width tokens, so a range's rebuilt first-projection output is the size of
//   the MLP input): the MLP is token-wise, and rebuilt whole, the rebuilt tensors and their
//   gradients sat on top of the step's peak at once (on the llama bench model mlp-core then
//   held more at its backward's height than the plain block; now a third less).
// Rotary embeddings get no variant of their own: the rotation keeps nothing for backward
// (its tables are buffers) and the rotated q and k replace q and k one for one in what
// attention keeps, so rebuilding them from q and k would free nothing.
// Gradients equal the plain block's: the backward applies the same ATen kernels autograd
// would to bitwise-identical recomputed tensors (attention-qkv rebuilds q, k, v as a graph of
// the plain ops and lets autograd run through it). The MLP's ranges sum the weight gradients
// range by range, in float, so those equal the plain block's to rounding (within 1e-6
// relative, tested), not bit for bit.
#include <optional>
#include <string>
#include <vector>

#include "tidemark/core/model_config.hpp"

namespace tidemark::runtime {

// Whether a block of `model` runs sdpa as LibTorch's CPU flash kernel called by tidemark's
// own autograd Functions (sdpa on the CPU without dropout, LibTorch 2.3 on): its backward can
// then be called on rebuilt q, k, v (attention-qkv), and grouped-query k and v are kept at
// their KV heads (block_ops::sdpa_attention).
bool runs_cpu_flash(const ModelConfig& model);

struct BlockVariant {
  enum class Attention { Full, Dropout, Core, Qkv };
  enum class Norm { Full, Recompute };
  enum class Mlp { Full, Activation, Core };
  Attention attention = Attention::Full;
  Norm norm = Norm::Full;
  Mlp mlp = Mlp::Full;

  bool is_full() const { return attention == Attention::Full && norm == Norm::Full && mlp == Mlp::Full; }
  // "" for the full block, else e.g. "attention-core+norm+mlp-activation".
  std::string name() const;
  // Accepts "", "full", and the names name() gives; nullopt for anything else.
  static std::optional<BlockVariant> parse(const std::string& name);
  // Whether a block of `model` has this attention choice: attention-dropout and
  // attention-core with naive attention (the first with dropout on), attention-qkv with
  // chunked attention or sdpa on the CPU without dropout.
  static bool has(const ModelConfig& model, Attention a);
  // Every variant other than full that a block of `model` has, in a fixed order.
  static std::vector<BlockVariant> all(const ModelConfig& model);
};

}  // namespace tidemark::runtime
