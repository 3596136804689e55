// The optimal dynamic program against the brute-force reference on random chains.
#include <random>

#include "catch.hpp"
#include "random_chain.hpp"
#include "tidemark/core/error.hpp"
#include "tidemark/planner/brute_force.hpp"
#include "tidemark/planner/dp.hpp"
#include "tidemark/planner/solve.hpp"

using namespace tidemark;
using namespace tidemark::planner;
using tidemark::testing::random_between;
using tidemark::testing::random_chain;

namespace {

// Many short chains and a few of 7 stages, where the brute force walks 231,168 trees (and
// a few times more with a variant).
ChainCosts random_test_chain(std::mt19937& rng, int index) {
  if (index % 40 == 39) return random_chain(rng, 7, 1000, 1);
  return random_chain(rng, std::uniform_int_distribution<int>(1, 6)(rng));
}

// The same with a host link: every top-level node may also offload. Bandwidths are powers
// of two, so copy times are exact in binary and ties stay ties.
ChainCosts random_offload_chain(std::mt19937& rng, int index) {
  ChainCosts c = random_chain(rng, index % 25 == 24 ? 6 : std::uniform_int_distribution<int>(1, 5)(rng));
  const double link[] = {0.25, 0.5, 1, 2, 8};
  c.d2h_bytes_per_ms = link[std::uniform_int_distribution<int>(0, 4)(rng)];
  c.h2d_bytes_per_ms = link[std::uniform_int_distribution<int>(0, 4)(rng)];
  c.measured_peak = simulate(c, none_plan(c)).peak_bytes;
  return c;
}

}  // namespace

TEST_CASE("the brute force walks every tree, checkpoints over the rest of a list included",
          "[planner]") {
  std::mt19937 rng(10);
  // Lists over n stages: a first node over k stages (a save if k == 1, or a checkpoint over
  // any inner list but itself) and then a list over n - k: 2, 8, 48, 352, 2880 trees.
  const std::size_t expected[] = {2, 8, 48, 352, 2880};
  for (int n = 1; n <= 5; ++n) {
    ChainCosts c = random_chain(rng, n, 1000, 0);
    CHECK(BruteForce(c).plans() == expected[n - 1]);
    c.stages[0].variants.push_back(c.stages[0].variants[0]);
    c.stages[0].variants.back().name = "twin";
    CHECK(BruteForce(c).plans() > expected[n - 1]);
  }
}

// One brute force per chain serves every check: it is most of the run time. On chain c the
// exact minimum peak is the brute force's; at both ends and `random_budgets` budgets between
// them, the 1-byte-slot program's plan fits and is as fast as the brute force's best, and
// `extra(budget, plan)` checks more; nothing fits below the minimum.
template <class Extra>
void check_program_is_brute_force_optimum(const ChainCosts& c, std::mt19937& rng, int random_budgets,
                                          Extra&& extra) {
  const BruteForce bf(c);
  INFO(c.size() << " stages, " << bf.plans() << " trees, host link " << c.d2h_bytes_per_ms << "/"
                << c.h2d_bytes_per_ms << " bytes per ms");
  CHECK(minimum_peak(c) == bf.minimum_peak());
  CHECK(simulate(c, minimum_peak_plan(c)).peak_bytes == bf.minimum_peak());
  const std::uint64_t lo = bf.minimum_peak();
  const std::uint64_t hi = std::max(lo, c.measured_peak);
  std::vector<std::uint64_t> budgets{lo, hi};
  for (int b = 0; b < random_budgets; ++b) budgets.push_back(random_between(rng, lo, hi));
  for (std::uint64_t budget : budgets) {
    INFO("budget " << budget << " in [" << lo << ", " << hi << "]");
    const auto plan = optimal_dp_plan(c, budget, 1);
    REQUIRE(plan);
    const Prediction sim = simulate(c, *plan);
    const auto best = bf.fastest_within(budget);
    REQUIRE(best);
    INFO("dp " << describe(*plan) << " vs brute force " << describe(best->root));
    CHECK(sim.peak_bytes <= budget);
    CHECK(sim.step_ms == best->sim.step_ms);
    extra(budget, *plan);
  }
  if (lo > 0) CHECK_FALSE(optimal_dp_plan(c, lo - 1, 1));
}

