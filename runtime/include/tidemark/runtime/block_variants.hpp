#pragma once
// Selective recompute inside a transformer block: ways to run a block in save mode that keep
// fewer tensors for backward and recompute the rest there, cheapest first.
//
// Note [block variants]
// Of what a block saves (Note [saved bytes of a block], gpt.hpp), two groups are large and
// cheap to rebuild:
//  attention (9·B·H·T² bytes with dropout on, 4·B·H·T² without)
//   - attention-dropout: the dropped-out probabilities (4·B·H·T²) are rebuilt in backward
//     from the softmax output and the dropout mask, which are kept anyway: one elementwise
//     multiply. Only with dropout on.
//   - attention-core: q, k, v and the dropout mask are kept; backward rebuilds the scores,
//     softmax and dropped-out probabilities (one matmul, q·kᵀ, plus elementwise work). The
//     P·V matmul of the forward is not redone, as a checkpoint of the core would. Frees
//     8·B·H·T² (4·B·H·T² without dropout); the 1-byte mask stays so no random numbers are
//     drawn again.
//  mlp
//   - mlp-activation: the GELU output (16·B·T·C) is rebuilt from the GELU input, which is
//     kept: one elementwise GELU.
//   - mlp-core: only the MLP input (ln2 output) is kept; backward redoes the fc matmul and
//     the GELU. Frees 32·B·T·C.
// A variant names one choice per group, joined by '+': "attention-core+mlp-activation".
// Gradients equal the plain block's: the backward applies the same ATen kernels autograd
// would, in the same order, to bitwise-identical recomputed tensors.
#include <optional>
#include <string>
#include <vector>

namespace tidemark::runtime {

struct BlockVariant {
  enum class Attention { Full, Dropout, Core };
  enum class Mlp { Full, Activation, Core };
  Attention attention = Attention::Full;
  Mlp mlp = Mlp::Full;

  bool is_full() const { return attention == Attention::Full && mlp == Mlp::Full; }
  // "" for the full block, else e.g. "attention-core+mlp-activation".
  std::string name() const;
  // Accepts "", "full", and the names name() gives; nullopt for anything else.
  static std::optional<BlockVariant> parse(const std::string& name);
  // Every variant other than full that differs from it for this configuration
  // (attention-dropout only when dropout is on), in a fixed order.
  static std::vector<BlockVariant> all(bool dropout);
};

}  // namespace tidemark::runtime
