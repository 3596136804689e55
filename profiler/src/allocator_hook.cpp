#include "tidemark/profiler/allocator_hook.hpp"

#include <c10/core/Allocator.h>
#include <c10/util/ThreadLocalDebugInfo.h>
#include <string>
#include <torch/version.h>

namespace tidemark::profiler {
namespace {

// LibTorch 2.x made the totals size_t; the override must match the installed headers.
#if TORCH_VERSION_MAJOR >= 2
using TotalT = size_t;
#else
using TotalT = int64_t;
#endif

class Hook final : public c10::MemoryReportingInfoBase {
 public:
  explicit Hook(c10::DeviceType device) : device_(device) {}

  void reportMemoryUsage(void* ptr, int64_t alloc_size, TotalT /*total_allocated*/,
                         TotalT /*total_reserved*/, c10::Device device) override {
    if (device.type() != device_ || alloc_size == 0) return;
    ledger().on_event(ptr, alloc_size);
  }

  bool memoryProfilingEnabled() const override { return true; }

 private:
  c10::DeviceType device_;
};

}  // namespace

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
