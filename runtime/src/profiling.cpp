// profile_model: Note [what a profile measures] in profiling.hpp.
#include "tidemark/runtime/profiling.hpp"

#include "tidemark/runtime/offload.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <fmt/format.h>
#include <functional>
#include <map>
#include <tuple>
#include <torch/version.h>

#include "tidemark/core/error.hpp"
#include "tidemark/core/report.hpp"
#include "tidemark/profiler/allocator_hook.hpp"
#include "tidemark/profiler/cupti_timer.hpp"
#include "tidemark/profiler/stage_recorder.hpp"

namespace tidemark::runtime {
namespace {

std::uint64_t unique_bytes(const std::vector<torch::Tensor>& tensors) {
  std::map<const void*, std::uint64_t> seen;
  for (const auto& t : tensors) {
    if (t.defined()) seen[t.storage().data()] = t.storage().nbytes();
  }
  std::uint64_t sum = 0;
  for (const auto& kv : seen) sum += kv.second;
  return sum;
}

std::uint64_t optimizer_bytes(torch::optim::Optimizer& opt) {
  std::vector<torch::Tensor> ts;
  for (auto& kv : opt.state()) {
    if (auto* s = dynamic_cast<torch::optim::AdamWParamState*>(kv.second.get())) {
      ts.push_back(s->exp_avg());
      ts.push_back(s->exp_avg_sq());
      if (s->max_exp_avg_sq().defined()) ts.push_back(s->max_exp_avg_sq());
    }
  }
  return unique_bytes(ts);
}

// Per-stage samples over the measured iterations.
struct StageSamples {
  std::vector<double> fwd_ms, nograd_ms, bwd_ms;
  std::int64_t out = 0, saved = 0, fwd_peak = 0, nograd_peak = 0, bwd_peak = 0;
  bool seen_fwd = false, seen_bwd = false, seen_nograd = false;
};

std::uint64_t nonneg(std::int64_t v) { return static_cast<std::uint64_t>(std::max<std::int64_t>(0, v)); }

// Adds one step's forward (grad mode) and backward ops to the per-stage samples.
void add_step_ops(std::vector<StageSamples>& stages, const std::vector<profiler::OpRecord>& ops) {
  const int L = static_cast<int>(stages.size());
  for (const auto& op : ops) {
    if (op.stage < 0 || op.stage >= L) continue;
    auto& st = stages[op.stage];
    if (op.phase == Phase::Forward) {
      st.seen_fwd = true;
      st.fwd_ms.push_back(op.best_ms());
      st.out = op.output_bytes;
      st.saved = std::max(st.saved, op.net() - op.output_bytes);
      st.fwd_peak = std::max(st.fwd_peak, op.peak_delta());
    } else if (op.phase == Phase::Backward) {
      st.seen_bwd = true;
      st.bwd_ms.push_back(op.best_ms());
      st.bwd_peak = std::max(st.bwd_peak, op.peak_delta());
    }
  }
}

// Per stage, the largest backward peak among `ops`.
std::vector<std::int64_t> backward_peaks(const std::vector<profiler::OpRecord>& ops, int stages) {
  std::vector<std::int64_t> out(static_cast<std::size_t>(stages), 0);
  for (const auto& op : ops) {
    if (op.phase == Phase::Backward && op.stage >= 0 && op.stage < stages) {
      out[static_cast<std::size_t>(op.stage)] = std::max(out[static_cast<std::size_t>(op.stage)], op.peak_delta());
    }
  }
  return out;
}

bool offers(const ChainModule& chain, int k, const std::string& variant) {
  const auto vs = chain.stage_variants(k);
  return std::find(vs.begin(), vs.end(), variant) != vs.end();
}

// Variant names the chain offers, in the order stages first offer them.
std::vector<std::string> offered_variants(const ChainModule& chain) {
  std::vector<std::string> names;
  for (int k = 0; k < chain.num_stages(); ++k) {
    for (const auto& v : chain.stage_variants(k)) {
      if (std::find(names.begin(), names.end(), v) == names.end()) names.push_back(v);
    }
  }
  return names;
}

// Stages that offer `variant` and pass `pick` run it; the others run plain.
PlanNode plan_variant(const ChainModule& chain, const std::string& variant, const std::function<bool(int)>& pick) {
  std::vector<PlanNode> parts;
  for (int k = 0; k < chain.num_stages(); ++k) {
    parts.push_back(PlanNode::save(k, k + 1, offers(chain, k, variant) && pick(k) ? variant : std::string()));
  }
  return PlanNode::sequence(0, chain.num_stages(), std::move(parts));
}

// One step's forward and backward milliseconds per stage (summed over its ops).
struct StepTimes {
  std::vector<double> fwd, bwd;
};

StepTimes step_times(const std::vector<profiler::OpRecord>& ops, int stages) {
  StepTimes t{std::vector<double>(static_cast<std::size_t>(stages), 0.0),
              std::vector<double>(static_cast<std::size_t>(stages), 0.0)};
  for (const auto& op : ops) {
    if (op.stage < 0 || op.stage >= stages) continue;
    if (op.phase == Phase::Forward) t.fwd[static_cast<std::size_t>(op.stage)] += op.best_ms();
    if (op.phase == Phase::Backward) t.bwd[static_cast<std::size_t>(op.stage)] += op.best_ms();
  }
  return t;
}

}  // namespace

ProfileRun profile_chain(const ProfileSubject& subject, const ProfileOptions& o) {
  if (o.iters < 1) throw UserError(fmt::format("--iters must be at least 1, got {}", o.iters));
  if (o.warmup < 1) {
    throw UserError(fmt::format(
        "--warmup must be at least 1 (the optimizer state must exist before measuring), got {}",
        o.warmup));
  }
  if (!subject.chain || !subject.optimizer || !subject.batch) {
    throw std::invalid_argument("profile_chain: chain, optimizer and batch are required");
  }
  ChainModule& chain = *subject.chain;
  torch::optim::Optimizer& optimizer = *subject.optimizer;
  const int L = chain.num_stages();
  auto& ledger = profiler::ledger();
  PlanExecutor executor(chain, plan_no_checkpoint(L));
  auto forward = [&](PlanExecutor& ex, const Batch& b) {
    AutocastScope autocast(subject.dtype, subject.device);
    Activations out = ex.forward(b.inputs, b.context());
    if (out.size() != 1 || out[0].numel() != 1) {
      throw UserError(fmt::format("profile: the chain's last stage must return the loss, one scalar tensor; "
                                  "it returned {} tensor(s){}", out.size(),
                                  out.empty() ? "" : fmt::format(", the first with {} elements", out[0].numel())));
    }
    return out[0];
  };
  auto optimizer_step = [&] {
    if (subject.optimizer_step) {
      subject.optimizer_step();
    } else {
      optimizer.step();
    }
    for (auto& p : subject.parameters) p.mutable_grad().reset();
  };
  profiler::StageRecorder recorder(ledger);
  // On CUDA, stage times are GPU kernel time from CUPTI; without CUPTI, wall time with the
  // device synchronized at every stage boundary (slower, but not wrong).
  std::unique_ptr<profiler::GpuTimer> gpu;
  std::string timing = "wall";
  if (subject.device.is_cuda()) {
    std::string why_not;
    gpu = profiler::make_cupti_timer(why_not);
    if (gpu) {
      recorder.set_gpu_timer(gpu.get());
      timing = "cupti";
    } else {
      fmt::print(stderr, "note: no CUPTI stage times ({}); timing with device synchronization\n", why_not);
      recorder.set_boundary_hook([] { torch::cuda::synchronize(); });
      timing = "wall-synchronized";
    }
  }
  recorder.install();
  std::uint64_t gpu_dropped = 0;
  std::unique_ptr<TraceSession> trace;
  // The ops recorded since the last call, with their GPU times where CUPTI measured them.
  auto finished_ops = [&] {
    if (gpu) {
      torch::cuda::synchronize();
      gpu_dropped += recorder.collect_gpu_times().dropped_records;
    }
    return recorder.take_ops();
  };
  // A forward and backward of iteration `it`'s batch outside the training step (no
  // optimizer step, gradients dropped): its ops.
  auto extra_step = [&](PlanExecutor& ex, int it) {
    torch::Tensor loss = forward(ex, subject.batch(it));
    loss.backward();
    if (subject.after_backward) subject.after_backward();
    recorder.finish_backward();
    loss = torch::Tensor();
    for (auto& p : subject.parameters) p.mutable_grad().reset();
    auto ops = finished_ops();
    if (trace) profiler::ledger().take_events();  // not part of a traced step
    return ops;
  };

  std::vector<StageSamples> stages(L);
  // Variants (selective recompute) are measured on steps of their own after each plain one;
  // the last warm-up iteration warms them up.
  const std::vector<std::string> variant_names = o.variants ? offered_variants(chain) : std::vector<std::string>{};
  // Note [paired variant times]: a variant's time is the plain stage's plus the median of
  // its differences to plain measured in adjacent steps. Per variant and iteration two steps
  // run it on alternate stages (the others plain), so every stage has a variant sample and a
  // plain one a second apart, and within each step half the blocks are the other's control.
  // Measured from separate all-variant steps instead, the differences drifted with the
  // machine: on the llama bench block (README, "LLaMA-style blocks"; a block's forward and
  // backward about 170 ms) two quiet profiles put mlp-activation's backward at +26.5 and
  // +0.6 ms and norm+mlp-core's at +24.4 and +49.0 ms, enough to change the plan.
  std::vector<PlanExecutor> variant_exec;  // every offering stage: for the held peaks
  std::vector<std::array<PlanExecutor, 2>> variant_half;  // [parity]: stages k with k % 2 == parity
  for (const auto& v : variant_names) {
    variant_exec.emplace_back(chain, plan_variant(chain, v, [](int) { return true; }));
    variant_half.push_back({PlanExecutor(chain, plan_variant(chain, v, [](int k) { return k % 2 == 0; })),
                            PlanExecutor(chain, plan_variant(chain, v, [](int k) { return k % 2 == 1; }))});
  }
  // Bytes from the stages that ran the variant; times are differences (see above).
  std::vector<std::vector<StageSamples>> variant_stages(variant_names.size(), std::vector<StageSamples>(L));
  std::vector<std::vector<StageSamples>> variant_diff(variant_names.size(), std::vector<StageSamples>(L));
  // [0]: plain, [1 + v]: variant v; per stage.
  std::vector<std::vector<std::int64_t>> held_peak(variant_names.size() + 1);
  std::vector<double> step_ms, opt_ms;
  std::int64_t peak = 0, opt_peak = 0, resident = 0, inputs = 0, input0 = 0;
  ProfileRun run;
  const int total = o.warmup + o.iters;
  for (int it = 0; it < total; ++it) {
    const bool measure = it >= o.warmup;
    if (measure && o.trace && !trace) {
      trace = std::make_unique<TraceSession>(chain, subject.parameters, subject.buffers, optimizer,
                                             "profile", subject.model_name, subject.config);
    }
    recorder.take_ops();
    recorder.set_step(it);
    ledger.reset_step_peak();
    const auto t0 = std::chrono::steady_clock::now();
    Batch b = subject.batch(it);
    const std::int64_t live_at_start = ledger.live();
    if (trace) trace->begin_step(it, b);
    torch::Tensor loss = forward(executor, b);
    loss.backward();
    if (subject.after_backward) subject.after_backward();
    recorder.finish_backward();
    if (trace) trace->after_backward();
    const std::int64_t live_after_backward = ledger.live();
    ledger.reset_op_peak();
    const auto t_opt = std::chrono::steady_clock::now();
    optimizer_step();
    const std::int64_t opt_delta = ledger.op_peak() - live_after_backward;
    const double opt_elapsed = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_opt).count();
    StepStats s;
    s.loss = loss.item<double>();
    loss = torch::Tensor();
    // The batch's bytes: the first stage's inputs, then everything else it holds.
    input0 = profiler::allocated_bytes(b.inputs);
    Activations all = b.inputs;
    all.push_back(b.targets);
    for (const auto& kv : b.tensors) all.push_back(kv.second);
    inputs = profiler::allocated_bytes(all);
    b = Batch{};
    s.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    s.peak_bytes = ledger.step_peak();
    s.step = it;
    auto ops = finished_ops();
    if (trace) trace->end_step(it, s.peak_bytes, ops);

    // A forward without autograd recording: what a checkpoint's first forward costs.
    {
      torch::NoGradGuard no_grad;
      forward(executor, subject.batch(it));
    }
    auto nograd_ops = finished_ops();
    if (trace) profiler::ledger().take_events();  // the extra forward is not part of a step

    if (it + 1 >= o.warmup) {
      for (std::size_t vi = 0; vi < variant_half.size(); ++vi) {
        std::array<StepTimes, 2> t;
        for (int parity = 0; parity < 2; ++parity) {
          auto vops = extra_step(variant_half[vi][static_cast<std::size_t>(parity)], it);
          if (!measure) continue;
          t[static_cast<std::size_t>(parity)] = step_times(vops, L);
          vops.erase(std::remove_if(vops.begin(), vops.end(),
                                    [&](const profiler::OpRecord& op) {
                                      return op.stage < 0 || op.stage >= L || op.stage % 2 != parity ||
                                             !offers(chain, op.stage, variant_names[vi]);
                                    }),
                     vops.end());
          add_step_ops(variant_stages[vi], vops);
        }
        if (!measure) continue;
        for (int k = 0; k < L; ++k) {
          if (!offers(chain, k, variant_names[vi])) continue;
          const auto& with = t[static_cast<std::size_t>(k % 2)];
          const auto& without = t[static_cast<std::size_t>(1 - k % 2)];
          auto& d = variant_diff[vi][static_cast<std::size_t>(k)];
          d.fwd_ms.push_back(with.fwd[static_cast<std::size_t>(k)] - without.fwd[static_cast<std::size_t>(k)]);
          d.bwd_ms.push_back(with.bwd[static_cast<std::size_t>(k)] - without.bwd[static_cast<std::size_t>(k)]);
        }
      }
    }
    if (it + 1 == total) {
      // Bytes do not vary between steps: one step each measures the held backward peaks.
      recorder.set_hold_incoming(true);
      held_peak[0] = backward_peaks(extra_step(executor, it), L);
      for (std::size_t vi = 0; vi < variant_exec.size(); ++vi) {
        held_peak[vi + 1] = backward_peaks(extra_step(variant_exec[vi], it), L);
      }
      recorder.set_hold_incoming(false);
    }

    if (measure) {
      run.steps.push_back(s);
      step_ms.push_back(s.ms);
      opt_ms.push_back(opt_elapsed);
      peak = std::max(peak, s.peak_bytes);
      opt_peak = std::max(opt_peak, opt_delta);
      resident = std::max(resident, live_at_start);
      add_step_ops(stages, ops);
      for (const auto& op : nograd_ops) {
        if (op.stage < 0 || op.stage >= L || op.grad_mode) continue;
        auto& st = stages[op.stage];
        st.seen_nograd = true;
        st.nograd_ms.push_back(op.best_ms());
        st.nograd_peak = std::max(st.nograd_peak, op.peak_delta());
      }
    }
    if (o.on_step) o.on_step(it + 1, total, s);
  }
  recorder.uninstall();
  if (gpu_dropped > 0) {
    fmt::print(stderr, "warning: CUPTI dropped {} activity records; GPU stage times are too low\n", gpu_dropped);
  }

