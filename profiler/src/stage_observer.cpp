#include "tidemark/profiler/stage_observer.hpp"

#include <atomic>

namespace tidemark::profiler {
namespace {

std::atomic<StageObserver*> g_observer{nullptr};

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct StageBoundary : public torch::autograd::Function<StageBoundary> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, int64_t stage) {
    ctx->saved_data["stage"] = stage;
    // Returning the input itself makes autograd hand back a view: no copy, no memory.
    return x;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    if (StageObserver* o = g_observer.load(std::memory_order_acquire)) {
      o->backward_begin(static_cast<int>(ctx->saved_data["stage"].toInt()), grads.at(0));
    }
    return {grads.at(0), at::Tensor()};
  }
};

}  // namespace

StageObserver* active_observer() { return g_observer.load(std::memory_order_acquire); }

void set_active_observer(StageObserver* observer) {
  g_observer.store(observer, std::memory_order_release);
}

torch::Tensor mark_stage_output(const torch::Tensor& output, int stage) {
  if (!active_observer() || !torch::GradMode::is_enabled() || !output.requires_grad()) return output;
  return StageBoundary::apply(output, static_cast<int64_t>(stage));
}

}  // namespace tidemark::profiler
