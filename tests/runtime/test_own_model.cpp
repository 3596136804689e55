// A user's own model through tidemark/tidemark.hpp (issue 16): stages of any number of
// tensors, checkpoint(fn, inputs...), chains from modules, Session and Step, complete plans.
#include "catch.hpp"
#include "grads.hpp"
#include "tidemark/tidemark.hpp"

using namespace tidemark;
using tidemark::testing::max_relative_difference;
using torch::Tensor;

namespace {

std::vector<Tensor> grads_of(const std::vector<Tensor>& params) {
  std::vector<Tensor> out;
  for (const auto& p : params) out.push_back(p.grad().defined() ? p.grad().detach().clone() : Tensor());
  return out;
}

void free_grads(const std::vector<Tensor>& params) {
  for (auto p : params) p.mutable_grad().reset();
}

// A block that takes the hidden state and a gate, and returns both changed: two tensors in,
// two out, plus a mask from the context.
struct TwoWayImpl : torch::nn::Module {
  explicit TwoWayImpl(int64_t width) {
    a = register_module("a", torch::nn::Linear(width, width));
    b = register_module("b", torch::nn::Linear(width, width));
  }
  std::tuple<Tensor, Tensor> forward(const Tensor& x, const Tensor& g, const Tensor& mask) {
    auto h = torch::gelu(a(x)) * torch::sigmoid(g) * mask;
    return {x + b(h), g + 0.5 * h.mean(-1, true)};
  }
  torch::nn::Linear a{nullptr}, b{nullptr};
};
TORCH_MODULE(TwoWay);

struct Net {
  torch::nn::Linear in{nullptr}, out{nullptr};
  torch::nn::ModuleList blocks;
  std::vector<Tensor> parameters() const {
    std::vector<Tensor> p = in->parameters();
    for (const auto& b : *blocks) {
      auto q = b->parameters();
      p.insert(p.end(), q.begin(), q.end());
    }
    auto q = out->parameters();
    p.insert(p.end(), q.begin(), q.end());
    return p;
  }
};

Net make_net(int64_t width, int blocks) {
  torch::manual_seed(3);
  Net n;
  n.in = torch::nn::Linear(8, width);
  for (int i = 0; i < blocks; ++i) n.blocks->push_back(TwoWay(width));
  n.out = torch::nn::Linear(width, 1);
  return n;
}

Chain make_chain(Net& n, const std::string& name = "two-way") {
  using runtime::StageContext;
  Chain chain(name);
  auto in = n.in;
  chain.add("in", n.in, [in](const Tensor& x) mutable {
    auto h = in(x);
    return std::make_tuple(h, torch::zeros({x.size(0), 1}));  // the gate starts closed
  });
  chain.add_each<TwoWayImpl>("block", n.blocks, [](TwoWayImpl& b, const Activations& a, const StageContext& c) {
    return b.forward(a.at(0), a.at(1), c.tensor("mask"));
  });
  auto out = n.out;
  chain.add("out", n.out, [out](const Tensor& h, const Tensor& g, const StageContext& c) mutable {
    return torch::mse_loss(out(h) + g, c.targets);
  });
  return chain;
}

Batch make_batch(int step, int64_t rows = 64, int64_t width = 32) {
  auto gen = torch::make_generator<at::CPUGeneratorImpl>(100 + step);
  Batch b;
  b.inputs = {torch::randn({rows, 8}, gen)};
  b.targets = b.inputs[0].slice(1, 0, 1).sin();
  b.tensors["mask"] = (torch::rand({rows, width}, gen) > 0.1).to(torch::kFloat);
  return b;
}

// The reference: the same model run as plain LibTorch.
Tensor eager_loss(Net& n, const Batch& b) {
  auto h = n.in(b.inputs[0]);
  auto g = torch::zeros({h.size(0), 1});
  for (const auto& m : *n.blocks) std::tie(h, g) = m->as<TwoWayImpl>()->forward(h, g, b.tensors.at("mask"));
  return torch::mse_loss(n.out(h) + g, b.targets);
}

}  // namespace

