// Selective recompute (issue: selective recompute): every block variant gives the plain
// block's gradients, alone and nested in checkpoints; names parse; traces show the partial
// recompute spans; plans refuse variants a stage does not have.
#include "catch.hpp"
#include "common/configs.hpp"
#include "grads.hpp"
#include "tidemark/core/error.hpp"
#include "tidemark/runtime/executor.hpp"
#include "tidemark/runtime/gpt.hpp"
#include "tidemark/runtime/trainer.hpp"

#include <set>

using namespace tidemark;
using namespace tidemark::runtime;
using tidemark::testing::as_llama;
using tidemark::testing::gpt_config;
using tidemark::testing::grads_of;
using tidemark::testing::max_relative_difference;

namespace {

// Every block runs `variant`; embedding and head run plain.
ModelConfig with_attention(ModelConfig c, const char* kind) {
  c.attention = kind;
  return c;
}

PlanNode all_blocks(const GPTImpl& model, const std::string& variant) {
  const int n = model.num_stages();
  return PlanNode::sequence(0, n, {PlanNode::save(0, 1), PlanNode::save(1, n - 1, variant),
                                   PlanNode::save(n - 1, n)});
}

struct Run {
  double loss = 0;
  std::vector<torch::Tensor> grads;
};

struct Fixture {
  explicit Fixture(const ModelConfig& c) : config(c), model(c) {
    torch::manual_seed(3);
    idx = torch::randint(c.vocab, {c.batch, c.seq}, torch::kLong);
    targets = torch::randint(c.vocab, {c.batch, c.seq}, torch::kLong);
    model->train();
  }
  Run run(const PlanNode& root) {
    for (auto& p : model->parameters()) p.mutable_grad().reset();
    PlanExecutor ex(*model, root);
    torch::manual_seed(17);  // the same dropout masks for every plan
    auto loss = ex.forward({idx}, StageContext{targets}).at(0);
    loss.backward();
    return {loss.item<double>(), grads_of(*model)};
  }
  ModelConfig config;
  GPT model;
  torch::Tensor idx, targets;
};

}  // namespace

TEST_CASE("block variant names round-trip; unknown names are refused", "[torch][variants]") {
  ModelConfig c = gpt_config(2, 32, 4, 16, 2, 0.1);
  CHECK(BlockVariant::all(c).size() == 17);  // 3 attention × 2 norm × 3 mlp choices, but full
  c.dropout = 0;
  CHECK(BlockVariant::all(c).size() == 11);  // no attention-dropout without dropout
  c.attention = "chunked";
  CHECK(BlockVariant::all(c).size() == 11);  // attention-qkv instead of the T² variants
  CHECK(BlockVariant::parse("attention-qkv+norm+mlp-core")->attention == BlockVariant::Attention::Qkv);
  c.attention = "naive";
  c.dropout = 0.1;
  for (const auto& v : BlockVariant::all(c)) {
    auto back = BlockVariant::parse(v.name());
    REQUIRE(back);
    CHECK(back->name() == v.name());
    CHECK_FALSE(v.is_full());
  }
  CHECK(BlockVariant::parse("full")->is_full());
  CHECK(BlockVariant::parse("")->is_full());
  CHECK(BlockVariant::parse("attention-core+mlp-activation"));
  CHECK(BlockVariant::parse("attention-core+norm+mlp-activation")->norm == BlockVariant::Norm::Recompute);
  CHECK(BlockVariant::parse("norm")->name() == "norm");
  CHECK_FALSE(BlockVariant::parse("mlp-activation+attention-core"));
  CHECK_FALSE(BlockVariant::parse("norm+attention-core"));
  CHECK_FALSE(BlockVariant::parse("selective-everything"));
}