  ChainProfile& p = run.profile;
  p.timing = timing;
  p.model = subject.model_name;
  p.config = subject.config;
  p.digest = chain.digest();
  p.torch_version = TORCH_VERSION;
  p.warmup = o.warmup;
  p.iters = o.iters;
  std::vector<torch::Tensor> params_and_buffers = subject.parameters;
  for (const auto& b : subject.buffers) params_and_buffers.push_back(b);
  p.static_bytes.parameters = unique_bytes(params_and_buffers);
  p.static_bytes.gradients = unique_bytes(subject.parameters);
  p.static_bytes.optimizer_state = optimizer_bytes(optimizer);
  p.static_bytes.inputs = nonneg(inputs);
  const std::uint64_t known = p.static_bytes.parameters + p.static_bytes.optimizer_state + p.static_bytes.inputs;
  p.static_bytes.other = nonneg(resident - static_cast<std::int64_t>(known));
  p.peak_bytes = nonneg(peak);
  p.step_ms = median(step_ms);
  p.optimizer_peak_bytes = nonneg(opt_peak);
  p.optimizer_ms = median(opt_ms);
  p.checkpoint_state_bytes = checkpoint_state_bytes(subject.device);
  // The host link, where the device can offload, timed with a copy the size of the largest
  // saved set (Note [offload] in planner/simulator.hpp).
  std::uint64_t largest_saved = 0;
  for (const auto& st : stages) largest_saved = std::max<std::uint64_t>(largest_saved, nonneg(st.saved));
  p.host_link = measure_host_link(subject.device, largest_saved);
  // Note [pooled stage times]: stages with the same memory signature share their times.
  std::vector<std::uint64_t> param_bytes(static_cast<std::size_t>(L));
  for (int k = 0; k < L; ++k) param_bytes[static_cast<std::size_t>(k)] = unique_bytes(chain.stage_parameters(k));
  std::map<std::tuple<std::string, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                      std::uint64_t>,
           std::vector<int>>
      same_shape;
  for (int k = 0; k < L; ++k) {
    const auto& st = stages[k];
    same_shape[{chain.stage_kind(k), st.out, st.saved, st.fwd_peak, st.bwd_peak, st.nograd_peak,
                param_bytes[static_cast<std::size_t>(k)]}]
        .push_back(k);
  }
  std::vector<const std::vector<int>*> peers(static_cast<std::size_t>(L));
  for (const auto& kv : same_shape) {
    for (int k : kv.second) peers[static_cast<std::size_t>(k)] = &kv.second;
  }
  auto pooled = [&](const std::vector<StageSamples>& samples, int k, std::vector<double> StageSamples::*field) {
    std::vector<double> all;
    for (int q : *peers[static_cast<std::size_t>(k)]) {
      const auto& v = samples[static_cast<std::size_t>(q)].*field;
      all.insert(all.end(), v.begin(), v.end());
    }
    return median(all);
  };

