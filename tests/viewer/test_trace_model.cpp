// TraceModel without a window: loading, lanes (visible runs and sub-pixel merging), hit
// testing against brute force, per-stage statistics, steps, extents.
#include <cstdio>
#include <random>
#include <set>

#include "catch.hpp"
#include "tidemark/core/error.hpp"
#include "tidemark/viewer/trace_gen.hpp"
#include "tidemark/viewer/trace_model.hpp"

using namespace tidemark;
using namespace tidemark::viewer;

namespace {

std::shared_ptr<const TraceModel> small_model(bool checkpoint = true, int steps = 3) {
  TraceGenOptions o;
  o.blocks = 6;
  o.steps = steps;
  o.checkpoint = checkpoint;
  o.samples_per_span = 6;
  return TraceModel::build(generate_trace(o), "gen.json");
}

// The brute-force answer hit_span must give: a span containing t if any, else the nearest
// within the tolerance.
std::optional<std::uint32_t> brute_hit(const Trace& t, int stage, double at, double tol) {
  std::optional<std::uint32_t> best;
  double best_d = 1e300;
  for (std::uint32_t i = 0; i < t.spans.size(); ++i) {
    const Span& s = t.spans[i];
    if (s.stage != stage) continue;
    const double a = static_cast<double>(s.start_us), b = static_cast<double>(s.end_us);
    if (a <= at && at <= b) return i;
    const double d = at < a ? a - at : at - b;
    if (d <= tol && d < best_d) {
      best_d = d;
      best = i;
    }
  }
  return best;
}

}  // namespace

TEST_CASE("hit testing finds the span under a time, or the nearest within tolerance", "[viewer][model]") {
  auto m = small_model();
  const Trace& t = m->trace();
  std::mt19937 rng(3);
  int hits = 0, near = 0, misses = 0;
  for (int i = 0; i < 5000; ++i) {
    const int stage = static_cast<int>(rng() % t.stages.size());
    const double at = static_cast<double>(m->begin_us()) - 100 +
                      static_cast<double>(rng() % static_cast<unsigned>(m->end_us() - m->begin_us() + 200));
    const double tol = static_cast<double>(rng() % 300);
    const auto got = m->hit_span(stage, at, tol);
    const auto want = brute_hit(t, stage, at, tol);
    INFO("stage " << stage << " t " << at << " tolerance " << tol);
    REQUIRE(got.has_value() == want.has_value());
    if (!got) {
      ++misses;
      continue;
    }
    const Span& g = t.spans[*got];
    CHECK(g.stage == stage);
    const bool contains = g.start_us <= at && at <= g.end_us;
    if (contains) {
      ++hits;
    } else {
      ++near;
      // Same distance as the brute-force nearest (ties may pick either neighbour).
      const Span& w = t.spans[*want];
      auto dist = [&](const Span& s) { return at < s.start_us ? s.start_us - at : at - s.end_us; };
      CHECK(dist(g) == dist(w));
    }
  }
  CHECK(hits > 100);
  CHECK(near > 10);
  CHECK(misses > 100);
  CHECK_FALSE(m->hit_span(-1, 0, 10).has_value());
  CHECK_FALSE(m->hit_span(999, 0, 10).has_value());
}

TEST_CASE("lane runs cover every visible span once and merge only sub-pixel spans", "[viewer][model]") {
  auto m = small_model(true, 5);
  const Trace& t = m->trace();
  std::mt19937 rng(5);
  for (int round = 0; round < 200; ++round) {
    const int stage = static_cast<int>(rng() % t.stages.size());
    const double span = static_cast<double>(m->end_us() - m->begin_us()) / (1 + rng() % 50);
    const double t0 = static_cast<double>(m->begin_us()) + static_cast<double>(rng() % 1000) / 1000.0 * span;
    const double t1 = t0 + span;
    const double merge = (round % 4 == 0) ? 0.0 : span / (50 + rng() % 2000);
    std::vector<LaneRun> runs;
    m->lane_runs(stage, t0, t1, merge, runs);
    const auto& lane = m->lane(stage);
    std::set<std::uint32_t> seen;
    std::uint32_t next = runs.empty() ? 0 : runs.front().first;
    for (const LaneRun& r : runs) {
      CHECK(r.first == next);  // contiguous, in lane order
      CHECK(r.last > r.first);
      next = r.last;
      CHECK(r.phase_count[0] + r.phase_count[1] + r.phase_count[2] == r.count());
      if (merge == 0.0) CHECK(r.count() == 1);
      for (std::uint32_t k = r.first; k < r.last; ++k) {
        seen.insert(lane[k]);
        const Span& s = t.spans[lane[k]];
        CHECK(static_cast<double>(s.start_us) >= r.start_us);
        CHECK(static_cast<double>(s.end_us) <= r.end_us);
        if (r.count() > 1) CHECK(static_cast<double>(s.end_us - s.start_us) < merge);
      }
    }
    // Every span of the stage that intersects [t0, t1) is in some run.
    for (std::uint32_t i = 0; i < t.spans.size(); ++i) {
      const Span& s = t.spans[i];
      if (s.stage != stage) continue;
      const bool visible = static_cast<double>(s.end_us) > t0 && static_cast<double>(s.start_us) < t1;
      if (visible) CHECK(seen.count(i) == 1);
    }
  }
}

