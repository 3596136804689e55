// viewer_gen_trace: writes a synthetic GPT-shaped tidemark.trace/1 (see
// viewer/include/tidemark/viewer/trace_gen.hpp), for screenshots and trying the viewer
// before a real run exists.
//
//   viewer_gen_trace OUT.json [--blocks B] [--steps S] [--segment K] [--no-checkpoint]
//                             [--samples-per-span N] [--seed N]
//   viewer_gen_trace OUT.json --samples N --spans M [--no-checkpoint]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tidemark/core/error.hpp"
#include "tidemark/viewer/trace_gen.hpp"

int main(int argc, char** argv) {
  using namespace tidemark;
  if (argc < 2 || argv[1][0] == '-') {
    std::fprintf(stderr,
                 "usage: %s OUT.json [--blocks B] [--steps S] [--segment K] [--no-checkpoint]\n"
                 "       [--samples-per-span N] [--seed N] | [--samples N --spans M]\n",
                 argv[0]);
    return 2;
  }
  const std::string out = argv[1];
  viewer::TraceGenOptions o;
  long samples = 0, spans = 0;
  bool checkpoint = true;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> long {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "error: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return std::strtol(argv[++i], nullptr, 10);
    };
    if (a == "--blocks") o.blocks = static_cast<int>(value());
    else if (a == "--steps") o.steps = static_cast<int>(value());
    else if (a == "--segment") o.segment = static_cast<int>(value());
    else if (a == "--samples-per-span") o.samples_per_span = static_cast<int>(value());
    else if (a == "--seed") o.seed = static_cast<std::uint64_t>(value());
    else if (a == "--samples") samples = value();
    else if (a == "--spans") spans = value();
    else if (a == "--no-checkpoint") checkpoint = false;
    else {
      std::fprintf(stderr, "error: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (samples > 0 || spans > 0) {
    const std::uint64_t seed = o.seed;
    o = viewer::trace_gen_options_for(static_cast<std::size_t>(samples > 0 ? samples : 1000000),
                                      static_cast<std::size_t>(spans > 0 ? spans : 100000), checkpoint);
    o.seed = seed;
  }
  o.checkpoint = checkpoint;
  try {
    Trace t = viewer::generate_trace(o);
    write_trace(out, t);
    std::printf("wrote %s: %zu stages, %zu steps, %zu spans, %zu memory samples, peak %llu bytes\n", out.c_str(),
                t.stages.size(), t.steps.size(), t.spans.size(), t.memory.size(),
                static_cast<unsigned long long>(t.peak_bytes));
  } catch (const UserError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  return 0;
}
