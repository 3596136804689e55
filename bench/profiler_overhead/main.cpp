// Profiling overhead: training step time with stage recording and the memory trace on
// (what `train --trace` does) against off, in alternating rounds of one run.
//
//   build/bench/profiler_overhead/bench_profiler_overhead [--rounds 3] [--steps 5] [model flags]
#include <CLI/CLI.hpp>
#include <ATen/Parallel.h>
#include <fmt/format.h>

#include "tidemark/core/bytes.hpp"
#include "tidemark/core/report.hpp"
#include "tidemark/core/trace.hpp"
#include "tidemark/runtime/trainer.hpp"

using namespace tidemark;

int main(int argc, char** argv) {
  CLI::App app{"step time with tracing on against off"};
  ModelConfig model;
  int rounds = 3, steps = 5;
  app.add_option("--rounds", rounds, "alternations of off and on")->capture_default_str();
  app.add_option("--steps", steps, "measured steps per round and mode")->capture_default_str();
  app.add_option("--layers", model.layers)->capture_default_str();
  app.add_option("--d-model", model.d_model)->capture_default_str();
  app.add_option("--seq", model.seq)->capture_default_str();
  app.add_option("--batch", model.batch)->capture_default_str();
  app.add_option("--device", model.device, "cpu or cuda")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  runtime::tune_cpu_allocator();
  runtime::use_all_cores();
  fmt::print("model: {}; {} threads; {} rounds of {} steps each way\n", model.describe(), at::get_num_threads(),
             rounds, steps);

  std::vector<double> off, on;
  std::size_t trace_bytes = 0, samples = 0, spans = 0;
  for (int r = 0; r < rounds; ++r) {
    for (bool traced : {false, true}) {
      runtime::TrainingConfig cfg;
      cfg.model = model;
      runtime::Trainer trainer(cfg);
      trainer.step();  // warm-up: optimizer state, heap
      if (traced) trainer.enable_trace();
      for (int i = 0; i < steps; ++i) (traced ? on : off).push_back(trainer.step().ms);
      if (traced) {
        Trace t = trainer.finish_trace();
        trace_bytes = trace_to_json(t).size();
        samples = t.memory.size();
        spans = t.spans.size();
      }
    }
  }
  const double m_off = median(off), m_on = median(on);
  fmt::print("\n{:>22} {:>12}\n", "", "median ms");
  fmt::print("{:>22} {:>12.1f}\n", "tracing off", m_off);
  fmt::print("{:>22} {:>12.1f}\n", "tracing on", m_on);
  fmt::print("{:>22} {:>12.3f}  ({:+.1f}%)\n", "ratio on/off", m_on / m_off, 100 * (m_on / m_off - 1));
  fmt::print("trace of {} steps: {} memory samples, {} spans, {} as JSON ({:.2f} MB per 20 steps)\n", steps,
             samples, spans, format_bytes(trace_bytes), 20.0 / steps * trace_bytes / 1e6);
  return 0;
}
