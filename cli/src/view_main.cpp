// tidemark-view TRACE [TRACE2] [--screenshot out.png] [--width W] [--height H]
// The viewer as its own program, which never loads LibTorch; `tidemark view ...` runs it
// (Note [tidemark-view] in main.cpp).
#include <fmt/format.h>

#include "run_app.hpp"
#include "tidemark/core/error.hpp"
#include "tidemark/viewer/app.hpp"

int main(int argc, char** argv) {
  using namespace tidemark;
  CLI::App app{"Show a trace's memory timeline, stage lanes and per-stage table", "tidemark view"};
  app.footer(
      "Examples:\n"
      "  tidemark view trace.json\n"
      "  tidemark view none.json plan.json          compare two runs on one time scale\n"
      "  tidemark view trace.json --screenshot view.png\n"
      "Without a display (a server, CI), run it under Xvfb:\n"
      "  xvfb-run -a -s \"-screen 0 1600x1000x24\" tidemark view trace.json --screenshot view.png\n"
      "In the window: wheel zooms about the cursor, drag pans, shift-drag or right-drag selects a\n"
      "range, double-click shows everything, R reloads the files, a table row selects a stage.\n"
      "This is the program tidemark-view, which `tidemark view` runs; it needs no LibTorch.");
  viewer::ViewerOptions opts;
  std::string first, second;
  app.add_option("trace", first, "trace file from profile --trace or train --trace")->required();
  app.add_option("trace2", second, "a second trace to compare with the first (A and B) on one time scale");
  app.add_option("--screenshot", opts.screenshot, "render once and save a PNG here instead of opening a window");
  app.add_option("--width", opts.width, "window or screenshot width in pixels (default 1600)");
  app.add_option("--height", opts.height, "window or screenshot height in pixels (default 1000)");
  app.callback([&] {
    opts.traces = {first};
    if (!second.empty()) opts.traces.push_back(second);
    for (auto [value, flag] : {std::pair{opts.width, "--width"}, std::pair{opts.height, "--height"}}) {
      if (value < 320 || value > 8192) {
        throw UserError(fmt::format("{} {} is out of range; use 320 to 8192 pixels", flag, value));
      }
    }
    viewer::run_viewer(opts);
  });
  return cli::run_app(app, argc, argv);
}
