// tidemark's model. Sections: dropout and the analytic saved-bytes count; pieces both blocks
// share; RMSNorm; gpt block; llama block; GPT (full forward, chain view).
#include "tidemark/runtime/gpt.hpp"

#include <cmath>
#include <fmt/format.h>
#include <limits>

#include "block_ops.hpp"
#include "tidemark/core/error.hpp"

namespace tidemark::runtime {

// ---------------------------------------------------------------- helpers

torch::Tensor mask_dropout(const torch::Tensor& x, double p, bool train) {
  if (!train || p <= 0.0) return x;
  return std::get<0>(at::native_dropout(x, p, true));
}

std::string best_attention(const ModelConfig& c) {
  if (TIDEMARK_HAVE_SDPA && (c.device == "cuda" || c.dropout <= 0)) return "sdpa";
  // Chunked attention keeps no T² tensor at any length, but its blockwise loop and the
  // rebuild in backward cost time on short sequences: measured on LibTorch 1.13 (README,
  // "Attention kinds"), ×1.10 the naive step at sequence 256, ×0.97 at 1024, ×0.59 at 2048.
  return c.seq >= kChunkedFrom ? "chunked" : "naive";
}

std::uint64_t analytic_block_saved_bytes(const ModelConfig& c, const BlockVariant& variant) {
  const std::uint64_t B = c.batch, T = c.seq, C = c.d_model, H = c.heads, F = c.mlp_hidden();
  const std::uint64_t btc = B * T * C, bht2 = B * H * T * T, bt = B * T, btf = B * T * F;
  const bool dropout = c.dropout > 0, llama = c.arch == "llama";
  // What the MLP keeps past its input (Note [saved bytes of a block]): gpt's fc and GELU
  // outputs, llama's gate/up outputs, SiLU output and SwiGLU product.
  const std::uint64_t mlp = (llama ? 16 : 8) * btf;
  std::uint64_t bytes = (dropout ? 30 * btc + 9 * bht2 : 28 * btc + 4 * bht2) + mlp + (llama ? 8 : 16) * bt;
  if (c.attention == "chunked") {
    // Nothing T² is kept (Note [chunked attention]); with dropout, the generator states the
    // backward replays the noise from, as a checkpoint keeps them.
    bytes -= dropout ? 9 * bht2 : 4 * bht2;
    if (dropout) bytes += checkpoint_state_bytes(torch::Device(c.device));
  } else if (c.attention == "sdpa") {
    // The fused kernel (no dropout on the CPU) keeps its output, which stands for the merged
    // heads (block_ops::merged_heads_linear), and a float log-sum-exp per query and head,
    // instead of the probabilities.
    bytes = bytes - 4 * bht2 + 4 * B * H * T;
  }
  // Grouped-query k and v stay at their KV heads where the kernel lets them (chunked's own,
  // the CPU's flash kernel through block_ops::sdpa_attention).
  const bool grouped_kv = llama && (c.attention == "chunked" || runs_cpu_flash(c));
  const std::uint64_t KV = grouped_kv ? c.key_value_heads() : H;
  bytes -= 8 * B * T * (C / H) * (H - KV);
  // What each variant frees: Note [block variants].
  switch (variant.attention) {
    case BlockVariant::Attention::Dropout: bytes -= dropout ? 4 * bht2 : 0; break;
    case BlockVariant::Attention::Core: bytes -= dropout ? 8 * bht2 : 4 * bht2; break;
    case BlockVariant::Attention::Qkv:
      // q, and k and v at the heads the kernel keeps them at.
      bytes -= 4 * btc + 8 * B * T * (C / H) * KV;
      break;
    case BlockVariant::Attention::Full: break;
  }
  if (variant.norm == BlockVariant::Norm::Recompute) {
    bytes -= 8 * btc;
    // attention-qkv rebuilds the first norm from its input alone, so its statistics go too.
    if (variant.attention == BlockVariant::Attention::Qkv) bytes -= (llama ? 4 : 8) * bt;
  }
  switch (variant.mlp) {
    case BlockVariant::Mlp::Activation: bytes -= mlp / 2; break;
    case BlockVariant::Mlp::Core: bytes -= mlp; break;
    case BlockVariant::Mlp::Full: break;
  }
  return bytes;
}

namespace {

void init_linear(torch::nn::Linear& l, double std) {
  torch::NoGradGuard guard;
  l->weight.normal_(0.0, std);
  if (l->bias.defined()) l->bias.zero_();
}

}  // namespace

namespace {

// A block's forward, checkpointed HF-style when gradient checkpointing is on.
template <typename Impl>
torch::Tensor checkpointed_forward(Impl& self, const torch::Tensor& x) {
  if (self.should_checkpoint(self)) {
    auto shared = std::dynamic_pointer_cast<Impl>(self.shared_from_this());
    return checkpoint([shared](const torch::Tensor& in) { return shared->forward_variant(in, {}, -1); }, x,
                      self.parameters(), self.checkpoint_options);
  }
  return self.forward_variant(x, {}, -1);
}

// The attention half's output before its residual dropout: norm, qkv projection (w, b),
// `split` into q ([B, H, T, D], already scaled), k and v ([B, KV, T, D]: fewer heads than q
// for llama's chunked and sdpa, H for naive), attention as the config's kind computes it,
// heads merged, through the out-projection.
torch::Tensor attend(const std::string& kind, const torch::Tensor& x, const block_ops::NormWeights& n,
                     const torch::Tensor& w, const torch::Tensor& b, const block_ops::QkvSplit& split,
                     const torch::Tensor& mask, double dropout, bool train, const BlockVariant& variant, int stage,
                     torch::nn::Linear& out) {
  const std::int64_t T = x.size(1);
  const torch::Tensor causal = mask.slice(0, 0, T).slice(1, 0, T);
  auto merged = [&](const torch::Tensor& heads) {  // chunked's [B, T, H, D]: a view of what its Function keeps
    return out(heads.view({heads.size(0), heads.size(1), heads.size(2) * heads.size(3)}));
  };
  if (variant.attention == BlockVariant::Attention::Qkv && block_ops::records_graph({x, w})) {
    auto heads = block_ops::qkv_attention(kind, x, n, variant.norm, w, b, split, causal, dropout, train, stage);
    return kind == "chunked" ? merged(heads) : block_ops::merged_heads_linear(heads, out->weight, out->bias);
  }
  const auto qkv = split(block_ops::norm_linear(x, n, w, b, variant.norm, stage));
  const torch::Tensor &q = qkv[0], &k = qkv[1], &v = qkv[2];
  if (kind == "chunked") return merged(block_ops::chunked_attention(q, k, v, causal, dropout, train));
  if (kind == "sdpa") {
    return block_ops::merged_heads_linear(block_ops::sdpa_attention(q, k, v, dropout, train), out->weight, out->bias);
  }
  return out(block_ops::merge_heads(block_ops::attention(q, k, v, causal, dropout, train, variant.attention, stage)));
}

}  // namespace

// ---------------------------------------------------------------- RMSNorm

RMSNormImpl::RMSNormImpl(std::int64_t dim, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) { return block_ops::norm(x, {weight, {}, true, eps}); }

namespace {

block_ops::NormWeights norm_weights(const torch::nn::LayerNorm& n) {
  return {n->weight, n->bias, false, n->options.eps()};
}

block_ops::NormWeights norm_weights(const RMSNorm& n) { return {n->weight, {}, true, n->eps}; }

// GPT-2's initialisation, which LLaMA keeps: N(0, 0.02), the projections back into the
// residual stream scaled down by depth.
void init_block(const ModelConfig& c, torch::nn::Linear& qkv, torch::nn::Linear& mlp_in, torch::nn::Linear& attn_out,
                torch::nn::Linear& mlp_out) {
  const double residual_std = 0.02 / std::sqrt(2.0 * static_cast<double>(c.layers));
  init_linear(qkv, 0.02);
  init_linear(mlp_in, 0.02);
  init_linear(attn_out, residual_std);
  init_linear(mlp_out, residual_std);
}

}  // namespace

// ---------------------------------------------------------------- gpt block

BlockImpl::BlockImpl(const ModelConfig& c, torch::Tensor causal_mask)
    : heads_(c.heads), dropout_(c.dropout), attention_(c.attention), mask_(std::move(causal_mask)) {
  const std::int64_t C = c.d_model;
  ln1 = register_module("ln1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({C})));
  qkv = register_module("qkv", torch::nn::Linear(C, 3 * C));
  attn_out = register_module("attn_out", torch::nn::Linear(C, C));
  ln2 = register_module("ln2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({C})));
  fc = register_module("fc", torch::nn::Linear(C, c.mlp_hidden()));
  fc_out = register_module("fc_out", torch::nn::Linear(c.mlp_hidden(), C));
  init_block(c, qkv, fc, attn_out, fc_out);
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x) { return checkpointed_forward(*this, x); }

torch::Tensor BlockImpl::forward_variant(const torch::Tensor& x, const BlockVariant& variant, int stage) {
  // Shapes and what each op keeps for backward: Note [saved bytes of a block]; what the
  // variants keep instead: Note [block variants].
  const std::int64_t B = x.size(0), T = x.size(1), C = x.size(2), H = heads_, D = C / H;
  const bool train = is_training();
  auto split = [=](const torch::Tensor& qkv) -> std::array<torch::Tensor, 3> {
    auto parts = qkv.split(C, 2);
    // Contiguous head-major copies, so matmul saves exactly these and makes no hidden copies.
    auto q = parts[0].view({B, T, H, D}).transpose(1, 2).contiguous();
    auto k = parts[1].view({B, T, H, D}).transpose(1, 2).contiguous();
    auto v = parts[2].view({B, T, H, D}).transpose(1, 2).contiguous();
    q.mul_(1.0 / std::sqrt(static_cast<double>(D)));  // scale the small tensor, not the scores
    return {q, k, v};
  };
  auto attn = attend(attention_, x, norm_weights(ln1), qkv->weight, qkv->bias, split, mask_, dropout_, train, variant,
                     stage, attn_out);
  auto x1 = x + mask_dropout(attn, dropout_, train);
  return x1 + mask_dropout(block_ops::mlp(x1, norm_weights(ln2), fc, fc_out, block_ops::Activation::Gelu, variant, stage),
                           dropout_, train);
}

// ---------------------------------------------------------------- llama block

namespace {

// Rotary embedding of x ([B, heads, T, D]) with the tables' first T rows, as HF's
// apply_rotary_pos_emb: x·cos + rotate_half(x)·sin, rotate_half(x) = [-x2, x1]. Multiplying
// by the tables keeps only the tables for backward.
torch::Tensor rotate(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const std::int64_t T = x.size(2), half = x.size(3) / 2;
  auto halves = x.split(half, -1);
  auto rotated_half = torch::cat({-halves[1], halves[0]}, -1);
  return x * cos.slice(0, 0, T) + rotated_half * sin.slice(0, 0, T);
}

}  // namespace

LlamaBlockImpl::LlamaBlockImpl(const ModelConfig& c, torch::Tensor causal_mask, torch::Tensor cos, torch::Tensor sin)
    : heads_(c.heads),
      kv_heads_(c.key_value_heads()),
      dropout_(c.dropout),
      attention_(c.attention),
      mask_(std::move(causal_mask)),
      cos_(std::move(cos)),
      sin_(std::move(sin)) {
  const std::int64_t C = c.d_model, D = C / c.heads, F = c.mlp_hidden();
  auto linear = [](std::int64_t in, std::int64_t out) {
    return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false));
  };
  attn_norm = register_module("attn_norm", RMSNorm(C));
  qkv = register_module("qkv", linear(C, C + 2 * kv_heads_ * D));
  attn_out = register_module("attn_out", linear(C, C));
  mlp_norm = register_module("mlp_norm", RMSNorm(C));
  gate_up = register_module("gate_up", linear(C, 2 * F));
  down = register_module("down", linear(F, C));
  init_block(c, qkv, gate_up, attn_out, down);
}

torch::Tensor LlamaBlockImpl::forward(const torch::Tensor& x) { return checkpointed_forward(*this, x); }

torch::Tensor LlamaBlockImpl::forward_variant(const torch::Tensor& x, const BlockVariant& variant, int stage) {
  // Note [saved bytes of a block]; Note [block variants].
  const std::int64_t B = x.size(0), T = x.size(1), C = x.size(2), H = heads_, KV = kv_heads_, D = C / H;
  const bool train = is_training();
  // Chunked and sdpa attention take k and v at KV heads and keep them so where they can
  // (block_ops::sdpa_attention); naive gets them repeated to H heads, as HF's repeat_kv does.
  const std::int64_t group = attention_ == "naive" ? H / KV : 1;
  auto split = [=, cos = cos_, sin = sin_](const torch::Tensor& qkv) -> std::array<torch::Tensor, 3> {
    auto parts = qkv.split({C, KV * D, KV * D}, 2);
    auto heads = [&](const torch::Tensor& t, std::int64_t n) { return t.view({B, T, n, D}).transpose(1, 2); };
    auto q = rotate(heads(parts[0], H), cos, sin).contiguous();
    auto k = block_ops::repeat_heads(rotate(heads(parts[1], KV), cos, sin), group).contiguous();
    auto v = block_ops::repeat_heads(heads(parts[2], KV), group).contiguous();
    q.mul_(1.0 / std::sqrt(static_cast<double>(D)));
    return {q, k, v};
  };
  auto attn = attend(attention_, x, norm_weights(attn_norm), qkv->weight, {}, split, mask_, dropout_, train, variant,
                     stage, attn_out);
  auto x1 = x + mask_dropout(attn, dropout_, train);
  return x1 + mask_dropout(block_ops::mlp(x1, norm_weights(mlp_norm), gate_up, down, block_ops::Activation::SwiGLU,
                                          variant, stage),
                           dropout_, train);
}

// ---------------------------------------------------------------- GPT

GPTImpl::GPTImpl(const ModelConfig& c) : config_(c) {
  c.validate();
#if !TIDEMARK_HAVE_SDPA
  if (c.attention == "sdpa") {
    throw UserError(fmt::format("--attention sdpa needs LibTorch 2.1 or later (at::scaled_dot_product_attention); "
                                "this build has LibTorch {}: use --attention chunked, which keeps no T² tensor either",
                                TORCH_VERSION));
  }
#endif
  const std::int64_t C = c.d_model;
  const bool llama = c.arch == "llama";
  tok_emb = register_module("tok_emb", torch::nn::Embedding(c.vocab, C));
  if (!llama) {
    pos_emb = register_module("pos_emb", torch::nn::Embedding(c.seq, C));
    positions_ = register_buffer("positions", torch::arange(c.seq, torch::kLong));
  }
  mask_ = register_buffer("causal_mask",
                          torch::ones({c.seq, c.seq}, torch::kBool).triu(/*diagonal=*/1));
  if (llama) {
    // Rotary tables as LLaMA builds them: position t turns dimension pair (i, i + D/2) by
    // t·10000^(-2i/D).
    const std::int64_t D = C / c.heads;
    auto inv_freq = torch::pow(10000.0, -torch::arange(0, D, 2, torch::kDouble) / static_cast<double>(D));
    auto angles = torch::outer(torch::arange(c.seq, torch::kDouble), inv_freq);
    auto table = torch::cat({angles, angles}, -1);
    cos_ = register_buffer("rotary_cos", table.cos().to(torch::kFloat));
    sin_ = register_buffer("rotary_sin", table.sin().to(torch::kFloat));
  }
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (std::int64_t i = 0; i < c.layers; ++i) {
    if (llama) {
      blocks->push_back(LlamaBlock(c, mask_, cos_, sin_));
    } else {
      blocks->push_back(Block(c, mask_));
    }
  }
  if (llama) {
    norm_f = register_module("norm_f", RMSNorm(C));
  } else {
    ln_f = register_module("ln_f", torch::nn::LayerNorm(torch::nn::LayerNormOptions({C})));
  }
  lm_head = register_module("lm_head", torch::nn::Linear(torch::nn::LinearOptions(C, c.vocab).bias(false)));
  {
    torch::NoGradGuard guard;
    tok_emb->weight.normal_(0.0, 0.02);
    if (pos_emb) pos_emb->weight.normal_(0.0, 0.02);
    lm_head->weight.normal_(0.0, 0.02);
  }
}

DecoderBlock& GPTImpl::block(std::int64_t i) { return dynamic_cast<DecoderBlock&>(*blocks[static_cast<std::size_t>(i)]); }

std::int64_t GPTImpl::parameter_count() {
  std::int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

torch::Tensor GPTImpl::embed(const torch::Tensor& idx) {
  const std::int64_t T = idx.size(1);
  auto x = pos_emb ? tok_emb(idx) + pos_emb(positions_.slice(0, 0, T)) : tok_emb(idx);
  return mask_dropout(x, config_.dropout, is_training());
}

torch::Tensor GPTImpl::head_loss(const torch::Tensor& x, const torch::Tensor& targets) {
  auto logits = lm_head(norm_f ? norm_f(x) : ln_f(x));
  return torch::nn::functional::cross_entropy(logits.view({-1, logits.size(-1)}),
                                              targets.reshape({-1}));
}

torch::Tensor GPTImpl::forward(const torch::Tensor& idx, const torch::Tensor& targets) {
  auto x = embed(idx);
  for (std::int64_t i = 0; i < config_.layers; ++i) x = block(i).forward(x);
  return head_loss(x, targets);
}

int GPTImpl::num_stages() const { return static_cast<int>(config_.layers + 2); }

std::string GPTImpl::stage_name(int k) const {
  if (k == 0) return "embedding";
  if (k == num_stages() - 1) return "head";
  return fmt::format("block.{}", k - 1);
}

bool GPTImpl::is_block(int k) const { return k > 0 && k < num_stages() - 1; }

std::string GPTImpl::stage_kind(int k) const {
  if (k == 0) return "embedding";
  if (k == num_stages() - 1) return "head";
  return "block";
}

Activations GPTImpl::run_stage(int k, const Activations& inputs, const StageContext& ctx,
                               const std::string& variant) {
  const bool is_block_stage = is_block(k);
  auto parsed = BlockVariant::parse(variant);
  TORCH_CHECK(parsed && (is_block_stage || parsed->is_full()) && BlockVariant::has(config_, parsed->attention),
              "GPT stage ", stage_name(k), " has no variant '", variant, "'");
  TORCH_CHECK(inputs.size() == 1, "GPT stage ", stage_name(k), " takes one tensor, got ", inputs.size());
  const torch::Tensor& input = inputs[0];
  if (k == 0) return {embed(input)};
  if (!is_block_stage) return {head_loss(input, ctx.targets)};
  return {block(k - 1).forward_variant(input, *parsed, k)};
}

std::vector<std::string> GPTImpl::stage_variants(int k) const {
  std::vector<std::string> out;
  if (!is_block(k)) return out;
  for (const auto& v : BlockVariant::all(config_)) out.push_back(v.name());
  return out;
}

std::vector<torch::Tensor> GPTImpl::stage_parameters(int k) {
  if (k == 0) {
    if (!pos_emb) return {tok_emb->weight};
    return {tok_emb->weight, pos_emb->weight};
  }
  if (k == num_stages() - 1) {
    auto p = norm_f ? norm_f->parameters() : ln_f->parameters();
    p.push_back(lm_head->weight);
    return p;
  }
  return blocks[k - 1]->parameters();
}

}  // namespace tidemark::runtime