TEST_CASE(
    "with 1-byte slots the dynamic program's plan is the brute-force optimum, and the "
    "exact minimum peak is the brute force's",
    "[planner][exhaustive]") {
  std::mt19937 rng(12);
  for (int n = 0; n < 200; ++n) {
    INFO("chain " << n);
    check_program_is_brute_force_optimum(random_test_chain(rng, n), rng, 6, [](std::uint64_t, const PlanNode&) {});
  }
}

TEST_CASE(
    "with coarse slots the plan fits and is no slower than the optimum at the budget "
    "less the rounding bound",
    "[planner][exhaustive]") {
  std::mt19937 rng(13);
  const int slot_counts[] = {3, 10, 50, 500};
  for (int n = 0; n < 150; ++n) {
    const ChainCosts c = random_test_chain(rng, n);
    const BruteForce bf(c);
    const std::uint64_t lo = bf.minimum_peak();
    const std::uint64_t hi = std::max(lo, c.measured_peak);
    for (int b = 0; b < 6; ++b) {
      const std::uint64_t budget = random_between(rng, lo, hi + hi / 4);
      const int slots = slot_counts[b % 4];
      const std::uint64_t slot = slot_bytes_for(c, budget, slots);
      const std::uint64_t bound = rounding_bound(c, slot);
      INFO("chain " << n << ", " << c.size() << " stages, budget " << budget << ", " << slots
                    << " slots of " << slot << " bytes, rounding bound " << bound);
      const auto plan = optimal_dp_plan(c, budget, slot);
      if (plan) CHECK(simulate(c, *plan).peak_bytes <= budget);
      if (lo > 0) {
        const std::uint64_t below = random_between(rng, 0, lo - 1);
        CHECK_FALSE(optimal_dp_plan(c, below, slot_bytes_for(c, below, slots)));
      }
      const auto reference = budget >= bound ? bf.fastest_within(budget - bound) : std::nullopt;
      if (reference) {
        REQUIRE(plan);
        CHECK(simulate(c, *plan).step_ms <= reference->sim.step_ms);
      }

      // The solver around the program: fits, never slower than the program alone, never
      // faster than the exact optimum.
      SolveOptions options;
      options.slots = slots;
      const Candidate chosen = solve(c, Solver::Optimal, budget, options);
      CHECK(chosen.fits(budget));
      if (plan) CHECK(chosen.sim.step_ms <= simulate(c, *plan).step_ms);
      CHECK(chosen.sim.step_ms >= bf.fastest_within(budget)->sim.step_ms);
    }
  }
}

TEST_CASE("the optimal solver refuses exactly the budgets below the minimum peak", "[planner]") {
  std::mt19937 rng(14);
  for (int n = 0; n < 100; ++n) {
    const ChainCosts c = random_test_chain(rng, n);
    const std::uint64_t minimum = minimum_peak(c);
    for (int slots : {1, 7, 500}) {
      SolveOptions options;
      options.slots = slots;
      INFO("chain " << n << ", minimum " << minimum << ", " << slots << " slots");
      CHECK(solve(c, Solver::Optimal, minimum, options).sim.peak_bytes == minimum);
      if (minimum == 0) continue;
      try {
        solve(c, Solver::Optimal, minimum - 1, options);
        FAIL("a budget below the minimum was accepted");
      } catch (const InfeasibleBudget& e) {
        CHECK(e.minimum_bytes() == minimum);
      }
    }
  }
}

TEST_CASE("no baseline that fits is faster than the optimal solver", "[planner]") {
  std::mt19937 rng(15);
  for (int n = 0; n < 200; ++n) {
    const ChainCosts c = random_test_chain(rng, n);
    const std::uint64_t lo = minimum_peak(c);
    const std::uint64_t hi = std::max(lo, c.measured_peak);
    for (int b = 0; b < 4; ++b) {
      const std::uint64_t budget = random_between(rng, lo, hi);
      for (int slots : {5, 500}) {
        SolveOptions options;
        options.slots = slots;
        const Candidate best = solve(c, Solver::Optimal, budget, options);
        for (Solver s : solvers_for(c)) {
          if (s == Solver::Optimal) continue;
          const Candidate base = baseline_choice(c, s, budget);
          INFO("chain " << n << ", budget " << budget << ", " << slots << " slots, " << to_string(s)
                        << " " << describe(base.root) << " vs optimal " << describe(best.root));
          if (base.fits(budget)) CHECK(best.sim.step_ms <= base.sim.step_ms);
        }
      }
    }
  }
}