TEST_CASE("every block variant gives the plain block's loss and gradients", "[torch][variants]") {
  std::vector<ModelConfig> configs = {
      gpt_config(2, 32, 4, 24, 2, 0.1), gpt_config(3, 48, 3, 16, 3, 0.2), gpt_config(2, 32, 2, 20, 2, 0.0),
      // llama with grouped-query attention, and with chunked attention (attention-qkv instead
      // of the T² variants); gpt with chunked
      as_llama(gpt_config(2, 32, 4, 24, 2, 0.1), 2), as_llama(gpt_config(2, 48, 4, 16, 3, 0.0), 1),
      as_llama(gpt_config(2, 32, 2, 20, 2, 0.1), 2, "chunked"), with_attention(gpt_config(2, 32, 4, 20, 2, 0.1), "chunked"),
      // several query blocks of chunked attention
      as_llama(gpt_config(2, 32, 4, 300, 1, 0.0), 2, "chunked")};
  if (TIDEMARK_HAVE_SDPA) {  // the CPU's fused kernel, without dropout: attention-qkv calls its ops directly
    configs.push_back(with_attention(gpt_config(2, 32, 4, 20, 2, 0.0), "sdpa"));
    configs.push_back(as_llama(gpt_config(2, 32, 4, 40, 2, 0.0), 2, "sdpa"));
  }
  for (const ModelConfig& c : configs) {
    Fixture f(c);
    const Run plain = f.run(plan_no_checkpoint(f.model->num_stages()));
    const auto variants = f.model->stage_variants(1);
    REQUIRE(variants.size() == BlockVariant::all(c).size());
    for (const auto& v : variants) {
      INFO(c.describe() << " variant " << v);
      const Run r = f.run(all_blocks(*f.model, v));
      CHECK(r.loss == plain.loss);  // the forward is the same computation
      CHECK(max_relative_difference(plain.grads, r.grads) < 1e-6);
    }
  }
}

TEST_CASE("variants inside checkpoint segments give the plain gradients", "[torch][variants]") {
  Fixture f(gpt_config(4, 32, 4, 16, 2, 0.1));
  const Run plain = f.run(plan_no_checkpoint(f.model->num_stages()));
  // A checkpoint whose recompute runs variants, another nested one, and a saved variant.
  const PlanNode root = PlanNode::sequence(
      0, 6,
      {PlanNode::save(0, 1),
       PlanNode::checkpoint(1, 3, {PlanNode::save(1, 2, "attention-core"),
                                   PlanNode::save(2, 3, "norm+mlp-core")}),
       PlanNode::checkpoint(3, 5, {PlanNode::checkpoint(3, 4, {PlanNode::save(3, 4, "attention-dropout+mlp-activation")}),
                                   PlanNode::save(4, 5, "attention-core+mlp-core")}),
       PlanNode::save(5, 6)});
  const Run r = f.run(root);
  CHECK(r.loss == plain.loss);
  CHECK(max_relative_difference(plain.grads, r.grads) < 1e-6);

  // attention-qkv replays chunked attention's dropout inside a recompute, nested too.
  Fixture g(as_llama(gpt_config(4, 32, 4, 16, 2, 0.1), 2, "chunked"));
  const Run plain_chunked = g.run(plan_no_checkpoint(g.model->num_stages()));
  const PlanNode chunked_root = PlanNode::sequence(
      0, 6,
      {PlanNode::save(0, 1),
       PlanNode::checkpoint(1, 3, {PlanNode::save(1, 2, "attention-qkv"), PlanNode::save(2, 3, "attention-qkv+norm+mlp-core")}),
       PlanNode::checkpoint(3, 5, {PlanNode::checkpoint(3, 4, {PlanNode::save(3, 4, "attention-qkv+norm")}),
                                   PlanNode::save(4, 5, "attention-qkv+mlp-activation")}),
       PlanNode::save(5, 6)});
  const Run rc = g.run(chunked_root);
  CHECK(rc.loss == plain_chunked.loss);
  CHECK(max_relative_difference(plain_chunked.grads, rc.grads) < 1e-6);
}

