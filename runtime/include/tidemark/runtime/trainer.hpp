#pragma once
// Training loop for the GPT: the C++ counterpart of Hugging Face's Trainer +
// TrainingArguments, with tidemark's plans on top.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <torch/torch.h>
#include <vector>

#include "tidemark/core/model_config.hpp"
#include "tidemark/core/plan.hpp"
#include "tidemark/profiler/allocator_hook.hpp"
#include "tidemark/runtime/checkpoint.hpp"
#include "tidemark/runtime/data.hpp"
#include "tidemark/runtime/distributed.hpp"
#include "tidemark/runtime/executor.hpp"
#include "tidemark/runtime/gpt.hpp"
#include "tidemark/runtime/trace_session.hpp"
#include "tidemark/runtime/zero.hpp"

namespace tidemark::runtime {

// HF TrainingArguments, the parts that matter here.
struct TrainingConfig {
  ModelConfig model;
  int steps = 20;
  double learning_rate = 1e-3;
  double weight_decay = 0.1;
  int warmup_steps = 10;        // linear learning-rate warmup; keeps early Adam steps stable
  double max_grad_norm = 1.0;   // gradient clipping (<= 0: off)
  // HF: TrainingArguments.gradient_checkpointing + gradient_checkpointing_kwargs. The
  // trainer calls model->gradient_checkpointing_enable(kwargs) before training begins.
  bool gradient_checkpointing = false;
  CheckpointOptions gradient_checkpointing_kwargs;
  // A checkpoint plan run through PlanExecutor (exclusive with gradient_checkpointing).
  std::optional<PlanNode> plan;
  std::string data_path;  // empty: the synthetic corpus
};

struct StepStats {
  int step = 0;
  double loss = 0;              // averaged over the ranks when data parallel
  double ms = 0;
  std::int64_t peak_bytes = 0;  // live-bytes peak of this step (allocator hook)
  double comm_wait_ms = 0;      // data parallel: waiting for gradient all-reduces after backward
  std::int64_t floor_bytes = 0; // live bytes after backward and its reductions (no activations)
};

// Note [CPU allocator]
// LibTorch's CPU allocator is plain malloc. glibc serves blocks above its mmap threshold with
// fresh mmaps and returns them on free, so every step pays page faults on every large
// activation again: on 2 cores that made a no-checkpoint step of the default model 1.7x
// slower and its time swing by 30% from step to step, and it punishes plans by how much they
// allocate rather than by what they compute. Keeping freed memory in the heap makes steps
// after the first reuse it. The live-bytes accounting is unaffected (it counts tensor bytes,
// not the process's resident memory). Process-wide, so the CLI and benchmarks call it once
// at start; library users decide for their own process.
void tune_cpu_allocator();

// LibTorch defaults to one thread per physical core, which on a 2-vCPU machine whose vCPUs
// are hyperthreads of one core means 1: a step of the default model then takes 1.25x as
// long as with 2 threads. Uses every logical CPU unless OMP_NUM_THREADS says otherwise.
void use_all_cores();

// Throws UserError for --device cuda without a usable GPU.
torch::Device resolve_device(const std::string& device);

// Enters CPU (bfloat16) or CUDA autocast for the scope when dtype is "bfloat16".
class AutocastScope {
 public:
  AutocastScope(const std::string& dtype, const torch::Device& device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  at::DeviceType device_type_ = at::kCPU;
  bool prev_enabled_ = false;
  at::ScalarType prev_dtype_ = at::kBFloat16;
};

class Trainer {
 public:
  // Builds data, model and optimizer; validates the config (UserError on bad input).
  explicit Trainer(TrainingConfig config);

  // Applies TrainingConfig::gradient_checkpointing (once), then runs one step:
  // batch, forward, backward, optimizer step, zero_grad(set_to_none).
  StepStats step();
  // Steps until config().steps are done (fewer after set_steps_done).
  std::vector<StepStats> train(const std::function<void(const StepStats&)>& on_step = {});

  // Loss of the next batch without updating anything (for tests and profiling).
  torch::Tensor forward_loss(const Batch& batch);

  GPT& model() { return model_; }
  torch::optim::AdamW& optimizer() { return *optimizer_; }
  const TrainingConfig& config() const { return config_; }
  const TextData& data() const { return data_; }
  const torch::Device& device() const { return device_; }
  Batch batch(std::uint64_t step) const;
  int steps_done() const { return step_; }
  // Trains as one rank of a data-parallel job from now on (Note [data parallel]): this
  // rank's rows of every batch, gradients bucketed and all-reduced. `dp` must outlive the
  // trainer's steps.
  void use_data_parallel(DataParallel* dp, std::int64_t bucket_bytes);
  DataParallel* data_parallel() const { return dp_; }
  // Trains as one rank of a data-parallel job with its state sharded at ZeRO `stage` (1-3;
  // Note [ZeRO]) from now on, instead of use_data_parallel: the optimizer then steps this
  // rank's shards. `dp` must outlive the trainer's steps.
  void use_zero(DataParallel* dp, int stage);
  ZeroSharding* zero() const { return zero_.get(); }
  // After loss.backward(): the data-parallel or ZeRO reduction (nothing for one process).
  void finish_backward();
  // Continue counting from `step` (a resumed state: Note [training state]).
  void set_steps_done(int step) { step_ = step; }

  // Sets every parameter gradient to undefined (frees it), as zero_grad(set_to_none=True).
  void zero_grad();
  // Gradient clipping, learning-rate warmup and the AdamW step.
  void optimizer_step();

  // Record a tidemark.trace/1 of the following steps (stage spans need the plan executor, so
  // Hugging Face-style checkpointing then runs as the equivalent uniform plan).
  void enable_trace();
  // The trace so far; adds per-stage actions from the plan that ran.
  Trace finish_trace();
  // Runs the stages through `root` from now on (used by the profiler).
  void use_plan(PlanNode root);

 private:
  // Counts from before the model exists: Note [hook lifetime] in allocator_hook.hpp.
  profiler::AllocatorHookGuard hook_;
  TrainingConfig config_;
  torch::Device device_;
  TextData data_;
  GPT model_{nullptr};
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::unique_ptr<PlanExecutor> executor_;
  std::unique_ptr<profiler::StageRecorder> recorder_;
  std::unique_ptr<TraceSession> trace_;
  bool prepared_ = false;
  int step_ = 0;
  DataParallel* dp_ = nullptr;
  std::unique_ptr<ZeroSharding> zero_;
};

}  // namespace tidemark::runtime
