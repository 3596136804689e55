// tidemark train [model flags] [--plan plan.json | --gradient-checkpointing] [--steps N]
//                [--report r.json] [--trace t.json] [--save DIR [--save-every N]]
//                [--resume DIR] [--data FILE]
#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <torch/version.h>

#include "commands.hpp"
#include "launcher.hpp"
#include "model_flags.hpp"
#include "progress.hpp"
#include "tidemark/core/bytes.hpp"
#include "tidemark/core/error.hpp"
#include "tidemark/core/fault.hpp"
#include "tidemark/core/files.hpp"
#include "tidemark/core/plan.hpp"
#include "tidemark/runtime/offload.hpp"
#include "tidemark/core/report.hpp"
#include "tidemark/core/trace.hpp"
#include "tidemark/runtime/checkpoint.hpp"
#include "tidemark/runtime/distributed.hpp"
#include "tidemark/runtime/trainer.hpp"
#include "tidemark/runtime/training_state.hpp"

namespace tidemark::cli {
namespace {

struct TrainArgs {
  ModelConfig model;
  int steps = 20;
  double lr = 1e-3;
  std::string plan_path;
  bool gradient_checkpointing = false;
  std::vector<std::string> gc_options;
  std::string report_path;
  std::string trace_path;
  std::string data_path;
  std::string save_dir;
  int save_every = 0;
  std::string resume_dir;
  int nproc = 1;
  double bucket_mb = 25;
  int zero = 0;
  bool quiet = false;
};

// A per-rank file name in a data-parallel job: t.json -> t.rank1.json.
std::string per_rank_path(const std::string& path, int rank, int world) {
  if (world <= 1) return path;
  const auto slash = path.find_last_of('/');
  const auto dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) {
    return fmt::format("{}.rank{}", path, rank);
  }
  return fmt::format("{}.rank{}{}", path.substr(0, dot), rank, path.substr(dot));
}

std::map<std::string, std::string> parse_kwargs(const std::vector<std::string>& items) {
  std::map<std::string, std::string> out;
  for (const auto& item : items) {
    auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw UserError(fmt::format("--gc-option '{}' is not key=value (e.g. preserve_rng_state=false)", item));
    }
    out[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return out;
}

void run_train(const TrainArgs& a_in) {
  TrainArgs a = a_in;
  // Note [data parallel]: with --nproc this process only starts and watches the ranks; a
  // rank (ours or torchrun's) finds its place in the environment.
  const std::optional<runtime::DistEnv> env = runtime::dist_env_from_environment();
  a.model.validate();
  // No GPU at all: said once, before starting ranks or joining a job (not as a missing
  // NCCL, or once per rank).
  runtime::resolve_device(a.model.device);
  const int job_ranks = env ? env->world_size : a.nproc;
  check_zero(a.zero, job_ranks, env.has_value());
  std::optional<Plan> plan;
  if (!a.plan_path.empty()) {
    plan = read_plan(a.plan_path);
    // A plan's budget is per rank of the sharding it was profiled with: refused here, before
    // any rank starts.
    const Sharding here{job_ranks, a.zero, 0};
    if (plan->sharding.known() && !(plan->sharding == here)) {
      throw runtime::PlanMismatch(fmt::format(
          "{}: the plan was made for {} (its profile ran with --nproc {}{}), this run is {}; profile with the "
          "same --nproc and --zero as you train with, and plan again",
          a.plan_path, plan->sharding.describe(), plan->sharding.ranks,
          plan->sharding.zero ? fmt::format(" --zero {}", plan->sharding.zero) : "", here.describe()));
    }
    // Offload runs only where there is device memory to free and host memory to hold it;
    // every rank holds its own (N ranks on one machine: N times the plan's host bytes).
    if (offloads(plan->root)) {
      runtime::check_offload(runtime::resolve_device(a.model.device),
                             plan->predicted.host_peak_bytes * static_cast<std::uint64_t>(std::max(1, a.nproc)),
                             a.plan_path);
    }
  }
  if (a.gradient_checkpointing) {
    // --gc-option offload=true: refused on the CPU before any rank starts (the trainer
    // checks the host bytes again once the model exists).
    const auto kwargs = runtime::CheckpointOptions::from_kwargs(parse_kwargs(a.gc_options));
    if (kwargs.offload) {
      runtime::check_offload(runtime::resolve_device(a.model.device), 0, "--gc-option offload=true");
    }
  }
  if (a.nproc > 1 && !env) {
    const int gpus = static_cast<int>(torch::cuda::device_count());
    if (a.model.device == "cuda" && a.nproc > gpus) {
      throw UserError(fmt::format("--nproc {} --device cuda needs {} GPUs, one per rank (NCCL does not run two ranks "
                                  "on one GPU); this machine has {}: use --nproc {} or fewer",
                                  a.nproc, a.nproc, gpus, gpus));
    }
    per_rank_config(a.model, a.nproc);  // refuse an indivisible batch before starting anyone
    throw ExitCode{launch_local_ranks(a.nproc)};
  }
  const int world = env ? env->world_size : 1;
  const int rank = env ? env->rank : 0;
  a.model = per_rank_config(a.model, world);
  if (rank != 0) a.quiet = true;  // one progress display for the job
  if (a.steps <= 0) throw UserError(fmt::format("--steps must be a positive integer, got {}", a.steps));
  if (!a.report_path.empty() && rank == 0) check_writable(a.report_path, "--report");
  a.trace_path = a.trace_path.empty() ? "" : per_rank_path(a.trace_path, rank, world);
  if (!a.trace_path.empty()) check_writable(a.trace_path, "--trace");
  // Each rank's own state (its generator states differ): DIR/rank<r> in a job.
  if (world > 1 && !a.save_dir.empty()) {
    runtime::prepare_state_dir(a.save_dir);
    a.save_dir += fmt::format("/rank{}", rank);
  }
  if (world > 1 && !a.resume_dir.empty()) a.resume_dir += fmt::format("/rank{}", rank);
  if (!a.gc_options.empty() && !a.gradient_checkpointing) {
    throw UserError("--gc-option needs --gradient-checkpointing");
  }
  if (a.save_every < 0) throw UserError(fmt::format("--save-every must not be negative, got {}", a.save_every));
  if (a.save_every > 0 && a.save_dir.empty()) throw UserError("--save-every needs --save DIR");
  if (!a.save_dir.empty()) runtime::prepare_state_dir(a.save_dir);

  runtime::TrainingConfig cfg;
  cfg.model = a.model;
  cfg.steps = a.steps;
  cfg.learning_rate = a.lr;
  cfg.data_path = a.data_path;
  cfg.gradient_checkpointing = a.gradient_checkpointing;
  if (a.gradient_checkpointing) {
    cfg.gradient_checkpointing_kwargs = runtime::CheckpointOptions::from_kwargs(parse_kwargs(a.gc_options));
  }
  if (plan) cfg.plan = plan->root;
  std::unique_ptr<runtime::DataParallel> dp;
  // Under torchrun's environment this process joins the job even alone (WORLD_SIZE=1), as
  // PyTorch's DDP does; NCCL on CUDA sets this rank's GPU before the model is made.
  if (env) dp = std::make_unique<runtime::DataParallel>(*env, a.model.device);
  runtime::Trainer trainer(cfg);
  if (plan) runtime::check_plan_matches(*plan, *trainer.model(), a.plan_path);
  if (dp) {
    const runtime::StateIdentity id = runtime::StateIdentity::of(trainer);
    dp->check_same_run("run", fmt::format("{}; checkpointing {}; corpus {}; steps {}; lr {}; buckets {} MiB; "
                                          "zero {}; resume {}",
                                          id.config, id.checkpointing, id.data, a.steps, a.lr, a.bucket_mb, a.zero,
                                          a.resume_dir.empty() ? "no" : "yes"));
    if (a.zero > 0) {
      trainer.use_zero(dp.get(), a.zero);
    } else {
      trainer.use_data_parallel(dp.get(), static_cast<std::int64_t>(a.bucket_mb * 1024 * 1024));
    }
  }
  int start = 0;
  if (!a.resume_dir.empty()) {
    start = runtime::resume_training_state(a.resume_dir, trainer);
    if (start >= a.steps) {
      throw UserError(fmt::format("the state in '{}' is at step {}: --steps {} leaves nothing to train; --steps "
                                  "counts from the start of the run, so raise it",
                                  a.resume_dir, start, a.steps));
    }
    if (!a.quiet) fmt::print(stderr, "resumed from '{}' at step {}\n", a.resume_dir, start);
  }
  if (!a.trace_path.empty()) trainer.enable_trace();

  const std::string mode = plan ? "plan" : (a.gradient_checkpointing ? "uniform" : "none");
  if (!a.quiet) {
    fmt::print(stderr, "training {} ({} parameters) on {}, checkpointing: {}{}\n",
               a.model.describe(), trainer.model()->parameter_count(), trainer.data().source(),
               plan ? fmt::format("plan {} ({})", a.plan_path, plan->solver)
                    : (a.gradient_checkpointing ? "every block (Hugging Face style)" : "none"),
               !dp ? ""
               : trainer.zero()
                   ? fmt::format("; data parallel: {} (this is rank 0; batch per rank), {}", trainer.zero()->describe(),
                                 dp->backend())
                   : fmt::format("; data parallel: {} rank{} (this is rank 0; batch per rank), {} gradient "
                                 "buckets, {}",
                                 world, world == 1 ? "" : "s", dp->bucket_count(), dp->backend()));
  }
  Progress progress("train", a.steps, a.quiet);
  std::string last_saved;
  const std::uint64_t recomputes_before = runtime::recompute_count();
  Report r;
  r.command = "train";
  r.mode = mode;
  r.config = a.model;
  r.torch_version = TORCH_VERSION;
  r.threads = at::get_num_threads();
  std::uint64_t peak = 0, floor = 0;
  trainer.train([&](const runtime::StepStats& s) {
    r.losses.push_back(s.loss);
    r.step_ms.push_back(s.ms);
    r.step_peak_bytes.push_back(static_cast<std::uint64_t>(s.peak_bytes));
    peak = std::max<std::uint64_t>(peak, static_cast<std::uint64_t>(s.peak_bytes));
    floor = std::max<std::uint64_t>(floor, static_cast<std::uint64_t>(s.floor_bytes));
    std::string status = fmt::format("loss {:.4f}  {:.0f} ms/step  peak {}", s.loss, s.ms,
                                     format_bytes(static_cast<std::uint64_t>(s.peak_bytes)));
    if (plan && plan->budget_bytes) status += fmt::format(" / budget {}", format_bytes(plan->budget_bytes));
    if (dp) {
      status += fmt::format("  comm wait {:.0f} ms", s.comm_wait_ms);
      r.comm_wait_ms.push_back(s.comm_wait_ms);
    }
    progress.update(s.step + 1, status);
    fault_point(fmt::format("train-step:rank{}", rank));
    if (a.save_every > 0 && (s.step + 1) % a.save_every == 0) {
      last_saved = runtime::save_training_state(a.save_dir, trainer);
    }
  });
  if (!a.save_dir.empty() && (a.save_every == 0 || a.steps % a.save_every != 0)) {
    last_saved = runtime::save_training_state(a.save_dir, trainer);
  }
  if (!last_saved.empty() && !a.quiet) fmt::print(stderr, "saved the training state: {}\n", last_saved);
  r.steps = a.steps - start;
  if (dp) {
    // Every rank takes part in the gather; rank 0 writes the job's report.
    for (std::int64_t p : dp->gather(static_cast<std::int64_t>(peak))) {
      r.rank_peak_bytes.push_back(static_cast<std::uint64_t>(p));
    }
    for (std::int64_t f : dp->gather(static_cast<std::int64_t>(floor))) {
      r.rank_floor_bytes.push_back(static_cast<std::uint64_t>(f));
    }
    r.world_size = world;
    r.zero = a.zero;
    peak = *std::max_element(r.rank_peak_bytes.begin(), r.rank_peak_bytes.end());
  }
  r.final_loss = r.losses.back();
  r.peak_bytes = peak;
  r.step_ms_median = median(r.step_ms);
  r.recomputes = runtime::recompute_count() - recomputes_before;
  if (plan) {
    r.solver = plan->solver;
    r.budget_bytes = plan->budget_bytes;
    r.predicted = plan->predicted;
  }
  if (!a.quiet) {
    fmt::print("loss {:.4f} -> {:.4f} over {} steps; peak {}; median step {:.1f} ms", r.losses.front(),
               r.final_loss, r.steps, format_bytes(r.peak_bytes), r.step_ms_median);
    if (plan) {
      fmt::print("\npredicted peak {} (measured {:+.1f}%), predicted step {:.1f} ms (measured {:+.1f}%); budget {}",
                 format_bytes(plan->predicted.peak_bytes),
                 100.0 * (static_cast<double>(r.peak_bytes) - plan->predicted.peak_bytes) /
                     std::max<double>(1.0, plan->predicted.peak_bytes),
                 plan->predicted.step_ms,
                 100.0 * (r.step_ms_median - plan->predicted.step_ms) / std::max(1e-9, plan->predicted.step_ms),
                 format_bytes(plan->budget_bytes));
    }
    fmt::print("\n");
  }
  if (!a.report_path.empty() && rank == 0) write_report(a.report_path, r);
  if (!a.trace_path.empty()) {
    Trace t = trainer.finish_trace();
    if (plan) {
      t.solver = plan->solver;
      t.budget_bytes = plan->budget_bytes;
      t.predicted_peak_bytes = plan->predicted.peak_bytes;
    }
    write_trace(a.trace_path, t);
  }
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  auto* cmd = app.add_subcommand("train", "Train the GPT, optionally with a checkpoint plan");
  cmd->footer(R"(Examples:
  tidemark train --steps 30                        no checkpointing
  tidemark train --arch llama --kv-heads 2 --dropout 0   a LLaMA-style decoder, 4 query heads a kv head
  tidemark train --gradient-checkpointing          every block checkpointed (Hugging Face)
  tidemark train --device cuda --gradient-checkpointing --gc-option offload=true
                                                   ... and each block's input in host memory
  tidemark train --plan plan.json --report r.json  the plan from 'tidemark plan'
  tidemark train --steps 1000 --save ckpt --save-every 100
  tidemark train --steps 1000 --resume ckpt --save ckpt --save-every 100   after a crash
  tidemark train --nproc 2 --batch 16 --report r.json   2 data-parallel ranks, 8 rows each
  tidemark train --nproc 2 --batch 16 --zero 2     the same, optimizer state and gradients sharded
  torchrun --nproc-per-node 2 --no-python tidemark train --batch 16   the same, under torchrun
The report (tidemark.report/1) has the measured peak of live tensor bytes, the median
step time and the losses; with --plan it sets them beside the plan's prediction.)");
  add_model_flags(cmd, a->model);
  cmd->add_option("--steps", a->steps, "training steps")->capture_default_str();
  cmd->add_option("--lr", a->lr, "AdamW learning rate")->capture_default_str();
  auto* plan = cmd->add_option("--plan", a->plan_path, "checkpoint plan (tidemark.plan/1) to train with");
  auto* gc = cmd->add_flag("--gradient-checkpointing", a->gradient_checkpointing,
                           "checkpoint every block, as Hugging Face's gradient_checkpointing=True");
  plan->excludes(gc);
  cmd->add_option("--gc-option", a->gc_options,
                  "gradient_checkpointing_kwargs as key=value: preserve_rng_state=false, "
                  "determinism_check=none, offload=true (each block's input in pinned host memory; "
                  "CUDA only), ... (repeatable)");
  cmd->add_option("--report", a->report_path, "write a tidemark.report/1 here");
  cmd->add_option("--trace", a->trace_path, "write a tidemark.trace/1 here");
  cmd->add_option("--data", a->data_path, "train byte-level on this text file (default: synthetic corpus)");
  cmd->add_option("--save", a->save_dir,
                  "save the training state in this directory at the end (and every --save-every steps); "
                  "a crash at any moment leaves the last completed save intact");
  cmd->add_option("--save-every", a->save_every, "also save every N steps (0: only at the end)")
      ->capture_default_str();
  add_data_parallel_flags(cmd, a->nproc, a->bucket_mb, a->zero);
  cmd->add_option("--resume", a->resume_dir,
                  "continue from the newest state saved in this directory, up to --steps in all; refused "
                  "when it was made for another model, seed, plan or corpus");
  cmd->add_flag("--quiet,-q", a->quiet, "no progress output");
  cmd->callback([a] { run_train(*a); });
}

}  // namespace tidemark::cli