  for (int k = 0; k < L; ++k) {
    const auto& st = stages[k];
    if (!st.seen_fwd || !st.seen_bwd || !st.seen_nograd) {
      throw std::runtime_error(fmt::format("profiler: stage {} was not observed in every phase", k));
    }
    StageProfile sp;
    sp.name = chain.stage_name(k);
    sp.kind = chain.stage_kind(k);
    sp.input_bytes = k == 0 ? nonneg(input0) : p.stages.back().output_bytes;
    sp.output_bytes = nonneg(st.out);
    sp.saved_bytes = nonneg(st.saved);
    sp.param_bytes = param_bytes[static_cast<std::size_t>(k)];
    sp.input_requires_grad = k > 0;
    sp.forward_peak_bytes = nonneg(st.fwd_peak);
    sp.forward_nograd_peak_bytes = nonneg(st.nograd_peak);
    sp.backward_peak_bytes = nonneg(st.bwd_peak);
    sp.backward_held_peak_bytes = std::max(sp.backward_peak_bytes, nonneg(held_peak[0][k]));
    sp.forward_ms = pooled(stages, k, &StageSamples::fwd_ms);
    sp.forward_nograd_ms = pooled(stages, k, &StageSamples::nograd_ms);
    sp.backward_ms = pooled(stages, k, &StageSamples::bwd_ms);
    const auto offered = chain.stage_variants(k);
    for (std::size_t vi = 0; vi < variant_names.size(); ++vi) {
      if (std::find(offered.begin(), offered.end(), variant_names[vi]) == offered.end()) continue;
      const auto& vs = variant_stages[vi][k];
      if (!vs.seen_fwd || !vs.seen_bwd) {
        throw std::runtime_error(fmt::format("profiler: stage {} variant {} was not observed", k, variant_names[vi]));
      }
      StageVariant sv;
      sv.name = variant_names[vi];
      sv.saved_bytes = nonneg(vs.saved);
      sv.forward_peak_bytes = nonneg(vs.fwd_peak);
      sv.backward_peak_bytes = nonneg(vs.bwd_peak);
      sv.backward_held_peak_bytes = std::max(sv.backward_peak_bytes, nonneg(held_peak[vi + 1][k]));
      sv.forward_ms = std::max(0.0, sp.forward_ms + pooled(variant_diff[vi], k, &StageSamples::fwd_ms));
      sv.backward_ms = std::max(0.0, sp.backward_ms + pooled(variant_diff[vi], k, &StageSamples::bwd_ms));
      sp.variants.push_back(std::move(sv));
    }
    p.stages.push_back(std::move(sp));
  }
  if (trace) run.trace = trace->finish();
  return run;
}

ProfileRun profile_model(Trainer& trainer, const ProfileOptions& o) {
  GPT model = trainer.model();
  ProfileSubject s;
  s.chain = model.get();
  // At ZeRO-3 a rank keeps its shards of the parameters, not the parameters.
  s.parameters = trainer.zero() && trainer.zero()->stage() == 3 ? trainer.zero()->shards() : model->parameters();
  s.buffers = model->buffers();
  s.optimizer = &trainer.optimizer();
  if (trainer.zero()) s.after_backward = [&trainer] { trainer.finish_backward(); };
  const std::uint64_t first = static_cast<std::uint64_t>(trainer.steps_done());
  s.batch = [&trainer, first](int it) { return trainer.batch(first + static_cast<std::uint64_t>(it)); };
  s.optimizer_step = [&trainer] { trainer.optimizer_step(); };
  s.device = trainer.device();
  s.dtype = trainer.config().model.dtype;
  s.model_name = "gpt";
  s.config = trainer.config().model;
  return profile_chain(s, o);
}

}  // namespace tidemark::runtime
