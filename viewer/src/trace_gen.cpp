// Synthetic GPT-shaped traces (see trace_gen.hpp for the shape of a step).
//
// Sections: [1] the stage chain and plan · [2] the step simulation · [3] sizing for a target
#include "tidemark/viewer/trace_gen.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace tidemark::viewer {
namespace {

// ---- [1] the stage chain and plan -------------------------------------------------------------

struct StagePlan {
  std::uint64_t param = 0;
  std::uint64_t saved = 0;      // what autograd keeps for backward
  std::uint64_t out = 0;        // the output activation a_{i+1}
  double forward_us = 0;
  bool checkpointed = false;
  bool segment_last = false;    // last stage of a checkpointed segment (keeps its output)
  int segment_first = -1;       // first stage of its segment when checkpointed
  bool variant = false;         // selective: recomputes its attention core in backward
};

std::vector<StagePlan> make_chain(const TraceGenOptions& o, std::mt19937_64& rng, std::vector<TraceStage>& stages) {
  const int L = o.blocks + 2;
  std::uniform_real_distribution<double> jitter(0.9, 1.1);
  std::vector<StagePlan> chain(static_cast<std::size_t>(L));
  stages.resize(static_cast<std::size_t>(L));
  // The first ~60% of blocks are checkpointed in segments; the block after them keeps all
  // but its attention core (a variant), the rest are saved: what an optimal plan looks like
  // under a moderate budget.
  const int checkpointed_blocks = o.checkpoint ? static_cast<int>(std::ceil(0.6 * o.blocks)) : 0;
  for (int i = 0; i < L; ++i) {
    StagePlan& s = chain[static_cast<std::size_t>(i)];
    TraceStage& st = stages[static_cast<std::size_t>(i)];
    if (i == 0) {
      st = {"embedding", "embedding", "save", 0};
      s.param = o.block_param_bytes / 2;
      s.saved = o.activation_bytes / 4;
      s.out = o.activation_bytes;
      s.forward_us = 0.1 * o.block_forward_us * jitter(rng);
    } else if (i == L - 1) {
      st = {"head", "head", "save", 0};
      s.param = o.block_param_bytes / 2;
      s.saved = 3 * o.activation_bytes;
      s.out = 4096;
      s.forward_us = 0.6 * o.block_forward_us * jitter(rng);
    } else {
      const int b = i - 1;
      st = {"block." + std::to_string(b), "block", "save", 0};
      s.param = o.block_param_bytes;
      s.saved = o.block_saved_bytes + static_cast<std::uint64_t>(b % 3) * (o.block_saved_bytes / 16);
      s.out = o.activation_bytes;
      s.forward_us = o.block_forward_us * jitter(rng);
      if (b < checkpointed_blocks) {
        s.checkpointed = true;
        s.segment_first = 1 + (b / std::max(1, o.segment)) * std::max(1, o.segment);
        s.segment_last = (b + 1) % std::max(1, o.segment) == 0 || b + 1 == checkpointed_blocks;
        st.action = "checkpoint";
      } else if (o.checkpoint && b == checkpointed_blocks && o.blocks >= 4) {
        s.variant = true;
        s.saved = s.saved * 7 / 10;
        st.action = "selective-attention";
      }
    }
    st.saved_bytes = s.saved;
    s.forward_us = std::max(s.forward_us, 8.0 * o.samples_per_span);
  }
  return chain;
}

// ---- [2] the step simulation ------------------------------------------------------------------

class Simulator {
 public:
  Simulator(const TraceGenOptions& o, Trace& t, std::mt19937_64& rng) : o_(o), t_(t), rng_(rng) {}

  std::array<std::uint64_t, kCategoryCount> level{};  // parameter .. temporary
  std::int64_t now = 0;

  void emit(std::int64_t at) { t_.memory.push(at, level); }

