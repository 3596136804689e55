#include "tidemark/profiler/stage_observer.hpp"

#include <atomic>

namespace tidemark::profiler {
namespace {

std::atomic<StageObserver*> g_observer{nullptr};

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// What runs when the gradients through a BackwardCallback node are complete.
struct Callback : torch::CustomClassHolder {
  std::function<void(const at::Tensor&)> fn;
};

struct BackwardCallback : public torch::autograd::Function<BackwardCallback> {
  // A TensorList, not a std::vector: autograd sees only the former as tensor inputs.
  static variable_list forward(AutogradContext* ctx, at::TensorList xs, c10::intrusive_ptr<Callback> callback) {
    ctx->saved_data["callback"] = c10::IValue::make_capsule(std::move(callback));
    ctx->set_materialize_grads(false);
    // Returning the inputs themselves makes autograd hand back views: no copy, no memory.
    return xs.vec();
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    at::Tensor first;
    for (const auto& g : grads) {
      if (g.defined()) {
        first = g;
        break;
      }
    }
    auto callback = c10::static_intrusive_pointer_cast<Callback>(ctx->saved_data["callback"].toCapsule());
    callback->fn(first);
    grads.emplace_back();  // for `callback`
    return grads;
  }
};

}  // namespace

StageObserver* active_observer() { return g_observer.load(std::memory_order_acquire); }

void set_active_observer(StageObserver* observer) {
  g_observer.store(observer, std::memory_order_release);
}

std::vector<torch::Tensor> call_on_backward(const std::vector<torch::Tensor>& outputs,
                                            std::function<void(const torch::Tensor& first_grad)> fn) {
  if (!torch::GradMode::is_enabled()) return outputs;
  // Only the outputs that carry gradients pass through: one node for all of them, so `fn`
  // runs when the last of their gradients is complete.
  std::vector<torch::Tensor> marked;
  std::vector<std::size_t> where;
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    if (outputs[i].defined() && outputs[i].requires_grad()) {
      marked.push_back(outputs[i]);
      where.push_back(i);
    }
  }
  if (marked.empty()) return outputs;
  auto callback = c10::make_intrusive<Callback>();
  callback->fn = std::move(fn);
  marked = BackwardCallback::apply(at::TensorList(marked), callback);
  std::vector<torch::Tensor> out = outputs;
  for (std::size_t i = 0; i < where.size(); ++i) out[where[i]] = marked[i];
  return out;
}

std::vector<torch::Tensor> mark_stage_outputs(const std::vector<torch::Tensor>& outputs, int stage) {
  if (!active_observer()) return outputs;
  return call_on_backward(outputs, [stage](const torch::Tensor& grad) {
    if (StageObserver* o = g_observer.load(std::memory_order_acquire)) o->backward_begin(stage, grad);
  });
}

}  // namespace tidemark::profiler
