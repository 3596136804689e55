// The CUPTI backend itself (compiled only with it): conversion of CUPTI's record structs
// and buffer parsing, on hand-made buffers that need no GPU; then, where a GPU exists, the
// whole path with real kernels, memcpys and memsets launched on two threads.
//
// Sections: hand-made buffers | conversion | parsing | real GPU
#include <cupti.h>

#include <cstring>
#include <thread>
#include <vector>

#include "catch.hpp"
#include "cupti/cuda_driver.hpp"
#include "cupti_records.hpp"
#include "tidemark/profiler/cupti_timer.hpp"
#include "tidemark/profiler/scope_time_builder.hpp"

using namespace tidemark::profiler;
using tidemark::profiler::detail::convert_cupti_record;
using tidemark::profiler::detail::parse_cupti_buffer;
using tidemark::profiler::test::CudaDriver;

namespace {

// --- hand-made buffers ---------------------------------------------------------------------

// Records laid out back to back as CUPTI does (each struct is 8-byte aligned and sized).
class RecordBuffer {
 public:
  template <class T>
  void put(const T& record) {
    static_assert(sizeof(T) % ACTIVITY_RECORD_ALIGNMENT == 0);
    const std::size_t at = bytes_;
    bytes_ += sizeof(T);
    words_.resize(bytes_ / 8);
    std::memcpy(reinterpret_cast<std::uint8_t*>(words_.data()) + at, &record, sizeof(T));
  }
  std::uint8_t* data() { return reinterpret_cast<std::uint8_t*>(words_.data()); }
  std::size_t size() const { return bytes_; }

 private:
  std::vector<std::uint64_t> words_;  // uint64 storage keeps the 8-byte alignment
  std::size_t bytes_ = 0;
};

CUpti_ActivityKernel10 cupti_kernel(std::uint32_t correlation, std::uint64_t start,
                                    std::uint64_t end, std::uint32_t stream, const char* name) {
  CUpti_ActivityKernel10 k;
  std::memset(&k, 0, sizeof k);
  k.kind = CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;
  k.start = start;
  k.end = end;
  k.deviceId = 0;
  k.streamId = stream;
  k.correlationId = correlation;
  k.name = name;
  return k;
}

CUpti_ActivityExternalCorrelation cupti_ext(std::uint32_t correlation, std::uint64_t id,
                                            CUpti_ExternalCorrelationKind kind =
                                                CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0) {
  CUpti_ActivityExternalCorrelation e;
  std::memset(&e, 0, sizeof e);
  e.kind = CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION;
  e.externalKind = kind;
  e.externalId = id;
  e.correlationId = correlation;
  return e;
}

CUpti_ActivityMemcpy6 cupti_memcpy(std::uint32_t correlation, std::uint32_t runtime_correlation,
                                   std::uint64_t start, std::uint64_t end) {
  CUpti_ActivityMemcpy6 m;
  std::memset(&m, 0, sizeof m);
  m.kind = CUPTI_ACTIVITY_KIND_MEMCPY;
  m.copyKind = CUPTI_ACTIVITY_MEMCPY_KIND_HTOD;
  m.start = start;
  m.end = end;
  m.deviceId = 1;
  m.streamId = 13;
  m.correlationId = correlation;
  m.runtimeCorrelationId = runtime_correlation;
  return m;
}

CUpti_ActivityMemset4 cupti_memset(std::uint32_t correlation, std::uint64_t start,
                                   std::uint64_t end) {
  CUpti_ActivityMemset4 m;
  std::memset(&m, 0, sizeof m);
  m.kind = CUPTI_ACTIVITY_KIND_MEMSET;
  m.start = start;
  m.end = end;
  m.streamId = 14;
  m.correlationId = correlation;
  return m;
}

CUpti_ActivityAPI cupti_runtime_api(std::uint32_t correlation) {
  CUpti_ActivityAPI a;
  std::memset(&a, 0, sizeof a);
  a.kind = CUPTI_ACTIVITY_KIND_RUNTIME;
  a.correlationId = correlation;
  return a;
}

const CUpti_Activity& as_activity(const void* record) {
  return *static_cast<const CUpti_Activity*>(record);
}

}  // namespace

