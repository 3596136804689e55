// The runtime on a CUDA GPU (run where one is lent; they skip with a warning elsewhere):
// checkpoint plans keep the gradients (CUDA generator state restored for dropout), the
// CUDA caching allocator's reports give peaks the planner predicts, and profiles carry GPU
// stage times from CUPTI.
#include "catch.hpp"
#include "common/configs.hpp"
#include "common/profile_gpt.hpp"
#include "grads.hpp"
#include "tidemark/planner/solve.hpp"
#include "tidemark/runtime/profiling.hpp"

using namespace tidemark;
using namespace tidemark::runtime;
using tidemark::testing::gpt_config;

namespace {

bool skip_without_gpu() {
  if (torch::cuda::is_available()) return false;
  WARN("no CUDA GPU visible to LibTorch: skipped");
  return true;
}

ModelConfig on_cuda(ModelConfig c) {
  c.device = "cuda";
  return c;
}

}  // namespace

TEST_CASE("on CUDA every solver's plan gives the gradients of no checkpointing", "[torch][cuda]") {
  if (skip_without_gpu()) return;
  const ModelConfig c = on_cuda(gpt_config(4, 64, 4, 64, 4, 0.2));
  const ChainProfile profile = testing::profile_gpt(c, 1).profile;
  const planner::Chain chain = planner::chain_from_profile(profile);
  const std::uint64_t lo = planner::minimum_peak(chain);
  std::map<std::string, PlanNode> plans;
  for (planner::Solver s : planner::all_solvers()) {
    for (int i = 0; i < 4; ++i) {
      try {
        const auto cand = planner::solve(chain, s, lo + (profile.peak_bytes - lo) * static_cast<std::uint64_t>(i) / 3);
        plans.emplace(describe(cand.root), cand.root);
      } catch (const InfeasibleBudget&) {
      }
    }
  }
  REQUIRE(plans.size() >= 3);

  torch::manual_seed(11);
  GPT model(c);
  model->to(torch::kCUDA);
  model->train();
  auto idx = torch::randint(c.vocab, {c.batch, c.seq}, torch::kLong).to(torch::kCUDA);
  auto targets = torch::randint(c.vocab, {c.batch, c.seq}, torch::kLong).to(torch::kCUDA);
  auto run = [&](const PlanNode& root) {
    for (auto& p : model->parameters()) p.mutable_grad().reset();
    PlanExecutor ex(*model, root);
    torch::manual_seed(5);
    ex.forward(idx, StageContext{targets}).backward();
    return testing::grads_of(*model);
  };
  const auto plain = run(plan_no_checkpoint(model->num_stages()));
  for (const auto& [text, root] : plans) {
    const double diff = testing::max_relative_difference(plain, run(root));
    INFO(text << ": max relative difference " << diff);
    CHECK(diff < 1e-6);
  }
}

TEST_CASE("on CUDA the measured peak fits the budget and matches the prediction", "[torch][cuda]") {
  if (skip_without_gpu()) return;
  const ModelConfig c = on_cuda(gpt_config(4, 128, 4, 256, 8, 0.1));
  const ChainProfile profile = testing::profile_gpt(c, 2).profile;
  const planner::Chain chain = planner::chain_from_profile(profile);
  const std::uint64_t lo = planner::minimum_peak(chain);
  for (int i = 0; i < 5; ++i) {
    const std::uint64_t budget = lo + (profile.peak_bytes - lo) * static_cast<std::uint64_t>(i) / 4;
    const planner::Candidate best = planner::solve(chain, planner::Solver::Optimal, budget);
    TrainingConfig cfg;
    cfg.model = c;
    cfg.steps = 2;
    cfg.plan = best.root;
    Trainer trainer(cfg);
    std::int64_t measured = 0;
    for (const auto& s : trainer.train()) measured = std::max(measured, s.peak_bytes);
    INFO("budget " << budget << ", plan " << describe(best.root) << "\npredicted " << best.sim.peak_bytes
                   << ", measured " << measured);
    CHECK(static_cast<std::uint64_t>(measured) <= budget);
    CHECK(std::abs(static_cast<double>(measured) - static_cast<double>(best.sim.peak_bytes)) <=
          0.05 * static_cast<double>(measured));
  }
}

TEST_CASE("a CUDA profile times every stage on the GPU", "[torch][cuda]") {
  if (skip_without_gpu()) return;
  const ChainProfile p = testing::profile_gpt(on_cuda(gpt_config(3, 64, 4, 64, 4)), 2).profile;
  INFO("timing source " << p.timing);
  CHECK((p.timing == "cupti" || p.timing == "wall-synchronized"));
  for (const auto& l : p.layers) {
    INFO(l.name);
    CHECK(l.forward_ms > 0);
    CHECK(l.backward_ms > 0);
    CHECK(l.output_bytes > 0);
  }
}
