// The rasterized plots, pixel by pixel: stacked bands in category colours, the top of each
// column at its true peak, lines where the budget and prediction are, lanes in phase
// colours.
#include <algorithm>
#include <cmath>
#include <map>

#include "catch.hpp"
#include "tidemark/viewer/palette.hpp"
#include "tidemark/viewer/plot_raster.hpp"
#include "tidemark/viewer/trace_gen.hpp"

using namespace tidemark;
using namespace tidemark::viewer;

namespace {

std::map<std::uint32_t, std::size_t> histogram(const Image& img) {
  std::map<std::uint32_t, std::size_t> h;
  for (auto p : img.pixels) ++h[p];
  return h;
}

// Topmost row of column x that is not background, grid or line.
int top_of_stack(const Image& img, int x) {
  for (int y = 0; y < img.height; ++y) {
    const std::uint32_t p = img.at(x, y);
    for (auto c : palette::kCategory) {
      if (p == c) return y;
    }
  }
  return img.height;
}

}  // namespace

TEST_CASE("timeline image: bands in category colours stacked in order", "[viewer][raster]") {
  Trace t;
  t.stages = {{"s", "block", "save", 0}};
  // Two samples, each holding 50 us: 10/20/30/40/50/60 units, then twice that.
  t.memory.push(0, {10, 20, 30, 40, 50, 60});
  t.memory.push(50, {20, 40, 60, 80, 100, 120});
  t.steps = {{0, 0, 100, 420}};
  auto m = TraceModel::build(t);
  Image img;
  img.reset(100, 420, 0);
  std::vector<ColumnSample> cols;
  rasterize_timeline(*m, TimelineRaster{0, 100, 420, -1}, img, cols);
  // Column 20 (first sample): bottom 10 rows parameter, next 20 gradient, ... 210 in all.
  int y = 419;
  const int heights[] = {10, 20, 30, 40, 50, 60};
  for (int c = 0; c < kCategoryCount; ++c) {
    for (int k = 0; k < heights[c]; ++k, --y) {
      INFO("category " << c << " row " << y);
      REQUIRE(img.at(20, y) == palette::kCategory[c]);
    }
  }
  CHECK(top_of_stack(img, 20) == 420 - 210);
  CHECK(top_of_stack(img, 80) == 0);  // the second sample fills the plot: 420 units
  // Background above the first sample's stack (grid lines aside).
  CHECK((img.at(20, 5) == palette::kPlotBg || img.at(20, 5) == blend_over(palette::kPlotBg, palette::kGrid)));
}

TEST_CASE("timeline image: each column's top is its true peak at any zoom", "[viewer][raster]") {
  TraceGenOptions o = trace_gen_options_for(200000, 5000, true);
  // Only the areas: step lines and the dashed lines would sit on top of some columns.
  Trace t = generate_trace(o);
  t.steps.clear();
  t.budget_bytes.reset();
  t.predicted_peak_bytes.reset();
  auto m = TraceModel::build(std::move(t));
  const auto& tl = m->trace().memory;
  const double y_max = static_cast<double>(m->y_max_bytes()) * 1.08;
  std::vector<ColumnSample> cols;
  for (int width : {37, 400, 1450}) {
    Image img;
    img.reset(width, 300, 0);
    const double t0 = static_cast<double>(m->begin_us()), t1 = static_cast<double>(m->end_us());
    rasterize_timeline(*m, TimelineRaster{t0, t1, y_max, -1}, img, cols);
    m->memory().reduce(t0, t1, width, cols);
    int checked = 0;
    for (int x = 0; x < width; ++x) {
      if (cols[static_cast<std::size_t>(x)].samples.empty()) continue;
      // Brute force over the samples in the column: the highest total.
      const SampleRange r = cols[static_cast<std::size_t>(x)].samples;
      std::uint64_t mx = 0;
      for (std::uint32_t i = r.first; i < r.last; ++i) mx = std::max(mx, tl.total[i]);
      const int expect = static_cast<int>(std::lround(row_of_bytes(static_cast<double>(mx), y_max, 300)));
      // The top band may be thinner than half a pixel and round away; never more than one.
      const int got = top_of_stack(img, x);
      INFO("width " << width << " column " << x);
      CHECK(std::abs(got - expect) <= 1);
      ++checked;
    }
    CHECK(checked > width / 2);
  }
}

