// Baseline schedules as plan trees (baselines.hpp).
//
// Sections: block runs and segmenting; every-k family; revolve.
#include "tidemark/planner/baselines.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <functional>
#include <limits>
#include <set>
#include <utility>

#include "plan_build.hpp"

namespace tidemark::planner {
namespace {

// ---- block runs and segmenting ----------------------------------------------------------

// Maximal runs [a, b) of consecutive block stages: a checkpoint covers a contiguous range,
// so a group never spans a non-block stage.
std::vector<std::pair<int, int>> block_runs(const ChainCosts& chain) {
  std::vector<std::pair<int, int>> runs;
  for (int k : chain.block_stages()) {
    if (!runs.empty() && runs.back().second == k) {
      runs.back().second = k + 1;
    } else {
      runs.emplace_back(k, k + 1);
    }
  }
  return runs;
}

int longest_run(const ChainCosts& chain) {
  int n = 0;
  for (auto [a, b] : block_runs(chain)) n = std::max(n, b - a);
  return n;
}

// Non-block stages saved; each run of blocks [a, b) replaced by segment(a, b).
using Segmenter = std::function<std::vector<PlanNode>(int a, int b)>;
PlanNode segmented_plan(const ChainCosts& chain, const Segmenter& segment) {
  std::vector<PlanNode> nodes;
  int at = 0;
  for (auto [a, b] : block_runs(chain)) {
    if (at < a) nodes.push_back(PlanNode::save(at, a));
    for (PlanNode& n : segment(a, b)) nodes.push_back(std::move(n));
    at = b;
  }
  if (at < chain.size()) nodes.push_back(PlanNode::save(at, chain.size()));
  return detail::root_of(chain, std::move(nodes));
}

// ---- revolve ----------------------------------------------------------------------------

// cost(l, s) = min over 1 <= k < l of k + cost(k, s) + cost(l - k, s - 1), cost(1, s) = 0,
// cost(l >= 2, 0) unreachable; split(l, s) is the least k reaching it.
class RevolveTable {
 public:
  RevolveTable(int length, int snapshots) : n_(length), s_(snapshots) {
    const long long inf = std::numeric_limits<long long>::max() / 4;
    cost_.assign(static_cast<std::size_t>(n_ + 1) * (s_ + 1), inf);
    split_.assign(cost_.size(), 0);
    for (int s = 0; s <= s_; ++s) cost(1, s) = 0;
    for (int s = 1; s <= s_; ++s) {
      for (int l = 2; l <= n_; ++l) {
        for (int k = 1; k < l; ++k) {
          const long long c = k + cost(k, s) + cost(l - k, s - 1);
          if (c < cost(l, s)) {
            cost(l, s) = c;
            split_[at(l, s)] = k;
          }
        }
      }
    }
  }

  int split(int l, int s) const { return split_[at(l, s)]; }

 private:
  std::size_t at(int l, int s) const { return static_cast<std::size_t>(l) * (s_ + 1) + s; }
  long long& cost(int l, int s) { return cost_[at(l, s)]; }

  int n_, s_;
  std::vector<long long> cost_;
  std::vector<int> split_;
};

// Past this many snapshots the schedules of the chains we plan no longer change much, and
// the table is O(blocks^2 * snapshots).
constexpr int kMaxRevolveSnapshots = 64;

int revolve_snapshot_limit(const ChainCosts& chain) {
  return std::clamp(longest_run(chain) - 1, 1, kMaxRevolveSnapshots);
}

std::vector<PlanNode> revolve_nodes(const RevolveTable& table, int a, int l, int s) {
  std::vector<PlanNode> nodes;
  while (l > 1) {  // rev(l, s) = [checkpoint [a, a+k) inner rev(k, s)] + rev(l - k, s - 1)
    const int k = table.split(l, s);
    nodes.push_back(PlanNode::checkpoint(a, a + k, revolve_nodes(table, a, k, s)));
    a += k;
    l -= k;
    s -= 1;
  }
  nodes.push_back(PlanNode::save(a, a + 1));
  detail::merge_saves(nodes);
  return nodes;
}

PlanNode revolve_with(const ChainCosts& chain, const RevolveTable& table, int snapshots) {
  return segmented_plan(chain,
                        [&](int a, int b) { return revolve_nodes(table, a, b - a, snapshots); });
}

}  // namespace

// ---- every-k family ---------------------------------------------------------------------

PlanNode none_plan(const ChainCosts& chain) {
  return PlanNode::sequence(0, chain.size(), {PlanNode::save(0, chain.size())});
}

PlanNode every_k_plan(const ChainCosts& chain, int k) {
  k = std::max(k, 1);
  return segmented_plan(chain, [k](int a, int b) {
    std::vector<PlanNode> nodes;
    for (int g = a; g < b; g += k) {
      const int e = std::min(g + k, b);
      nodes.push_back(PlanNode::checkpoint(g, e, {PlanNode::save(g, e)}));
    }
    return nodes;
  });
}

PlanNode uniform_plan(const ChainCosts& chain) { return every_k_plan(chain, 1); }

PlanNode with_checkpoint_inputs_offloaded(PlanNode root) {
  for (PlanNode& n : root.children) {
    if (n.op == NodeOp::Checkpoint && n.begin > 0) n.offload = true;
  }
  return root;
}

PlanNode uniform_offload_plan(const ChainCosts& chain) { return with_checkpoint_inputs_offloaded(uniform_plan(chain)); }

int block_count(const ChainCosts& chain) { return static_cast<int>(chain.block_stages().size()); }

int sqrt_group_size(const ChainCosts& chain) {
  const int n = block_count(chain);
  int k = 1;
  while (k * k < n) ++k;
  return k;
}

PlanNode sqrt_plan(const ChainCosts& chain) { return every_k_plan(chain, sqrt_group_size(chain)); }

std::vector<Candidate> every_k_candidates(const ChainCosts& chain) {
  std::vector<Candidate> out;
  for (int k = 1; k <= std::max(longest_run(chain), 1); ++k) {
    out.push_back(make_candidate(chain, every_k_plan(chain, k), fmt::format("every-k k={}", k)));
  }
  return out;
}

PlanNode revolve_plan(const ChainCosts& chain, int snapshots) {
  snapshots = std::max(snapshots, 1);
  return revolve_with(chain, RevolveTable(longest_run(chain), snapshots), snapshots);
}

std::vector<Candidate> revolve_candidates(const ChainCosts& chain) {
  const int limit = revolve_snapshot_limit(chain);
  const RevolveTable table(longest_run(chain), limit);
  std::vector<Candidate> out;
  std::set<std::string> seen;  // several snapshot counts give the same schedule
  for (int s = 1; s <= limit; ++s) {
    PlanNode root = revolve_with(chain, table, s);
    if (!seen.insert(describe(root)).second) continue;
    out.push_back(make_candidate(chain, std::move(root), fmt::format("revolve s={}", s)));
  }
  return out;
}

}  // namespace tidemark::planner
