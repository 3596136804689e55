#pragma once
// GPU time per profiler scope (a stage's forward, backward or recompute).
//
// Contract:
// - begin_scope/end_scope run on the thread that launches the scope's GPU work (forward:
//   the main thread; backward: autograd's device worker thread) and nest properly per
//   thread. Scope ids are the caller's (they encode step, stage, phase); a scope nested in
//   another takes the GPU work launched while it is open (innermost wins).
// - collect() runs between steps, after the device is synchronized (work still running
//   has no timestamps yet: it would count as untimed, or be lost to the next step). It
//   returns that step's times and starts a new step, so scope ids may repeat across steps.
// - Nothing here throws or aborts: a backend failure is logged once to stderr and the
//   timings come back empty or partial, with the counts saying so.
#include <atomic>
#include <cstdint>
#include <memory>

#include "tidemark/profiler/activity_source.hpp"
#include "tidemark/profiler/gpu_step_times.hpp"
#include "tidemark/profiler/scope_time_builder.hpp"

namespace tidemark::profiler {

class GpuTimer {
 public:
  explicit GpuTimer(std::unique_ptr<ActivitySource> source);
  ~GpuTimer();
  GpuTimer(const GpuTimer&) = delete;
  GpuTimer& operator=(const GpuTimer&) = delete;

  // Thread-safe: different threads may open and close scopes concurrently.
  void begin_scope(std::uint64_t scope_id) noexcept;
  // `scope_id` must be the calling thread's innermost open scope; a mismatch is logged
  // once (the profiler's scope bookkeeping is wrong) and the innermost scope is closed.
  void end_scope(std::uint64_t scope_id) noexcept;

  // Not concurrent with itself; see the contract above.
  GpuStepTimes collect() noexcept;

 private:
  std::unique_ptr<ActivitySource> source_;
  ScopeTimeBuilder builder_;
  std::atomic<std::int64_t> open_scopes_{0};
};

// Opens a scope for the guard's lifetime; a null timer (no GPU timing) makes it a no-op.
class GpuScope {
 public:
  GpuScope(GpuTimer* timer, std::uint64_t scope_id) noexcept : timer_(timer), id_(scope_id) {
    if (timer_) timer_->begin_scope(id_);
  }
  ~GpuScope() {
    if (timer_) timer_->end_scope(id_);
  }
  GpuScope(const GpuScope&) = delete;
  GpuScope& operator=(const GpuScope&) = delete;

 private:
  GpuTimer* timer_;
  std::uint64_t id_;
};

}  // namespace tidemark::profiler
