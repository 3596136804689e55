// Stage lanes: one row per stage on the timeline's time axis, spans coloured by phase
// (forward, backward, recompute), and with offload two more rows for the copies to host and
// back. The rows are a CPU image (rasterize_lanes: spans narrower
// than two pixels merge into runs drawn as stripes of their phase mix, so a zoomed-out lane
// still shows where recompute happened); this panel adds stage names, cursor, selection and
// the hover readout: the span under the mouse with the live bytes around it. A click
// selects the stage, as the table does.
//
// Sections: [1] stage names · [2] hover readout · [3] the panel
#include <algorithm>
#include <cmath>
#include <fmt/format.h>

#include "ui.hpp"

namespace tidemark::viewer {
namespace {

// ---- [1] stage names -------------------------------------------------------------------------

void stage_names(ImDrawList* dl, const ViewState& s, const TraceModel& m, const PlotRect& r, int row_h) {
  const float line_h = ImGui::GetTextLineHeight();
  // With rows shorter than a line of text, label every k-th row only.
  const int label_every = std::max(1, static_cast<int>(std::ceil(line_h / static_cast<float>(row_h))));
  dl->PushClipRect(ImVec2(r.min.x - s.gutter, r.min.y), ImVec2(r.min.x - 6, r.max.y), true);
  for (int stage = 0; stage < m.lane_count(); ++stage) {
    const bool selected = stage == s.selected_stage;
    const float y0 = r.min.y + static_cast<float>(row_h * stage);
    if (selected) {
      dl->AddRectFilled(ImVec2(r.min.x - s.gutter, y0), ImVec2(r.min.x, y0 + static_cast<float>(row_h)), palette::kLaneSelected);
    }
    if (stage % label_every != 0 && !selected) continue;
    const std::string& name = m.lane_name(stage);
    const ImVec2 size = ImGui::CalcTextSize(name.c_str());
    dl->AddText(ImVec2(r.min.x - 8 - size.x, y0 + (static_cast<float>(row_h) - size.y) * 0.5f),
                selected ? IM_COL32(255, 255, 255, 255) : colours::kAxisText, name.c_str());
  }
  dl->PopClipRect();
}

// ---- [2] hover readout ------------------------------------------------------------------------

void span_tooltip(const ViewState& s, const TraceModel& m, std::uint32_t index, const PlotRect& r) {
  const Span& sp = m.trace().spans[index];
  const TraceStage& st = m.trace().stages[static_cast<std::size_t>(sp.stage)];
  const double dur = static_cast<double>(sp.end_us - sp.start_us);
  ImGui::BeginTooltip();
  ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(phase_colour(sp.phase)), "%s  %s", st.name.c_str(), to_string(sp.phase));
  ImGui::Text("step %d, stage %d (%s, plan: %s)", sp.step, sp.stage, st.kind.c_str(), st.action.c_str());
  ImGui::Text("start %s, duration %s", format_time(static_cast<double>(sp.start_us)).c_str(), format_time(dur).c_str());
  const MemoryLod& lod = m.memory();
  const auto at_start = lod.sample_at(static_cast<double>(sp.start_us));
  const auto at_end = lod.sample_at(static_cast<double>(sp.end_us));
  if (at_start >= 0 && at_end >= 0) {
    const auto& total = m.trace().memory.total;
    const SampleRange inside = lod.samples_in(static_cast<double>(sp.start_us), static_cast<double>(sp.end_us) + 1);
    const RangeExtremes e = lod.extremes(inside);
    ImGui::Text("live bytes %s at start, %s at end, peak %s during",
                bytes_text(total[static_cast<std::size_t>(at_start)]).c_str(),
                bytes_text(total[static_cast<std::size_t>(at_end)]).c_str(), bytes_text(e.max_total).c_str());
    const auto& act = m.trace().memory.category[static_cast<std::size_t>(MemoryCategory::Activation)];
    const std::int64_t delta = static_cast<std::int64_t>(act[static_cast<std::size_t>(at_end)]) -
                               static_cast<std::int64_t>(act[static_cast<std::size_t>(at_start)]);
    ImGui::Text("activations %s", signed_bytes_text(delta).c_str());
  }
  const double px_us = s.time.span() / r.width();
  if (dur < 2 * px_us) ImGui::TextDisabled("narrower than a pixel here: zoom in to see its neighbours");
  ImGui::EndTooltip();
}

}  // namespace