TEST_CASE("a zoomed-out lane of many spans costs a bounded number of runs", "[viewer][model]") {
  TraceGenOptions o = trace_gen_options_for(50000, 20000, true);
  auto m = TraceModel::build(generate_trace(o));
  const double t0 = static_cast<double>(m->begin_us()), t1 = static_cast<double>(m->end_us());
  const double px = (t1 - t0) / 1500;
  std::size_t runs_total = 0;
  for (int stage = 0; stage < m->lane_count(); ++stage) {
    std::vector<LaneRun> runs;
    m->lane_runs(stage, t0, t1, 2 * px, runs);
    std::size_t spans = 0;
    for (const auto& r : runs) spans += r.count();
    CHECK(spans == m->lane(stage).size());
    // A run starts at least two pixels after the previous one starts, or is a wide span.
    CHECK(runs.size() <= 1500 / 2 + 2 + m->lane(stage).size() / 50);
    runs_total += runs.size();
  }
  CHECK(runs_total < m->trace().spans.size());
}

TEST_CASE("per-stage statistics, peak, steps and extent", "[viewer][model]") {
  auto m = small_model(true, 4);
  const Trace& t = m->trace();
  REQUIRE(m->stage_stats().size() == t.stages.size());
  CHECK(m->step_count() == 4);
  for (const StageStats& st : m->stage_stats()) {
    double fwd = 0, rec = 0;
    for (const Span& s : t.spans) {
      if (s.stage != st.stage) continue;
      if (s.phase == Phase::Forward) fwd += static_cast<double>(s.end_us - s.start_us);
      if (s.phase == Phase::Recompute) rec += static_cast<double>(s.end_us - s.start_us);
    }
    CHECK(st.forward_us == Approx(fwd / 4));
    CHECK(st.recompute_us == Approx(rec / 4));
    CHECK(st.forward_count == 4);
    CHECK(st.backward_count == 4);
    CHECK(st.name == t.stages[static_cast<std::size_t>(st.stage)].name);
    CHECK(st.action == t.stages[static_cast<std::size_t>(st.stage)].action);
    // Checkpointed stages (and the variant) are recomputed; saved ones are not.
    CHECK((st.recompute_count > 0) == (st.action != "save"));
  }
  const auto& total = t.memory.total;
  const auto max_it = std::max_element(total.begin(), total.end());
  CHECK(m->peak().valid);
  CHECK(m->peak().bytes == *max_it);
  CHECK(m->peak().sample == static_cast<std::uint32_t>(max_it - total.begin()));
  CHECK(m->y_max_bytes() >= *t.budget_bytes);
  CHECK(m->begin_us() == 0);
  CHECK(m->end_us() == t.steps.back().end_us);
  for (std::size_t i = 0; i < t.steps.size(); ++i) {
    const double mid = 0.5 * static_cast<double>(t.steps[i].start_us + t.steps[i].end_us);
    REQUIRE(m->step_at(mid).has_value());
    CHECK(*m->step_at(mid) == i);
  }
  CHECK_FALSE(m->step_at(-5).has_value());
}

TEST_CASE("a trace without memory, spans or steps still makes a model", "[viewer][model]") {
  Trace t;
  t.stages = {{"only", "block", "save", 0}};
  auto m = TraceModel::build(t);
  CHECK_FALSE(m->peak().valid);
  CHECK(m->end_us() > m->begin_us());
  CHECK(m->lane(0).empty());
  std::vector<LaneRun> runs;
  m->lane_runs(0, 0, 10, 1, runs);
  CHECK(runs.empty());
  CHECK(m->step_count() == 0);
}

TEST_CASE("TraceModel::load reads a file and reports bad ones as UserError", "[viewer][model]") {
  const std::string path = std::string(TIDEMARK_BINARY_DIR) + "/test_trace_model.json";
  Trace t = small_model()->trace();
  write_trace(path, t);
  auto m = TraceModel::load(path);
  CHECK(m->source() == path);
  CHECK(m->trace().spans.size() == t.spans.size());
  CHECK(m->trace().memory.size() == t.memory.size());
  std::remove(path.c_str());
  CHECK_THROWS_AS(TraceModel::load(path), UserError);
}

TEST_CASE("offload's copies get two lanes of their own after the stages", "[viewer][model][offload]") {
  Trace t = generate_trace(TraceGenOptions{});
  const int stages = static_cast<int>(t.stages.size());
  const auto without = TraceModel::build(t);
  CHECK(without->lane_count() == stages);  // no copies, no copy lanes
  t.spans.push_back(Span{1, Phase::CopyOut, 0, 100, 200});
  t.spans.push_back(Span{2, Phase::CopyOut, 0, 150, 260});
  t.spans.push_back(Span{1, Phase::CopyIn, 0, 900, 950});
  const auto m = TraceModel::build(t);
  REQUIRE(m->lane_count() == stages + 2);
  CHECK(m->lane_name(stages) == "copies to host");
  CHECK(m->lane_name(stages + 1) == "copies from host");
  CHECK(m->lane(stages).size() == 2);
  CHECK(m->lane(stages + 1).size() == 1);
  const auto hit = m->hit_span(stages + 1, 920, 1);
  REQUIRE(hit);
  CHECK(m->trace().spans[*hit].stage == 1);
  std::vector<LaneRun> runs;
  m->lane_runs(stages, 0, 1000, 1, runs);
  REQUIRE(runs.size() == 2);
  CHECK(runs[0].dominant_phase() == Phase::CopyOut);
  // The stage table counts no copy time.
  for (int k = 0; k < stages; ++k) {
    CHECK(m->stage_stats()[k].forward_us == without->stage_stats()[k].forward_us);
    CHECK(m->stage_stats()[k].backward_us == without->stage_stats()[k].backward_us);
  }
}
