#pragma once
// Live-bytes accounting fed by the allocator hook. Torch-free so it can be unit-tested.
//
// Two peak windows run at once: the step window (reset by the trainer at each step) and
// the op window (reset by the profiler around one stage's forward or backward). Optional
// event recording keeps every allocation and free with its time for the trace.
#include <atomic>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace tidemark::profiler {

struct MemoryEvent {
  std::int64_t t_ns = 0;   // steady clock
  const void* ptr = nullptr;
  std::int64_t delta = 0;  // +size on allocation, -size on free
  bool host = false;       // pinned host bytes offload took or gave back (not device memory)
};

class MemoryLedger {
 public:
  // Called by the hook for every allocation (delta > 0) and free (delta < 0).
  void on_event(const void* ptr, std::int64_t delta);

  std::int64_t live() const;
  std::int64_t step_peak() const;
  std::int64_t op_peak() const;
  void reset_step_peak();  // step peak := live
  void reset_op_peak();    // op peak := live
  // Live bytes and op peak read together (one lock), for the profiler's stage markers.
  void snapshot(std::int64_t& live, std::int64_t& op_peak) const;

  // Offload's pinned host bytes: recorded for traces, never counted as live device bytes.
  void on_host_event(std::int64_t delta);

  // Event recording for traces: off by default (the hook then only counts).
  void set_recording(bool on);
  bool recording() const;
  std::vector<MemoryEvent> take_events();

  std::uint64_t allocations() const;

 private:
  mutable std::mutex mu_;
  std::int64_t live_ = 0;
  std::int64_t step_peak_ = 0;
  std::int64_t op_peak_ = 0;
  std::uint64_t allocations_ = 0;
  bool recording_ = false;
  std::vector<MemoryEvent> events_;
};

std::int64_t now_ns();

}  // namespace tidemark::profiler
