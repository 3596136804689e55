// Baseline schedules: their shapes, and their refusal when they do not fit.
#include <random>

#include "catch.hpp"
#include "common/fixtures.hpp"
#include "random_chain.hpp"
#include "tidemark/core/bytes.hpp"
#include "tidemark/core/error.hpp"
#include "tidemark/planner/baselines.hpp"
#include "tidemark/planner/dp.hpp"
#include "tidemark/planner/plan_text.hpp"
#include "tidemark/planner/solve.hpp"

using namespace tidemark;
using namespace tidemark::planner;

TEST_CASE("baselines checkpoint blocks only, in the documented shapes", "[planner]") {
  const ChainCosts c = chain_from_profile(testing::make_profile(6));  // embedding, 6 blocks, head
  CHECK(describe(none_plan(c)) == "save[0,8)");
  CHECK(describe(uniform_plan(c)) ==
        "save[0,1) ckpt[1,2){save[1,2)} ckpt[2,3){save[2,3)} ckpt[3,4){save[3,4)} "
        "ckpt[4,5){save[4,5)} ckpt[5,6){save[5,6)} ckpt[6,7){save[6,7)} save[7,8)");
  CHECK(describe(every_k_plan(c, 4)) ==
        "save[0,1) ckpt[1,5){save[1,5)} ckpt[5,7){save[5,7)} save[7,8)");
  CHECK(sqrt_group_size(c) == 3);
  CHECK(describe(sqrt_plan(c)) == "save[0,1) ckpt[1,4){save[1,4)} ckpt[4,7){save[4,7)} save[7,8)");
  // One snapshot: Griewank's quadratic schedule, nested left to right.
  CHECK(describe(revolve_plan(c, 1)) ==
        "save[0,1) ckpt[1,6){ckpt[1,5){ckpt[1,4){ckpt[1,3){ckpt[1,2){save[1,2)} save[2,3)} "
        "save[3,4)} save[4,5)} save[5,6)} save[6,8)");
  for (const Candidate& r : revolve_candidates(c)) {
    INFO(r.origin << ": " << describe(r.root));
    CHECK_NOTHROW(validate_plan_tree(r.root, c.size(), "revolve"));
  }
  // More snapshots: less recompute.
  CHECK(simulate(c, revolve_plan(c, 3)).recompute_ms <
        simulate(c, revolve_plan(c, 1)).recompute_ms);
}

TEST_CASE("a chain without blocks is treated as all blocks", "[planner]") {
  std::mt19937 rng(3);
  ChainCosts c = testing::random_chain(rng, 4);
  for (auto& s : c.stages) s.kind = "layer";
  CHECK(describe(uniform_plan(c)) ==
        "ckpt[0,1){save[0,1)} ckpt[1,2){save[1,2)} ckpt[2,3){save[2,3)} ckpt[3,4){save[3,4)}");
}

TEST_CASE("uniform is Hugging Face's every-block checkpointing", "[planner]") {
  const ChainCosts c = chain_from_profile(testing::make_profile(4));
  const Prediction none = simulate(c, none_plan(c));
  const Prediction uni = simulate(c, uniform_plan(c));
  CHECK(uni.peak_bytes < none.peak_bytes);
  double extra = 0;
  for (const auto& st : c.stages) {
    if (st.kind == "block") extra += st.nograd_ms;
  }
  CHECK(uni.step_ms == Approx(none.step_ms + extra));
}

TEST_CASE("every-k without k picks the fastest k that fits", "[planner]") {
  const ChainCosts c = chain_from_profile(testing::make_profile(8));
  const std::uint64_t budget = simulate(c, every_k_plan(c, 2)).peak_bytes;
  const Candidate chosen = baseline_choice(c, Solver::EveryK, budget);
  CHECK(chosen.fits(budget));
  for (const Candidate& k : every_k_candidates(c)) {
    if (k.fits(budget)) CHECK(chosen.sim.step_ms <= k.sim.step_ms);
  }
}

TEST_CASE("a baseline that does not fit is refused with its peak and where optimal fits",
          "[planner]") {
  const ChainCosts c = chain_from_profile(testing::make_profile(6));
  const Prediction uni = simulate(c, uniform_plan(c));
  const std::uint64_t budget = uni.peak_bytes - 1;
  REQUIRE(budget >= minimum_peak(c));
  try {
    solve(c, Solver::Uniform, budget);
    FAIL("uniform was accepted above its budget");
  } catch (const InfeasibleBudget& e) {
    const std::string what = e.what();
    CHECK(what.find(format_bytes(uni.peak_bytes)) != std::string::npos);
    CHECK(what.find("--solver optimal fits budgets from " + format_bytes(minimum_peak(c))) !=
          std::string::npos);
  }
  CHECK(solve(c, Solver::Optimal, budget).fits(budget));
  CHECK_THROWS_AS(solve(c, Solver::None, budget), InfeasibleBudget);
  SolveOptions k2;
  k2.k = 2;
  CHECK_THROWS_AS(solve(c, Solver::EveryK, minimum_peak(c), k2), InfeasibleBudget);
}

TEST_CASE("plans are described with stage names, alike segments folded", "[planner]") {
  const ChainCosts c = chain_from_profile(testing::make_profile(6));
  const auto uni = describe_plan(c, uniform_plan(c));
  REQUIRE(uni.size() == 3);
  CHECK(uni[0] == "save embedding");
  CHECK(uni[1] == "checkpoint block.0-block.5 as 6 segments of 1 stage (inner: save)");
  CHECK(uni[2] == "save head");
  const auto rev = describe_plan(c, revolve_plan(c, 2));
  CHECK(rev[0] == "save embedding");
  CHECK(rev[1].rfind("checkpoint block.", 0) == 0);
  CHECK(describe_node(c, every_k_plan(c, 4).children[1]) ==
        "checkpoint block.0-block.3 (inner: save)");
  PlanNode nested = PlanNode::checkpoint(
      1, 5, {PlanNode::save(1, 3), PlanNode::checkpoint(3, 5, {PlanNode::save(3, 5, "x")})});
  CHECK(describe_node(c, nested) ==
        "checkpoint block.0-block.3 (inner: save block.0-block.1, checkpoint block.2-block.3 "
        "(inner: save (variant x)))");
}
