// Block variants (Note [block variants]): names, and the autograd Functions that keep less
// and recompute in backward. Sections: names; shared pieces; norms; attention; MLP.
//
// Each backward mirrors, kernel for kernel, what autograd runs for the plain ops (linear on a
// contiguous 3-D input is addmm on the folded input; matmul of 4-D tensors is bmm on the
// folded batch; softmax, masked_fill_, native_dropout, layer norm, gelu and silu backward by
// their ATen formulas; RMSNorm's backward is its own Function's), so gradients equal the
// plain block's; the MLP's backward runs them a range of tokens at a time (Note [block
// variants]).
#include "tidemark/runtime/block_variants.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "autocast_state.hpp"
#include "block_ops.hpp"
#include "tidemark/profiler/stage_observer.hpp"
#include "tidemark/runtime/gpt.hpp"

// LibTorch's CPU flash attention as ops of its own (2.3 on), which attention-qkv calls with
// sdpa: their output and log-sum-exp are kept, q, k, v rebuilt.
#if __has_include(<ATen/ops/_scaled_dot_product_flash_attention_for_cpu.h>)
#include <ATen/ops/_scaled_dot_product_flash_attention_for_cpu.h>
#include <ATen/ops/_scaled_dot_product_flash_attention_for_cpu_backward.h>
#define TIDEMARK_HAVE_CPU_FLASH 1
#else
#define TIDEMARK_HAVE_CPU_FLASH 0
#endif

