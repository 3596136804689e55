// Memory-efficient causal attention with ATen ops (Note [chunked attention] in block_ops.hpp).
// Sections: the blockwise loop shared by forward and backward; the autograd Function; the
// entry point.
#include <limits>

#include "autocast_state.hpp"
#include "block_ops.hpp"
#include "rng_state.hpp"

namespace tidemark::runtime::block_ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// ---------------------------------------------------------------- the blockwise loop

// Query block [i0, i1) attends to keys [0, i1) (causal: nothing after i1 - 1 is visible).
struct QueryBlock {
  std::int64_t i0, i1;
};

std::vector<QueryBlock> query_blocks(std::int64_t T) {
  std::vector<QueryBlock> out;
  for (std::int64_t i0 = 0; i0 < T; i0 += kAttentionBlock) out.push_back({i0, std::min(T, i0 + kAttentionBlock)});
  return out;
}

// Grouped-query attention without repeating k and v: q [B, H, T, D] is viewed as
// [B, KV, G, T, D] (query head h = kv·G + g uses key/value head kv) and k, v [B, KV, T, D]
// as [B, KV, 1, T, D], which matmul broadcasts over the G query heads of each group. With KV
// = H this is plain multi-head attention. The scores [B, KV, G, Tb, T] have the memory order
// of [B, H, Tb, T], so the dropout noise is drawn in the same order either way.
at::Tensor grouped(const at::Tensor& q, std::int64_t kv) {
  return q.view({q.size(0), kv, q.size(1) / kv, q.size(2), q.size(3)});
}
at::Tensor shared(const at::Tensor& k) { return k.unsqueeze(2); }

// The block's probabilities softmax(q_b·k_[0,i1)ᵀ masked), as the naive path computes them;
// q grouped, k shared, both 5-d.
at::Tensor block_probs(const at::Tensor& q, const at::Tensor& k, const at::Tensor& causal, const QueryBlock& b) {
  auto scores = at::matmul(q.slice(3, b.i0, b.i1), k.slice(3, 0, b.i1).transpose(-2, -1));
  scores.masked_fill_(causal.slice(0, b.i0, b.i1).slice(1, 0, b.i1), -std::numeric_limits<float>::infinity());
  return at::softmax(scores, -1);
}

// Dropout noise (0 or 1/(1-p)) for the block, drawn from the default generator; the same
// generator state gives the same noise, block after block.
at::Tensor block_noise(const at::Tensor& probs, double p) {
  return at::empty_like(probs).bernoulli_(1.0 - p).div_(1.0 - p);
}

// out[B, T, H, D] (contiguous: the layout the block merges heads from, so the merged heads
// share its storage) viewed as [B, H, T, D].
at::Tensor heads_view(const at::Tensor& out) { return out.permute({0, 2, 1, 3}); }

// Forward over every query block; `out` is allocated from the first block's result so that
// autocast's dtype carries over.
at::Tensor chunked_forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& causal,
                           double p, bool dropout) {
  const std::int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3), KV = k.size(1);
  const at::Tensor qg = grouped(q, KV), ks = shared(k), vs = shared(v);
  at::Tensor out;
  for (const QueryBlock& b : query_blocks(T)) {
    auto probs = block_probs(qg, ks, causal, b);
    if (dropout) probs.mul_(block_noise(probs, p));
    auto part = at::matmul(probs, vs.slice(3, 0, b.i1));
    probs = at::Tensor();
    if (!out.defined()) out = at::empty({B, T, H, D}, part.options());
    grouped(heads_view(out), KV).slice(3, b.i0, b.i1).copy_(part);
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------- forward and backward

at::Tensor chunked_forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, ChunkedReplay& r) {
  if (r.dropout) r.rng = take_rng(q.device());
  return chunked_forward(q, k, v, r.causal, r.p, r.dropout);
}

