// CPU rasterization of the timeline and the lanes (Note [Why rasterize on the CPU]).
//
// Sections: [1] Image · [2] timeline · [3] lanes
#include "tidemark/viewer/plot_raster.hpp"

#include <algorithm>
#include <cmath>

#include "tidemark/viewer/palette.hpp"
#include "tidemark/viewer/time_view.hpp"

namespace tidemark::viewer {

// ---- [1] Image --------------------------------------------------------------------------------

void Image::reset(int w, int h, std::uint32_t colour) {
  width = std::max(0, w);
  height = std::max(0, h);
  pixels.assign(static_cast<std::size_t>(width) * static_cast<std::size_t>(height), colour);
}

void Image::resize(int w, int h) {
  width = std::max(0, w);
  height = std::max(0, h);
  pixels.resize(static_cast<std::size_t>(width) * static_cast<std::size_t>(height));
}

void Image::fill(int x0, int y0, int x1, int y1, std::uint32_t colour) {
  x0 = std::max(x0, 0);
  y0 = std::max(y0, 0);
  x1 = std::min(x1, width);
  y1 = std::min(y1, height);
  if (x0 >= x1 || y0 >= y1) return;
  const bool opaque = alpha_of(colour) == 255;
  for (int y = y0; y < y1; ++y) {
    std::uint32_t* row = pixels.data() + static_cast<std::size_t>(y) * static_cast<std::size_t>(width);
    if (opaque) {
      std::fill(row + x0, row + x1, colour);
    } else {
      for (int x = x0; x < x1; ++x) row[x] = blend_over(row[x], colour);
    }
  }
}

void Image::dashed_row(int x0, int x1, int y, int thickness, int dash, int gap, std::uint32_t colour) {
  const int top = y - thickness / 2;
  for (int x = x0; x < x1; x += dash + gap) fill(x, top, std::min(x + dash, x1), top + thickness, colour);
}

void Image::outline(int x0, int y0, int x1, int y1, std::uint32_t colour) {
  fill(x0, y0, x1, y0 + 1, colour);
  fill(x0, y1 - 1, x1, y1, colour);
  fill(x0, y0, x0 + 1, y1, colour);
  fill(x1 - 1, y0, x1, y1, colour);
}

namespace {

// Pixel column of a time: x_of rounded to the nearest pixel edge.
struct XMap {
  double t0, px_per_us;
  int x(double t) const { return static_cast<int>(std::floor((t - t0) * px_per_us + 0.5)); }
};

void time_grid(Image& img, double t0, double t1) {
  const XMap xm{t0, img.width / (t1 - t0)};
  for (double t : time_ticks(t0, t1, max_time_ticks(img.width))) {
    const int x = xm.x(t);
    img.fill(x, 0, x + 1, img.height, palette::kGrid);
  }
}

}  // namespace

// ---- [2] timeline -----------------------------------------------------------------------------

void rasterize_timeline(const TraceModel& m, const TimelineRaster& in, Image& img, std::vector<ColumnSample>& columns) {
  std::fill(img.pixels.begin(), img.pixels.end(), palette::kPlotBg);
  if (img.width <= 0 || img.height <= 0 || !(in.t1 > in.t0) || !(in.y_max > 0)) return;
  const int h = img.height;
  auto row = [&](double bytes) { return static_cast<int>(std::lround(row_of_bytes(bytes, in.y_max, h))); };

  // Grid first, so the areas cover it.
  const double byte_step = nice_byte_step(in.y_max, max_byte_ticks(h));
  for (double b = byte_step; b <= in.y_max; b += byte_step) {
    const int y = row(b);
    img.fill(0, y, img.width, y + 1, palette::kGrid);
  }
  time_grid(img, in.t0, in.t1);

  // Areas: one column per pixel.
  m.memory().reduce(in.t0, in.t1, img.width, columns);
  const MemoryTimeline& tl = m.trace().memory;
  for (int x = 0; x < img.width; ++x) {
    const ColumnSample& col = columns[static_cast<std::size_t>(x)];
    if (col.samples.empty()) continue;
    const std::uint32_t k = col.extremes.at_max;
    double below = 0;
    int y_below = h;
    for (int c = 0; c < kCategoryCount; ++c) {
      const double top = below + static_cast<double>(tl.category[static_cast<std::size_t>(c)][k]);
      const int y_top = std::min(y_below, row(top));
      img.fill(x, y_top, x + 1, y_below, palette::kCategory[c]);
      below = top;
      y_below = y_top;
    }
    // The trough: where memory fell to inside this column, so each column shows its range.
    const int y_min = row(static_cast<double>(col.extremes.min_total));
    if (y_min - y_below >= 2) img.fill(x, y_min - 1, x + 1, y_min, palette::kTrough);
  }

  const XMap xm{in.t0, img.width / (in.t1 - in.t0)};
  // Step boundaries; when steps are denser than one per 6 pixels, every k-th only.
  const auto& steps = m.trace().steps;
  if (!steps.empty()) {
    const double mean = static_cast<double>(steps.back().end_us - steps.front().start_us) / static_cast<double>(steps.size());
    const double px_us = (in.t1 - in.t0) / img.width;
    const std::size_t every = std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(6 * px_us / std::max(1.0, mean))));
    for (std::size_t i = 0; i < steps.size(); i += every) {
      const int x = xm.x(static_cast<double>(steps[i].start_us));
      img.fill(x, 0, x + 1, h, palette::kStep);
    }
  }

  const Trace& t = m.trace();
  if (t.budget_bytes) img.dashed_row(0, img.width, row(static_cast<double>(*t.budget_bytes)), 2, 10, 5, palette::kBudget);
  if (t.predicted_peak_bytes) {
    img.dashed_row(0, img.width, row(static_cast<double>(*t.predicted_peak_bytes)), 1, 3, 4, palette::kPredicted);
  }

  // The selected stage's spans, along the bottom edge.
  if (in.selected_stage >= 0 && in.selected_stage < m.lane_count()) {
    std::vector<LaneRun> runs;
    m.lane_runs(in.selected_stage, in.t0, in.t1, 2 * (in.t1 - in.t0) / img.width, runs);
    for (const LaneRun& r : runs) {
      const int x0 = xm.x(r.start_us);
      img.fill(x0, h - 5, std::max(x0 + 1, xm.x(r.end_us)), h, palette::phase(r.dominant_phase()));
    }
  }
}