namespace tidemark::runtime {

// ---------------------------------------------------------------- names

namespace {

const char* attention_name(BlockVariant::Attention a) {
  switch (a) {
    case BlockVariant::Attention::Dropout: return "attention-dropout";
    case BlockVariant::Attention::Core: return "attention-core";
    case BlockVariant::Attention::Qkv: return "attention-qkv";
    case BlockVariant::Attention::Full: break;
  }
  return "";
}

const char* norm_name(BlockVariant::Norm n) { return n == BlockVariant::Norm::Recompute ? "norm" : ""; }

const char* mlp_name(BlockVariant::Mlp m) {
  switch (m) {
    case BlockVariant::Mlp::Activation: return "mlp-activation";
    case BlockVariant::Mlp::Core: return "mlp-core";
    case BlockVariant::Mlp::Full: break;
  }
  return "";
}

constexpr BlockVariant::Attention kAttention[] = {BlockVariant::Attention::Full,
                                                  BlockVariant::Attention::Dropout,
                                                  BlockVariant::Attention::Core,
                                                  BlockVariant::Attention::Qkv};
constexpr BlockVariant::Norm kNorm[] = {BlockVariant::Norm::Full, BlockVariant::Norm::Recompute};
constexpr BlockVariant::Mlp kMlp[] = {BlockVariant::Mlp::Full, BlockVariant::Mlp::Activation,
                                      BlockVariant::Mlp::Core};

}  // namespace

std::string BlockVariant::name() const {
  std::string out;
  for (const char* part : {attention_name(attention), norm_name(norm), mlp_name(mlp)}) {
    if (*part == '\0') continue;
    if (!out.empty()) out += '+';
    out += part;
  }
  return out;
}

std::optional<BlockVariant> BlockVariant::parse(const std::string& name) {
  if (name.empty() || name == "full") return BlockVariant{};
  for (auto a : kAttention) {
    for (auto n : kNorm) {
      for (auto m : kMlp) {
        BlockVariant v{a, n, m};
        if (v.name() == name) return v;
      }
    }
  }
  return std::nullopt;
}

bool runs_cpu_flash(const ModelConfig& model) {
  return model.attention == "sdpa" && TIDEMARK_HAVE_CPU_FLASH && model.device == "cpu" && model.dropout <= 0;
}

bool BlockVariant::has(const ModelConfig& model, Attention a) {
  switch (a) {
    case Attention::Full: return true;
    // These rebuild T² tensors that chunked and sdpa attention never keep.
    case Attention::Dropout: return model.attention == "naive" && model.dropout > 0;
    case Attention::Core: return model.attention == "naive";
    // Needs a kernel whose backward can be called on rebuilt q, k, v: chunked attention's
    // own, or LibTorch's CPU flash kernel (sdpa without dropout on the CPU).
    case Attention::Qkv: return model.attention == "chunked" || runs_cpu_flash(model);
  }
  return false;
}

std::vector<BlockVariant> BlockVariant::all(const ModelConfig& model) {
  std::vector<BlockVariant> out;
  for (auto a : kAttention) {
    if (!has(model, a)) continue;
    for (auto n : kNorm) {
      for (auto m : kMlp) {
        BlockVariant v{a, n, m};
        if (!v.is_full()) out.push_back(v);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------- shared pieces

namespace block_ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// What a backward needs besides its saved tensors. Held in a capsule and dropped as soon as
// backward is done (a C++ Function node keeps saved_data after release_variables()).
struct State : torch::CustomClassHolder {
  AutocastState autocast;
  at::Tensor causal;  // [T, T] bool, true where masked
  // The dropout mask, between dropout_into and save_for_backward, and again in backward.
  // Kept as a saved variable in between, like every tensor a backward needs, so that saved-
  // tensor hooks (offload, Note [offload runtime]) see it.
  at::Tensor mask;
  double scale = 1.0;  // dropout scale 1/(1-p)
  int stage = -1;
  NormWeights norm;    // norm_linear's norm; its tensors are saved variables, not held here
  Activation act = Activation::Gelu;
  bool has_bias = false;  // of the Function's (last) linear
};

c10::intrusive_ptr<State> new_state(AutogradContext* ctx, int stage) {
  auto s = c10::make_intrusive<State>();
  s->autocast = AutocastState::current();
  s->stage = stage;
  ctx->saved_data["state"] = c10::IValue::make_capsule(s);
  return s;
}

c10::intrusive_ptr<State> take_state(AutogradContext* ctx) {
  auto s = c10::static_intrusive_pointer_cast<State>(ctx->saved_data["state"].toCapsule());
  ctx->saved_data.clear();
  return s;
}

// The trace's recompute span for the part of the stage's forward that backward redoes.
class PartialRecompute {
 public:
  explicit PartialRecompute(int stage) : stage_(stage) {
    obs_ = stage >= 0 ? profiler::active_observer() : nullptr;
    if (obs_) obs_->partial_recompute_begin(stage_);
  }
  void end() {
    if (obs_) obs_->partial_recompute_end(stage_);
    obs_ = nullptr;
  }
  ~PartialRecompute() { end(); }

 private:
  int stage_;
  profiler::StageObserver* obs_ = nullptr;
};

at::Tensor dropout_scale_mul(const at::Tensor& x, const State& s) {
  // native_dropout computes x·mask·scale; native_dropout_backward(x, mask, scale) is the same
  // product, bit for bit.
  return s.mask.defined() ? at::native_dropout_backward(x, s.mask, s.scale) : x;
}

// softmax(q·kᵀ with the causal mask), as the plain block computes it.
at::Tensor attention_probs(const at::Tensor& q, const at::Tensor& k, const at::Tensor& causal) {
  auto scores = at::matmul(q, k.transpose(-2, -1));
  scores.masked_fill_(causal, -std::numeric_limits<float>::infinity());
  return at::softmax(scores, -1);
}

// Batched matrix products on [B, H, T, *] folded to [B·H, T, *], as at::matmul runs them.
at::Tensor fold(const at::Tensor& t) { return t.reshape({-1, t.size(-2), t.size(-1)}); }

struct ProductGrads {
  at::Tensor a, b;
};

// Gradients of a·b for a [.., n, m], b [.., m, p]: bmm's backward formulas.
ProductGrads product_backward(const at::Tensor& grad, const at::Tensor& a, const at::Tensor& b) {
  auto g = fold(grad);
  ProductGrads out;
  out.a = g.bmm(fold(b).transpose(1, 2)).view(a.sizes());
  out.b = fold(a).transpose(1, 2).bmm(g).view(b.sizes());
  return out;
}

// Drops out `p` (a probability tensor) when training; returns the output and keeps the mask
// and scale in `s`.
at::Tensor dropout_into(const at::Tensor& p, double rate, bool train, State& s) {
  if (!train || rate <= 0.0) return p;
  auto [out, mask] = at::native_dropout(p, rate, true);
  s.mask = mask;
  s.scale = 1.0 / (1.0 - rate);
  return out;
}

struct LinearGrads {
  at::Tensor input, weight, bias;
};

// A custom Function cannot take an undefined tensor (LibTorch records every tensor input's
// device), so an empty tensor stands for an absent bias on the way in.
at::Tensor or_empty(const at::Tensor& t, const at::Tensor& like) {
  return t.defined() ? t : at::empty({0}, like.options().requires_grad(false));
}
at::Tensor or_undefined(const at::Tensor& t) { return t.numel() > 0 ? t : at::Tensor(); }

// activation(h), with SwiGLU's silu(gate), which the backward of the product needs again: a
// backward that rebuilds the activation computes it once, as the plain block's autograd
// keeps it.
struct ActivationParts {
  at::Tensor out, silu_gate;
};

ActivationParts activation_parts(const at::Tensor& h, Activation act) {
  if (act == Activation::Gelu) return {at::gelu(h), at::Tensor()};
  auto halves = h.chunk(2, -1);
  auto silu_gate = at::silu(halves[0]);
  return {silu_gate * halves[1], silu_gate};
}

// The gradient of h from the gradient of activation(h), given what activation_parts made,
// written into `out` (h's shape; rows of a whole gradient, so no copy joins the ranges).
void activation_backward(at::Tensor out, const at::Tensor& grad, const at::Tensor& h, const ActivationParts& a,
                         Activation act) {
  if (act == Activation::Gelu) {
    at::gelu_backward_out(out, grad, h);
    return;
  }
  // p = silu(gate)·up: mul's backward gives grad·up and grad·silu(gate), then SiLU's; the
  // chunk's backward joins the halves, here by writing each into its half of `out`.
  auto halves = h.chunk(2, -1);
  auto outs = out.chunk(2, -1);
  at::silu_backward_out(outs[0], grad * halves[1], halves[0]);
  at::mul_out(outs[1], grad, a.silu_gate);
}

// ---------------------------------------------------------------- MLP backward by token ranges

// The MLP works token by token, so a backward that rebuilds its wide tensors (h = first(u),
// the activation a) can rebuild and use them one range of tokens at a time. Rebuilt whole, h,
// a and their gradients sat together on top of everything the step still held: on the llama
// bench block (README, "LLaMA-style blocks") mlp-core's saved bytes plus backward peak were
// 53.8 MiB, above the plain block's 47.8 MiB, so a plan could not give the variant to the
// block whose backward sets the step's peak; by ranges, 32.8 MiB. Ranges of N·narrow/wide
// tokens make one range's h (wide columns) no bigger than the MLP's input (narrow columns);
// four times as many ranges measured no lower peak and 2.5× the rebuild time (matmuls of
// under a hundred rows). The ranges are not free: on LibTorch 2.6 these six made mlp-core's
// rebuild 6.9 ms against 4.5 ms for one whole pass (README, "LLaMA-style blocks").
std::vector<std::pair<std::int64_t, std::int64_t>> token_ranges(std::int64_t n, std::int64_t wide,
                                                                std::int64_t narrow) {
  const std::int64_t parts = std::max<std::int64_t>(1, (wide + narrow - 1) / narrow);
  const std::int64_t len = std::max<std::int64_t>(1, (n + parts - 1) / parts);
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  for (std::int64_t r = 0; r < n; r += len) out.emplace_back(r, std::min(len, n - r));
  return out;
}

// Sums the ranges' weight gradients in float at least: under autocast each range's product is
// rounded to bfloat16, and summing in bfloat16 would round once more per range.
void accumulate(at::Tensor& sum, const at::Tensor& part) {
  if (!part.defined()) return;
  if (!sum.defined()) {
    sum = part.to(at::promote_types(part.scalar_type(), at::kFloat));
  } else {
    sum.add_(part);
  }
}

// linear's backward for one range of rows g (gradient) and x (input), both [rows, *]: adds
// the weight and bias gradients into `acc` and returns the gradient of x.
at::Tensor linear_range_backward(const at::Tensor& g, const at::Tensor& x, const at::Tensor& w, bool has_bias,
                                 LinearGrads& acc) {
  accumulate(acc.weight, g.t().mm(x));
  if (has_bias) accumulate(acc.bias, g.sum(0));
  return g.mm(w);
}

// linear's backward over the whole input, folded to rows (linear on a contiguous 3-D input is
// addmm on the folded input).
LinearGrads linear_backward(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& w, bool has_bias) {
  LinearGrads out;
  out.input = linear_range_backward(grad.reshape({-1, grad.size(-1)}), x.reshape({-1, x.size(-1)}), w, has_bias, out)
                  .view(x.sizes());
  return out;
}

// linear(activation(h), w, b)'s backward for one range, given the rebuilt activation a
// (released once the weight gradient has it): the gradient of h, into `grad_h`.
void activation_linear_range_backward(const at::Tensor& grad_h, const at::Tensor& g, ActivationParts a,
                                      const at::Tensor& h, const at::Tensor& w, bool has_bias, Activation act,
                                      LinearGrads& acc) {
  auto grad_a = linear_range_backward(g, a.out, w, has_bias, acc).to(h.scalar_type());
  a.out = at::Tensor();
  activation_backward(grad_h, grad_a, h, a, act);
}

// Rows [r, r + len) of `whole`, allocated on the first range's result.
void put_rows(at::Tensor& whole, std::int64_t rows, std::int64_t r, const at::Tensor& part) {
  if (!whole.defined()) whole = at::empty({rows, part.size(1)}, part.options());
  whole.narrow(0, r, part.size(0)).copy_(part);
}

// ---------------------------------------------------------------- norms

// A norm's output and the statistics its backward needs (mean: LayerNorm only).
struct NormOut {
  at::Tensor out, mean, rstd;
};

NormOut norm_forward(const at::Tensor& x, const NormWeights& n) {
  if (!n.rms) {
    auto [out, mean, rstd] = at::native_layer_norm(x, {x.size(-1)}, n.weight, n.bias, n.eps);
    return {out, mean, rstd};
  }
  auto rstd = at::rsqrt(x.square().mean(-1, /*keepdim=*/true).add_(n.eps));
  return {x * rstd * n.weight, at::Tensor(), rstd};
}

// The output again from the kept statistics, bit for bit.
at::Tensor norm_rebuild(const at::Tensor& x, const NormOut& stats, const NormWeights& n) {
  if (!n.rms) return norm_forward(x, n).out;
  return x * stats.rstd * n.weight;
}

struct NormGrads {
  at::Tensor input, weight, bias;
};

NormGrads norm_backward(const at::Tensor& grad, const at::Tensor& x, const NormOut& stats, const NormWeights& n) {
  if (!n.rms) {
    auto [gx, gw, gb] = at::native_layer_norm_backward(grad, x, {x.size(-1)}, stats.mean, stats.rstd, n.weight,
                                                       n.bias, {true, true, n.bias.defined()});
    return {gx, gw, gb};
  }
  // y = x̂·w with x̂ = x·rstd: dx = rstd·(g·w − x̂·mean(g·w·x̂)), dw = Σ g·x̂.
  auto normed = x * stats.rstd;
  auto grad_normed = grad * n.weight;
  NormGrads out;
  out.weight = (grad * normed).reshape({-1, x.size(-1)}).sum(0);
  out.input = stats.rstd * (grad_normed - normed * (grad_normed * normed).mean(-1, /*keepdim=*/true));
  return out;
}

// RMSNorm keeping its input and 1/rms (the plain block's norm for llama).
struct RmsNorm : torch::autograd::Function<RmsNorm> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w, double eps) {
    auto o = norm_forward(x, {w, at::Tensor(), true, eps});
    ctx->save_for_backward({x, w, o.rstd});
    return o.out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto g = norm_backward(grads[0], saved[0], {at::Tensor(), at::Tensor(), saved[2]}, {saved[1], at::Tensor(), true});
    return {g.input, g.weight, at::Tensor()};
  }
};

// norm: linear(norm(x), w, b) keeping x and the norm's statistics, not its output.
struct NormLinear : torch::autograd::Function<NormLinear> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& norm_weight,
                            const at::Tensor& given_norm_bias, const at::Tensor& w, const at::Tensor& given_b, bool rms,
                            double eps, int64_t stage) {
    const at::Tensor norm_bias = or_undefined(given_norm_bias), b = or_undefined(given_b);
    auto s = new_state(ctx, static_cast<int>(stage));
    s->norm = {at::Tensor(), at::Tensor(), rms, eps};
    s->has_bias = b.defined();
    auto o = norm_forward(x, {norm_weight, norm_bias, rms, eps});
    ctx->save_for_backward({x, norm_weight, norm_bias, w, o.mean, o.rstd});
    return at::linear(o.out, w, b);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto s = take_state(ctx);
    auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w = saved[3];
    const NormWeights n{saved[1], saved[2], s->norm.rms, s->norm.eps};
    const NormOut stats{at::Tensor(), saved[4], saved[5]};
    AutocastRestore autocast(s->autocast);
    PartialRecompute span(s->stage);
    auto normed = norm_rebuild(x, stats, n);
    span.end();
    auto lin = linear_backward(grads[0], normed, w, s->has_bias);
    normed = at::Tensor();
    auto ng = norm_backward(lin.input.to(x.scalar_type()), x, stats, n);
    return {ng.input, ng.weight, ng.bias, lin.weight, lin.bias, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// ---------------------------------------------------------------- attention

// attention-dropout: P·V where the dropped-out P is rebuilt in backward from P and the mask.
struct DropoutProduct : torch::autograd::Function<DropoutProduct> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& probs, const at::Tensor& v,
                            double rate, int64_t stage) {
    auto s = new_state(ctx, static_cast<int>(stage));
    auto dropped = dropout_into(probs, rate, true, *s);
    ctx->save_for_backward({probs, v, std::exchange(s->mask, at::Tensor())});
    return at::matmul(dropped, v);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto s = take_state(ctx);
    auto saved = ctx->get_saved_variables();
    s->mask = saved[2];
    AutocastRestore autocast(s->autocast);
    PartialRecompute span(s->stage);
    auto dropped = dropout_scale_mul(saved[0], *s);
    span.end();
    auto g = product_backward(grads[0], dropped, saved[1]);
    return {dropout_scale_mul(g.a, *s), g.b, at::Tensor(), at::Tensor()};
  }
};

// attention-core: keeps q, k, v and the dropout mask; backward rebuilds scores, softmax and
// the dropped-out probabilities, and skips the forward's P·V.
struct AttentionCore : torch::autograd::Function<AttentionCore> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k,
                            const at::Tensor& v, const at::Tensor& causal, double rate, bool train,
                            int64_t stage) {
    auto s = new_state(ctx, static_cast<int>(stage));
    s->causal = causal;
    auto dropped = dropout_into(attention_probs(q, k, causal), rate, train, *s);
    ctx->save_for_backward({q, k, v, std::exchange(s->mask, at::Tensor())});
    return at::matmul(dropped, v);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto s = take_state(ctx);
    auto saved = ctx->get_saved_variables();
    const at::Tensor &q = saved[0], &k = saved[1], &v = saved[2];
    s->mask = saved[3];
    AutocastRestore autocast(s->autocast);
    PartialRecompute span(s->stage);
    auto probs = attention_probs(q, k, s->causal);
    auto dropped = dropout_scale_mul(probs, *s);
    span.end();
    auto pv = product_backward(grads[0], dropped, v);
    dropped = at::Tensor();
    auto grad_probs = dropout_scale_mul(pv.a, *s).to(probs.scalar_type());
    auto grad_scores = at::_softmax_backward_data(grad_probs, probs, -1, probs.scalar_type());
    probs = at::Tensor();
    grad_scores.masked_fill_(s->causal, 0);
    auto qk = product_backward(grad_scores, q, k.transpose(-2, -1));
    return {qk.a, qk.b.transpose(-2, -1), pv.b, at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor()};
  }
};

