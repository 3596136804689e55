#pragma once
// Builders for synthetic activity records. Times are given in ms and stored in ns, so the
// expected values in the tests read as the timeline drawn in their comments.
#include <cstdint>

#include "tidemark/profiler/gpu_activity.hpp"

namespace tidemark::profiler::test {

constexpr std::uint64_t ms(double v) { return static_cast<std::uint64_t>(v * 1'000'000.0 + 0.5); }

inline GpuActivity gpu(GpuActivityKind kind, std::uint32_t correlation, double start_ms,
                       double end_ms, std::uint32_t stream = 1) {
  GpuActivity a;
  a.kind = kind;
  a.start_ns = ms(start_ms);
  a.end_ns = ms(end_ms);
  a.correlation_id = correlation;
  a.stream_id = stream;
  a.name = kind == GpuActivityKind::kernel ? "kernel" : "copy";
  return a;
}

inline GpuActivity kernel(std::uint32_t correlation, double start_ms, double end_ms,
                          std::uint32_t stream = 1) {
  return gpu(GpuActivityKind::kernel, correlation, start_ms, end_ms, stream);
}

inline ExternalCorrelation ext(std::uint32_t correlation, std::uint64_t scope) {
  return ExternalCorrelation{correlation, scope};
}

}  // namespace tidemark::profiler::test