// ---- [3] lanes --------------------------------------------------------------------------------

void rasterize_lanes(const TraceModel& m, const LanesRaster& in, Image& img, std::vector<LaneRun>& runs) {
  std::fill(img.pixels.begin(), img.pixels.end(), palette::kPlotBg);
  if (img.width <= 0 || img.height <= 0 || !(in.t1 > in.t0) || in.row_height <= 0) return;
  const int rh = in.row_height;
  const XMap xm{in.t0, img.width / (in.t1 - in.t0)};
  const double merge_us = 2 * (in.t1 - in.t0) / img.width;
  const int pad = rh >= 6 ? 1 : 0;
  for (int stage = 0; stage < m.lane_count(); ++stage) {
    const int y0 = stage * rh, y1 = y0 + rh;
    if (y0 >= img.height) break;
    const bool selected = stage == in.selected_stage;
    if (selected) {
      img.fill(0, y0, img.width, y1, palette::kLaneSelected);
    } else if (stage % 2 == 1 && rh >= 4) {
      img.fill(0, y0, img.width, y1, palette::kLaneStripe);
    }
  }
  time_grid(img, in.t0, in.t1);
  for (int stage = 0; stage < m.lane_count(); ++stage) {
    const int y0 = stage * rh, y1 = y0 + rh;
    if (y0 >= img.height) break;
    const bool selected = stage == in.selected_stage;
    const float dim = in.selected_stage >= 0 && !selected ? 0.4f : 1.0f;
    runs.clear();
    m.lane_runs(stage, in.t0, in.t1, merge_us, runs);
    for (const LaneRun& r : runs) {
      int x0 = xm.x(r.start_us), x1 = xm.x(r.end_us);
      // A one-pixel gap between wide single spans keeps back-to-back spans apart; merged
      // runs touch, so a busy stretch reads as one block.
      if (r.count() == 1 && x1 - x0 > 4) x1 -= 1;
      x1 = std::max(x1, x0 + 1);
      const int top = y0 + pad, bottom = y1 - pad;
      if (r.count() > 1 && bottom - top >= 6) {
        // Stripes, top to bottom forward / backward / recompute, in proportion to counts.
        const double total = r.count();
        double acc = 0;
        for (int p = 0; p < 3; ++p) {
          const std::uint32_t n = r.phase_count[static_cast<std::size_t>(p)];
          if (n == 0) continue;
          const int a = top + static_cast<int>(std::lround((bottom - top) * acc / total));
          acc += n;
          const int b = top + static_cast<int>(std::lround((bottom - top) * acc / total));
          img.fill(x0, a, x1, b, scaled(palette::phase(static_cast<Phase>(p)), 0.85f * dim));
        }
      } else {
        img.fill(x0, top, x1, bottom, scaled(palette::phase(r.dominant_phase()), dim * (r.count() > 1 ? 0.85f : 1.0f)));
      }
      if (selected && x1 - x0 >= 3 && bottom - top >= 3) img.outline(x0, top, x1, bottom, rgba(255, 255, 255, 220));
    }
  }
}

}  // namespace tidemark::viewer