TEST_CASE("checkpoint takes any inputs and returns any outputs, as torch.utils.checkpoint", "[torch][own]") {
  torch::manual_seed(1);
  TwoWay block(16);
  auto x = torch::randn({4, 16}, torch::requires_grad());
  auto g = torch::randn({4, 1}, torch::requires_grad());
  auto mask = torch::ones({4, 16});
  auto run = [&](bool ckpt) {
    block->zero_grad();
    x.mutable_grad().reset();
    g.mutable_grad().reset();
    auto [h, g2] = ckpt ? checkpoint(block, x, g, mask) : block->forward(x, g, mask);
    (h.pow(2).sum() + g2.sum()).backward();
    std::vector<Tensor> out{x.grad().clone(), g.grad().clone()};
    for (const auto& p : block->parameters()) out.push_back(p.grad().clone());
    return out;
  };
  const auto plain = run(false);
  const auto checkpointed = run(true);
  CHECK(max_relative_difference(plain, checkpointed) < 1e-6);

  // A plain function: integer inputs pass as they are, and a vector comes back.
  auto idx = torch::tensor({0, 2}, torch::kLong);
  auto w = torch::randn({3, 5}, torch::requires_grad());
  auto outs = checkpoint([](const Tensor& table, const Tensor& rows) { return std::vector<Tensor>{table.index_select(0, rows), rows}; },
                         w, idx);
  REQUIRE(outs.size() == 2);
  CHECK(outs[1].scalar_type() == torch::kLong);
  CHECK_FALSE(outs[1].requires_grad());
  outs[0].sum().backward();
  CHECK(w.grad().sum().item<double>() == Approx(10.0));  // two rows of five ones
}

TEST_CASE("a captured tensor that requires grad is refused, never silently cut off", "[torch][own]") {
  torch::manual_seed(2);
  torch::nn::Linear lin(4, 4);
  auto x = torch::randn({2, 4}, torch::requires_grad());
  // The module's parameters are captured, not given: refused in backward, naming the way out.
  auto y = checkpoint([&](const Tensor& in) { return lin(in); }, x);
  try {
    y.sum().backward();
    FAIL("backward did not refuse the captured parameters");
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    CHECK(what.find("neither an input nor a parameter") != std::string::npos);
    CHECK(what.find("checkpoint(module, x)") != std::string::npos);
  }
  // A captured non-leaf (computed outside from a parameter) is refused too.
  auto scale = lin->weight.sum();
  auto z = checkpoint([&](const Tensor& in) { return in * scale; }, x);
  CHECK_THROWS_AS(z.sum().backward(), c10::Error);
  // A captured tensor that does not require grad is fine.
  auto mask = torch::ones({2, 4});
  auto ok = checkpoint([&](const Tensor& in) { return in * mask; }, x);
  ok.sum().backward();
  CHECK(x.grad().defined());
}

TEST_CASE("stages of several tensors give the gradients of plain LibTorch under every plan", "[torch][own]") {
  Net n = make_net(32, 4);
  Chain chain = make_chain(n);
  REQUIRE(chain.num_stages() == 6);
  CHECK(chain.stage_name(1) == "block.0");
  CHECK(chain.stage_kind(0) == "stage");
  CHECK(chain.stage_kind(2) == "block");
  CHECK(chain.stage_kind(5) == "stage");
  const auto params = n.parameters();
  const Batch b = make_batch(0);
  free_grads(params);
  const double eager = eager_loss(n, b).item<double>();
  eager_loss(n, b).backward();
  const auto reference = grads_of(params);

  std::vector<PlanNode> plans = {
      runtime::plan_no_checkpoint(6),
      runtime::plan_uniform(chain),
      PlanNode::sequence(0, 6, {PlanNode::checkpoint(0, 3, {PlanNode::save(0, 1), PlanNode::checkpoint(1, 3, {PlanNode::save(1, 3)})}),
                                PlanNode::save(3, 4), PlanNode::checkpoint(4, 6, {PlanNode::save(4, 6)})}),
  };
  for (const auto& root : plans) {
    INFO(describe(root));
    Plan p;
    p.model = chain.name();
    p.stages = 6;
    p.digest = chain.digest();
    p.root = root;
    chain.use(p);
    free_grads(params);
    Tensor loss = chain.forward(b);
    CHECK(loss.item<double>() == eager);
    loss.backward();
    CHECK(max_relative_difference(reference, grads_of(params)) < 1e-6);
  }
}

