#pragma once
// Budget sweep: predicted peak and step time of every solver from the feasible minimum to
// the no-checkpoint peak (`tidemark plan --pareto`).
#include <cstdint>
#include <string>
#include <vector>

#include "tidemark/planner/chain.hpp"
#include "tidemark/planner/solve.hpp"

namespace tidemark::planner {

struct ParetoRow {
  std::string solver;
  std::uint64_t budget_bytes = 0;
  bool fits = false;  // the solver's plan peaks within the budget
  std::uint64_t predicted_peak_bytes = 0;
  double predicted_step_ms = 0;
  double overhead_pct = 0;  // step time above the simulated no-checkpoint plan's
  std::string plan;         // describe(root)
};

// `points` budgets evenly spaced from the exact minimum peak to the larger of the measured
// and the simulated no-checkpoint peak; one row per budget and solver. The optimal solver
// uses one slot size for the whole sweep and picks, at each budget, the fastest plan found
// at any budget of the sweep that fits, so its predicted peak never rises as the budget
// falls.
std::vector<ParetoRow> pareto_sweep(const ChainCosts& chain, const SolveOptions& options,
                                    int points = 20);

// CSV with a header row; the plan column is quoted.
std::string pareto_csv(const std::vector<ParetoRow>& rows);

}  // namespace tidemark::planner
