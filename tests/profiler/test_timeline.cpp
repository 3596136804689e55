// TimelineBuilder on synthetic events (Note [memory categories]).
#include "catch.hpp"
#include "tidemark/profiler/allocator_hook.hpp"
#include "tidemark/profiler/memory_timeline.hpp"

#include <cstdlib>
#include <string>

using namespace tidemark;
using namespace tidemark::profiler;

namespace {
const void* P(std::uintptr_t v) { return reinterpret_cast<const void*>(v); }
std::uint64_t level(const MemoryTimeline& t, MemoryCategory c, size_t i) {
  return t.category[static_cast<int>(c)][i];
}
}  // namespace

TEST_CASE("allocations are classified by role pointers and by the op that made them", "[profiler]") {
  TimelineBuilder b(0);
  b.seed(1000 + 64, {{P(1), {1000, MemoryCategory::Parameter}}});
  OpRecord fwd;
  fwd.phase = Phase::Forward;
  fwd.t0_ns = 10'000'000;
  fwd.t1_ns = 20'000'000;
  std::vector<MemoryEvent> ev = {
      {11'000'000, P(10), 300},   // kept past the forward: activation
      {12'000'000, P(11), 50},    // freed inside it: temporary
      {13'000'000, P(11), -50},
      {30'000'000, P(12), 200},   // backward: gradient (in the gradient role at 40 ms)
      {35'000'000, P(10), -300},  // activation freed in backward
      {50'000'000, P(12), -200},  // zero_grad
  };
  b.add_step(ev, {fwd}, {{MemoryCategory::Gradient, 40'000'000, {P(12)}}});
  // Samples milliseconds apart are all kept (no reduction across long gaps).
  MemoryTimeline t = b.finish();
  REQUIRE(t.size() == ev.size());
  CHECK(level(t, MemoryCategory::Parameter, 0) == 1000);
  CHECK(level(t, MemoryCategory::Input, 0) == 64);  // live but unknown: the batch
  CHECK(level(t, MemoryCategory::Activation, 0) == 300);
  CHECK(level(t, MemoryCategory::Temporary, 1) == 50);
  CHECK(level(t, MemoryCategory::Temporary, 2) == 0);
  CHECK(level(t, MemoryCategory::Gradient, 3) == 200);
  CHECK(level(t, MemoryCategory::Activation, 4) == 0);
  CHECK(t.total[5] == 1064);
}

TEST_CASE("timeline reduction drops only samples inside monotone runs", "[profiler]") {
  TimelineBuilder b(0);
  b.seed(0, {});
  std::vector<MemoryEvent> ev;
  std::int64_t t = 0;
  for (int i = 0; i < 50; ++i) ev.push_back({t += 10, P(100 + i), 10});  // rising run
  for (int i = 0; i < 50; ++i) ev.push_back({t += 10, P(100 + i), -10});  // falling run
  b.add_step(ev, {}, {});
  MemoryTimeline r = b.finish();
  CHECK(b.raw_samples() == 100);
  CHECK(r.size() == 3);  // start, the peak, end
  std::uint64_t peak = 0;
  for (auto v : r.total) peak = std::max(peak, v);
  CHECK(peak == 500);
}

TEST_CASE("sizes derived from tensors are counted as the allocator reports them", "[profiler]") {
  using tidemark::profiler::allocated_size;
  CHECK(allocated_size(4, false) == 4);
  CHECK(allocated_size(1000, false) == 1000);
  CHECK(allocated_size(4, true) == 512);
  CHECK(allocated_size(512, true) == 512);
  CHECK(allocated_size(513, true) == 1024);
  CHECK(allocated_size(0, true) == 0);
  // Note [CUDA block sizes]: set before main, so no CUDA allocation precedes it.
  const char* conf = std::getenv("PYTORCH_CUDA_ALLOC_CONF");
  REQUIRE(conf != nullptr);
  CHECK(std::string(conf).find("expandable_segments") != std::string::npos);
}

TEST_CASE("offload's host bytes make their own column, outside the device total", "[profiler][offload]") {
  TimelineBuilder b(0);
  b.seed(0, {});
  std::vector<MemoryEvent> ev = {
      {1'000'000, P(10), 300},
      {2'000'000, nullptr, 4096, true},   // offloaded
      {3'000'000, P(10), -300},
      {9'000'000, nullptr, -4096, true},  // back
  };
  b.add_step(ev, {}, {});
  MemoryTimeline t = b.finish();
  REQUIRE(t.size() == ev.size());
  REQUIRE(t.has_host());
  CHECK(t.host == std::vector<std::uint64_t>{0, 4096, 4096, 0});
  CHECK(t.total == std::vector<std::uint64_t>{300, 300, 0, 0});
}