TEST_CASE("a context tensor that requires grad is refused before anything runs", "[torch][own]") {
  Net n = make_net(32, 2);
  Chain chain = make_chain(n);
  Batch b = make_batch(0);
  b.tensors["mask"].requires_grad_(true);
  try {
    chain.forward(b);
    FAIL("not refused");
  } catch (const ChainError& e) {
    CHECK(std::string(e.what()).find("\"mask\" requires grad") != std::string::npos);
  }
  b.tensors.erase("mask");
  try {
    chain.forward(b);
    FAIL("not refused");
  } catch (const ChainError& e) {
    CHECK(std::string(e.what()).find("no tensor \"mask\"") != std::string::npos);
  }
}

TEST_CASE("a chain from a Sequential names its stages by module and finds its blocks", "[torch][own]") {
  struct ResidualImpl : torch::nn::Module {
    explicit ResidualImpl(int64_t w) { lin = register_module("lin", torch::nn::Linear(w, w)); }
    Tensor forward(const Tensor& x) { return x + torch::relu(lin(x)); }
    torch::nn::Linear lin{nullptr};
  };
  TORCH_MODULE(Residual);
  torch::nn::Sequential seq(torch::nn::Linear(4, 8), Residual(8), Residual(8), Residual(8), torch::nn::Linear(8, 1));
  Chain chain(seq, "residual");
  REQUIRE(chain.num_stages() == 5);
  CHECK(chain.stage_name(0) == "linear.0");
  CHECK(chain.stage_name(1) == "residual.0");
  CHECK(chain.stage_name(3) == "residual.2");
  CHECK(chain.stage_name(4) == "linear.1");
  CHECK(chain.stage_kind(0) == "stage");  // two Linears of different shapes are not blocks
  CHECK(chain.stage_kind(2) == "block");
  // Uniform checkpointing wraps the blocks only.
  const PlanNode uniform = runtime::plan_uniform(chain);
  CHECK(describe(uniform).find("ckpt[0") == std::string::npos);
  CHECK(describe(uniform).find("ckpt[4") == std::string::npos);
  // The digest follows the shapes: another width is another model.
  torch::nn::Sequential wider(torch::nn::Linear(4, 16), Residual(16), Residual(16), Residual(16), torch::nn::Linear(16, 1));
  CHECK(Chain(wider, "residual").digest() != chain.digest());

  auto x = torch::randn({3, 4});
  Activations out = chain.forward({x}, {});
  REQUIRE(out.size() == 1);
  CHECK(torch::allclose(out[0], seq->forward(x)));
}

TEST_CASE("add_each refuses a module of another type, naming the one it is", "[torch][own]") {
  torch::nn::ModuleList list;
  list->push_back(torch::nn::Linear(2, 2));
  Chain chain("wrong");
  try {
    chain.add_each<TwoWayImpl>("block", list, [](TwoWayImpl&, const Tensor& x) { return x; });
    FAIL("not refused");
  } catch (const ChainError& e) {
    CHECK(std::string(e.what()).find("LinearImpl") != std::string::npos);
  }
}

