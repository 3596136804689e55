// The viewer program end to end (tidemark-view, which `tidemark view` runs): bad input
// gives one "error:" line and exit 2 (no display needed: files are read before a window
// opens); under Xvfb, --screenshot writes a PNG of the requested size in which the
// timeline's category colours are present; `tidemark view` hands over to it, and it loads
// no LibTorch. Without xvfb-run the screenshot cases pass with a warning, as the project's
// tests do for a missing GPU.
#include <stb_image.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "catch.hpp"
#include "tidemark/viewer/palette.hpp"
#include "tidemark/viewer/trace_gen.hpp"

using namespace tidemark;
using namespace tidemark::viewer;

namespace {

struct Run {
  int code = -1;
  std::string output;  // stdout and stderr together
};

Run run(const std::string& command) {
  Run r;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe);
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) r.output.append(buf, n);
  const int status = ::pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

const std::string kCli = TIDEMARK_CLI;    // tidemark
const std::string kView = TIDEMARK_VIEW;  // tidemark-view
const std::string kDir = std::string(TIDEMARK_BINARY_DIR) + "/test_view_cli";

std::string scratch(const std::string& name) {
  ::mkdir(kDir.c_str(), 0755);
  return kDir + "/" + name;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

int count_lines_starting(const std::string& text, const std::string& prefix) {
  int n = 0;
  std::size_t at = 0;
  while (at < text.size()) {
    if (text.compare(at, prefix.size(), prefix) == 0) ++n;
    at = text.find('\n', at);
    if (at == std::string::npos) break;
    ++at;
  }
  return n;
}

bool have_xvfb_run() { return run("command -v xvfb-run").code == 0; }

// program: kView, or kCli + " view".
std::string under_xvfb(const std::string& program, const std::string& args) {
  return "xvfb-run -a -s \"-screen 0 1600x1000x24\" " + program + " " + args;
}

// Pixels of each colour, exact (the plots are drawn without blending or filtering).
std::map<std::uint32_t, long> colour_counts(const std::string& png, int& w, int& h) {
  int channels = 0;
  unsigned char* px = stbi_load(png.c_str(), &w, &h, &channels, 4);
  REQUIRE(px);
  std::map<std::uint32_t, long> counts;
  for (long i = 0; i < static_cast<long>(w) * h; ++i) {
    const unsigned char* p = px + 4 * i;
    ++counts[rgba(p[0], p[1], p[2])];
  }
  stbi_image_free(px);
  return counts;
}

}  // namespace

TEST_CASE("view refuses bad input with one error line and exit 2", "[viewer][cli]") {
  const std::string good = scratch("good.json");
  write_trace(good, generate_trace(TraceGenOptions{}));
  const std::string text = trace_to_json(generate_trace(TraceGenOptions{}));

  struct Case {
    std::string name, content, expect;
  };
  const std::vector<Case> cases = {
      {"truncated.json", text.substr(0, text.size() / 2), "is the file truncated"},
      {"empty.json", "", "not valid JSON"},
      {"garbage.json", "\x89PNG\r\n\x1a\n", "not valid JSON"},
      {"profile.json", R"({"schema": "tidemark.profile", "version": 1})", "schema is \"tidemark.profile\""},
      {"version2.json", R"({"schema": "tidemark.trace", "version": 2})", "version 2 is not supported"},
      {"nospans.json", R"({"schema": "tidemark.trace", "version": 1})", "missing field"},
  };
  for (const Case& c : cases) {
    const std::string path = scratch(c.name);
    write_text(path, c.content);
    const Run r = run(kView + " " + path);
    INFO(c.name << ": " << r.output);
    CHECK(r.code == 2);
    CHECK(count_lines_starting(r.output, "error: ") == 1);
    CHECK(r.output.find(path) != std::string::npos);
    CHECK(r.output.find(c.expect) != std::string::npos);
  }
  // A bad second trace is refused as well, before any window.
  const Run second = run(kView + " " + good + " " + scratch("truncated.json"));
  CHECK(second.code == 2);
  CHECK(second.output.find("truncated.json") != std::string::npos);

  const Run missing = run(kView + " " + scratch("nope.json"));
  CHECK(missing.code == 2);
  CHECK(missing.output.find("cannot be read") != std::string::npos);
  const Run three = run(kView + " " + good + " " + good + " " + good);
  CHECK(three.code == 2);
  const Run width = run(kView + " " + good + " --width 5");
  CHECK(width.code == 2);
  CHECK(width.output.find("--width") != std::string::npos);
  const Run unwritable = run(kView + " " + good + " --screenshot /nonexistent/dir/out.png");
  CHECK(unwritable.code == 2);
  CHECK(unwritable.output.find("--screenshot") != std::string::npos);
  // No display and no Xvfb: a clear error that says what to do, not a crash.
  const Run headless = run("env -u DISPLAY -u WAYLAND_DISPLAY " + kView + " " + good);
  CHECK(headless.code == 2);
  CHECK(count_lines_starting(headless.output, "error: ") == 1);
  CHECK(headless.output.find("xvfb-run") != std::string::npos);
}

