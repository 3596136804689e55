// bench_viewer: how the viewer copes with a big trace.
//
//   bench_viewer [--samples N] [--spans M] [--frames F] [--width W] [--height H] [--keep PATH]
//
// Generates a GPT-shaped trace (default 1,000,000 memory samples, 100,000 spans), writes it,
// then measures, in one run:
//   load   read_trace (file read + simdjson parse) and TraceModel indexes; nlohmann's DOM
//          parse of the same text beside it for scale
//   lod    one frame's column reduction (the timeline's level of detail)
//   frames whole UI frames at 1600x1000: full zoom-out, zoomed in, a stage selected; each
//          with the view moving every frame (drag, wheel: the plot images are rasterized
//          and uploaded again) and still (hover: they are reused). Wall and CPU time to
//          build a frame (our panels, rasterization, texture upload, ImGui), wall time to
//          render it (GL, glFinish), vertices. With no display the render columns are
//          skipped and frames are built on a headless ImGui context; run it under
//          xvfb-run -a -s "-screen 0 1600x1000x24" for the software-GL numbers.
//
// Sections: [1] timing helpers · [2] load · [3] level of detail · [4] frames · [5] main
#include <imgui.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fmt/format.h>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "tidemark/core/files.hpp"
#include "tidemark/core/trace.hpp"
#include "tidemark/viewer/app.hpp"
#include "tidemark/viewer/trace_gen.hpp"
#include "tidemark/viewer/trace_model.hpp"
#include "tidemark/viewer/viewer.hpp"

using namespace tidemark;
using namespace tidemark::viewer;

