// Shared by the panels: plot input (zoom, pan, range selection), time axis labels, cursor
// and selection overlays, dashed lines, byte text.
#include <algorithm>
#include <cmath>
#include <fmt/format.h>

#include "tidemark/core/bytes.hpp"
#include "ui.hpp"

namespace tidemark::viewer {

// ---- state ----------------------------------------------------------------------------------

void ViewState::refresh_scales() {
  double lo = 0, hi = 0;
  bool any = false;
  y_max = 1;
  for (const auto& slot : traces) {
    if (!slot.model) continue;
    const double b = static_cast<double>(slot.model->begin_us());
    const double e = static_cast<double>(slot.model->end_us());
    lo = any ? std::min(lo, b) : b;
    hi = any ? std::max(hi, e) : e;
    any = true;
    y_max = std::max(y_max, static_cast<double>(slot.model->y_max_bytes()));
  }
  // Keep the user's zoom across a reload when it still fits the data.
  const bool keep = time.limit_end() > time.limit_begin() && !time.fully_zoomed_out();
  const double b = time.begin(), e = time.end();
  time.reset(lo, any ? hi : lo + 1);
  if (keep) time.set(b, e);
  y_max *= 1.08;  // headroom for the peak marker and line labels
}

// ---- helpers --------------------------------------------------------------------------------

bool plot_input(ViewState& s, const char* id, const PlotRect& r) {
  ImGuiIO& io = ImGui::GetIO();
  ImGui::SetCursorScreenPos(r.min);
  ImGui::InvisibleButton(id, ImVec2(std::max(1.0f, r.width()), std::max(1.0f, r.height())),
                         ImGuiButtonFlags_MouseButtonLeft | ImGuiButtonFlags_MouseButtonRight);
  const bool hovered = ImGui::IsItemHovered();
  const double t_mouse = s.time.t_of(io.MousePos.x, r.x0(), r.width());
  if (hovered) {
    s.next_cursor_t = t_mouse;
    if (io.MouseWheel != 0) s.time.zoom(std::pow(0.8, static_cast<double>(io.MouseWheel)), t_mouse);
    if (ImGui::IsMouseDoubleClicked(ImGuiMouseButton_Left)) {
      s.time.set(s.time.limit_begin(), s.time.limit_end());
      s.selection = RangeSelection{};
    }
  }
  if (ImGui::IsItemActivated()) {
    if (ImGui::IsMouseClicked(ImGuiMouseButton_Right) || io.KeyShift) {
      s.selection = RangeSelection{true, true, t_mouse, t_mouse};
    }
  }
  if (ImGui::IsItemActive()) {
    if (s.selection.dragging) {
      s.selection.t1 = std::clamp(t_mouse, s.time.limit_begin(), s.time.limit_end());
    } else if (ImGui::IsMouseDown(ImGuiMouseButton_Left) && io.MouseDelta.x != 0) {
      s.time.pan(-static_cast<double>(io.MouseDelta.x) * s.time.span() / std::max(1.0f, r.width()));
    }
  }
  if (ImGui::IsItemDeactivated() && s.selection.dragging) {
    s.selection.dragging = false;
    if (s.selection.t1 < s.selection.t0) std::swap(s.selection.t0, s.selection.t1);
    // A click without a drag clears the selection rather than making an empty one.
    const double px = s.time.span() / std::max(1.0f, r.width());
    if (s.selection.t1 - s.selection.t0 < 3 * px) s.selection = RangeSelection{};
  }
  return hovered;
}

void draw_time_labels(ImDrawList* dl, const ViewState& s, const PlotRect& r) {
  // Same ticks as the rasterized grid lines (plot_raster.cpp), so labels sit on them.
  const int max_ticks = max_time_ticks(r.width());
  const double step = nice_time_step(s.time.span(), max_ticks);
  const double scale = std::max(std::fabs(s.time.begin()), std::fabs(s.time.end()));
  for (double t : time_ticks(s.time.begin(), s.time.end(), max_ticks)) {
    const float x = std::floor(static_cast<float>(s.time.x_of(t, r.x0(), r.width()))) + 0.5f;
    const std::string text = format_time(t, step, scale);
    const float w = ImGui::CalcTextSize(text.c_str()).x;
    // Centred under its grid line, kept inside the axis.
    const float tx = std::clamp(x - w * 0.5f, r.min.x, r.max.x - w);
    dl->AddLine(ImVec2(x, r.min.y), ImVec2(x, r.min.y + 3), colours::kAxisText);
    dl->AddText(ImVec2(tx, r.min.y + 3), colours::kAxisText, text.c_str());
  }
}

void draw_cursor_and_selection(ImDrawList* dl, const ViewState& s, const PlotRect& r) {
  if (s.selection.active) {
    const double a = std::min(s.selection.t0, s.selection.t1), b = std::max(s.selection.t0, s.selection.t1);
    const float x0 = std::max(r.min.x, static_cast<float>(s.time.x_of(a, r.x0(), r.width())));
    const float x1 = std::min(r.max.x, static_cast<float>(s.time.x_of(b, r.x0(), r.width())));
    if (x1 > x0) {
      dl->AddRectFilled(ImVec2(x0, r.min.y), ImVec2(x1, r.max.y), colours::kSelection);
      dl->AddLine(ImVec2(x0, r.min.y), ImVec2(x0, r.max.y), IM_COL32(120, 170, 255, 200));
      dl->AddLine(ImVec2(x1, r.min.y), ImVec2(x1, r.max.y), IM_COL32(120, 170, 255, 200));
    }
  }
  if (s.cursor_t) {
    const float x = std::floor(static_cast<float>(s.time.x_of(*s.cursor_t, r.x0(), r.width()))) + 0.5f;
    if (x >= r.min.x && x < r.max.x) dl->AddLine(ImVec2(x, r.min.y), ImVec2(x, r.max.y), colours::kCursor);
  }
}

std::string bytes_text(std::uint64_t bytes) { return format_bytes(bytes); }
std::string signed_bytes_text(std::int64_t bytes) { return format_bytes_signed(bytes); }

}  // namespace tidemark::viewer
