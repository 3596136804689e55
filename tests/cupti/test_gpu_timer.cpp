// GpuTimer over FakeActivitySource: scopes opened and closed the way the profiler does
// (nested, on two threads, reused across steps), records delivered across buffers in
// CUPTI's awkward orders.
#include <atomic>
#include <stdexcept>
#include <thread>

#include "catch.hpp"
#include "cupti/records.hpp"
#include "tidemark/profiler/fake_activity_source.hpp"
#include "tidemark/profiler/gpu_timer.hpp"

using namespace tidemark::profiler;
using namespace tidemark::profiler::test;

namespace {

struct Rig {
  FakeActivitySource* fake;
  GpuTimer timer;
  Rig() : Rig(std::make_unique<FakeActivitySource>()) {}

 private:
  explicit Rig(std::unique_ptr<FakeActivitySource> f) : fake(f.get()), timer(std::move(f)) {}
};

}  // namespace

TEST_CASE("timer: a kernel straddling a scope boundary stays with the scope that launched it",
          "[cupti]") {
  Rig rig;
  rig.timer.begin_scope(1);
  const auto k1 = rig.fake->launch();  // queued; the GPU runs it later
  rig.timer.end_scope(1);
  rig.timer.begin_scope(2);
  const auto k2 = rig.fake->launch();
  // The GPU finishes k1 only now, while scope 2 is open, and runs it after k2 started.
  rig.fake->emit_gpu(k2, ms(1), ms(3));
  rig.fake->emit_gpu(k1, ms(2), ms(6), 2);
  rig.timer.end_scope(2);
  const auto t = rig.timer.collect();
  CHECK(t.scopes.at(1).kernels == 1);
  CHECK(t.scopes.at(1).busy_ms == Approx(4.0));
  CHECK(t.scopes.at(2).kernels == 1);
  CHECK(t.scopes.at(2).busy_ms == Approx(2.0));
  CHECK(t.busy_ms == Approx(5.0));
}

TEST_CASE("timer: correlation records before or after their kernels, across buffers",
          "[cupti]") {
  Rig rig;
  // External correlation in buffer 1, its kernel in buffer 3.
  rig.timer.begin_scope(10);
  const auto early = rig.fake->launch();
  rig.timer.end_scope(10);
  rig.fake->end_buffer();
  // Kernel in buffer 2, its external correlation only in buffer 3 (emitted by hand: CUPTI
  // writes API-side and GPU-side records into different buffers, completed in any order).
  rig.fake->emit(kernel(900, 10, 12));
  rig.fake->end_buffer();
  rig.fake->emit(ext(900, 11));
  rig.fake->emit_gpu(early, ms(0), ms(1));
  rig.fake->end_buffer();
  const auto t = rig.timer.collect();
  CHECK(rig.fake->delivered_buffers() == 3);
  CHECK(t.scopes.at(10).busy_ms == Approx(1.0));
  CHECK(t.scopes.at(11).busy_ms == Approx(2.0));
  CHECK(t.unattributed_records == 0);
}

TEST_CASE("timer: nested scopes, the innermost wins", "[cupti]") {
  Rig rig;
  rig.timer.begin_scope(100);  // e.g. a stage's backward
  rig.fake->launch_kernel(ms(0), ms(1));
  {
    GpuScope inner(&rig.timer, 101);  // e.g. its recompute
    rig.fake->launch_kernel(ms(1), ms(3));
    rig.fake->launch_kernel(ms(3), ms(4));
  }
  rig.fake->launch_kernel(ms(4), ms(8));
  rig.timer.end_scope(100);
  const auto t = rig.timer.collect();
  CHECK(t.scopes.at(100).kernels == 2);
  CHECK(t.scopes.at(100).busy_ms == Approx(5.0));
  CHECK(t.scopes.at(101).kernels == 2);
  CHECK(t.scopes.at(101).busy_ms == Approx(3.0));
}

TEST_CASE("timer: launches outside every scope are unattributed", "[cupti]") {
  Rig rig;
  rig.fake->launch_kernel(ms(0), ms(2));  // e.g. the optimizer step
  rig.timer.begin_scope(1);
  rig.fake->launch_kernel(ms(2), ms(3));
  rig.timer.end_scope(1);
  const auto t = rig.timer.collect();
  CHECK(t.unattributed_records == 1);
  CHECK(t.unattributed_ms == Approx(2.0));
  CHECK(t.scopes.at(1).kernels == 1);
}

