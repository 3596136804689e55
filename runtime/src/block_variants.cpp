// Block variants (Note [block variants]): names, and the autograd Functions that keep less
// and recompute in backward. Sections: names; shared pieces; attention; MLP.
//
// Each backward mirrors, kernel for kernel, what autograd runs for the plain ops (linear on a
// contiguous 3-D input is addmm on the folded input; matmul of 4-D tensors is bmm on the
// folded batch; softmax, masked_fill_, native_dropout and gelu backward by their ATen
// formulas), so gradients equal the plain block's.
#include "tidemark/runtime/block_variants.hpp"

#include <limits>

#include "autocast_state.hpp"
#include "block_ops.hpp"
#include "tidemark/profiler/stage_observer.hpp"
#include "tidemark/runtime/gpt.hpp"

namespace tidemark::runtime {

// ---------------------------------------------------------------- names

namespace {

const char* attention_name(BlockVariant::Attention a) {
  switch (a) {
    case BlockVariant::Attention::Dropout: return "attention-dropout";
    case BlockVariant::Attention::Core: return "attention-core";
    case BlockVariant::Attention::Full: break;
  }
  return "";
}

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
                                                  BlockVariant::Attention::Core};
constexpr BlockVariant::Mlp kMlp[] = {BlockVariant::Mlp::Full, BlockVariant::Mlp::Activation,
                                      BlockVariant::Mlp::Core};

}  // namespace

std::string BlockVariant::name() const {
  std::string a = attention_name(attention), m = mlp_name(mlp);
  if (a.empty()) return m;
  return m.empty() ? a : a + "+" + m;
}

std::optional<BlockVariant> BlockVariant::parse(const std::string& name) {
  if (name.empty() || name == "full") return BlockVariant{};
  for (auto a : kAttention) {
    for (auto m : kMlp) {
      BlockVariant v{a, m};
      if (v.name() == name) return v;
    }
  }
  return std::nullopt;
}

std::vector<BlockVariant> BlockVariant::all(bool dropout) {
  std::vector<BlockVariant> out;
  for (auto a : kAttention) {
    if (a == Attention::Dropout && !dropout) continue;
    for (auto m : kMlp) {
      BlockVariant v{a, m};
      if (!v.is_full()) out.push_back(v);
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
  at::Tensor mask;    // dropout mask; undefined without dropout
  double scale = 1.0;  // dropout scale 1/(1-p)
  int stage = -1;
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

// Gradients of linear(x, w, b) on a contiguous x: addmm's backward on the folded input.
LinearGrads linear_backward(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& w,
                            bool has_bias) {
  auto g = grad.reshape({-1, grad.size(-1)});
  LinearGrads out;
  out.input = g.mm(w).view(x.sizes());
  out.weight = g.t().mm(x.reshape({-1, x.size(-1)}));
  if (has_bias) out.bias = g.sum(0);
  return out;
}

// Gradients of linear(gelu(h), w, b) given the rebuilt GELU output g, which it releases as
// soon as the weight gradient has it: `input` is the gradient of h.
LinearGrads gelu_linear_backward(const at::Tensor& grad, at::Tensor g, const at::Tensor& h,
                                 const at::Tensor& w, bool has_bias) {
  LinearGrads out = linear_backward(grad, g, w, has_bias);
  g = at::Tensor();
  out.input = at::gelu_backward(out.input.to(h.scalar_type()), h);
  return out;
}

// ---------------------------------------------------------------- attention

// attention-dropout: P·V where the dropped-out P is rebuilt in backward from P and the mask.
struct DropoutProduct : torch::autograd::Function<DropoutProduct> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& probs, const at::Tensor& v,
                            double rate, int64_t stage) {
    auto s = new_state(ctx, static_cast<int>(stage));
    auto dropped = dropout_into(probs, rate, true, *s);
    ctx->save_for_backward({probs, v});
    return at::matmul(dropped, v);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto s = take_state(ctx);
    auto saved = ctx->get_saved_variables();
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
    ctx->save_for_backward({q, k, v});
    return at::matmul(dropped, v);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto s = take_state(ctx);
    auto saved = ctx->get_saved_variables();
    const at::Tensor &q = saved[0], &k = saved[1], &v = saved[2];
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

// ---------------------------------------------------------------- MLP

// mlp-activation: fc_out(gelu(h)) keeping h only; backward re-applies the GELU.
struct GeluLinear : torch::autograd::Function<GeluLinear> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& h, const at::Tensor& w,
                            const at::Tensor& b, int64_t stage) {
    new_state(ctx, static_cast<int>(stage));
    ctx->save_for_backward({h, w});
    ctx->saved_data["bias"] = b.defined();
    return at::linear(at::gelu(h), w, b);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const bool has_bias = ctx->saved_data["bias"].toBool();
    auto s = take_state(ctx);
    auto saved = ctx->get_saved_variables();
    const at::Tensor &h = saved[0], &w = saved[1];
    AutocastRestore autocast(s->autocast);
    PartialRecompute span(s->stage);
    auto g = at::gelu(h);
    span.end();
    auto out = gelu_linear_backward(grads[0], std::move(g), h, w, has_bias);
    return {out.input, out.weight, out.bias, at::Tensor()};
  }
};

// mlp-core: fc_out(gelu(fc(u))) keeping u only; backward redoes fc and the GELU.
struct MlpCore : torch::autograd::Function<MlpCore> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& u, const at::Tensor& w1,
                            const at::Tensor& b1, const at::Tensor& w2, const at::Tensor& b2,
                            int64_t stage) {
    new_state(ctx, static_cast<int>(stage));
    ctx->save_for_backward({u, w1, b1, w2});
    ctx->saved_data["bias"] = b2.defined();
    return at::linear(at::gelu(at::linear(u, w1, b1)), w2, b2);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const bool has_bias = ctx->saved_data["bias"].toBool();
    auto s = take_state(ctx);
    auto saved = ctx->get_saved_variables();
    const at::Tensor &u = saved[0], &w1 = saved[1], &b1 = saved[2], &w2 = saved[3];
    AutocastRestore autocast(s->autocast);
    PartialRecompute span(s->stage);
    auto h = at::linear(u, w1, b1);
    auto g = at::gelu(h);
    span.end();
    auto out = gelu_linear_backward(grads[0], std::move(g), h, w2, has_bias);
    h = at::Tensor();
    auto in = linear_backward(out.input, u, w1, b1.defined());
    return {in.input, in.weight, in.bias, out.weight, out.bias, at::Tensor()};
  }
};

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

torch::Tensor mlp(const torch::Tensor& u, torch::nn::Linear& fc, torch::nn::Linear& fc_out,
                  BlockVariant::Mlp mode, int stage) {
  if (records_graph({u, fc->weight, fc_out->weight})) {
    if (mode == BlockVariant::Mlp::Activation) {
      return GeluLinear::apply(fc(u), fc_out->weight, fc_out->bias, static_cast<int64_t>(stage));
    }
    if (mode == BlockVariant::Mlp::Core) {
      return MlpCore::apply(u, fc->weight, fc->bias, fc_out->weight, fc_out->bias,
                            static_cast<int64_t>(stage));
    }
  }
  return fc_out(torch::gelu(fc(u)));
}

}  // namespace block_ops
}  // namespace tidemark::runtime
