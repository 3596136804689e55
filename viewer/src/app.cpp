// GlSurface (GLFW window, OpenGL 3 context, ImGui backends, offscreen framebuffer) and
// run_viewer (the event loop and the screenshot path).
//
// Sections: [1] GLFW and GL plumbing · [2] GlSurface · [3] run_viewer
#include "tidemark/viewer/app.hpp"

#include <GLFW/glfw3.h>  // includes GL/gl.h
#include <GL/glext.h>
#include <imgui.h>
#include <imgui_impl_glfw.h>
#include <imgui_impl_opengl3.h>

#include <algorithm>
#include <cstdlib>
#include <cfloat>
#include <cstdint>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fmt/format.h>
#include <sys/stat.h>

#include "tidemark/core/error.hpp"
#include "tidemark/core/files.hpp"
#include "tidemark/viewer/palette.hpp"
#include "tidemark/viewer/trace_model.hpp"
#include "tidemark/viewer/viewer.hpp"

namespace tidemark::viewer {
namespace {

// ---- [1] GLFW and GL plumbing -----------------------------------------------------------------

std::string g_glfw_error;  // last GLFW error, for the message when a window cannot be had

void on_glfw_error(int code, const char* text) { g_glfw_error = fmt::format("{} (GLFW error {:#x})", text ? text : "?", code); }

double thread_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

double now_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

// Framebuffer objects are GL 3.0: not exported by every libGL, so they come through GLFW.
struct FboApi {
  PFNGLGENFRAMEBUFFERSPROC gen_framebuffers = nullptr;
  PFNGLBINDFRAMEBUFFERPROC bind_framebuffer = nullptr;
  PFNGLDELETEFRAMEBUFFERSPROC delete_framebuffers = nullptr;
  PFNGLGENRENDERBUFFERSPROC gen_renderbuffers = nullptr;
  PFNGLBINDRENDERBUFFERPROC bind_renderbuffer = nullptr;
  PFNGLDELETERENDERBUFFERSPROC delete_renderbuffers = nullptr;
  PFNGLRENDERBUFFERSTORAGEPROC renderbuffer_storage = nullptr;
  PFNGLFRAMEBUFFERRENDERBUFFERPROC framebuffer_renderbuffer = nullptr;
  PFNGLCHECKFRAMEBUFFERSTATUSPROC check_framebuffer_status = nullptr;

  bool load() {
    auto get = [](const char* name) { return glfwGetProcAddress(name); };
    gen_framebuffers = reinterpret_cast<PFNGLGENFRAMEBUFFERSPROC>(get("glGenFramebuffers"));
    bind_framebuffer = reinterpret_cast<PFNGLBINDFRAMEBUFFERPROC>(get("glBindFramebuffer"));
    delete_framebuffers = reinterpret_cast<PFNGLDELETEFRAMEBUFFERSPROC>(get("glDeleteFramebuffers"));
    gen_renderbuffers = reinterpret_cast<PFNGLGENRENDERBUFFERSPROC>(get("glGenRenderbuffers"));
    bind_renderbuffer = reinterpret_cast<PFNGLBINDRENDERBUFFERPROC>(get("glBindRenderbuffer"));
    delete_renderbuffers = reinterpret_cast<PFNGLDELETERENDERBUFFERSPROC>(get("glDeleteRenderbuffers"));
    renderbuffer_storage = reinterpret_cast<PFNGLRENDERBUFFERSTORAGEPROC>(get("glRenderbufferStorage"));
    framebuffer_renderbuffer = reinterpret_cast<PFNGLFRAMEBUFFERRENDERBUFFERPROC>(get("glFramebufferRenderbuffer"));
    check_framebuffer_status = reinterpret_cast<PFNGLCHECKFRAMEBUFFERSTATUSPROC>(get("glCheckFramebufferStatus"));
    return gen_framebuffers && bind_framebuffer && delete_framebuffers && gen_renderbuffers && bind_renderbuffer &&
           delete_renderbuffers && renderbuffer_storage && framebuffer_renderbuffer && check_framebuffer_status;
  }
};

void load_fonts() {
  ImGuiIO& io = ImGui::GetIO();
  // DejaVu Sans reads better than ImGui's built-in bitmap font at 1600 px; the built-in one
  // is the fallback where the font is not installed.
  for (const char* path : {"/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                           "/usr/share/fonts/TTF/DejaVuSans.ttf"}) {
    struct stat st {};
    if (::stat(path, &st) == 0 && io.Fonts->AddFontFromFileTTF(path, 15.0f)) return;
  }
  io.Fonts->AddFontDefault();
}

void apply_style() {
  ImGui::StyleColorsDark();
  ImGuiStyle& style = ImGui::GetStyle();
  style.WindowPadding = ImVec2(10, 8);
  style.ItemSpacing = ImVec2(8, 5);
  style.WindowRounding = 0;
  style.FrameRounding = 2;
  // The main window draws no background (viewer.cpp); popups and tooltips use this one.
  style.Colors[ImGuiCol_WindowBg] = ImGui::ColorConvertU32ToFloat4(palette::kBackground);
}

// Plot images as GL textures, one per slot, resized when the plot is.
class GlImageSink : public ImageSink {
 public:
  ~GlImageSink() override {
    for (auto& t : textures_) {
      if (t.id) glDeleteTextures(1, &t.id);
    }
  }
  void* upload(int slot, const Image& image) override {
    if (slot < 0 || slot >= kSlots || image.width <= 0 || image.height <= 0) return nullptr;
    Texture& t = textures_[slot];
    if (!t.id) glGenTextures(1, &t.id);
    glBindTexture(GL_TEXTURE_2D, t.id);
    // Nearest: the quad covers exactly width x height pixels, one texel each.
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_S, GL_CLAMP_TO_EDGE);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_T, GL_CLAMP_TO_EDGE);
    glPixelStorei(GL_UNPACK_ALIGNMENT, 4);
    glPixelStorei(GL_UNPACK_ROW_LENGTH, 0);
    if (t.width != image.width || t.height != image.height) {
      glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA8, image.width, image.height, 0, GL_RGBA, GL_UNSIGNED_BYTE, image.pixels.data());
      t.width = image.width;
      t.height = image.height;
    } else {
      glTexSubImage2D(GL_TEXTURE_2D, 0, 0, 0, image.width, image.height, GL_RGBA, GL_UNSIGNED_BYTE, image.pixels.data());
    }
    return reinterpret_cast<void*>(static_cast<std::intptr_t>(t.id));
  }

