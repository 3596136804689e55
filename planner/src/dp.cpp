// The slotted time program of Note [optimal recurrence] (dp.hpp).
//
// Sections: chain-level quantities; the table (choices, fill); reconstruction.
#include "tidemark/planner/dp.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>

#include "chain_terms.hpp"
#include "plan_build.hpp"

namespace tidemark::planner {

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
}

// ---- chain-level quantities ---------------------------------------------------------------

std::uint64_t start_bytes(const ChainCosts& chain) { return chain.resident + chain.stages.back().out; }

std::uint64_t optimizer_step_peak(const ChainCosts& chain) {
  // After backward every activation and gradient but the parameter gradients, the input's
  // gradient and the kept loss is gone, whatever the plan (Note [execution model]).
  std::uint64_t params = 0;
  for (const StageCost& s : chain.stages) params += s.param;
  return start_bytes(chain) + params + chain.grad_in(0) + chain.optimizer_peak;
}

std::uint64_t slot_bytes_for(const ChainCosts& chain, std::uint64_t budget, int slots) {
  const std::uint64_t start = start_bytes(chain);
  const std::uint64_t dynamic = budget > start ? budget - start : 0;
  const std::uint64_t n = static_cast<std::uint64_t>(std::max(slots, 1));
  return std::max<std::uint64_t>(1, (dynamic + n - 1) / n);
}

std::uint64_t rounding_bound(const ChainCosts& chain, std::uint64_t slot_bytes) {
  return static_cast<std::uint64_t>(chain.size() + 1) * slot_bytes;
}

// ---- the table ----------------------------------------------------------------------------

namespace {

// One first-node choice of a list, in slots: valid for m >= lo; its time at m is
// ms + rest[rest_slots(m)] (if there is a rest) + inner[m - base] (if a checkpoint).
// An offloaded checkpoint frees its input while the rest runs, so `keep` may be negative:
// the rest then has more slots than the list, up to the table's last column. (It never
// has more than the root's in a table wide enough for the root, since the level never
// falls below the step's start; capping there only errs on the safe side.)
struct Choice {
  int variant = -1;  // save stage i with this variant, or -1: checkpoint [i, split)
  int split = 0;
  bool offload = false;
  int lo = 0;
  int keep = 0;
  int base = 0;
  int last = 0;  // the table's last column
  double ms = 0;
  const double* rest = nullptr;
  const double* inner = nullptr;

  int rest_slots(int m) const { return std::min(m - keep, last); }
  double at(int m) const {
    double t = ms;
    if (rest) t += rest[rest_slots(m)];
    if (inner) t += inner[m - base];
    return t;
  }
};

}  // namespace

std::uint64_t OptimalDp::table_bytes(int stages, int max_slots) {
  const std::uint64_t n = static_cast<std::uint64_t>(std::max(stages, 1));
  const std::uint64_t rows = n * (n + 1) / 2;
  return rows * (static_cast<std::uint64_t>(std::max(max_slots, 0)) + 1) * sizeof(double);
}

OptimalDp::OptimalDp(const ChainCosts& chain, std::uint64_t slot_bytes, int max_slots)
    : chain_(chain),
      slot_bytes_(std::max<std::uint64_t>(slot_bytes, 1)),
      width_(std::max(max_slots, 0) + 1) {
  const int n = chain.size();
  table_.assign(static_cast<std::size_t>(n) * (n + 1) / 2 * static_cast<std::size_t>(width_), kInf);
  const detail::ChainTerms terms(chain);
  // Row (i, j) reads rows (i+1, j) and (k, j) for k > i, done in earlier passes over i, and
  // rows (i, k) for k < j, done earlier in this pass. Rows of one i lie together and stay in
  // cache for the whole pass; only the rows (k, j) stream from memory.
  for (int i = n - 1; i >= 0; --i) {
    for (int j = i + 1; j <= n; ++j) fill_row(terms, i, j);
  }
}

double* OptimalDp::row(int i, int j) {
  return const_cast<double*>(static_cast<const OptimalDp*>(this)->row(i, j));
}

const double* OptimalDp::row(int i, int j) const {
  // Rows by i, then j = i+1 .. L: row i starts after sum over i' < i of (L - i') rows.
  const std::size_t n = static_cast<std::size_t>(chain_.size());
  const std::size_t ii = static_cast<std::size_t>(i);
  const std::size_t index = ii * n - ii * (ii - 1) / 2 + static_cast<std::size_t>(j - i - 1);
  return table_.data() + index * static_cast<std::size_t>(width_);
}

int OptimalDp::slots(std::uint64_t bytes) const {
  // Rounded up; anything beyond the table is "never fits".
  const std::uint64_t s = bytes / slot_bytes_ + (bytes % slot_bytes_ != 0);
  return s >= static_cast<std::uint64_t>(width_) ? width_ : static_cast<int>(s);
}

