// Sections: one timer per process | start | scopes | drain | teardown
#include "cupti_activity_source.hpp"

#include <atomic>

#include "cupti_api.hpp"
#include "cupti_buffer_pool.hpp"
#include "cupti_check.hpp"
#include "cupti_records.hpp"
#include "log_once.hpp"

namespace tidemark::profiler::detail {
namespace {

// --- one timer per process ----------------------------------------------------------------
// CUPTI's activity state (enabled kinds, buffer callbacks) is process-wide, so two live
// timers would steal each other's records.
std::atomic<bool> g_source_alive{false};

struct KindToEnable {
  CUpti_ActivityKind kind;
  const char* call;  // for messages: which enable failed
};

// RUNTIME and DRIVER records are parsed and dropped: CUPTI emits an external-correlation
// record only for an API call it records, so without them no kernel could be attributed
// (Kineto enables them for the same reason). Runtime launches and driver launches
// (cuBLAS, cuDNN) each need their own kind.
constexpr KindToEnable kKinds[] = {
    {CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, "cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL)"},
    {CUPTI_ACTIVITY_KIND_MEMCPY, "cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMCPY)"},
    {CUPTI_ACTIVITY_KIND_MEMSET, "cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMSET)"},
    {CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION, "cuptiActivityEnable(CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION)"},
    {CUPTI_ACTIVITY_KIND_RUNTIME, "cuptiActivityEnable(CUPTI_ACTIVITY_KIND_RUNTIME)"},
    {CUPTI_ACTIVITY_KIND_DRIVER, "cuptiActivityEnable(CUPTI_ACTIVITY_KIND_DRIVER)"},
};

// Queries LibTorch makes constantly (c10 asks for the current device around most ops):
// recording them would fill buffers with API records no GPU work refers to.
void silence_noisy_api_records() {
  TIDEMARK_CUPTI_CALL(cuptiActivityEnableRuntimeApi(CUPTI_RUNTIME_TRACE_CBID_cudaGetDevice_v3020, 0));
  TIDEMARK_CUPTI_CALL(cuptiActivityEnableDriverApi(CUPTI_DRIVER_TRACE_CBID_cuCtxGetCurrent, 0));
  TIDEMARK_CUPTI_CALL(cuptiActivityEnableDriverApi(CUPTI_DRIVER_TRACE_CBID_cuKernelGetAttribute, 0));
  TIDEMARK_CUPTI_CALL(cuptiActivityEnableDriverApi(CUPTI_DRIVER_TRACE_CBID_cuDevicePrimaryCtxGetState, 0));
}

std::string version_text(std::uint32_t v) {
  return std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + " (" + std::to_string(v) + ")";
}

}  // namespace

// --- start ---------------------------------------------------------------------------------

std::unique_ptr<CuptiActivitySource> CuptiActivitySource::start(const CuptiTimerOptions& options,
                                                                std::string& why_not) {
  // libcupti is loaded here, on the first start, not linked (cupti_api.hpp): a machine
  // without it gets a reason, like one without a GPU.
  const CuptiLibrary& library = cupti_library();
  if (!library.available) {
    why_not = "CUPTI: " + (library.why_not.empty() ? std::string("libcupti not available")
                                                   : library.why_not);
    log_once("cupti:load", why_not);
    return nullptr;
  }
  std::unique_ptr<CuptiActivitySource> source(new CuptiActivitySource);
  if (g_source_alive.exchange(true)) {
    why_not = "CUPTI: another CUPTI timer is alive in this process; only one can trace at a time";
    return nullptr;
  }
  // From here on, returning nullptr destroys `source`, which undoes whatever was done.
  source->owns_cupti_ = true;

  std::uint32_t version = 0;
  const CUptiResult version_result = cupti().cuptiGetVersion(&version);
  if (!cupti_ok(version_result, "cuptiGetVersion")) {
    why_not = "CUPTI: " + describe_cupti_failure(version_result, "cuptiGetVersion");
    return nullptr;
  }
  if (version / 100 != kCuptiLayoutVersion) {
    why_not = "CUPTI: the loaded libcupti is version " + version_text(version) +
              " but tidemark reads the activity record layouts of CUPTI " +
              version_text(CUPTI_API_VERSION) + "; rebuild tidemark against this toolkit";
    log_once("cupti:version", why_not);
    return nullptr;
  }

  CuptiBufferPool& pool = CuptiBufferPool::instance();
  if (!pool.register_callbacks(why_not)) return nullptr;
  pool.open(options.buffer_bytes, options.max_buffers);

  for (const KindToEnable& k : kKinds) {
    const CUptiResult result = cupti().cuptiActivityEnable(k.kind);
    if (!cupti_ok(result, k.call)) {
      why_not = "CUPTI: " + describe_cupti_failure(result, k.call) +
                (result == CUPTI_ERROR_UNKNOWN || result == CUPTI_ERROR_NOT_INITIALIZED
                     ? "; is there a CUDA GPU and driver?"
                     : "");
      return nullptr;  // the destructor disables what was enabled and closes the pool
    }
    source->enabled_.push_back(k.kind);
  }
  silence_noisy_api_records();
  return source;
}

// --- scopes --------------------------------------------------------------------------------

void CuptiActivitySource::push_external_id(std::uint64_t external_id) {
  TIDEMARK_CUPTI_CALL(cuptiActivityPushExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, external_id));
}

std::optional<std::uint64_t> CuptiActivitySource::pop_external_id() {
  std::uint64_t last = 0;
  if (!TIDEMARK_CUPTI_CALL(cuptiActivityPopExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, &last)))
    return std::nullopt;
  return last;
}

// --- drain ---------------------------------------------------------------------------------

void CuptiActivitySource::drain(const RecordSink& sink) {
  // Forced: also deliver the buffers CUPTI is still filling. bufferCompleted runs (on
  // CUPTI's thread or this one) before cuptiActivityFlushAll returns.
  TIDEMARK_CUPTI_CALL(cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED));
  CuptiBufferPool& pool = CuptiBufferPool::instance();
  std::vector<CompletedBuffer> buffers = pool.take_completed();
  std::size_t next = 0;
  try {
    for (; next < buffers.size(); ++next) {
      parse_cupti_buffer(buffers[next].data, buffers[next].valid_bytes, sink);
      pool.recycle(buffers[next]);
    }
  } catch (...) {
    for (; next < buffers.size(); ++next) pool.recycle(buffers[next]);
    throw;  // GpuTimer::collect logs it
  }
}

std::uint64_t CuptiActivitySource::take_dropped_records() {
  std::size_t dropped = 0;
  if (!TIDEMARK_CUPTI_CALL(cuptiActivityGetNumDroppedRecords(nullptr, 0, &dropped))) return 0;
  return dropped;
}

// --- teardown ------------------------------------------------------------------------------

void CuptiActivitySource::disable_all() noexcept {
  if (!enabled_.empty()) TIDEMARK_CUPTI_CALL(cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED));
  for (auto it = enabled_.rbegin(); it != enabled_.rend(); ++it)
    TIDEMARK_CUPTI_CALL(cuptiActivityDisable(*it));
  enabled_.clear();
}

CuptiActivitySource::~CuptiActivitySource() {
  if (!owns_cupti_) return;
  disable_all();
  CuptiBufferPool::instance().close();  // frees what the flush returned; unread records go
  g_source_alive.store(false);
}

}  // namespace tidemark::profiler::detail