// ---------------------------------------------------------------- grouped-query flash

#if TIDEMARK_HAVE_CPU_FLASH
// LibTorch's CPU flash kernel, causal, on q [B, H, T, D] and k, v at KV heads, repeated to H
// heads for the call only (block_ops::sdpa_attention says why).
struct FlashOut {
  at::Tensor out, stats;  // the output and the log-sum-exp per query and head
};

FlashOut flash_forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  const std::int64_t group = q.size(1) / k.size(1);
  auto [out, stats] = at::_scaled_dot_product_flash_attention_for_cpu(
      q, repeat_heads(k, group), repeat_heads(v, group), 0.0, /*is_causal=*/true, {}, /*scale=*/1.0);
  return {out, stats};
}

// The gradients of q, k and v (at KV heads: the repeat's backward, a sum over each head's
// group, as autograd's expand backward sums).
std::array<at::Tensor, 3> flash_backward(const at::Tensor& grad, const at::Tensor& q, const at::Tensor& k,
                                         const at::Tensor& v, const FlashOut& f) {
  const std::int64_t group = q.size(1) / k.size(1);
  auto [gq, gk, gv] = at::_scaled_dot_product_flash_attention_for_cpu_backward(
      grad, q, repeat_heads(k, group), repeat_heads(v, group), f.out, f.stats, 0.0, /*is_causal=*/true, {},
      /*scale=*/1.0);
  auto grouped = [&](const at::Tensor& g, const at::Tensor& like) {
    if (group == 1) return g;
    return g.reshape({like.size(0), like.size(1), group, like.size(2), like.size(3)}).sum(2);
  };
  return {gq, grouped(gk, k), grouped(gv, v)};
}