 private:
  static constexpr int kSlots = 4;
  struct Texture {
    GLuint id = 0;
    int width = 0, height = 0;
  };
  Texture textures_[kSlots];
};

}  // namespace

// ---- [2] GlSurface ----------------------------------------------------------------------------

struct GlSurface::Impl {
  GLFWwindow* window = nullptr;
  bool offscreen = false;
  int width = 0, height = 0;
  FboApi fbo_api;
  GLuint fbo = 0, colour = 0;
  ImGuiContext* imgui = nullptr;
  bool glfw_backend = false, gl_backend = false;
  int busy_frames = 0;
  std::unique_ptr<GlImageSink> images;  // textures: freed while the context still exists
};

GlSurface::GlSurface(int width, int height, bool offscreen, const std::string& title) : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.offscreen = offscreen;
  s.width = width;
  s.height = height;
  glfwSetErrorCallback(on_glfw_error);
  g_glfw_error.clear();
  auto no_window = [&](const std::string& why) {
    return UserError(fmt::format("cannot open a window: {}. Without a display, run it under Xvfb: xvfb-run -a -s "
                                 "\"-screen 0 {}x{}x24\" tidemark view ...",
                                 why, std::max(width, 1600), std::max(height, 1000)));
  };
  // Without a display there is no window to be had; asking GLFW anyway makes libwayland
  // print its own error line first (GLFW 3.4 probes Wayland), so say it once, here.
  const bool x11 = std::getenv("DISPLAY") != nullptr, wayland = std::getenv("WAYLAND_DISPLAY") != nullptr;
  if (!x11 && !wayland) throw no_window("there is no display (DISPLAY and WAYLAND_DISPLAY are unset)");
#if GLFW_VERSION_MAJOR > 3 || (GLFW_VERSION_MAJOR == 3 && GLFW_VERSION_MINOR >= 4)
  // GLFW 3.4 picks Wayland or X11 at run time, and its Wayland probe makes libwayland print
  // an error line on a box without XDG_RUNTIME_DIR (Xvfb, CI) before X11 is tried. With an X
  // display and no Wayland one, X11 is the answer: ask for it.
  if (x11 && !wayland && glfwPlatformSupported(GLFW_PLATFORM_X11)) glfwInitHint(GLFW_PLATFORM, GLFW_PLATFORM_X11);
