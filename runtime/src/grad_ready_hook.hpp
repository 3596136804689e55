#pragma once
// A hook that runs after a parameter's AccumulateGrad: its gradient for this backward is
// complete. Data parallel and ZeRO collect gradients through it; both hold their state
// weakly in `on_ready`, so a hook outliving its owner does nothing.
#include <functional>
#include <memory>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/torch.h>
#include <utility>

namespace tidemark::runtime {

class GradReadyHook : public torch::autograd::FunctionPostHook {
 public:
  explicit GradReadyHook(std::function<void()> on_ready) : on_ready_(std::move(on_ready)) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list& /*inputs*/) override {
    on_ready_();
    return outputs;
  }

  // Adds a hook to `param`'s AccumulateGrad and returns that node, which the caller keeps
  // alive across steps (autograd holds it only weakly between backwards).
  static std::shared_ptr<torch::autograd::Node> attach(const torch::Tensor& param, std::function<void()> on_ready) {
    auto acc = torch::autograd::impl::grad_accumulator(param);
    acc->add_post_hook(std::make_unique<GradReadyHook>(std::move(on_ready)));
    return acc;
  }

 private:
  std::function<void()> on_ready_;
};

}  // namespace tidemark::runtime
