#include "tidemark/runtime/trace_session.hpp"

#include <algorithm>

#include "tidemark/profiler/allocator_hook.hpp"

namespace tidemark::runtime {
namespace {

const void* storage_ptr(const torch::Tensor& t) {
  return t.defined() ? t.storage().data() : nullptr;
}

std::vector<torch::Tensor> optimizer_state_tensors(torch::optim::Optimizer& opt) {
  std::vector<torch::Tensor> out;
  for (auto& kv : opt.state()) {
    if (auto* s = dynamic_cast<torch::optim::AdamWParamState*>(kv.second.get())) {
      out.push_back(s->exp_avg());
      out.push_back(s->exp_avg_sq());
      if (s->max_exp_avg_sq().defined()) out.push_back(s->max_exp_avg_sq());
    }
  }
  return out;
}

}  // namespace

TraceSession::TraceSession(ChainModule& chain, std::vector<torch::Tensor> parameters,
                           std::vector<torch::Tensor> buffers, torch::optim::Optimizer& optimizer,
                           std::string mode, std::string model_name, const ModelConfig& config)
    : chain_(chain),
      parameters_(std::move(parameters)),
      optimizer_(optimizer),
      mode_(std::move(mode)),
      model_name_(std::move(model_name)),
      config_(config),
      origin_ns_(profiler::now_ns()),
      timeline_(origin_ns_) {
  auto& ledger = profiler::ledger();
  std::vector<std::pair<const void*, std::pair<std::int64_t, MemoryCategory>>> known;
  for (const auto& p : parameters_) {
    known.push_back({storage_ptr(p), {static_cast<std::int64_t>(p.storage().nbytes()), MemoryCategory::Parameter}});
    if (p.grad().defined()) {
      known.push_back({storage_ptr(p.grad()), {static_cast<std::int64_t>(p.grad().storage().nbytes()), MemoryCategory::Gradient}});
    }
  }
  for (const auto& b : buffers) {
    known.push_back({storage_ptr(b), {static_cast<std::int64_t>(b.storage().nbytes()), MemoryCategory::Parameter}});
  }
  for (const auto& s : optimizer_state_tensors(optimizer_)) {
    known.push_back({storage_ptr(s), {static_cast<std::int64_t>(s.storage().nbytes()), MemoryCategory::OptimizerState}});
  }
  timeline_.seed(ledger.live(), known);
  ledger.take_events();  // anything before this point is in the seed
  ledger.set_recording(true);
}

TraceSession::~TraceSession() { profiler::ledger().set_recording(false); }

std::vector<const void*> TraceSession::grad_pointers() const {
  std::vector<const void*> out;
  for (const auto& p : parameters_) {
    if (p.grad().defined()) out.push_back(storage_ptr(p.grad()));
  }
  return out;
}

std::vector<const void*> TraceSession::optimizer_pointers() const {
  std::vector<const void*> out;
  for (const auto& s : optimizer_state_tensors(optimizer_)) out.push_back(storage_ptr(s));
  return out;
}

void TraceSession::begin_step(int /*step*/, const Batch& batch) {
  step_start_ns_ = profiler::now_ns();
  roles_.clear();
  add_inputs(batch);
}

void TraceSession::add_inputs(const Batch& batch) {
  std::vector<const void*> inputs{storage_ptr(batch.targets)};
  for (const auto& t : batch.inputs) inputs.push_back(storage_ptr(t));
  for (const auto& kv : batch.tensors) inputs.push_back(storage_ptr(kv.second));
  roles_.push_back({MemoryCategory::Input, profiler::now_ns(), inputs});
}

void TraceSession::after_backward() {
  roles_.push_back({MemoryCategory::Gradient, profiler::now_ns(), grad_pointers()});
}

void TraceSession::end_step(int step, std::int64_t peak, const std::vector<profiler::OpRecord>& ops) {
  const std::int64_t end_ns = profiler::now_ns();
  // Optimizer state is created during the first step and lives on: observed at the end.
  roles_.push_back({MemoryCategory::OptimizerState, end_ns, optimizer_pointers()});
  timeline_.add_step(profiler::ledger().take_events(), ops, roles_);
  auto spans = profiler::StageRecorder::spans_of(ops, origin_ns_);
  spans_.insert(spans_.end(), spans.begin(), spans.end());
  steps_.push_back(StepMark{step, (step_start_ns_ - origin_ns_) / 1000, (end_ns - origin_ns_) / 1000,
                            static_cast<std::uint64_t>(peak)});
  peak_ = std::max<std::uint64_t>(peak_, static_cast<std::uint64_t>(peak));
}

Trace TraceSession::finish() {
  Trace t;
  t.model = model_name_;
  t.config = config_;
  t.mode = mode_;
  t.peak_bytes = peak_;
  for (int k = 0; k < chain_.num_stages(); ++k) {
    TraceStage s;
    s.name = chain_.stage_name(k);
    s.kind = chain_.stage_kind(k);
    t.stages.push_back(s);
  }
  t.spans = spans_;
  t.steps = steps_;
  t.memory = timeline_.finish();
  return t;
}

}  // namespace tidemark::runtime
