#pragma once
// Runs a tidemark.plan/1 tree on a chain (DESIGN.md, execution model): save ranges run
// normally, checkpoint ranges keep only their input and recompute in backward following
// their inner plan, nested checkpoints recursively; offloaded nodes keep what they keep in
// host memory (Note [offload runtime], offload.hpp; refused where the device cannot). Exactly the semantics the planner's
// simulator assumes (planner/simulator.hpp, Note [execution model]).
#include <string>
#include <torch/torch.h>
#include <vector>

#include "tidemark/core/plan.hpp"
#include "tidemark/core/trace.hpp"
#include "tidemark/runtime/chain.hpp"
#include "tidemark/runtime/checkpoint.hpp"

namespace tidemark::runtime {

// A plan made for another model or chain, or one that breaks its own budget.
class PlanMismatch : public UserError {
 public:
  using UserError::UserError;
};

// Refuses (PlanMismatch, naming `source` and the plan's model) a plan made for another
// chain: stage count, digest, unknown variants, budget below the plan's own predicted peak.
void check_plan_matches(const Plan& plan, const ChainModule& chain, const std::string& source);

// Where stage parameters come from when a rank does not keep them whole (ZeRO-3: Note [ZeRO]
// in zero.hpp). The executor calls it around every stage's forward, recomputes included.
class ParameterGather {
 public:
  virtual ~ParameterGather() = default;
  // Stage k's parameters are whole when this returns.
  virtual void before_forward(int k) = 0;
  // Frees them again, and returns the outputs through a node that gathers them when the
  // stage's backward begins.
  virtual Activations after_forward(int k, Activations outputs) = 0;
};

// The process's parameter gather, or nullptr (set by ZeroSharding at ZeRO-3).
ParameterGather* parameter_gather();
void set_parameter_gather(ParameterGather* gather);

class PlanExecutor {
 public:
  // The chain must outlive the executor and every graph it builds.
  PlanExecutor(ChainModule& chain, PlanNode root, CheckpointOptions options = {});

  // Forward through all stages; returns the last stage's outputs (the loss for GPT).
  // Throws UserError when a context tensor requires grad (Note [stage signature]).
  Activations forward(const Activations& inputs, const StageContext& ctx);

  const PlanNode& root() const { return root_; }

 private:
  using NodeList = std::vector<const PlanNode*>;
  Activations run_list(const NodeList& nodes, Activations a, const StageContext& ctx);
  Activations run_stage(int k, const Activations& a, const StageContext& ctx, const std::string& variant);
  Activations run_offloaded_stage(int k, const Activations& a, const StageContext& ctx, const std::string& variant);
  std::vector<torch::Tensor> parameters_of(int begin, int end);

  ChainModule& chain_;
  PlanNode root_;
  CheckpointOptions options_;
};

// Writes each stage's action under `root` ("checkpoint", "save" or the variant) into a
// trace's stages.
void mark_stage_actions(const PlanNode& root, std::vector<TraceStage>& stages);

// The trees of the standard schedules, for callers that do not go through the planner.
PlanNode plan_no_checkpoint(int stages);
// Every stage of kind "block" (every stage if none is) checkpointed alone: Hugging Face.
PlanNode plan_uniform(const ChainModule& chain);

}  // namespace tidemark::runtime
