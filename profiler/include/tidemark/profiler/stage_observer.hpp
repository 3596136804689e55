#pragma once
// What the runtime tells the profiler while it runs the stages of a chain. The runtime calls
// these only when an observer is installed (profiling or trace recording), so plain training
// pays nothing.
//
// Backward has no natural stage boundaries in autograd, so the runtime puts an identity
// autograd node on every stage output (mark_stage_output); its backward fires when the
// gradient of that output is complete, i.e. when the stage's backward begins. The stage's
// backward ends when the next such event, a recompute, or the end of backward arrives.
#include <functional>
#include <torch/torch.h>
#include <vector>

namespace tidemark::profiler {

class StageObserver {
 public:
  virtual ~StageObserver() = default;
  virtual void forward_begin(int stage, bool recompute, bool grad_mode) = 0;
  // output_bytes: bytes of the stage's output tensors that it allocated (not its inputs
  // passed through).
  virtual void forward_end(int stage, std::int64_t output_bytes) = 0;
  // The gradient of stage's output is complete (`grad`): its backward starts now.
  virtual void backward_begin(int stage, const torch::Tensor& grad) = 0;
  // A checkpoint's recompute starts (closes the open backward span) / ends.
  virtual void recompute_begin() = 0;
  virtual void recompute_end() = 0;
  // A stage's own backward recomputes part of its forward (selective recompute, e.g. the
  // attention core): a span inside the stage's open backward span, which stays open.
  virtual void partial_recompute_begin(int /*stage*/) {}
  virtual void partial_recompute_end(int /*stage*/) {}
  // Offload copied a stage's tensors to pinned host memory (to_host) or back, from t0_ns to
  // t1_ns on now_ns()'s clock (Phase::CopyOut / CopyIn in traces).
  virtual void copy(int /*stage*/, bool /*to_host*/, std::int64_t /*t0_ns*/, std::int64_t /*t1_ns*/) {}
};

// The process-wide observer, or nullptr. Set by the profiler for the duration of a run.
StageObserver* active_observer();
void set_active_observer(StageObserver* observer);

// Identity on `outputs` (those that carry gradients) whose backward runs `fn` once, with the
// first defined gradient, when the gradients of all of them are complete. Returns `outputs`
// unchanged when there is no graph to mark.
std::vector<torch::Tensor> call_on_backward(const std::vector<torch::Tensor>& outputs,
                                            std::function<void(const torch::Tensor& first_grad)> fn);

// Identity on a stage's outputs whose backward calls active_observer()->backward_begin(stage)
// once, when the gradients of all of them are complete. Returns `outputs` unchanged when
// there is no observer or no graph to mark.
std::vector<torch::Tensor> mark_stage_outputs(const std::vector<torch::Tensor>& outputs, int stage);

}  // namespace tidemark::profiler
