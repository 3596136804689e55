// Record structs read here (CUDA 13.0, CUPTI_API_VERSION 1300xx):
//   CONCURRENT_KERNEL, KERNEL  -> CUpti_ActivityKernel10
//   MEMCPY                     -> CUpti_ActivityMemcpy6
//   MEMSET                     -> CUpti_ActivityMemset4
//   EXTERNAL_CORRELATION       -> CUpti_ActivityExternalCorrelation
// CUPTI bumps these versions between CUDA minor releases (Kernel10 became deprecated in
// 13.2), so supporting another toolkit means checking each struct name here and then
// kCuptiLayoutVersion; CMake only compiles this backend for the version below.
#include "cupti_records.hpp"

#include <string>

#include "cupti_api.hpp"
#include "cupti_check.hpp"
#include "log_once.hpp"

static_assert(CUPTI_API_VERSION / 100 == tidemark::profiler::detail::kCuptiLayoutVersion,
              "cupti_records.cpp reads the CUDA 13.0 record structs; check them against "
              "these CUPTI headers before changing kCuptiLayoutVersion");

namespace tidemark::profiler::detail {
namespace {

std::string_view memcpy_label(std::uint8_t copy_kind) {
  switch (copy_kind) {
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOD: return "Memcpy HtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOH: return "Memcpy DtoH";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOD: return "Memcpy DtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOH: return "Memcpy HtoH";
    case CUPTI_ACTIVITY_MEMCPY_KIND_PTOP: return "Memcpy PtoP";
    default: return "Memcpy";
  }
}

}  // namespace

std::optional<ActivityRecord> convert_cupti_record(const CUpti_Activity& record) {
  switch (record.kind) {
    case CUPTI_ACTIVITY_KIND_KERNEL:
    case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL: {
      const auto& k = reinterpret_cast<const CUpti_ActivityKernel10&>(record);
      GpuActivity a;
      a.kind = GpuActivityKind::kernel;
      a.start_ns = k.start;
      a.end_ns = k.end;
      a.correlation_id = k.correlationId;
      a.device_id = k.deviceId;
      a.stream_id = k.streamId;
      a.name = k.name ? std::string_view(k.name) : std::string_view("kernel");
      return a;
    }
    case CUPTI_ACTIVITY_KIND_MEMCPY: {
      const auto& m = reinterpret_cast<const CUpti_ActivityMemcpy6&>(record);
      GpuActivity a;
      a.kind = GpuActivityKind::memcpy;
      a.start_ns = m.start;
      a.end_ns = m.end;
      a.correlation_id = m.correlationId;
      a.runtime_correlation_id = m.runtimeCorrelationId;
      a.device_id = m.deviceId;
      a.stream_id = m.streamId;
      a.name = memcpy_label(m.copyKind);
      return a;
    }
    case CUPTI_ACTIVITY_KIND_MEMSET: {
      const auto& m = reinterpret_cast<const CUpti_ActivityMemset4&>(record);
      GpuActivity a;
      a.kind = GpuActivityKind::memset;
      a.start_ns = m.start;
      a.end_ns = m.end;
      a.correlation_id = m.correlationId;
      a.device_id = m.deviceId;
      a.stream_id = m.streamId;
      a.name = "Memset";
      return a;
    }
    case CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION: {
      const auto& e = reinterpret_cast<const CUpti_ActivityExternalCorrelation&>(record);
      if (e.externalKind != CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0) return std::nullopt;
      return ExternalCorrelation{e.correlationId, e.externalId};
    }
    default:
      return std::nullopt;
  }
}

std::size_t parse_cupti_buffer(std::uint8_t* data, std::size_t valid_bytes,
                               const RecordSink& sink) {
  std::size_t count = 0;
  if (!data || valid_bytes == 0) return count;
  CUpti_Activity* record = nullptr;
  for (;;) {
    const CUptiResult status = cupti().cuptiActivityGetNextRecord(data, valid_bytes, &record);
    if (status == CUPTI_ERROR_MAX_LIMIT_REACHED) break;  // end of the buffer
    if (status != CUPTI_SUCCESS) {
      // CUPTI_ERROR_INVALID_KIND: an incomplete or corrupt record; the rest is unreadable.
      cupti_ok(status, "cuptiActivityGetNextRecord");
      break;
    }
    ++count;
    if (auto converted = convert_cupti_record(*record)) sink(*converted);
  }
  return count;
}

}  // namespace tidemark::profiler::detail