// --- conversion ----------------------------------------------------------------------------

TEST_CASE("CUPTI kernel, memcpy and memset records convert field by field", "[cupti]") {
  const auto k = cupti_kernel(17, 1000, 2500, 7, "gemm_kernel");
  auto r = convert_cupti_record(as_activity(&k));
  REQUIRE(r.has_value());
  const auto& kernel = std::get<GpuActivity>(*r);
  CHECK(kernel.kind == GpuActivityKind::kernel);
  CHECK(kernel.start_ns == 1000);
  CHECK(kernel.end_ns == 2500);
  CHECK(kernel.correlation_id == 17);
  CHECK(kernel.stream_id == 7);
  CHECK(kernel.name == "gemm_kernel");

  const auto m = cupti_memcpy(20, 19, 3000, 3100);
  r = convert_cupti_record(as_activity(&m));
  REQUIRE(r.has_value());
  const auto& copy = std::get<GpuActivity>(*r);
  CHECK(copy.kind == GpuActivityKind::memcpy);
  CHECK(copy.correlation_id == 20);
  CHECK(copy.runtime_correlation_id == 19);
  CHECK(copy.device_id == 1);
  CHECK(copy.stream_id == 13);
  CHECK(copy.name == "Memcpy HtoD");

  const auto s = cupti_memset(21, 4000, 4050);
  r = convert_cupti_record(as_activity(&s));
  REQUIRE(r.has_value());
  CHECK(std::get<GpuActivity>(*r).kind == GpuActivityKind::memset);
  CHECK(std::get<GpuActivity>(*r).end_ns == 4050);
  CHECK(std::get<GpuActivity>(*r).stream_id == 14);
}

TEST_CASE("only CUSTOM0 external correlations and GPU work are kept", "[cupti]") {
  const auto mine = cupti_ext(5, 0xABCDEF0123ull);
  auto r = convert_cupti_record(as_activity(&mine));
  REQUIRE(r.has_value());
  CHECK(std::get<ExternalCorrelation>(*r).correlation_id == 5);
  CHECK(std::get<ExternalCorrelation>(*r).external_id == 0xABCDEF0123ull);

  const auto other = cupti_ext(5, 3, CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM1);
  CHECK_FALSE(convert_cupti_record(as_activity(&other)).has_value());
  const auto api = cupti_runtime_api(5);
  CHECK_FALSE(convert_cupti_record(as_activity(&api)).has_value());
}

// --- parsing -------------------------------------------------------------------------------

TEST_CASE("a CUPTI buffer is walked with cuptiActivityGetNextRecord into per-scope times",
          "[cupti]") {
  RecordBuffer buffer;
  buffer.put(cupti_runtime_api(1));  // API records only exist to carry correlations
  buffer.put(cupti_ext(1, 77));
  buffer.put(cupti_kernel(1, 1'000'000, 3'000'000, 7, "a"));
  buffer.put(cupti_kernel(2, 2'000'000, 4'000'000, 8, "b"));  // its correlation comes later
  buffer.put(cupti_ext(2, 99, CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM1));  // someone else's
  buffer.put(cupti_memset(3, 5'000'000, 5'500'000));
  buffer.put(cupti_ext(3, 78));
  buffer.put(cupti_ext(2, 77));
  buffer.put(cupti_memcpy(40, 4, 6'000'000, 7'000'000));  // runtime correlation 4
  buffer.put(cupti_ext(4, 78));

  ScopeTimeBuilder builder;
  std::size_t kept = 0;
  const std::size_t read = parse_cupti_buffer(buffer.data(), buffer.size(),
                                              [&](const ActivityRecord& r) {
                                                ++kept;
                                                builder.add(r);
                                              });
  CHECK(read == 10);
  CHECK(kept == 8);
  const auto t = builder.finish();
  REQUIRE(t.scopes.count(77) == 1);
  CHECK(t.scopes.at(77).kernels == 2);
  CHECK(t.scopes.at(77).busy_ms == Approx(3.0));  // [1,3) U [2,4) on two streams
  CHECK(t.scopes.at(77).summed_ms == Approx(4.0));
  CHECK(t.scopes.at(78).memsets == 1);
  CHECK(t.scopes.at(78).memcpys == 1);
  CHECK(t.scopes.at(78).busy_ms == Approx(1.5));
  CHECK(t.unattributed_records == 0);
}

