#pragma once
// The allocator hook: LibTorch's allocators (CPU, and the CUDA caching allocator) report
// every allocation and free to the thread's PROFILER_STATE debug info when it says
// memoryProfilingEnabled(). We install ours there and count live tensor bytes.
//
// Note [hook lifetime]
// Install the hook before the model is built and keep it for the whole run: the CPU
// allocator only remembers the size of blocks allocated while profiling was on, so a
// block allocated earlier is freed silently and the count would drift. The debug info is
// thread-local but LibTorch carries it into autograd's worker threads with the rest of
// the thread-local state, so backward is counted too.
#include <cstdint>
#include <memory>
#include <vector>

#include <ATen/core/Tensor.h>

#include "tidemark/profiler/memory_ledger.hpp"

namespace tidemark::profiler {

class AllocatorHookGuard;

// The process-wide ledger the hook feeds (one training run per process).
MemoryLedger& ledger();

// The bytes the allocator reports for a request of `nbytes`: the request itself on the CPU;
// on CUDA the caching allocator's block, the request rounded up to 512 bytes (exact with
// the expandable segments this module turns on: Note [CUDA block sizes]). A size derived
// from a tensor (a stage output) must be counted like the ledger counts it.
std::int64_t allocated_size(std::int64_t nbytes, bool cuda);
// What the allocator counts for `tensors`, each storage once, leaving out the storages of
// `except` (a stage's inputs passed through to its outputs).
std::int64_t allocated_bytes(const std::vector<at::Tensor>& tensors, const std::vector<at::Tensor>& except = {});

// RAII: installs the hook on the calling thread for its lifetime, counting allocations on
// `device_type` ("cpu" or "cuda") into ledger(); others are ignored.
class AllocatorHookGuard {
 public:
  explicit AllocatorHookGuard(const char* device_type = "cpu");
  ~AllocatorHookGuard();
  AllocatorHookGuard(const AllocatorHookGuard&) = delete;
  AllocatorHookGuard& operator=(const AllocatorHookGuard&) = delete;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tidemark::profiler
