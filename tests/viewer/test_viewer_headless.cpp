// The ImGui panels without a window or GL: frames are built on a bare ImGui context (font
// atlas built, no renderer), with synthetic mouse input. Checks that frames stay small,
// input zooms, pans and selects, plots reach the image sink, compare mode and reload work.
#include <imgui.h>

#include <cstdio>
#include <fstream>

#include "catch.hpp"
#include "tidemark/viewer/palette.hpp"
#include "tidemark/viewer/trace_gen.hpp"
#include "tidemark/viewer/viewer.hpp"

using namespace tidemark;
using namespace tidemark::viewer;

namespace {

// An ImGui context that builds frames and renders nothing.
struct HeadlessImGui {
  ImGuiContext* ctx;
  explicit HeadlessImGui(float w = 1600, float h = 1000) {
    ctx = ImGui::CreateContext();
    ImGuiIO& io = ImGui::GetIO();
    io.IniFilename = nullptr;
    io.DisplaySize = ImVec2(w, h);
    io.DeltaTime = 1.0f / 60;
    io.BackendFlags |= ImGuiBackendFlags_RendererHasVtxOffset;
    unsigned char* px = nullptr;
    int tw = 0, th = 0;
    io.Fonts->GetTexDataAsRGBA32(&px, &tw, &th);
  }
  ~HeadlessImGui() { ImGui::DestroyContext(ctx); }
  int frame(Viewer& v) {
    ImGui::NewFrame();
    v.draw();
    ImGui::Render();
    return ImGui::GetDrawData()->TotalVtxCount;
  }
};

// Keeps the last image uploaded to each slot.
struct RecordingSink : ImageSink {
  Image images[4];
  int uploads = 0;
  void* upload(int slot, const Image& image) override {
    images[slot] = image;
    ++uploads;
    return reinterpret_cast<void*>(static_cast<std::intptr_t>(slot + 1));
  }
};

std::string write_generated(const std::string& name, const TraceGenOptions& o) {
  const std::string path = std::string(TIDEMARK_BINARY_DIR) + "/" + name;
  write_trace(path, generate_trace(o));
  return path;
}

}  // namespace

TEST_CASE("a frame of a big trace stays a few thousand vertices", "[viewer][ui]") {
  HeadlessImGui gui;
  auto m = TraceModel::build(generate_trace(trace_gen_options_for(200000, 20000, true)), "big.json");
  Viewer v({"big.json"}, {m});
  RecordingSink sink;
  v.set_image_sink(&sink);
  for (int i = 0; i < 3; ++i) {
    const int vertices = gui.frame(v);
    // Nothing is drawn per sample or per span (Note [Draw call size]).
    CHECK(vertices < 20000);
  }
  CHECK(sink.images[0].width > 1000);  // the timeline image spans the window
  CHECK(sink.images[1].height > 0);    // the lanes image
  const int uploads = sink.uploads;
  gui.frame(v);
  CHECK(sink.uploads == uploads);  // a still view reuses its images
}

TEST_CASE("wheel zooms about the cursor, drag pans, clicks select a stage", "[viewer][ui]") {
  HeadlessImGui gui;
  TraceGenOptions o;
  o.steps = 4;
  auto m = TraceModel::build(generate_trace(o), "t.json");
  Viewer v({"t.json"}, {m});
  RecordingSink sink;
  v.set_image_sink(&sink);
  ImGuiIO& io = ImGui::GetIO();
  gui.frame(v);
  gui.frame(v);
  const double full = v.time_view().span();
  // The timeline takes the band under the header; its middle is well inside it.
  io.MousePos = ImVec2(900, 300);
  gui.frame(v);
  io.MouseWheel = 2;
  gui.frame(v);
  io.MouseWheel = 0;
  CHECK(v.time_view().span() < full * 0.7);
  const double before = v.time_view().begin();
  // Drag left by 200 pixels: the view moves later in time.
  io.MouseDown[0] = true;
  gui.frame(v);
  for (int i = 0; i < 4; ++i) {
    io.MousePos.x -= 50;
    gui.frame(v);
  }
  io.MouseDown[0] = false;
  gui.frame(v);
  CHECK(v.time_view().begin() > before);
  // Double-click shows everything again.
  for (int k = 0; k < 2; ++k) {
    io.MouseDown[0] = true;
    gui.frame(v);
    io.MouseDown[0] = false;
    gui.frame(v);
  }
  CHECK(v.time_view().fully_zoomed_out());
  // Escape-free API: selecting a stage re-renders the images with it highlighted.
  const int uploads = sink.uploads;
  v.select_stage(2);
  gui.frame(v);
  CHECK(v.selected_stage() == 2);
  CHECK(sink.uploads > uploads);
}

TEST_CASE("compare mode draws both traces on one time scale", "[viewer][ui]") {
  HeadlessImGui gui;
  TraceGenOptions o;
  o.checkpoint = false;
  auto a = TraceModel::build(generate_trace(o), "none.json");
  o.checkpoint = true;
  auto b = TraceModel::build(generate_trace(o), "plan.json");
  Viewer v({"none.json", "plan.json"}, {a, b});
  RecordingSink sink;
  v.set_image_sink(&sink);
  gui.frame(v);
  gui.frame(v);
  for (int slot = 0; slot < 4; ++slot) CHECK(sink.images[slot].width > 0);
  // Both timelines share the byte scale: the plan's (lower) peak sits lower in its image.
  CHECK(sink.images[0].width == sink.images[2].width);
  CHECK(v.time_view().limit_end() >= static_cast<double>(std::max(a->end_us(), b->end_us())));
}

TEST_CASE("a reload that fails keeps the trace and shows the error", "[viewer][ui]") {
  HeadlessImGui gui;
  const std::string path = write_generated("test_viewer_reload.json", TraceGenOptions{});
  auto m = TraceModel::load(path);
  Viewer v({path}, {m});
  gui.frame(v);
  CHECK(v.reload());
  CHECK(v.errors().empty());
  {
    std::ofstream cut(path, std::ios::trunc);
    cut << "{\"schema\": \"tidemark.trace\", \"version\": 1, \"memory\": [1, 2";
  }
  CHECK_FALSE(v.reload());
  REQUIRE(v.errors().size() == 1);
  CHECK(v.errors()[0].find("not valid JSON") != std::string::npos);
  CHECK(v.errors()[0].find(path) != std::string::npos);
  gui.frame(v);  // the banner draws, the old trace still shows
  std::remove(path.c_str());
  CHECK_FALSE(v.reload());
  CHECK(v.errors().back().find("cannot be read") != std::string::npos);
}

TEST_CASE("odd traces draw without tripping ImGui: empty, one stage, thousands of stages", "[viewer][ui]") {
  HeadlessImGui gui(800, 500);
  RecordingSink sink;
  Trace empty;
  Trace one;
  one.stages = {{"only", "block", "save", 0}};
  one.spans = {{0, Phase::Forward, 0, 10, 20}};
  one.memory.push(10, {1, 2, 3, 4, 5, 6});
  TraceGenOptions o;
  o.blocks = 3000;
  o.steps = 1;
  o.samples_per_span = 2;
  Trace many = generate_trace(o);
  for (Trace* t : {&empty, &one, &many}) {
    Viewer v({"odd.json"}, {TraceModel::build(*t, "odd.json")});
    v.set_image_sink(&sink);
    v.select_stage(0);
    for (int i = 0; i < 3; ++i) CHECK(gui.frame(v) < 60000);
    // The lanes image never outgrows the window, whatever the number of stages.
    CHECK(sink.images[1].height <= 500);
  }
}
