#include "tidemark/runtime/executor.hpp"

#include <fmt/format.h>

#include "tidemark/profiler/allocator_hook.hpp"
#include "tidemark/profiler/stage_observer.hpp"

namespace tidemark::runtime {
namespace {

void check_variants(const PlanNode& n, const ChainModule& chain, const std::string& source) {
  if (n.op == NodeOp::Save && !n.variant.empty() && n.variant != "full") {
    for (int k = n.begin; k < n.end; ++k) {
      auto vs = chain.stage_variants(k);
      if (std::find(vs.begin(), vs.end(), n.variant) == vs.end()) {
        throw UserError(fmt::format("{}: stage {} ({}) has no variant \"{}\" in this build", source,
                                    k, chain.stage_name(k), n.variant));
      }
    }
  }
  for (const auto& c : n.children) check_variants(c, chain, source);
}

}  // namespace

void check_plan_matches(const Plan& plan, const ChainModule& chain, const std::string& source) {
  if (plan.layers != chain.num_stages()) {
    throw UserError(fmt::format(
        "{}: the plan was made for a model with {} stages, this one has {}; profile this model "
        "and plan again (tidemark profile ... -o profile.json && tidemark plan profile.json ...)",
        source, plan.layers, chain.num_stages()));
  }
  if (!plan.digest.empty() && plan.digest != chain.digest()) {
    throw UserError(fmt::format(
        "{}: the plan was made for another model configuration (digest {}, this model {}); "
        "profile this configuration and plan again",
        source, plan.digest, chain.digest()));
  }
  validate_plan_tree(plan.root, chain.num_stages(), source);
  check_variants(plan.root, chain, source);
  if (plan.budget_bytes > 0 && plan.predicted.peak_bytes > plan.budget_bytes) {
    throw UserError(fmt::format(
        "{}: the plan's predicted peak {} bytes exceeds its budget {} bytes; it would break the "
        "budget by design (regenerate it with tidemark plan)",
        source, plan.predicted.peak_bytes, plan.budget_bytes));
  }
}

PlanExecutor::PlanExecutor(ChainModule& chain, PlanNode root, CheckpointOptions options)
    : chain_(chain), root_(std::move(root)), options_(std::move(options)) {
  options_.validate();
  validate_plan_tree(root_, chain_.num_stages(), "plan");
}

torch::Tensor PlanExecutor::forward(const torch::Tensor& input, const StageContext& ctx) {
  return run_list(flatten_sequence(root_), input, ctx);
}

std::vector<torch::Tensor> PlanExecutor::parameters_of(int begin, int end) {
  std::vector<torch::Tensor> params;
  for (int k = begin; k < end; ++k) {
    auto p = chain_.stage_parameters(k);
    params.insert(params.end(), p.begin(), p.end());
  }
  return params;
}

torch::Tensor PlanExecutor::run_stage(int k, const torch::Tensor& a, const StageContext& ctx,
                                      const std::string& variant) {
  profiler::StageObserver* obs = profiler::active_observer();
  if (!obs) return chain_.run_stage(k, a, ctx, variant);
  const bool recompute = in_recompute();
  const bool grad = torch::GradMode::is_enabled();
  obs->forward_begin(k, recompute, grad);
  torch::Tensor out = chain_.run_stage(k, a, ctx, variant);
  obs->forward_end(k, profiler::allocated_size(static_cast<std::int64_t>(out.nbytes()), out.is_cuda()));
  return profiler::mark_stage_output(out, k);
}

torch::Tensor PlanExecutor::run_list(const NodeList& nodes, torch::Tensor a, const StageContext& ctx) {
  for (const PlanNode* node : nodes) {
    if (node->op == NodeOp::Save) {
      for (int k = node->begin; k < node->end; ++k) a = run_stage(k, a, ctx, node->variant);
      continue;
    }
    // Checkpoint: the closure owns what it needs; the recompute happens during backward.
    NodeList inner;
    for (const auto& child : node->children) {
      for (const PlanNode* p : flatten_sequence(child)) inner.push_back(p);
    }
    auto fn = [this, inner, ctx](const torch::Tensor& x) {
      profiler::StageObserver* obs = profiler::active_observer();
      const bool recompute = in_recompute() && torch::GradMode::is_enabled();
      if (obs && recompute) obs->recompute_begin();
      torch::Tensor out = run_list(inner, x, ctx);
      if (obs && recompute) obs->recompute_end();
      return out;
    };
    a = checkpoint(fn, a, parameters_of(node->begin, node->end), options_);
  }
  return a;
}

PlanNode plan_no_checkpoint(int stages) {
  return PlanNode::sequence(0, stages, {PlanNode::save(0, stages)});
}

PlanNode plan_uniform(const ChainModule& chain) {
  const int n = chain.num_stages();
  bool any_block = false;
  for (int k = 0; k < n; ++k) any_block = any_block || chain.stage_kind(k) == "block";
  std::vector<PlanNode> parts;
  for (int k = 0; k < n; ++k) {
    if (!any_block || chain.stage_kind(k) == "block") {
      parts.push_back(PlanNode::checkpoint(k, k + 1, {PlanNode::save(k, k + 1)}));
    } else {
      parts.push_back(PlanNode::save(k, k + 1));
    }
  }
  return PlanNode::sequence(0, n, std::move(parts));
}

}  // namespace tidemark::runtime
