// Every plan tree of a small chain, simulated (brute_force.hpp).
#include "tidemark/planner/brute_force.hpp"

#include <fmt/format.h>
#include <functional>

#include "tidemark/core/error.hpp"

namespace tidemark::planner {
namespace {

using ListFn = std::function<void(const std::vector<PlanNode>&)>;
using NodeFn = std::function<void(const PlanNode&)>;

class Enumerator {
 public:
  explicit Enumerator(const ChainCosts& chain) : chain_(chain) {}

  // Calls emit with every node list covering [i, j). An inner list of a checkpoint over
  // [i, j) may not be that one checkpoint again (`inner_of_checkpoint`). A top-level list's
  // nodes may also offload (Note [offload]) when the chain has a host link.
  void lists(int i, int j, bool inner_of_checkpoint, bool top, const ListFn& emit) const {
    if (i == j) {
      emit({});
      return;
    }
    for (int k = i + 1; k <= j; ++k) {
      const bool checkpoints = !(inner_of_checkpoint && k == j);
      first_nodes(i, k, checkpoints, top, [&](const PlanNode& first) {
        lists(k, j, false, top, [&](const std::vector<PlanNode>& rest) {
          std::vector<PlanNode> list;
          list.reserve(rest.size() + 1);
          list.push_back(first);
          list.insert(list.end(), rest.begin(), rest.end());
          emit(list);
        });
      });
    }
  }

 private:
  // Calls emit with every node covering exactly [i, k).
  void first_nodes(int i, int k, bool checkpoints, bool top, const NodeFn& emit) const {
    const bool offload = top && chain_.can_offload();
    auto with_offload = [&](PlanNode node, bool may_offload) {
      if (may_offload) {
        PlanNode off = node;
        off.offload = true;
        emit(off);
      }
      emit(node);
    };
    if (k == i + 1) {
      for (const VariantCost& v : chain_.stages[i].variants) with_offload(PlanNode::save(i, k, v.name), offload);
    }
    if (!checkpoints) return;
    lists(i, k, true, false, [&](const std::vector<PlanNode>& inner) {
      with_offload(PlanNode::checkpoint(i, k, inner), offload && i > 0);
    });
  }

  const ChainCosts& chain_;
};

}  // namespace

BruteForce::BruteForce(const ChainCosts& chain) {
  if (chain.size() > kMaxBruteForceStages) {
    throw UserError(fmt::format("brute force: {} stages is too many to enumerate (at most {})",
                                chain.size(), kMaxBruteForceStages));
  }
  Enumerator(chain).lists(0, chain.size(), false, true, [&](const std::vector<PlanNode>& list) {
    offer(chain, PlanNode::sequence(0, chain.size(), list));
  });
}

// Keeps the Pareto front sorted by peak with strictly falling step times; a tree that is
// no faster than one with a peak as low is dropped.
void BruteForce::offer(const ChainCosts& chain, PlanNode root) {
  ++plans_;
  const Prediction sim = simulate(chain, root);
  auto dominated = [&](const Candidate& c) {
    return c.sim.peak_bytes <= sim.peak_bytes && c.sim.step_ms <= sim.step_ms;
  };
  for (const Candidate& c : front_) {
    if (dominated(c)) return;
  }
  std::vector<Candidate> kept;
  kept.reserve(front_.size() + 1);
  bool placed = false;
  for (Candidate& c : front_) {
    if (c.sim.peak_bytes >= sim.peak_bytes && c.sim.step_ms >= sim.step_ms) continue;
    if (!placed && c.sim.peak_bytes > sim.peak_bytes) {
      kept.push_back(Candidate{std::move(root), sim, "brute force"});
      placed = true;
    }
    kept.push_back(std::move(c));
  }
  if (!placed) kept.push_back(Candidate{std::move(root), sim, "brute force"});
  front_ = std::move(kept);
}

std::uint64_t BruteForce::minimum_peak() const { return front_.front().sim.peak_bytes; }

std::optional<Candidate> BruteForce::fastest_within(std::uint64_t budget) const {
  const Candidate* best = planner::fastest_within(front_, budget);
  if (!best) return std::nullopt;
  return *best;
}

}  // namespace tidemark::planner
