// Gradient checkpointing for your own LibTorch model, in your own training loop: the
// "custom training loop" method of Hugging Face's guide, plus tidemark's plans.
//
//   custom_loop [--steps N] [--budget FRACTION]
//
// 1. Wrap a torch::nn::Sequential (each module a stage) and its loss as a chain.
// 2. Profile it, and plan the fastest checkpointing whose peak fits the budget.
// 3. Train with the plan in a plain loop; compare with checkpointing every module.
#include <cstdlib>
#include <fmt/format.h>
#include <string>

#include "tidemark/core/bytes.hpp"
#include "tidemark/core/error.hpp"
#include "tidemark/planner/solve.hpp"
#include "tidemark/profiler/allocator_hook.hpp"
#include "tidemark/runtime/profiling.hpp"
#include "tidemark/runtime/sequential_chain.hpp"

using namespace tidemark;

namespace {

// A residual MLP block: the kind of stage whose activations dominate memory.
struct ResidualImpl : torch::nn::Module {
  explicit ResidualImpl(int64_t width) {
    up = register_module("up", torch::nn::Linear(width, 4 * width));
    down = register_module("down", torch::nn::Linear(4 * width, width));
    norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
  }
  torch::Tensor forward(const torch::Tensor& x) { return x + down(torch::gelu(up(norm(x)))); }
  torch::nn::Linear up{nullptr}, down{nullptr};
  torch::nn::LayerNorm norm{nullptr};
};
TORCH_MODULE(Residual);

torch::nn::Sequential make_net(int64_t width, int blocks) {
  torch::nn::Sequential net;
  net->push_back(torch::nn::Linear(16, width));
  for (int i = 0; i < blocks; ++i) net->push_back(Residual(width));
  net->push_back(torch::nn::Linear(width, 1));
  return net;
}

runtime::Batch make_batch(int step) {
  torch::manual_seed(1000 + step);
  auto x = torch::randn({2048, 16});
  auto y = (x.slice(1, 0, 4).sum(1, true) * x.slice(1, 4, 8).sum(1, true)).tanh();
  return {x, y};
}

}  // namespace

int run(int argc, char** argv) {
  int steps = 20;
  double fraction = 0.5;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--steps") steps = std::atoi(argv[i + 1]);
    if (flag == "--budget") fraction = std::atof(argv[i + 1]);
  }
  // Count live tensor bytes from before the model exists (Note [hook lifetime]).
  profiler::AllocatorHookGuard hook;
  runtime::tune_cpu_allocator();
  runtime::use_all_cores();
  torch::manual_seed(0);

  auto net = make_net(/*width=*/128, /*blocks=*/8);
  auto mse = [](const torch::Tensor& out, const torch::Tensor& y) { return torch::mse_loss(out, y); };
  runtime::SequentialChain chain(net, mse, "residual-mlp");
  torch::optim::AdamW opt(net->parameters(), torch::optim::AdamWOptions(1e-3));

  // 2. Profile and plan.
  runtime::ProfileSubject subject;
  subject.chain = &chain;
  subject.parameters = net->parameters();
  subject.buffers = net->buffers();
  subject.optimizer = &opt;
  subject.batch = make_batch;
  subject.model_name = chain.name();
  runtime::ProfileOptions po;
  po.warmup = 1;
  po.iters = 2;
  ChainProfile profile = runtime::profile_chain(subject, po).profile;
  planner::Chain costs = planner::chain_from_profile(profile);
  const std::uint64_t budget = static_cast<std::uint64_t>(fraction * static_cast<double>(profile.peak_bytes));
  planner::Candidate best = planner::solve(costs, planner::Solver::Optimal, budget);
  Plan plan;
  plan.solver = "optimal";
  plan.budget_bytes = budget;
  plan.layers = chain.num_stages();
  plan.digest = chain.digest();
  plan.model = chain.name();
  plan.root = best.root;
  plan.predicted = planner::predict(costs, best.root);
  fmt::print("no checkpointing: peak {}; budget {} -> plan {}\n", format_bytes(profile.peak_bytes),
             format_bytes(budget), describe(plan.root));

  // 3. Train: a plain loop, the chain wrapped with the plan.
  runtime::CheckpointedChain model(chain);
  auto train = [&](const char* label) {
    auto& ledger = profiler::ledger();
    std::int64_t peak = 0;
    double first = 0, last = 0;
    for (int step = 0; step < steps; ++step) {
      ledger.reset_step_peak();
      runtime::Batch b = make_batch(step);
      torch::Tensor loss = model.forward(b.idx, b.targets);
      loss.backward();
      opt.step();
      for (auto& p : net->parameters()) p.mutable_grad().reset();
      peak = std::max(peak, ledger.step_peak());
      (step == 0 ? first : last) = loss.item<double>();
    }
    fmt::print("{:<28} loss {:.4f} -> {:.4f}, peak {}\n", label, first, last,
               format_bytes(static_cast<std::uint64_t>(peak)));
    return peak;
  };
  model.use_plan(plan);
  const std::int64_t planned = train("with the plan");
  fmt::print("  predicted peak {}, budget {}: {}\n", format_bytes(plan.predicted.peak_bytes),
             format_bytes(budget), planned <= static_cast<std::int64_t>(budget) ? "within" : "OVER");
  model.gradient_checkpointing_enable();
  train("checkpointing every module");
  model.gradient_checkpointing_disable();
  train("no checkpointing");
  return planned <= static_cast<std::int64_t>(budget) ? 0 : 1;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const UserError& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 2;
  }
}
