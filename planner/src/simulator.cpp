#include "tidemark/planner/simulator.hpp"

#include <algorithm>
#include <fmt/format.h>

#include "tidemark/core/error.hpp"

namespace tidemark::planner {
namespace {

// Follows Note [execution model] in simulator.hpp, one event at a time.
class Simulator {
 public:
  explicit Simulator(const ChainCosts& c) : c_(c) {}

  Prediction run(const PlanNode& root) {
    validate_plan_tree(root, c_.size(), "plan");
    const int n = c_.size();
    const std::int64_t loss_grad = static_cast<std::int64_t>(c_.stages[n - 1].out);
    live_ = static_cast<std::int64_t>(c_.resident);
    peak_ = live_;
    auto nodes = flatten_sequence(root);
    forward_list(nodes);
    live_ += loss_grad;  // backward() starts by creating the loss's gradient
    touch(live_);
    // loss.backward() holds the loss's gradient until the whole backward returns.
    backward_list(nodes, 0, n, /*held_in=*/true, /*held_out=*/true);
    live_ -= loss_grad;
    touch(live_ + static_cast<std::int64_t>(c_.optimizer_peak));
    Prediction s;
    s.peak_bytes = static_cast<std::uint64_t>(std::max<std::int64_t>(peak_, 0));
    s.end_bytes = static_cast<std::uint64_t>(std::max<std::int64_t>(live_, 0));
    s.step_ms = c_.fixed_ms + time_;
    s.recompute_ms = recompute_;
    return s;
  }

 private:
  static std::int64_t i(std::uint64_t v) { return static_cast<std::int64_t>(v); }
  void touch(std::int64_t level) { peak_ = std::max(peak_, level); }
  void spend(double ms) {
    time_ += ms;
    if (recomputing_ > 0) recompute_ += ms;
  }

  const VariantCost& variant_of(const PlanNode& node, int k) const {
    int v = c_.variant_index(k, node.variant);
    if (v < 0) {
      throw FormatError(fmt::format("plan: stage {} ({}) has no variant \"{}\" in the profile", k,
                                    c_.stages[k].name, node.variant));
    }
    return c_.stages[k].variants[v];
  }

  void forward_nograd(int b, int e) {
    for (int k = b; k < e; ++k) {
      const StageCost& s = c_.stages[k];
      touch(live_ + i(s.nograd_peak));
      live_ += i(s.out);
      if (k > b) live_ -= i(c_.in(k));
      spend(s.nograd_ms);
    }
  }

  void forward_list(const std::vector<const PlanNode*>& nodes) {
    for (const PlanNode* node : nodes) {
      if (node->op == NodeOp::Checkpoint) {
        const std::int64_t r = i(c_.checkpoint_state);
        touch(live_ + r);
        live_ += r;
        forward_nograd(node->begin, node->end);
        continue;
      }
      for (int k = node->begin; k < node->end; ++k) {
        const VariantCost& v = variant_of(*node, k);
        touch(live_ + i(v.forward_peak));
        live_ += i(c_.stages[k].out + v.saved);
        spend(v.forward_ms);
      }
    }
  }

  // Backward of a list over [first, last). held_in: a_first is held by an enclosing
  // checkpoint (or the caller); held_out: the gradient of a_last is.
  void backward_list(const std::vector<const PlanNode*>& nodes, int first, int last, bool held_in,
                     bool held_out) {
    for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) {
      const PlanNode& node = **it;
      if (node.op == NodeOp::Checkpoint) {
        backward_checkpoint(node, first, last, held_in, held_out);
        continue;
      }
      for (int k = node.end - 1; k >= node.begin; --k) {
        const StageCost& s = c_.stages[k];
        const VariantCost& v = variant_of(node, k);
        const bool out_held = k + 1 == last && held_out;
        touch(live_ + i(v.backward_peak + (out_held ? v.held_extra : 0)));
        live_ += i(c_.grad_in(k) + s.param) - i(v.saved);
        if (!out_held) live_ -= i(s.out);
        if (!(k == first && held_in)) live_ -= i(c_.in(k));
        spend(v.backward_ms);
      }
    }
  }

  void backward_checkpoint(const PlanNode& node, int first, int last, bool held_in, bool held_out) {
    std::vector<const PlanNode*> inner;
    for (const auto& child : node.children) {
      for (const PlanNode* p : flatten_sequence(child)) inner.push_back(p);
    }
    const std::int64_t out = i(c_.stages[node.end - 1].out);
    const std::int64_t r = i(c_.checkpoint_state);
    touch(live_ + r);
    live_ += r;  // the backward's own RNG state, put back after the recompute
    ++recomputing_;
    forward_list(inner);
    --recomputing_;
    live_ -= r;
    live_ -= out;  // the recomputed output is dropped; only its graph is needed
    backward_list(inner, node.begin, node.end, /*held_in=*/true, /*held_out=*/true);
    if (!(node.end == last && held_out)) live_ -= out;  // the incoming gradient
    if (!(node.begin == first && held_in)) live_ -= i(c_.in(node.begin));
    live_ -= r;  // the checkpoint's state
  }

  const ChainCosts& c_;
  std::int64_t live_ = 0;
  std::int64_t peak_ = 0;
  double time_ = 0;
  double recompute_ = 0;
  int recomputing_ = 0;
};

}  // namespace

Prediction simulate(const ChainCosts& chain, const PlanNode& root) { return Simulator(chain).run(root); }

}  // namespace tidemark::planner