TEST_CASE("the program's best time falls as the slots grow and picks a variant when it pays",
          "[planner]") {
  std::mt19937 rng(16);
  const ChainCosts c = random_chain(rng, 12, 100000);
  const std::uint64_t budget = (minimum_peak(c) + c.measured_peak) / 2;
  const OptimalDp dp(c, slot_bytes_for(c, budget, 500), 500);
  for (int m = 1; m <= 500; ++m) CHECK(dp.best_ms(m) <= dp.best_ms(m - 1));

  // A stage whose variant needs no memory and no time beats its plain form everywhere.
  ChainCosts v = random_chain(rng, 3, 1000);
  v.stages[1].variants.resize(1);
  v.stages[1].variants[0].forward_ms += 1;
  VariantCost free;
  free.name = "free";
  v.stages[1].variants.push_back(free);
  const auto plan = optimal_dp_plan(v, minimum_peak(v), 1);
  REQUIRE(plan);
  CHECK(describe(*plan).find("<free>") != std::string::npos);
}

TEST_CASE("with checkpoint state bytes the optimal plan still fits the simulator",
          "[planner][exhaustive]") {
  std::mt19937 rng(77);
  for (int n = 0; n < 150; ++n) {
    ChainCosts c = random_chain(rng, std::uniform_int_distribution<int>(2, 7)(rng), 1000, 1);
    c.checkpoint_state = random_between(rng, 1, 200);
    const std::uint64_t minimum = minimum_peak(c);
    INFO("chain " << n << ", r " << c.checkpoint_state << ", minimum " << minimum);
    CHECK(simulate(c, minimum_peak_plan(c)).peak_bytes == minimum);
    for (int b = 0; b < 4; ++b) {
      const std::uint64_t budget = random_between(rng, minimum, std::max(minimum, c.measured_peak));
      const Candidate best = solve(c, Solver::Optimal, budget);
      CHECK(best.sim.peak_bytes <= budget);
      // The program counts r conservatively (at most 2r per nesting level): it is as fast
      // as the exact brute force given that much less budget.
      if (c.size() <= 5) {
        const BruteForce bf(c);
        const std::uint64_t slack = 2 * c.checkpoint_state * static_cast<std::uint64_t>(c.size());
        if (budget >= minimum + slack) {
          if (auto tighter = bf.fastest_within(budget - slack)) {
            CHECK(best.sim.step_ms <= tighter->sim.step_ms);
          }
        }
        REQUIRE(bf.fastest_within(budget));
        CHECK(bf.fastest_within(budget)->sim.step_ms <= best.sim.step_ms);
      }
    }
  }
}

TEST_CASE(
    "with a host link the program's plans, offload included, are the brute-force optimum, "
    "and so is the minimum peak",
    "[planner][exhaustive][offload]") {
  std::mt19937 rng(19);
  int offloading = 0;
  for (int n = 0; n < 150; ++n) {
    INFO("chain " << n);
    const ChainCosts c = random_offload_chain(rng, n);
    check_program_is_brute_force_optimum(c, rng, 5, [&](std::uint64_t budget, const PlanNode& plan) {
      offloading += offloads(plan);
      // Coarse slots stay within the budget, and the solver never loses to uniform-offload.
      const Candidate solved = solve(c, Solver::Optimal, budget, SolveOptions{5});
      CHECK(solved.sim.peak_bytes <= budget);
      const Candidate hf = baseline_choice(c, Solver::UniformOffload, budget);
      if (hf.fits(budget)) CHECK(solved.sim.step_ms <= hf.sim.step_ms);
    });
  }
  // The link is fast enough often enough that offloading wins somewhere.
  CHECK(offloading > 50);
}