TEST_CASE("a variant the stage does not have is refused", "[torch][variants]") {
  Fixture f(gpt_config(2, 32, 4, 16, 2, 0.0));
  Plan plan;
  plan.stages = f.model->num_stages();
  plan.root = all_blocks(*f.model, "attention-dropout");  // needs dropout
  CHECK_THROWS_AS(check_plan_matches(plan, *f.model, "plan.json"), UserError);
  plan.root = PlanNode::sequence(0, 4, {PlanNode::save(0, 3), PlanNode::save(3, 4, "mlp-core")});
  CHECK_THROWS_AS(check_plan_matches(plan, *f.model, "plan.json"), UserError);  // the head
  plan.root = all_blocks(*f.model, "attention-core+mlp-core");
  CHECK_NOTHROW(check_plan_matches(plan, *f.model, "plan.json"));
}

TEST_CASE("a trace shows the partial recompute of variant blocks", "[torch][variants]") {
  TrainingConfig cfg;
  cfg.model = gpt_config(3, 32, 4, 16, 2, 0.1);
  cfg.steps = 2;
  const int n = static_cast<int>(cfg.model.stages());
  // block.0 plain, block.1 attention-core, block.2 mlp-activation.
  cfg.plan = PlanNode::sequence(0, n, {PlanNode::save(0, 2), PlanNode::save(2, 3, "attention-core"),
                                       PlanNode::save(3, 4, "mlp-activation"), PlanNode::save(4, n)});
  Trainer trainer(cfg);
  trainer.enable_trace();
  trainer.train();
  const Trace t = trainer.finish_trace();
  // The steps with a partial recompute in `stage` (the MLP's backward rebuilds a range of
  // tokens at a time, so there may be several spans a step).
  auto steps = [&](int stage) {
    std::set<int> out;
    for (const auto& s : t.spans) {
      if (s.stage == stage && s.phase == Phase::Recompute) out.insert(s.step);
    }
    return out;
  };
  CHECK(steps(1).empty());
  CHECK(steps(2) == std::set<int>{0, 1});
  CHECK(steps(3) == std::set<int>{0, 1});
  // Each partial recompute lies inside its stage's backward span.
  for (const auto& r : t.spans) {
    if (r.phase != Phase::Recompute) continue;
    bool inside = false;
    for (const auto& b : t.spans) {
      inside = inside || (b.stage == r.stage && b.step == r.step && b.phase == Phase::Backward &&
                          b.start_us <= r.start_us && r.end_us <= b.end_us);
    }
    CHECK(inside);
  }
  CHECK(t.stages[2].action == "attention-core");
  CHECK(t.stages[3].action == "mlp-activation");
}

TEST_CASE("variants run under bfloat16 autocast with the plain block's gradients", "[torch][variants]") {
  for (const ModelConfig& c : {gpt_config(2, 32, 4, 16, 2, 0.1), as_llama(gpt_config(2, 32, 4, 16, 2, 0.1), 2),
                               as_llama(gpt_config(2, 32, 4, 16, 2, 0.1), 2, "chunked")}) {
  INFO(c.describe());
  Fixture f(c);
  auto run_bf16 = [&](const PlanNode& root) {
    for (auto& p : f.model->parameters()) p.mutable_grad().reset();
    PlanExecutor ex(*f.model, root);
    torch::manual_seed(17);
    torch::Tensor loss;
    {
      AutocastScope autocast("bfloat16", torch::kCPU);
      loss = ex.forward({f.idx}, StageContext{f.targets}).at(0);
    }
    loss.backward();
    return grads_of(*f.model);
  };
  const auto plain = run_bf16(plan_no_checkpoint(f.model->num_stages()));
  for (const auto& v : f.model->stage_variants(1)) {
    INFO(v);
    // Recomputed tensors are rebuilt in the forward's precision; what differs is only where
    // bfloat16 results are rounded back, hence bfloat16's tolerance.
    CHECK(max_relative_difference(plain, run_bf16(all_blocks(*f.model, v))) < 2e-2);
  }
  }
}
