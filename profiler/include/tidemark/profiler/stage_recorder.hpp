#pragma once
// StageRecorder: the StageObserver the profiler installs. For every stage operation (forward
// with or without autograd recording, recompute, backward) it records wall time, live bytes
// before and after, and the highest live level in between, from the allocator hook's
// ledger. Profiles are built from these records; traces from the spans.
//
// Backward spans are delimited by events, not scopes (stage_observer.hpp): a stage's
// backward runs from its backward_begin to the next backward_begin, recompute_begin or
// finish_backward().
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "tidemark/core/trace.hpp"
#include "tidemark/profiler/gpu_timer.hpp"
#include "tidemark/profiler/memory_ledger.hpp"
#include "tidemark/profiler/stage_observer.hpp"

namespace tidemark::profiler {

struct OpRecord {
  int step = 0;
  int stage = 0;
  Phase phase = Phase::Forward;  // Recompute: a forward run inside a checkpoint's backward
  bool grad_mode = true;         // forward ops: autograd recording on
  std::int64_t t0_ns = 0, t1_ns = 0;
  std::int64_t live_before = 0, live_after = 0, peak = 0;
  std::int64_t output_bytes = 0;  // forward ops
  std::uint64_t id = 0;           // GPU scope id
  double gpu_ms = -1;             // GPU busy time of the op's kernels (CUPTI), -1 if unknown

  // GPU time where CUPTI measured it, else wall time.
  double best_ms() const { return gpu_ms >= 0 ? gpu_ms : ms(); }

  double ms() const { return static_cast<double>(t1_ns - t0_ns) / 1e6; }
  std::int64_t peak_delta() const { return peak - live_before; }
  std::int64_t net() const { return live_after - live_before; }
};

class StageRecorder : public StageObserver {
 public:
  explicit StageRecorder(MemoryLedger& ledger);
  ~StageRecorder() override;

  // Installs this recorder as the active observer for its lifetime.
  void install();
  void uninstall();

  void set_step(int step);
  // GPU timing (CUDA): every op is a GpuTimer scope. The timer must outlive the recorder.
  void set_gpu_timer(GpuTimer* timer);
  // Takes the GPU times of the ops recorded so far (call after synchronizing the device).
  GpuStepTimes collect_gpu_times();
  // Called at every op boundary, e.g. a device synchronize so that wall times of
  // asynchronous CUDA work are right when CUPTI is not available.
  void set_boundary_hook(std::function<void()> hook);
  // Called when the backward of stage 0 ends with the graph (autograd's final callback), so
  // a loop that does not call finish_backward still learns when backward is over.
  void set_backward_end_hook(std::function<void()> hook);
  // Closes the backward span still open when loss.backward() returns.
  void finish_backward();

  void forward_begin(int stage, bool recompute, bool grad_mode) override;
  void forward_end(int stage, std::int64_t output_bytes) override;
  void backward_begin(int stage, const torch::Tensor& grad) override;
  // Keep each stage's incoming gradient referenced until its backward ends, as a checkpoint
  // does for the last stage of its recompute: measures StageProfile::backward_held_peak_bytes.
  void set_hold_incoming(bool hold);
  void recompute_begin() override;
  void recompute_end() override;
  void partial_recompute_begin(int stage) override;
  void partial_recompute_end(int stage) override;
  void copy(int stage, bool to_host, std::int64_t t0_ns, std::int64_t t1_ns) override;

  // Records so far, in completion order; take_ops() clears them.
  std::vector<OpRecord> take_ops();
  // Stage spans relative to `origin_ns`, for traces.
  static std::vector<Span> spans_of(const std::vector<OpRecord>& ops, std::int64_t origin_ns);

 private:
  OpRecord open(int stage, Phase phase, bool grad_mode);
  void close(OpRecord& op);
  void close_backward_locked();

  MemoryLedger& ledger_;
  std::mutex mu_;
  int step_ = 0;
  bool installed_ = false;
  std::vector<OpRecord> forward_stack_;  // nested forwards (a checkpoint's forward inside another)
  std::optional<OpRecord> backward_;     // the open backward span
  std::optional<OpRecord> partial_;      // an open partial recompute inside it
  bool hold_incoming_ = false;
  torch::Tensor held_grad_;              // the open backward's incoming gradient, when held
  std::thread::id backward_thread_;      // where its GPU scope was opened
  GpuTimer* gpu_ = nullptr;
  std::function<void()> boundary_hook_;
  std::function<void()> backward_end_hook_;
  std::uint64_t next_id_ = 1;
  std::vector<OpRecord> done_;
};

}  // namespace tidemark::profiler
