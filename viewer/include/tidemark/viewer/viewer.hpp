#pragma once
// The viewer's user interface: Dear ImGui calls only, no GL and no window. Whoever owns an
// ImGui context (the GLFW app in app.hpp, a test, the benchmark) calls draw() once per frame
// between ImGui::NewFrame() and ImGui::Render().
//
// One trace: memory timeline, stage lanes, per-stage table. Two traces (compare mode): a
// timeline for each on one time scale and one byte scale, both traces' lanes, and the peaks
// with their difference in the header.
#include <memory>
#include <string>
#include <vector>

#include "tidemark/viewer/plot_raster.hpp"
#include "tidemark/viewer/time_view.hpp"
#include "tidemark/viewer/trace_model.hpp"

namespace tidemark::viewer {

struct ViewState;  // private to the panels (src/ui.hpp)

// Turns the panels' CPU-rasterized plots into textures (Note [Why rasterize on the CPU] in
// plot_raster.hpp). The GL app implements it; without one (tests, a headless benchmark)
// the panels still build their images but draw nothing for them.
class ImageSink {
 public:
  virtual ~ImageSink() = default;
  // Creates or updates texture `slot` (0..3) from `image`; returns its ImTextureID.
  virtual void* upload(int slot, const Image& image) = 0;
};

class Viewer {
 public:
  // paths[i] is where models[i] came from (reload reads it again).
  Viewer(std::vector<std::string> paths, std::vector<std::shared_ptr<const TraceModel>> models);
  ~Viewer();
  Viewer(const Viewer&) = delete;
  Viewer& operator=(const Viewer&) = delete;

  // One full-window frame of the UI. Call inside an ImGui frame.
  void draw();

  TimeView& time_view();
  void select_stage(int stage);  // -1: none
  int selected_stage() const;

  // Reads every trace again from disk. A trace that fails keeps its previous contents; the
  // error goes to stderr and to a banner in the window. Returns false when any failed.
  bool reload();
  const std::vector<std::string>& errors() const;
  void add_error(std::string message);  // shown in the window (and printed to stderr)

  void set_image_sink(ImageSink* sink);  // not owned; must outlive draw() calls

 private:
  std::unique_ptr<ViewState> state_;
};

}  // namespace tidemark::viewer
