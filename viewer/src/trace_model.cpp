// TraceModel: indexes built once at load so that every frame query is logarithmic.
//
// Sections: [1] building (extent, peak, lanes, stats) · [2] lane queries · [3] misc queries
#include "tidemark/viewer/trace_model.hpp"

#include <algorithm>
#include <limits>

namespace tidemark::viewer {

Phase LaneRun::dominant_phase() const {
  int best = 0;
  for (int p = 1; p < kPhaseCount; ++p) {
    if (phase_count[static_cast<std::size_t>(p)] > phase_count[static_cast<std::size_t>(best)]) best = p;
  }
  return static_cast<Phase>(best);
}

// ---- [1] building -----------------------------------------------------------------------------

std::shared_ptr<const TraceModel> TraceModel::load(const std::string& path) {
  return build(read_trace(path), path);
}

std::shared_ptr<const TraceModel> TraceModel::build(Trace trace, std::string source) {
  return std::shared_ptr<const TraceModel>(new TraceModel(std::move(trace), std::move(source)));
}

TraceModel::TraceModel(Trace trace, std::string source) : trace_(std::move(trace)), source_(std::move(source)) {
  const Trace& t = trace_;
  std::int64_t lo = std::numeric_limits<std::int64_t>::max();
  std::int64_t hi = std::numeric_limits<std::int64_t>::min();
  auto extend = [&](std::int64_t a, std::int64_t b) {
    lo = std::min(lo, a);
    hi = std::max(hi, b);
  };
  if (t.memory.size() > 0) extend(t.memory.t_us.front(), t.memory.t_us.back());
  for (const auto& s : t.spans) extend(s.start_us, s.end_us);
  for (const auto& s : t.steps) extend(s.start_us, s.end_us);
  if (lo > hi) lo = 0, hi = 1;
  if (hi == lo) hi = lo + 1;
  begin_us_ = lo;
  end_us_ = hi;

  lod_ = std::make_unique<MemoryLod>(t.memory, end_us_);
  if (t.memory.size() > 0) {
    RangeExtremes e = lod_->extremes(SampleRange{0, static_cast<std::uint32_t>(t.memory.size())});
    peak_ = PeakInfo{true, e.at_max, t.memory.t_us[e.at_max], e.max_total};
  }

  // Lanes: one per stage, and two for offload's copies when there are any; spans sorted by
  // start (ties: longer first, so a parent-like span is met before what it contains).
  const int stages = static_cast<int>(t.stages.size());
  bool copies = false;
  for (const auto& s : t.spans) copies = copies || is_copy(s.phase);
  lanes_.resize(t.stages.size() + (copies ? 2 : 0));
  for (std::uint32_t i = 0; i < t.spans.size(); ++i) {
    const Span& s = t.spans[i];
    if (s.stage < 0 || s.stage >= stages) continue;
    const int lane = !is_copy(s.phase) ? s.stage : stages + (s.phase == Phase::CopyIn ? 1 : 0);
    lanes_[static_cast<std::size_t>(lane)].spans.push_back(i);
  }
  for (Lane& lane : lanes_) {
    std::stable_sort(lane.spans.begin(), lane.spans.end(), [&](std::uint32_t a, std::uint32_t b) {
      const Span& x = t.spans[a];
      const Span& y = t.spans[b];
      if (x.start_us != y.start_us) return x.start_us < y.start_us;
      return x.end_us > y.end_us;
    });
    const std::size_t n = lane.spans.size();
    lane.start.resize(n);
    lane.max_end.resize(n);
    for (auto& p : lane.phase_prefix) p.assign(n + 1, 0);
    std::int64_t running = std::numeric_limits<std::int64_t>::min();
    for (std::size_t k = 0; k < n; ++k) {
      const Span& s = t.spans[lane.spans[k]];
      lane.start[k] = s.start_us;
      running = std::max(running, s.end_us);
      lane.max_end[k] = running;
      for (int p = 0; p < kPhaseCount; ++p) {
        lane.phase_prefix[static_cast<std::size_t>(p)][k + 1] =
            lane.phase_prefix[static_cast<std::size_t>(p)][k] + (static_cast<int>(s.phase) == p ? 1 : 0);
      }
    }
  }

  // Per-stage table: time per step in each phase.
  const double steps = static_cast<double>(std::max<std::size_t>(1, step_count()));
  stats_.resize(t.stages.size());
  std::vector<std::array<double, 3>> sum(t.stages.size(), {0, 0, 0});
  for (const auto& s : t.spans) {
    if (s.stage < 0 || s.stage >= stages || is_copy(s.phase)) continue;
    auto& st = stats_[static_cast<std::size_t>(s.stage)];
    sum[static_cast<std::size_t>(s.stage)][static_cast<std::size_t>(s.phase)] += static_cast<double>(s.end_us - s.start_us);
    if (s.phase == Phase::Forward) ++st.forward_count;
    if (s.phase == Phase::Backward) ++st.backward_count;
    if (s.phase == Phase::Recompute) ++st.recompute_count;
  }
  for (std::size_t i = 0; i < t.stages.size(); ++i) {
    StageStats& st = stats_[i];
    st.stage = static_cast<int>(i);
    st.name = t.stages[i].name;
    st.kind = t.stages[i].kind;
    st.action = t.stages[i].action;
    st.saved_bytes = t.stages[i].saved_bytes;
    st.forward_us = sum[i][0] / steps;
    st.backward_us = sum[i][1] / steps;
    st.recompute_us = sum[i][2] / steps;
  }
}

const std::string& TraceModel::lane_name(int lane) const {
  static const std::string out = "copies to host", in = "copies from host";
  if (lane < stage_lane_count()) return trace_.stages[static_cast<std::size_t>(lane)].name;
  return lane == stage_lane_count() ? out : in;
}

std::size_t TraceModel::step_count() const {
  if (!trace_.steps.empty()) return trace_.steps.size();
  std::vector<int> ids;
  ids.reserve(trace_.spans.size());
  for (const auto& s : trace_.spans) ids.push_back(s.step);
  std::sort(ids.begin(), ids.end());
  return static_cast<std::size_t>(std::unique(ids.begin(), ids.end()) - ids.begin());
}

std::uint64_t TraceModel::y_max_bytes() const {
  std::uint64_t m = std::max(peak_.bytes, trace_.peak_bytes);
  if (trace_.budget_bytes) m = std::max(m, *trace_.budget_bytes);
  if (trace_.predicted_peak_bytes) m = std::max(m, *trace_.predicted_peak_bytes);
  return m;
}

// ---- [2] lane queries -------------------------------------------------------------------------

std::size_t TraceModel::first_ending_after(const Lane& lane, double t) const {
  // max_end is non-decreasing, so the spans that can reach past t form a suffix.
  auto it = std::upper_bound(lane.max_end.begin(), lane.max_end.end(), t,
                             [](double v, std::int64_t e) { return v < static_cast<double>(e); });
  return static_cast<std::size_t>(it - lane.max_end.begin());
}

void TraceModel::lane_runs(int stage, double t0, double t1, double merge_us, std::vector<LaneRun>& out) const {
  if (stage < 0 || stage >= lane_count()) return;
  const Lane& lane = lanes_[static_cast<std::size_t>(stage)];
  const std::size_t n = lane.spans.size();
  // A merged run stops growing at this width, so a zoomed-out lane still shows where its
  // work happened instead of one smear across the trace.
  const double max_merged = 3 * merge_us;
  auto starting_before = [&](std::size_t from, double t) {
    auto it = std::lower_bound(lane.start.begin() + static_cast<std::ptrdiff_t>(from), lane.start.end(), t,
                               [](std::int64_t s, double v) { return static_cast<double>(s) < v; });
    return static_cast<std::size_t>(it - lane.start.begin());
  };
  auto finish = [&](LaneRun& r) {
    for (int p = 0; p < kPhaseCount; ++p) {
      const auto& pre = lane.phase_prefix[static_cast<std::size_t>(p)];
      r.phase_count[static_cast<std::size_t>(p)] = pre[r.last] - pre[r.first];
    }
    out.push_back(r);
  };
  std::size_t i = first_ending_after(lane, t0);
  while (i < n && static_cast<double>(lane.start[i]) < t1) {
    const Span& s = trace_.spans[lane.spans[i]];
    LaneRun r;
    r.start_us = static_cast<double>(s.start_us);
    r.end_us = static_cast<double>(s.end_us);
    r.first = static_cast<std::uint32_t>(i);
    if (r.end_us - r.start_us >= merge_us) {
      r.last = static_cast<std::uint32_t>(i + 1);
      finish(r);
      ++i;
      continue;
    }
    // Absorb every span that starts within merge_us of the run's end, as long as the next
    // one is small too; binary searches skip over the spans in between, so a pixel that
    // holds a thousand spans costs one search, not a thousand steps.
    std::size_t j = i + 1;
    for (;;) {
      const std::size_t k = starting_before(j, r.end_us + merge_us);
      if (k == j) break;
      const Span& next = trace_.spans[lane.spans[j]];
      if (next.end_us - next.start_us >= merge_us) break;
      r.end_us = std::max(r.end_us, static_cast<double>(lane.max_end[k - 1]));
      j = k;
      if (r.end_us - r.start_us >= max_merged) break;
    }
    r.last = static_cast<std::uint32_t>(j);
    finish(r);
    i = j;
  }
}

std::optional<std::uint32_t> TraceModel::hit_span(int stage, double t, double tolerance_us) const {
  if (stage < 0 || stage >= lane_count()) return std::nullopt;
  const Lane& lane = lanes_[static_cast<std::size_t>(stage)];
  std::optional<std::uint32_t> best;
  double best_distance = std::numeric_limits<double>::infinity();
  for (std::size_t i = first_ending_after(lane, t - tolerance_us);
       i < lane.spans.size() && static_cast<double>(lane.start[i]) <= t + tolerance_us; ++i) {
    const Span& s = trace_.spans[lane.spans[i]];
    const double a = static_cast<double>(s.start_us), b = static_cast<double>(s.end_us);
    if (a <= t && t <= b) return lane.spans[i];
    const double d = t < a ? a - t : t - b;
    if (d <= tolerance_us && d < best_distance) {
      best_distance = d;
      best = lane.spans[i];
    }
  }
  return best;
}

// ---- [3] misc queries -------------------------------------------------------------------------

std::optional<std::size_t> TraceModel::step_at(double t) const {
  const auto& steps = trace_.steps;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    // Steps are few (tens to thousands) and queried once per hover: a scan is enough, and
    // it does not assume the file lists them in order.
    if (static_cast<double>(steps[i].start_us) <= t && t <= static_cast<double>(steps[i].end_us)) return i;
  }
  return std::nullopt;
}

}  // namespace tidemark::viewer
