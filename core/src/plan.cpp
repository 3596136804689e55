#include "tidemark/core/plan.hpp"

#include <fmt/format.h>
#include <functional>

#include "config_json.hpp"
#include "tidemark/core/error.hpp"
#include "tidemark/core/files.hpp"

namespace tidemark {

using detail::json;
using detail::JsonView;

const char* to_string(NodeOp op) {
  switch (op) {
    case NodeOp::Save: return "save";
    case NodeOp::Checkpoint: return "checkpoint";
    case NodeOp::Sequence: return "sequence";
  }
  return "?";
}

PlanNode PlanNode::save(int begin, int end, std::string variant) {
  PlanNode n;
  n.op = NodeOp::Save;
  n.begin = begin;
  n.end = end;
  n.variant = std::move(variant);
  return n;
}

PlanNode PlanNode::checkpoint(int begin, int end, std::vector<PlanNode> inner) {
  PlanNode n;
  n.op = NodeOp::Checkpoint;
  n.begin = begin;
  n.end = end;
  n.children = std::move(inner);
  return n;
}

PlanNode PlanNode::sequence(int begin, int end, std::vector<PlanNode> children) {
  PlanNode n;
  n.op = NodeOp::Sequence;
  n.begin = begin;
  n.end = end;
  n.children = std::move(children);
  return n;
}

namespace {

void flatten_into(const PlanNode& node, std::vector<const PlanNode*>& out) {
  if (node.op == NodeOp::Sequence) {
    for (const auto& c : node.children) flatten_into(c, out);
  } else {
    out.push_back(&node);
  }
}

void validate_node(const PlanNode& n, const std::string& where, const std::string& source) {
  auto fail = [&](const std::string& problem) {
    throw FormatError(fmt::format("{}: {}: {}", source, where, problem));
  };
  if (n.begin >= n.end) fail(fmt::format("empty or reversed range [{}, {})", n.begin, n.end));
  if (n.op != NodeOp::Save && !n.variant.empty()) fail("only save nodes take a variant");
  if (n.op == NodeOp::Sequence && n.offload) fail("a sequence does not offload; set offload on its save or checkpoint nodes");
  if (n.op == NodeOp::Save) {
    if (!n.children.empty()) fail("a save node has no children");
    return;
  }
  const char* key = n.op == NodeOp::Checkpoint ? "inner" : "children";
  if (n.children.empty()) fail(fmt::format("{} is empty; it must cover [{}, {})", key, n.begin, n.end));
  int at = n.begin;
  for (size_t i = 0; i < n.children.size(); ++i) {
    const PlanNode& c = n.children[i];
    std::string cw = fmt::format("{}.{}[{}]", where, key, i);
    if (c.begin != at) {
      throw FormatError(fmt::format("{}: {}: starts at stage {} but the previous part ended at {} ({})",
                                    source, cw, c.begin, at, c.begin < at ? "overlap" : "gap"));
    }
    validate_node(c, cw, source);
    at = c.end;
  }
  if (at != n.end) {
    fail(fmt::format("{} ends at stage {} but the node covers [{}, {})", key, at, n.begin, n.end));
  }
}

json node_to_json(const PlanNode& n) {
  json j{{"op", to_string(n.op)}, {"begin", n.begin}, {"end", n.end}};
  if (!n.variant.empty()) j["variant"] = n.variant;
  if (n.offload) j["offload"] = true;
  if (n.op != NodeOp::Save) {
    json kids = json::array();
    for (const auto& c : n.children) kids.push_back(node_to_json(c));
    j[n.op == NodeOp::Checkpoint ? "inner" : "children"] = std::move(kids);
  }
  return j;
}

PlanNode node_from_json(const JsonView& v, int depth) {
  if (depth > 256) v.fail("plan tree is nested deeper than 256 levels");
  PlanNode n;
  std::string op = v.at("op").str();
  if (op == "save") {
    n.op = NodeOp::Save;
  } else if (op == "checkpoint") {
    n.op = NodeOp::Checkpoint;
  } else if (op == "sequence") {
    n.op = NodeOp::Sequence;
  } else {
    v.at("op").fail(fmt::format("unknown op \"{}\"; expected save, checkpoint or sequence", op));
  }
  std::int64_t b = v.at("begin").i64(), e = v.at("end").i64();
  if (b < 0 || e < 0 || b > 1 << 24 || e > 1 << 24) v.fail("stage index out of range");
  n.begin = static_cast<int>(b);
  n.end = static_cast<int>(e);
  if (auto var = v.get("variant")) n.variant = var->str();
  if (auto off = v.get("offload")) n.offload = off->boolean();
  if (n.op != NodeOp::Save) {
    const char* key = n.op == NodeOp::Checkpoint ? "inner" : "children";
    for (const auto& c : v.items(key)) n.children.push_back(node_from_json(c, depth + 1));
  }
  return n;
}

}  // namespace

std::vector<const PlanNode*> flatten_sequence(const PlanNode& node) {
  std::vector<const PlanNode*> out;
  flatten_into(node, out);
  return out;
}

void validate_plan_tree(const PlanNode& root, int stages, const std::string& source) {
  if (root.begin != 0 || root.end != stages) {
    throw FormatError(fmt::format("{}: root: covers [{}, {}) but the model has {} stages", source,
                                  root.begin, root.end, stages));
  }
  validate_node(root, "root", source);
  // Offload is a top-level action (plan.hpp): inside a checkpoint it would copy out and back
  // tensors whose forward and backward run back to back.
  std::function<void(const PlanNode&, bool)> walk = [&](const PlanNode& n, bool is_top) {
    if (n.offload && !is_top) {
      throw FormatError(fmt::format("{}: {} offloads inside a checkpoint; only top-level save and "
                                    "checkpoint nodes offload",
                                    source, describe(n)));
    }
    if (n.offload && n.op == NodeOp::Checkpoint && n.begin == 0) {
      throw FormatError(fmt::format("{}: {} offloads the input of stage 0, which is the batch; "
                                    "offload a later checkpoint instead",
                                    source, describe(n)));
    }
    for (const auto& c : n.children) walk(c, is_top && n.op == NodeOp::Sequence);
  };
  walk(root, true);
}

bool offloads(const PlanNode& root) {
  if (root.offload) return true;
  for (const auto& c : root.children) {
    if (offloads(c)) return true;
  }
  return false;
}

std::string describe(const PlanNode& n) {
  switch (n.op) {
    case NodeOp::Save:
      return fmt::format("save[{},{}){}{}", n.begin, n.end, n.variant.empty() ? "" : "<" + n.variant + ">",
                         n.offload ? "@host" : "");
    case NodeOp::Checkpoint: {
      std::string inner;
      for (const auto& c : n.children) inner += (inner.empty() ? "" : " ") + describe(c);
      return fmt::format("ckpt[{},{}){}{{{}}}", n.begin, n.end, n.offload ? "@host" : "", inner);
    }
    case NodeOp::Sequence: {
      std::string s;
      for (const auto& c : n.children) s += (s.empty() ? "" : " ") + describe(c);
      return s;
    }
  }
  return "?";
}

std::string plan_to_json(const Plan& p) {
  json doc = detail::document_header(kPlanSchema, kPlanVersion);
  doc["solver"] = p.solver;
  doc["budget_bytes"] = p.budget_bytes;
  doc["profile"] = json{{"model", p.model}, {"layers", p.stages}, {"digest", p.digest}};
  if (p.sharding.known()) {
    doc["profile"]["ranks"] = p.sharding.ranks;
    doc["profile"]["zero"] = p.sharding.zero;
  }
  doc["root"] = node_to_json(p.root);
  doc["predicted"] = json{{"peak_bytes", p.predicted.peak_bytes},
                          {"step_ms", p.predicted.step_ms},
                          {"recompute_ms", p.predicted.recompute_ms}};
  if (offloads(p.root)) {
    doc["predicted"]["host_peak_bytes"] = p.predicted.host_peak_bytes;
    doc["predicted"]["copy_ms"] = p.predicted.copy_ms;
  }
  doc["baseline"] = json{{"peak_bytes", p.baseline_peak_bytes}, {"step_ms", p.baseline_step_ms}};
  return doc.dump(1) + "\n";
}

Plan plan_from_json(const std::string& text, const std::string& source) {
  json doc = detail::parse_document(text, source, kPlanSchema, kPlanVersion);
  JsonView root(doc, "", source);
  Plan p;
  p.solver = root.at("solver").str();
  p.budget_bytes = root.at("budget_bytes").u64();
  JsonView prof = root.at("profile");
  if (auto m = prof.get("model")) p.model = m->str();
  std::int64_t layers = prof.at("layers").i64();
  if (layers <= 0 || layers > 1 << 24) prof.at("layers").fail("must be a positive stage count");
  p.stages = static_cast<int>(layers);
  p.digest = prof.at("digest").str();
  if (prof.get("ranks") || prof.get("zero")) p.sharding = detail::sharding_from_json(prof);
  p.root = node_from_json(root.at("root"), 0);
  if (p.root.op != NodeOp::Sequence) p.root = PlanNode::sequence(p.root.begin, p.root.end, {p.root});
  validate_plan_tree(p.root, p.stages, source);
  JsonView pred = root.at("predicted");
  p.predicted.peak_bytes = pred.at("peak_bytes").u64();
  p.predicted.step_ms = pred.at("step_ms").non_negative();
  if (auto r = pred.get("recompute_ms")) p.predicted.recompute_ms = r->non_negative();
  if (auto h = pred.get("host_peak_bytes")) p.predicted.host_peak_bytes = h->u64();
  if (auto c = pred.get("copy_ms")) p.predicted.copy_ms = c->non_negative();
  if (auto b = root.get("baseline")) {
    p.baseline_peak_bytes = b->at("peak_bytes").u64();
    p.baseline_step_ms = b->at("step_ms").non_negative();
  }
  return p;
}

Plan read_plan(const std::string& path) { return plan_from_json(read_text_file(path, "plan"), path); }

void write_plan(const std::string& path, const Plan& plan) {
  write_file_atomic(path, plan_to_json(plan), "plan");
}

}  // namespace tidemark
