// Offload to host memory (Note [offload runtime], runtime/offload.hpp) without a GPU: on the
// emulated CPU link the executor runs every offload the planner can choose, and the tests
// hold the gradients to no checkpointing and the measured device peak to the simulator.
// On CUDA the same checks run in test_cuda.cpp; on the CPU proper, offload is refused.
#include <algorithm>
#include <map>
#include <set>

#include "../cli/run.hpp"
#include "catch.hpp"
#include "common/configs.hpp"
#include "common/profile_gpt.hpp"
#include "plan_checks.hpp"
#include "tidemark/planner/baselines.hpp"
#include "tidemark/planner/candidate.hpp"
#include "tidemark/planner/simulator.hpp"
#include "tidemark/runtime/offload.hpp"

using namespace tidemark;
using namespace tidemark::runtime;
using tidemark::testing::gpt_config;

namespace {

struct EmulatedLink {
  EmulatedLink() { runtime::offload_testing::emulate_host_link_on_cpu(true); }
  ~EmulatedLink() { runtime::offload_testing::emulate_host_link_on_cpu(false); }
};

// `root` with every top-level save and checkpoint offloaded (a checkpoint of stage 0 excepted).
PlanNode offload_all(PlanNode root) {
  root = planner::with_checkpoint_inputs_offloaded(std::move(root));
  for (PlanNode& n : root.children) n.offload = n.offload || n.op == NodeOp::Save;
  return root;
}

// save 0, checkpoint [1, 2) offloaded, save [2, L-1) offloaded, save the head: both kinds at once.
PlanNode mixed(int stages) {
  PlanNode ck = PlanNode::checkpoint(1, 2, {PlanNode::save(1, 2)});
  ck.offload = true;
  PlanNode saved = PlanNode::save(2, stages - 1);
  saved.offload = true;
  return PlanNode::sequence(0, stages, {PlanNode::save(0, 1), ck, saved, PlanNode::save(stages - 1, stages)});
}

std::map<std::string, PlanNode> offload_plans(const ChainModule& chain) {
  const int n = chain.num_stages();
  std::map<std::string, PlanNode> plans;
  for (const PlanNode& p : {offload_all(plan_no_checkpoint(n)), offload_all(plan_uniform(chain)), mixed(n)}) {
    plans.emplace(describe(p), p);
  }
  return plans;
}

}  // namespace

TEST_CASE("offloaded plans give the gradients of no checkpointing, dropout included", "[torch][offload]") {
  EmulatedLink link;
  for (const ModelConfig& c : {gpt_config(3, 32, 2, 32, 3, 0.1),
                               testing::as_llama(gpt_config(3, 32, 4, 32, 2, 0.1), 2, "chunked")}) {
    INFO(c.describe());
    GPT model(c);
    testing::check_plans_keep_gradients(c, offload_plans(*model), 1e-6);
  }
}

TEST_CASE("offload frees the device bytes the simulator says, when it says", "[torch][offload]") {
  EmulatedLink link;
  for (const ModelConfig& c : {gpt_config(3, 64, 4, 64, 4, 0.1),
                               testing::as_llama(gpt_config(3, 64, 4, 64, 2, 0.1), 2, "chunked")}) {
    INFO(c.describe());
    const ChainProfile profile = testing::profile_gpt(c, 1).profile;
    REQUIRE(profile.host_link.measured());
    const planner::ChainCosts chain = planner::chain_from_profile(profile);
    GPT model(c);
    std::vector<planner::Candidate> candidates;
    for (const auto& [text, root] : offload_plans(*model)) candidates.push_back(planner::make_candidate(chain, root, text));
    // And what the optimal solver chooses at the lowest budgets, where it offloads.
    bool optimal_offloads = false;
    for (std::uint64_t budget : testing::budgets_between(chain, profile.peak_bytes, 4)) {
      planner::Candidate best = planner::solve(chain, planner::Solver::Optimal, budget);
      optimal_offloads = optimal_offloads || offloads(best.root);
      testing::check_measured_peak(c, best, budget);
    }
    CHECK(optimal_offloads);
    for (const planner::Candidate& cand : candidates) {
      CHECK(cand.sim.host_peak_bytes > 0);
      // A budget a little above the prediction: the check is that the measurement matches it.
      testing::check_measured_peak(c, cand, cand.sim.peak_bytes + cand.sim.peak_bytes / 50);
    }
    // Offloading the checkpoints' inputs reaches below what recompute alone reaches.
    planner::ChainCosts without = chain;
    without.d2h_bytes_per_ms = without.h2d_bytes_per_ms = 0;
    CHECK(planner::minimum_peak(chain) < planner::minimum_peak(without));
  }
}