// The plain block's sdpa with grouped-query heads: keeps q, k and v at KV heads, the output and
// the statistics.
struct GroupedFlash : torch::autograd::Function<GroupedFlash> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
    auto f = flash_forward(q, k, v);
    ctx->save_for_backward({q, k, v, f.out, f.stats});
    return f.out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto g = flash_backward(grads[0], saved[0], saved[1], saved[2], {saved[3], saved[4]});
    return {g[0], g[1], g[2]};
  }
};
#endif

// attention-qkv: the attention kernel on q, k, v made from x, keeping x (and the kernel's
// output and statistics) instead of q, k, v. Backward rebuilds q, k, v with a graph of the
// plain ops and runs autograd through it, so their gradients to x and the projection's
// weights are the plain block's; only the kernel's backward is called directly.

struct QkvState : torch::CustomClassHolder {
  QkvSplit split;
  bool sdpa = false;
  bool recompute_norm = false;
  NormWeights norm;  // rms and eps; the weights are saved variables
  ChunkedReplay replay;
  AutocastState autocast;
  int stage = -1;
};

// The kernel's inputs as at::scaled_dot_product_attention's autocast policy gives them: the
// fused op below is called directly, past autocast.
std::array<at::Tensor, 3> sdpa_inputs(std::array<at::Tensor, 3> qkv) {
  const auto device = qkv[0].device().type();
  if (autocast_enabled(device)) {
    for (auto& t : qkv) {
      if (t.scalar_type() == at::kFloat) t = t.to(autocast_dtype(device));
    }
  }
  return qkv;
}