// Per query block: rebuild the probabilities (and the same dropout noise), then the softmax
// backward with the row sums rowsum(dO∘O), which equal rowsum(dP∘P) for the dropped-out P,
// so no T² tensor outlives its block.
std::array<at::Tensor, 3> chunked_backward(const at::Tensor& grad_out, const at::Tensor& q, const at::Tensor& k,
                                           const at::Tensor& v, const at::Tensor& out, const ChunkedReplay& r) {
  const std::int64_t KV = k.size(1);
  const at::Tensor grad_heads = heads_view(grad_out);
  const at::Tensor row = grouped((grad_heads * heads_view(out)).sum(-1, /*keepdim=*/true).to(q.scalar_type()), KV);
  const at::Tensor go_all = grouped(grad_heads, KV), qg = grouped(q, KV), ks = shared(k), vs = shared(v);
  auto dq = at::zeros_like(q), dk = at::zeros_like(k), dv = at::zeros_like(v);
  const at::Tensor dqg = grouped(dq, KV);
  // The forward's noise is drawn again from the forward's generator state; the state the
  // rest of the run sees is put back afterwards.
  RngSnapshot now;
  if (r.dropout) {
    now = take_rng(q.device());
    restore_rng(r.rng);
  }
  // k's and v's gradients sum over the G query heads that share them.
  auto add_shared = [](const at::Tensor& into, const at::Tensor& grad) {
    into.add_(grad.size(2) == 1 ? grad.squeeze(2) : grad.sum(2));
  };
  for (const QueryBlock& b : query_blocks(q.size(2))) {
    const at::Tensor qb = qg.slice(3, b.i0, b.i1), kb = ks.slice(3, 0, b.i1), vb = vs.slice(3, 0, b.i1);
    const at::Tensor go = go_all.slice(3, b.i0, b.i1).to(vb.scalar_type());
    auto probs = block_probs(qg, ks, r.causal, b);
    at::Tensor noise = r.dropout ? block_noise(probs, r.p) : at::Tensor();
    auto dropped = r.dropout ? probs * noise : probs;
    add_shared(dv.slice(2, 0, b.i1), at::matmul(dropped.transpose(-2, -1).to(go.scalar_type()), go));
    dropped = at::Tensor();
    auto grad_probs = at::matmul(go, vb.transpose(-2, -1)).to(probs.scalar_type());
    if (noise.defined()) grad_probs.mul_(noise);
    noise = at::Tensor();
    // softmax backward: P∘(dP - rowsum(dP∘P)); masked entries have P = 0.
    auto grad_scores = grad_probs.sub_(row.slice(3, b.i0, b.i1)).mul_(probs);
    probs = at::Tensor();
    dqg.slice(3, b.i0, b.i1).copy_(at::matmul(grad_scores.to(kb.scalar_type()), kb));
    add_shared(dk.slice(2, 0, b.i1), at::matmul(grad_scores.transpose(-2, -1).to(qb.scalar_type()), qb));
  }
  if (r.dropout) restore_rng(now);
  return {dq, dk, dv};
}

// ---------------------------------------------------------------- autograd Function

namespace {

struct ReplayCapsule : torch::CustomClassHolder {
  ChunkedReplay replay;
  AutocastState autocast;
};

struct ChunkedAttention : torch::autograd::Function<ChunkedAttention> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& causal, double p, bool dropout) {
    auto s = c10::make_intrusive<ReplayCapsule>();
    s->replay = {{}, causal, p, dropout};
    s->autocast = AutocastState::current();
    ctx->saved_data["state"] = c10::IValue::make_capsule(s);
    auto out = chunked_forward(q, k, v, s->replay);
    ctx->save_for_backward({q, k, v, out});
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto s = c10::static_intrusive_pointer_cast<ReplayCapsule>(ctx->saved_data["state"].toCapsule());
    ctx->saved_data.clear();
    auto saved = ctx->get_saved_variables();
    AutocastRestore autocast(s->autocast);
    auto g = chunked_backward(grads[0], saved[0], saved[1], saved[2], saved[3], s->replay);
    return {g[0], g[1], g[2], at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

// ---------------------------------------------------------------- entry point

torch::Tensor chunked_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                const torch::Tensor& causal, double p, bool train) {
  const bool dropout = train && p > 0.0;
  if (records_graph({q, k, v})) return ChunkedAttention::apply(q, k, v, causal, p, dropout);
  return chunked_forward(q, k, v, causal, p, dropout);
}

}  // namespace tidemark::runtime::block_ops
