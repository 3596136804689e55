// Session and Step: the memory hook, profiling and traces for a user's own loop.
#include "tidemark/runtime/session.hpp"

#include <atomic>
#include <fmt/format.h>
#include <set>

#include "tidemark/core/bytes.hpp"
#include "tidemark/core/error.hpp"
#include "tidemark/planner/solve.hpp"
#include "tidemark/profiler/stage_recorder.hpp"
#include "tidemark/runtime/trace_session.hpp"
#include "tidemark/runtime/trainer.hpp"

namespace tidemark::runtime {
namespace {

std::atomic<bool> g_session_open{false};

std::vector<torch::Tensor> optimizer_parameters(torch::optim::Optimizer& optimizer) {
  std::vector<torch::Tensor> out;
  for (auto& group : optimizer.param_groups()) {
    for (auto& p : group.params()) out.push_back(p);
  }
  return out;
}

void free_gradients(torch::optim::Optimizer& optimizer) {
  for (auto& group : optimizer.param_groups()) {
    for (auto& p : group.params()) p.mutable_grad().reset();
  }
}

}  // namespace

// ---- Step

Step::Step(Step&& other) noexcept : session_(other.session_), index_(other.index_), peak_(other.peak_) {
  other.session_ = nullptr;
}

Step::~Step() { end(); }

void Step::end() {
  if (!session_) return;
  Session* s = session_;
  session_ = nullptr;
  peak_ = profiler::ledger().step_peak();
  s->end_step(index_);
}

std::int64_t Step::peak_bytes() const { return session_ ? profiler::ledger().step_peak() : peak_; }

// ---- Session

Session::Session(const torch::Device& device) : device_(device), hook_(device.is_cuda() ? "cuda" : "cpu") {
  if (g_session_open.exchange(true)) {
    throw SessionError("a tidemark::Session is already open in this process; use that one (one session "
                    "counts the memory of one training run)");
  }
  live_at_start_ = profiler::ledger().live();
  if (!device_.is_cuda()) tune_cpu_allocator();
}

Session::~Session() {
  if (recorder_) recorder_->uninstall();
  trace_.reset();
  g_session_open.store(false);
}

void Session::check_seen(const std::vector<torch::Tensor>& parameters, const char* what) const {
  std::set<const void*> storages;
  std::uint64_t bytes = 0;
  for (const auto& p : parameters) {
    if (p.defined() && p.device().type() == device_.type() && storages.insert(p.storage().data()).second) {
      bytes += p.storage().nbytes();
    }
  }
  const std::int64_t live = profiler::ledger().live() - live_at_start_;
  if (static_cast<std::int64_t>(bytes) > live) {
    throw SessionError(fmt::format(
        "{}: the parameters hold {} but the session has seen only {} allocated: the model was "
        "built before the tidemark::Session, whose memory hook counts only what is allocated after "
        "it. Create the Session first, before the model and its optimizer",
        what, format_bytes(bytes), format_bytes(static_cast<std::uint64_t>(std::max<std::int64_t>(0, live)))));
  }
}

ChainProfile Session::profile(Chain& chain, torch::optim::Optimizer& optimizer,
                              const std::function<Batch(int)>& batches, ProfileOptions options) {
  if (open_step_ >= 0) throw SessionError("Session::profile runs steps of its own; end the open Step first");
  if (trace_) throw SessionError("Session::profile: a trace is being recorded; profile before record_trace");
  if (chain.num_stages() == 0) throw SessionError(fmt::format("Chain {} has no stages to profile", chain.name()));
  const std::vector<torch::Tensor> params = chain.parameters();
  check_seen(params, "Session::profile");
  ProfileSubject subject;
  subject.chain = &chain;
  subject.parameters = params;
  subject.buffers = chain.buffers();
  subject.optimizer = &optimizer;
  subject.batch = batches;
  subject.device = device_;
  subject.model_name = chain.name();
  // The profile measures the chain's plain form whatever the chain runs now.
  return profile_chain(subject, options).profile;
}

Plan Session::plan(Chain& chain, torch::optim::Optimizer& optimizer, const std::function<Batch(int)>& batches,
                   const Budget& budget, ProfileOptions options) {
  return planner::plan(profile(chain, optimizer, batches, std::move(options)), budget);
}

void Session::record_trace(Chain& chain, torch::optim::Optimizer& optimizer) {
  if (trace_) throw SessionError("Session::record_trace: a trace is already being recorded");
  check_seen(chain.parameters(), "Session::record_trace");
  traced_ = &chain;
  recorder_ = std::make_unique<profiler::StageRecorder>(profiler::ledger());
  recorder_->install();
  trace_ = std::make_unique<TraceSession>(chain, chain.parameters(), chain.buffers(), optimizer, chain.mode(),
                                          chain.name());
  TraceSession* t = trace_.get();
  recorder_->set_backward_end_hook([t] { t->after_backward(); });
  chain.on_batch_ = [t](const Batch& b) { t->add_inputs(b); };
}

Trace Session::trace() {
  if (!trace_) throw SessionError("Session::trace: no trace was recorded; call record_trace before the steps");
  if (open_step_ >= 0) throw SessionError("Session::trace: end the open Step first");
  recorder_->uninstall();
  traced_->on_batch_ = nullptr;
  Trace t = trace_->finish();
  t.mode = traced_->mode();
  mark_stage_actions(traced_->current_plan(), t.stages);
  if (const auto& plan = traced_->plan()) {
    t.solver = plan->solver;
    t.budget_bytes = plan->budget_bytes;
    t.predicted_peak_bytes = plan->predicted.peak_bytes;
  }
  trace_.reset();
  recorder_.reset();
  traced_ = nullptr;
  return t;
}

Step Session::step(torch::optim::Optimizer& optimizer) {
  if (open_step_ >= 0) throw SessionError(fmt::format("Session::step: step {} is still open; end it first", open_step_));
  const std::vector<torch::Tensor> params = optimizer_parameters(optimizer);
  if (steps_ == 0) check_seen(params, "Session::step");
  free_gradients(optimizer);
  profiler::ledger().reset_step_peak();
  open_step_ = steps_;
  if (trace_) {
    recorder_->take_ops();
    recorder_->set_step(open_step_);
    trace_->begin_step(open_step_, Batch{});
  }
  return Step(this, steps_++);
}

void Session::end_step(int index) {
  const std::int64_t peak = profiler::ledger().step_peak();
  peak_ = std::max(peak_, peak);
  if (trace_) {
    recorder_->finish_backward();
    trace_->end_step(index, peak, recorder_->take_ops());
  }
  open_step_ = -1;
}

}  // namespace tidemark::runtime
