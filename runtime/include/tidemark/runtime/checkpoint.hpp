#pragma once
// Gradient checkpointing for LibTorch: run a segment forward without keeping what autograd
// would save, and recompute it in backward. The C++ counterpart of
// torch.utils.checkpoint.checkpoint (which is Python-only; pytorch/pytorch#52744).
//
// Note [checkpoint contract]
//  - `fn` must be a pure function of its input and of `params` (plus tensors that do not
//    require grad, such as masks or targets, which it may capture). Tensors that require
//    grad and are not passed as `input` or `params` get no gradient.
//  - Parameter gradients are right even when `input` does not require grad (the first
//    block's input never does): the parameters are inputs of the autograd node.
//  - With preserve_rng_state (default), the CPU (and CUDA, for CUDA inputs) generator state
//    is saved before the forward and restored for the recompute, so dropout masks match.
//  - Autocast state (CPU bfloat16 and CUDA) of the forward is restored for the recompute.
//  - The recompute is a nested (reentrant) autograd call; checkpoints may nest.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <torch/torch.h>
#include <vector>

#include "tidemark/core/error.hpp"

namespace tidemark::runtime {

// An option the caller asked for that LibTorch cannot honour. Refused, never ignored.
class UnsupportedOption : public UserError {
 public:
  using UserError::UserError;
};

// The options of Hugging Face's gradient_checkpointing_kwargs, as far as C++ can honour them.
struct CheckpointOptions {
  bool preserve_rng_state = true;
  // tidemark's checkpoint recomputes through a nested autograd call, i.e. the reentrant
  // variant, minus its limits (it gives parameter gradients without any input requiring
  // grad). use_reentrant=false is PyTorch's saved-tensor-hooks variant, which LibTorch's C++
  // API does not expose: refused.
  bool use_reentrant = true;
  // "default": the recompute must produce an output of the forward's shape and dtype, or
  // backward throws (catches non-deterministic control flow); "none": no check.
  std::string determinism_check = "default";
  bool debug = false;  // PyTorch's op-by-op recompute log: not available in C++, refused.

  // Throws UnsupportedOption naming the option and why.
  void validate() const;
  // From "key=value" pairs, as HF's gradient_checkpointing_kwargs. Unknown keys and values
  // that cannot be parsed throw UnsupportedOption.
  static CheckpointOptions from_kwargs(const std::map<std::string, std::string>& kwargs);
};

using SegmentFn = std::function<torch::Tensor(const torch::Tensor&)>;

// Runs `fn(input)` checkpointed. Outside autograd (no grad mode, or nothing requires grad)
// this is just fn(input).
torch::Tensor checkpoint(SegmentFn fn, const torch::Tensor& input,
                         const std::vector<torch::Tensor>& params,
                         const CheckpointOptions& options = {});

// Checkpoint a module's forward: params are module->parameters().
template <typename ModuleHolder>
torch::Tensor checkpoint_module(ModuleHolder module, const torch::Tensor& input,
                                const CheckpointOptions& options = {}) {
  return checkpoint([module](const torch::Tensor& x) mutable { return module->forward(x); }, input,
                    module->parameters(), options);
}

// Bytes of `device` memory a checkpoint keeps from its forward to its backward besides its
// input: the random generator states it saves (0 without preserve_rng_state, and 0 on CUDA,
// where the states are host tensors). The planner counts them (checkpoint_state_bytes).
std::uint64_t checkpoint_state_bytes(const torch::Device& device, const CheckpointOptions& options = {});

// Process-wide count of segment recomputes (checkpoint backward calls). For tests and
// reports: eval mode and disabled checkpointing must leave it unchanged.
std::uint64_t recompute_count();

// True while the calling thread runs a checkpoint's recompute (the profiler labels stage
// spans "recompute" then).
bool in_recompute();

}  // namespace tidemark::runtime
