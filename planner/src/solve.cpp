// Dispatch by solver name, and the optimal solver's robust choice (Note [optimal solver]).
//
// Sections: names; input checks; baselines; optimal.
#include "tidemark/planner/solve.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <limits>
#include <stdexcept>

#include "tidemark/core/bytes.hpp"
#include "tidemark/core/error.hpp"
#include "tidemark/planner/baselines.hpp"
#include "tidemark/planner/dp.hpp"

namespace tidemark::planner {

// ---- names ------------------------------------------------------------------------------

const char* to_string(Solver solver) {
  switch (solver) {
    case Solver::Optimal:
      return "optimal";
    case Solver::Uniform:
      return "uniform";
    case Solver::UniformOffload:
      return "uniform-offload";
    case Solver::EveryK:
      return "every-k";
    case Solver::Sqrt:
      return "sqrt";
    case Solver::Revolve:
      return "revolve";
    case Solver::None:
      return "none";
  }
  return "?";
}

const std::vector<Solver>& all_solvers() {
  static const std::vector<Solver> solvers{Solver::Optimal, Solver::Uniform, Solver::UniformOffload,
                                           Solver::EveryK,  Solver::Sqrt,    Solver::Revolve,
                                           Solver::None};
  return solvers;
}

std::vector<Solver> solvers_for(const ChainCosts& chain) {
  std::vector<Solver> out;
  for (Solver s : all_solvers()) {
    if (s != Solver::UniformOffload || chain.can_offload()) out.push_back(s);
  }
  return out;
}

std::optional<Solver> solver_from_name(std::string_view name) {
  for (Solver s : all_solvers()) {
    if (name == to_string(s)) return s;
  }
  return std::nullopt;
}

// ---- input checks -----------------------------------------------------------------------

namespace {

// The planner adds byte counts in 64 bits; a profile whose sizes together pass this could
// overflow a sum and make an infeasible plan look feasible.
constexpr double kMaxTotalBytes = 1152921504606846976.0;  // 2^60 = 1 EiB

// The dynamic program's table above this is a mistake in --slots, not a plan worth waiting for.
constexpr std::uint64_t kMaxTableBytes = std::uint64_t{4} << 30;
constexpr std::uint64_t kMaxSlots = std::uint64_t{1} << 28;

std::string percent_of_peak(const ChainCosts& chain, std::uint64_t bytes) {
  if (chain.measured_peak == 0) return "";
  return fmt::format(", {:.1f}% of the profile's no-checkpoint peak {}",
                     100.0 * static_cast<double>(bytes) / static_cast<double>(chain.measured_peak),
                     format_bytes(chain.measured_peak));
}

// " (as a fraction: --budget 0.413)": the smallest fraction in thousandths that resolves to
// at least `bytes`, for users who give fractions; empty when no fraction in (0, 1] does.
std::string fraction_hint(const ChainCosts& chain, std::uint64_t bytes) {
  if (chain.measured_peak == 0) return "";
  const double peak = static_cast<double>(chain.measured_peak);
  double f = std::ceil(1000.0 * static_cast<double>(bytes) / peak) / 1000.0;
  if (std::floor(f * peak) < static_cast<double>(bytes)) f += 0.001;
  if (f > 1.0) return "";
  return fmt::format(" (as a fraction: --budget {:.3f})", f);
}

}  // namespace

void check_solvable(const ChainCosts& chain, const SolveOptions& options) {
  if (chain.size() < 1) throw UserError("profile: has zero stages; a profile needs at least one");
  double total = static_cast<double>(chain.resident) + static_cast<double>(chain.optimizer_peak);
  for (const StageCost& s : chain.stages) {
    total += static_cast<double>(s.input) + static_cast<double>(s.out) +
             static_cast<double>(s.param) + static_cast<double>(s.nograd_peak);
    for (const VariantCost& v : s.variants) {
      total += static_cast<double>(v.saved) + static_cast<double>(v.forward_peak) +
               static_cast<double>(v.backward_peak) + static_cast<double>(v.held_extra);
    }
  }
  if (total > kMaxTotalBytes) {
    throw UserError(fmt::format(
        "profile: its byte counts add up to {:.3g} bytes, more than the planner counts exactly "
        "(1 EiB); check the *_bytes fields of the profile",
        total));
  }
  if (options.slots < 1) {
    throw UserError(fmt::format("--slots {} must be at least 1 (default 500)", options.slots));
  }
}

// ---- baselines --------------------------------------------------------------------------

std::vector<Candidate> baseline_family(const ChainCosts& chain, Solver solver, int k) {
  switch (solver) {
    case Solver::None:
      return {make_candidate(chain, none_plan(chain), "none")};
    case Solver::Uniform:
      return {make_candidate(chain, uniform_plan(chain), "uniform")};
    case Solver::UniformOffload:
      if (!chain.can_offload()) {
        throw UserError(
            "--solver uniform-offload keeps every checkpoint's input in pinned host memory, "
            "which needs a CUDA device: this profile measured no host link (it was made on the "
            "CPU); profile on a CUDA device, or use --solver uniform");
      }
      return {make_candidate(chain, uniform_offload_plan(chain), "uniform-offload")};
    case Solver::Sqrt:
      return {make_candidate(chain, sqrt_plan(chain),
                             fmt::format("sqrt k={}", sqrt_group_size(chain)))};
    case Solver::EveryK:
      if (k > 0) {
        return {make_candidate(chain, every_k_plan(chain, k), fmt::format("every-k k={}", k))};
      }
      return every_k_candidates(chain);
    case Solver::Revolve:
      return revolve_candidates(chain);
    case Solver::Optimal:
      break;
  }
  throw std::logic_error("baseline_family: not a baseline solver");
}

const Candidate& pick_for_budget(const std::vector<Candidate>& family, std::uint64_t budget) {
  const Candidate* c = fastest_within(family, budget);
  return *(c ? c : lowest_peak(family));
}

Candidate baseline_choice(const ChainCosts& chain, Solver solver, std::uint64_t budget, int k) {
  return pick_for_budget(baseline_family(chain, solver, k), budget);
}

std::vector<Candidate> fallback_candidates(const ChainCosts& chain) {
  std::vector<Candidate> pool;
  pool.push_back(make_candidate(chain, minimum_peak_plan(chain), "minimum-peak plan"));
  // uniform and sqrt are every-k plans
  for (Solver s : {Solver::None, Solver::EveryK, Solver::Revolve}) {
    for (Candidate& c : baseline_family(chain, s, 0)) pool.push_back(std::move(c));
  }
  if (chain.can_offload()) {
    for (Candidate& c : baseline_family(chain, Solver::UniformOffload, 0)) pool.push_back(std::move(c));
  }
  return pool;
}

// ---- optimal ----------------------------------------------------------------------------

OptimalDp optimal_table(const ChainCosts& chain, std::uint64_t budget, std::uint64_t slot_bytes) {
  const std::uint64_t start = start_bytes(chain);
  const std::uint64_t own = budget > start ? (budget - start) / slot_bytes : 0;
  // Room above the budget for the plans rounding hid (dp_candidates): the rounding bound,
  // but at most a quarter more work, since most of that loss is recovered in a few slots.
  const std::uint64_t room =
      std::min<std::uint64_t>(chain.size() + 1, std::max<std::uint64_t>(own / 4, 8));
  const std::uint64_t slots = own + room;
  const std::uint64_t bytes = slots < kMaxSlots
                                  ? OptimalDp::table_bytes(chain.size(), static_cast<int>(slots))
                                  : std::numeric_limits<std::uint64_t>::max();
  if (bytes > kMaxTableBytes) {
    throw UserError(fmt::format(
        "the optimal solver would need {} slots of {} for this budget, a table of more than {} "
        "for {} stages; lower --slots (the default 500 is plenty for a plan)",
        slots, format_bytes(slot_bytes), format_bytes(kMaxTableBytes), chain.size()));
  }
  return OptimalDp(chain, slot_bytes, static_cast<int>(slots));
}

std::vector<Candidate> dp_candidates(const ChainCosts& chain, const OptimalDp& dp,
                                     std::uint64_t budget) {
  std::vector<Candidate> out;
  const std::int64_t own = dp.slots_within(budget);
  if (own < 0) return out;
  const std::int64_t top = std::min<std::int64_t>(own + chain.size() + 1, dp.max_slots());
  const std::string origin =
      fmt::format("dynamic program, slots of {}", format_bytes(dp.slot_bytes()));
  // From the most slots down, fastest first: the first plan that fits is the best here.
  // Equal times mean the same plan (plan() takes the least memory among equals).
  double previous = std::numeric_limits<double>::quiet_NaN();
  for (std::int64_t m = top; m >= 0; --m) {
    const double ms = dp.best_ms(static_cast<int>(m));
    if (std::isinf(ms)) break;
    if (ms == previous) continue;
    previous = ms;
    Candidate c = make_candidate(chain, *dp.plan(static_cast<int>(m)), origin);
    if (c.fits(budget)) {
      out.push_back(std::move(c));
      break;
    }
    if (m <= own) {
      throw std::logic_error(fmt::format(
          "the dynamic program's plan for {} slots peaks at {} bytes in the simulator, above "
          "the budget of {} bytes: the program and the simulator disagree",
          m, c.sim.peak_bytes, budget));
    }
  }
  return out;
}

namespace {

Candidate solve_optimal(const ChainCosts& chain, std::uint64_t budget, const SolveOptions& options) {
  const std::uint64_t minimum = minimum_peak(chain);
  if (budget < minimum) {
    std::string why;
    if (minimum == optimizer_step_peak(chain)) {
      why =
          " (the optimizer step alone peaks there: parameters, gradients and optimizer "
          "state)";
    }
    throw InfeasibleBudget(
        fmt::format("budget {} ({} bytes) is below the smallest peak any checkpoint plan "
                    "reaches: {} ({} bytes{}){}; raise --budget to at least that{}",
                    format_bytes(budget), budget, format_bytes(minimum), minimum,
                    percent_of_peak(chain, minimum), why, fraction_hint(chain, minimum)),
        minimum);
  }
  const std::uint64_t slot =
      options.slot_bytes > 0 ? options.slot_bytes : slot_bytes_for(chain, budget, options.slots);
  const OptimalDp dp = optimal_table(chain, budget, slot);
  std::vector<Candidate> pool = dp_candidates(chain, dp, budget);
  for (Candidate& c : fallback_candidates(chain)) pool.push_back(std::move(c));
  const Candidate* best = fastest_within(pool, budget);
  if (!best) throw std::logic_error("optimal: the minimum-peak plan does not fit its own peak");
  return *best;
}

}  // namespace

Candidate solve(const ChainCosts& chain, Solver solver, std::uint64_t budget,
                const SolveOptions& options) {
  check_solvable(chain, options);
  if (solver == Solver::Optimal) return solve_optimal(chain, budget, options);
  Candidate c = baseline_choice(chain, solver, budget, options.k);
  if (!c.fits(budget)) {
    const std::uint64_t minimum = minimum_peak(chain);
    const bool parametrised =
        (solver == Solver::EveryK && options.k == 0) || solver == Solver::Revolve;
    throw InfeasibleBudget(
        fmt::format("--solver {} {}peaks at {} ({} bytes) in simulation, above the budget {} "
                    "({} bytes); --solver optimal fits budgets from {}{}",
                    to_string(solver),
                    parametrised ? fmt::format("at its lowest ({}) ", c.origin) : "",
                    format_bytes(c.sim.peak_bytes), c.sim.peak_bytes, format_bytes(budget), budget,
                    format_bytes(minimum), percent_of_peak(chain, minimum)),
        c.sim.peak_bytes);
  }
  return c;
}

Plan plan(const ChainProfile& profile, const Budget& budget, Solver solver, const SolveOptions& options) {
  const ChainCosts chain = chain_from_profile(profile);
  const std::uint64_t budget_bytes = budget.resolve(profile.peak_bytes);
  const Candidate chosen = solve(chain, solver, budget_bytes, options);
  Plan p;
  p.solver = to_string(solver);
  p.budget_bytes = budget_bytes;
  p.stages = chain.size();
  p.digest = profile.digest;
  p.model = profile.model;
  p.sharding = profile.sharding;
  p.root = chosen.root;
  p.predicted = chosen.sim;
  p.baseline_peak_bytes = profile.peak_bytes;
  p.baseline_step_ms = profile.step_ms;
  return p;
}

}  // namespace tidemark::planner
