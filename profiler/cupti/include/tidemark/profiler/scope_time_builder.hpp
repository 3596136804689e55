#pragma once
// Turns a step's activity records into per-scope GPU times. Pure logic: no CUDA, no
// threads; GpuTimer feeds it what an ActivitySource drains.
//
// Note [Attribution]
//   A GPU record belongs to the scope whose id an ExternalCorrelation record gives for
//   its correlation_id (else for its runtime_correlation_id). Attribution is by launch,
//   never by time: a kernel launched in scope A that runs after scope B opened still
//   belongs to A. Records may arrive in any order and in any buffer; the join happens in
//   finish(), so the result does not depend on arrival order. A correlation id mapped
//   twice keeps its first external id (CUPTI emits one record per API call and kind, so
//   this only happens with a misbehaving source). GPU records with no mapping are
//   unattributed. External correlations that no GPU record uses (cudaMalloc, event and
//   sync calls made inside a scope) are normal and ignored.
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "tidemark/profiler/gpu_activity.hpp"
#include "tidemark/profiler/gpu_step_times.hpp"

namespace tidemark::profiler {

class ScopeTimeBuilder {
 public:
  void add(const ActivityRecord& record);
  void add(const GpuActivity& activity);
  void add(const ExternalCorrelation& correlation);

  // Joins what was added, computes the times, and resets the builder for the next step.
  GpuStepTimes finish(std::uint64_t dropped_records = 0);

 private:
  // What finish() needs of a GpuActivity (the name view dies with the delivery).
  struct Work {
    std::uint64_t start_ns;
    std::uint64_t end_ns;
    std::uint32_t correlation_id;
    std::uint32_t runtime_correlation_id;
    GpuActivityKind kind;
  };
  std::vector<Work> work_;
  std::unordered_map<std::uint32_t, std::uint64_t> scope_of_correlation_;
};

}  // namespace tidemark::profiler