TEST_CASE("timeline image: budget and predicted lines, every category present", "[viewer][raster]") {
  TraceGenOptions o;
  o.input_bytes = 60ull << 20;  // so that the input band is tall enough to count
  auto m = TraceModel::build(generate_trace(o));
  Image img;
  img.reset(800, 400, 0);
  std::vector<ColumnSample> cols;
  const double y_max = static_cast<double>(m->y_max_bytes()) * 1.08;
  rasterize_timeline(*m, TimelineRaster{0, static_cast<double>(m->end_us()), y_max, 3}, img, cols);
  auto h = histogram(img);
  for (int c = 0; c < kCategoryCount; ++c) {
    INFO("category " << to_string(kAllCategories[static_cast<std::size_t>(c)]));
    CHECK(h[palette::kCategory[c]] > 500);
  }
  const int budget_row = static_cast<int>(std::lround(row_of_bytes(static_cast<double>(*m->trace().budget_bytes), y_max, 400)));
  int red = 0;
  for (int x = 0; x < 800; ++x) red += img.at(x, budget_row) == palette::kBudget;
  CHECK(red > 400);  // dashed: 10 on, 5 off
  // The selected stage's spans along the bottom edge, in phase colours.
  int marks = 0;
  for (int x = 0; x < 800; ++x) {
    const auto p = img.at(x, 399);
    marks += p == palette::kForward || p == palette::kBackward || p == palette::kRecompute;
  }
  CHECK(marks > 10);
}

TEST_CASE("lanes image: spans in phase colours, one row per stage, dimmed when another is selected",
          "[viewer][raster]") {
  TraceGenOptions o;
  o.steps = 2;
  auto m = TraceModel::build(generate_trace(o));
  const int rows = m->lane_count(), rh = 12;
  Image img;
  img.reset(1000, rows * rh, 0);
  std::vector<LaneRun> runs;
  const double t0 = 0, t1 = static_cast<double>(m->end_us());
  rasterize_lanes(*m, LanesRaster{t0, t1, rh, -1}, img, runs);
  auto h = histogram(img);
  CHECK(h[palette::kForward] > 200);
  CHECK(h[palette::kBackward] > 200);
  CHECK(h[palette::kRecompute] > 50);
  // Each span's middle pixel, in its stage's row, has its phase colour.
  for (const Span& s : m->trace().spans) {
    const double mid = 0.5 * static_cast<double>(s.start_us + s.end_us);
    const int x = static_cast<int>((mid - t0) / (t1 - t0) * 1000);
    if (static_cast<double>(s.end_us - s.start_us) / (t1 - t0) * 1000 < 4) continue;  // too thin to own a pixel
    CHECK(img.at(x, s.stage * rh + rh / 2) == palette::phase(s.phase));
  }
  // With stage 2 selected, other stages are dimmed and stage 2 keeps full colour.
  rasterize_lanes(*m, LanesRaster{t0, t1, rh, 2}, img, runs);
  for (const Span& s : m->trace().spans) {
    const double w = static_cast<double>(s.end_us - s.start_us) / (t1 - t0) * 1000;
    if (w < 6) continue;
    const int x = static_cast<int>((0.5 * static_cast<double>(s.start_us + s.end_us) - t0) / (t1 - t0) * 1000);
    const std::uint32_t p = img.at(x, s.stage * rh + rh / 2);
    if (s.stage == 2) {
      CHECK(p == palette::phase(s.phase));
    } else {
      CHECK(p == scaled(palette::phase(s.phase), 0.4f));
    }
  }
}

TEST_CASE("images of degenerate sizes and ranges do not crash", "[viewer][raster]") {
  auto m = TraceModel::build(generate_trace(TraceGenOptions{}));
  std::vector<ColumnSample> cols;
  std::vector<LaneRun> runs;
  for (auto [w, h] : {std::pair{0, 0}, std::pair{1, 1}, std::pair{3, 0}, std::pair{0, 5}}) {
    Image img;
    img.reset(w, h, 0);
    rasterize_timeline(*m, TimelineRaster{0, 100, 1000, -1}, img, cols);
    rasterize_timeline(*m, TimelineRaster{100, 100, 1000, -1}, img, cols);
    rasterize_lanes(*m, LanesRaster{0, 100, 1, 99}, img, runs);
    rasterize_lanes(*m, LanesRaster{0, 100, 0, -1}, img, runs);
  }
  Image img;
  img.reset(10, 10, 0);
  img.fill(-5, -5, 50, 50, rgba(1, 2, 3));
  CHECK(img.at(9, 9) == rgba(1, 2, 3));
  img.fill(5, 5, 2, 2, rgba(9, 9, 9));  // empty: nothing
  CHECK(img.at(3, 3) == rgba(1, 2, 3));
}
