#pragma once
// The desktop app around Viewer: a GLFW window with an OpenGL 3 context and Dear ImGui's
// GLFW + OpenGL3 backends, the event loop, and screenshots. Nothing here exposes GLFW or GL
// types, so the CLI and the benchmark include it freely.
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace tidemark::viewer {

class ImageSink;

struct ViewerOptions {
  std::vector<std::string> traces;  // one, or two to compare
  int width = 1600;
  int height = 1000;
  std::string screenshot;           // PNG path: render once offscreen, save, return
};

// Loads the traces first (a missing or malformed file throws FormatError / UserError before
// any window opens), then runs the window until it is closed, or saves the screenshot.
// Throws UserError when no window or GL context can be had (no display: use xvfb-run).
void run_viewer(const ViewerOptions& options);

struct FrameTiming {
  double build_wall_ms = 0;   // NewFrame .. Render: our panels and ImGui's layout
  double build_cpu_ms = 0;    // the same on this thread's CPU clock
  double render_wall_ms = 0;  // the GL draw of that frame, finished (glFinish)
  double frame_wall_ms = 0;   // all of it, swap included
  std::size_t vertices = 0;
  std::size_t draw_commands = 0;
};

// A GL context with an ImGui context on it. Interactive: a visible, resizable window.
// Offscreen: a hidden window whose frames go to a framebuffer object of exactly
// width x height, whatever the screen (screenshots, the benchmark).
class GlSurface {
 public:
  GlSurface(int width, int height, bool offscreen, const std::string& title);
  ~GlSurface();
  GlSurface(const GlSurface&) = delete;
  GlSurface& operator=(const GlSurface&) = delete;

  // Builds one ImGui frame with `build` and renders it. With `rgba`, also reads the frame
  // back: width*height*4 bytes, top row first.
  FrameTiming frame(const std::function<void()>& build, std::vector<unsigned char>* rgba = nullptr);

  bool should_close() const;
  // Interactive: sleeps until input arrives (or timeout_s) unless the last frames had
  // input, in which case it only polls, so drags and zooms stay smooth and an idle window
  // costs nothing.
  void wait_for_input(double timeout_s);
  int width() const;
  int height() const;
  std::string renderer() const;  // GL_RENDERER, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)"
  // GL textures for Viewer::set_image_sink; lives as long as this surface.
  ImageSink* images();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Writes RGBA pixels (top row first) as a PNG, atomically. Throws UserError.
void write_png(const std::string& path, int width, int height, const std::vector<unsigned char>& rgba);

}  // namespace tidemark::viewer