TEST_CASE("an empty or missing buffer yields nothing", "[cupti]") {
  RecordBuffer buffer;
  buffer.put(cupti_ext(1, 1));
  std::size_t kept = 0;
  const auto sink = [&](const ActivityRecord&) { ++kept; };
  CHECK(parse_cupti_buffer(nullptr, 0, sink) == 0);
  CHECK(parse_cupti_buffer(buffer.data(), 0, sink) == 0);
  CHECK(kept == 0);
}

// --- real GPU ------------------------------------------------------------------------------

namespace {

// A kernel that does nothing, as PTX the driver JIT-compiles for whatever GPU is present.
constexpr const char* kNoopPtx = R"(
.version 7.0
.target sm_75
.address_size 64
.visible .entry tidemark_noop()
{
  ret;
}
)";

}  // namespace

TEST_CASE("real GPU: kernels, memcpys and memsets land in the scopes that launched them",
          "[cupti][cuda]") {
  const CudaDriver* cu = CudaDriver::get();
  if (!cu) {
    WARN("skipped: no CUDA GPU");
    return;
  }
  std::string why_not;
  auto timer = make_cupti_timer(why_not);
  INFO("why_not: " << why_not);
  REQUIRE(timer != nullptr);

  CudaDriver::CUdevice device = 0;
  CudaDriver::CUcontext context = nullptr;
  REQUIRE(cu->cuDeviceGet(&device, 0) == 0);
  REQUIRE(cu->cuDevicePrimaryCtxRetain(&context, device) == 0);
  REQUIRE(cu->cuCtxSetCurrent(context) == 0);
  CudaDriver::CUmodule module = nullptr;
  CudaDriver::CUfunction noop = nullptr;
  REQUIRE(cu->cuModuleLoadData(&module, kNoopPtx) == 0);
  REQUIRE(cu->cuModuleGetFunction(&noop, module, "tidemark_noop") == 0);
  CudaDriver::CUdeviceptr memory = 0;
  REQUIRE(cu->cuMemAlloc(&memory, 1 << 20) == 0);
  std::vector<unsigned char> host(1 << 20, 1);
  const auto launch = [&] {
    return cu->cuLaunchKernel(noop, 1, 1, 1, 32, 1, 1, 0, nullptr, nullptr, nullptr);
  };

  for (int step = 0; step < 2; ++step) {  // the same scope ids in both steps
    {
      GpuScope forward(timer.get(), 1);
      REQUIRE(cu->cuMemsetD8(memory, 0, 1 << 20) == 0);
      for (int i = 0; i < 3; ++i) REQUIRE(launch() == 0);
    }
    std::thread backward([&] {  // like autograd's device thread
      cu->cuCtxSetCurrent(context);
      GpuScope scope(timer.get(), 2);
      cu->cuMemcpyHtoD(memory, host.data(), host.size());
      for (int i = 0; i < 2; ++i) launch();
    });
    backward.join();
    REQUIRE(launch() == 0);  // outside every scope
    REQUIRE(cu->cuCtxSynchronize() == 0);

    const GpuStepTimes t = timer->collect();
    INFO("step " << step);
    REQUIRE(t.scopes.count(1) == 1);
    REQUIRE(t.scopes.count(2) == 1);
    CHECK(t.scopes.at(1).kernels == 3);
    CHECK(t.scopes.at(1).memsets == 1);
    CHECK(t.scopes.at(2).kernels == 2);
    CHECK(t.scopes.at(2).memcpys == 1);
    CHECK(t.scopes.at(1).busy_ms > 0);
    CHECK(t.scopes.at(2).busy_ms > 0);
    CHECK(t.scopes.at(1).busy_ms <= t.scopes.at(1).summed_ms + 1e-9);
    CHECK(t.unattributed_records >= 1);
    CHECK(t.untimed_records == 0);
    CHECK(t.dropped_records == 0);
    CHECK(t.busy_ms >= t.scopes.at(1).busy_ms);
  }
  cu->cuMemFree(memory);
}
