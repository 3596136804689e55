#pragma once
// Checks of train-with-plan shared by the CPU tests (test_plans.cpp) and the CUDA ones
// (test_cuda.cpp); the device is the config's.
#include <map>
#include <string>
#include <vector>

#include "catch.hpp"
#include "grads.hpp"
#include "tidemark/planner/solve.hpp"
#include "tidemark/runtime/trainer.hpp"

namespace tidemark::testing {

// n budgets evenly from the chain's feasible minimum to `peak`, both included.
inline std::vector<std::uint64_t> budgets_between(const planner::ChainCosts& chain, std::uint64_t peak, int n) {
  const std::uint64_t lo = planner::minimum_peak(chain);
  std::vector<std::uint64_t> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(lo + (peak - lo) * static_cast<std::uint64_t>(i) / static_cast<std::uint64_t>(n - 1));
  }
  return out;
}

// Every distinct plan any solver makes for those budgets (baselines that do not fit skipped).
inline std::map<std::string, PlanNode> plans_of_every_solver(const planner::ChainCosts& chain, std::uint64_t peak,
                                                             int n_budgets) {
  std::map<std::string, PlanNode> plans;
  for (planner::Solver s : planner::solvers_for(chain)) {
    for (std::uint64_t budget : budgets_between(chain, peak, n_budgets)) {
      try {
        planner::Candidate cand = planner::solve(chain, s, budget);
        plans.emplace(describe(cand.root), cand.root);
      } catch (const InfeasibleBudget&) {
        // a baseline that does not fit this budget
      }
    }
  }
  return plans;
}

// Every plan's gradients equal those of no checkpointing (same weights, batch and dropout
// draws), within `tolerance` max relative difference.
inline void check_plans_keep_gradients(const ModelConfig& c, const std::map<std::string, PlanNode>& plans,
                                       double tolerance) {
  const torch::Device device = runtime::resolve_device(c.device);
  torch::manual_seed(11);
  runtime::GPT model(c);
  model->to(device);
  model->train();
  auto idx = torch::randint(c.vocab, {c.batch, c.seq}, torch::kLong).to(device);
  auto targets = torch::randint(c.vocab, {c.batch, c.seq}, torch::kLong).to(device);
  auto run = [&](const PlanNode& root) {
    for (auto& p : model->parameters()) p.mutable_grad().reset();
    runtime::PlanExecutor ex(*model, root);
    torch::manual_seed(5);
    ex.forward({idx}, runtime::StageContext{targets}).at(0).backward();
    return grads_of(*model);
  };
  const auto plain = run(runtime::plan_no_checkpoint(model->num_stages()));
  for (const auto& [text, root] : plans) {
    const double diff = max_relative_difference(plain, run(root));
    INFO(text << ": max relative difference " << diff);
    CHECK(diff < tolerance);
  }
}

// Trains 2 steps with `best`: the measured peak is within the budget and within 5% of the
// plan's prediction.
inline void check_measured_peak(const ModelConfig& c, const planner::Candidate& best, std::uint64_t budget) {
  runtime::TrainingConfig cfg;
  cfg.model = c;
  cfg.steps = 2;
  cfg.plan = best.root;
  runtime::Trainer trainer(cfg);
  std::int64_t measured = 0;
  for (const auto& s : trainer.train()) measured = std::max(measured, s.peak_bytes);
  INFO(c.describe() << "\nbudget " << budget << ", plan " << describe(best.root) << "\npredicted "
                    << best.sim.peak_bytes << ", measured " << measured);
  CHECK(static_cast<std::uint64_t>(measured) <= budget);
  CHECK(std::abs(static_cast<double>(measured) - static_cast<double>(best.sim.peak_bytes)) <=
        0.05 * static_cast<double>(measured));
}

}  // namespace tidemark::testing
