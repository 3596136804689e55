// Your own LibTorch model, your own training loop, a memory budget: a small LLaMA-style
// decoder (RMSNorm, rotary embeddings, grouped-query attention, SwiGLU) written without
// tidemark, then profiled, planned and trained under a budget with tidemark/tidemark.hpp.
//
//   custom_loop [--steps N] [--budget FRACTION] [--trace FILE]
//
// The statements that are tidemark's are marked "// tidemark": 10 from profile to plan to
// training under the budget to the trace, and one more for a selective-recompute variant
// the planner may choose. Exit status 1 when the plan's measured peak breaks the budget or
// misses the prediction by more than 5%.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fmt/format.h>
#include <string>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "tidemark/tidemark.hpp"

using torch::Tensor;
namespace F = torch::nn::functional;

namespace {

// ---- the model: nothing here knows about tidemark

struct Config {
  int64_t vocab = 256, dim = 256, layers = 6, heads = 8, kv_heads = 2, hidden = 768, seq = 256, batch = 8;
};

struct RMSNormImpl : torch::nn::Module {
  explicit RMSNormImpl(int64_t dim) { weight = register_parameter("weight", torch::ones({dim})); }
  Tensor forward(const Tensor& x) { return x * torch::rsqrt(x.pow(2).mean(-1, true) + 1e-6) * weight; }
  Tensor weight;
};
TORCH_MODULE(RMSNorm);

// x: [B, H, T, D]; cos, sin: [T, D/2]
Tensor rotate(const Tensor& x, const Tensor& cos, const Tensor& sin) {
  auto halves = x.chunk(2, -1);
  return torch::cat({halves[0] * cos - halves[1] * sin, halves[0] * sin + halves[1] * cos}, -1);
}

struct AttentionImpl : torch::nn::Module {
  explicit AttentionImpl(const Config& c) : c(c) {
    const int64_t hd = c.dim / c.heads;
    auto linear = [](int64_t in, int64_t out) { return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false)); };
    norm = register_module("norm", RMSNorm(c.dim));
    wq = register_module("wq", linear(c.dim, c.heads * hd));
    wkv = register_module("wkv", linear(c.dim, 2 * c.kv_heads * hd));
    wo = register_module("wo", linear(c.heads * hd, c.dim));
  }
  Tensor forward(const Tensor& x, const Tensor& cos, const Tensor& sin, const Tensor& mask) {
    const int64_t B = x.size(0), T = x.size(1), hd = c.dim / c.heads;
    auto h = norm(x);
    auto q = wq(h).view({B, T, c.heads, hd}).transpose(1, 2);
    auto kv = wkv(h).view({B, T, 2, c.kv_heads, hd}).permute({2, 0, 3, 1, 4});
    auto k = kv[0].repeat_interleave(c.heads / c.kv_heads, 1), v = kv[1].repeat_interleave(c.heads / c.kv_heads, 1);
    q = rotate(q, cos, sin);
    k = rotate(k, cos, sin);
    auto att = torch::softmax(torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(double(hd)) + mask, -1);
    return wo(torch::matmul(att, v).transpose(1, 2).reshape({B, T, c.dim}));
  }
  Config c;
  RMSNorm norm{nullptr};
  torch::nn::Linear wq{nullptr}, wkv{nullptr}, wo{nullptr};
};
TORCH_MODULE(Attention);

struct MlpImpl : torch::nn::Module {
  explicit MlpImpl(const Config& c) {
    norm = register_module("norm", RMSNorm(c.dim));
    gate_up = register_module("gate_up", torch::nn::Linear(torch::nn::LinearOptions(c.dim, 2 * c.hidden).bias(false)));
    down = register_module("down", torch::nn::Linear(torch::nn::LinearOptions(c.hidden, c.dim).bias(false)));
  }
  Tensor forward(const Tensor& x) {
    auto gu = gate_up(norm(x)).chunk(2, -1);
    return down(torch::silu(gu[0]) * gu[1]);
  }
  RMSNorm norm{nullptr};
  torch::nn::Linear gate_up{nullptr}, down{nullptr};
};
TORCH_MODULE(Mlp);

