// Header: what is loaded, the numbers that matter (peak, budget, prediction; in compare
// mode both peaks and their difference), the visible range and selection readout, buttons,
// the legend, and errors (a trace that failed to reload, shown until dismissed).
//
// Sections: [1] numbers · [2] summary lines · [3] range readout and buttons · [4] legend
#include <algorithm>
#include <cmath>
#include <fmt/format.h>

#include "ui.hpp"

namespace tidemark::viewer {
namespace {

// ---- [1] numbers ------------------------------------------------------------------------------

std::string grouped(std::size_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

double median_step_us(const Trace& t) {
  std::vector<double> d;
  for (const auto& s : t.steps) d.push_back(static_cast<double>(s.end_us - s.start_us));
  if (d.empty()) return 0;
  std::nth_element(d.begin(), d.begin() + static_cast<std::ptrdiff_t>(d.size() / 2), d.end());
  return d[d.size() / 2];
}

std::uint64_t measured_peak(const TraceModel& m) {
  return m.trace().peak_bytes ? m.trace().peak_bytes : m.peak().bytes;
}

std::string percent(double ratio) { return fmt::format("{:+.1f}%", ratio * 100); }

void separator_dot() {
  ImGui::SameLine();
  ImGui::TextDisabled("·");
  ImGui::SameLine();
}

// ---- [2] summary lines ------------------------------------------------------------------------

void trace_line(const TraceSlot& slot) {
  if (!slot.label.empty()) {
    ImGui::TextColored(ImVec4(1, 1, 1, 1), "%s", slot.label.c_str());
    ImGui::SameLine();
  }
  ImGui::TextUnformatted(slot.path.c_str());
  if (!slot.model) return;
  const Trace& t = slot.model->trace();
  ImGui::SameLine();
  std::string mode = t.mode.empty() ? "trace" : "mode " + t.mode;
  if (!t.solver.empty()) mode += " (" + t.solver + ")";
  ImGui::TextDisabled("%s · %zu stages · %zu steps · %s samples · %s spans", mode.c_str(), t.stages.size(),
                      slot.model->step_count(), grouped(t.memory.size()).c_str(), grouped(t.spans.size()).c_str());
}

void single_numbers(const TraceModel& m) {
  const Trace& t = m.trace();
  const std::uint64_t peak = measured_peak(m);
  ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(colours::kPeak), "peak %s", bytes_text(peak).c_str());
  if (m.peak().valid) {
    ImGui::SameLine();
    std::string where = "at " + format_time(static_cast<double>(m.peak().t_us));
    if (auto step = m.step_at(static_cast<double>(m.peak().t_us))) where += fmt::format(" (step {})", t.steps[*step].step);
    ImGui::TextDisabled("%s", where.c_str());
  }
  if (t.budget_bytes) {
    separator_dot();
    ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(colours::kBudget), "budget %s", bytes_text(*t.budget_bytes).c_str());
    ImGui::SameLine();
    if (peak > *t.budget_bytes) {
      ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(colours::kError), "peak over budget by %s",
                         bytes_text(peak - *t.budget_bytes).c_str());
    } else {
      ImGui::TextDisabled("(peak uses %.1f%%)", 100.0 * static_cast<double>(peak) / static_cast<double>(*t.budget_bytes));
    }
  }
  if (t.predicted_peak_bytes) {
    separator_dot();
    ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(colours::kPredicted), "predicted %s",
                       bytes_text(*t.predicted_peak_bytes).c_str());
    ImGui::SameLine();
    const auto diff = static_cast<std::int64_t>(peak) - static_cast<std::int64_t>(*t.predicted_peak_bytes);
    ImGui::TextDisabled("(measured %s, %s)", signed_bytes_text(diff).c_str(),
                        percent(static_cast<double>(diff) / static_cast<double>(*t.predicted_peak_bytes)).c_str());
  }
  if (const double step = median_step_us(t); step > 0) {
    separator_dot();
    ImGui::Text("step %s", format_time(step).c_str());
    ImGui::SameLine();
    ImGui::TextDisabled("median");
  }
}

