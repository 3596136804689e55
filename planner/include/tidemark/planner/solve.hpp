#pragma once
// One entry point for every solver, by the names the command line takes.
//
// Note [optimal solver]
// `optimal` runs the slotted dynamic program (dp.hpp), then makes the answer robust to its
// rounding: it also tries the program's plans for a few slots above the budget (rounding
// makes some of them fit after all), the exact minimum-peak plan, and every baseline plan,
// and returns the fastest whose *simulated* peak fits. So it is never slower than a
// baseline that fits, and it finds a plan for every budget down to the exact minimum peak,
// which is therefore the minimum it reports.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tidemark/core/bytes.hpp"
#include "tidemark/core/plan.hpp"
#include "tidemark/core/profile.hpp"
#include "tidemark/planner/candidate.hpp"
#include "tidemark/planner/chain.hpp"
#include "tidemark/planner/dp.hpp"

namespace tidemark::planner {

enum class Solver { Optimal, Uniform, UniformOffload, EveryK, Sqrt, Revolve, None };

const char* to_string(Solver solver);
std::optional<Solver> solver_from_name(std::string_view name);
// Every solver, optimal first: the order of --solver's help and of the Pareto CSV.
const std::vector<Solver>& all_solvers();
// Those that can plan `chain`: all but uniform-offload where the profile measured no host
// link (the CPU).
std::vector<Solver> solvers_for(const ChainCosts& chain);

struct SolveOptions {
  int slots = 500;               // optimal: memory slots over the budget's dynamic part
  std::uint64_t slot_bytes = 0;  // optimal: a fixed slot size instead (0: from `slots`)
  int k = 0;                     // every-k: group size; 0 picks the fastest k that fits
};

// Refuses chains the solvers cannot handle (byte counts that could overflow, --slots that
// need more memory than is sensible), with a message saying what to change.
void check_solvable(const ChainCosts& chain, const SolveOptions& options);

// The plan `solver` makes for `budget` bytes. Throws InfeasibleBudget when its simulated
// peak cannot fit: below the exact minimum peak for optimal (the message gives it), or for
// a baseline whose plan peaks above the budget (the message says so and where optimal fits).
Candidate solve(const ChainCosts& chain, Solver solver, std::uint64_t budget,
                const SolveOptions& options = {});

// The plan `solver` makes for `budget` on the chain `profile` measured, complete: the
// profile's digest, model and stage count (so a plan for another model is refused), the
// prediction and the baselines. What `tidemark plan` writes. Throws InfeasibleBudget like
// solve().
Plan plan(const ChainProfile& profile, const Budget& budget, Solver solver = Solver::Optimal,
          const SolveOptions& options = {});

// Every plan a baseline solver may propose: one, or for every-k without k (k = 0) and for
// revolve, one per parameter value.
std::vector<Candidate> baseline_family(const ChainCosts& chain, Solver solver, int k = 0);
// Which of a family a solver proposes for `budget`: the fastest that fits, else the lowest
// peak.
const Candidate& pick_for_budget(const std::vector<Candidate>& family, std::uint64_t budget);
// Both in one, for `budget`, whether or not the result fits.
Candidate baseline_choice(const ChainCosts& chain, Solver solver, std::uint64_t budget, int k = 0);

// Everything `optimal` may choose from besides the dynamic program's own plans: the
// minimum-peak plan and every baseline plan. Independent of the budget.
std::vector<Candidate> fallback_candidates(const ChainCosts& chain);

// The optimal solver's table for budgets up to `budget`, with room above it for plans that
// rounding hid (up to rounding_bound, at most a quarter more slots). Throws UserError when the
// table would be unreasonably large (huge --slots).
OptimalDp optimal_table(const ChainCosts& chain, std::uint64_t budget, std::uint64_t slot_bytes);

// The slotted program's best plan for `budget` from a filled table: the fastest of its
// plans from the table's room above the budget's slot count down to it whose simulated
// peak fits (the one at the budget's own slot count always does).
std::vector<Candidate> dp_candidates(const ChainCosts& chain, const OptimalDp& dp, std::uint64_t budget);

}  // namespace tidemark::planner