struct QkvAttention : torch::autograd::Function<QkvAttention> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& given_norm_weight,
                            const at::Tensor& given_norm_bias, const at::Tensor& w, const at::Tensor& given_b,
                            c10::intrusive_ptr<QkvState> s) {
    ctx->saved_data["state"] = c10::IValue::make_capsule(s);
    s->autocast = AutocastState::current();
    const at::Tensor norm_weight = or_undefined(given_norm_weight), norm_bias = or_undefined(given_norm_bias),
                     b = or_undefined(given_b);
    const at::Tensor h = s->recompute_norm ? norm_forward(x, {norm_weight, norm_bias, s->norm.rms, s->norm.eps}).out : x;
    auto qkv = s->split(at::linear(h, w, b));
    at::Tensor out, stats;
    if (s->sdpa) {
#if TIDEMARK_HAVE_CPU_FLASH
      qkv = sdpa_inputs(qkv);
      auto f = flash_forward(qkv[0], qkv[1], qkv[2]);
      out = f.out;
      stats = f.stats;
#endif
    } else {
      out = chunked_forward(qkv[0], qkv[1], qkv[2], s->replay);
    }
    ctx->save_for_backward({x, norm_weight, norm_bias, w, b, out, stats});
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto s = c10::static_intrusive_pointer_cast<QkvState>(ctx->saved_data["state"].toCapsule());
    ctx->saved_data.clear();
    auto saved = ctx->get_saved_variables();
    // Leaves of the rebuilt graph, one per input that wants a gradient.
    variable_list leaves(5);
    for (std::size_t i = 0; i < leaves.size(); ++i) {
      if (saved[i].defined() && ctx->needs_input_grad(i)) leaves[i] = saved[i].detach().requires_grad_(true);
    }
    auto input = [&](std::size_t i) { return leaves[i].defined() ? leaves[i] : saved[i]; };
    std::array<at::Tensor, 3> qkv, grad_qkv;
    {
      AutocastRestore autocast(s->autocast);
      {
        PartialRecompute span(s->stage);
        torch::AutoGradMode grad_mode(true);
        const at::Tensor h = s->recompute_norm ? norm(input(0), {input(1), input(2), s->norm.rms, s->norm.eps}) : input(0);
        qkv = s->split(at::linear(h, input(3), input(4)));
        if (s->sdpa) qkv = sdpa_inputs(qkv);
      }
      if (s->sdpa) {
#if TIDEMARK_HAVE_CPU_FLASH
        grad_qkv = flash_backward(grads[0], qkv[0], qkv[1], qkv[2], {saved[5], saved[6]});
#endif
      } else {
        grad_qkv = chunked_backward(grads[0], qkv[0], qkv[1], qkv[2], saved[5], s->replay);
      }
    }
    // Autograd through the rebuilt ops, outside autocast as the plain block's backward runs.
    variable_list wanted;
    for (const auto& l : leaves) {
      if (l.defined()) wanted.push_back(l);
    }
    variable_list result(6);
    if (wanted.empty()) return result;
    auto got = torch::autograd::grad({qkv[0], qkv[1], qkv[2]}, wanted, {grad_qkv[0], grad_qkv[1], grad_qkv[2]},
                                     /*retain_graph=*/false, /*create_graph=*/false, /*allow_unused=*/true);
    for (std::size_t i = 0, j = 0; i < leaves.size(); ++i) {
      if (leaves[i].defined()) result[i] = got[j++];
    }
    return result;
  }
};

