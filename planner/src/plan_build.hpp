#pragma once
// Private: turning a solver's choices (save a stage, or checkpoint a prefix) into plan trees.
#include <utility>
#include <vector>

#include "tidemark/core/plan.hpp"
#include "tidemark/planner/chain.hpp"

namespace tidemark::planner::detail {

// Merges adjacent save nodes with the same variant and offload into one node.
void merge_saves(std::vector<PlanNode>& nodes);

// The root sequence over [0, L) of a top-level node list (merged).
PlanNode root_of(const ChainCosts& chain, std::vector<PlanNode> nodes);

// The first node of a list over [i, j) as a recursion chose it: save stage i with
// `variant` (>= 0), or checkpoint [i, split) when variant < 0. `rest` and `inner` are the
// recursion's states for the rest of the list and for the checkpoint's inner list.
template <class State>
struct FirstNode {
  int variant = -1;
  int split = 0;
  bool offload = false;
  State rest{};
  State inner{};
};

// The node list over [i, j) that `choose(i, j, state) -> FirstNode<State>` describes.
template <class State, class Choose>
std::vector<PlanNode> build_list(const ChainCosts& chain, int i, int j, State state,
                                 const Choose& choose) {
  std::vector<PlanNode> out;
  while (i < j) {  // the rest of a list is walked in a loop; only inner lists recurse
    FirstNode<State> f = choose(i, j, state);
    if (f.variant >= 0) {
      out.push_back(PlanNode::save(i, i + 1, chain.stages[i].variants[f.variant].name));
      i += 1;
    } else {
      out.push_back(
          PlanNode::checkpoint(i, f.split, build_list(chain, i, f.split, f.inner, choose)));
      i = f.split;
    }
    out.back().offload = f.offload;
    state = f.rest;
  }
  merge_saves(out);
  return out;
}

}  // namespace tidemark::planner::detail
