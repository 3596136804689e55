// The exact minimum peak: Note [optimal recurrence] (dp.hpp) with (max, +) over bytes in
// place of the slotted (min, +) over time. Among plans of equal peak it keeps the faster
// choice at each step, so the minimum-peak plan is not needlessly slow.
#include <algorithm>
#include <limits>
#include <vector>

#include "chain_terms.hpp"
#include "plan_build.hpp"
#include "tidemark/planner/dp.hpp"
#include "tidemark/planner/simulator.hpp"

namespace tidemark::planner {
namespace {

struct Need {
  std::uint64_t bytes = std::numeric_limits<std::uint64_t>::max();
  double ms = std::numeric_limits<double>::infinity();
  int variant = -1;  // first node: save with this variant, or -1: checkpoint [i, split)
  int split = 0;
  bool offload = false;
};

// keep + rest, where an offloaded checkpoint's input is off the device while the rest runs
// (Note [recurrence terms]); never below 0, the list's start.
std::uint64_t above(std::uint64_t keep, std::uint64_t released, std::uint64_t rest) {
  const std::uint64_t up = keep + rest;
  return up > released ? up - released : 0;
}

class MinPeak {
 public:
  explicit MinPeak(const ChainCosts& chain) : n_(chain.size()), terms_(chain) {
    inner_.resize(static_cast<std::size_t>(n_) * (n_ - 1) / 2);
    top_.resize(n_);
    for (int d = 1; d < n_; ++d) {
      for (int i = 0; i + d < n_; ++i) solve(i, i + d);
    }
    for (int i = n_ - 1; i >= 0; --i) solve(i, n_);
  }

  // Peak above the list's start level, for the list over [i, j).
  const Need& at(int i, int j) const { return const_cast<MinPeak*>(this)->cell(i, j); }

 private:
  Need& cell(int i, int j) {
    if (j == n_) return top_[i];
    return inner_[static_cast<std::size_t>(j) * (j - 1) / 2 + i];
  }

  void solve(int i, int j) {
    Need best;
    auto offer = [&](std::uint64_t bytes, double ms, int variant, int split, bool offload) {
      if (bytes < best.bytes || (bytes == best.bytes && ms < best.ms)) {
        best = Need{bytes, ms, variant, split, offload};
      }
    };
    auto save = [&](int v, const detail::SaveTerms& t, bool offload) {
      std::uint64_t bytes = std::max(t.forward, t.backward);
      double ms = t.ms;
      if (i + 1 < j) {
        const Need& rest = at(i + 1, j);
        bytes = std::max(bytes, t.keep + rest.bytes);
        ms += rest.ms;
      }
      offer(bytes, ms, v, 0, offload);
    };
    auto checkpoint = [&](int k, const detail::CheckpointTerms& t, bool offload) {
      const Need& rest = at(k, j);
      const Need& inner = at(i, k);
      offer(std::max({t.forward, above(t.keep, t.released, rest.bytes), t.inner_base + inner.bytes}),
            t.ms + rest.ms + inner.ms, -1, k, offload);
    };
    terms_.for_each_first(i, j, save, checkpoint);
    cell(i, j) = best;
  }

  int n_;
  detail::ChainTerms terms_;
  std::vector<Need> inner_;
  std::vector<Need> top_;
};

}  // namespace

std::uint64_t minimum_peak(const ChainCosts& chain) {
  // The recursion is exact when checkpoints keep no state of their own (r == 0); otherwise
  // its terms over-count by up to r per nesting level, so the plan it picks is simulated
  // for the figure reported.
  if (chain.checkpoint_state > 0) return simulate(chain, minimum_peak_plan(chain)).peak_bytes;
  const MinPeak table(chain);
  return std::max(start_bytes(chain) + table.at(0, chain.size()).bytes, optimizer_step_peak(chain));
}

PlanNode minimum_peak_plan(const ChainCosts& chain) {
  const MinPeak table(chain);
  auto choose = [&](int i, int j, int) {
    const Need& need = table.at(i, j);
    detail::FirstNode<int> first;
    first.variant = need.variant;
    first.split = need.split;
    first.offload = need.offload;
    return first;
  };
  return detail::root_of(chain, detail::build_list(chain, 0, chain.size(), 0, choose));
}

}  // namespace tidemark::planner