// ---------------------------------------------------------------- MLP

// mlp-activation: second(activation(h)) keeping h only; backward re-applies the activation.
struct ActivationLinear : torch::autograd::Function<ActivationLinear> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& h, const at::Tensor& w, const at::Tensor& given_b,
                            int64_t act, int64_t stage) {
    const at::Tensor b = or_undefined(given_b);
    auto s = new_state(ctx, static_cast<int>(stage));
    s->act = static_cast<Activation>(act);
    s->has_bias = b.defined();
    ctx->save_for_backward({h, w});
    return at::linear(activation(h, s->act), w, b);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto s = take_state(ctx);
    auto saved = ctx->get_saved_variables();
    const at::Tensor &w = saved[1], h = saved[0].reshape({-1, saved[0].size(-1)});
    const at::Tensor g = grads[0].reshape({-1, grads[0].size(-1)});
    AutocastRestore autocast(s->autocast);
    LinearGrads out;
    // Whole, as the first projection's backward takes it; each range writes its rows.
    const at::Tensor grad_h = at::empty_like(h, at::MemoryFormat::Contiguous);
    for (const auto& [r, len] : token_ranges(h.size(0), h.size(1), w.size(0))) {
      const at::Tensor h_r = h.narrow(0, r, len);
      ActivationParts a;
      {
        PartialRecompute span(s->stage);
        a = activation_parts(h_r, s->act);
      }
      activation_linear_range_backward(grad_h.narrow(0, r, len), g.narrow(0, r, len), std::move(a), h_r, w,
                                       s->has_bias, s->act, out);
    }
    return {grad_h.view(saved[0].sizes()), out.weight, out.bias, at::Tensor(), at::Tensor()};
  }
};

