// Memory timeline of one trace. The plot itself (stacked category areas per pixel column,
// grid, step boundaries, budget and predicted lines, the selected stage's spans) is a CPU
// image (plot_raster.hpp); this panel draws it and puts on top what is text or follows the
// mouse: byte labels, step labels, line labels, the measured peak marker, the compare label,
// cursor, selection and the hover readout.
//
// Sections: [1] labels · [2] peak marker · [3] hover readout · [4] the panel
#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <vector>

#include "ui.hpp"

namespace tidemark::viewer {
namespace {

float y_of(const PlotRect& r, double bytes, double y_max) {
  return r.min.y + std::round(static_cast<float>(row_of_bytes(bytes, y_max, static_cast<int>(r.height()))));
}

// Labels already placed, so later ones can move out of their way.
using Taken = std::vector<ImVec4>;  // x0, y0, x1, y1

ImVec4 label_rect(ImVec2 at, const std::string& text) {
  const ImVec2 size = ImGui::CalcTextSize(text.c_str());
  return ImVec4(at.x - 3, at.y, at.x + size.x + 3, at.y + size.y);
}

bool overlaps(const ImVec4& a, const Taken& taken) {
  for (const ImVec4& b : taken) {
    if (a.x < b.z && b.x < a.z && a.y < b.w && b.y < a.w) return true;
  }
  return false;
}

void label_box(ImDrawList* dl, ImVec2 at, ImU32 colour, const std::string& text, Taken* taken = nullptr) {
  const ImVec4 r = label_rect(at, text);
  dl->AddRectFilled(ImVec2(r.x, r.y), ImVec2(r.z, r.w), colours::kLabelBg);
  dl->AddText(at, colour, text.c_str());
  if (taken) taken->push_back(r);
}

// ---- [1] labels -------------------------------------------------------------------------------

void byte_labels(ImDrawList* dl, const ViewState& s, const PlotRect& r) {
  const double step = nice_byte_step(s.y_max, max_byte_ticks(r.height()));
  for (double b = 0; b <= s.y_max; b += step) {
    const float y = y_of(r, b, s.y_max);
    const std::string text = format_byte_tick(b);
    const ImVec2 size = ImGui::CalcTextSize(text.c_str());
    const float ty = std::clamp(y - size.y * 0.5f, r.min.y, r.max.y - size.y);
    dl->AddText(ImVec2(r.min.x - size.x - 8, ty), colours::kAxisText, text.c_str());
  }
}

// Step labels keep clear of [r.min.x, reserved_x), where the compare label sits.
void step_labels(ImDrawList* dl, const ViewState& s, const TraceModel& m, const PlotRect& r, float reserved_x) {
  const auto& steps = m.trace().steps;
  float last_end = -1e9f;
  for (const StepMark& st : steps) {
    if (static_cast<double>(st.end_us) < s.time.begin() || static_cast<double>(st.start_us) > s.time.end()) continue;
    const float x = static_cast<float>(s.time.x_of(static_cast<double>(st.start_us), r.x0(), r.width()));
    const std::string text = fmt::format("step {}", st.step);
    const float w = ImGui::CalcTextSize(text.c_str()).x;
    const float lx = std::max(x + 4, r.min.x + 4);
    if (lx > last_end + 12 && lx + w < r.max.x && lx > reserved_x) {
      dl->AddText(ImVec2(lx, r.min.y + 3), colours::kAxisText, text.c_str());
      last_end = lx + w;
    }
  }
}

void line_labels(ImDrawList* dl, const ViewState& s, const TraceModel& m, const PlotRect& r, Taken& taken) {
  const Trace& t = m.trace();
  const float h = ImGui::GetTextLineHeight();
  if (t.budget_bytes) {
    const std::string text = "budget " + bytes_text(*t.budget_bytes);
    const float y = y_of(r, static_cast<double>(*t.budget_bytes), s.y_max);
    label_box(dl, ImVec2(r.max.x - ImGui::CalcTextSize(text.c_str()).x - 6, y - h - 2), colours::kBudget, text, &taken);
  }
  if (t.predicted_peak_bytes) {
    // Budget and prediction are often close: this label goes under its line.
    const std::string text = "predicted " + bytes_text(*t.predicted_peak_bytes);
    const float y = y_of(r, static_cast<double>(*t.predicted_peak_bytes), s.y_max);
    label_box(dl, ImVec2(r.max.x - ImGui::CalcTextSize(text.c_str()).x - 6, y + 2), colours::kPredicted, text, &taken);
  }
}

// Offload's pinned host bytes: a line over the device areas, which it is not part of. At
// most a few points per pixel column: the largest value of the samples under each.
void host_line(ImDrawList* dl, const ViewState& s, const TraceModel& m, const PlotRect& r) {
  const MemoryTimeline& tl = m.trace().memory;
  if (!tl.has_host() || tl.host.size() != tl.size()) return;
  const double px_us = s.time.span() / r.width();
  std::vector<ImVec2> points;
  for (int col = 0; col < static_cast<int>(r.width()); ++col) {
    const double t0 = s.time.begin() + col * px_us;
    const SampleRange range = m.memory().samples_in(t0, t0 + px_us);
    if (range.empty()) continue;
    std::uint64_t most = 0;
    // Bounded: a column with more samples than this shows its first ones.
    for (std::uint32_t i = range.first; i < range.last && i < range.first + 256; ++i) most = std::max(most, tl.host[i]);
    points.emplace_back(r.min.x + static_cast<float>(col) + 0.5f, y_of(r, static_cast<double>(most), s.y_max));
  }
  if (points.size() >= 2) dl->AddPolyline(points.data(), static_cast<int>(points.size()), palette::kHost, 0, 1.5f);
}

// ---- [2] peak marker --------------------------------------------------------------------------

void peak_marker(ImDrawList* dl, const ViewState& s, const TraceModel& m, const PlotRect& r, const Taken& taken) {
  const PeakInfo& p = m.peak();
  if (!p.valid) return;
  const float x = std::floor(static_cast<float>(s.time.x_of(static_cast<double>(p.t_us), r.x0(), r.width()))) + 0.5f;
  if (x < r.min.x - 1 || x > r.max.x + 1) return;
  const float y = y_of(r, static_cast<double>(p.bytes), s.y_max);
  // A downward triangle sitting on the peak, and the measured value beside it.
  dl->AddTriangleFilled(ImVec2(x - 6, y - 12), ImVec2(x + 6, y - 12), ImVec2(x, y - 1), colours::kPeak);
  const std::string text = "peak " + bytes_text(m.trace().peak_bytes ? m.trace().peak_bytes : p.bytes);
  const ImVec2 size = ImGui::CalcTextSize(text.c_str());
  // Right of the marker, else left of it, else under the peak: wherever it covers neither
  // the plot's edge nor the budget and prediction labels.
  const float above = std::max(r.min.y + 2, y - 12 - size.y * 0.5f - 5);
  const ImVec2 candidates[] = {ImVec2(x + 10, above), ImVec2(x - 10 - size.x, above), ImVec2(x + 10, y + 4),
                               ImVec2(x - 10 - size.x, y + 4)};
  ImVec2 at = candidates[0];
  for (const ImVec2& c : candidates) {
    const ImVec4 rect = label_rect(c, text);
    if (rect.x >= r.min.x && rect.z <= r.max.x && !overlaps(rect, taken)) {
      at = c;
      break;
    }
  }
  label_box(dl, at, colours::kPeak, text);
}

// ---- [3] hover readout ------------------------------------------------------------------------

void hover_tooltip(const ViewState& s, const TraceModel& m, const PlotRect& r, double t) {
  const MemoryTimeline& tl = m.trace().memory;
  const double px_us = s.time.span() / r.width();
  // The same samples as the pixel column under the mouse.
  const double col0 = s.time.begin() + std::floor((t - s.time.begin()) / px_us) * px_us;
  const SampleRange range = m.memory().samples_in(col0, col0 + px_us);
  ImGui::BeginTooltip();
  std::string when = format_time(t);
  if (auto step = m.step_at(t)) when += fmt::format(" (step {})", m.trace().steps[*step].step);
  ImGui::TextUnformatted(when.c_str());
  if (range.empty()) {
    ImGui::TextDisabled("no memory samples here");
    ImGui::EndTooltip();
    return;
  }
  const RangeExtremes e = m.memory().extremes(range);
  const std::uint32_t k = e.at_max;
  ImGui::Text("total %s", bytes_text(tl.total[k]).c_str());
  if (range.last - range.first > 1) {
    ImGui::TextDisabled("%u samples under this pixel: their peak (at %s) shown, min %s", range.last - range.first,
                        format_time(static_cast<double>(tl.t_us[k])).c_str(), bytes_text(e.min_total).c_str());
  }
  ImGui::Separator();
  for (int c = kCategoryCount - 1; c >= 0; --c) {
    ImGui::ColorButton("##swatch", ImGui::ColorConvertU32ToFloat4(category_colour(c)),
                       ImGuiColorEditFlags_NoTooltip | ImGuiColorEditFlags_NoBorder, ImVec2(10, 10));
    ImGui::SameLine();
    ImGui::Text("%-16s %s", to_string(kAllCategories[static_cast<std::size_t>(c)]),
                bytes_text(tl.category[static_cast<std::size_t>(c)][k]).c_str());
  }
  if (m.trace().budget_bytes) {
    const double share = static_cast<double>(tl.total[k]) / static_cast<double>(*m.trace().budget_bytes);
    ImGui::TextDisabled("%.1f%% of the budget", share * 100);
  }
  if (tl.has_host() && k < tl.host.size()) {
    ImGui::Text("pinned host (offload) %s, not in the total", bytes_text(tl.host[k]).c_str());
  }
  ImGui::EndTooltip();
}

}  // namespace

// ---- [4] the panel ----------------------------------------------------------------------------

void draw_memory_timeline(ViewState& s, int index, const PlotRect& r) {
  const TraceSlot& slot = s.traces[static_cast<std::size_t>(index)];
  ImDrawList* dl = ImGui::GetWindowDrawList();
  ImGui::PushID(index);
  const bool hovered = plot_input(s, "##timeline", r);
  ImGui::PopID();
  if (!slot.model) {
    dl->AddRectFilled(r.min, r.max, colours::kPlotBg);
    return;
  }
  const TraceModel& m = *slot.model;
  PlotCache::Key key;
  key.model = &m;
  key.generation = s.generation;
  key.t0 = s.time.begin();
  key.t1 = s.time.end();
  key.y_max = s.y_max;
  key.width = static_cast<int>(r.width());
  key.height = static_cast<int>(r.height());
  key.selected = s.selected_stage;
  draw_plot_image(s, 2 * index, key, r, [&](Image& img) {
    rasterize_timeline(m, TimelineRaster{key.t0, key.t1, key.y_max, key.selected}, img, s.columns);
  });
  byte_labels(dl, s, r);
  dl->PushClipRect(r.min, r.max, true);
  float reserved_x = r.min.x;
  std::string label;
  if (!slot.label.empty()) {
    label = slot.label + "  " + slot.path;
    reserved_x = r.min.x + ImGui::CalcTextSize(label.c_str()).x + 16;
  }
  step_labels(dl, s, m, r, reserved_x);
  host_line(dl, s, m, r);
  Taken taken;
  line_labels(dl, s, m, r, taken);
  draw_cursor_and_selection(dl, s, r);
  peak_marker(dl, s, m, r, taken);
  if (!label.empty()) {
    dl->AddRectFilled(r.min, ImVec2(reserved_x - 4, r.min.y + ImGui::GetTextLineHeight() + 4), IM_COL32(40, 44, 56, 230));
    dl->AddText(ImVec2(r.min.x + 6, r.min.y + 2), IM_COL32(230, 230, 235, 255), label.c_str());
  }
  dl->PopClipRect();
  if (hovered && !s.selection.dragging && !ImGui::IsMouseDown(ImGuiMouseButton_Left)) {
    hover_tooltip(s, m, r, s.time.t_of(ImGui::GetIO().MousePos.x, r.x0(), r.width()));
  }
}

}  // namespace tidemark::viewer
