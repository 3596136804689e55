#pragma once
// What GpuTimer::collect() returns for one training step: GPU time per scope plus the
// counts that say how far to trust it.
#include <cstdint>
#include <map>

namespace tidemark::profiler {

// GPU work launched inside one scope. Times are exclusive: work launched inside a nested
// scope belongs to that inner scope only (CUPTI records the innermost external id).
struct ScopeGpuTime {
  // Length of the union of the scope's work intervals over all streams and devices: the
  // wall time during which the GPU was busy for this scope. This is the stage time.
  double busy_ms = 0;
  // Sum of the durations of all the scope's records. Exceeds busy_ms when the scope's
  // work overlapped on several streams.
  double summed_ms = 0;
  // Sum of the durations of the scope's kernels only (no memcpy/memset).
  double kernel_ms = 0;
  std::uint32_t kernels = 0;
  std::uint32_t memcpys = 0;
  std::uint32_t memsets = 0;
  // First start and last end of the scope's timed work (GPU clock, ns), for traces.
  // Both 0 when the scope has no timed work.
  std::uint64_t first_start_ns = 0;
  std::uint64_t last_end_ns = 0;
};

struct GpuStepTimes {
  std::map<std::uint64_t, ScopeGpuTime> scopes;  // by scope id
  // GPU records (kernel, memcpy, memset) seen, attributed or not, timed or not.
  std::uint64_t records = 0;
  // GPU records with no external correlation: launched outside every scope (optimizer,
  // loss, zero_grad...) or whose correlation record was lost. Their summed time:
  std::uint64_t unattributed_records = 0;
  double unattributed_ms = 0;
  // GPU records without timestamps (CUPTI ran out of device memory for them, or the step
  // was collected before the device finished). Counted, never timed.
  std::uint64_t untimed_records = 0;
  // Records CUPTI dropped for lack of buffer space: when non-zero, times are too low.
  std::uint64_t dropped_records = 0;
  // Length of the union of all timed GPU records: the step's total GPU busy time.
  double busy_ms = 0;
};

}  // namespace tidemark::profiler
