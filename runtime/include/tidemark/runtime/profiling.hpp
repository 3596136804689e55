#pragma once
// `tidemark profile`: measure a model's chain (tidemark.profile/1) by running real training
// steps with stage markers, plus a forward without autograd recording per iteration (what a
// checkpoint's first forward costs).
//
// Note [what a profile measures]
// Each number is measured where the runtime will incur it, relative to the live bytes just
// before the operation (profile.hpp), so the planner's simulator can compose them:
//  - forward (grad mode): output bytes from the output tensor, saved = live growth - output,
//    peak above the live level before the stage;
//  - forward without grad: the peak above the level before the stage;
//  - backward: from the moment the gradient of the stage's output is complete (an identity
//    autograd node on every stage output fires then) to the next such moment;
//  - static: parameters and buffers, optimizer state (after warm-up steps created it), the
//    batch; `other` is whatever else was live when the step began;
//  - optimizer: clipping, AdamW step and zero_grad, relative to the level after backward.
// Times are medians over --iters, bytes the maxima (a plan must fit every step).
//
// Note [pooled stage times]
// A stage's time is a few milliseconds to a few hundred measured a handful of times, and on
// a shared machine one sample can be off by 10% or more, about what a selective-recompute
// variant costs. Stages whose memory signature is identical (kind, output, saved, peaks,
// parameter bytes: the blocks of a transformer) run the same kernels on the same shapes, so
// their samples are pooled and each gets the median of the pool: 8 blocks x 3 iterations
// give 24 samples per median instead of 3. A stage that differs in any byte count keeps
// its own samples.
#include <functional>
#include <optional>

#include "tidemark/core/profile.hpp"
#include "tidemark/core/trace.hpp"
#include "tidemark/runtime/trainer.hpp"

namespace tidemark::runtime {

struct ProfileOptions {
  int warmup = 2;
  int iters = 3;
  bool trace = false;  // also record a trace of the measured iterations
  // Also measure every variant the chain offers (two extra forwards and backwards per variant
  // per iteration, from the last warm-up on; Note [paired variant times] in profiling.cpp),
  // written as the stages' `variants`.
  bool variants = true;
  std::function<void(int done, int total, const StepStats&)> on_step;
};

// What profiling needs from a training setup, so any ChainModule can be profiled: the
// chain (its last stage returns the loss), its parameters and buffers, the optimizer, and
// where batches come from. Trainer fills it for the GPT, Session::profile for a user's
// Chain (samples/custom_loop).
struct ProfileSubject {
  ChainModule* chain = nullptr;
  std::vector<torch::Tensor> parameters;
  std::vector<torch::Tensor> buffers;
  torch::optim::Optimizer* optimizer = nullptr;
  std::function<Batch(int iteration)> batch;
  std::function<void()> optimizer_step;  // default: optimizer->step()
  std::function<void()> after_backward;  // after every loss.backward() (a ZeRO reduction)
  torch::Device device = torch::kCPU;
  std::string dtype = "float32";        // "bfloat16": forward under autocast
  std::string model_name = "custom";    // "gpt" with `config`
  ModelConfig config;
};

struct ProfileRun {
  ChainProfile profile;
  std::optional<Trace> trace;
  std::vector<StepStats> steps;  // the measured iterations
};

// Profiles a chain without checkpointing. Throws UserError on bad options.
ProfileRun profile_chain(const ProfileSubject& subject, const ProfileOptions& options);

// Profiles `trainer`'s GPT on its data.
ProfileRun profile_model(Trainer& trainer, const ProfileOptions& options);

}  // namespace tidemark::runtime
