// Train with the plan (issue: train-with-plan): every solver's plan gives the plain
// gradients, and plans under six budgets keep the measured peak under the budget and within
// 5% of the prediction. Small random configurations, dropout on.
#include <random>
#include <set>

#include "catch.hpp"
#include "common/configs.hpp"
#include "common/profile_gpt.hpp"
#include "grads.hpp"
#include "tidemark/planner/solve.hpp"
#include "tidemark/runtime/profiling.hpp"

using namespace tidemark;
using namespace tidemark::runtime;
using tidemark::testing::grads_of;
using tidemark::testing::max_relative_difference;

namespace {

ModelConfig random_config(std::mt19937& rng) {
  auto pick = [&](std::initializer_list<std::int64_t> xs) {
    return *(xs.begin() + std::uniform_int_distribution<size_t>(0, xs.size() - 1)(rng));
  };
  ModelConfig c;
  c.layers = pick({2, 3, 4, 5});
  c.d_model = pick({32, 48, 64});
  c.heads = c.d_model == 48 ? pick({2, 3}) : pick({2, 4});
  c.seq = pick({16, 32, 48});
  c.batch = pick({2, 3});
  c.dropout = 0.1 + 0.1 * static_cast<double>(pick({0, 1, 2}));
  c.seed = static_cast<std::uint64_t>(pick({1, 2, 3}));
  return c;
}

ChainProfile profile_of(const ModelConfig& c) { return testing::profile_gpt(c, /*iters=*/1).profile; }

std::vector<std::uint64_t> six_budgets(const planner::Chain& chain, std::uint64_t peak) {
  const std::uint64_t lo = planner::minimum_peak(chain);
  std::vector<std::uint64_t> out;
  for (int i = 0; i < 6; ++i) out.push_back(lo + (peak - lo) * static_cast<std::uint64_t>(i) / 5);
  return out;
}

}  // namespace

TEST_CASE("the plan of every solver gives the gradients of no checkpointing", "[torch][plan]") {
  std::mt19937 rng(2024);
  for (int round = 0; round < 3; ++round) {
    const ModelConfig c = random_config(rng);
    INFO(c.describe());
    const ChainProfile profile = profile_of(c);
    const planner::Chain chain = planner::chain_from_profile(profile);
    std::map<std::string, PlanNode> plans;
    for (planner::Solver s : planner::all_solvers()) {
      for (std::uint64_t budget : six_budgets(chain, profile.peak_bytes)) {
        try {
          planner::Candidate cand = planner::solve(chain, s, budget);
          plans.emplace(describe(cand.root), cand.root);
        } catch (const InfeasibleBudget&) {
          // a baseline that does not fit this budget
        }
      }
    }
    REQUIRE(plans.size() >= 3);

    torch::manual_seed(11);
    GPT model(c);
    model->train();
    auto idx = torch::randint(c.vocab, {c.batch, c.seq}, torch::kLong);
    auto targets = torch::randint(c.vocab, {c.batch, c.seq}, torch::kLong);
    auto run = [&](const PlanNode& root) {
      for (auto& p : model->parameters()) p.mutable_grad().reset();
      PlanExecutor ex(*model, root);
      torch::manual_seed(5);
      ex.forward(idx, StageContext{targets}).backward();
      return grads_of(*model);
    };
    const auto plain = run(plan_no_checkpoint(model->num_stages()));
    for (const auto& [text, root] : plans) {
      INFO(text);
      CHECK(max_relative_difference(plain, run(root)) < 1e-6);
    }
  }
}

TEST_CASE("under six budgets the measured peak fits and matches the prediction", "[torch][plan]") {
  // Shapes where activations, not the optimizer step, set the peak, so the budgets between
  // the minimum and the no-checkpoint peak call for different plans.
  using testing::gpt_config;
  for (const ModelConfig& c : {gpt_config(4, 32, 4, 64, 4, 0.1), gpt_config(3, 48, 3, 48, 3, 0.2)}) {
    const ChainProfile profile = profile_of(c);
    const planner::Chain chain = planner::chain_from_profile(profile);
    std::set<std::string> distinct;
    for (std::uint64_t budget : six_budgets(chain, profile.peak_bytes)) {
      const planner::Candidate best = planner::solve(chain, planner::Solver::Optimal, budget);
      distinct.insert(describe(best.root));
      TrainingConfig cfg;
      cfg.model = c;
      cfg.steps = 2;
      cfg.plan = best.root;
      Trainer trainer(cfg);
      std::int64_t measured = 0;
      for (const auto& s : trainer.train()) measured = std::max(measured, s.peak_bytes);
      INFO(c.describe() << "\nbudget " << budget << ", plan " << describe(best.root) << "\npredicted "
                        << best.sim.peak_bytes << ", measured " << measured);
      CHECK(static_cast<std::uint64_t>(measured) <= budget);
      CHECK(std::abs(static_cast<double>(measured) - static_cast<double>(best.sim.peak_bytes)) <=
            0.05 * static_cast<double>(measured));
    }
    CHECK(distinct.size() >= 3);  // the budgets really asked for different plans
  }
}