// ---- [3] the panel ----------------------------------------------------------------------------

void draw_stage_lanes(ViewState& s, float height) {
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const ImVec2 origin = ImGui::GetCursorScreenPos();
  const float width = std::floor(ImGui::GetContentRegionAvail().x);
  const float line_h = ImGui::GetTextLineHeight();
  int rows = 0;
  for (const auto& slot : s.traces) rows += slot.model ? slot.model->lane_count() : 0;
  const float headers = s.compare() ? static_cast<float>(s.traces.size()) * (line_h + 4) : 0;
  // Whole-pixel rows that share the height; below one pixel a lane would vanish.
  const int row_h = rows > 0 ? std::clamp(static_cast<int>((height - headers) / static_cast<float>(rows)), 1,
                                          static_cast<int>(line_h) + 6)
                             : 1;
  float y = origin.y;
  for (std::size_t i = 0; i < s.traces.size(); ++i) {
    const TraceSlot& slot = s.traces[i];
    if (s.compare()) {
      const std::string text = slot.label + "  " + slot.path;
      dl->AddText(ImVec2(origin.x + s.gutter, y + 2), IM_COL32(230, 230, 235, 255), text.c_str());
      y = std::floor(y + line_h + 4);
    }
    if (!slot.model) continue;
    const TraceModel& m = *slot.model;
    // Thousands of stages at one pixel each would run past the panel: rows beyond its
    // share of the height are cut (the table still lists them).
    const float share = rows > 0 ? std::floor((height - headers) * static_cast<float>(m.lane_count()) / static_cast<float>(rows)) : 0;
    const float lanes_h = std::min(static_cast<float>(row_h * m.lane_count()), std::max(1.0f, share));
    const PlotRect r{ImVec2(origin.x + s.gutter, y), ImVec2(origin.x + width, y + lanes_h)};
    y = r.max.y;
    if (r.height() < 1 || m.lane_count() == 0) continue;
    ImGui::PushID(static_cast<int>(i));
    const bool hovered = plot_input(s, "##lanes", r);
    ImGui::PopID();
    PlotCache::Key key;
    key.model = &m;
  key.generation = s.generation;
    key.t0 = s.time.begin();
    key.t1 = s.time.end();
    key.width = static_cast<int>(r.width());
    key.height = static_cast<int>(r.height());
    key.selected = s.selected_stage;
    key.row_height = row_h;
    draw_plot_image(s, 2 * static_cast<int>(i) + 1, key, r, [&](Image& img) {
      rasterize_lanes(m, LanesRaster{key.t0, key.t1, row_h, key.selected}, img, s.runs);
    });
    stage_names(dl, s, m, r, row_h);
    dl->PushClipRect(r.min, r.max, true);
    draw_cursor_and_selection(dl, s, r);
    dl->PopClipRect();
    if (hovered) {
      const ImGuiIO& io = ImGui::GetIO();
      const int stage = std::clamp(static_cast<int>((io.MousePos.y - r.min.y) / static_cast<float>(row_h)), 0,
                                   std::max(0, m.lane_count() - 1));
      const double t = s.time.t_of(io.MousePos.x, r.x0(), r.width());
      const double px_us = s.time.span() / r.width();
      // A click (no drag) selects the stage, or clears it when it was selected.
      if (ImGui::IsMouseReleased(ImGuiMouseButton_Left) && io.MouseDragMaxDistanceSqr[0] < 9 && !io.KeyShift) {
        s.selected_stage = s.selected_stage == stage ? -1 : stage;
      }
      if (!ImGui::IsMouseDown(ImGuiMouseButton_Left) && !s.selection.dragging) {
        if (auto hit = m.hit_span(stage, t, 3 * px_us)) {
          span_tooltip(s, m, *hit, r);
        } else {
          ImGui::SetTooltip("%s: idle at %s", m.lane_name(stage).c_str(),
                            format_time(t).c_str());
        }
      }
    }
  }
  ImGui::SetCursorScreenPos(ImVec2(origin.x, y));
  ImGui::Dummy(ImVec2(0, 0));
}

}  // namespace tidemark::viewer
