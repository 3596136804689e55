#pragma once
// A tidemark session in your own training loop: the memory hook, profiling, per-step peaks
// and traces (tidemark/tidemark.hpp shows the whole loop).
//
// Note [gradients between steps]
// A profile measures steps that begin with no gradients (zero_grad(set_to_none), LibTorch
// 2.x's default). LibTorch 1.13's optimizer.zero_grad() zeroes gradients and keeps them, so
// a loop using it carries every parameter's gradient into the next forward, over the plan's
// predicted peak by the gradients' bytes (issue 16). A Step owns the reset instead: it
// frees the optimizer's gradients when it begins, so the budget holds whichever way the
// loop resets them. For gradient accumulation, make one Step per optimizer step and run
// every micro-batch's forward and backward inside it.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <torch/torch.h>
#include <vector>

#include "tidemark/core/bytes.hpp"
#include "tidemark/core/plan.hpp"
#include "tidemark/core/profile.hpp"
#include "tidemark/core/trace.hpp"
#include "tidemark/profiler/allocator_hook.hpp"
#include "tidemark/runtime/own_model.hpp"
#include "tidemark/runtime/profiling.hpp"

namespace tidemark::profiler {
class StageRecorder;
}

namespace tidemark::runtime {

class TraceSession;
class Session;

// A session used out of order: made after the model, a second one, a step left open.
class SessionError : public UserError {
 public:
  using UserError::UserError;
};

// One training step, from its construction to its end (end() or the destructor).
class Step {
 public:
  Step(Step&&) noexcept;
  Step& operator=(Step&&) = delete;
  ~Step();
  // Ends the step (recording its peak and trace); later calls do nothing.
  void end();
  // The live-bytes peak of the step (allocator hook): so far, or once ended, its whole.
  std::int64_t peak_bytes() const;
  int index() const { return index_; }

 private:
  friend class Session;
  Step(Session* session, int index) : session_(session), index_(index) {}
  Session* session_;
  int index_;
  std::int64_t peak_ = 0;  // once ended
};

class Session {
 public:
  // Counts tensor memory on `device` from now on. Make it first, before the model or any
  // tensor on that device exists (Note [hook lifetime]): what exists before is not seen, and
  // the session refuses to profile or step a model whose parameters it did not see made.
  // One session per process at a time. On the CPU it also keeps freed memory in the heap
  // (tune_cpu_allocator, Note [CPU allocator] in trainer.hpp): without it every step pays
  // page faults on every large activation, step times swing by 30%, and a plan is timed by
  // how much it allocates rather than what it computes, as the profile did not measure.
  explicit Session(const torch::Device& device = torch::kCPU);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Measures `chain` (which must end with its loss) training with `optimizer` on
  // batches(0), batches(1), ...: per-stage bytes and times for tidemark::plan, the same
  // tidemark.profile/1 `tidemark profile` writes. Runs options.warmup + options.iters
  // steps, which update the parameters like training steps do.
  ChainProfile profile(Chain& chain, torch::optim::Optimizer& optimizer,
                       const std::function<Batch(int)>& batches, ProfileOptions options = {});
  // profile(), then the fastest plan whose predicted peak fits `budget` (planner::plan):
  // the plan carries the profile's no-checkpoint peak and step time as its baseline.
  Plan plan(Chain& chain, torch::optim::Optimizer& optimizer, const std::function<Batch(int)>& batches,
            const Budget& budget, ProfileOptions options = {});

  // Records a trace of the steps that follow: stage spans, checkpoint and recompute spans,
  // memory by category. trace() returns it; tidemark view and tidemark export read it.
  void record_trace(Chain& chain, torch::optim::Optimizer& optimizer);
  Trace trace();

  // Begins a training step: frees the optimizer's gradients (Note [gradients between
  // steps]) and starts the step's peak.
  Step step(torch::optim::Optimizer& optimizer);
  // The largest step peak so far.
  std::int64_t peak_bytes() const { return peak_; }
  const torch::Device& device() const { return device_; }

 private:
  friend class Step;
  void end_step(int index);
  void check_seen(const std::vector<torch::Tensor>& parameters, const char* what) const;

  torch::Device device_;
  profiler::AllocatorHookGuard hook_;
  Chain* traced_ = nullptr;
  std::unique_ptr<profiler::StageRecorder> recorder_;
  std::unique_ptr<TraceSession> trace_;
  std::int64_t live_at_start_ = 0;  // the ledger is process-wide: count from here
  int steps_ = 0;
  int open_step_ = -1;
  std::int64_t peak_ = 0;
};

}  // namespace tidemark::runtime
