// Viewer: the layout of the panels in one full-window ImGui window, keyboard shortcuts,
// reload, errors. The panels themselves live one per file (panel_*.cpp).
#include "tidemark/viewer/viewer.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fmt/format.h>

#include "ui.hpp"

namespace tidemark::viewer {

Viewer::Viewer(std::vector<std::string> paths, std::vector<std::shared_ptr<const TraceModel>> models)
    : state_(std::make_unique<ViewState>()) {
  const bool compare = paths.size() > 1;
  for (std::size_t i = 0; i < paths.size(); ++i) {
    TraceSlot slot;
    slot.path = paths[i];
    slot.label = compare ? std::string(1, static_cast<char>('A' + i)) : "";
    slot.model = i < models.size() ? models[i] : nullptr;
    state_->traces.push_back(std::move(slot));
  }
  state_->refresh_scales();
}

Viewer::~Viewer() = default;

TimeView& Viewer::time_view() { return state_->time; }
void Viewer::select_stage(int stage) { state_->selected_stage = stage; }
int Viewer::selected_stage() const { return state_->selected_stage; }
const std::vector<std::string>& Viewer::errors() const { return state_->errors; }

void Viewer::set_image_sink(ImageSink* sink) {
  state_->sink = sink;
  for (auto& p : state_->plots) p = PlotCache{};  // textures belong to the previous sink
}

void Viewer::add_error(std::string message) {
  std::fprintf(stderr, "error: %s\n", message.c_str());
  auto& errors = state_->errors;
  errors.push_back(std::move(message));
  // A file that keeps failing must not push the whole window down.
  if (errors.size() > 4) errors.erase(errors.begin(), errors.end() - 4);
}

bool Viewer::reload() {
  bool ok = true;
  for (auto& slot : state_->traces) {
    try {
      slot.model = TraceModel::load(slot.path);
    } catch (const std::exception& e) {
      // The previous contents stay on screen: a half-written or broken file must not
      // take away what the user was looking at.
      add_error(fmt::format("{} (still showing the previous contents)", e.what()));
      ok = false;
    }
  }
  ++state_->generation;  // a new model may reuse the old one's address: images are stale
  state_->refresh_scales();
  return ok;
}

void Viewer::draw() {
  ViewState& s = *state_;
  ImGuiIO& io = ImGui::GetIO();
  // The cursor line follows the mouse seen by last frame's plots.
  s.cursor_t = s.next_cursor_t;
  s.next_cursor_t.reset();
  if (!io.WantTextInput) {
    // Dear ImGui 1.87 made keys an enum (ImGuiKey_R ...) and later releases drop the old
    // backend key indices; 1.86 (Debian 12) has only those, where GLFW's code for a letter
    // is its ASCII capital.
#if IMGUI_VERSION_NUM >= 18700
    const ImGuiKey kKeyR = ImGuiKey_R, kKeyHome = ImGuiKey_Home, kKeyEscape = ImGuiKey_Escape;
#else
    const int kKeyR = 'R', kKeyHome = ImGui::GetKeyIndex(ImGuiKey_Home), kKeyEscape = ImGui::GetKeyIndex(ImGuiKey_Escape);
#endif
    if (ImGui::IsKeyPressed(kKeyR, false)) s.reload_requested = true;
    if (ImGui::IsKeyPressed(kKeyHome, false)) s.time.set(s.time.limit_begin(), s.time.limit_end());
    if (ImGui::IsKeyPressed(kKeyEscape, false)) {
      s.selection = RangeSelection{};
      s.selected_stage = -1;
    }
  }
  if (s.reload_requested) {
    s.reload_requested = false;
    reload();
  }

  // No window background: on software GL it would be 1.6 million blended pixels a frame,
  // and the app's glClear paints the same colour for free.
  const ImGuiViewport* vp = ImGui::GetMainViewport();
  ImGui::SetNextWindowPos(vp->Pos);
  ImGui::SetNextWindowSize(vp->Size);
  const ImGuiWindowFlags flags = ImGuiWindowFlags_NoDecoration | ImGuiWindowFlags_NoMove | ImGuiWindowFlags_NoResize |
                                 ImGuiWindowFlags_NoSavedSettings | ImGuiWindowFlags_NoBringToFrontOnFocus |
                                 ImGuiWindowFlags_NoScrollWithMouse | ImGuiWindowFlags_NoBackground;
  ImGui::Begin("tidemark", nullptr, flags);

  // The gutter holds byte labels and stage names; every plot starts after it so all time
  // axes line up.
  float gutter = ImGui::CalcTextSize("1023.5 MiB").x + 20;
  for (const auto& slot : s.traces) {
    if (!slot.model) continue;
    for (const auto& st : slot.model->trace().stages) gutter = std::max(gutter, ImGui::CalcTextSize(st.name.c_str()).x + 20);
  }
  s.gutter = std::round(std::min(gutter, 240.0f));

  draw_header(s);
  ImGui::Separator();

  const float line_h = ImGui::GetTextLineHeight();
  const ImVec2 avail = ImGui::GetContentRegionAvail();
  // Plots sit on whole pixels: their images map one texel to one screen pixel.
  const float right = std::floor(ImGui::GetCursorScreenPos().x + avail.x);
  const float axis_h = line_h + 6;
  const float timeline_h = std::max(60.0f, avail.y * (s.compare() ? 0.23f : 0.40f));
  const float lanes_h = std::max(40.0f, avail.y * (s.compare() ? 0.26f : 0.27f));
  const float spacing = ImGui::GetStyle().ItemSpacing.y;

  for (std::size_t i = 0; i < s.traces.size(); ++i) {
    const ImVec2 at(std::floor(ImGui::GetCursorScreenPos().x), std::floor(ImGui::GetCursorScreenPos().y));
    const PlotRect r{ImVec2(at.x + s.gutter, at.y), ImVec2(right, std::floor(at.y + timeline_h))};
    draw_memory_timeline(s, static_cast<int>(i), r);
    ImGui::SetCursorScreenPos(ImVec2(at.x, r.max.y + spacing));
  }
  {
    const ImVec2 at(std::floor(ImGui::GetCursorScreenPos().x), std::floor(ImGui::GetCursorScreenPos().y));
    const PlotRect axis{ImVec2(at.x + s.gutter, at.y), ImVec2(right, at.y + axis_h)};
    draw_time_labels(ImGui::GetWindowDrawList(), s, axis);
    ImGui::SetCursorScreenPos(ImVec2(at.x, axis.max.y));
    ImGui::Dummy(ImVec2(0, 0));
  }
  draw_stage_lanes(s, lanes_h);
  ImGui::Spacing();
  draw_stage_table(s);
  ImGui::End();
}

}  // namespace tidemark::viewer
