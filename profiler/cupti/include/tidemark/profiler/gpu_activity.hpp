#pragma once
// Plain-C++ activity records: what the CUPTI backend converts CUPTI's records into and
// what tests synthesize. Nothing here includes CUDA, so the attribution logic built on
// these types compiles and is tested on machines without the toolkit.
#include <cstdint>
#include <string_view>
#include <variant>

namespace tidemark::profiler {

enum class GpuActivityKind : std::uint8_t { kernel, memcpy, memset };

// One piece of work that ran on a GPU (CUPTI: CONCURRENT_KERNEL, MEMCPY, MEMSET).
struct GpuActivity {
  GpuActivityKind kind = GpuActivityKind::kernel;
  // GPU execution interval, ns (CUPTI's timestamps). Both 0 means CUPTI could not time
  // the work; such records, and any with end_ns < start_ns, count as untimed: no time.
  std::uint64_t start_ns = 0;
  std::uint64_t end_ns = 0;
  // Correlation id of the CUDA API call that launched the work: the key that joins it to
  // an ExternalCorrelation record, hence to the scope open on the launching thread.
  std::uint32_t correlation_id = 0;
  // Memcpy only: CUPTI reports the driver call in correlation_id and the runtime call
  // here; either may carry the external correlation. 0 = none.
  std::uint32_t runtime_correlation_id = 0;
  std::uint32_t device_id = 0;
  std::uint32_t stream_id = 0;
  // Kernel name or a fixed label ("Memcpy HtoD", "Memset"). Valid only while the record
  // is being delivered (ActivitySource::drain's callback): never store the view.
  std::string_view name;
};

// Links a CUDA API call to the external id (the tidemark scope id) that was innermost on
// the calling thread when it was made (CUPTI: EXTERNAL_CORRELATION, kind CUSTOM0).
struct ExternalCorrelation {
  std::uint32_t correlation_id = 0;
  std::uint64_t external_id = 0;
};

using ActivityRecord = std::variant<GpuActivity, ExternalCorrelation>;

}  // namespace tidemark::profiler