TEST_CASE("profile, plan and train a chain of several tensors: peak within the budget whichever way gradients are reset", "[torch][own]") {
  Session session;
  Net n = make_net(256, 6);
  Chain chain = make_chain(n);
  torch::optim::AdamW opt(n.parameters(), torch::optim::AdamWOptions(1e-3));
  auto batch = [](int i) { return make_batch(i, 2048, 256); };
  ProfileOptions po;
  po.warmup = 1;
  po.iters = 2;
  const ChainProfile profile = session.profile(chain, opt, batch, po);
  CHECK_THROWS_AS(tidemark::plan(profile, Budget::fraction(0.05)), InfeasibleBudget);
  CHECK(profile.model == "two-way");
  CHECK(profile.digest == chain.digest());
  REQUIRE(profile.stages.size() == 8);
  // Two activations between blocks: the hidden state and the gate.
  CHECK(profile.stages[2].output_bytes == 2048 * 256 * 4 + 2048 * 4);

  const Plan plan = tidemark::plan(profile, Budget::fraction(0.7));
  CHECK(plan.digest == chain.digest());
  CHECK(plan.model == "two-way");
  CHECK(plan.stages == 8);
  CHECK(plan.predicted.peak_bytes <= plan.budget_bytes);
  chain.use(plan);

  // zero_grad() keeps gradients on LibTorch 1.13 and frees them on 2.x; freeing by hand
  // frees them everywhere. The Step's reset makes both hold the budget.
  for (const bool zero : {true, false}) {
    INFO((zero ? "optimizer.zero_grad()" : "gradients freed"));
    std::int64_t peak = 0;
    for (int i = 0; i < 3; ++i) {
      auto step = session.step(opt);
      chain.forward(batch(10 + i)).backward();
      opt.step();
      if (zero) {
        opt.zero_grad();
      } else {
        free_grads(n.parameters());
      }
      step.end();
      peak = std::max(peak, session.peak_bytes());
    }
    CHECK(peak <= static_cast<std::int64_t>(plan.budget_bytes));
    const double error = std::abs(static_cast<double>(peak) - static_cast<double>(plan.predicted.peak_bytes)) /
                         static_cast<double>(plan.predicted.peak_bytes);
    CHECK(error < 0.05);
  }
}

TEST_CASE("a Step frees the gradients zero_grad keeps", "[torch][own]") {
  Session session;
  torch::nn::Linear lin(4, 4);
  torch::optim::SGD opt(lin->parameters(), 0.1);
  lin(torch::randn({2, 4})).sum().backward();
  opt.zero_grad();
  auto step = session.step(opt);
  for (const auto& p : lin->parameters()) CHECK_FALSE(p.grad().defined());
}

TEST_CASE("a session refuses a model built before it, and a second session", "[torch][own]") {
  Net n = make_net(64, 2);
  Chain chain = make_chain(n);
  torch::optim::AdamW opt(n.parameters());
  Session session;
  try {
    session.profile(chain, opt, [](int i) { return make_batch(i, 8, 64); });
    FAIL("not refused");
  } catch (const SessionError& e) {
    CHECK(std::string(e.what()).find("Create the Session first") != std::string::npos);
  }
  CHECK_THROWS_AS(Session(), SessionError);
}

TEST_CASE("a plan is refused by a chain it was not made for, naming both", "[torch][own]") {
  Session session;
  Net n = make_net(64, 3);
  Chain chain = make_chain(n);
  torch::optim::AdamW opt(n.parameters());
  ProfileOptions po;
  po.warmup = 1;
  po.iters = 1;
  const Plan plan = tidemark::plan(session.profile(chain, opt, [](int i) { return make_batch(i, 16, 64); }, po),
                                   Budget::fraction(1.0));
  Net other = make_net(64, 3);
  Chain renamed = make_chain(other, "another");
  try {
    renamed.use(plan, "plan.json");
    FAIL("not refused");
  } catch (const PlanMismatch& e) {
    CHECK(std::string(e.what()).find("plan.json") != std::string::npos);
    CHECK(std::string(e.what()).find("\"two-way\"") != std::string::npos);
  }
  Net wider = make_net(128, 3);
  Chain shaped = make_chain(wider);
  CHECK_THROWS_AS(shaped.use(plan), PlanMismatch);
  Plan by_hand = plan;
  by_hand.digest.clear();
  CHECK_THROWS_WITH(chain.use(by_hand), Catch::Matchers::ContainsSubstring("no digest"));
}

TEST_CASE("the trace of a user's own loop has its stage, checkpoint and recompute spans and memory categories", "[torch][own]") {
  Session session;
  Net n = make_net(64, 3);
  Chain chain = make_chain(n);
  torch::optim::AdamW opt(n.parameters());
  chain.checkpoint_every_block();
  session.record_trace(chain, opt);
  for (int i = 0; i < 2; ++i) {
    auto step = session.step(opt);
    Batch b = make_batch(i, 32, 64);
    chain.forward(b).backward();
    opt.step();
  }
  const Trace t = session.trace();
  CHECK(t.model == "two-way");
  CHECK(t.mode == "uniform");
  REQUIRE(t.stages.size() == 5);
  CHECK(t.stages[1].name == "block.0");
  CHECK(t.stages[1].action == "checkpoint");
  CHECK(t.stages[0].action == "save");
  CHECK(t.steps.size() == 2);
  int forward = 0, backward = 0, recompute = 0;
  for (const auto& s : t.spans) {
    forward += s.phase == Phase::Forward;
    backward += s.phase == Phase::Backward;
    recompute += s.phase == Phase::Recompute;
  }
  CHECK(forward == 2 * 5);
  CHECK(backward == 2 * 5);
  CHECK(recompute == 2 * 3);
  // Readable as the CLI's traces are.
  const Trace back = trace_from_json(trace_to_json(t), "own trace");
  CHECK(back.spans.size() == t.spans.size());
}

