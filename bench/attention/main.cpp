// No-checkpoint peak and step time of each attention kind (--attention naive, chunked and,
// where LibTorch has it, sdpa) at several sequence lengths, measured side by side in one run:
// rounds alternate the kinds so that drift hits them alike; peaks are exact, times medians.
//
//   build/bench/attention/bench_attention [--seqs 256,1024,2048] [--rounds 2] [--steps 2]
//       [--warmup 1] [--layers 4] [--d-model 256] [--heads 8] [--batch 2] [--dropout 0.1]
#include <CLI/CLI.hpp>
#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <algorithm>
#include <map>

#include "tidemark/core/bytes.hpp"
#include "tidemark/core/report.hpp"
#include "tidemark/runtime/gpt.hpp"
#include "tidemark/runtime/trainer.hpp"

using namespace tidemark;

struct Samples {
  std::int64_t peak = 0;
  std::vector<double> ms;
};

void measure(const ModelConfig& model, int warmup, int steps, Samples& into) {
  runtime::TrainingConfig cfg;
  cfg.model = model;
  runtime::Trainer trainer(cfg);
  for (int i = 0; i < warmup; ++i) trainer.step();
  for (int i = 0; i < steps; ++i) {
    auto s = trainer.step();
    into.peak = std::max(into.peak, s.peak_bytes);
    into.ms.push_back(s.ms);
  }
}

int main(int argc, char** argv) {
  CLI::App app{"attention kinds side by side: no-checkpoint peak and step time"};
  std::vector<std::int64_t> seqs{256, 1024, 2048};
  int rounds = 2, steps = 2, warmup = 1;
  ModelConfig base;
  base.layers = 4;
  base.batch = 2;
  app.add_option("--seqs", seqs, "sequence lengths")->delimiter(',');
  app.add_option("--rounds", rounds, "rounds, each measuring every kind once");
  app.add_option("--steps", steps, "measured steps per kind and round");
  app.add_option("--warmup", warmup, "unmeasured steps first");
  app.add_option("--layers", base.layers);
  app.add_option("--d-model", base.d_model);
  app.add_option("--heads", base.heads);
  app.add_option("--batch", base.batch);
  app.add_option("--dropout", base.dropout);
  app.add_option("--device", base.device, "cpu or cuda");
  CLI11_PARSE(app, argc, argv);
  runtime::tune_cpu_allocator();  // Note [CPU allocator]
  runtime::use_all_cores();

  std::vector<std::string> kinds = {"naive", "chunked"};
  if (TIDEMARK_HAVE_SDPA) kinds.push_back("sdpa");
  fmt::print("LibTorch {}; {} blocks, d_model {}, {} heads, batch {}, dropout {}; {} threads; {} rounds of "
             "{} warm-up + {} measured steps per kind\n\n",
             TORCH_VERSION, base.layers, base.d_model, base.heads, base.batch, base.dropout, at::get_num_threads(),
             rounds, warmup, steps);
  fmt::print("{:>6} {:>9} {:>12} {:>10} {:>10} {:>10} {:>8}\n", "seq", "attention", "peak", "peak x", "ms/step",
             "time x", "spread");
  for (std::int64_t T : seqs) {
    std::map<std::string, Samples> got;
    for (int r = 0; r < rounds; ++r) {
      // Alternate the order between rounds.
      std::vector<std::string> order = kinds;
      if (r % 2 == 1) std::reverse(order.begin(), order.end());
      for (const auto& kind : order) {
        ModelConfig m = base;
        m.seq = T;
        m.attention = kind;
        measure(m, warmup, steps, got[kind]);
      }
    }
    const Samples& naive = got["naive"];
    for (const auto& kind : kinds) {
      const Samples& s = got[kind];
      // spread: (slowest - fastest) / median of the kind's measured steps, the run's noise.
      const auto [lo, hi] = std::minmax_element(s.ms.begin(), s.ms.end());
      fmt::print("{:>6} {:>9} {:>12} {:>10.3f} {:>10.0f} {:>10.3f} {:>7.1f}%\n", T, kind,
                 format_bytes(static_cast<std::uint64_t>(s.peak)),
                 static_cast<double>(s.peak) / static_cast<double>(naive.peak), median(s.ms),
                 median(s.ms) / median(naive.ms), 100.0 * (*hi - *lo) / median(s.ms));
    }
    std::fflush(stdout);
  }
  return 0;
}
