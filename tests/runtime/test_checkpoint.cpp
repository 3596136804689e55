// The checkpoint Function and Hugging Face parity (issue: foundation).
#include <ATen/autocast_mode.h>

#include "catch.hpp"
#include "common/configs.hpp"
#include "grads.hpp"
#include "tidemark/runtime/checkpoint.hpp"
#include "tidemark/runtime/executor.hpp"
#include "tidemark/runtime/gpt.hpp"
#include "tidemark/runtime/trainer.hpp"

using namespace tidemark;
using namespace tidemark::runtime;
using tidemark::testing::grads_of;
using tidemark::testing::max_relative_difference;

namespace {

ModelConfig small_config(double dropout = 0.2) {
  ModelConfig c = testing::gpt_config(3, 32, 4, 16, 2, dropout);
  c.vocab = 64;
  return c;
}

struct Fixture {
  ModelConfig config;
  GPT model{nullptr};
  torch::Tensor idx, targets;
  explicit Fixture(ModelConfig c) : config(c) {
    torch::manual_seed(7);
    model = GPT(c);
    model->train();
    idx = torch::randint(c.vocab, {c.batch, c.seq}, torch::kLong);
    targets = torch::randint(c.vocab, {c.batch, c.seq}, torch::kLong);
  }
  // One forward/backward from a fixed RNG state; returns the gradients.
  std::vector<torch::Tensor> grads(std::uint64_t seed = 99) {
    for (auto& p : model->parameters()) p.mutable_grad().reset();
    torch::manual_seed(seed);
    model->forward(idx, targets).backward();
    return grads_of(*model);
  }
};

}  // namespace

TEST_CASE("checkpointed gradients equal plain ones with dropout on", "[torch][checkpoint]") {
  Fixture f(small_config(0.2));
  auto plain = f.grads();
  f.model->gradient_checkpointing_enable();
  const auto before = recompute_count();
  auto ckpt = f.grads();
  CHECK(recompute_count() - before == static_cast<std::uint64_t>(f.config.layers));
  CHECK(max_relative_difference(plain, ckpt) < 1e-6);
}

TEST_CASE("without preserve_rng_state the recompute draws other dropout masks", "[torch][checkpoint]") {
  Fixture f(small_config(0.3));
  auto plain = f.grads();
  CheckpointOptions o;
  o.preserve_rng_state = false;
  f.model->gradient_checkpointing_enable(o);
  auto ckpt = f.grads();
  CHECK(max_relative_difference(plain, ckpt) > 1e-3);
}

TEST_CASE("parameter gradients flow when the segment input does not require grad", "[torch][checkpoint]") {
  torch::manual_seed(3);
  torch::nn::Linear lin(8, 8);
  auto x = torch::randn({4, 8});  // requires_grad false, like the first block's input
  REQUIRE_FALSE(x.requires_grad());
  auto fn = [&](const torch::Tensor& in) { return torch::tanh(lin(in)) * 2; };
  fn(x).sum().backward();
  auto plain = grads_of(*lin);
  lin->zero_grad();
  for (auto& p : lin->parameters()) p.mutable_grad().reset();
  auto out = checkpoint(fn, x, lin->parameters());
  REQUIRE(out.requires_grad());
  out.sum().backward();
  auto ckpt = grads_of(*lin);
  CHECK(max_relative_difference(plain, ckpt) < 1e-6);
}

TEST_CASE("input gradients and nested checkpoints match plain backward", "[torch][checkpoint]") {
  torch::manual_seed(4);
  torch::nn::Linear a(6, 6), b(6, 6);
  auto x = torch::randn({3, 6}, torch::requires_grad());
  auto inner = [&](const torch::Tensor& in) { return torch::relu(b(in)); };
  auto outer = [&](const torch::Tensor& in) {
    auto params = b->parameters();
    return checkpoint(inner, torch::sigmoid(a(in)), params);
  };
  torch::relu(b(torch::sigmoid(a(x)))).pow(2).sum().backward();  // no checkpoint at all
  auto gx = x.grad().clone();
  auto plain = grads_of(*a);
  auto plain_b = grads_of(*b);
  x.mutable_grad().reset();
  for (auto* m : {static_cast<torch::nn::Module*>(a.get()), static_cast<torch::nn::Module*>(b.get())}) {
    for (auto& p : m->parameters()) p.mutable_grad().reset();
  }
  auto params = a->parameters();
  for (auto& p : b->parameters()) params.push_back(p);
  const auto before = recompute_count();
  checkpoint(outer, x, params).pow(2).sum().backward();
  CHECK(recompute_count() - before == 2);  // the outer segment, then the inner one inside it
  CHECK(max_relative_difference({gx}, {x.grad()}) < 1e-6);
  CHECK(max_relative_difference(plain, grads_of(*a)) < 1e-6);
  CHECK(max_relative_difference(plain_b, grads_of(*b)) < 1e-6);
}

TEST_CASE("eval mode and disable() do no recompute", "[torch][checkpoint]") {
  Fixture f(small_config(0.1));
  f.model->gradient_checkpointing_enable();
  CHECK(f.model->is_gradient_checkpointing());
  f.model->eval();
  auto before = recompute_count();
  auto loss = f.model->forward(f.idx, f.targets);
  loss.backward();  // autograd still works in eval mode, without checkpoints
  CHECK(recompute_count() == before);

  f.model->train();
  f.model->gradient_checkpointing_disable();
  CHECK_FALSE(f.model->is_gradient_checkpointing());
  before = recompute_count();
  f.grads();
  CHECK(recompute_count() == before);
  f.model->gradient_checkpointing_enable();
  f.grads();
  CHECK(recompute_count() == before + static_cast<std::uint64_t>(f.config.layers));
}

