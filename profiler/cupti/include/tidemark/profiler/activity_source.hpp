#pragma once
// The seam around the hardware (Kineto's CuptiActivityApi has virtual buffer methods for
// the same reason): GpuTimer talks to CUPTI only through this interface, so tests drive
// it with FakeActivitySource and synthetic records.
#include <cstdint>
#include <functional>
#include <optional>

#include "tidemark/profiler/gpu_activity.hpp"

namespace tidemark::profiler {

using RecordSink = std::function<void(const ActivityRecord&)>;

class ActivitySource {
 public:
  virtual ~ActivitySource() = default;

  // Tags the CUDA calls the *calling thread* makes from now on with `external_id`. Ids
  // form a stack per thread; only the innermost one is recorded for a call, exactly as
  // CUPTI does (cuptiActivityPushExternalCorrelationId, kind CUSTOM0).
  virtual void push_external_id(std::uint64_t external_id) = 0;
  // Removes the calling thread's innermost id and returns it; nullopt when the thread
  // has none or the backend failed (already logged).
  virtual std::optional<std::uint64_t> pop_external_id() = 0;

  // Delivers every record completed so far, buffer by buffer in completion order, then
  // forgets them. An ExternalCorrelation and the GpuActivity it explains may come in
  // either order and in different buffers. Must not throw. (CUPTI: cuptiActivityFlushAll,
  // then cuptiActivityGetNextRecord over each completed buffer.)
  virtual void drain(const RecordSink& sink) = 0;

  // Records lost for lack of buffer space since the previous call
  // (CUPTI: cuptiActivityGetNumDroppedRecords, which resets the count when read).
  virtual std::uint64_t take_dropped_records() = 0;
};

}  // namespace tidemark::profiler