  // A span of `dur` microseconds with `k` samples: `held` moves by `delta` in even steps
  // (rounded so it lands exactly), while temporaries spike and are all freed by the last sample.
  void span(int stage, Phase phase, int step, double dur, std::uint64_t& held, std::int64_t delta,
            std::uint64_t transient, std::uint64_t grad_delta) {
    std::uniform_real_distribution<double> u(0.2, 1.0);
    const int k = std::max(2, o_.samples_per_span);
    const std::int64_t start = now;
    const std::int64_t d = std::max<std::int64_t>(static_cast<std::int64_t>(dur), 4 * k);
    const std::uint64_t held0 = held;
    const std::uint64_t grad0 = level[1];
    for (int j = 0; j < k; ++j) {
      const double frac = static_cast<double>(j + 1) / k;
      const std::int64_t at = start + d * (j + 1) / (k + 1);
      const std::int64_t moved = static_cast<std::int64_t>(std::llround(static_cast<double>(delta) * frac));
      const std::uint64_t before = held;
      held = static_cast<std::uint64_t>(static_cast<std::int64_t>(held0) + moved);
      level[4] = level[4] + held - before;
      level[1] = grad0 + static_cast<std::uint64_t>(std::llround(static_cast<double>(grad_delta) * frac));
      // Temporaries: workspace spikes, biggest mid-span, none left at the end.
      const double shape = std::sin(3.14159265 * (j + 0.5) / k);
      level[5] = j + 1 == k ? 0 : static_cast<std::uint64_t>(static_cast<double>(transient) * shape * u(rng_));
      emit(at);
    }
    now = start + d;
    t_.spans.push_back(Span{stage, phase, step, start, now});
    now += gap();
  }

  std::int64_t gap() {
    std::uniform_int_distribution<int> g(5, 30);
    return g(rng_);
  }

 private:
  const TraceGenOptions& o_;
  Trace& t_;
  std::mt19937_64& rng_;
};

}  // namespace

