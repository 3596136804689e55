#pragma once
// Gradient checkpointing for LibTorch: run a segment forward without keeping what autograd
// would save, and recompute it in backward. The C++ counterpart of
// torch.utils.checkpoint.checkpoint (which is Python-only; pytorch/pytorch#52744).
//
// Note [checkpoint contract]
//  - `fn` is a function of its inputs and of `params`. It may capture tensors that do not
//    require grad (masks, targets, tables). A tensor that requires grad and is neither an
//    input nor a parameter would get no gradient: the backward refuses it (c10::Error from
//    backward(), naming its shape), never cuts it off silently.
//  - Any number of inputs and outputs, as torch.utils.checkpoint: inputs that require grad
//    get gradients; inputs that do not (integer ids, masks) are kept and passed as they are;
//    outputs of a type that cannot require grad are returned without gradient.
//  - Parameter gradients are right even when no input requires grad (the first block's
//    input never does): the parameters are inputs of the autograd node.
//  - With preserve_rng_state (default), the CPU (and CUDA, for CUDA inputs) generator state
//    is saved before the forward and restored for the recompute, so dropout masks match.
//  - Autocast state (CPU bfloat16 and CUDA) of the forward is restored for the recompute.
//  - The recompute is a nested (reentrant) autograd call; checkpoints may nest.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <torch/torch.h>
#include <tuple>
#include <type_traits>
#include <vector>

#include "tidemark/core/error.hpp"
#include "tidemark/runtime/chain.hpp"

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
  // Hugging Face's offload=true: the inputs that require grad wait for the backward in pinned
  // host memory instead of on the device (Note [offload runtime], offload.hpp). CUDA only:
  // refused on the CPU when the checkpoint runs.
  bool offload = false;

  // Throws UnsupportedOption naming the option and why.
  void validate() const;
  // From "key=value" pairs, as HF's gradient_checkpointing_kwargs. Unknown keys and values
  // that cannot be parsed throw UnsupportedOption.
  static CheckpointOptions from_kwargs(const std::map<std::string, std::string>& kwargs);
};

// Runs `fn(inputs)` checkpointed: keeps `inputs`, recomputes in backward. Outside autograd
// (no grad mode, or nothing requires grad) this is just fn(inputs). The form the executor
// uses; the variadic checkpoint() below is the one to call by hand.
using SegmentFn = std::function<Activations(const Activations&)>;
Activations checkpoint_segment(SegmentFn fn, const Activations& inputs,
                               const std::vector<torch::Tensor>& params,
                               const CheckpointOptions& options = {});

namespace detail {
template <typename T>
struct is_tensor_tuple : std::false_type {};
template <typename... Ts>
struct is_tensor_tuple<std::tuple<Ts...>> : std::conjunction<std::is_same<Ts, torch::Tensor>...> {};
template <typename T>
inline constexpr bool is_module_holder_v = std::is_base_of_v<torch::detail::ModuleHolderIndicator, T>;

// fn's result as Activations, and back.
template <typename R>
Activations to_activations(R r) {
  if constexpr (std::is_same_v<R, torch::Tensor>) {
    return {std::move(r)};
  } else if constexpr (std::is_same_v<R, Activations>) {
    return r;
  } else {
    static_assert(is_tensor_tuple<R>::value, "a checkpointed function must return a Tensor, a std::tuple of Tensors or a std::vector<Tensor>");
    return std::apply([](auto&&... t) { return Activations{t...}; }, std::move(r));
  }
}
template <typename R, std::size_t... I>
R tuple_from(Activations& a, std::index_sequence<I...>) {
  return R{std::move(a.at(I))...};
}
template <typename R>
R from_activations(Activations a) {
  if constexpr (std::is_same_v<R, torch::Tensor>) {
    return std::move(a.at(0));
  } else if constexpr (std::is_same_v<R, Activations>) {
    return a;
  } else {
    return tuple_from<R>(a, std::make_index_sequence<std::tuple_size_v<R>>{});
  }
}
template <typename R, typename Call, std::size_t... I>
Activations call_with(Call& call, const Activations& a, std::index_sequence<I...>) {
  return to_activations<R>(call(a.at(I)...));
}
}  // namespace detail

// checkpoint(fn, inputs...), as torch.utils.checkpoint.checkpoint(fn, *inputs): fn takes the
// inputs (tensors) and returns a Tensor, a std::tuple of Tensors or a std::vector<Tensor>.
// `fn` may be a module (checkpoint(block, x, mask)): its parameters get their gradients.
// A plain function must not capture tensors that require grad (Note [checkpoint contract]);
// pass them as inputs, or pass the module they belong to.
template <typename Fn, typename... Ts,
          typename = std::enable_if_t<sizeof...(Ts) >= 1 && (std::is_same_v<std::decay_t<Ts>, torch::Tensor> && ...)>>
auto checkpoint(const CheckpointOptions& options, Fn fn, const Ts&... inputs) {
  std::vector<torch::Tensor> params;
  if constexpr (detail::is_module_holder_v<Fn>) params = fn->parameters();
  auto call = [fn](const Ts&... xs) mutable {
    if constexpr (detail::is_module_holder_v<Fn>) {
      return fn->forward(xs...);
    } else {
      return fn(xs...);
    }
  };
  using R = std::decay_t<decltype(call(inputs...))>;
  SegmentFn segment = [call](const Activations& a) mutable {
    return detail::call_with<R>(call, a, std::index_sequence_for<Ts...>{});
  };
  return detail::from_activations<R>(checkpoint_segment(std::move(segment), Activations{inputs...}, params, options));
}
template <typename Fn, typename... Ts,
          typename = std::enable_if_t<!std::is_same_v<std::decay_t<Fn>, CheckpointOptions> && sizeof...(Ts) >= 1 &&
                                      (std::is_same_v<std::decay_t<Ts>, torch::Tensor> && ...)>>
auto checkpoint(Fn fn, const Ts&... inputs) {
  return checkpoint(CheckpointOptions{}, std::move(fn), inputs...);
}

namespace detail {
torch::Tensor checkpoint_one(std::function<torch::Tensor(const torch::Tensor&)> fn, const torch::Tensor& input,
                             const std::vector<torch::Tensor>& params, const CheckpointOptions& options);
}

// One tensor in and out, with the parameters given: what the GPT's blocks use. (A template
// so that a module, which the variadic form takes, is never tried as a std::function.)
template <typename Fn, typename = std::enable_if_t<std::conjunction_v<
                           std::negation<std::is_base_of<torch::detail::ModuleHolderIndicator, std::decay_t<Fn>>>,
                           std::is_invocable_r<torch::Tensor, Fn&, const torch::Tensor&>>>>
torch::Tensor checkpoint(Fn fn, const torch::Tensor& input, const std::vector<torch::Tensor>& params,
                         const CheckpointOptions& options = {}) {
  return detail::checkpoint_one(std::move(fn), input, params, options);
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
