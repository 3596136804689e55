#pragma once
// The optimal checkpoint plan of a heterogeneous chain: a dynamic program in the manner of
// rotor (Beaumont et al., "Optimal checkpointing for heterogeneous chains"), derived from
// the simulator's Note [execution model] so that a plan it calls feasible is feasible there.
//
// Note [optimal recurrence]
// Opt(i, j, m): least stage time of a node list over [i, j) whose peak stays within m
// bytes above the live level at the list's start, where a_i is live and the gradient of
// a_j is held for the whole list. Lists ending before L are inner lists of a checkpoint
// (their output is dropped after their forward); lists ending at L are top-level suffixes
// (the loss is kept, and its gradient, live from the start of the step, is freed by the
// backward of the last node). The first node of the list is either
//   A. save stage i with a variant, then the list [i+1, j), or
//   B. checkpoint [i, k) for i < k < j, then the list [k, j), then in backward the
//      checkpoint's inner list over [i, k) with the rest's gradients live.
// A checkpoint covering the whole rest of its list is never needed: the same inner list
// run directly reaches the same state with no extra no-grad forward and no higher peak
// (the brute-force solver, which does enumerate such trees, checks this).
// The byte terms of each case are in src/chain_terms.hpp.
//
// Memory is counted in slots of `slot_bytes`. Every term a choice consumes is rounded up
// and the amount available rounded down, so the slotted program never under-counts. Each
// of the at most L terms on a path of the recursion loses less than a slot, so the plan it
// finds is at least as fast as the exact optimum at budget - rounding_bound().
#include <cstdint>
#include <optional>
#include <vector>

#include "tidemark/core/plan.hpp"
#include "tidemark/planner/chain.hpp"

namespace tidemark::planner {

namespace detail {
class ChainTerms;
}

// Live bytes at the start of a step: resident plus the loss gradient (Note [execution model]).
std::uint64_t start_bytes(const ChainCosts& chain);

// Peak of the optimizer step. Every plan ends the backward pass at the same live level, so
// this is a floor under every plan's peak.
std::uint64_t optimizer_step_peak(const ChainCosts& chain);

// The exact smallest simulated peak any plan reaches (no slots), and a plan reaching it.
// O(L^3) times the number of variants.
std::uint64_t minimum_peak(const ChainCosts& chain);
PlanNode minimum_peak_plan(const ChainCosts& chain);

// Slot size giving `slots` slots over the dynamic part of `budget` (above start_bytes).
std::uint64_t slot_bytes_for(const ChainCosts& chain, std::uint64_t budget, int slots);

// How much below the budget the slotted program may lose: (L + 1) slots.
std::uint64_t rounding_bound(const ChainCosts& chain, std::uint64_t slot_bytes);

// The time table of Note [optimal recurrence] for m = 0 .. max_slots slots, filled once in
// O(L^3 * max_slots); one table answers every budget up to max_slots slots (the Pareto
// sweep uses that).
class OptimalDp {
 public:
  // Keeps a reference to `chain`, which must outlive the table.
  OptimalDp(const ChainCosts& chain, std::uint64_t slot_bytes, int max_slots);

  std::uint64_t slot_bytes() const { return slot_bytes_; }
  int max_slots() const { return width_ - 1; }
  // Slots available under `budget` (rounded down), -1 when the budget is below the start
  // level. Not capped at max_slots().
  std::int64_t slots_within(std::uint64_t budget) const;
  // Least stage time (ms, without the chain's fixed time) over plans whose slotted need is
  // within m slots; +infinity when none is. Non-increasing in m.
  double best_ms(int m) const;
  // The plan reaching best_ms(m), choosing the least memory among equally fast ones;
  // nullopt when there is none. Consecutive saves with one variant are merged.
  std::optional<PlanNode> plan(int m) const;

  // Bytes the table needs for `stages` stages and `max_slots` slots, to refuse huge
  // --slots before allocating.
  static std::uint64_t table_bytes(int stages, int max_slots);

 private:
  double* row(int i, int j);
  const double* row(int i, int j) const;
  template <class F>
  void for_each_choice(const detail::ChainTerms& terms, int i, int j, F&& f) const;
  void fill_row(const detail::ChainTerms& terms, int i, int j);
  int slots(std::uint64_t bytes) const;

  const ChainCosts& chain_;
  std::uint64_t slot_bytes_;
  int width_;
  std::vector<double> table_;  // width_ slots per list (i, j), 0 <= i < j <= L; see row()
};

// The slotted program alone, for one budget: the fastest plan whose slotted need fits, or
// nullopt. Its simulated peak is within the budget.
std::optional<PlanNode> optimal_dp_plan(const ChainCosts& chain, std::uint64_t budget,
                                        std::uint64_t slot_bytes);

}  // namespace tidemark::planner
