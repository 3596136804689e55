#include "tidemark/profiler/stage_recorder.hpp"

#include <algorithm>
#include <torch/csrc/autograd/engine.h>

namespace tidemark::profiler {

StageRecorder::StageRecorder(MemoryLedger& ledger) : ledger_(ledger) {}

StageRecorder::~StageRecorder() { uninstall(); }

void StageRecorder::install() {
  set_active_observer(this);
  installed_ = true;
}

void StageRecorder::uninstall() {
  if (installed_ && active_observer() == this) set_active_observer(nullptr);
  installed_ = false;
}

void StageRecorder::set_step(int step) {
  std::lock_guard<std::mutex> lock(mu_);
  step_ = step;
}

OpRecord StageRecorder::open(int stage, Phase phase, bool grad_mode) {
  OpRecord op;
  op.step = step_;
  op.stage = stage;
  op.phase = phase;
  op.grad_mode = grad_mode;
  // The op window measures the peak inside this operation only. Nested forwards (a stage
  // inside a checkpointed segment's forward) are not nested stage ops: the chain runs stages
  // one at a time, so the window belongs to the innermost open op.
  if (boundary_hook_) boundary_hook_();
  ledger_.reset_op_peak();
  ledger_.snapshot(op.live_before, op.peak);
  op.id = next_id_++;
  if (gpu_) gpu_->begin_scope(op.id);
  op.t0_ns = now_ns();
  return op;
}

void StageRecorder::close(OpRecord& op) {
  if (boundary_hook_) boundary_hook_();
  op.t1_ns = now_ns();
  if (gpu_ && (op.phase != Phase::Backward || backward_thread_ == std::this_thread::get_id())) {
    gpu_->end_scope(op.id);
  }
  ledger_.snapshot(op.live_after, op.peak);
  done_.push_back(op);
}

void StageRecorder::close_backward_locked() {
  if (backward_) {
    close(*backward_);
    backward_.reset();
  }
  held_grad_.reset();
}

void StageRecorder::set_hold_incoming(bool hold) {
  std::lock_guard<std::mutex> lock(mu_);
  hold_incoming_ = hold;
}

void StageRecorder::forward_begin(int stage, bool recompute, bool grad_mode) {
  std::lock_guard<std::mutex> lock(mu_);
  forward_stack_.push_back(open(stage, recompute ? Phase::Recompute : Phase::Forward, grad_mode));
}

void StageRecorder::forward_end(int stage, std::int64_t output_bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  if (forward_stack_.empty() || forward_stack_.back().stage != stage) return;  // unmatched: ignore
  forward_stack_.back().output_bytes = output_bytes;
  close(forward_stack_.back());
  forward_stack_.pop_back();
}

void StageRecorder::backward_begin(int stage, const torch::Tensor& grad) {
  std::lock_guard<std::mutex> lock(mu_);
  close_backward_locked();
  if (hold_incoming_) held_grad_ = grad;
  backward_ = open(stage, Phase::Backward, true);
  backward_thread_ = std::this_thread::get_id();
  if (stage == 0) {
    // Stage 0's backward ends with the graph: close it when the engine finishes, on the
    // thread that opened it (autograd's device thread on CUDA, where its GPU scope lives),
    // so that a loop which never calls finish_backward (a user's own) gets its span right.
    torch::autograd::Engine::get_default_engine().queue_callback([this] {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (backward_ && backward_thread_ == std::this_thread::get_id()) close_backward_locked();
      }
      if (backward_end_hook_) backward_end_hook_();
    });
  }
}

void StageRecorder::set_backward_end_hook(std::function<void()> hook) {
  std::lock_guard<std::mutex> lock(mu_);
  backward_end_hook_ = std::move(hook);
}

void StageRecorder::set_boundary_hook(std::function<void()> hook) {
  std::lock_guard<std::mutex> lock(mu_);
  boundary_hook_ = std::move(hook);
}

void StageRecorder::set_gpu_timer(GpuTimer* timer) {
  std::lock_guard<std::mutex> lock(mu_);
  gpu_ = timer;
}

GpuStepTimes StageRecorder::collect_gpu_times() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!gpu_) return {};
  GpuStepTimes t = gpu_->collect();
  for (auto& op : done_) {
    auto it = t.scopes.find(op.id);
    if (it != t.scopes.end()) op.gpu_ms = it->second.busy_ms;
    else if (op.gpu_ms < 0) op.gpu_ms = 0;  // the op launched no GPU work
  }
  return t;
}

void StageRecorder::recompute_begin() {
  std::lock_guard<std::mutex> lock(mu_);
  close_backward_locked();
}

void StageRecorder::recompute_end() {}

// Times only: resetting the op peak here would cut the enclosing backward's peak window, and
// the profile takes the recompute's bytes and time as part of that backward.
void StageRecorder::partial_recompute_begin(int stage) {
  std::lock_guard<std::mutex> lock(mu_);
  OpRecord op;
  op.step = step_;
  op.stage = stage;
  op.phase = Phase::Recompute;
  op.grad_mode = true;
  op.id = next_id_++;
  ledger_.snapshot(op.live_before, op.peak);
  op.t0_ns = now_ns();
  partial_ = op;
}

void StageRecorder::partial_recompute_end(int stage) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!partial_ || partial_->stage != stage) return;
  partial_->t1_ns = now_ns();
  ledger_.snapshot(partial_->live_after, partial_->peak);
  done_.push_back(*partial_);
  partial_.reset();
}

// A record of its own, never a stage op: the profile reads forward and backward ops only, so
// copies show in traces and change no stage's measurements.
void StageRecorder::copy(int stage, bool to_host, std::int64_t t0_ns, std::int64_t t1_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  OpRecord op;
  op.step = step_;
  op.stage = stage;
  op.phase = to_host ? Phase::CopyOut : Phase::CopyIn;
  op.t0_ns = t0_ns;
  op.t1_ns = std::max(t0_ns, t1_ns);
  done_.push_back(op);
}

void StageRecorder::finish_backward() {
  std::lock_guard<std::mutex> lock(mu_);
  close_backward_locked();
}

std::vector<OpRecord> StageRecorder::take_ops() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<OpRecord> out;
  out.swap(done_);
  return out;
}

std::vector<Span> StageRecorder::spans_of(const std::vector<OpRecord>& ops, std::int64_t origin_ns) {
  std::vector<Span> out;
  out.reserve(ops.size());
  for (const auto& op : ops) {
    Span s;
    s.stage = op.stage;
    s.phase = op.phase;
    s.step = op.step;
    s.start_us = (op.t0_ns - origin_ns) / 1000;
    s.end_us = std::max(s.start_us, (op.t1_ns - origin_ns) / 1000);
    out.push_back(s);
  }
  std::sort(out.begin(), out.end(), [](const Span& a, const Span& b) { return a.start_us < b.start_us; });
  return out;
}

}  // namespace tidemark::profiler
