#include "plan_build.hpp"

namespace tidemark::planner::detail {

void merge_saves(std::vector<PlanNode>& nodes) {
  std::vector<PlanNode> merged;
  merged.reserve(nodes.size());
  for (PlanNode& n : nodes) {
    if (!merged.empty()) {
      PlanNode& last = merged.back();
      if (n.op == NodeOp::Save && last.op == NodeOp::Save && last.end == n.begin &&
          last.variant == n.variant && last.offload == n.offload) {
        last.end = n.end;
        continue;
      }
    }
    merged.push_back(std::move(n));
  }
  nodes = std::move(merged);
}

PlanNode root_of(const ChainCosts& chain, std::vector<PlanNode> nodes) {
  merge_saves(nodes);
  return PlanNode::sequence(0, chain.size(), std::move(nodes));
}

}  // namespace tidemark::planner::detail