Trace generate_trace(const TraceGenOptions& options) {
  TraceGenOptions o = options;
  o.blocks = std::max(1, o.blocks);
  o.steps = std::max(1, o.steps);
  o.segment = std::max(1, o.segment);
  o.samples_per_span = std::max(2, o.samples_per_span);
  std::mt19937_64 rng(o.seed);
  Trace t;
  t.config.layers = o.blocks;
  t.mode = o.checkpoint ? "plan" : "none";
  if (o.checkpoint) t.solver = "optimal";
  std::vector<StagePlan> chain = make_chain(o, rng, t.stages);
  const int L = static_cast<int>(chain.size());

  Simulator sim(o, t, rng);
  std::uint64_t params = 0;
  for (const auto& s : chain) params += s.param;
  sim.level[0] = params;
  sim.emit(0);
  sim.now = 50;
  std::vector<std::uint64_t> held(static_cast<std::size_t>(L), 0);
  std::uniform_real_distribution<double> jitter(0.95, 1.08);

  for (int step = 0; step < o.steps; ++step) {
    StepMark mark;
    mark.step = step;
    mark.start_us = sim.now;
    const std::size_t first_sample = t.memory.size();
    sim.level[3] = o.input_bytes;  // the batch
    sim.emit(sim.now);
    sim.now += sim.gap();

    for (int i = 0; i < L; ++i) {
      const StagePlan& s = chain[static_cast<std::size_t>(i)];
      std::uint64_t& h = held[static_cast<std::size_t>(i)];
      const double dur = s.forward_us * jitter(rng);
      if (s.checkpointed) {
        // No grad: its activations come and go; only a segment's last output stays.
        sim.span(i, Phase::Forward, step, dur, h, s.segment_last ? static_cast<std::int64_t>(s.out) : 0,
                 s.saved + s.saved / 3, 0);
      } else {
        sim.span(i, Phase::Forward, step, dur, h, static_cast<std::int64_t>(s.saved + s.out), s.saved / 2, 0);
      }
    }
    for (int i = L - 1; i >= 0; --i) {
      const StagePlan& s = chain[static_cast<std::size_t>(i)];
      if (s.checkpointed && s.segment_last) {
        // Recompute the whole segment, in forward order, right before its backward.
        for (int r = s.segment_first; r <= i; ++r) {
          const StagePlan& rs = chain[static_cast<std::size_t>(r)];
          sim.span(r, Phase::Recompute, step, rs.forward_us * 1.05 * jitter(rng), held[static_cast<std::size_t>(r)],
                   static_cast<std::int64_t>(rs.saved + rs.out), rs.saved / 2, 0);
        }
      }
      if (s.variant) {
        sim.span(i, Phase::Recompute, step, s.forward_us * 0.3 * jitter(rng), held[static_cast<std::size_t>(i)],
                 static_cast<std::int64_t>(s.saved * 3 / 7), s.saved / 4, 0);
      }
      std::uint64_t& h = held[static_cast<std::size_t>(i)];
      sim.span(i, Phase::Backward, step, 2 * s.forward_us * jitter(rng), h, -static_cast<std::int64_t>(h),
               2 * s.out + s.saved / 3, s.param);
    }

    // Optimizer: its state appears in the first step (Adam: two moments), then the
    // gradients are released (zero_grad with set_to_none) and the batch freed.
    const int opt_samples = 4;
    const std::uint64_t opt_target = 2 * params;
    const std::uint64_t opt_start = sim.level[2];
    for (int j = 0; j < opt_samples; ++j) {
      sim.now += static_cast<std::int64_t>(0.04 * o.block_forward_us) + sim.gap();
      sim.level[2] = opt_start + (opt_target - opt_start) * static_cast<std::uint64_t>(j + 1) / opt_samples;
      sim.level[5] = j + 1 == opt_samples ? 0 : params / 8;
      sim.emit(sim.now);
    }
    sim.now += sim.gap();
    sim.level[1] = 0;
    sim.level[3] = 0;
    sim.emit(sim.now);
    mark.end_us = sim.now;
    for (std::size_t k = first_sample; k < t.memory.size(); ++k) mark.peak_bytes = std::max(mark.peak_bytes, t.memory.total[k]);
    t.steps.push_back(mark);
    sim.now += 200 + sim.gap();
  }

  for (auto v : t.memory.total) t.peak_bytes = std::max(t.peak_bytes, v);
  if (o.checkpoint) {
    std::uniform_real_distribution<double> miss(0.97, 1.01);
    const std::uint64_t mib = 1ull << 20;
    t.predicted_peak_bytes = static_cast<std::uint64_t>(static_cast<double>(t.peak_bytes) * miss(rng));
    t.budget_bytes = (static_cast<std::uint64_t>(static_cast<double>(t.peak_bytes) * 1.06) / mib + 1) * mib;
  }
  return t;
}

// ---- [3] sizing for a target ------------------------------------------------------------------

TraceGenOptions trace_gen_options_for(std::size_t samples, std::size_t spans, bool checkpoint) {
  TraceGenOptions o;
  o.checkpoint = checkpoint;
  o.blocks = 48;
  // Spans per step: forward and backward for every stage, plus recomputes.
  std::mt19937_64 rng(o.seed);
  std::vector<TraceStage> stages;
  std::vector<StagePlan> chain = make_chain(o, rng, stages);
  std::size_t per_step = 2 * chain.size();
  for (const auto& s : chain) per_step += (s.checkpointed ? 1 : 0) + (s.variant ? 1 : 0);
  o.steps = static_cast<int>(std::max<std::size_t>(1, (spans + per_step - 1) / per_step));
  const std::size_t span_total = per_step * static_cast<std::size_t>(o.steps);
  const std::size_t fixed = 6 * static_cast<std::size_t>(o.steps) + 1;  // step start, optimizer, end
  // Rounded up: the trace has at least `samples` samples.
  const std::size_t wanted = samples > fixed ? samples - fixed : 0;
  o.samples_per_span = static_cast<int>(std::max<std::size_t>(2, (wanted + span_total - 1) / span_total));
  return o;
}

}  // namespace tidemark::viewer
