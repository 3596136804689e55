// tidemark profile [model flags] [--warmup N] [--iters N] -o profile.json [--trace t.json]
//                  [--report r.json] [--data FILE]
#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <torch/version.h>

#include "commands.hpp"
#include "launcher.hpp"
#include "model_flags.hpp"
#include "progress.hpp"
#include "tidemark/core/bytes.hpp"
#include "tidemark/core/error.hpp"
#include "tidemark/core/files.hpp"
#include "tidemark/core/profile.hpp"
#include "tidemark/core/report.hpp"
#include "tidemark/runtime/distributed.hpp"
#include "tidemark/runtime/profiling.hpp"
#include "tidemark/runtime/trainer.hpp"

namespace tidemark::cli {
namespace {

struct ProfileArgs {
  ModelConfig model;
  int warmup = 2;
  int iters = 3;
  bool no_variants = false;
  std::string out_path;
  std::string trace_path;
  std::string report_path;
  std::string data_path;
  int nproc = 1;
  double bucket_mb = 25;
  int zero = 0;
  bool quiet = false;
};

void print_table(const ChainProfile& p) {
  fmt::print("{:<12} {:>11} {:>11} {:>11} {:>11} {:>9} {:>9} {:>9}\n", "stage", "output", "saved",
             "fwd peak", "bwd peak", "fwd ms", "nograd", "bwd ms");
  for (const auto& l : p.stages) {
    fmt::print("{:<12} {:>11} {:>11} {:>11} {:>11} {:>9.2f} {:>9.2f} {:>9.2f}\n", l.name,
               format_bytes(l.output_bytes), format_bytes(l.saved_bytes),
               format_bytes(l.forward_peak_bytes), format_bytes(l.backward_peak_bytes), l.forward_ms,
               l.forward_nograd_ms, l.backward_ms);
  }
  for (const auto& l : p.stages) {
    if (l.variants.empty()) continue;
    // Blocks share a shape; the first one stands for all (every stage's are in the file).
    fmt::print("variants of {:<24} {:>11} {:>9} {:>9}\n", l.name, "saved", "bwd ms", "extra");
    fmt::print("  {:<34} {:>11} {:>9.2f} {:>9}\n", "full", format_bytes(l.saved_bytes), l.backward_ms, "");
    for (const auto& v : l.variants) {
      fmt::print("  {:<34} {:>11} {:>9.2f} {:>+9.2f}\n", v.name, format_bytes(v.saved_bytes),
                 v.backward_ms, v.backward_ms + v.forward_ms - l.backward_ms - l.forward_ms);
    }
    break;
  }
  const auto& s = p.static_bytes;
  fmt::print("static: parameters {}, gradients {}, optimizer state {}, inputs {}, other {}\n",
             format_bytes(s.parameters), format_bytes(s.gradients), format_bytes(s.optimizer_state),
             format_bytes(s.inputs), format_bytes(s.other));
  fmt::print("no-checkpoint step: peak {}, median {:.1f} ms\n", format_bytes(p.peak_bytes), p.step_ms);
}

void run_profile(const ProfileArgs& a_in) {
  ProfileArgs a = a_in;
  a.model.validate();
  if (a.iters < 1) throw UserError(fmt::format("--iters must be at least 1, got {}", a.iters));
  if (a.warmup < 1) throw UserError(fmt::format("--warmup must be at least 1, got {}", a.warmup));
  // With --zero the ranks run for real (Note [ZeRO]): what a rank keeps, gathers and reduces,
  // and the time its collectives take, are measured where they happen. Without, one process
  // stands for a rank of a plain data-parallel job.
  const std::optional<runtime::DistEnv> env = a.zero > 0 ? runtime::dist_env_from_environment() : std::nullopt;
  const int world = env ? env->world_size : a.nproc;
  check_zero(a.zero, world, env.has_value());
  const bool writer = !env || env->rank == 0;  // one rank writes the files and talks
  if (!writer) a.quiet = true;
  if (writer) {
    check_writable(a.out_path, "-o");
    if (!a.trace_path.empty()) check_writable(a.trace_path, "--trace");
    if (!a.report_path.empty()) check_writable(a.report_path, "--report");
  }
  if (a.zero > 0 && !env) {
    runtime::resolve_device(a.model.device);
    per_rank_config(a.model, a.nproc);  // refuse an indivisible batch before starting anyone
    throw ExitCode{launch_local_ranks(a.nproc)};
  }

  runtime::TrainingConfig cfg;
  cfg.model = per_rank_config(a.model, world);
  cfg.data_path = a.data_path;
  std::unique_ptr<runtime::DataParallel> dp;
  if (env) dp = std::make_unique<runtime::DataParallel>(*env, a.model.device);
  runtime::Trainer trainer(cfg);
  if (dp) {
    dp->check_same_run("profile", fmt::format("{}; zero {}; corpus {}; warmup {}; iters {}; variants {}",
                                              cfg.model.describe(), a.zero, trainer.data().source(), a.warmup,
                                              a.iters, !a.no_variants));
    trainer.use_zero(dp.get(), a.zero);
    if (!a.quiet) fmt::print(stderr, "profiling rank 0 of a job: {}, {}\n", trainer.zero()->describe(), dp->backend());
  }
  // One rank of a data-parallel job holds its gradient buckets besides everything else
  // (Note [data parallel]); the profile counts them as static memory. Communication itself
  // is not run, so stage times are one rank's compute.
  std::vector<torch::Tensor> buckets;
  if (a.nproc > 1 && a.zero == 0) {
    buckets = runtime::gradient_buckets(trainer.model()->parameters(),
                                        static_cast<std::int64_t>(a.bucket_mb * 1024 * 1024));
    if (!a.quiet) {
      std::uint64_t bytes = 0;
      for (const auto& b : buckets) bytes += static_cast<std::uint64_t>(b.nbytes());
      fmt::print(stderr, "profiling one of {} data-parallel ranks: batch {} of {}, {} gradient buckets ({})\n",
                 a.nproc, cfg.model.batch, a.model.batch, buckets.size(), format_bytes(bytes));
    }
  }
  if (!a.quiet) {
    const auto variants = a.no_variants ? 0 : runtime::BlockVariant::all(a.model).size();
    fmt::print(stderr, "profiling {} ({} parameters): {} warm-up + {} measured steps{}\n",
               cfg.model.describe(), trainer.model()->parameter_count(), a.warmup, a.iters,
               variants ? fmt::format(", each followed by two steps per block variant ({})", variants) : "");
  }
  Progress progress("profile", a.warmup + a.iters, a.quiet);
  runtime::ProfileOptions o;
  o.warmup = a.warmup;
  o.iters = a.iters;
  o.trace = !a.trace_path.empty();
  o.variants = !a.no_variants;
  o.on_step = [&](int done, int total, const runtime::StepStats& s) {
    progress.update(done, fmt::format("{}  {:.0f} ms  peak {}", done <= total - a.iters ? "warm-up" : "measure",
                                      s.ms, format_bytes(static_cast<std::uint64_t>(s.peak_bytes))));
  };
  runtime::ProfileRun run = runtime::profile_model(trainer, o);
  run.profile.sharding.ranks = world;
  run.profile.sharding.zero = a.zero;
  run.profile.sharding.reduce_buffer_bytes = trainer.zero() ? trainer.zero()->reduce_buffer_bytes() : 0;
  if (!writer) return;
  write_profile(a.out_path, run.profile);
  if (run.trace) write_trace(a.trace_path, *run.trace);
  if (!a.report_path.empty()) {
    Report r;
    r.command = "profile";
    r.mode = "none";
    r.config = cfg.model;
    r.torch_version = TORCH_VERSION;
    r.threads = at::get_num_threads();
    for (const auto& s : run.steps) {
      r.losses.push_back(s.loss);
      r.step_ms.push_back(s.ms);
      r.step_peak_bytes.push_back(static_cast<std::uint64_t>(s.peak_bytes));
    }
    r.steps = static_cast<int>(run.steps.size());
    r.final_loss = r.losses.back();
    r.peak_bytes = run.profile.peak_bytes;
    r.step_ms_median = run.profile.step_ms;
    write_report(a.report_path, r);
  }
  if (!a.quiet) print_table(run.profile);
  fmt::print("wrote {}{}{}\n", a.out_path, a.trace_path.empty() ? "" : ", " + a.trace_path,
             a.report_path.empty() ? "" : ", " + a.report_path);
}

}  // namespace

void add_profile_command(CLI::App& app) {
  auto a = std::make_shared<ProfileArgs>();
  auto* cmd = app.add_subcommand("profile", "Measure per-stage activation memory and time (tidemark.profile/1)");
  cmd->footer(R"(Runs real training steps of the model (--arch gpt or llama) with markers between
stages and measures, per stage (embedding, each block, head): output and saved bytes,
forward/backward peaks and times, the forward without autograd recording that a checkpoint
costs; plus parameters, gradients, optimizer state, inputs, the no-checkpoint peak and step
time. Each block's selective-recompute variants are measured too (saved bytes and backward
time with the recompute), on extra steps of their own; the optimal planner picks one per
block.

Example:
  tidemark profile --layers 12 -o profile.json --trace profile-trace.json
  tidemark plan profile.json --budget 0.5 -o plan.json
  tidemark profile --nproc 2 --batch 16 --zero 3 -o z3.json   rank 0 of 2, parameters sharded
  tidemark plan z3.json --budget 0.5 -o z3-plan.json && tidemark train --nproc 2 --batch 16 --zero 3 --plan z3-plan.json)");
  add_model_flags(cmd, a->model);
  cmd->add_option("--warmup", a->warmup, "steps before measuring (creates optimizer state)")->capture_default_str();
  cmd->add_option("--iters", a->iters, "measured steps; times are medians")->capture_default_str();
  cmd->add_option("-o,--output", a->out_path, "write the profile here")->required();
  cmd->add_option("--trace", a->trace_path, "also write a tidemark.trace/1 of the measured steps");
  cmd->add_option("--report", a->report_path, "also write a tidemark.report/1");
  cmd->add_option("--data", a->data_path, "profile on this text file (default: synthetic corpus)");
  add_data_parallel_flags(cmd, a->nproc, a->bucket_mb, a->zero);
  cmd->get_option("--nproc")->description(
      "profile one rank of an N-rank data-parallel job (train --nproc N): batch/N rows and the gradient "
      "buckets; plan with the result for a per-rank budget. With --zero, N ranks run and rank 0 is "
      "measured, collectives included");
  cmd->add_flag("--no-variants", a->no_variants,
                "skip measuring the blocks' selective-recompute variants (attention-core, "
                "mlp-activation, ...): faster, but the planner can then only save or "
                "checkpoint whole blocks");
  cmd->add_flag("--quiet,-q", a->quiet, "no progress output or table");
  cmd->callback([a] { run_profile(*a); });
}

}  // namespace tidemark::cli
