#include "tidemark/runtime/executor.hpp"

#include <atomic>
#include <fmt/format.h>

#include "offload_set.hpp"
#include "tidemark/profiler/allocator_hook.hpp"
#include "tidemark/profiler/stage_observer.hpp"
#include "tidemark/runtime/offload.hpp"

namespace tidemark::runtime {
namespace {

std::atomic<ParameterGather*> g_gather{nullptr};

void check_variants(const PlanNode& n, const ChainModule& chain, const std::string& source) {
  if (n.op == NodeOp::Save && !n.variant.empty() && n.variant != "full") {
    for (int k = n.begin; k < n.end; ++k) {
      auto vs = chain.stage_variants(k);
      if (std::find(vs.begin(), vs.end(), n.variant) == vs.end()) {
        throw PlanMismatch(fmt::format("{}: stage {} ({}) has no variant \"{}\" in this build", source,
                                    k, chain.stage_name(k), n.variant));
      }
    }
  }
  for (const auto& c : n.children) check_variants(c, chain, source);
}

}  // namespace

void check_plan_matches(const Plan& plan, const ChainModule& chain, const std::string& source) {
  // tidemark's GPT is profiled by the CLI; a user's chain only through the C++ API.
  const std::string again = plan.model == "gpt"
                                ? "profile this model and plan again (tidemark profile ... -o profile.json && "
                                  "tidemark plan profile.json ...)"
                                : "profile this chain (tidemark::Session::profile) and plan again (tidemark::plan)";
  if (plan.stages != chain.num_stages()) {
    throw PlanMismatch(fmt::format("{}: the plan was made for a {} model with {} stages, this one has {}; {}", source,
                                plan.model, plan.stages, chain.num_stages(), again));
  }
  if (!plan.digest.empty() && plan.digest != chain.digest()) {
    throw PlanMismatch(fmt::format(
        "{}: the plan was made for another model configuration (model {}, digest {}; this model {}); {}",
        source, plan.model, plan.digest, chain.digest(), again));
  }
  validate_plan_tree(plan.root, chain.num_stages(), source);
  check_variants(plan.root, chain, source);
  if (plan.budget_bytes > 0 && plan.predicted.peak_bytes > plan.budget_bytes) {
    throw PlanMismatch(fmt::format(
        "{}: the plan's predicted peak {} bytes exceeds its budget {} bytes; it would break the "
        "budget by design (regenerate it with tidemark plan)",
        source, plan.predicted.peak_bytes, plan.budget_bytes));
  }
}

PlanExecutor::PlanExecutor(ChainModule& chain, PlanNode root, CheckpointOptions options)
    : chain_(chain), root_(std::move(root)), options_(std::move(options)) {
  options_.validate();
  validate_plan_tree(root_, chain_.num_stages(), "plan");
  if (offloads(root_)) {
    for (int k = 0; k < chain_.num_stages(); ++k) {
      const auto params = chain_.stage_parameters(k);
      if (params.empty()) continue;
      check_offload(params.front().device(), 0, fmt::format("the plan ({})", describe(root_)));
      break;
    }
  }
}

Activations PlanExecutor::forward(const Activations& inputs, const StageContext& ctx) {
  ctx.check();
  return run_list(flatten_sequence(root_), inputs, ctx);
}

std::vector<torch::Tensor> PlanExecutor::parameters_of(int begin, int end) {
  std::vector<torch::Tensor> params;
  for (int k = begin; k < end; ++k) {
    auto p = chain_.stage_parameters(k);
    params.insert(params.end(), p.begin(), p.end());
  }
  return params;
}

ParameterGather* parameter_gather() { return g_gather.load(std::memory_order_acquire); }

void set_parameter_gather(ParameterGather* gather) { g_gather.store(gather, std::memory_order_release); }

Activations PlanExecutor::run_stage(int k, const Activations& a, const StageContext& ctx,
                                    const std::string& variant) {
  profiler::StageObserver* obs = profiler::active_observer();
  ParameterGather* gather = parameter_gather();
  // The gather runs inside the stage's observed span, so a profile counts its buffer and time.
  if (obs) obs->forward_begin(k, in_recompute(), torch::GradMode::is_enabled());
  if (gather) gather->before_forward(k);
  Activations out = chain_.run_stage(k, a, ctx, variant);
  if (gather) out = gather->after_forward(k, std::move(out));
  if (!obs) return out;
  obs->forward_end(k, profiler::allocated_bytes(out, a));  // inputs passed through are not new
  // Outside the gather's node: the stage's backward span begins before the gather.
  return profiler::mark_stage_outputs(out, k);
}

Activations PlanExecutor::run_offloaded_stage(int k, const Activations& a, const StageContext& ctx,
                                              const std::string& variant) {
  // Note [offload runtime]: the stage's saved tensors go to the host once its forward is
  // done (its inputs are still held here, so they stay), and come back when its backward
  // begins.
  auto set = std::make_shared<detail::OffloadSet>(k);
  Activations out;
  {
    detail::OffloadScope scope(set);
    out = run_stage(k, a, ctx, variant);
  }
  set->offload();
  // The graph keeps this node until the step ends; the set must go with the stage's last
  // saved tensor (the hooks own it), so the node only watches it.
  std::weak_ptr<detail::OffloadSet> watched = set;
  return profiler::call_on_backward(out, [watched](const torch::Tensor&) {
    if (auto s = watched.lock()) s->prefetch();
  });
}

Activations PlanExecutor::run_list(const NodeList& nodes, Activations a, const StageContext& ctx) {
  for (const PlanNode* node : nodes) {
    if (node->op == NodeOp::Save) {
      for (int k = node->begin; k < node->end; ++k) {
        if (node->offload && torch::GradMode::is_enabled()) {
          a = run_offloaded_stage(k, a, ctx, node->variant);
        } else {
          a = run_stage(k, a, ctx, node->variant);
        }
      }
      continue;
    }
    // Checkpoint: the closure owns what it needs; the recompute happens during backward.
    NodeList inner;
    for (const auto& child : node->children) {
      for (const PlanNode* p : flatten_sequence(child)) inner.push_back(p);
    }
    auto fn = [this, inner, ctx](const Activations& x) {
      profiler::StageObserver* obs = profiler::active_observer();
      const bool recompute = in_recompute() && torch::GradMode::is_enabled();
      if (obs && recompute) obs->recompute_begin();
      Activations out = run_list(inner, x, ctx);
      if (obs && recompute) obs->recompute_end();
      return out;
    };
    CheckpointOptions options = options_;
    options.offload = options.offload || node->offload;
    detail::CopyStage copy_stage(node->begin);
    a = checkpoint_segment(fn, a, parameters_of(node->begin, node->end), options);
  }
  return a;
}

namespace {

void mark_actions(const PlanNode& n, std::vector<TraceStage>& stages, bool inside_checkpoint) {
  for (int k = n.begin; k < n.end && k < static_cast<int>(stages.size()); ++k) {
    if (n.op == NodeOp::Checkpoint) stages[k].action = "checkpoint";
    if (n.op == NodeOp::Save && !inside_checkpoint) stages[k].action = n.variant.empty() ? "save" : n.variant;
  }
  for (const auto& c : n.children) mark_actions(c, stages, inside_checkpoint || n.op == NodeOp::Checkpoint);
}

}  // namespace

void mark_stage_actions(const PlanNode& root, std::vector<TraceStage>& stages) { mark_actions(root, stages, false); }

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
