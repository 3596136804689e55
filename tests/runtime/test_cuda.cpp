// The runtime on a CUDA GPU (run where one is lent; they skip with a warning elsewhere):
// checkpoint plans keep the gradients (CUDA generator state restored for dropout), the
// CUDA caching allocator's reports give peaks the planner predicts, and profiles carry GPU
// stage times from CUPTI.
#include "catch.hpp"
#include "common/configs.hpp"
#include "common/profile_gpt.hpp"
#include "plan_checks.hpp"
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
  const auto plans = testing::plans_of_every_solver(planner::chain_from_profile(profile), profile.peak_bytes, 4);
  REQUIRE(plans.size() >= 3);
  testing::check_plans_keep_gradients(c, plans, 1e-6);
}

TEST_CASE("on CUDA the measured peak fits the budget and matches the prediction", "[torch][cuda]") {
  if (skip_without_gpu()) return;
  const ModelConfig c = on_cuda(gpt_config(4, 128, 4, 256, 8, 0.1));
  const ChainProfile profile = testing::profile_gpt(c, 2).profile;
  const planner::ChainCosts chain = planner::chain_from_profile(profile);
  for (std::uint64_t budget : testing::budgets_between(chain, profile.peak_bytes, 5)) {
    testing::check_measured_peak(c, planner::solve(chain, planner::Solver::Optimal, budget), budget);
  }
}

TEST_CASE("a CUDA profile times every stage on the GPU", "[torch][cuda]") {
  if (skip_without_gpu()) return;
  const ChainProfile p = testing::profile_gpt(on_cuda(gpt_config(3, 64, 4, 64, 4)), 2).profile;
  INFO("timing source " << p.timing);
  CHECK((p.timing == "cupti" || p.timing == "wall-synchronized"));
  for (const auto& l : p.stages) {
    INFO(l.name);
    CHECK(l.forward_ms > 0);
    CHECK(l.backward_ms > 0);
    CHECK(l.output_bytes > 0);
  }
}

// Offload on its real link (Note [offload runtime]): pinned buffers, side streams, events.
// The same checks as test_offload.cpp's on the emulated CPU link.
TEST_CASE("on CUDA offloaded plans keep the gradients, and their peaks match the prediction", "[torch][cuda][offload]") {
  if (skip_without_gpu()) return;
  const ModelConfig c = on_cuda(gpt_config(4, 128, 4, 256, 8, 0.1));
  const ChainProfile profile = testing::profile_gpt(c, 2).profile;
  REQUIRE(profile.host_link.measured());
  INFO("host link " << profile.host_link.d2h_bytes_per_ms / 1e6 << " GB/s out, " << profile.host_link.h2d_bytes_per_ms / 1e6
                    << " GB/s in");
  const planner::ChainCosts chain = planner::chain_from_profile(profile);
  std::map<std::string, PlanNode> plans;
  const planner::Candidate hf = planner::baseline_choice(chain, planner::Solver::UniformOffload, profile.peak_bytes);
  plans.emplace(describe(hf.root), hf.root);
  for (std::uint64_t budget : testing::budgets_between(chain, profile.peak_bytes, 4)) {
    const planner::Candidate best = planner::solve(chain, planner::Solver::Optimal, budget);
    plans.emplace(describe(best.root), best.root);
    testing::check_measured_peak(c, best, budget);
  }
  testing::check_measured_peak(c, hf, hf.sim.peak_bytes + hf.sim.peak_bytes / 50);
  testing::check_plans_keep_gradients(c, plans, 1e-6);
}
