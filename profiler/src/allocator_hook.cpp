#include "tidemark/profiler/allocator_hook.hpp"

#include <c10/core/Allocator.h>
#include <c10/util/ThreadLocalDebugInfo.h>
#include <cstdlib>
#include <set>
#include <string>
#include <torch/csrc/profiler/orchestration/observer.h>
#include <torch/version.h>

namespace tidemark::profiler {
namespace {

// LibTorch 2.x made the totals size_t; the override must match the installed headers.
#if TORCH_VERSION_MAJOR >= 2
using TotalT = size_t;
#else
using TotalT = int64_t;
#endif

// Note [hook as profiler state]
// The PROFILER_STATE slot is where LibTorch's own profilers keep their state, and LibTorch
// reads whatever is there as a ProfilerStateBase (static_cast): profilerEnabled() reads its
// config, profilerType() calls a virtual function past MemoryReportingInfoBase's. A bare
// MemoryReportingInfoBase there would be read past its end whenever LibTorch asks. So the
// hook is a ProfilerStateBase whose config says disabled: LibTorch's profiler paths see no
// profiler running, and the allocators still report to it (memoryProfilingEnabled).
class Hook final : public torch::profiler::impl::ProfilerStateBase {
 public:
  explicit Hook(c10::DeviceType device)
      : ProfilerStateBase(torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::Disabled)),
        device_(device) {}

  void reportMemoryUsage(void* ptr, int64_t alloc_size, TotalT /*total_allocated*/,
                         TotalT /*total_reserved*/, c10::Device device) override {
    if (device.type() != device_ || alloc_size == 0) return;
    ledger().on_event(ptr, alloc_size);
  }

  bool memoryProfilingEnabled() const override { return true; }
  torch::profiler::impl::ActiveProfilerType profilerType() override {
    return torch::profiler::impl::ActiveProfilerType::NONE;
  }

 private:
  c10::DeviceType device_;
};

}  // namespace

// Note [CUDA block sizes]
// By default the CUDA caching allocator hands out a cached block larger than the request
// without splitting it when less than 1 MiB would remain, and reports (and counts as
// allocated) the whole block, so a tensor's bytes depend on the cache's history. Measured
// on an H200 (LibTorch 2.11): the same stage of identical blocks differed by 1 MiB, and a
// plan's peak came out 0.6% over its prediction in one process and 1% under in another.
// With expandable segments the allocator always splits, so every block is the request
// rounded up to 512 bytes and peaks compose exactly. The setting is read once, when the
// allocator is first configured, which can be before any tidemark code runs a model: so it
// is set while the program starts. A user's own PYTORCH_CUDA_ALLOC_CONF is kept.
namespace {
const bool kExactCudaBlocks = [] {
  setenv("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True", /*overwrite=*/0);
  return true;
}();
}  // namespace

std::int64_t allocated_size(std::int64_t nbytes, bool cuda) {
  if (!cuda || nbytes <= 0) return nbytes;
  constexpr std::int64_t kBlock = 512;  // the caching allocator's kMinBlockSize
  return (nbytes + kBlock - 1) / kBlock * kBlock;
}

std::int64_t allocated_bytes(const std::vector<at::Tensor>& tensors, const std::vector<at::Tensor>& except) {
  std::set<const void*> seen;
  for (const auto& t : except) {
    if (t.defined()) seen.insert(t.storage().data());
  }
  std::int64_t bytes = 0;
  for (const auto& t : tensors) {
    if (!t.defined() || !seen.insert(t.storage().data()).second) continue;
    bytes += allocated_size(static_cast<std::int64_t>(t.storage().nbytes()), t.is_cuda());
  }
  return bytes;
}

MemoryLedger& ledger() {
  static MemoryLedger instance;
  return instance;
}

struct AllocatorHookGuard::Impl {
  explicit Impl(std::shared_ptr<Hook> hook)
      : guard(c10::DebugInfoKind::PROFILER_STATE, std::move(hook)) {}
  c10::DebugInfoGuard guard;
};

AllocatorHookGuard::AllocatorHookGuard(const char* device_type) {
  c10::DeviceType type = std::string(device_type) == "cuda" ? c10::DeviceType::CUDA
                                                            : c10::DeviceType::CPU;
  impl_ = std::make_unique<Impl>(std::make_shared<Hook>(type));
}

AllocatorHookGuard::~AllocatorHookGuard() = default;

}  // namespace tidemark::profiler
