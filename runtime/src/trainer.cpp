#include "tidemark/runtime/trainer.hpp"

#include "tidemark/planner/baselines.hpp"
#include "tidemark/runtime/offload.hpp"

#include <ATen/autocast_mode.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <chrono>
#include <cstdlib>
#include <malloc.h>
#include <thread>
#include <ATen/Parallel.h>
#include <fmt/format.h>

#include "autocast_state.hpp"
#include "tidemark/core/error.hpp"

namespace tidemark::runtime {
namespace {

// The plan that runs what `config` asks through the executor when it gives no plan: Hugging
// Face-style checkpointing as its uniform plan (each checkpoint's input offloaded with its
// offload option), or none.
PlanNode executor_plan(GPTImpl& model, const TrainingConfig& config) {
  if (!config.gradient_checkpointing) return plan_no_checkpoint(model.num_stages());
  PlanNode root = plan_uniform(model);
  return config.gradient_checkpointing_kwargs.offload ? planner::with_checkpoint_inputs_offloaded(std::move(root)) : root;
}

}  // namespace

void tune_cpu_allocator() {
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

void use_all_cores() {
  if (std::getenv("OMP_NUM_THREADS")) return;
  const unsigned n = std::thread::hardware_concurrency();
  if (n > 0) at::set_num_threads(static_cast<int>(n));
}

torch::Device resolve_device(const std::string& device) {
  if (device == "cuda") {
    if (!torch::cuda::is_available()) {
      throw UserError(
          "--device cuda: LibTorch sees no CUDA GPU (this LibTorch may be CPU-only, or no GPU and "
          "driver are present); use --device cpu");
    }
    // The current GPU: a data-parallel rank's own (DataParallel sets it from LOCAL_RANK).
    return torch::Device(torch::kCUDA, c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->getDevice().index());
  }
  return torch::Device(torch::kCPU);
}

AutocastScope::AutocastScope(const std::string& dtype, const torch::Device& device) {
  if (dtype != "bfloat16") return;
  active_ = true;
  device_type_ = device.type();
  prev_enabled_ = autocast_enabled(device_type_);
  prev_dtype_ = autocast_dtype(device_type_);
  set_autocast_enabled(device_type_, true);
  set_autocast_dtype(device_type_, at::kBFloat16);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_autocast_enabled(device_type_, prev_enabled_);
  set_autocast_dtype(device_type_, prev_dtype_);
}

Trainer::Trainer(TrainingConfig config)
    : hook_(config.model.device == "cuda" ? "cuda" : "cpu"),
      config_(std::move(config)),
      device_(resolve_device(config_.model.device)) {
  config_.model.validate();
  if (config_.steps < 0) throw UserError("--steps must not be negative");
  if (!(config_.learning_rate > 0)) throw UserError("--lr must be positive");
  if (config_.gradient_checkpointing && config_.plan) {
    throw UserError("--gradient-checkpointing and --plan both choose what to recompute; give one");
  }
  if (config_.gradient_checkpointing) config_.gradient_checkpointing_kwargs.validate();
  data_ = config_.data_path.empty() ? TextData::synthetic(config_.model.seed)
                                    : TextData::from_file(config_.data_path);
  data_.check(config_.model.vocab, config_.model.seq);
  torch::manual_seed(config_.model.seed);
  model_ = GPT(config_.model);
  model_->to(device_);
  model_->train();
  optimizer_ = std::make_unique<torch::optim::AdamW>(
      model_->parameters(), torch::optim::AdamWOptions(config_.learning_rate)
                                .betas({0.9, 0.95})
                                .weight_decay(config_.weight_decay));
  // Offload is refused here, before the first step, where it cannot run or would not fit (a
  // plan that offloads: by the executor, and by the CLI with the plan's host bytes).
  if (config_.gradient_checkpointing && config_.gradient_checkpointing_kwargs.offload) {
    // Every block's input: batch x seq x d_model, in float32 (autocast keeps the residual
    // stream there).
    const auto& m = config_.model;
    check_offload(device_, static_cast<std::uint64_t>(m.layers * m.batch * m.seq * m.d_model) * 4,
                  "--gc-option offload=true");
  }
  if (config_.plan) executor_ = std::make_unique<PlanExecutor>(*model_, *config_.plan);
}

Batch Trainer::batch(std::uint64_t step) const {
  const std::int64_t first_row = dp_ ? dp_->rank() * config_.model.batch : 0;
  return data_.batch(config_.model.seed, step, config_.model.batch, config_.model.seq, device_, first_row);
}

torch::Tensor Trainer::forward_loss(const Batch& b) {
  AutocastScope autocast(config_.model.dtype, device_);
  if (executor_) return executor_->forward(b.inputs, b.context()).at(0);
  return model_->forward(b.inputs.at(0), b.targets);
}

void Trainer::zero_grad() {
  for (auto& p : model_->parameters()) p.mutable_grad().reset();
}

void Trainer::optimizer_step() {
  if (config_.max_grad_norm > 0) {
    if (zero_) {
      zero_->clip_grad_norm(config_.max_grad_norm);
    } else {
      torch::nn::utils::clip_grad_norm_(model_->parameters(), config_.max_grad_norm);
    }
  }
  const double warm = config_.warmup_steps > 0
                          ? std::min(1.0, static_cast<double>(step_ + 1) / config_.warmup_steps)
                          : 1.0;
  for (auto& group : optimizer_->param_groups()) {
    static_cast<torch::optim::AdamWOptions&>(group.options()).lr(config_.learning_rate * warm);
  }
  optimizer_->step();
  if (zero_) zero_->after_step();
}

void Trainer::use_data_parallel(DataParallel* dp, std::int64_t bucket_bytes) {
  dp_ = dp;
  dp_->attach(model_->parameters(), bucket_bytes);
}

void Trainer::use_zero(DataParallel* dp, int stage) {
  dp_ = dp;
  zero_ = std::make_unique<ZeroSharding>(*dp, *model_, stage);
  // AdamW over the shards, with the options (and, on a resume, the state) it would have had.
  const auto options = static_cast<const torch::optim::AdamWOptions&>(optimizer_->defaults());
  optimizer_ = std::make_unique<torch::optim::AdamW>(zero_->shards(), options);
  // ZeRO-3 gathers parameters around each stage, which needs the stages: run them through
  // the executor, with Hugging Face-style checkpointing as its uniform plan.
  if (stage == 3 && !executor_) use_plan(executor_plan(*model_, config_));
}

void Trainer::finish_backward() {
  if (zero_) {
    zero_->finish_backward();
  } else if (dp_) {
    dp_->finish_backward();
  }
}

void Trainer::use_plan(PlanNode root) {
  // The checkpoint options of --gc-option hold for the uniform plan that stands in for the
  // model's own checkpointing; offload is on the plan's nodes.
  CheckpointOptions options;
  if (config_.gradient_checkpointing && !config_.plan) {
    options = config_.gradient_checkpointing_kwargs;
    options.offload = false;
  }
  executor_ = std::make_unique<PlanExecutor>(*model_, std::move(root), options);
}

void Trainer::enable_trace() {
  if (!executor_) use_plan(executor_plan(*model_, config_));
  recorder_ = std::make_unique<profiler::StageRecorder>(profiler::ledger());
  recorder_->install();
  const std::string mode = config_.plan ? "plan" : (config_.gradient_checkpointing ? "uniform" : "none");
  trace_ = std::make_unique<TraceSession>(*model_, model_->parameters(), model_->buffers(),
                                          *optimizer_, mode, "gpt", config_.model);
}

Trace Trainer::finish_trace() {
  if (!trace_) throw UserError("no trace was recorded (call enable_trace() before training)");
  Trace t = trace_->finish();
  if (executor_) mark_stage_actions(executor_->root(), t.stages);
  return t;
}

StepStats Trainer::step() {
  if (!prepared_) {
    // HF: Trainer.train() enables checkpointing on the model before the first step.
    if (config_.gradient_checkpointing) {
      model_->gradient_checkpointing_enable(config_.gradient_checkpointing_kwargs);
    }
    prepared_ = true;
  }
  auto& ledger = profiler::ledger();
  ledger.reset_step_peak();
  auto t0 = std::chrono::steady_clock::now();
  Batch b = batch(static_cast<std::uint64_t>(step_));
  if (trace_) {
    recorder_->set_step(step_);
    trace_->begin_step(step_, b);
  }
  torch::Tensor loss = forward_loss(b);
  if (dp_ && !zero_) dp_->before_backward();
  loss.backward();
  finish_backward();
  const std::int64_t floor_bytes = ledger.live();
  if (trace_) {
    recorder_->finish_backward();
    trace_->after_backward();
  }
  optimizer_step();
  zero_grad();
  StepStats s;
  s.loss = loss.item<double>();
  loss = torch::Tensor();
  b = Batch{};
  s.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  s.peak_bytes = ledger.step_peak();
  s.floor_bytes = floor_bytes;
  if (dp_) s.comm_wait_ms = zero_ ? zero_->last_comm_wait_ms() : dp_->last_comm_wait_ms();
  if (dp_) s.loss = dp_->average(s.loss);  // after the step's peak: its scalars are not the step's
  if (trace_) trace_->end_step(step_, s.peak_bytes, recorder_->take_ops());
  s.step = step_++;
  return s;
}

std::vector<StepStats> Trainer::train(const std::function<void(const StepStats&)>& on_step) {
  std::vector<StepStats> out;
  while (step_ < config_.steps) {  // from a resumed state, the steps it has left
    out.push_back(step());
    if (on_step) on_step(out.back());
  }
  return out;
}

}  // namespace tidemark::runtime