#endif
  if (!glfwInit()) throw no_window(g_glfw_error.empty() ? "GLFW could not start" : g_glfw_error);
  glfwWindowHint(GLFW_CONTEXT_VERSION_MAJOR, 3);
  glfwWindowHint(GLFW_CONTEXT_VERSION_MINOR, 0);
  if (offscreen) glfwWindowHint(GLFW_VISIBLE, GLFW_FALSE);
  // Offscreen frames go to the framebuffer object, so the hidden window can stay small
  // whatever the requested size or the screen's.
  s.window = offscreen ? glfwCreateWindow(256, 256, title.c_str(), nullptr, nullptr)
                       : glfwCreateWindow(width, height, title.c_str(), nullptr, nullptr);
  if (!s.window) {
    std::string why = g_glfw_error.empty() ? "no OpenGL 3 context" : g_glfw_error;
    glfwTerminate();
    throw UserError(fmt::format("cannot open an OpenGL 3 window: {} (Mesa's libgl1-mesa-dri gives one in software)", why));
  }
  glfwMakeContextCurrent(s.window);
  glfwSwapInterval(offscreen ? 0 : 1);

  if (offscreen) {
    if (!s.fbo_api.load()) {
      glfwDestroyWindow(s.window);
      glfwTerminate();
      throw UserError("this OpenGL has no framebuffer objects; screenshots need OpenGL 3");
    }
    s.fbo_api.gen_framebuffers(1, &s.fbo);
    s.fbo_api.bind_framebuffer(GL_FRAMEBUFFER, s.fbo);
    s.fbo_api.gen_renderbuffers(1, &s.colour);
    s.fbo_api.bind_renderbuffer(GL_RENDERBUFFER, s.colour);
    s.fbo_api.renderbuffer_storage(GL_RENDERBUFFER, GL_RGBA8, width, height);
    s.fbo_api.framebuffer_renderbuffer(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_RENDERBUFFER, s.colour);
    if (s.fbo_api.check_framebuffer_status(GL_FRAMEBUFFER) != GL_FRAMEBUFFER_COMPLETE) {
      glfwDestroyWindow(s.window);
      glfwTerminate();
      throw UserError(fmt::format("cannot make a {}x{} offscreen framebuffer; try a smaller --width/--height", width, height));
    }
  }

  IMGUI_CHECKVERSION();
  s.imgui = ImGui::CreateContext();
  ImGuiIO& io = ImGui::GetIO();
  io.IniFilename = nullptr;  // nothing written into the user's working directory
  apply_style();
  load_fonts();
  if (!offscreen) s.glfw_backend = ImGui_ImplGlfw_InitForOpenGL(s.window, true);
  s.gl_backend = ImGui_ImplOpenGL3_Init("#version 130");
  if (!s.gl_backend) {
    ImGui::DestroyContext(s.imgui);
    glfwDestroyWindow(s.window);
    glfwTerminate();
    throw UserError("cannot set up Dear ImGui's OpenGL 3 renderer on this context");
  }
  s.images = std::make_unique<GlImageSink>();
}

ImageSink* GlSurface::images() { return impl_->images.get(); }

GlSurface::~GlSurface() {
  Impl& s = *impl_;
  s.images.reset();
  if (s.gl_backend) ImGui_ImplOpenGL3_Shutdown();
  if (s.glfw_backend) ImGui_ImplGlfw_Shutdown();
  if (s.imgui) ImGui::DestroyContext(s.imgui);
  if (s.fbo) s.fbo_api.delete_framebuffers(1, &s.fbo);
  if (s.colour) s.fbo_api.delete_renderbuffers(1, &s.colour);
  if (s.window) glfwDestroyWindow(s.window);
  glfwTerminate();
}

int GlSurface::width() const { return impl_->width; }
int GlSurface::height() const { return impl_->height; }
bool GlSurface::should_close() const { return glfwWindowShouldClose(impl_->window) != 0; }

std::string GlSurface::renderer() const {
  const GLubyte* r = glGetString(GL_RENDERER);
  return r ? reinterpret_cast<const char*>(r) : "unknown";
}

void GlSurface::wait_for_input(double timeout_s) {
  Impl& s = *impl_;
  if (s.busy_frames > 0) {
    --s.busy_frames;
    glfwPollEvents();
  } else {
    glfwWaitEventsTimeout(timeout_s);
  }
}