// mlp-core: second(activation(first(u))) keeping u only; backward redoes first and the
// activation. With the norm variant, u = norm(x) and it keeps x and the norm's statistics
// instead, as NormLinear does.
struct MlpCore : torch::autograd::Function<MlpCore> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& given_norm_weight,
                            const at::Tensor& given_norm_bias, const at::Tensor& w1, const at::Tensor& given_b1,
                            const at::Tensor& w2, const at::Tensor& given_b2, int64_t act, bool rms, double eps,
                            int64_t stage) {
    const at::Tensor norm_weight = or_undefined(given_norm_weight), norm_bias = or_undefined(given_norm_bias),
                     b1 = or_undefined(given_b1), b2 = or_undefined(given_b2);
    auto s = new_state(ctx, static_cast<int>(stage));
    s->act = static_cast<Activation>(act);
    s->has_bias = b2.defined();
    s->norm = {at::Tensor(), at::Tensor(), rms, eps};
    NormOut o;
    if (norm_weight.defined()) o = norm_forward(x, {norm_weight, norm_bias, rms, eps});
    const at::Tensor& u = norm_weight.defined() ? o.out : x;
    ctx->save_for_backward({x, w1, b1, w2, norm_weight, norm_bias, o.mean, o.rstd});
    return at::linear(activation(at::linear(u, w1, b1), s->act), w2, b2);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto s = take_state(ctx);
    auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w1 = saved[1], &b1 = saved[2], &w2 = saved[3];
    const NormWeights n{saved[4], saved[5], s->norm.rms, s->norm.eps};
    const NormOut stats{at::Tensor(), saved[6], saved[7]};
    AutocastRestore autocast(s->autocast);
    const std::int64_t C = x.size(-1);
    const at::Tensor rows = x.reshape({-1, C}), g = grads[0].reshape({-1, grads[0].size(-1)});
    auto stat_rows = [&](const at::Tensor& t, std::int64_t r, std::int64_t len) {
      return t.defined() ? t.reshape({-1, 1}).narrow(0, r, len) : t;
    };
    LinearGrads first, second;
    NormGrads norm;  // weight and bias, summed over the ranges
    at::Tensor grad_x;
    for (const auto& [r, len] : token_ranges(rows.size(0), w1.size(0), C)) {
      const at::Tensor x_r = rows.narrow(0, r, len);
      const NormOut stats_r{at::Tensor(), stat_rows(stats.mean, r, len), stat_rows(stats.rstd, r, len)};
      at::Tensor u, h;
      ActivationParts a;
      {
        PartialRecompute span(s->stage);
        u = n.weight.defined() ? norm_rebuild(x_r, stats_r, n) : x_r;
        h = at::linear(u, w1, b1);
        a = activation_parts(h, s->act);
      }
      auto grad_h = at::empty_like(h, at::MemoryFormat::Contiguous);
      activation_linear_range_backward(grad_h, g.narrow(0, r, len), std::move(a), h, w2, s->has_bias, s->act, second);
      h = at::Tensor();
      auto grad_u = linear_range_backward(grad_h, u, w1, b1.defined(), first);
      grad_h = u = at::Tensor();
      if (n.weight.defined()) {
        auto ng = norm_backward(grad_u.to(x.scalar_type()), x_r, stats_r, n);
        accumulate(norm.weight, ng.weight);
        accumulate(norm.bias, ng.bias);
        grad_u = ng.input;
      }
      put_rows(grad_x, rows.size(0), r, grad_u);
    }
    return {grad_x.view(x.sizes()), norm.weight, norm.bias, first.weight, first.bias, second.weight, second.bias,
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// ---------------------------------------------------------------- attention output

// linear(merge_heads(heads), w, b) keeping the heads, not their merged copy: backward merges
// them again for the weight gradient.
struct MergedHeadsLinear : torch::autograd::Function<MergedHeadsLinear> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& heads, const at::Tensor& w,
                            const at::Tensor& given_b) {
    const at::Tensor b = or_undefined(given_b);
    auto s = new_state(ctx, -1);
    s->has_bias = b.defined();
    ctx->save_for_backward({heads, w});
    return at::linear(merge_heads(heads), w, b);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto s = take_state(ctx);
    auto saved = ctx->get_saved_variables();
    const at::Tensor &heads = saved[0], &w = saved[1];
    AutocastRestore autocast(s->autocast);
    auto out = linear_backward(grads[0], merge_heads(heads), w, s->has_bias);
    const std::int64_t B = heads.size(0), H = heads.size(1), T = heads.size(2), D = heads.size(3);
    auto grad_heads = out.input.view({B, T, H, D}).transpose(1, 2).to(heads.scalar_type());
    return {grad_heads, out.weight, out.bias};
  }
};

}  // namespace

namespace {

// A Function that rebuilds the norm keeps the norm's input and gets its weights; otherwise the
// norm runs before it as a plain op and it gets the norm's output, with empty weights.
struct NormArgs {
  at::Tensor input, weight, bias;
};

NormArgs norm_args(const at::Tensor& x, const NormWeights& n, bool rebuild_inside) {
  if (rebuild_inside) return {x, n.weight, or_empty(n.bias, x)};
  const at::Tensor none = x.new_empty({0});
  return {norm(x, n), none, none};
}

}  // namespace

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& causal, double p, bool train,
                        BlockVariant::Attention mode, int stage) {
  const bool dropout = train && p > 0.0;
  if (records_graph({q, k, v})) {
    if (mode == BlockVariant::Attention::Core) {
      return AttentionCore::apply(q, k, v, causal, p, train, static_cast<int64_t>(stage));
    }
    if (mode == BlockVariant::Attention::Dropout && dropout) {
      return DropoutProduct::apply(attention_probs(q, k, causal), v, p, static_cast<int64_t>(stage));
    }
  }
  return at::matmul(mask_dropout(attention_probs(q, k, causal), p, train), v);
}

