// GPT, data, trainer and the allocator hook (issue: foundation).
#include <torch/csrc/profiler/orchestration/observer.h>

#include "catch.hpp"
#include "common/configs.hpp"
#include "tidemark/core/error.hpp"
#include "tidemark/profiler/allocator_hook.hpp"
#include "tidemark/runtime/data.hpp"
#include "tidemark/runtime/trainer.hpp"

using namespace tidemark;
using namespace tidemark::runtime;

TEST_CASE("the allocator hook counts live tensor bytes and the step peak", "[torch][hook]") {
  profiler::AllocatorHookGuard hook;
  auto& ledger = profiler::ledger();
  const auto base = ledger.live();
  ledger.reset_step_peak();
  {
    auto a = torch::empty({1024, 256}, torch::kFloat);  // 1 MiB
    CHECK(ledger.live() - base == 1 << 20);
    {
      auto b = torch::empty({512}, torch::kDouble);  // 4 KiB
      CHECK(ledger.live() - base == (1 << 20) + 4096);
    }
    CHECK(ledger.live() - base == 1 << 20);
  }
  CHECK(ledger.live() == base);
  CHECK(ledger.step_peak() - base == (1 << 20) + 4096);
}

TEST_CASE("the hook sees backward allocations", "[torch][hook]") {
  profiler::AllocatorHookGuard hook;
  auto& ledger = profiler::ledger();
  auto w = torch::randn({256, 256}, torch::requires_grad());
  auto x = torch::randn({64, 256});
  auto before = ledger.live();
  torch::matmul(x, w).sum().backward();
  // w.grad (256 KiB) was allocated during backward and is still live.
  CHECK(ledger.live() - before == 256 * 256 * 4);
}

TEST_CASE("LibTorch's profiler sees the hook as a disabled profiler state", "[torch][hook]") {
  // Note [hook as profiler state]: LibTorch reads the slot the hook lives in as its own
  // profilers' state; what it reads must be a real one that says no profiler is running.
  namespace impl = torch::profiler::impl;
  CHECK(impl::ProfilerStateBase::get(/*global=*/false) == nullptr);
  {
    profiler::AllocatorHookGuard hook;
    impl::ProfilerStateBase* state = impl::ProfilerStateBase::get(/*global=*/false);
    REQUIRE(state != nullptr);
    CHECK(state->config().disabled());
    CHECK_FALSE(impl::profilerEnabled());
    CHECK(impl::profilerType() == impl::ActiveProfilerType::NONE);
    CHECK(state->memoryProfilingEnabled());  // the allocators still report to it
  }
  CHECK(impl::ProfilerStateBase::get(/*global=*/false) == nullptr);
}

TEST_CASE("the synthetic corpus and its batches are a function of the seed and step", "[torch][data]") {
  auto a = TextData::synthetic(42, 4096);
  auto b = TextData::synthetic(42, 4096);
  auto c = TextData::synthetic(43, 4096);
  CHECK(a.text() == b.text());
  CHECK(a.text() != c.text());
  CHECK(a.text().size() == 4096);
  auto b1 = a.batch(1, 5, 2, 16, torch::kCPU);
  auto b2 = a.batch(1, 5, 2, 16, torch::kCPU);
  auto b3 = a.batch(1, 6, 2, 16, torch::kCPU);
  CHECK(torch::equal(b1.inputs[0], b2.inputs[0]));
  CHECK_FALSE(torch::equal(b1.inputs[0], b3.inputs[0]));
  // Targets are the inputs shifted by one byte.
  CHECK(torch::equal(b1.inputs[0].slice(1, 1), b1.targets.slice(1, 0, 15)));
}

TEST_CASE("data that does not fit the model is refused", "[torch][data]") {
  auto d = TextData::synthetic(1, 100);
  CHECK_THROWS_AS(d.check(256, 200), UserError);  // too short for the sequence
  CHECK_THROWS_AS(d.check(50, 16), UserError);    // letters need a vocabulary above 'z'
  CHECK_NOTHROW(d.check(256, 16));
  CHECK_THROWS_AS(TextData::from_file("/nonexistent/corpus.txt"), UserError);
}

TEST_CASE("the loss falls over 30 steps on the synthetic corpus", "[torch][train]") {
  TrainingConfig cfg;
  cfg.model.layers = 2;
  cfg.model.d_model = 64;
  cfg.model.heads = 4;
  cfg.model.seq = 64;
  cfg.model.batch = 8;
  cfg.steps = 30;
  Trainer trainer(cfg);
  auto stats = trainer.train();
  REQUIRE(stats.size() == 30);
  double first = 0, last = 0;
  for (int i = 0; i < 5; ++i) {
    first += stats[i].loss / 5;
    last += stats[25 + i].loss / 5;
  }
  INFO("first five " << first << ", last five " << last);
  CHECK(stats[0].loss > 5.0);  // about ln(256) at initialisation
  CHECK(last < first - 1.0);
  for (const auto& s : stats) CHECK(s.peak_bytes > 0);
}

TEST_CASE("TrainingConfig.gradient_checkpointing is applied before training", "[torch][train]") {
  TrainingConfig cfg;
  cfg.model = testing::gpt_config(2, 32, 2, 32, 2);
  cfg.steps = 2;
  cfg.gradient_checkpointing = true;
  Trainer ckpt(cfg);
  CHECK_FALSE(ckpt.model()->is_gradient_checkpointing());
  auto before = recompute_count();
  auto with = ckpt.train();
  CHECK(ckpt.model()->is_gradient_checkpointing());
  CHECK(recompute_count() - before == 2u * 2u);  // two blocks, two steps

  cfg.gradient_checkpointing = false;
  Trainer plain(cfg);
  auto without = plain.train();
  // Same seed, same batches, same dropout masks: identical losses.
  CHECK(with[0].loss == without[0].loss);
  CHECK(with[1].loss == without[1].loss);
}

TEST_CASE("a second checkpointed trainer trains like the first while the first is alive", "[torch][train]") {
  // Two models in one process (a user comparing settings). The resume test crashes with
  // LibTorch 2.11 in this situation (README, "On a GPU (NVIDIA H100...)"); this is the
  // situation without saving or resuming, to tell the two apart on the next GPU run.
  TrainingConfig cfg;
  cfg.model = testing::gpt_config(3, 32, 2, 32, 2, 0.3);
  cfg.steps = 3;
  cfg.gradient_checkpointing = true;
  Trainer first(cfg);
  std::vector<double> a, b;
  for (const auto& s : first.train()) a.push_back(s.loss);
  Trainer second(cfg);
  while (second.steps_done() < cfg.steps) {
    INFO("second trainer, step " << second.steps_done());
    b.push_back(second.step().loss);
  }
  CHECK(a == b);  // same seed, same batches, same dropout masks
}

TEST_CASE("bad configurations are refused with UserError", "[torch][train]") {
  TrainingConfig cfg;
  cfg.model.heads = 3;  // does not divide 256
  CHECK_THROWS_AS(Trainer(cfg), UserError);
  cfg.model.heads = 8;
  cfg.model.device = "cuda";
  if (!torch::cuda::is_available()) CHECK_THROWS_AS(Trainer(cfg), UserError);
  cfg.model.device = "cpu";
  cfg.gradient_checkpointing = true;
  cfg.plan = PlanNode::sequence(0, 10, {PlanNode::save(0, 10)});
  CHECK_THROWS_AS(Trainer(cfg), UserError);
}
