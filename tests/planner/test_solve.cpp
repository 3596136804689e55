// The solver front door: names, options and error paths; the Pareto sweep.
#include <random>

#include "catch.hpp"
#include "common/fixtures.hpp"
#include "random_chain.hpp"
#include "tidemark/core/bytes.hpp"
#include "tidemark/core/error.hpp"
#include "tidemark/planner/brute_force.hpp"
#include "tidemark/planner/dp.hpp"
#include "tidemark/planner/pareto.hpp"
#include "tidemark/planner/solve.hpp"

using namespace tidemark;
using namespace tidemark::planner;

TEST_CASE("solver names round-trip", "[planner]") {
  for (Solver s : all_solvers()) CHECK(solver_from_name(to_string(s)) == s);
  CHECK_FALSE(solver_from_name("greedy"));
  CHECK(to_string(all_solvers().front()) == std::string("optimal"));
}

TEST_CASE("an infeasible budget names the minimum in bytes and against the measured peak",
          "[planner]") {
  ChainProfile p = testing::make_profile(4);
  const ChainCosts c = chain_from_profile(p);
  const std::uint64_t minimum = minimum_peak(c);
  try {
    solve(c, Solver::Optimal, minimum / 2);
    FAIL("accepted");
  } catch (const InfeasibleBudget& e) {
    const std::string what = e.what();
    CHECK(e.minimum_bytes() == minimum);
    CHECK(what.find(format_bytes(minimum)) != std::string::npos);
    CHECK(what.find("% of the profile's no-checkpoint peak") != std::string::npos);
  }
}

TEST_CASE("the optimizer step is a floor under every plan", "[planner]") {
  ChainCosts c = chain_from_profile(testing::make_profile(3));
  c.optimizer_peak = 1ull << 32;  // far above any activation peak
  CHECK(minimum_peak(c) == optimizer_step_peak(c));
  CHECK(simulate(c, none_plan(c)).peak_bytes == optimizer_step_peak(c));
  CHECK(solve(c, Solver::Optimal, minimum_peak(c)).sim.peak_bytes == minimum_peak(c));
  try {
    solve(c, Solver::Optimal, minimum_peak(c) - 1);
    FAIL("accepted");
  } catch (const InfeasibleBudget& e) {
    CHECK(std::string(e.what()).find("optimizer step") != std::string::npos);
  }
}

TEST_CASE("bad solver options are refused with what to change", "[planner]") {
  const ChainCosts c = chain_from_profile(testing::make_profile(2));
  SolveOptions zero;
  zero.slots = 0;
  CHECK_THROWS_WITH(solve(c, Solver::Optimal, c.measured_peak, zero),
                    Catch::Matchers::ContainsSubstring("--slots 0 must be at least 1"));
  SolveOptions huge;
  huge.slots = 2000000000;
  const ChainCosts long_chain = chain_from_profile(testing::make_profile(40));
  CHECK_THROWS_WITH(solve(long_chain, Solver::Optimal, 2 * minimum_peak(long_chain), huge),
                    Catch::Matchers::ContainsSubstring("lower --slots"));
  ChainCosts big = c;
  big.stages[1].variants[0].saved = std::uint64_t{1} << 62;
  CHECK_THROWS_WITH(solve(big, Solver::Optimal, c.measured_peak), Catch::Matchers::ContainsSubstring("1 EiB"));
  std::mt19937 rng(1);
  CHECK_THROWS_AS(BruteForce(testing::random_chain(rng, kMaxBruteForceStages + 1)), UserError);
}

TEST_CASE("the optimal plan of the GPT profile beats uniform and fits every budget", "[planner]") {
  const ChainCosts c = chain_from_profile(testing::make_profile(12));
  const Prediction uni = simulate(c, uniform_plan(c));
  const Candidate at_uniform = solve(c, Solver::Optimal, uni.peak_bytes);
  CHECK(at_uniform.sim.step_ms <= uni.step_ms);
  double previous = 0;
  for (double f = 1.0; f >= 0.3; f -= 0.05) {
    const auto budget = static_cast<std::uint64_t>(f * static_cast<double>(c.measured_peak));
    if (budget < minimum_peak(c)) break;
    const Candidate plan = solve(c, Solver::Optimal, budget);
    INFO("fraction " << f << ": " << describe(plan.root));
    CHECK(plan.fits(budget));
    CHECK(plan.sim.step_ms >= previous);  // less memory never buys time
    previous = plan.sim.step_ms;
  }
}