TEST_CASE("timer: forward on the main thread and backward on a worker thread", "[cupti]") {
  // Scopes are per thread: while the worker's scope is open, the main thread's launches
  // still belong to the main thread's scope.
  Rig rig;
  std::atomic<int> phase{0};
  rig.timer.begin_scope(1);
  std::thread worker([&] {
    rig.timer.begin_scope(2);
    phase = 1;
    for (int i = 0; i < 50; ++i) rig.fake->launch_kernel(ms(100 + i), ms(100.5 + i), 3);
    while (phase.load() != 2) std::this_thread::yield();
    rig.timer.end_scope(2);
  });
  while (phase.load() != 1) std::this_thread::yield();
  for (int i = 0; i < 30; ++i) rig.fake->launch_kernel(ms(i), ms(i + 0.25), 1);
  phase = 2;
  worker.join();
  rig.timer.end_scope(1);
  const auto t = rig.timer.collect();
  CHECK(t.scopes.at(1).kernels == 30);
  CHECK(t.scopes.at(1).busy_ms == Approx(7.5));
  CHECK(t.scopes.at(2).kernels == 50);
  CHECK(t.scopes.at(2).busy_ms == Approx(25.0));
  CHECK(t.unattributed_records == 0);
}

TEST_CASE("timer: scope ids reused across steps, collect() starts a new step", "[cupti]") {
  Rig rig;
  for (int step = 0; step < 3; ++step) {
    rig.timer.begin_scope(42);
    for (int i = 0; i <= step; ++i) rig.fake->launch_kernel(ms(i), ms(i + 1));
    rig.timer.end_scope(42);
    const auto t = rig.timer.collect();
    CHECK(t.scopes.at(42).kernels == static_cast<std::uint32_t>(step + 1));
    CHECK(t.scopes.at(42).busy_ms == Approx(step + 1.0));
    CHECK(t.records == static_cast<std::uint64_t>(step + 1));
  }
}

TEST_CASE("timer: dropped records are reported once", "[cupti]") {
  Rig rig;
  rig.fake->add_dropped(3);
  CHECK(rig.timer.collect().dropped_records == 3);
  CHECK(rig.timer.collect().dropped_records == 0);
}

TEST_CASE("timer: misuse is logged, never thrown", "[cupti]") {
  Rig rig;
  rig.timer.begin_scope(1);
  rig.timer.begin_scope(2);
  CHECK_NOTHROW(rig.timer.end_scope(1));  // wrong order: closes 2 (the innermost)
  rig.fake->launch_kernel(ms(0), ms(1));
  CHECK_NOTHROW(rig.timer.end_scope(2));
  CHECK_NOTHROW(rig.timer.end_scope(3));  // nothing open
  const auto t = rig.timer.collect();
  CHECK(t.scopes.at(1).kernels == 1);  // the stack, not the ids passed, decides

  rig.timer.begin_scope(7);
  CHECK_NOTHROW(rig.timer.collect());  // collect with a scope open
  rig.timer.end_scope(7);

  GpuScope no_timer(nullptr, 5);  // profiling without a GPU timer: a no-op
}

namespace {
class ThrowingSource : public ActivitySource {
 public:
  void push_external_id(std::uint64_t) override {}
  std::optional<std::uint64_t> pop_external_id() override { return std::nullopt; }
  void drain(const RecordSink& sink) override {
    sink(ext(1, 1));
    sink(kernel(1, 0, 1));
    throw std::runtime_error("backend exploded");
  }
  std::uint64_t take_dropped_records() override { return 0; }
};
}  // namespace

TEST_CASE("timer: a failing source yields an empty step, not an exception", "[cupti]") {
  GpuTimer timer(std::make_unique<ThrowingSource>());
  GpuStepTimes t;
  REQUIRE_NOTHROW(t = timer.collect());
  CHECK(t.scopes.empty());
  CHECK(t.records == 0);
  REQUIRE_NOTHROW(t = timer.collect());  // and the half-read step does not leak into the next
  CHECK(t.scopes.empty());
}
