// ScopeTimeBuilder on synthetic records: attribution by launch, arrival order, streams,
// missing correlations, untimed work. See Note [Attribution] in scope_time_builder.hpp.
#include <algorithm>
#include <random>
#include <vector>

#include "catch.hpp"
#include "cupti/records.hpp"
#include "tidemark/profiler/scope_time_builder.hpp"

using namespace tidemark::profiler;
using namespace tidemark::profiler::test;

namespace {

GpuStepTimes build(const std::vector<ActivityRecord>& records, std::uint64_t dropped = 0) {
  ScopeTimeBuilder b;
  for (const auto& r : records) b.add(r);
  return b.finish(dropped);
}

void require_same(const GpuStepTimes& a, const GpuStepTimes& b) {
  REQUIRE(a.scopes.size() == b.scopes.size());
  for (const auto& [id, s] : a.scopes) {
    REQUIRE(b.scopes.count(id) == 1);
    const ScopeGpuTime& t = b.scopes.at(id);
    CHECK(s.busy_ms == t.busy_ms);
    CHECK(s.summed_ms == t.summed_ms);
    CHECK(s.kernel_ms == t.kernel_ms);
    CHECK(s.kernels == t.kernels);
    CHECK(s.memcpys == t.memcpys);
    CHECK(s.memsets == t.memsets);
    CHECK(s.first_start_ns == t.first_start_ns);
    CHECK(s.last_end_ns == t.last_end_ns);
  }
  CHECK(a.records == b.records);
  CHECK(a.unattributed_records == b.unattributed_records);
  CHECK(a.unattributed_ms == b.unattributed_ms);
  CHECK(a.untimed_records == b.untimed_records);
  CHECK(a.busy_ms == b.busy_ms);
}

}  // namespace

TEST_CASE("a kernel belongs to the scope that launched it, not to the one open when it runs",
          "[cupti]") {
  // Host: scope 1 launches k1 and k3 at t~0, then scope 2 opens and launches k2.
  // GPU:  k1 [0,5)  k2 [5,6)  k3 [6,8): k3 runs entirely after scope 2 opened and after
  //       scope 2's own kernel, and still belongs to scope 1.
  const auto t = build({ext(1, 1), ext(3, 1), ext(2, 2), kernel(1, 0, 5), kernel(2, 5, 6),
                        kernel(3, 6, 8)});
  REQUIRE(t.scopes.size() == 2);
  CHECK(t.scopes.at(1).kernels == 2);
  CHECK(t.scopes.at(1).busy_ms == Approx(7.0));
  CHECK(t.scopes.at(1).first_start_ns == ms(0));
  CHECK(t.scopes.at(1).last_end_ns == ms(8));
  CHECK(t.scopes.at(2).kernels == 1);
  CHECK(t.scopes.at(2).busy_ms == Approx(1.0));
  CHECK(t.busy_ms == Approx(8.0));
  CHECK(t.unattributed_records == 0);
}

TEST_CASE("several streams: busy time is the union, summed time counts overlap twice",
          "[cupti]") {
  // stream 1: [0,4)          stream 2: [2,6) then a memcpy [6,7)        stream 3: [10,11)
  // union = [0,7) + [10,11) = 8 ms; summed = 4 + 4 + 1 + 1 = 10 ms; kernels only = 9 ms.
  const auto t = build({ext(1, 9), ext(2, 9), ext(3, 9), ext(4, 9), kernel(1, 0, 4, 1),
                        kernel(2, 2, 6, 2), gpu(GpuActivityKind::memcpy, 3, 6, 7, 2),
                        kernel(4, 10, 11, 3)});
  const ScopeGpuTime& s = t.scopes.at(9);
  CHECK(s.busy_ms == Approx(8.0));
  CHECK(s.summed_ms == Approx(10.0));
  CHECK(s.kernel_ms == Approx(9.0));
  CHECK(s.kernels == 3);
  CHECK(s.memcpys == 1);
  CHECK(s.memsets == 0);
  CHECK(t.busy_ms == Approx(8.0));
}

TEST_CASE("step busy time is the union over every record, attributed or not", "[cupti]") {
  // scope 1 [0,2), unattributed [1,3) on another stream, scope 2 [5,6): union 4 ms.
  const auto t = build({ext(1, 1), ext(3, 2), kernel(1, 0, 2, 1), kernel(2, 1, 3, 2),
                        kernel(3, 5, 6, 1)});
  CHECK(t.busy_ms == Approx(4.0));
  CHECK(t.unattributed_records == 1);
  CHECK(t.unattributed_ms == Approx(2.0));
}

