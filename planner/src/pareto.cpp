// Budget sweep for `tidemark plan --pareto` (pareto.hpp).
#include "tidemark/planner/pareto.hpp"

#include <algorithm>
#include <fmt/format.h>

#include "tidemark/planner/baselines.hpp"
#include "tidemark/planner/dp.hpp"

namespace tidemark::planner {

std::vector<ParetoRow> pareto_sweep(const ChainCosts& chain, const SolveOptions& options, int points) {
  check_solvable(chain, options);
  points = std::max(points, 2);
  const Candidate none = make_candidate(chain, none_plan(chain), "none");
  const std::uint64_t lower = minimum_peak(chain);
  const std::uint64_t upper = std::max({chain.measured_peak, none.sim.peak_bytes, lower});

  std::vector<std::uint64_t> budgets;
  for (int p = 0; p < points; ++p) {
    // In 128 bits: exact, so the last budget is the upper end itself.
    const auto offset = static_cast<unsigned __int128>(upper - lower) * p / (points - 1);
    const std::uint64_t b = lower + static_cast<std::uint64_t>(offset);
    if (budgets.empty() || b != budgets.back()) budgets.push_back(b);
  }

  // One slot size and one table for the whole sweep; every budget's plans join one pool,
  // and each budget takes the fastest of the pool that fits, ties to the lower peak. A plan
  // that fits a budget fits every larger one, so the chosen peak cannot rise as the budget
  // falls (were it to, the lower-peak plan would have been as fast and chosen instead).
  const std::uint64_t slot =
      options.slot_bytes > 0 ? options.slot_bytes : slot_bytes_for(chain, upper, options.slots);
  const OptimalDp dp = optimal_table(chain, upper, slot);
  std::vector<Candidate> optimal = fallback_candidates(chain);
  for (std::uint64_t b : budgets) {
    for (Candidate& c : dp_candidates(chain, dp, b)) optimal.push_back(std::move(c));
  }

  const std::vector<Solver> solvers = solvers_for(chain);
  std::vector<std::vector<Candidate>> families;
  for (Solver s : solvers) {
    const int k = s == Solver::EveryK ? options.k : 0;
    families.push_back(s == Solver::Optimal ? std::move(optimal) : baseline_family(chain, s, k));
  }

  std::vector<ParetoRow> rows;
  for (std::uint64_t b : budgets) {
    for (std::size_t s = 0; s < families.size(); ++s) {
      const Candidate& c = pick_for_budget(families[s], b);
      ParetoRow r;
      r.solver = to_string(solvers[s]);
      r.budget_bytes = b;
      r.fits = c.fits(b);
      r.predicted_peak_bytes = c.sim.peak_bytes;
      r.predicted_step_ms = c.sim.step_ms;
      r.overhead_pct = none.sim.step_ms > 0
                           ? 100.0 * (c.sim.step_ms - none.sim.step_ms) / none.sim.step_ms
                           : 0.0;
      r.plan = describe(c.root);
      rows.push_back(std::move(r));
    }
  }
  return rows;
}

std::string pareto_csv(const std::vector<ParetoRow>& rows) {
  std::string out =
      "solver,budget_bytes,fits,predicted_peak_bytes,predicted_step_ms,overhead_pct,plan\n";
  for (const ParetoRow& r : rows) {
    std::string plan;
    for (char ch : r.plan) plan += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    out +=
        fmt::format("{},{},{},{},{:.4f},{:.2f},\"{}\"\n", r.solver, r.budget_bytes, r.fits ? 1 : 0,
                    r.predicted_peak_bytes, r.predicted_step_ms, r.overhead_pct, plan);
  }
  return out;
}

}  // namespace tidemark::planner
