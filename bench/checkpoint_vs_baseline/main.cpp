// Peak live bytes and median step time with and without Hugging Face-style checkpointing
// (every block), measured side by side in one run at several depths of the default width.
// Compare with the article's claim: >= 50% lower peak for ~20% more time.
//
//   build/bench/checkpoint_vs_baseline/bench_checkpoint_vs_baseline [--depths 4,8,12,24]
//       [--steps 3] [--warmup 1] [--csv out.csv]
#include <CLI/CLI.hpp>
#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <fstream>

#include "tidemark/core/bytes.hpp"
#include "tidemark/core/report.hpp"
#include "tidemark/runtime/trainer.hpp"

using namespace tidemark;

struct Measured {
  std::int64_t peak = 0;
  double ms = 0;
};

// Warm-up steps first (optimizer state, allocator caches), then `steps` measured ones.
Measured measure(const ModelConfig& model, bool checkpointing, int warmup, int steps) {
  runtime::TrainingConfig cfg;
  cfg.model = model;
  cfg.gradient_checkpointing = checkpointing;
  runtime::Trainer trainer(cfg);
  for (int i = 0; i < warmup; ++i) trainer.step();
  Measured m;
  std::vector<double> ms;
  for (int i = 0; i < steps; ++i) {
    auto s = trainer.step();
    m.peak = std::max(m.peak, s.peak_bytes);
    ms.push_back(s.ms);
  }
  m.ms = median(ms);
  return m;
}

int main(int argc, char** argv) {
  CLI::App app{"checkpointing against no checkpointing, side by side"};
  std::vector<int> depths{4, 8, 12, 24};
  int steps = 3, warmup = 1;
  std::string csv;
  ModelConfig base;
  app.add_option("--depths", depths, "numbers of blocks")->delimiter(',');
  app.add_option("--steps", steps, "measured steps per configuration");
  app.add_option("--warmup", warmup, "unmeasured steps first");
  app.add_option("--csv", csv, "also write the table as CSV");
  app.add_option("--d-model", base.d_model);
  app.add_option("--heads", base.heads);
  app.add_option("--seq", base.seq);
  app.add_option("--batch", base.batch);
  app.add_option("--device", base.device, "cpu or cuda");
  CLI11_PARSE(app, argc, argv);
  runtime::tune_cpu_allocator();  // Note [CPU allocator]
  runtime::use_all_cores();

  fmt::print("default width: d_model {}, {} heads, seq {}, batch {}, dropout {}; {} threads; "
             "{} warm-up + {} measured steps each\n\n",
             base.d_model, base.heads, base.seq, base.batch, base.dropout, at::get_num_threads(),
             warmup, steps);
  fmt::print("{:>6} {:>12} {:>12} {:>10} {:>10} {:>10} {:>8}\n", "layers", "peak none", "peak ckpt",
             "reduction", "ms none", "ms ckpt", "time x");
  std::ofstream out;
  if (!csv.empty()) {
    out.open(csv);
    out << "layers,peak_none_bytes,peak_ckpt_bytes,reduction_pct,ms_none,ms_ckpt,time_ratio\n";
  }
  for (int L : depths) {
    ModelConfig m = base;
    m.layers = L;
    Measured none = measure(m, false, warmup, steps);
    Measured ckpt = measure(m, true, warmup, steps);
    const double reduction = 100.0 * (1.0 - static_cast<double>(ckpt.peak) / static_cast<double>(none.peak));
    const double ratio = ckpt.ms / none.ms;
    fmt::print("{:>6} {:>12} {:>12} {:>9.1f}% {:>10.0f} {:>10.0f} {:>8.3f}\n", L,
               format_bytes(static_cast<std::uint64_t>(none.peak)),
               format_bytes(static_cast<std::uint64_t>(ckpt.peak)), reduction, none.ms, ckpt.ms, ratio);
    std::fflush(stdout);
    if (out) out << fmt::format("{},{},{},{:.2f},{:.1f},{:.1f},{:.4f}\n", L, none.peak, ckpt.peak, reduction, none.ms, ckpt.ms, ratio);
  }
  return 0;
}