TEST_CASE("missing correlations are counted as unattributed", "[cupti]") {
  // k2 has no external correlation (launched outside every scope, or its record was
  // lost); correlation 7 belongs to an API call with no GPU work (cudaMalloc) and must
  // not create a scope.
  const auto t = build({ext(1, 4), ext(7, 5), kernel(1, 0, 1), kernel(2, 1, 3),
                        gpu(GpuActivityKind::memset, 8, 3, 3.5)});
  REQUIRE(t.scopes.size() == 1);
  CHECK(t.scopes.count(5) == 0);
  CHECK(t.records == 3);
  CHECK(t.unattributed_records == 2);
  CHECK(t.unattributed_ms == Approx(2.5));
  CHECK(t.scopes.at(4).busy_ms == Approx(1.0));
}

TEST_CASE("a memcpy is attributed through its runtime correlation when the driver one has none",
          "[cupti]") {
  GpuActivity copy = gpu(GpuActivityKind::memcpy, 50, 0, 2);
  copy.runtime_correlation_id = 49;
  const auto t = build({ext(49, 3), copy});
  REQUIRE(t.scopes.count(3) == 1);
  CHECK(t.scopes.at(3).memcpys == 1);
  CHECK(t.scopes.at(3).busy_ms == Approx(2.0));
  CHECK(t.unattributed_records == 0);
}

TEST_CASE("untimed records are counted but add no time", "[cupti]") {
  GpuActivity untimed = kernel(2, 0, 0);
  untimed.start_ns = untimed.end_ns = 0;
  GpuActivity reversed = kernel(3, 5, 4);  // end before start: unusable as well
  const auto t = build({ext(1, 6), ext(2, 6), ext(3, 6), kernel(1, 1, 2), untimed, reversed});
  const ScopeGpuTime& s = t.scopes.at(6);
  CHECK(s.kernels == 3);
  CHECK(s.busy_ms == Approx(1.0));
  CHECK(s.summed_ms == Approx(1.0));
  CHECK(s.first_start_ns == ms(1));
  CHECK(s.last_end_ns == ms(2));
  CHECK(t.untimed_records == 2);
  CHECK(t.busy_ms == Approx(1.0));
}

TEST_CASE("a correlation mapped twice keeps its first scope", "[cupti]") {
  const auto t = build({ext(1, 10), ext(1, 11), kernel(1, 0, 1)});
  CHECK(t.scopes.count(10) == 1);
  CHECK(t.scopes.count(11) == 0);
}

TEST_CASE("the result does not depend on the order records arrive in", "[cupti]") {
  // Three scopes on three streams, overlapping, plus unattributed and untimed work.
  std::vector<ActivityRecord> records;
  std::uint32_t correlation = 1;
  for (int i = 0; i < 60; ++i, ++correlation) {
    const std::uint64_t scope = static_cast<std::uint64_t>(i % 4);  // 3 = no scope
    if (scope != 3) records.push_back(ext(correlation, 100 + scope));
    const double start = 0.25 * i + (i % 3);
    records.push_back(kernel(correlation, start, start + 0.5 + 0.1 * (i % 5),
                             static_cast<std::uint32_t>(i % 3)));
  }
  GpuActivity untimed = kernel(correlation, 0, 0);
  untimed.start_ns = 0;
  records.push_back(ext(correlation, 100));
  records.push_back(untimed);
  const GpuStepTimes reference = build(records);
  REQUIRE(reference.scopes.size() == 3);
  REQUIRE(reference.unattributed_records == 15);

  std::mt19937 rng(12345);
  for (int round = 0; round < 50; ++round) {
    std::shuffle(records.begin(), records.end(), rng);
    require_same(reference, build(records));
  }
}

TEST_CASE("finish resets the builder for the next step", "[cupti]") {
  ScopeTimeBuilder b;
  b.add(ext(1, 5));
  b.add(kernel(1, 0, 2));
  const auto first = b.finish(4);
  CHECK(first.scopes.at(5).kernels == 1);
  CHECK(first.dropped_records == 4);
  // Same scope id in the next step; a late record for step 1's correlation no longer
  // finds its scope.
  b.add(ext(2, 5));
  b.add(kernel(2, 10, 11));
  b.add(kernel(1, 11, 12));
  const auto second = b.finish();
  CHECK(second.scopes.at(5).kernels == 1);
  CHECK(second.scopes.at(5).busy_ms == Approx(1.0));
  CHECK(second.unattributed_records == 1);
  CHECK(second.dropped_records == 0);
}

TEST_CASE("an empty step has no scopes and no time", "[cupti]") {
  ScopeTimeBuilder b;
  const auto t = b.finish();
  CHECK(t.scopes.empty());
  CHECK(t.records == 0);
  CHECK(t.busy_ms == 0);
}