// Calls f(choice) for every first node of the list over [i, j), in ChainTerms::for_each_first's
// order. The fill and the reconstruction share it, so they break ties alike.
template <class F>
void OptimalDp::for_each_choice(const detail::ChainTerms& terms, int i, int j, F&& f) const {
  auto save = [&](int v, const detail::SaveTerms& t, bool offload) {
    Choice c;
    c.variant = v;
    c.offload = offload;
    c.last = width_ - 1;
    c.ms = t.ms;
    c.lo = std::max(slots(t.forward), slots(t.backward));
    if (i + 1 < j) {
      c.keep = slots(t.keep);
      c.lo = std::max(c.lo, c.keep);
      c.rest = row(i + 1, j);
    }
    f(c);
  };
  auto checkpoint = [&](int k, const detail::CheckpointTerms& t, bool offload) {
    Choice c;
    c.split = k;
    c.offload = offload;
    c.last = width_ - 1;
    c.ms = t.ms;
    // Consumed bytes round up, released ones down (Note [optimal recurrence]).
    c.keep = t.keep >= t.released ? slots(t.keep - t.released)
                                  : -static_cast<int>(std::min<std::uint64_t>(
                                        (t.released - t.keep) / slot_bytes_, width_));
    c.base = slots(t.inner_base);
    c.lo = std::max({slots(t.forward), c.keep, c.base});
    c.rest = row(k, j);
    c.inner = row(i, k);
    f(c);
  };
  terms.for_each_first(i, j, save, checkpoint);
}

void OptimalDp::fill_row(const detail::ChainTerms& terms, int i, int j) {
  double* __restrict out = row(i, j);
  const int w = width_;
  // Three loops without branches inside, so the compiler vectorises them: this is all of
  // the O(L^3 * slots) work.
  for_each_choice(terms, i, j, [&](const Choice& c) {
    const double ms = c.ms;
    const double* rest = c.rest;
    const double* inner = c.inner;
    const int keep = c.keep, base = c.base;
    if (inner) {
      // Past `capped` the rest would have more slots than the table: it gets the last column.
      const int capped = std::max(c.lo, std::min(w, w + keep));
      for (int m = c.lo; m < capped; ++m) {
        out[m] = std::min(out[m], ms + rest[m - keep] + inner[m - base]);
      }
      for (int m = capped; m < w; ++m) {
        out[m] = std::min(out[m], ms + rest[w - 1] + inner[m - base]);
      }
    } else if (rest) {
      for (int m = c.lo; m < w; ++m) out[m] = std::min(out[m], ms + rest[m - keep]);
    } else {
      for (int m = c.lo; m < w; ++m) out[m] = std::min(out[m], ms);
    }
  });
}

std::int64_t OptimalDp::slots_within(std::uint64_t budget) const {
  const std::uint64_t start = start_bytes(chain_);
  if (budget < start) return -1;
  return static_cast<std::int64_t>((budget - start) / slot_bytes_);
}

double OptimalDp::best_ms(int m) const {
  if (m < 0) return kInf;
  return row(0, chain_.size())[std::min(m, width_ - 1)];
}

// ---- reconstruction -----------------------------------------------------------------------

std::optional<PlanNode> OptimalDp::plan(int m) const {
  if (m < 0 || best_ms(m) == kInf) return std::nullopt;
  m = std::min(m, width_ - 1);
  const detail::ChainTerms terms(chain_);
  auto choose = [&](int i, int j, int slots_left) {
    const double* r = row(i, j);
    // The least memory among equally fast plans: the row is non-increasing in m.
    while (slots_left > 0 && r[slots_left - 1] == r[slots_left]) --slots_left;
    detail::FirstNode<int> first;
    double best = kInf;
    for_each_choice(terms, i, j, [&](const Choice& c) {
      if (slots_left < c.lo) return;
      const double t = c.at(slots_left);
      if (t < best) {
        best = t;
        first.variant = c.variant;
        first.split = c.split;
        first.offload = c.offload;
        first.rest = c.rest_slots(slots_left);
        first.inner = slots_left - c.base;
      }
    });
    if (best == kInf) throw std::logic_error("OptimalDp: table and reconstruction disagree");
    return first;
  };
  return detail::root_of(chain_, detail::build_list(chain_, 0, chain_.size(), m, choose));
}

std::optional<PlanNode> optimal_dp_plan(const ChainCosts& chain, std::uint64_t budget,
                                        std::uint64_t slot_bytes) {
  if (budget < optimizer_step_peak(chain) || budget < start_bytes(chain)) return std::nullopt;
  const std::uint64_t u = std::max<std::uint64_t>(slot_bytes, 1);
  const std::uint64_t m = (budget - start_bytes(chain)) / u;
  if (m > static_cast<std::uint64_t>(std::numeric_limits<int>::max() - 1)) {
    throw std::length_error("optimal_dp_plan: too many slots for one table");
  }
  OptimalDp dp(chain, u, static_cast<int>(m));
  return dp.plan(static_cast<int>(m));
}

}  // namespace tidemark::planner