namespace {

void check_sweep(const ChainCosts& c, const SolveOptions& options) {
  const auto rows = pareto_sweep(c, options);
  const std::size_t solvers = solvers_for(c).size();
  REQUIRE(rows.size() % solvers == 0);
  REQUIRE(rows.size() >= solvers);
  CHECK(rows.front().budget_bytes == minimum_peak(c));
  const ParetoRow* previous = nullptr;
  for (std::size_t r = 0; r < rows.size(); r += solvers) {
    const ParetoRow& opt = rows[r];
    REQUIRE(opt.solver == "optimal");
    INFO("budget " << opt.budget_bytes << ": " << opt.plan);
    CHECK(opt.fits);
    CHECK(opt.predicted_peak_bytes <= opt.budget_bytes);
    if (previous) {
      CHECK(opt.budget_bytes > previous->budget_bytes);
      // Walking down the budgets, the optimal peak never rises and the time never falls.
      CHECK(previous->predicted_peak_bytes <= opt.predicted_peak_bytes);
      CHECK(previous->predicted_step_ms >= opt.predicted_step_ms);
    }
    for (std::size_t s = 1; s < solvers; ++s) {
      const ParetoRow& base = rows[r + s];
      CHECK(base.budget_bytes == opt.budget_bytes);
      CHECK(base.fits == (base.predicted_peak_bytes <= base.budget_bytes));
      if (base.fits) CHECK(opt.predicted_step_ms <= base.predicted_step_ms);
    }
    previous = &opt;
  }
  const ParetoRow& last = rows[rows.size() - solvers];
  CHECK(last.budget_bytes >= c.measured_peak);
  // No checkpointing fits at the top; a faster variant may beat it there.
  CHECK(last.overhead_pct <= 1e-9);
}

}  // namespace

TEST_CASE("the Pareto sweep's optimal front never rises as the budget falls", "[planner]") {
  check_sweep(chain_from_profile(testing::make_profile(12)), SolveOptions{});
  std::mt19937 rng(21);
  for (int n = 0; n < 100; ++n) {
    SolveOptions options;
    options.slots = n % 2 == 0 ? 500 : 7;
    const ChainCosts c = testing::random_chain(rng, 1 + n % 10, 100000);
    INFO("chain " << n);
    check_sweep(c, options);
  }
}

TEST_CASE("the Pareto CSV has a header and quotes the plan", "[planner]") {
  const ChainCosts c = chain_from_profile(testing::make_profile(3));
  const std::string csv = pareto_csv(pareto_sweep(c, SolveOptions{}));
  CHECK(csv.rfind(
            "solver,budget_bytes,fits,predicted_peak_bytes,predicted_step_ms,overhead_pct,plan\n",
            0) == 0);
  CHECK(csv.find("\nuniform,") != std::string::npos);
  CHECK(csv.find(",\"save[0,5)\"\n") != std::string::npos);
}

TEST_CASE("a variant timed no slower than its plain stage is taken only for the memory it frees", "[planner]") {
  ChainProfile p = testing::make_profile(3);
  for (std::size_t k = 1; k + 1 < p.stages.size(); ++k) {
    auto& b = p.stages[k];
    // A cheap rebuild measured under the timing noise, and one that costs.
    b.variants.push_back(StageVariant{"noise", b.saved_bytes / 2, b.forward_peak_bytes, b.backward_peak_bytes,
                                      b.backward_peak_bytes, b.forward_ms, b.backward_ms - 0.05});
    b.variants.push_back(StageVariant{"tie", b.saved_bytes / 2, b.forward_peak_bytes, b.backward_peak_bytes,
                                      b.backward_peak_bytes, b.forward_ms, b.backward_ms});
    b.variants.push_back(StageVariant{"costs", b.saved_bytes / 3, b.forward_peak_bytes, b.backward_peak_bytes,
                                      b.backward_peak_bytes, b.forward_ms, b.backward_ms + 0.5});
  }
  const ChainCosts c = chain_from_profile(p);
  for (int k = 1; k + 1 < c.size(); ++k) {
    const auto& s = c.stages[static_cast<std::size_t>(k)];
    const auto& plain = p.stages[static_cast<std::size_t>(k)];
    REQUIRE(s.variants.size() == 4);
    for (int i : {1, 2}) {  // "noise" and "tie": the plain stage's times and the floor
      CHECK(s.variants[i].forward_ms == plain.forward_ms);
      CHECK(s.variants[i].backward_ms == plain.backward_ms + kRebuildFloorMs);
    }
    CHECK(s.variants[3].backward_ms == plain.backward_ms + 0.5);
  }
  // With every byte to spare the plan keeps everything: no variant is predicted as fast, so
  // the DP's tie rule (less memory) never picks one. With a byte less, the plan is slower
  // than no checkpointing.
  const Prediction none = simulate(c, none_plan(c));
  const double none_ms = none.step_ms;
  const Candidate full = solve(c, Solver::Optimal, none.peak_bytes);
  INFO(describe(full.root));
  CHECK(describe(full.root) == describe(none_plan(c)));
  const Candidate tight = solve(c, Solver::Optimal, none.peak_bytes - 1);
  INFO(describe(tight.root));
  CHECK(tight.sim.step_ms > none_ms);
}