struct DecoderImpl : torch::nn::Module {
  explicit DecoderImpl(const Config& c) {
    attn = register_module("attn", Attention(c));
    mlp = register_module("mlp", Mlp(c));
  }
  Tensor forward(const Tensor& x, const Tensor& cos, const Tensor& sin, const Tensor& mask) {
    auto y = x + attn(x, cos, sin, mask);
    return y + mlp(y);
  }
  Attention attn{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(Decoder);

struct HeadImpl : torch::nn::Module {
  explicit HeadImpl(const Config& c) {
    norm = register_module("norm", RMSNorm(c.dim));
    out = register_module("out", torch::nn::Linear(torch::nn::LinearOptions(c.dim, c.vocab).bias(false)));
  }
  Tensor forward(const Tensor& x, const Tensor& targets) {
    auto logits = out(norm(x));
    return F::cross_entropy(logits.view({-1, logits.size(-1)}), targets.reshape({-1}));
  }
  RMSNorm norm{nullptr};
  torch::nn::Linear out{nullptr};
};
TORCH_MODULE(Head);

struct LlamaImpl : torch::nn::Module {
  explicit LlamaImpl(const Config& c) {
    embed = register_module("embed", torch::nn::Embedding(c.vocab, c.dim));
    for (int64_t i = 0; i < c.layers; ++i) layers->push_back(Decoder(c));
    register_module("layers", layers);
    head = register_module("head", Head(c));
  }
  torch::nn::Embedding embed{nullptr};
  torch::nn::ModuleList layers;
  Head head{nullptr};
};
TORCH_MODULE(Llama);

// Rotary tables and the causal mask depend on the sequence only: the same every step.
struct Tables {
  Tensor cos, sin, mask;
};
Tables tables(const Config& c) {
  const int64_t half = c.dim / c.heads / 2;
  auto inv = torch::pow(10000.0, -torch::arange(half, torch::kFloat) / half);
  auto angles = torch::outer(torch::arange(c.seq, torch::kFloat), inv);
  auto mask = torch::full({c.seq, c.seq}, -INFINITY).triu(1);
  return {angles.cos(), angles.sin(), mask};
}

// A learnable synthetic task: next token = (token * 7 + 3) mod vocab, with noise.
tidemark::Batch make_batch(const Config& c, const Tables& t, int step) {
  auto gen = torch::make_generator<at::CPUGeneratorImpl>(1000 + step);
  auto ids = torch::randint(c.vocab, {c.batch, c.seq + 1}, gen);
  ids.slice(1, 1) = torch::where(torch::rand({c.batch, c.seq}, gen) < 0.8, (ids.slice(1, 0, c.seq) * 7 + 3) % c.vocab,
                                 ids.slice(1, 1));
  tidemark::Batch b;
  b.inputs = {ids.slice(1, 0, c.seq).contiguous()};
  b.targets = ids.slice(1, 1).contiguous();
  b.tensors = {{"cos", t.cos}, {"sin", t.sin}, {"mask", t.mask}};
  return b;
}

}  // namespace

int run(int argc, char** argv) {
  int steps = 10;
  double fraction = 0.5;
  std::string trace_path;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--steps") steps = std::atoi(argv[i + 1]);
    else if (flag == "--budget") fraction = std::atof(argv[i + 1]);
    else if (flag == "--trace") trace_path = argv[i + 1];
    else throw tidemark::UserError(fmt::format("unknown flag {}; flags: --steps N --budget FRACTION --trace FILE", flag));
  }
  tidemark::Session session;  // tidemark: before the model, so it sees every tensor
  if (!std::getenv("OMP_NUM_THREADS")) torch::set_num_threads(static_cast<int>(std::thread::hardware_concurrency()));
  torch::manual_seed(0);
  const Config c;
  const Tables t = tables(c);
  Llama model(c);
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-3));
  auto batch = [&](int step) { return make_batch(c, t, step); };

  using tidemark::StageContext;
  tidemark::Chain chain("llama-sample");  // tidemark: the model as stages
  chain.add("embed", model->embed, [&](const Tensor& ids) { return model->embed(ids); });  // tidemark
  chain.add_each<DecoderImpl>("layer", model->layers, [](DecoderImpl& d, const Tensor& x, const StageContext& s) {  // tidemark
    return d.forward(x, s.tensor("cos"), s.tensor("sin"), s.tensor("mask"));
  });
  chain.add("head", model->head, [&](const Tensor& x, const StageContext& s) { return model->head(x, s.targets); });  // tidemark
  // Selective recompute: a layer that keeps its MLP's input only, recomputing the MLP in backward.
  chain.add_variant<DecoderImpl>("layer", "mlp-recompute", [](DecoderImpl& d, const Tensor& x, const StageContext& s) {  // tidemark
    auto y = x + d.attn(x, s.tensor("cos"), s.tensor("sin"), s.tensor("mask"));
    return y + tidemark::checkpoint(d.mlp, y);
  });

  auto plan = session.plan(chain, opt, batch, tidemark::Budget::fraction(fraction));  // tidemark: profile, plan
  fmt::print("no checkpointing: peak {}, step {:.0f} ms; budget {}: {} predicted at peak {}, step {:.0f} ms\n",
             tidemark::format_bytes(plan.baseline_peak_bytes), plan.baseline_step_ms,
             tidemark::format_bytes(plan.budget_bytes), tidemark::describe(plan.root),
             tidemark::format_bytes(plan.predicted.peak_bytes), plan.predicted.step_ms);

  // Train in a plain loop. zero_grad() keeps gradients on LibTorch 1.13; the Step frees them.
  struct Result {
    std::int64_t peak = 0;
    double ms = 0;
  };
  auto train = [&](const char* label) {
    double first = 0, last = 0;
    std::vector<double> ms;
    std::int64_t peak = 0;
    for (int i = 0; i < steps; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      auto step = session.step(opt);  // tidemark: one step, its peak
      auto loss = chain.forward(batch(100 + i));
      loss.backward();
      opt.step();
      opt.zero_grad();
      step.end();
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      peak = std::max(peak, step.peak_bytes());
      (i == 0 ? first : last) = loss.item<double>();
    }
    std::sort(ms.begin(), ms.end());
    const Result r{peak, ms[ms.size() / 2]};
    fmt::print("{:<28} loss {:.3f} -> {:.3f}, peak {}, median step {:.0f} ms\n", label, first, last,
               tidemark::format_bytes(static_cast<std::uint64_t>(r.peak)), r.ms);
    return r;
  };
  chain.use(plan);  // tidemark: run the plan
  if (!trace_path.empty()) session.record_trace(chain, opt);  // tidemark
  const Result planned = train("with the plan");
  if (!trace_path.empty()) tidemark::save(trace_path, session.trace());  // tidemark
  chain.checkpoint_every_block();
  const Result every = train("every block checkpointed");
  chain.no_checkpointing();
  const Result none = train("no checkpointing");

  const double error = 100.0 * (static_cast<double>(planned.peak) - static_cast<double>(plan.predicted.peak_bytes)) /
                       static_cast<double>(plan.predicted.peak_bytes);
  const bool within = planned.peak <= static_cast<std::int64_t>(plan.budget_bytes);
  fmt::print("plan: measured peak {} against predicted {} ({:+.1f}%), budget {}: {}; step {:+.1f}% against "
             "no checkpointing (every block: {:+.1f}%)\n",
             tidemark::format_bytes(static_cast<std::uint64_t>(planned.peak)),
             tidemark::format_bytes(plan.predicted.peak_bytes), error, tidemark::format_bytes(plan.budget_bytes),
             within ? "within" : "OVER", 100.0 * (planned.ms / none.ms - 1), 100.0 * (every.ms / none.ms - 1));
  return within && std::abs(error) <= 5.0 ? 0 : 1;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const tidemark::UserError& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 2;
  }
}