namespace {

// ---- [1] timing helpers -----------------------------------------------------------------------

double wall_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

double cpu_ms(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

struct Stats {
  double median = 0, p95 = 0, min = 0;
};

Stats stats(std::vector<double> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v[std::min(v.size() - 1, v.size() * 95 / 100)], v.front()};
}

// ---- [2] load ---------------------------------------------------------------------------------

void bench_load(const std::string& path) {
  std::printf("\nload (%s)\n", path.c_str());
  std::vector<double> read_wall, read_cpu, index_wall, total_wall;
  std::shared_ptr<const TraceModel> model;
  for (int rep = 0; rep < 3; ++rep) {
    const double w0 = wall_ms(), c0 = cpu_ms(CLOCK_PROCESS_CPUTIME_ID);
    Trace t = read_trace(path);
    const double w1 = wall_ms(), c1 = cpu_ms(CLOCK_PROCESS_CPUTIME_ID);
    model = TraceModel::build(std::move(t), path);
    const double w2 = wall_ms();
    read_wall.push_back(w1 - w0);
    read_cpu.push_back(c1 - c0);
    index_wall.push_back(w2 - w1);
    total_wall.push_back(w2 - w0);
  }
  std::printf("  read_trace (read + parse)   %8.1f ms wall (best of 3; median %.1f), %.1f ms CPU\n",
              stats(read_wall).min, stats(read_wall).median, stats(read_cpu).min);
  std::printf("  TraceModel indexes          %8.1f ms wall (pyramid %.1f MiB)\n", stats(index_wall).min,
              static_cast<double>(model->memory().pyramid_bytes()) / (1 << 20));
  std::printf("  load total                  %8.1f ms wall (target: under 1000 ms)\n", stats(total_wall).min);

  const std::string text = read_text_file(path, "trace");
  const double w0 = wall_ms();
  nlohmann::json doc = nlohmann::json::parse(text);
  const double w1 = wall_ms();
  std::printf("  for scale: nlohmann DOM parse of the same text alone: %.1f ms (%.1fx the whole load)\n", w1 - w0,
              (w1 - w0) / stats(total_wall).min);
}

// ---- [3] level of detail ----------------------------------------------------------------------

void bench_lod(const TraceModel& m, int columns) {
  std::printf("\nlevel of detail: %d columns, %zu samples\n", columns, m.trace().memory.size());
  std::vector<ColumnSample> out;
  const double b = static_cast<double>(m.begin_us()), e = static_cast<double>(m.end_us());
  const double mid = static_cast<double>(m.peak().t_us);
  struct Case {
    const char* name;
    double t0, t1;
  };
  for (const Case& c : {Case{"full zoom-out", b, e}, Case{"1/1000 of the trace", mid - (e - b) / 2000, mid + (e - b) / 2000},
                        Case{"1 ms", mid - 500, mid + 500}}) {
    const int reps = 200;
    const double w0 = wall_ms();
    for (int i = 0; i < reps; ++i) m.memory().reduce(c.t0, c.t1, columns, out);
    const double per = (wall_ms() - w0) / reps;
    std::printf("  %-22s %8.3f ms per frame's columns\n", c.name, per);
  }
}

// ---- [4] frames -------------------------------------------------------------------------------

// Each scenario sets a view, then moves it every frame (as a drag or a wheel zoom does, so
// the plot images are rebuilt and uploaded every frame) or leaves it still (as while only
// hovering: the images are reused).
struct Scenario {
  std::string name;
  std::function<void(Viewer&)> setup;
  bool moving;
};

std::vector<Scenario> scenarios(const TraceModel& m) {
  const double b = static_cast<double>(m.begin_us()), e = static_cast<double>(m.end_us());
  const double peak = static_cast<double>(m.peak().t_us);
  const double step = m.trace().steps.empty() ? (e - b) / 10
                                              : static_cast<double>(m.trace().steps[0].end_us - m.trace().steps[0].start_us);
  auto all = [](Viewer& v) {
    v.time_view().set(v.time_view().limit_begin(), v.time_view().limit_end());
    v.select_stage(-1);
  };
  auto three_steps = [=](Viewer& v) {
    v.time_view().set(peak - 1.5 * step, peak + 1.5 * step);
    v.select_stage(-1);
  };
  auto thousandth = [=](Viewer& v) {
    v.time_view().set(peak - (e - b) / 2000, peak + (e - b) / 2000);
    v.select_stage(-1);
  };
  auto selected = [](Viewer& v) {
    v.time_view().set(v.time_view().limit_begin(), v.time_view().limit_end());
    v.select_stage(10);
  };
  std::vector<Scenario> out;
  for (bool moving : {true, false}) {
    out.push_back({"full zoom-out", all, moving});
    out.push_back({"zoomed: 3 of 770 steps", three_steps, moving});
    out.push_back({"zoomed: 1/1000", thousandth, moving});
    out.push_back({"zoom-out, stage selected", selected, moving});
  }
  return out;
}

// Moves the view a little: a 0.2% zoom in or out about the middle, alternating, so even the
// fully zoomed-out view changes every frame.
void move(Viewer& v, int frame) {
  TimeView& t = v.time_view();
  t.zoom(frame % 2 ? 1 / 0.998 : 0.998, 0.5 * (t.begin() + t.end()));
}

void print_frame_header(bool render) {
  std::printf("    %-26s %18s %18s %18s %18s %9s\n", "", "build wall ms", "build CPU ms", render ? "render wall ms" : "",
              render ? "frame wall ms" : "", "vertices");
  std::printf("    %-26s %18s %18s %18s %18s\n", "", "median / p95", "median / p95", render ? "median / p95" : "",
              render ? "median / p95" : "");
}

void bench_frames_gl(const std::shared_ptr<const TraceModel>& m, const std::string& path, int frames, int w, int h) {
  GlSurface surface(w, h, true, "bench_viewer");
  Viewer viewer({path}, {m});
  viewer.set_image_sink(surface.images());
  std::printf("\nframes at %dx%d on %s (%d per scenario, after 5 warm-up)\n", w, h, surface.renderer().c_str(), frames);
  print_frame_header(true);
  const std::vector<Scenario> list = scenarios(*m);
  for (std::size_t k = 0; k < list.size(); ++k) {
    const Scenario& sc = list[k];
    if (k == 0 || sc.moving != list[k - 1].moving) {
      const bool moving = sc.moving;
      std::printf("  %s\n", moving ? "view moving every frame (drag, wheel): plot images rebuilt"
                                   : "view still (hover): plot images reused");
    }
    sc.setup(viewer);
    std::vector<double> bw, bc, rw, fw;
    std::size_t vertices = 0;
    for (int i = 0; i < frames + 5; ++i) {
      if (sc.moving) move(viewer, i);
      FrameTiming t = surface.frame([&] { viewer.draw(); });
      if (i < 5) continue;
      bw.push_back(t.build_wall_ms);
      bc.push_back(t.build_cpu_ms);
      rw.push_back(t.render_wall_ms);
      fw.push_back(t.frame_wall_ms);
      vertices = t.vertices;
    }
    auto col = [](const Stats& s) { return fmt::format("{:7.2f} / {:7.2f}", s.median, s.p95); };
    std::printf("    %-26s %18s %18s %18s %18s %9zu\n", sc.name.c_str(), col(stats(bw)).c_str(),
                col(stats(bc)).c_str(), col(stats(rw)).c_str(), col(stats(fw)).c_str(), vertices);
  }
  // For scale: what this GL costs for a frame with no panels at all.
  std::vector<double> empty;
  for (int i = 0; i < frames + 5; ++i) {
    FrameTiming t = surface.frame([] {});
    if (i >= 5) empty.push_back(t.frame_wall_ms);
  }
  std::printf("    %-26s %18s %18s %18s %7.2f / %7.2f\n", "nothing drawn (GL floor)", "", "", "", stats(empty).median,
              stats(empty).p95);
}

void bench_frames_headless(const std::shared_ptr<const TraceModel>& m, const std::string& path, int frames, int w, int h) {
  ImGuiContext* ctx = ImGui::CreateContext();
  ImGuiIO& io = ImGui::GetIO();
  io.IniFilename = nullptr;
  io.DisplaySize = ImVec2(static_cast<float>(w), static_cast<float>(h));
  io.BackendFlags |= ImGuiBackendFlags_RendererHasVtxOffset;
  struct stat st {};
  const char* font = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
  if (::stat(font, &st) != 0 || !io.Fonts->AddFontFromFileTTF(font, 15.0f)) io.Fonts->AddFontDefault();
  unsigned char* pixels = nullptr;
  int tw = 0, th = 0;
  io.Fonts->GetTexDataAsRGBA32(&pixels, &tw, &th);
  Viewer viewer({path}, {m});
  std::printf("\nframes at %dx%d, headless (no display: build only; run under xvfb-run for render times)\n", w, h);
  std::printf("  view moving every frame (drag, wheel): plot images rebuilt\n");
  print_frame_header(false);
  for (const auto& sc : scenarios(*m)) {
    if (!sc.moving) continue;  // without a renderer, a still view costs nothing to show
    sc.setup(viewer);
    std::vector<double> bw, bc;
    std::size_t vertices = 0;
    for (int i = 0; i < frames + 5; ++i) {
      move(viewer, i);
      io.DeltaTime = 1.0f / 60;
      const double w0 = wall_ms(), c0 = cpu_ms(CLOCK_THREAD_CPUTIME_ID);
      ImGui::NewFrame();
      viewer.draw();
      ImGui::Render();
      const double w1 = wall_ms(), c1 = cpu_ms(CLOCK_THREAD_CPUTIME_ID);
      if (i < 5) continue;
      bw.push_back(w1 - w0);
      bc.push_back(c1 - c0);
      vertices = static_cast<std::size_t>(ImGui::GetDrawData()->TotalVtxCount);
    }
    auto col = [](const Stats& s) { return fmt::format("{:7.2f} / {:7.2f}", s.median, s.p95); };
    std::printf("    %-26s %18s %18s %18s %18s %9zu\n", sc.name.c_str(), col(stats(bw)).c_str(), col(stats(bc)).c_str(),
                "", "", vertices);
  }
  ImGui::DestroyContext(ctx);
}

}  // namespace

