// The llama arch (issue: modern blocks): its shapes, RMSNorm's hand-written backward, training,
// and the refusals of configurations it cannot run.
#include "catch.hpp"
#include "common/configs.hpp"
#include "grads.hpp"
#include "tidemark/core/error.hpp"
#include "tidemark/runtime/gpt.hpp"
#include "tidemark/runtime/trainer.hpp"

using namespace tidemark;
using namespace tidemark::runtime;

namespace {

ModelConfig llama_config(std::int64_t d_model, std::int64_t heads, std::int64_t kv_heads) {
  return testing::as_llama(testing::gpt_config(2, d_model, heads, 16, 2, 0.1), kv_heads);
}

}  // namespace

TEST_CASE("a llama block has grouped-query projections, a SwiGLU MLP and no biases", "[torch][llama]") {
  const ModelConfig c = llama_config(64, 8, 2);
  GPT model(c);
  const std::int64_t D = 64 / 8;
  auto& block = dynamic_cast<LlamaBlockImpl&>(model->block(0));
  CHECK(block.qkv->weight.sizes() == torch::IntArrayRef({64 + 2 * 2 * D, 64}));
  CHECK(c.mlp_hidden() == 256);  // 8/3 * 64 = 170, rounded up to 256
  CHECK(block.gate_up->weight.sizes() == torch::IntArrayRef({2 * 256, 64}));
  CHECK(block.down->weight.sizes() == torch::IntArrayRef({64, 256}));
  for (const auto& p : model->named_parameters()) {
    INFO(p.key());
    CHECK(p.key().find("bias") == std::string::npos);
  }
  CHECK_FALSE(model->pos_emb);  // positions come from the rotary embeddings
  CHECK(model->lm_head->weight.data_ptr() != model->tok_emb->weight.data_ptr());  // untied
  ModelConfig wide = c;
  wide.d_model = 4096;
  wide.heads = 32;
  CHECK(wide.mlp_hidden() == 11008);  // LLaMA-7B's
}

TEST_CASE("RMSNorm's backward equals autograd's through the composite ops", "[torch][llama]") {
  torch::manual_seed(5);
  RMSNorm norm(24);
  {
    torch::NoGradGuard guard;
    norm->weight.uniform_(0.5, 1.5);
  }
  auto x = torch::randn({3, 7, 24}, torch::requires_grad());
  auto g = torch::randn({3, 7, 24});
  auto y = norm(x);
  auto expected = x * torch::rsqrt(x.square().mean(-1, true) + norm->eps) * norm->weight;
  CHECK(torch::allclose(y, expected, 1e-6, 1e-6));
  auto got = torch::autograd::grad({y}, {x, norm->weight}, {g});
  auto want = torch::autograd::grad({expected}, {x, norm->weight}, {g});
  CHECK(testing::max_relative_difference({got[0], got[1]}, {want[0], want[1]}) < 1e-5);
}

TEST_CASE("a llama model trains on every attention kind", "[torch][llama]") {
  std::vector<std::string> kinds = {"naive", "chunked"};
  if (TIDEMARK_HAVE_SDPA) kinds.push_back("sdpa");
  for (const auto& kind : kinds) {
    INFO(kind);
    TrainingConfig cfg;
    cfg.model = llama_config(32, 4, 2);
    cfg.model.attention = kind;
    if (kind == "sdpa") cfg.model.dropout = 0;
    cfg.steps = 12;
    cfg.learning_rate = 3e-3;
    Trainer trainer(cfg);
    std::vector<double> losses;
    for (int i = 0; i < cfg.steps; ++i) losses.push_back(trainer.step().loss);
    CHECK(losses.back() < losses.front());
  }
}

TEST_CASE("a llama configuration it cannot build is refused with what to change", "[torch][llama]") {
  auto refused = [](const ModelConfig& c, const std::string& text) {
    INFO(c.describe());
    CHECK_THROWS_WITH(c.validate(), Catch::Matchers::ContainsSubstring(text));
  };
  refused(llama_config(64, 8, 3), "--kv-heads 3 does not divide --heads 8");
  refused(llama_config(36, 4, 4), "rotary dimension --d-model / --heads = 9 is odd");
  ModelConfig gpt = testing::gpt_config(2, 64, 8, 16, 2);
  gpt.kv_heads = 2;
  refused(gpt, "--kv-heads 2 needs --arch llama");
  ModelConfig other = llama_config(64, 8, 8);
  other.arch = "mistral";
  refused(other, "--arch 'mistral' does not exist; use gpt or llama");
  CHECK_NOTHROW(llama_config(64, 8, 1).validate());
}
