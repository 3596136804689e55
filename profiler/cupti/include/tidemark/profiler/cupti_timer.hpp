#pragma once
// The CUPTI-backed GpuTimer. Typical use (the profiler):
//
//   std::string why_not;
//   std::unique_ptr<GpuTimer> gpu = make_cupti_timer(why_not);   // before the first step
//   if (!gpu) note("no GPU stage times: " + why_not);            // already logged to stderr
//   ...  { GpuScope s(gpu.get(), scope_id); run stage forward; } ...
//   torch::cuda::synchronize();
//   if (gpu) { GpuStepTimes t = gpu->collect(); ... t.scopes[scope_id].busy_ms ... }
//
// Only one CUPTI timer may exist at a time in a process (CUPTI's activity buffers are
// process-wide), and it must not run beside another CUPTI client such as torch.profiler /
// Kineto: both would register the buffer callbacks and tag CUSTOM0 correlations.
#include <cstddef>
#include <memory>
#include <string>

#include "tidemark/profiler/cupti_config.hpp"
#include "tidemark/profiler/gpu_timer.hpp"

namespace tidemark::profiler {

struct CuptiTimerOptions {
  // Size of each host buffer handed to CUPTI. CUPTI suggests 1-10 MB; one buffer holds
  // roughly ten thousand launches' worth of records.
  std::size_t buffer_bytes = 4u << 20;
  // Cap on buffers alive at once (with CUPTI or waiting for collect()). Past it CUPTI
  // drops records, which collect() reports as dropped_records.
  std::size_t max_buffers = 64;
};

// True when tidemark_cupti was built with the real CUPTI backend (TIDEMARK_HAS_CUPTI).
bool cupti_compiled() noexcept;

// Starts CUPTI activity tracing (kernels, memcpys, memsets, external correlations) and
// returns a timer over it. On any failure (not compiled in, no GPU or driver, CUPTI
// version mismatch, another CUPTI timer alive) returns nullptr and sets `why_not` to a
// one-line reason that names CUPTI; CUPTI errors are also logged once to stderr. Never
// throws.
std::unique_ptr<GpuTimer> make_cupti_timer(std::string& why_not,
                                           const CuptiTimerOptions& options = {}) noexcept;

}  // namespace tidemark::profiler