FrameTiming GlSurface::frame(const std::function<void()>& build, std::vector<unsigned char>* rgba) {
  Impl& s = *impl_;
  FrameTiming timing;
  const double t0 = now_ms(), c0 = thread_cpu_ms();
  ImGui_ImplOpenGL3_NewFrame();
  ImGuiIO& io = ImGui::GetIO();
  if (s.glfw_backend) {
    ImGui_ImplGlfw_NewFrame();
  } else {
    io.DisplaySize = ImVec2(static_cast<float>(s.width), static_cast<float>(s.height));
    io.DisplayFramebufferScale = ImVec2(1, 1);
    io.DeltaTime = 1.0f / 60.0f;
    io.MousePos = ImVec2(-FLT_MAX, -FLT_MAX);  // no pointer: no hover artefacts in screenshots
  }
  ImGui::NewFrame();
  build();
  ImGui::Render();
  const double t1 = now_ms(), c1 = thread_cpu_ms();
  timing.build_wall_ms = t1 - t0;
  timing.build_cpu_ms = c1 - c0;
  ImDrawData* dd = ImGui::GetDrawData();
  timing.vertices = static_cast<std::size_t>(dd->TotalVtxCount);
  for (int i = 0; i < dd->CmdListsCount; ++i) timing.draw_commands += static_cast<std::size_t>(dd->CmdLists[i]->CmdBuffer.Size);

  int fb_w = s.width, fb_h = s.height;
  if (s.offscreen) {
    s.fbo_api.bind_framebuffer(GL_FRAMEBUFFER, s.fbo);
  } else {
    glfwGetFramebufferSize(s.window, &fb_w, &fb_h);
  }
  glViewport(0, 0, fb_w, fb_h);
  glClearColor(red_of(palette::kBackground) / 255.0f, green_of(palette::kBackground) / 255.0f,
               blue_of(palette::kBackground) / 255.0f, 1.0f);
  glClear(GL_COLOR_BUFFER_BIT);
  ImGui_ImplOpenGL3_RenderDrawData(dd);
  if (rgba) {
    // Read before any swap: after it the back buffer's contents are undefined (reading
    // GL_FRONT after the swap gave zeros under Xvfb).
    rgba->assign(static_cast<std::size_t>(fb_w) * static_cast<std::size_t>(fb_h) * 4, 0);
    glReadBuffer(s.offscreen ? GL_COLOR_ATTACHMENT0 : GL_BACK);
    glPixelStorei(GL_PACK_ALIGNMENT, 1);
    glReadPixels(0, 0, fb_w, fb_h, GL_RGBA, GL_UNSIGNED_BYTE, rgba->data());
    // GL's rows run bottom-up; PNG's top-down.
    const std::size_t row = static_cast<std::size_t>(fb_w) * 4;
    std::vector<unsigned char> tmp(row);
    for (int y = 0; y < fb_h / 2; ++y) {
      unsigned char* a = rgba->data() + static_cast<std::size_t>(y) * row;
      unsigned char* b = rgba->data() + static_cast<std::size_t>(fb_h - 1 - y) * row;
      std::copy(a, a + row, tmp.data());
      std::copy(b, b + row, a);
      std::copy(tmp.data(), tmp.data() + row, b);
    }
  }
  glFinish();
  const double t2 = now_ms();
  timing.render_wall_ms = t2 - t1;
  if (!s.offscreen) glfwSwapBuffers(s.window);
  timing.frame_wall_ms = now_ms() - t0;

  // Keep polling for a few frames after any input so motion stays smooth.
  if (io.MouseDelta.x != 0 || io.MouseDelta.y != 0 || io.MouseWheel != 0 || ImGui::IsAnyItemActive() ||
      ImGui::IsAnyMouseDown()) {
    s.busy_frames = 3;
  }
  return timing;
}

// ---- [3] run_viewer ---------------------------------------------------------------------------

void run_viewer(const ViewerOptions& options) {
  if (options.traces.empty() || options.traces.size() > 2) {
    throw UserError("view takes one trace, or two to compare");
  }
  if (!options.screenshot.empty()) check_writable(options.screenshot, "--screenshot");
  // Every file is read before a window opens: bad input ends with one clear error line.
  std::vector<std::shared_ptr<const TraceModel>> models;
  for (const auto& path : options.traces) models.push_back(TraceModel::load(path));

  std::string title = "tidemark view " + options.traces[0];
  if (options.traces.size() > 1) title += " vs " + options.traces[1];
  const bool offscreen = !options.screenshot.empty();
  GlSurface surface(options.width, options.height, offscreen, title);
  Viewer viewer(options.traces, models);
  viewer.set_image_sink(surface.images());

  if (offscreen) {
    // A few frames first: tables and text sizes settle over the first two.
    std::vector<unsigned char> rgba;
    for (int i = 0; i < 3; ++i) surface.frame([&] { viewer.draw(); });
    surface.frame([&] { viewer.draw(); }, &rgba);
    write_png(options.screenshot, surface.width(), surface.height(), rgba);
    std::printf("wrote %s (%dx%d)\n", options.screenshot.c_str(), surface.width(), surface.height());
    return;
  }
  while (!surface.should_close()) {
    surface.frame([&] { viewer.draw(); });
    surface.wait_for_input(1.0);
  }
}

}  // namespace tidemark::viewer
