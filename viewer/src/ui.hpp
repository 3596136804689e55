#pragma once
// Private to the viewer's panels: the state they share, the colours, and the helpers every
// panel uses (plot geometry, input on a plot, axes, cached plot images).
//
// Note [Draw call size]
// Debian's Dear ImGui uses 16-bit indices. The OpenGL3 backend splits a draw list past 65536
// vertices (RendererHasVtxOffset), but a single primitive must stay far below that: one
// 1,000,000-point polyline crashed and one of 50,000 points drew garbage. So no panel emits a
// primitive per sample or per span: the dense plots are CPU images (plot_raster.hpp), and
// what ImGui draws on top (lines, labels, markers, cursor) is a few hundred small shapes.
#include <imgui.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tidemark/viewer/memory_lod.hpp"
#include "tidemark/viewer/palette.hpp"
#include "tidemark/viewer/plot_raster.hpp"
#include "tidemark/viewer/time_view.hpp"
#include "tidemark/viewer/trace_model.hpp"
#include "tidemark/viewer/viewer.hpp"

namespace tidemark::viewer {

struct TraceSlot {
  std::string path;
  std::string label;  // "A" / "B" in compare mode, "" for one trace
  std::shared_ptr<const TraceModel> model;
};

// A plot's rectangle: the time axis runs from x0 over width pixels.
struct PlotRect {
  ImVec2 min, max;
  float x0() const { return min.x; }
  float width() const { return max.x - min.x; }
  float height() const { return max.y - min.y; }
  bool contains(ImVec2 p) const { return p.x >= min.x && p.x < max.x && p.y >= min.y && p.y < max.y; }
};

struct RangeSelection {
  bool active = false;
  bool dragging = false;
  double t0 = 0, t1 = 0;
};

// A plot's image and texture, rebuilt only when what it shows changes.
struct PlotCache {
  struct Key {
    const void* model = nullptr;
    std::uint64_t generation = 0;
    double t0 = 0, t1 = 0, y_max = 0;
    int width = 0, height = 0, selected = -2, row_height = 0;
    bool operator==(const Key& o) const {
      return model == o.model && generation == o.generation && t0 == o.t0 && t1 == o.t1 && y_max == o.y_max &&
             width == o.width && height == o.height && selected == o.selected && row_height == o.row_height;
    }
  };
  Key key;
  Image image;
  void* texture = nullptr;
};

struct ViewState {
  std::vector<TraceSlot> traces;
  TimeView time;
  int selected_stage = -1;
  RangeSelection selection;
  // Time under the mouse in any plot this frame; every plot draws a cursor line there.
  std::optional<double> cursor_t;
  std::optional<double> next_cursor_t;
  std::vector<std::string> errors;
  bool reload_requested = false;  // the Reload button or R; Viewer::draw acts on it
  float gutter = 120;   // left column: byte labels, stage names
  double y_max = 1;     // byte scale shared by every timeline
  // Scratch, reused every frame so drawing allocates nothing.
  std::vector<ColumnSample> columns;
  std::vector<LaneRun> runs;
  std::uint64_t generation = 0;            // bumped by every reload
  ImageSink* sink = nullptr;               // turns plot images into textures; null: no renderer
  PlotCache plots[4];                      // timeline and lanes of up to two traces
  std::vector<int> table_order;            // the stage table's sorted rows
  const void* table_sorted_for = nullptr;  // the model they were sorted for

  bool compare() const { return traces.size() > 1; }
  void refresh_scales();  // after (re)loading: data range, y scale
};

// ---- colours (palette.hpp packing is ImU32's) -----------------------------------------------
namespace colours {
inline constexpr ImU32 kPlotBg = palette::kPlotBg;
inline constexpr ImU32 kGrid = palette::kGrid;
inline constexpr ImU32 kAxisText = palette::kAxisText;
inline constexpr ImU32 kBudget = palette::kBudget;
inline constexpr ImU32 kPredicted = palette::kPredicted;
inline constexpr ImU32 kPeak = palette::kPeak;
inline constexpr ImU32 kCursor = IM_COL32(255, 255, 255, 150);
inline constexpr ImU32 kSelection = IM_COL32(120, 170, 255, 45);
inline constexpr ImU32 kError = IM_COL32(255, 95, 95, 255);
inline constexpr ImU32 kLabelBg = IM_COL32(22, 24, 30, 200);
}  // namespace colours
inline ImU32 category_colour(int c) { return palette::kCategory[c]; }
inline ImU32 phase_colour(Phase p) { return palette::phase(p); }

// ---- helpers --------------------------------------------------------------------------------
// Reserves the rest of a rectangle as an item, and handles wheel zoom about the cursor, drag
// to pan, shift-drag or right-drag to select a range, double-click to show everything.
// Returns true when the mouse is over the plot.
bool plot_input(ViewState& s, const char* id, const PlotRect& r);
void draw_time_labels(ImDrawList* dl, const ViewState& s, const PlotRect& r);
// Rebuilds cache `slot`'s image with `paint` when `key` changed, and draws it over r.
template <typename Paint>
void draw_plot_image(ViewState& s, int slot, const PlotCache::Key& key, const PlotRect& r, Paint paint) {
  PlotCache& c = s.plots[slot];
  if (!(c.key == key)) {
    c.image.resize(key.width, key.height);
    paint(c.image);
    c.texture = s.sink ? s.sink->upload(slot, c.image) : nullptr;
    c.key = key;
  }
  if (c.texture) ImGui::GetWindowDrawList()->AddImage(c.texture, r.min, r.max);
}
void draw_cursor_and_selection(ImDrawList* dl, const ViewState& s, const PlotRect& r);
std::string bytes_text(std::uint64_t bytes);  // "812.4 MiB"
std::string signed_bytes_text(std::int64_t bytes);

// ---- panels (one file each) -----------------------------------------------------------------
void draw_header(ViewState& s);
void draw_memory_timeline(ViewState& s, int index, const PlotRect& r);
void draw_stage_lanes(ViewState& s, float height);
void draw_stage_table(ViewState& s);

}  // namespace tidemark::viewer
