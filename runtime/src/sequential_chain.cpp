#include "tidemark/runtime/sequential_chain.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "tidemark/core/error.hpp"
#include "tidemark/core/model_config.hpp"

namespace tidemark::runtime {

SequentialChain::SequentialChain(torch::nn::Sequential modules, LossFn loss, std::string name)
    : modules_(std::move(modules)), loss_(std::move(loss)), name_(std::move(name)) {
  if (modules_->size() == 0) throw UserError("SequentialChain needs at least one module");
}

int SequentialChain::num_stages() const {
  return static_cast<int>(modules_->size()) + (loss_ ? 1 : 0);
}

std::string SequentialChain::stage_name(int k) const {
  if (loss_ && k == num_stages() - 1) return "loss";
  return fmt::format("{}.{}", modules_->named_children()[k].key(), k);
}

std::string SequentialChain::stage_kind(int k) const {
  return loss_ && k == num_stages() - 1 ? "loss" : "block";
}

torch::Tensor SequentialChain::run_stage(int k, const torch::Tensor& input, const StageContext& ctx,
                                         const std::string& variant) {
  TORCH_CHECK(variant.empty() || variant == "full", name_, " stage ", stage_name(k),
              " has no variant '", variant, "'");
  if (loss_ && k == num_stages() - 1) return loss_(input, ctx.targets);
  return (modules_->begin() + k)->forward(input);
}

std::vector<torch::Tensor> SequentialChain::stage_parameters(int k) {
  if (loss_ && k == num_stages() - 1) return {};
  return modules_->ptr(static_cast<size_t>(k))->parameters();
}

std::string SequentialChain::digest() const {
  std::string shape = name_;
  for (const auto& child : modules_->named_children()) {
    shape += ";" + child.key() + ":" + child.value()->name();
    for (const auto& p : child.value()->parameters()) {
      shape += fmt::format("[{}]", fmt::join(p.sizes(), "x"));
    }
  }
  if (loss_) shape += ";loss";
  return fnv1a_hex(shape);
}

CheckpointedChain::CheckpointedChain(ChainModule& chain) : chain_(chain) {}

void CheckpointedChain::gradient_checkpointing_enable(const CheckpointOptions& options) {
  options.validate();
  executor_ = std::make_unique<PlanExecutor>(chain_, plan_uniform(chain_), options);
}

void CheckpointedChain::gradient_checkpointing_disable() { executor_.reset(); }

void CheckpointedChain::use_plan(const Plan& plan, const std::string& source,
                                 const CheckpointOptions& options) {
  check_plan_matches(plan, chain_, source);
  executor_ = std::make_unique<PlanExecutor>(chain_, plan.root, options);
}

torch::Tensor CheckpointedChain::forward(const torch::Tensor& input, const torch::Tensor& targets) {
  const StageContext ctx{targets};
  if (executor_) return executor_->forward(input, ctx);
  torch::Tensor a = input;
  for (int k = 0; k < chain_.num_stages(); ++k) a = chain_.run_stage(k, a, ctx, "");
  return a;
}

}  // namespace tidemark::runtime
