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
    s.copy_ms = copy_;
    s.host_peak_bytes = static_cast<std::uint64_t>(host_peak_);
    return s;
  }

 private:
  static std::int64_t i(std::uint64_t v) { return static_cast<std::int64_t>(v); }
  void touch(std::int64_t level) { peak_ = std::max(peak_, level); }
  void spend(double ms) {
    time_ += ms;
    if (recomputing_ > 0) recompute_ += ms;
  }

  void spend_copy(double ms) {
    time_ += ms;
    copy_ += ms;
  }
  // Note [offload]: the device bytes leave once the step has waited for their copy.
  void to_host(std::int64_t bytes, double exposed_ms) {
    spend_copy(exposed_ms);
    live_ -= bytes;
    host_ += bytes;
    host_peak_ = std::max(host_peak_, host_);
  }
  // ... and are allocated again when the backward that needs them begins.
  void from_host(std::int64_t bytes) {
    live_ += bytes;
    touch(live_);
    host_ -= bytes;
  }
  void require_link(const PlanNode& node) const {
    if (!c_.can_offload()) {
      throw FormatError(fmt::format("plan: {} offloads, but the profile measured no host link "
                                    "(offload needs a CUDA device); plan again from this profile",
                                    describe(node)));
    }
  }

  const VariantCost& variant_of(const PlanNode& node, int k) const {
    int v = c_.variant_index(k, node.variant);
    if (v < 0) {
      throw FormatError(fmt::format("plan: stage {} ({}) has no variant \"{}\" in the profile", k,
                                    c_.stages[k].name, node.variant));
    }
    return c_.stages[k].variants[v];
  }

  // Returns the time it took.
  double forward_nograd(int b, int e) {
    double ms = 0;
    for (int k = b; k < e; ++k) {
      const StageCost& s = c_.stages[k];
      touch(live_ + i(s.nograd_peak));
      live_ += i(s.out);
      if (k > b) live_ -= i(c_.in(k));
      spend(s.nograd_ms);
      ms += s.nograd_ms;
    }
    return ms;
  }

  void forward_list(const std::vector<const PlanNode*>& nodes) {
    for (const PlanNode* node : nodes) {
      if (node->op == NodeOp::Checkpoint) {
        const std::int64_t r = i(c_.checkpoint_state);
        touch(live_ + r);
        live_ += r;
        const double ms = forward_nograd(node->begin, node->end);
        if (node->offload) {
          require_link(*node);
          const std::uint64_t x = c_.in(node->begin);
          to_host(i(x), std::max(0.0, c_.d2h_ms(x) - ms));
        }
        continue;
      }
      for (int k = node->begin; k < node->end; ++k) {
        const VariantCost& v = variant_of(*node, k);
        touch(live_ + i(v.forward_peak));
        live_ += i(c_.stages[k].out + v.saved);
        spend(v.forward_ms);
        if (node->offload) {
          require_link(*node);
          to_host(i(v.saved), std::max(0.0, c_.d2h_ms(v.saved) - v.forward_ms));
        }
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
        if (node.offload) {
          from_host(i(v.saved));
          spend_copy(std::max(0.0, c_.h2d_ms(v.saved) - v.backward_ms));
        }
        touch(live_ + i(v.backward_peak + (out_held ? v.held_extra : 0)));
        live_ += i(c_.grad_in(k) + s.param) - i(v.saved);
        if (!out_held) live_ -= i(s.out);
        if (!(k == first && held_in)) live_ -= i(c_.in(k));
        spend(v.backward_ms);
        // A variant's rebuild is recompute too, though it runs inside the stage's backward:
        // its time over the plain form's, forward and backward.
        if (!node.variant.empty()) {
          const VariantCost& plain = s.plain();
          recompute_ += std::max(0.0, v.forward_ms + v.backward_ms - plain.forward_ms - plain.backward_ms);
        }
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
    if (node.offload) {
      const std::uint64_t x = c_.in(node.begin);
      from_host(i(x));
      spend_copy(c_.h2d_ms(x));
    }
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
  double copy_ = 0;
  std::int64_t host_ = 0;
  std::int64_t host_peak_ = 0;
  int recomputing_ = 0;
};

}  // namespace

Prediction simulate(const ChainCosts& chain, const PlanNode& root) { return Simulator(chain).run(root); }

}  // namespace tidemark::planner