TEST_CASE("view --screenshot under Xvfb: right size, category colours in the timeline", "[viewer][cli][xvfb]") {
  if (!have_xvfb_run()) {
    WARN("xvfb-run not found: skipping the screenshot test (apt-get install xvfb xauth)");
    return;
  }
  TraceGenOptions o;
  o.input_bytes = 60ull << 20;  // tall enough to count in pixels; real batches are small
  const std::string trace = scratch("shot.json");
  write_trace(trace, generate_trace(o));
  const std::string png = scratch("shot.png");
  std::remove(png.c_str());
  const Run r = run(under_xvfb(kView, trace + " --screenshot " + png + " --width 1200 --height 800"));
  INFO(r.output);
  REQUIRE(r.code == 0);
  int w = 0, h = 0;
  auto counts = colour_counts(png, w, h);
  CHECK(w == 1200);
  CHECK(h == 800);
  // Each category fills far more than its 10x10 legend swatch: it is in the plot.
  for (int c = 0; c < kCategoryCount; ++c) {
    INFO(to_string(kAllCategories[static_cast<std::size_t>(c)]));
    CHECK(counts[palette::kCategory[c]] > 1500);
  }
  CHECK(counts[palette::kBudget] > 300);
  CHECK(counts[palette::kForward] > 300);
  CHECK(counts[palette::kBackward] > 300);
  CHECK(counts[palette::kRecompute] > 100);
}

TEST_CASE("view compares two traces in one screenshot", "[viewer][cli][xvfb]") {
  if (!have_xvfb_run()) {
    WARN("xvfb-run not found: skipping the compare screenshot test");
    return;
  }
  TraceGenOptions o;
  o.checkpoint = false;
  const std::string a = scratch("none.json");
  write_trace(a, generate_trace(o));
  o.checkpoint = true;
  const std::string b = scratch("plan.json");
  write_trace(b, generate_trace(o));
  const std::string png = scratch("compare.png");
  const Run r = run(under_xvfb(kView, a + " " + b + " --screenshot " + png));
  INFO(r.output);
  REQUIRE(r.code == 0);
  int w = 0, h = 0;
  auto counts = colour_counts(png, w, h);
  CHECK(w == 1600);
  CHECK(h == 1000);
  CHECK(counts[palette::kCategory[static_cast<int>(MemoryCategory::Activation)]] > 5000);
  CHECK(counts[palette::kRecompute] > 100);  // only B recomputes
}

TEST_CASE("tidemark view hands over to tidemark-view, which loads no LibTorch", "[viewer][cli]") {
  // The viewer must not share a process with LibTorch (Note [tidemark-view] in cli/src/main.cpp):
  // nothing LibTorch ships may be among the viewer's shared libraries.
  const Run deps = run("ldd " + kView);
  REQUIRE(deps.code == 0);
  for (const char* lib : {"libtorch", "libc10"}) {
    INFO(deps.output);
    CHECK(deps.output.find(lib) == std::string::npos);
  }

  const Run help = run(kCli + " view --help");
  CHECK(help.code == 0);
  CHECK(help.output.find("tidemark view") != std::string::npos);
  CHECK(help.output.find("--screenshot") != std::string::npos);
  const Run listed = run(kCli + " --help");
  CHECK(listed.output.find("view") != std::string::npos);

  // The same refusal through `tidemark view` as from tidemark-view itself.
  const std::string bad = scratch("handover-bad.json");
  write_text(bad, R"({"schema": "tidemark.trace", "version": 2})");
  const Run refused = run(kCli + " view " + bad);
  CHECK(refused.code == 2);
  CHECK(count_lines_starting(refused.output, "error: ") == 1);
  CHECK(refused.output.find("version 2 is not supported") != std::string::npos);

  // A tidemark without tidemark-view beside it says what is missing and how to get it.
  const std::string lone_dir = scratch("lone");
  ::mkdir(lone_dir.c_str(), 0755);
  REQUIRE(run("cp " + kCli + " " + lone_dir + "/tidemark").code == 0);
  const Run lone = run(lone_dir + "/tidemark view " + bad);
  CHECK(lone.code == 2);
  CHECK(count_lines_starting(lone.output, "error: ") == 1);
  CHECK(lone.output.find("tidemark-view") != std::string::npos);
  CHECK(lone.output.find("install-deps") != std::string::npos);

  if (!have_xvfb_run()) {
    WARN("xvfb-run not found: skipping the screenshot through `tidemark view`");
    return;
  }
  // The case that crashed in Mesa's llvmpipe while LibTorch 2.6 was loaded in the process.
  TraceGenOptions o;
  const std::string trace = scratch("handover.json");
  write_trace(trace, generate_trace(o));
  const std::string png = scratch("handover.png");
  std::remove(png.c_str());
  const Run shot = run(under_xvfb(kCli + " view", trace + " --screenshot " + png + " --width 640 --height 480"));
  INFO(shot.output);
  REQUIRE(shot.code == 0);
  int w = 0, h = 0;
  colour_counts(png, w, h);
  CHECK(w == 640);
  CHECK(h == 480);
}
