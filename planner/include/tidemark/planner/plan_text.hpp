#pragma once
// Plans described for people, with stage names: "checkpoint block.0-block.3 (inner: save)".
#include <string>
#include <vector>

#include "tidemark/core/plan.hpp"
#include "tidemark/planner/chain.hpp"

namespace tidemark::planner {

// "block.2" for one stage, "block.0-block.3" for a range.
std::string stage_range(const ChainCosts& chain, int begin, int end);

// One node and its inner plan on one line.
std::string describe_node(const ChainCosts& chain, const PlanNode& node);

// The root's nodes, one line each; runs of alike checkpoints (same length, inner [save])
// are folded into one line so a uniform plan over 96 blocks stays short.
std::vector<std::string> describe_plan(const ChainCosts& chain, const PlanNode& root);

}  // namespace tidemark::planner