// Hugging Face's gradient_checkpointing_kwargs={"offload": True}: every block checkpointed
// (the model's own layers, not the executor), each block's input in host memory.
TEST_CASE("Hugging Face's offload option trains like no checkpointing and peaks where uniform-offload predicts",
          "[torch][offload]") {
  EmulatedLink link;
  // Long sequences and few parameters: the blocks' inputs set uniform's peak, as at long context.
  const ModelConfig c = gpt_config(6, 32, 2, 256, 8, 0.1);
  auto run = [&](bool checkpointing, bool offload) {
    TrainingConfig cfg;
    cfg.model = c;
    cfg.steps = 3;
    cfg.gradient_checkpointing = checkpointing;
    cfg.gradient_checkpointing_kwargs.offload = offload;
    Trainer trainer(cfg);
    return trainer.train();
  };
  const auto plain = run(false, false);
  const auto uniform = run(true, false);
  const auto hf = run(true, true);
  std::int64_t uniform_peak = 0, hf_peak = 0;
  for (std::size_t i = 0; i < plain.size(); ++i) {
    CHECK(hf[i].loss == plain[i].loss);
    uniform_peak = std::max(uniform_peak, uniform[i].peak_bytes);
    hf_peak = std::max(hf_peak, hf[i].peak_bytes);
  }
  const planner::ChainCosts chain = planner::chain_from_profile(testing::profile_gpt(c, 1).profile);
  const Prediction predicted = planner::simulate(chain, planner::uniform_offload_plan(chain));
  INFO("uniform " << uniform_peak << ", uniform with offload " << hf_peak << " (predicted " << predicted.peak_bytes
                  << ")");
  CHECK(hf_peak < uniform_peak);
  CHECK(std::abs(static_cast<double>(hf_peak) - static_cast<double>(predicted.peak_bytes)) <=
        0.05 * static_cast<double>(hf_peak));
}

TEST_CASE("a trace shows offload's copies on their lanes and its host bytes", "[torch][offload]") {
  EmulatedLink link;
  const ModelConfig c = gpt_config(3, 32, 2, 32, 3, 0.1);
  GPT model(c);
  const PlanNode root = mixed(model->num_stages());  // checkpoint [1, 2) and save [2, 4) offloaded
  TrainingConfig cfg;
  cfg.model = c;
  cfg.steps = 2;
  cfg.plan = root;
  Trainer trainer(cfg);
  trainer.enable_trace();
  trainer.train();
  const Trace t = trainer.finish_trace();
  std::map<std::pair<int, Phase>, int> copies;
  for (const Span& s : t.spans) {
    if (is_copy(s.phase)) ++copies[{s.stage, s.phase}];
  }
  // Per step: stage 1's input once each way; stages 2 and 3 their storages, at least once.
  CHECK(copies[{1, Phase::CopyOut}] == 2);
  CHECK(copies[{1, Phase::CopyIn}] == 2);
  for (int k : {2, 3}) {
    CHECK(copies[{k, Phase::CopyOut}] >= 2);
    CHECK(copies[{k, Phase::CopyIn}] >= 2);
  }
  CHECK(copies.count({0, Phase::CopyOut}) == 0);
  REQUIRE(t.memory.has_host());
  const std::uint64_t most = *std::max_element(t.memory.host.begin(), t.memory.host.end());
  CHECK(most > 0);
  CHECK(t.memory.host.back() == 0);  // all back by the end
  // And it survives a write and a read.
  CHECK(trace_from_json(trace_to_json(t), "t.json").memory.host == t.memory.host);
}

TEST_CASE("on the CPU offload is refused with what to do instead", "[torch][offload]") {
  const ModelConfig c = gpt_config(2, 32, 2, 16, 2, 0.0);
  GPT model(c);
  try {
    PlanExecutor ex(*model, offload_all(plan_uniform(*model)));
    FAIL("an offloading plan ran on the CPU");
  } catch (const UserError& e) {
    CHECK(std::string(e.what()).find("needs a CUDA device") != std::string::npos);
  }
  CheckpointOptions options = CheckpointOptions::from_kwargs({{"offload", "true"}});
  CHECK(options.offload);
  CHECK_THROWS_AS(CheckpointOptions::from_kwargs({{"offload", "sometimes"}}), UnsupportedOption);
  auto x = torch::randn({4, 4}, torch::requires_grad());
  CHECK_THROWS_AS(checkpoint(options, [](const torch::Tensor& t) { return t * 2; }, x), UnsupportedOption);
  CHECK_FALSE(measure_host_link(torch::Device(torch::kCPU), 1 << 20).measured());

  // The CLI refuses before training: the option, and a plan that offloads.
  const std::string model_flags = "--layers 2 --d-model 32 --heads 2 --seq 16 --batch 2";
  testing::Run hf = testing::run_tidemark("train " + model_flags + " --steps 1 --gradient-checkpointing --gc-option offload=true");
  INFO(hf.output);
  CHECK(hf.rc == 2);
  CHECK(testing::error_lines(hf.output) == 1);
  CHECK(hf.output.find("--gc-option offload=true offloads to pinned host memory, which needs a CUDA device") !=
        std::string::npos);

  Plan plan;
  plan.solver = "optimal";
  plan.stages = model->num_stages();
  plan.digest = model->digest();
  plan.root = offload_all(plan_uniform(*model));
  const std::string path = testing::scratch_dir("offload-refused") + "/plan.json";
  write_plan(path, plan);
  testing::Run planned = testing::run_tidemark("train " + model_flags + " --steps 1 --plan " + path);
  INFO(planned.output);
  CHECK(planned.rc == 2);
  CHECK(testing::error_lines(planned.output) == 1);
  CHECK(planned.output.find("needs a CUDA device") != std::string::npos);
}