void compare_numbers(const TraceModel& a, const TraceModel& b) {
  const std::uint64_t pa = measured_peak(a), pb = measured_peak(b);
  ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(colours::kPeak), "peak A %s", bytes_text(pa).c_str());
  separator_dot();
  ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(colours::kPeak), "peak B %s", bytes_text(pb).c_str());
  separator_dot();
  const auto diff = static_cast<std::int64_t>(pb) - static_cast<std::int64_t>(pa);
  const ImVec4 good(0.45f, 0.85f, 0.45f, 1), bad = ImGui::ColorConvertU32ToFloat4(colours::kError);
  ImGui::TextColored(diff <= 0 ? good : bad, "B - A %s (%s)", signed_bytes_text(diff).c_str(),
                     pa ? percent(static_cast<double>(diff) / static_cast<double>(pa)).c_str() : "-");
  const double sa = median_step_us(a.trace()), sb = median_step_us(b.trace());
  if (sa > 0 && sb > 0) {
    separator_dot();
    ImGui::Text("step A %s, B %s", format_time(sa).c_str(), format_time(sb).c_str());
    ImGui::SameLine();
    ImGui::TextColored(sb <= sa ? good : ImVec4(1.0f, 0.75f, 0.35f, 1), "(%s)", percent(sb / sa - 1).c_str());
  }
  for (const TraceModel* m : {&a, &b}) {
    if (m->trace().budget_bytes) {
      separator_dot();
      ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(colours::kBudget), "budget %s %s", m == &a ? "A" : "B",
                         bytes_text(*m->trace().budget_bytes).c_str());
    }
  }
}

// ---- [3] range readout and buttons ------------------------------------------------------------

void range_line(ViewState& s) {
  const double scale = std::max(std::fabs(s.time.begin()), std::fabs(s.time.end()));
  // Precision: a thousandth of the visible span.
  const double step = nice_time_step(s.time.span(), 1000);
  ImGui::TextDisabled("view");
  ImGui::SameLine();
  ImGui::Text("%s - %s (%s)", format_time(s.time.begin(), step, scale).c_str(),
              format_time(s.time.end(), step, scale).c_str(), format_time(s.time.span()).c_str());
  if (s.selection.active) {
    const double a = std::min(s.selection.t0, s.selection.t1), b = std::max(s.selection.t0, s.selection.t1);
    separator_dot();
    ImGui::TextDisabled("selection");
    ImGui::SameLine();
    ImGui::Text("%s - %s (%s)", format_time(a, step, scale).c_str(), format_time(b, step, scale).c_str(),
                format_time(b - a).c_str());
    for (const auto& slot : s.traces) {
      if (!slot.model) continue;
      const SampleRange r = slot.model->memory().samples_in(a, b);
      if (r.empty()) continue;
      const RangeExtremes e = slot.model->memory().extremes(r);
      ImGui::SameLine();
      ImGui::Text("%s%speak %s at %s, min %s", slot.label.c_str(), slot.label.empty() ? "" : " ",
                  bytes_text(e.max_total).c_str(),
                  format_time(static_cast<double>(slot.model->trace().memory.t_us[e.at_max])).c_str(),
                  bytes_text(e.min_total).c_str());
    }
  }
  if (s.cursor_t) {
    separator_dot();
    ImGui::TextDisabled("cursor %s", format_time(*s.cursor_t, step, scale).c_str());
  }
}

void buttons(ViewState& s, bool& reload) {
  if (ImGui::SmallButton("Show all")) s.time.set(s.time.limit_begin(), s.time.limit_end());
  ImGui::SameLine();
  if (s.selection.active && !s.selection.dragging) {
    if (ImGui::SmallButton("Zoom to selection")) {
      s.time.set(std::min(s.selection.t0, s.selection.t1), std::max(s.selection.t0, s.selection.t1));
    }
    ImGui::SameLine();
  }
  if (ImGui::SmallButton("Reload")) reload = true;
  ImGui::SameLine();
  ImGui::TextDisabled("wheel: zoom · drag: pan · shift/right-drag: select · double-click: all · R: reload");
}

