// Per-scope GPU times from activity records; see Note [Attribution] in the header.
//
// Sections: interval union | add | finish
#include "tidemark/profiler/scope_time_builder.hpp"

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

namespace tidemark::profiler {
namespace {

using Interval = std::pair<std::uint64_t, std::uint64_t>;  // [start, end) ns

// Total length covered by the intervals (overlaps counted once); sorts them in place.
std::uint64_t union_length_ns(std::vector<Interval>& intervals) {
  if (intervals.empty()) return 0;
  std::sort(intervals.begin(), intervals.end());
  std::uint64_t total = 0;
  auto [run_start, run_end] = intervals.front();
  for (const auto& [start, end] : intervals) {
    if (start > run_end) {
      total += run_end - run_start;
      run_start = start;
      run_end = end;
    } else {
      run_end = std::max(run_end, end);
    }
  }
  return total + (run_end - run_start);
}

// Sums in integer ns and converts once, so many short kernels lose no precision.
struct ScopeSums {
  std::vector<Interval> intervals;
  std::uint64_t summed_ns = 0;
  std::uint64_t kernel_ns = 0;
};

double to_ms(std::uint64_t ns) { return static_cast<double>(ns) / 1e6; }

// CUPTI writes 0 and 0 for work it could not time; a reversed interval is just as unusable.
bool is_timed(std::uint64_t start_ns, std::uint64_t end_ns) {
  return (start_ns != 0 || end_ns != 0) && end_ns >= start_ns;
}

}  // namespace

// --- add ---------------------------------------------------------------------------------

void ScopeTimeBuilder::add(const ActivityRecord& record) {
  std::visit([this](const auto& r) { add(r); }, record);
}

void ScopeTimeBuilder::add(const GpuActivity& a) {
  work_.push_back(Work{a.start_ns, a.end_ns, a.correlation_id, a.runtime_correlation_id, a.kind});
}

void ScopeTimeBuilder::add(const ExternalCorrelation& c) {
  scope_of_correlation_.emplace(c.correlation_id, c.external_id);  // first one wins
}

// --- finish ------------------------------------------------------------------------------

GpuStepTimes ScopeTimeBuilder::finish(std::uint64_t dropped_records) {
  GpuStepTimes out;
  out.dropped_records = dropped_records;
  out.records = work_.size();

  std::map<std::uint64_t, ScopeSums> sums;
  std::vector<Interval> all_intervals;
  all_intervals.reserve(work_.size());
  std::uint64_t unattributed_ns = 0;

  for (const Work& w : work_) {
    const bool timed = is_timed(w.start_ns, w.end_ns);
    const std::uint64_t duration = timed ? w.end_ns - w.start_ns : 0;
    if (timed) all_intervals.emplace_back(w.start_ns, w.end_ns);
    else ++out.untimed_records;

    auto it = scope_of_correlation_.find(w.correlation_id);
    if (it == scope_of_correlation_.end() && w.runtime_correlation_id != 0)
      it = scope_of_correlation_.find(w.runtime_correlation_id);
    if (it == scope_of_correlation_.end()) {
      ++out.unattributed_records;
      unattributed_ns += duration;
      continue;
    }

    ScopeGpuTime& scope = out.scopes[it->second];
    ScopeSums& sum = sums[it->second];
    switch (w.kind) {
      case GpuActivityKind::kernel:
        ++scope.kernels;
        sum.kernel_ns += duration;
        break;
      case GpuActivityKind::memcpy: ++scope.memcpys; break;
      case GpuActivityKind::memset: ++scope.memsets; break;
    }
    sum.summed_ns += duration;
    if (timed) {
      if (sum.intervals.empty() || w.start_ns < scope.first_start_ns) scope.first_start_ns = w.start_ns;
      scope.last_end_ns = std::max(scope.last_end_ns, w.end_ns);
      sum.intervals.emplace_back(w.start_ns, w.end_ns);
    }
  }

  for (auto& [id, sum] : sums) {
    ScopeGpuTime& scope = out.scopes[id];
    scope.busy_ms = to_ms(union_length_ns(sum.intervals));
    scope.summed_ms = to_ms(sum.summed_ns);
    scope.kernel_ms = to_ms(sum.kernel_ns);
  }
  out.busy_ms = to_ms(union_length_ns(all_intervals));
  out.unattributed_ms = to_ms(unattributed_ns);

  work_.clear();
  scope_of_correlation_.clear();
  return out;
}

}  // namespace tidemark::profiler