namespace {

// A model that does not declare support, as HF models with supports_gradient_checkpointing=False.
struct Unsupported : torch::nn::Module, CheckpointableModel {
  bool supports_gradient_checkpointing() const override { return false; }
  torch::nn::Module& checkpointable_module() override { return *this; }
  std::string model_name() const override { return "Unsupported"; }
};

}  // namespace

TEST_CASE("enabling checkpointing on an unsupporting model throws NotSupported", "[torch][checkpoint]") {
  Unsupported m;
  CHECK_THROWS_AS(m.gradient_checkpointing_enable(), NotSupported);
  try {
    m.gradient_checkpointing_enable();
  } catch (const NotSupported& e) {
    CHECK(std::string(e.what()).find("Unsupported does not support gradient checkpointing") == 0);
  }
  CHECK_FALSE(m.is_gradient_checkpointing());
}

TEST_CASE("options LibTorch cannot honour are refused", "[torch][checkpoint]") {
  CheckpointOptions o;
  o.use_reentrant = false;
  CHECK_THROWS_AS(o.validate(), UnsupportedOption);
  Fixture f(small_config());
  CHECK_THROWS_AS(f.model->gradient_checkpointing_enable(o), UnsupportedOption);
  CHECK_FALSE(f.model->is_gradient_checkpointing());
  CHECK_THROWS_AS(CheckpointOptions::from_kwargs({{"debug", "true"}}), UnsupportedOption);
  CHECK_THROWS_AS(CheckpointOptions::from_kwargs({{"context_fn", "f"}}), UnsupportedOption);
  CHECK_THROWS_AS(CheckpointOptions::from_kwargs({{"nonsense", "1"}}), UnsupportedOption);
  CHECK_THROWS_AS(CheckpointOptions::from_kwargs({{"preserve_rng_state", "maybe"}}), UnsupportedOption);
  CHECK_FALSE(CheckpointOptions::from_kwargs({{"preserve_rng_state", "false"}}).preserve_rng_state);
  CHECK(CheckpointOptions::from_kwargs({{"use_reentrant", "true"}}).use_reentrant);
}

TEST_CASE("the recompute runs under the forward's bfloat16 autocast", "[torch][checkpoint]") {
  Fixture f(small_config(0.1));
  auto grads_under_autocast = [&] {
    for (auto& p : f.model->parameters()) p.mutable_grad().reset();
    torch::manual_seed(5);
    torch::Tensor loss;
    {
      AutocastScope autocast("bfloat16", torch::kCPU);
      loss = f.model->forward(f.idx, f.targets);
    }
    loss.backward();
    return grads_of(*f.model);
  };
  auto plain = grads_under_autocast();
  f.model->gradient_checkpointing_enable();
  auto ckpt = grads_under_autocast();
  CHECK(max_relative_difference(plain, ckpt) < 1e-2);  // bfloat16 tolerance

  // And the state really is restored: a probe records autocast in forward and recompute.
  std::vector<std::pair<bool, at::ScalarType>> seen;
  torch::nn::Linear lin(8, 8);
  auto probe = [&](const torch::Tensor& x) {
    seen.emplace_back(at::autocast::is_cpu_enabled(), lin(x).scalar_type());
    return lin(x);
  };
  torch::Tensor out;
  {
    AutocastScope autocast("bfloat16", torch::kCPU);
    out = checkpoint(probe, torch::randn({2, 8}), lin->parameters());
  }
  REQUIRE_FALSE(at::autocast::is_cpu_enabled());
  out.to(torch::kFloat).sum().backward();
  REQUIRE(seen.size() == 2);
  CHECK(seen[0] == std::make_pair(true, at::kBFloat16));
  CHECK(seen[1] == std::make_pair(true, at::kBFloat16));
  CHECK_FALSE(at::autocast::is_cpu_enabled());  // restored after the recompute
}

TEST_CASE("every plan tree of the executor gives plain gradients", "[torch][checkpoint]") {
  Fixture f(small_config(0.2));
  auto plain = f.grads();
  const int n = f.model->num_stages();  // 5
  std::vector<PlanNode> plans = {
      plan_uniform(*f.model),
      PlanNode::sequence(0, n, {PlanNode::checkpoint(0, 3, {PlanNode::save(0, 3)}), PlanNode::save(3, n)}),
      PlanNode::sequence(0, n, {PlanNode::save(0, 1),
                                PlanNode::checkpoint(1, 4, {PlanNode::save(1, 2),
                                                            PlanNode::checkpoint(2, 4, {PlanNode::save(2, 3),
                                                                                        PlanNode::checkpoint(3, 4, {PlanNode::save(3, 4)})})}),
                                PlanNode::save(4, n)}),
      PlanNode::sequence(0, n, {PlanNode::checkpoint(0, n, {PlanNode::checkpoint(0, 2, {PlanNode::save(0, 2)}),
                                                            PlanNode::save(2, n)})}),
  };
  for (const auto& root : plans) {
    INFO(describe(root));
    PlanExecutor ex(*f.model, root);
    for (auto& p : f.model->parameters()) p.mutable_grad().reset();
    torch::manual_seed(99);
    ex.forward({f.idx}, StageContext{f.targets}).at(0).backward();
    CHECK(max_relative_difference(plain, grads_of(*f.model)) < 1e-6);
  }
}