torch::Tensor repeat_heads(const torch::Tensor& x, std::int64_t group) {
  if (group == 1) return x;
  const std::int64_t B = x.size(0), kv = x.size(1), T = x.size(2), D = x.size(3);
  return x.unsqueeze(2).expand({B, kv, group, T, D}).reshape({B, kv * group, T, D});
}

torch::Tensor sdpa_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double p,
                             bool train) {
  const bool dropout = train && p > 0.0;
#if TIDEMARK_HAVE_CPU_FLASH
  if (k.size(1) != q.size(1) && q.device().is_cpu() && !dropout && records_graph({q, k, v})) {
    const auto in = sdpa_inputs({q, k, v});
    return GroupedFlash::apply(in[0], in[1], in[2]);
  }
#endif
#if TIDEMARK_HAVE_SDPA
  const std::int64_t group = q.size(1) / k.size(1);
  return at::scaled_dot_product_attention(q, repeat_heads(k, group), repeat_heads(v, group), {},
                                          dropout ? p : 0.0, /*is_causal=*/true, /*scale=*/1.0);
#else
  TORCH_CHECK(false, "sdpa needs LibTorch 2.1 or later");
#endif
}

torch::Tensor qkv_attention(const std::string& kind, const torch::Tensor& x, const NormWeights& n,
                            BlockVariant::Norm norm_mode, const torch::Tensor& w, const torch::Tensor& b,
                            const QkvSplit& split, const torch::Tensor& causal, double p, bool train, int stage) {
  auto s = c10::make_intrusive<QkvState>();
  s->split = split;
  s->sdpa = kind == "sdpa";
  TORCH_CHECK(!s->sdpa || (TIDEMARK_HAVE_CPU_FLASH && x.device().is_cpu() && !(train && p > 0)),
              "attention-qkv with sdpa runs LibTorch's CPU flash kernel: CPU, no attention dropout");
  s->recompute_norm = norm_mode == BlockVariant::Norm::Recompute;
  s->norm = {at::Tensor(), at::Tensor(), n.rms, n.eps};
  s->replay = {{}, causal, p, train && p > 0.0};
  s->stage = stage;
  const auto in = norm_args(x, n, s->recompute_norm);
  return QkvAttention::apply(in.input, in.weight, in.bias, w, or_empty(b, w), s);
}

torch::Tensor merge_heads(const torch::Tensor& heads) {
  return heads.transpose(1, 2).reshape({heads.size(0), heads.size(2), heads.size(1) * heads.size(3)});
}

torch::Tensor merged_heads_linear(const torch::Tensor& heads, const torch::Tensor& w, const torch::Tensor& b) {
  // Where merging is a view (heads [B, T, H, D] in memory, as chunked attention returns
  // them), linear keeps that view, which is the kernel's own output: nothing to save.
  if (heads.transpose(1, 2).is_contiguous() || !records_graph({heads, w})) return at::linear(merge_heads(heads), w, b);
  return MergedHeadsLinear::apply(heads, w, or_empty(b, w));
}

torch::Tensor norm(const torch::Tensor& x, const NormWeights& n) {
  if (!n.rms) return at::layer_norm(x, {x.size(-1)}, n.weight, n.bias, n.eps);
  if (records_graph({x, n.weight})) return RmsNorm::apply(x, n.weight, n.eps);
  return norm_forward(x, n).out;
}

torch::Tensor norm_linear(const torch::Tensor& x, const NormWeights& n, const torch::Tensor& w,
                          const torch::Tensor& b, BlockVariant::Norm mode, int stage) {
  if (mode == BlockVariant::Norm::Recompute && records_graph({x, n.weight, w})) {
    return NormLinear::apply(x, n.weight, or_empty(n.bias, w), w, or_empty(b, w), n.rms, n.eps,
                             static_cast<int64_t>(stage));
  }
  return at::linear(norm(x, n), w, b);
}

torch::Tensor activation(const torch::Tensor& h, Activation act) { return activation_parts(h, act).out; }

torch::Tensor mlp(const torch::Tensor& x, const NormWeights& n, torch::nn::Linear& first,
                  torch::nn::Linear& second, Activation act, const BlockVariant& variant, int stage) {
  const auto act_code = static_cast<int64_t>(act);
  const bool records = records_graph({x, first->weight, second->weight});
  if (records && variant.mlp == BlockVariant::Mlp::Core) {
    const auto in = norm_args(x, n, variant.norm == BlockVariant::Norm::Recompute);
    return MlpCore::apply(in.input, in.weight, in.bias, first->weight, or_empty(first->bias, x), second->weight,
                          or_empty(second->bias, x), act_code, n.rms, n.eps, static_cast<int64_t>(stage));
  }
  auto h = norm_linear(x, n, first->weight, first->bias, variant.norm, stage);
  if (records && variant.mlp == BlockVariant::Mlp::Activation) {
    return ActivationLinear::apply(h, second->weight, or_empty(second->bias, x), act_code,
                                   static_cast<int64_t>(stage));
  }
  return second(activation(h, act));
}

}  // namespace block_ops
}  // namespace tidemark::runtime
