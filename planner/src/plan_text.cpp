// Plans described with stage names, for the terminal (plan_text.hpp).
#include "tidemark/planner/plan_text.hpp"

#include <fmt/format.h>

namespace tidemark::planner {
namespace {

std::string variant_note(const PlanNode& save) {
  return save.variant.empty() ? "" : fmt::format(" (variant {})", save.variant);
}

// A checkpoint whose inner plan is one save of its whole range: Hugging Face's shape.
bool plain_segment(const PlanNode& n) {
  return n.op == NodeOp::Checkpoint && n.children.size() == 1 && n.children[0].op == NodeOp::Save &&
         n.children[0].variant.empty();
}

const char* offload_note(const PlanNode& n) {
  if (!n.offload) return "";
  return n.op == NodeOp::Save ? " (saved tensors in host memory)" : " (input in host memory)";
}

}  // namespace

std::string stage_range(const ChainCosts& chain, int begin, int end) {
  if (end == begin + 1) return chain.stages[begin].name;
  return chain.stages[begin].name + "-" + chain.stages[end - 1].name;
}

std::string describe_node(const ChainCosts& chain, const PlanNode& node) {
  auto join = [&](const std::vector<const PlanNode*>& parts) {
    std::string out;
    for (const PlanNode* p : parts) out += (out.empty() ? "" : ", ") + describe_node(chain, *p);
    return out;
  };
  switch (node.op) {
    case NodeOp::Save:
      return "save " + stage_range(chain, node.begin, node.end) + variant_note(node) + offload_note(node);
    case NodeOp::Sequence:
      return join(flatten_sequence(node));
    case NodeOp::Checkpoint:
      break;
  }
  std::vector<const PlanNode*> inner;
  for (const PlanNode& c : node.children) {
    for (const PlanNode* p : flatten_sequence(c)) inner.push_back(p);
  }
  // The inner save of a segment covers the segment: its range would only repeat.
  const std::string inner_text = inner.size() == 1 && inner[0]->op == NodeOp::Save
                                     ? "save" + variant_note(*inner[0])
                                     : join(inner);
  return fmt::format("checkpoint {}{} (inner: {})", stage_range(chain, node.begin, node.end),
                     offload_note(node), inner_text);
}

std::vector<std::string> describe_plan(const ChainCosts& chain, const PlanNode& root) {
  const auto nodes = flatten_sequence(root);
  std::vector<std::string> lines;
  for (std::size_t i = 0; i < nodes.size();) {
    // Fold a run of three or more plain segments of one length into one line.
    std::size_t j = i;
    const int len = nodes[i]->end - nodes[i]->begin;
    while (j < nodes.size() && plain_segment(*nodes[j]) && nodes[j]->end - nodes[j]->begin == len &&
           nodes[j]->offload == nodes[i]->offload)
      ++j;
    if (j - i >= 3) {
      lines.push_back(fmt::format("checkpoint {} as {} segments of {} stage{}{} (inner: save)",
                                  stage_range(chain, nodes[i]->begin, nodes[j - 1]->end), j - i,
                                  len, len == 1 ? "" : "s",
                                  nodes[i]->offload ? ", each one's input in host memory" : ""));
      i = j;
      continue;
    }
    lines.push_back(describe_node(chain, *nodes[i]));
    ++i;
  }
  return lines;
}

}  // namespace tidemark::planner
