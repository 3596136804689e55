// The synthetic traces have the shape the viewer and its tests rely on, and are valid
// tidemark.trace/1 files.
#include "catch.hpp"
#include "tidemark/viewer/trace_gen.hpp"

using namespace tidemark;
using namespace tidemark::viewer;

TEST_CASE("a generated step runs forward 0..L-1, then recompute and backward L-1..0", "[viewer][gen]") {
  TraceGenOptions o;
  o.blocks = 6;
  o.steps = 2;
  Trace t = generate_trace(o);
  const int L = static_cast<int>(t.stages.size());
  REQUIRE(L == 8);
  REQUIRE(t.steps.size() == 2);
  for (int step = 0; step < 2; ++step) {
    std::vector<const Span*> spans;
    for (const auto& s : t.spans) {
      if (s.step == step) spans.push_back(&s);
    }
    for (int i = 0; i < L; ++i) {
      CHECK(spans[static_cast<std::size_t>(i)]->phase == Phase::Forward);
      CHECK(spans[static_cast<std::size_t>(i)]->stage == i);
    }
    int expected_stage = L - 1, recomputes = 0;
    for (std::size_t k = static_cast<std::size_t>(L); k < spans.size(); ++k) {
      if (spans[k]->phase == Phase::Recompute) {
        ++recomputes;
        CHECK(t.stages[static_cast<std::size_t>(spans[k]->stage)].action != "save");
        continue;
      }
      CHECK(spans[k]->phase == Phase::Backward);
      CHECK(spans[k]->stage == expected_stage--);
    }
    CHECK(expected_stage == -1);
    CHECK(recomputes > 0);
    // Spans follow one another.
    for (std::size_t k = 1; k < spans.size(); ++k) CHECK(spans[k]->start_us >= spans[k - 1]->end_us);
  }
}

TEST_CASE("generated memory rises through forward, falls through backward, within budget", "[viewer][gen]") {
  TraceGenOptions o;
  Trace t = generate_trace(o);
  const auto& act = t.memory.category[static_cast<std::size_t>(MemoryCategory::Activation)];
  const auto& opt = t.memory.category[static_cast<std::size_t>(MemoryCategory::OptimizerState)];
  for (std::size_t i = 0; i < t.memory.size(); ++i) {
    std::uint64_t sum = 0;
    for (const auto& c : t.memory.category) sum += c[i];
    REQUIRE(t.memory.total[i] == sum);
    if (i > 0) REQUIRE(t.memory.t_us[i] >= t.memory.t_us[i - 1]);
  }
  // Activations at the end of the forward pass exceed those at the start and end of a step.
  const Span* last_forward = nullptr;
  for (const auto& s : t.spans) {
    if (s.step == 1 && s.phase == Phase::Forward) last_forward = &s;
  }
  REQUIRE(last_forward);
  std::uint64_t at_forward_end = 0, at_step_end = 0;
  for (std::size_t i = 0; i < t.memory.size(); ++i) {
    if (t.memory.t_us[i] <= last_forward->end_us) at_forward_end = act[i];
    if (t.memory.t_us[i] <= t.steps[1].end_us) at_step_end = act[i];
  }
  CHECK(at_forward_end > 10 * (at_step_end + 1));
  CHECK(opt.front() == 0);   // the optimizer state appears in the first step
  CHECK(opt.back() > 0);
  REQUIRE(t.budget_bytes.has_value());
  REQUIRE(t.predicted_peak_bytes.has_value());
  CHECK(t.peak_bytes <= *t.budget_bytes);
  std::uint64_t mx = 0;
  for (auto v : t.memory.total) mx = std::max(mx, v);
  CHECK(t.peak_bytes == mx);

  o.checkpoint = false;
  Trace none = generate_trace(o);
  CHECK_FALSE(none.budget_bytes.has_value());
  CHECK(none.mode == "none");
  for (const auto& s : none.spans) CHECK(s.phase != Phase::Recompute);
  CHECK(none.peak_bytes > t.peak_bytes);  // what checkpointing saves
}

TEST_CASE("sized generation reaches its targets and round-trips through the format", "[viewer][gen]") {
  TraceGenOptions o = trace_gen_options_for(30000, 3000, true);
  Trace t = generate_trace(o);
  CHECK(t.memory.size() >= 30000);
  CHECK(t.memory.size() < 36000);
  CHECK(t.spans.size() >= 3000);
  CHECK(t.spans.size() < 3300);
  Trace u = trace_from_json(trace_to_json(t), "gen.json");
  CHECK(u.spans.size() == t.spans.size());
  CHECK(u.memory.total == t.memory.total);
  CHECK(u.stages.size() == t.stages.size());
}
