#pragma once
// Your own model as a tidemark chain: a list of modules run one after another (each stage
// maps one tensor to one tensor), optionally followed by a loss stage. With it a LibTorch
// user gets what the GPT gets: Hugging Face-style checkpointing of every module, or any
// tidemark.plan/1 made by profiling and planning the chain (samples/custom_loop).
//
//   auto net = torch::nn::Sequential(...);
//   tidemark::runtime::SequentialChain chain(net, mse_loss);
//   tidemark::runtime::CheckpointedChain model(chain);
//   model.gradient_checkpointing_enable();     // or model.use_plan(read_plan("plan.json"))
//   auto loss = model.forward(x, y);           // in your own training loop
//   loss.backward();
#include <functional>
#include <memory>
#include <string>
#include <torch/torch.h>
#include <vector>

#include "tidemark/core/plan.hpp"
#include "tidemark/runtime/chain.hpp"
#include "tidemark/runtime/executor.hpp"

namespace tidemark::runtime {

// loss(output, targets) -> scalar
using LossFn = std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>;

class SequentialChain : public ChainModule {
 public:
  // One stage per module of `modules`, in order; with `loss`, one more stage ("loss") that
  // applies it to the last output and StageContext::targets.
  explicit SequentialChain(torch::nn::Sequential modules, LossFn loss = nullptr,
                           std::string name = "sequential");

  int num_stages() const override;
  std::string stage_name(int k) const override;
  std::string stage_kind(int k) const override;  // "block" for modules, "loss" for the loss
  torch::Tensor run_stage(int k, const torch::Tensor& input, const StageContext& ctx,
                          const std::string& variant) override;
  std::vector<torch::Tensor> stage_parameters(int k) override;
  // From the modules' names and parameter shapes: a plan for another network is refused.
  std::string digest() const override;

  torch::nn::Sequential& modules() { return modules_; }
  const std::string& name() const { return name_; }

 private:
  torch::nn::Sequential modules_;
  LossFn loss_;
  std::string name_;
};

// A chain with checkpointing switched on, for a training loop you write yourself.
class CheckpointedChain {
 public:
  explicit CheckpointedChain(ChainModule& chain);

  // Every stage of kind "block" its own checkpoint, as Hugging Face's
  // gradient_checkpointing_enable(). Throws UnsupportedOption like the GPT does.
  void gradient_checkpointing_enable(const CheckpointOptions& options = {});
  void gradient_checkpointing_disable();
  // Runs the chain as `plan` says. Throws UserError when the plan was made for another
  // chain (stage count, digest) or breaks its budget by design.
  void use_plan(const Plan& plan, const std::string& source = "plan",
                const CheckpointOptions& options = {});

  // The last stage's output: the loss when the chain ends with one.
  torch::Tensor forward(const torch::Tensor& input, const torch::Tensor& targets = {});

 private:
  ChainModule& chain_;
  std::unique_ptr<PlanExecutor> executor_;
};

}  // namespace tidemark::runtime
