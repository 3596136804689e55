// GPT model. Sections: dropout and the analytic saved-bytes count; Block; GPT (full forward,
// chain view).
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

std::uint64_t analytic_block_saved_bytes(const ModelConfig& c, const BlockVariant& variant) {
  const std::uint64_t B = c.batch, T = c.seq, C = c.d_model, H = c.heads;
  const std::uint64_t btc = B * T * C, bht2 = B * H * T * T, bt = B * T;
  const bool dropout = c.dropout > 0;
  std::uint64_t bytes = dropout ? 62 * btc + 9 * bht2 + 16 * bt : 60 * btc + 4 * bht2 + 16 * bt;
  if (c.attention == "chunked") {
    // Nothing T² is kept (Note [chunked attention]); with dropout, the generator states the
    // backward replays the noise from, as a checkpoint keeps them.
    bytes -= dropout ? 9 * bht2 : 4 * bht2;
    if (dropout) bytes += checkpoint_state_bytes(torch::Device(c.device));
  } else if (c.attention == "sdpa") {
    // The fused kernel (no dropout) keeps its output, head-major, of which the merged heads
    // are a copy, and a float log-sum-exp per query and head, instead of the probabilities.
    bytes = bytes - 4 * bht2 + 4 * btc + 4 * B * H * T;
  }
  // What each variant frees: Note [block variants].
  switch (variant.attention) {
    case BlockVariant::Attention::Dropout: bytes -= dropout ? 4 * bht2 : 0; break;
    case BlockVariant::Attention::Core: bytes -= dropout ? 8 * bht2 : 4 * bht2; break;
    case BlockVariant::Attention::Full: break;
  }
  switch (variant.mlp) {
    case BlockVariant::Mlp::Activation: bytes -= 16 * btc; break;
    case BlockVariant::Mlp::Core: bytes -= 32 * btc; break;
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

// ---------------------------------------------------------------- Block

BlockImpl::BlockImpl(const ModelConfig& c, torch::Tensor causal_mask)
    : heads_(c.heads), dropout_(c.dropout), attention_(c.attention), mask_(std::move(causal_mask)) {
  const std::int64_t C = c.d_model;
  ln1 = register_module("ln1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({C})));
  qkv = register_module("qkv", torch::nn::Linear(C, 3 * C));
  attn_out = register_module("attn_out", torch::nn::Linear(C, C));
  ln2 = register_module("ln2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({C})));
  fc = register_module("fc", torch::nn::Linear(C, 4 * C));
  fc_out = register_module("fc_out", torch::nn::Linear(4 * C, C));
  // GPT-2 initialisation; residual projections scaled by depth.
  const double residual_std = 0.02 / std::sqrt(2.0 * static_cast<double>(c.layers));
  init_linear(qkv, 0.02);
  init_linear(fc, 0.02);
  init_linear(attn_out, residual_std);
  init_linear(fc_out, residual_std);
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x) {
  if (should_checkpoint(*this)) {
    auto self = std::dynamic_pointer_cast<BlockImpl>(shared_from_this());
    return checkpoint([self](const torch::Tensor& in) { return self->forward_plain(in); }, x,
                      parameters(), checkpoint_options);
  }
  return forward_plain(x);
}

torch::Tensor BlockImpl::forward_plain(const torch::Tensor& x) { return forward_variant(x, {}, -1); }

torch::Tensor BlockImpl::forward_variant(const torch::Tensor& x, const BlockVariant& variant, int stage) {
  // Shapes and what each op keeps for backward: Note [saved bytes of a block]; what the
  // variants keep instead: Note [block variants].
  const std::int64_t B = x.size(0), T = x.size(1), C = x.size(2), H = heads_, D = C / H;
  const bool train = is_training();
  auto parts = qkv(ln1(x)).split(C, /*dim=*/2);
  // Contiguous head-major copies, so matmul saves exactly these and makes no hidden copies.
  auto q = parts[0].view({B, T, H, D}).transpose(1, 2).contiguous();
  auto k = parts[1].view({B, T, H, D}).transpose(1, 2).contiguous();
  auto v = parts[2].view({B, T, H, D}).transpose(1, 2).contiguous();
  q.mul_(1.0 / std::sqrt(static_cast<double>(D)));  // scale the small tensor, not the scores
  const torch::Tensor causal = mask_.slice(0, 0, T).slice(1, 0, T);
  torch::Tensor y;
  if (attention_ == "chunked") {
    y = block_ops::chunked_attention(q, k, v, causal, dropout_, train).view({B, T, C});
  } else if (attention_ == "sdpa") {
#if TIDEMARK_HAVE_SDPA
    auto heads = at::scaled_dot_product_attention(q, k, v, {}, train ? dropout_ : 0.0, /*is_causal=*/true,
                                                  /*scale=*/1.0);
    y = heads.transpose(1, 2).contiguous().view({B, T, C});
#endif
  } else {
    auto heads = block_ops::attention(q, k, v, causal, dropout_, train, variant.attention, stage);
    y = heads.transpose(1, 2).contiguous().view({B, T, C});
  }
  auto x1 = x + mask_dropout(attn_out(y), dropout_, train);
  return x1 + mask_dropout(block_ops::mlp(ln2(x1), fc, fc_out, variant.mlp, stage), dropout_, train);
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
  tok_emb = register_module("tok_emb", torch::nn::Embedding(c.vocab, C));
  pos_emb = register_module("pos_emb", torch::nn::Embedding(c.seq, C));
  positions_ = register_buffer("positions", torch::arange(c.seq, torch::kLong));
  mask_ = register_buffer("causal_mask",
                          torch::ones({c.seq, c.seq}, torch::kBool).triu(/*diagonal=*/1));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (std::int64_t i = 0; i < c.layers; ++i) blocks->push_back(Block(c, mask_));
  ln_f = register_module("ln_f", torch::nn::LayerNorm(torch::nn::LayerNormOptions({C})));
  lm_head = register_module("lm_head", torch::nn::Linear(torch::nn::LinearOptions(C, c.vocab).bias(false)));
  {
    torch::NoGradGuard guard;
    tok_emb->weight.normal_(0.0, 0.02);
    pos_emb->weight.normal_(0.0, 0.02);
    lm_head->weight.normal_(0.0, 0.02);
  }
}

std::int64_t GPTImpl::parameter_count() {
  std::int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

torch::Tensor GPTImpl::embed(const torch::Tensor& idx) {
  const std::int64_t T = idx.size(1);
  auto x = tok_emb(idx) + pos_emb(positions_.slice(0, 0, T));
  return mask_dropout(x, config_.dropout, is_training());
}

torch::Tensor GPTImpl::head_loss(const torch::Tensor& x, const torch::Tensor& targets) {
  auto logits = lm_head(ln_f(x));
  return torch::nn::functional::cross_entropy(logits.view({-1, logits.size(-1)}),
                                              targets.reshape({-1}));
}

torch::Tensor GPTImpl::forward(const torch::Tensor& idx, const torch::Tensor& targets) {
  auto x = embed(idx);
  for (const auto& b : *blocks) x = b->as<BlockImpl>()->forward(x);
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

torch::Tensor GPTImpl::run_stage(int k, const torch::Tensor& input, const StageContext& ctx,
                                 const std::string& variant) {
  const bool block = is_block(k);
  auto parsed = BlockVariant::parse(variant);
  TORCH_CHECK(parsed && (block || parsed->is_full()) &&
                  (config_.attention == "naive" || parsed->attention == BlockVariant::Attention::Full),
              "GPT stage ", stage_name(k), " has no variant '", variant, "'");
  if (k == 0) return embed(input);
  if (!block) return head_loss(input, ctx.targets);
  return blocks[k - 1]->as<BlockImpl>()->forward_variant(input, *parsed, k);
}

std::vector<std::string> GPTImpl::stage_variants(int k) const {
  std::vector<std::string> out;
  if (!is_block(k)) return out;
  for (const auto& v : BlockVariant::all(config_.dropout > 0)) {
    // The attention variants rebuild T² tensors that chunked and sdpa attention never keep.
    if (config_.attention != "naive" && v.attention != BlockVariant::Attention::Full) continue;
    out.push_back(v.name());
  }
  return out;
}

std::vector<torch::Tensor> GPTImpl::stage_parameters(int k) {
  if (k == 0) {
    return {tok_emb->weight, pos_emb->weight};
  }
  if (k == num_stages() - 1) {
    auto p = ln_f->parameters();
    p.push_back(lm_head->weight);
    return p;
  }
  return blocks[k - 1]->parameters();
}

}  // namespace tidemark::runtime
