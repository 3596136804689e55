#include "tidemark/profiler/stage_observer.hpp"

#include <atomic>

namespace tidemark::profiler {
namespace {

std::atomic<StageObserver*> g_observer{nullptr};

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct StageBoundary : public torch::autograd::Function<StageBoundary> {
  // A TensorList, not a std::vector: autograd sees only the former as tensor inputs.
  static variable_list forward(AutogradContext* ctx, at::TensorList xs, int64_t stage) {
    ctx->saved_data["stage"] = stage;
    ctx->set_materialize_grads(false);
    // Returning the inputs themselves makes autograd hand back views: no copy, no memory.
    return xs.vec();
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    if (StageObserver* o = g_observer.load(std::memory_order_acquire)) {
      at::Tensor first;
      for (const auto& g : grads) {
        if (g.defined()) {
          first = g;
          break;
        }
      }
      o->backward_begin(static_cast<int>(ctx->saved_data["stage"].toInt()), first);
    }
    grads.emplace_back();  // for `stage`
    return grads;
  }
};

}  // namespace

StageObserver* active_observer() { return g_observer.load(std::memory_order_acquire); }

void set_active_observer(StageObserver* observer) {
  g_observer.store(observer, std::memory_order_release);
}

std::vector<torch::Tensor> mark_stage_outputs(const std::vector<torch::Tensor>& outputs, int stage) {
  if (!active_observer() || !torch::GradMode::is_enabled()) return outputs;
  // Only the outputs that carry gradients pass through the marker: one node for all of
  // them, so the stage's backward begins when the last of their gradients is complete.
  std::vector<torch::Tensor> marked;
  std::vector<std::size_t> where;
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    if (outputs[i].defined() && outputs[i].requires_grad()) {
      marked.push_back(outputs[i]);
      where.push_back(i);
    }
  }
  if (marked.empty()) return outputs;
  marked = StageBoundary::apply(at::TensorList(marked), static_cast<int64_t>(stage));
  std::vector<torch::Tensor> out = outputs;
  for (std::size_t i = 0; i < where.size(); ++i) out[where[i]] = marked[i];
  return out;
}

}  // namespace tidemark::profiler
