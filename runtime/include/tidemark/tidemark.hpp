#pragma once
// tidemark for your own LibTorch model and training loop: the one header to include, with
// the one CMake target tidemark::tidemark.
//
//   tidemark::Session session;                          // 1. first: counts memory from here on
//   auto model = MyModel(...);  torch::optim::AdamW opt(model->parameters(), ...);
//   tidemark::Chain chain("my-model");                  // 2. the model as stages
//   chain.add("embed", model->embed, [&](const Tensor& ids) { return model->embed(ids); });
//   chain.add_each<BlockImpl>("block", model->blocks, [](BlockImpl& b, const Tensor& x) { return b.forward(x); });
//   chain.add_loss([&](const Tensor& x, const Tensor& y) { return loss_fn(model->head(x), y); });
//   auto profile = session.profile(chain, opt, next_batch);                  // 3. measure
//   auto plan = tidemark::plan(profile, tidemark::Budget::fraction(0.5));    // 4. plan
//   chain.use(plan);                                                         // 5. run it
//   for (int i = 0; i < steps; ++i) {
//     auto step = session.step(opt);                    // 6. frees gradients, measures the peak
//     chain.forward(next_batch(i)).backward();
//     opt.step();
//   }
//
// The pieces:
//   Chain           stages from a Sequential, a ModuleList, or any callables (own_model.hpp)
//   Activations     what one stage hands the next: any number of tensors
//   StageContext    what every stage of a step reads besides: targets, masks, any value
//   Batch           one step's inputs, targets and context tensors
//   Session, Step   memory hook, profile, per-step peak, traces (session.hpp)
//   Budget, plan    the fastest plan under a budget, complete and checked (planner)
//   checkpoint      checkpoint(fn, inputs...) by hand, as torch.utils.checkpoint
//   save, load      plans (tidemark.plan/1) and profiles (tidemark.profile/1) as files
//
// Errors, all UserError (message says what to change): ChainError (a chain that cannot run
// as built), PlanMismatch (a plan for another chain), InfeasibleBudget (below what any plan
// reaches; carries the minimum), SessionError (a session used out of order).
#include "tidemark/core/bytes.hpp"
#include "tidemark/core/error.hpp"
#include "tidemark/core/plan.hpp"
#include "tidemark/core/profile.hpp"
#include "tidemark/core/trace.hpp"
#include "tidemark/planner/solve.hpp"
#include "tidemark/runtime/checkpoint.hpp"
#include "tidemark/runtime/own_model.hpp"
#include "tidemark/runtime/session.hpp"

namespace tidemark {

using runtime::Activations;
using runtime::Batch;
using runtime::Chain;
using runtime::ChainError;
using runtime::PlanMismatch;
using runtime::SessionError;
using runtime::checkpoint;
using runtime::CheckpointOptions;
using runtime::ProfileOptions;
using runtime::Session;
using runtime::Stage;
using runtime::StageContext;
using runtime::Step;
using planner::Solver;

// The fastest plan (Solver::Optimal, or another solver for comparison) whose predicted peak
// fits `budget`, complete: digest, model, stage count and prediction filled in, so that
// Chain::use refuses it for another model. Throws InfeasibleBudget, naming the smallest
// budget that fits, when none does.
inline Plan plan(const ChainProfile& profile, const Budget& budget, Solver solver = Solver::Optimal) {
  return planner::plan(profile, budget, solver);
}

// Files, written atomically (a temporary name, then renamed).
inline void save(const std::string& path, const Plan& plan) { write_plan(path, plan); }
inline void save(const std::string& path, const ChainProfile& profile) { write_profile(path, profile); }
inline void save(const std::string& path, const Trace& trace) { write_trace(path, trace); }
inline Plan load_plan(const std::string& path) { return read_plan(path); }
inline ChainProfile load_profile(const std::string& path) { return read_profile(path); }

}  // namespace tidemark
