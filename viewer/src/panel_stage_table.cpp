// Per-stage table: saved bytes, forward / backward / recompute time per step, and what the
// plan did with the stage. Sortable on every column; clicking a row selects the stage, which
// highlights its spans in the lanes and marks them under the memory timeline. In compare
// mode the second trace's plan and times sit beside the first's.
#include <algorithm>
#include <fmt/format.h>
#include <numeric>

#include "ui.hpp"

namespace tidemark::viewer {
namespace {

enum Column { kIndex, kName, kKind, kAction, kSaved, kForward, kBackward, kRecompute, kActionB, kForwardB, kRecomputeB };

const StageStats* stats_of(const ViewState& s, std::size_t trace, int stage) {
  if (trace >= s.traces.size() || !s.traces[trace].model) return nullptr;
  const auto& all = s.traces[trace].model->stage_stats();
  return stage >= 0 && stage < static_cast<int>(all.size()) ? &all[static_cast<std::size_t>(stage)] : nullptr;
}

// Sort key of one cell; text columns compare as text.
struct Key {
  double number = 0;
  std::string text;
};

Key key_of(const ViewState& s, int stage, int column) {
  const StageStats* a = stats_of(s, 0, stage);
  const StageStats* b = stats_of(s, 1, stage);
  switch (column) {
    case kIndex: return {static_cast<double>(stage), {}};
    case kName: return {0, a ? a->name : ""};
    case kKind: return {0, a ? a->kind : ""};
    case kAction: return {0, a ? a->action : ""};
    case kSaved: return {a ? static_cast<double>(a->saved_bytes) : 0, {}};
    case kForward: return {a ? a->forward_us : 0, {}};
    case kBackward: return {a ? a->backward_us : 0, {}};
    case kRecompute: return {a ? a->recompute_us : 0, {}};
    case kActionB: return {0, b ? b->action : ""};
    case kForwardB: return {b ? b->forward_us : 0, {}};
    case kRecomputeB: return {b ? b->recompute_us : 0, {}};
  }
  return {};
}

std::string ms(double us) { return us > 0 ? fmt::format("{:.3f}", us / 1000.0) : "-"; }

ImU32 action_colour(const std::string& action) {
  if (action == "checkpoint") return phase_colour(Phase::Recompute);
  if (action == "save") return IM_COL32(200, 200, 205, 255);
  return IM_COL32(255, 200, 120, 255);  // a variant
}

}  // namespace

void draw_stage_table(ViewState& s) {
  if (s.traces.empty() || !s.traces[0].model) return;
  const bool compare = s.compare();
  const int stages = s.traces[0].model->lane_count();
  const int columns = compare ? 11 : 8;
  const ImGuiTableFlags flags = ImGuiTableFlags_Sortable | ImGuiTableFlags_RowBg | ImGuiTableFlags_BordersInnerV |
                                ImGuiTableFlags_BordersOuter | ImGuiTableFlags_ScrollY | ImGuiTableFlags_Resizable |
                                ImGuiTableFlags_SizingStretchProp;
  const ImVec2 size = ImGui::GetContentRegionAvail();
  if (size.y < ImGui::GetFrameHeight() * 2) return;
  if (!ImGui::BeginTable("stages", columns, flags, size)) return;
  const ImGuiTableColumnFlags num = ImGuiTableColumnFlags_PreferSortDescending;
  ImGui::TableSetupScrollFreeze(0, 1);
  ImGui::TableSetupColumn("#", ImGuiTableColumnFlags_DefaultSort, 0.3f, kIndex);
  ImGui::TableSetupColumn("stage", 0, 1.2f, kName);
  ImGui::TableSetupColumn("kind", 0, 0.8f, kKind);
  ImGui::TableSetupColumn(compare ? "A plan" : "plan", 0, 1.1f, kAction);
  ImGui::TableSetupColumn("saved", num, 0.9f, kSaved);
  ImGui::TableSetupColumn(compare ? "A forward ms/step" : "forward ms/step", num, 1.0f, kForward);
  ImGui::TableSetupColumn(compare ? "A backward ms/step" : "backward ms/step", num, 1.0f, kBackward);
  ImGui::TableSetupColumn(compare ? "A recompute ms/step" : "recompute ms/step", num, 1.0f, kRecompute);
  if (compare) {
    ImGui::TableSetupColumn("B plan", 0, 1.1f, kActionB);
    ImGui::TableSetupColumn("B forward ms/step", num, 1.0f, kForwardB);
    ImGui::TableSetupColumn("B recompute ms/step", num, 1.0f, kRecomputeB);
  }
  ImGui::TableHeadersRow();

  // Row order: sorted indices, recomputed only when the specs change or the data does.
  std::vector<int>& order = s.table_order;
  if (static_cast<int>(order.size()) != stages || s.table_sorted_for != s.traces[0].model.get()) {
    order.resize(static_cast<std::size_t>(stages));
    std::iota(order.begin(), order.end(), 0);
    s.table_sorted_for = s.traces[0].model.get();
    if (ImGuiTableSortSpecs* specs = ImGui::TableGetSortSpecs()) specs->SpecsDirty = true;
  }
  if (ImGuiTableSortSpecs* specs = ImGui::TableGetSortSpecs()) {
    if (specs->SpecsDirty && specs->SpecsCount > 0) {
      const ImGuiTableColumnSortSpecs spec = specs->Specs[0];
      std::stable_sort(order.begin(), order.end(), [&](int x, int y) {
        const Key a = key_of(s, x, static_cast<int>(spec.ColumnUserID));
        const Key b = key_of(s, y, static_cast<int>(spec.ColumnUserID));
        const bool less = a.text != b.text ? a.text < b.text : a.number < b.number;
        const bool greater = a.text != b.text ? a.text > b.text : a.number > b.number;
        return spec.SortDirection == ImGuiSortDirection_Ascending ? less : greater;
      });
      specs->SpecsDirty = false;
    }
  }

  ImGuiListClipper clipper;
  clipper.Begin(stages);
  while (clipper.Step()) {
    for (int row = clipper.DisplayStart; row < clipper.DisplayEnd; ++row) {
      const int stage = order[static_cast<std::size_t>(row)];
      const StageStats* a = stats_of(s, 0, stage);
      const StageStats* b = stats_of(s, 1, stage);
      ImGui::TableNextRow();
      ImGui::TableSetColumnIndex(0);
      const std::string id = fmt::format("{}##stage{}", stage, stage);
      if (ImGui::Selectable(id.c_str(), s.selected_stage == stage, ImGuiSelectableFlags_SpanAllColumns)) {
        s.selected_stage = s.selected_stage == stage ? -1 : stage;
      }
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(a ? a->name.c_str() : "");
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(a ? a->kind.c_str() : "");
      ImGui::TableNextColumn();
      if (a) ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(action_colour(a->action)), "%s", a->action.c_str());
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(a && a->saved_bytes ? bytes_text(a->saved_bytes).c_str() : "-");
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(a ? ms(a->forward_us).c_str() : "");
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(a ? ms(a->backward_us).c_str() : "");
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(a ? ms(a->recompute_us).c_str() : "");
      if (compare) {
        ImGui::TableNextColumn();
        if (b) ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(action_colour(b->action)), "%s", b->action.c_str());
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(b ? ms(b->forward_us).c_str() : "");
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(b ? ms(b->recompute_us).c_str() : "");
      }
    }
  }
  ImGui::EndTable();
}

}  // namespace tidemark::viewer