// ---- [4] legend -------------------------------------------------------------------------------

void swatch(ImU32 colour, const char* name) {
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const ImVec2 p = ImGui::GetCursorScreenPos();
  const float h = ImGui::GetTextLineHeight();
  dl->AddRectFilled(ImVec2(p.x, p.y + 2), ImVec2(p.x + h - 4, p.y + h - 2), colour);
  ImGui::Dummy(ImVec2(h - 2, h));
  ImGui::SameLine();
  ImGui::TextUnformatted(name);
  ImGui::SameLine(0, 14);
}

void line_swatch(ImU32 colour, const char* name, float dash, float gap, float thickness) {
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const ImVec2 p = ImGui::GetCursorScreenPos();
  const float h = ImGui::GetTextLineHeight();
  const float y = std::floor(p.y + h * 0.5f);
  for (float x = p.x; x < p.x + 22; x += dash + gap) {
    dl->AddRectFilled(ImVec2(x, y - std::floor(thickness / 2)), ImVec2(std::min(x + dash, p.x + 22), y - std::floor(thickness / 2) + thickness), colour);
  }
  ImGui::Dummy(ImVec2(24, h));
  ImGui::SameLine();
  ImGui::TextUnformatted(name);
  ImGui::SameLine(0, 14);
}

void legend(const ViewState& s) {
  for (int c = 0; c < kCategoryCount; ++c) swatch(category_colour(c), to_string(kAllCategories[static_cast<std::size_t>(c)]));
  ImGui::TextDisabled("|");
  ImGui::SameLine(0, 14);
  for (Phase p : {Phase::Forward, Phase::Backward, Phase::Recompute}) swatch(phase_colour(p), to_string(p));
  bool copies = false;
  for (const auto& slot : s.traces) copies = copies || (slot.model && slot.model->lane_count() > slot.model->stage_lane_count());
  if (copies) {
    for (Phase p : {Phase::CopyOut, Phase::CopyIn}) swatch(phase_colour(p), to_string(p));
  }
  ImGui::TextDisabled("|");
  ImGui::SameLine(0, 14);
  line_swatch(colours::kBudget, "budget", 6, 3, 2);
  line_swatch(colours::kPredicted, "predicted peak", 2, 3, 1);
  bool host = false;
  for (const auto& slot : s.traces) host = host || (slot.model && slot.model->trace().memory.has_host());
  if (host) line_swatch(palette::kHost, "pinned host bytes", 3, 2, 1);
  // The marker's own shape: the default font has no triangle glyph.
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const ImVec2 p = ImGui::GetCursorScreenPos();
  const float h = ImGui::GetTextLineHeight();
  dl->AddTriangleFilled(ImVec2(p.x, p.y + 3), ImVec2(p.x + 12, p.y + 3), ImVec2(p.x + 6, p.y + h - 2), colours::kPeak);
  ImGui::Dummy(ImVec2(14, h));
  ImGui::SameLine();
  ImGui::TextUnformatted("measured peak");
}

}  // namespace

void draw_header(ViewState& s) {
  bool reload = false;
  for (const auto& slot : s.traces) trace_line(slot);
  if (s.compare() && s.traces[0].model && s.traces[1].model) {
    compare_numbers(*s.traces[0].model, *s.traces[1].model);
  } else if (!s.traces.empty() && s.traces[0].model) {
    single_numbers(*s.traces[0].model);
  }
  range_line(s);
  buttons(s, reload);
  legend(s);
  if (!s.errors.empty()) {
    for (const auto& e : s.errors) {
      ImGui::PushTextWrapPos(0);
      ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(colours::kError), "error: %s", e.c_str());
      ImGui::PopTextWrapPos();
    }
    if (ImGui::SmallButton("Dismiss")) s.errors.clear();
  }
  if (reload) s.reload_requested = true;
}

}  // namespace tidemark::viewer
