#pragma once
// The dense plots (memory timeline, stage lanes) drawn into CPU images, one pixel per
// screen pixel, that the app shows as one textured quad each.
//
// Note [Why rasterize on the CPU]
// Drawn as ImGui rectangles, a zoomed-out timeline of 1,000,000 samples is one rectangle per
// band per pixel column (~6,000) and 50 lanes of 100,000 spans another ~10,000: 60,000
// vertices, which Mesa's llvmpipe took ~90 ms to render on two cores, whatever our own code
// cost. Filling the same pixels in a plain buffer takes about a millisecond, and the GPU
// (software or not) then draws one quad per plot. The images are rebuilt only when the view
// changes. Everything that follows the mouse (cursor, selection, tooltips) and all text
// stay ImGui primitives on top.
//
// GL-free and ImGui-free: the tests check these images pixel by pixel.
#include <cstdint>
#include <vector>

#include "tidemark/viewer/memory_lod.hpp"
#include "tidemark/viewer/trace_model.hpp"

namespace tidemark::viewer {

struct Image {
  int width = 0;
  int height = 0;
  std::vector<std::uint32_t> pixels;  // palette.hpp packing, top row first

  void reset(int w, int h, std::uint32_t colour);
  void resize(int w, int h);  // contents unspecified: for painters that cover every pixel
  std::uint32_t at(int x, int y) const { return pixels[static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x)]; }
  // [x0, x1) x [y0, y1), clipped to the image. A colour with alpha < 255 blends over.
  void fill(int x0, int y0, int x1, int y1, std::uint32_t colour);
  void dashed_row(int x0, int x1, int y, int thickness, int dash, int gap, std::uint32_t colour);
  void outline(int x0, int y0, int x1, int y1, std::uint32_t colour);
};

// Tick counts shared by the rasterized grid and the ImGui labels, so lines and labels agree.
inline int max_time_ticks(double width_px) { return width_px / 110 > 2 ? static_cast<int>(width_px / 110) : 2; }
inline int max_byte_ticks(double height_px) { return height_px / 36 > 2 ? static_cast<int>(height_px / 36) : 2; }

// Row of a byte count in a plot of `height` rows whose top row is y_max bytes (fractional;
// band edges round it).
inline double row_of_bytes(double bytes, double y_max, int height) {
  return static_cast<double>(height) - bytes / y_max * static_cast<double>(height);
}

struct TimelineRaster {
  double t0 = 0, t1 = 1;     // visible time range, microseconds
  double y_max = 1;          // bytes at the top row
  int selected_stage = -1;   // its spans are marked along the bottom edge
};

// Background and grid, stacked category areas per pixel column (the composition of the
// sample where the column's total peaks: Note [Column semantics] in memory_lod.hpp), each
// column's trough, step boundaries, budget (dashed) and predicted peak (dotted) lines.
// `img` must be sized by the caller (every pixel is painted); `columns` is scratch.
void rasterize_timeline(const TraceModel& m, const TimelineRaster& in, Image& img, std::vector<ColumnSample>& columns);

struct LanesRaster {
  double t0 = 0, t1 = 1;
  int row_height = 10;       // pixels per stage
  int selected_stage = -1;   // its row is highlighted and the other stages dimmed
};

// One row per stage: spans in their phase colour with a one-pixel gap between wide
// neighbours; runs of spans narrower than two pixels (TraceModel::lane_runs) as stripes in
// proportion to their phases, or in the dominant phase's colour when rows are short.
// `img` must be sized by the caller (every pixel is painted); `runs` is scratch.
void rasterize_lanes(const TraceModel& m, const LanesRaster& in, Image& img, std::vector<LaneRun>& runs);

}  // namespace tidemark::viewer
