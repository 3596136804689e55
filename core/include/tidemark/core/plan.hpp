#pragma once
// tidemark.plan/1: a checkpoint plan, a tree of nodes covering stages [0, L) in order.
//
//   save        [begin, end): run normally; autograd keeps what the stages save.
//               Optional `variant` (e.g. "attention-core") applies to every stage in it.
//   checkpoint  [begin, end): keep only a_begin; forward without saving; in backward,
//               recompute the range following `children` (a plan for [begin, end)), then
//               backpropagate through it.
//   sequence    [begin, end): `children` in order. The root is always a sequence.
//
// A top-level save or checkpoint node may set `offload` (CUDA only): a save node keeps its
// stages' saved tensors in pinned host memory between their forward and backward, a
// checkpoint its input (Hugging Face's offload option). Note [offload] in
// planner/simulator.hpp says when the bytes leave and come back. Offload inside a
// checkpoint's inner plan is refused: those stages run forward and backward back to back.
//
// In JSON a checkpoint's children are called "inner", a sequence's "children".
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tidemark/core/profile.hpp"

namespace tidemark {

inline constexpr const char* kPlanSchema = "tidemark.plan";
inline constexpr int kPlanVersion = 1;

enum class NodeOp { Save, Checkpoint, Sequence };
const char* to_string(NodeOp op);

struct PlanNode {
  NodeOp op = NodeOp::Save;
  int begin = 0;
  int end = 0;
  std::string variant;            // save only; empty = the stage's plain form
  bool offload = false;           // top-level save or checkpoint only (JSON "offload": true)
  std::vector<PlanNode> children; // checkpoint: inner plan; sequence: parts

  static PlanNode save(int begin, int end, std::string variant = {});
  static PlanNode checkpoint(int begin, int end, std::vector<PlanNode> inner);
  static PlanNode sequence(int begin, int end, std::vector<PlanNode> children);
};

// What the planner's simulator predicts for a plan (planner/simulator.hpp).
struct Prediction {
  std::uint64_t peak_bytes = 0;
  double step_ms = 0;
  // Forward time spent recomputing during backward, and the variants' rebuilds (their time
  // over their stage's plain form).
  double recompute_ms = 0;
  std::uint64_t end_bytes = 0;  // live bytes after the optimizer step (not written to plans)
  // Offload: the most pinned host bytes held at once, and the copy time not hidden behind
  // compute (part of step_ms). Written to plans only when the plan offloads.
  std::uint64_t host_peak_bytes = 0;
  double copy_ms = 0;
};

struct Plan {
  std::string solver;
  std::uint64_t budget_bytes = 0;
  int stages = 0;           // stage count of the profile it was made from (JSON "layers")
  std::string digest;       // that profile's digest
  std::string model = "gpt";
  // The profile's ranks and ZeRO stage: a plan's budget is per rank and holds only for the
  // sharding it was made for (JSON "profile": "ranks", "zero"; absent: not recorded).
  Sharding sharding;
  PlanNode root;
  Prediction predicted;
  std::uint64_t baseline_peak_bytes = 0;  // the profile's no-checkpoint peak
  double baseline_step_ms = 0;
};

// Structural checks: children cover their parent's range in order, no gaps or overlaps,
// non-empty ranges, variants only on save nodes, root covers [0, stages), offload only on
// top-level save and checkpoint nodes and never on a checkpoint of stage 0 (its input is
// the batch). Throws
// FormatError naming `source` and the node.
void validate_plan_tree(const PlanNode& root, int stages, const std::string& source);

// The save/checkpoint nodes of a sequence in order, nested sequences flattened.
std::vector<const PlanNode*> flatten_sequence(const PlanNode& node);

// True when any node offloads.
bool offloads(const PlanNode& root);

// "ckpt[1,5){save} save[5,7)" for logs and tests; an offloaded node ends in "@host"
// ("ckpt[1,5)@host{save}").
std::string describe(const PlanNode& node);

Plan plan_from_json(const std::string& text, const std::string& source);
std::string plan_to_json(const Plan& plan);
Plan read_plan(const std::string& path);
void write_plan(const std::string& path, const Plan& plan);

}  // namespace tidemark