// ---- [5] main ---------------------------------------------------------------------------------

int main(int argc, char** argv) {
  std::size_t samples = 1000000, spans = 100000;
  int frames = 30, w = 1600, h = 1000;
  std::string keep;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "error: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--samples") samples = std::stoul(next());
    else if (a == "--spans") spans = std::stoul(next());
    else if (a == "--frames") frames = std::stoi(next());
    else if (a == "--width") w = std::stoi(next());
    else if (a == "--height") h = std::stoi(next());
    else if (a == "--keep") keep = next();
    else {
      std::fprintf(stderr, "usage: %s [--samples N] [--spans M] [--frames F] [--width W] [--height H] [--keep PATH]\n", argv[0]);
      return 2;
    }
  }
  try {
    const double g0 = wall_ms();
    Trace t = generate_trace(trace_gen_options_for(samples, spans, true));
    const double g1 = wall_ms();
    const std::string path = keep.empty() ? fmt::format("/tmp/bench_viewer_{}.json", static_cast<long>(::getpid())) : keep;
    write_trace(path, t);
    const double g2 = wall_ms();
    struct stat st {};
    ::stat(path.c_str(), &st);
    std::printf("trace: %zu memory samples, %zu spans, %zu stages, %zu steps; %.1f MiB of JSON\n", t.memory.size(),
                t.spans.size(), t.stages.size(), t.steps.size(), static_cast<double>(st.st_size) / (1 << 20));
    std::printf("  (generated in %.0f ms, written in %.0f ms; not part of the benchmark)\n", g1 - g0, g2 - g1);

    bench_load(path);
    std::shared_ptr<const TraceModel> m = TraceModel::load(path);
    bench_lod(*m, w - 150);
    const char* display = std::getenv("DISPLAY");
    if (display && *display) {
      bench_frames_gl(m, path, frames, w, h);
    } else {
      bench_frames_headless(m, path, frames, w, h);
    }
    if (keep.empty()) std::remove(path.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  return 0;
}