TEST_CASE("a stage handed another number of tensors than it takes is a ChainError naming it", "[torch][own]") {
  torch::nn::Linear lin(4, 4);
  Chain chain("arity");
  chain.add("two", lin, [lin](const Tensor& x) mutable { return std::make_tuple(lin(x), x); });
  chain.add("one", nullptr, [](const Tensor& x) { return x.sum(); });
  try {
    chain.forward({torch::randn({2, 4})}, {});
    FAIL("not refused");
  } catch (const ChainError& e) {
    CHECK(std::string(e.what()).find("stage one takes 1 tensor but the stage before it hands it 2") != std::string::npos);
  }
  // A Sequential module called with the wrong count says which stage.
  torch::nn::Sequential seq(torch::nn::Linear(4, 4));
  Chain from_seq(seq);
  CHECK_THROWS_AS(from_seq.forward({torch::randn({2, 4}), torch::randn({2, 4})}, {}), ChainError);
}

TEST_CASE("a user's variant is measured, chosen by plans, and gives the plain stage's gradients", "[torch][own]") {
  Session session;
  Net n = make_net(64, 3);
  Chain chain = make_chain(n);
  // The block with gelu(a(x)) recomputed in backward: a(x), which gelu keeps, is freed. The
  // projection's parameters are inputs of the checkpoint, so they get their gradients.
  chain.add_variant<TwoWayImpl>("block", "a-recompute", [](TwoWayImpl& b, const Activations& a, const runtime::StageContext& c) {
    auto up = checkpoint([](const Tensor& x, const Tensor& w, const Tensor& bias) { return torch::gelu(torch::linear(x, w, bias)); },
                         a.at(0), b.a->weight, b.a->bias);
    auto h = up * torch::sigmoid(a.at(1)) * c.tensor("mask");
    return std::make_tuple(a.at(0) + b.b(h), a.at(1) + 0.5 * h.mean(-1, true));
  });
  CHECK(chain.stage_variants(1) == std::vector<std::string>{"a-recompute"});
  CHECK(chain.stage_variants(0).empty());
  CHECK_THROWS_AS(chain.add_variant<TwoWayImpl>("nothing", "x", [](TwoWayImpl&, const Tensor& x) { return x; }), ChainError);

  torch::optim::AdamW opt(n.parameters());
  ProfileOptions po;
  po.warmup = 1;
  po.iters = 1;
  const ChainProfile profile = session.profile(chain, opt, [](int i) { return make_batch(i, 256, 64); }, po);
  REQUIRE(profile.stages[1].variants.size() == 1);
  CHECK(profile.stages[1].variants[0].name == "a-recompute");
  CHECK(profile.stages[1].variants[0].saved_bytes < profile.stages[1].saved_bytes);

  const auto params = n.parameters();
  const Batch b = make_batch(7, 256, 64);
  free_grads(params);
  chain.no_checkpointing();
  chain.forward(b).backward();
  const auto plain = grads_of(params);
  Plan p = tidemark::plan(profile, Budget::fraction(1.0));
  p.root = PlanNode::sequence(0, 5, {PlanNode::save(0, 1), PlanNode::save(1, 4, "a-recompute"), PlanNode::save(4, 5)});
  chain.use(p);
  free_grads(params);
  chain.forward(b).backward();
  CHECK(max_relative_difference(plain, grads_of(params)) < 1e-6);
  p.root = PlanNode::sequence(0, 5, {PlanNode::save(0, 1, "a-recompute"), PlanNode::save(1, 5)});
  CHECK_THROWS_AS(chain.use(p), PlanMismatch);
}
