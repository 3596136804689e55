// Profile accuracy (issue: profiler): saved bytes against the analytic count, scaling,
// the no-checkpoint peak, memory categories in traces.
#include "catch.hpp"
#include "common/configs.hpp"
#include "common/profile_gpt.hpp"
#include "tidemark/planner/simulator.hpp"
#include "tidemark/runtime/gpt.hpp"
#include "tidemark/runtime/profiling.hpp"

using namespace tidemark;
using namespace tidemark::runtime;

namespace {

ModelConfig shape(std::int64_t batch, std::int64_t seq, std::int64_t d_model, std::int64_t heads,
                  double dropout = 0.1) {
  return testing::gpt_config(2, d_model, heads, seq, batch, dropout);
}

ProfileRun profile(const ModelConfig& c, bool trace = false) {
  return testing::profile_gpt(c, /*iters=*/2, trace);
}

double rel(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1.0); }

}  // namespace

// Each arch and attention kind on shapes its count covers: sdpa's fused kernel runs without
// dropout only, and chunked attention also on a sequence of several query blocks. llama runs
// with fewer key/value heads than heads where the heads allow it.
std::vector<ModelConfig> saved_bytes_shapes() {
  std::vector<ModelConfig> out;
  for (const char* arch : {"gpt", "llama"}) {
    for (const char* attention : {"naive", "chunked", "sdpa"}) {
      if (std::string(attention) == "sdpa" && !TIDEMARK_HAVE_SDPA) continue;
      std::vector<ModelConfig> shapes = {shape(2, 32, 64, 4), shape(4, 64, 32, 2), shape(2, 48, 96, 6, 0.0),
                                         shape(3, 16, 128, 8)};
      if (std::string(attention) == "chunked") shapes.push_back(shape(1, 300, 32, 2));
      for (ModelConfig c : shapes) {
        if (std::string(attention) == "sdpa" && c.dropout > 0) c.dropout = 0;
        c.attention = attention;
        c.arch = arch;
        if (c.arch == "llama" && c.heads % 2 == 0) c.kv_heads = c.heads / 2;
        out.push_back(c);
      }
    }
  }
  return out;
}

TEST_CASE("block saved bytes, plain and of every variant, match the analytic count", "[torch][profiler]") {
  for (const auto& c : saved_bytes_shapes()) {
    INFO(c.describe());
    ProfileRun run = profile(c);
    const std::uint64_t analytic = analytic_block_saved_bytes(c);
    const std::size_t variants = GPT(c)->stage_variants(1).size();
    CHECK(variants == BlockVariant::all(c).size());
    // naive: 3 attention choices (2 without dropout); chunked and sdpa on the CPU without
    // dropout: full and attention-qkv; × 2 norm × 3 mlp, less the full block.
    CHECK(variants == (c.attention == "naive" ? (c.dropout > 0 ? 17 : 11) : 11));
    for (const auto& l : run.profile.stages) {
      if (l.kind != "block") continue;
      INFO(l.name << " measured " << l.saved_bytes << " analytic " << analytic);
      CHECK(rel(static_cast<double>(l.saved_bytes), static_cast<double>(analytic)) < 0.02);
      CHECK(l.output_bytes == static_cast<std::uint64_t>(c.batch * c.seq * c.d_model * 4));
      // Every variant is measured, and keeps what Note [block variants] says.
      CHECK(l.variants.size() == variants);
      for (const auto& v : l.variants) {
        auto parsed = BlockVariant::parse(v.name);
        REQUIRE(parsed);
        const std::uint64_t expected = analytic_block_saved_bytes(c, *parsed);
        INFO(v.name << " measured " << v.saved_bytes << " analytic " << expected);
        CHECK(rel(static_cast<double>(v.saved_bytes), static_cast<double>(expected)) < 0.02);
        CHECK(v.saved_bytes < l.saved_bytes);
      }
    }
  }
}

TEST_CASE("no variant holds more than the plain block while its backward runs", "[torch][profiler]") {
  // A block holds its saved bytes plus its backward peak at the height of its backward; what
  // a variant frees must not come back there. The MLP variants rebuild a range of tokens at a
  // time for this (Note [block variants]): rebuilt whole, mlp-core held more than the plain
  // block on these shapes. (Naive attention's attention-core holds one T² tile more.)
  for (const char* arch : {"gpt", "llama"}) {
    for (const char* attention : {"chunked", "sdpa"}) {
      if (std::string(attention) == "sdpa" && !TIDEMARK_HAVE_SDPA) continue;
      ModelConfig c = shape(2, 256, 64, 4, 0.0);
      c.arch = arch;
      c.attention = attention;
      if (c.arch == "llama") c.kv_heads = 2;
      INFO(c.describe());
      const StageProfile b = profile(c).profile.stages[1];
      const std::uint64_t plain = b.saved_bytes + b.backward_peak_bytes;
      for (const auto& v : b.variants) {
        INFO(v.name << " holds " << v.saved_bytes << " + " << v.backward_peak_bytes << ", plain " << plain);
        CHECK(v.saved_bytes + v.backward_peak_bytes <= plain);
      }
    }
  }
}

TEST_CASE("chunked attention holds no B*H*T^2 tensor, forward or backward", "[torch][profiler]") {
  // Sequence 512 is four query blocks: a block's transients are a quarter of one T² tensor.
  for (double dropout : {0.0, 0.1}) {
    ModelConfig c = shape(1, 512, 32, 4, dropout);
    ModelConfig naive = c;
    c.attention = "chunked";
    INFO(c.describe());
    const std::uint64_t t2 = static_cast<std::uint64_t>(c.batch * c.heads * c.seq * c.seq * 4);
    const StageProfile chunked_block = profile(c).profile.stages[1];
    const StageProfile naive_block = profile(naive).profile.stages[1];
    CHECK(chunked_block.saved_bytes < t2 / 4);
    CHECK(chunked_block.forward_peak_bytes < t2);
    CHECK(chunked_block.backward_peak_bytes < t2);
    // The naive block keeps at least the probabilities and makes them in forward and backward.
    CHECK(naive_block.saved_bytes > t2);
    CHECK(naive_block.forward_peak_bytes > t2);
    CHECK(naive_block.backward_peak_bytes > t2);
  }
}

TEST_CASE("saved bytes scale with batch linearly and with sequence as the count says", "[torch][profiler]") {
  auto block_saved = [](const ModelConfig& c) { return static_cast<double>(profile(c).profile.stages[1].saved_bytes); };
  const ModelConfig base = shape(2, 32, 64, 4);
  ModelConfig twice_batch = base;
  twice_batch.batch = 4;
  ModelConfig twice_seq = base;
  twice_seq.seq = 64;
  const double s = block_saved(base), sb = block_saved(twice_batch), st = block_saved(twice_seq);
  CHECK(rel(sb, 2 * s) < 0.02);
  // Doubling the sequence doubles the B*T*C terms and quadruples the attention scores.
  const double expected_ratio = static_cast<double>(analytic_block_saved_bytes(twice_seq)) /
                                static_cast<double>(analytic_block_saved_bytes(base));
  CHECK(expected_ratio > 2.4);
  CHECK(rel(st / s, expected_ratio) < 0.02);
}

TEST_CASE("the profile predicts the measured no-checkpoint peak", "[torch][profiler]") {
  for (const auto& c : {shape(2, 32, 64, 4), shape(4, 64, 64, 4)}) {
    INFO(c.describe());
    ProfileRun run = profile(c);
    const ChainProfile& p = run.profile;
    // Static bytes plus what every stage retains, plus the last backward's transient.
    std::uint64_t retained = p.static_bytes.resident();
    for (const auto& l : p.stages) retained += l.output_bytes + l.saved_bytes;
    CHECK(retained <= p.peak_bytes);
    CHECK(rel(static_cast<double>(retained), static_cast<double>(p.peak_bytes)) < 0.25);
    // The simulator composes the same numbers with each operation's transient peak.
    auto sim = planner::simulate(planner::chain_from_profile(p), PlanNode::sequence(0, static_cast<int>(p.stages.size()),
                                                                                       {PlanNode::save(0, static_cast<int>(p.stages.size()))}));
    INFO("simulated " << sim.peak_bytes << " measured " << p.peak_bytes);
    CHECK(rel(static_cast<double>(sim.peak_bytes), static_cast<double>(p.peak_bytes)) < 0.05);
    CHECK(p.static_bytes.optimizer_state == 2 * p.static_bytes.gradients);
    CHECK(p.static_bytes.inputs == static_cast<std::uint64_t>(2 * c.batch * c.seq * 8));
  }
}

TEST_CASE("a profile trace has every stage in forward and backward and classified memory", "[torch][profiler]") {
  const ModelConfig c = shape(2, 32, 64, 4);
  ProfileRun run = profile(c, /*trace=*/true);
  REQUIRE(run.trace);
  const Trace& t = *run.trace;
  const int L = static_cast<int>(c.stages());
  REQUIRE(static_cast<int>(t.stages.size()) == L);
  for (int k = 0; k < L; ++k) {
    int fwd = 0, bwd = 0;
    for (const auto& s : t.spans) {
      fwd += s.stage == k && s.phase == Phase::Forward;
      bwd += s.stage == k && s.phase == Phase::Backward;
    }
    CHECK(fwd == 2);  // two measured steps
    CHECK(bwd == 2);
  }
  REQUIRE(t.steps.size() == 2);
  REQUIRE(t.memory.size() > 10);
  const auto& p = run.profile;
  auto at = [&](MemoryCategory cat, size_t i) { return t.memory.category[static_cast<int>(cat)][i]; };
  std::uint64_t max_grad = 0, max_act = 0;
  for (size_t i = 0; i < t.memory.size(); ++i) {
    // Parameters and buffers are resident throughout; optimizer state exists after warm-up.
    CHECK(at(MemoryCategory::Parameter, i) == p.static_bytes.parameters);
    CHECK(at(MemoryCategory::OptimizerState, i) == p.static_bytes.optimizer_state);
    max_grad = std::max(max_grad, at(MemoryCategory::Gradient, i));
    max_act = std::max(max_act, at(MemoryCategory::Activation, i));
  }
  // All gradients exist together at the end of backward.
  CHECK(max_grad == p.static_bytes.gradients);
  // At the end of forward every stage's output and saved tensors are activations.
  std::uint64_t retained = 0;
  for (const auto& l : p.stages) retained += l.output_bytes + l.saved_bytes;
  CHECK(rel(static_cast<double>(max_act), static_cast<double>(retained)) < 0.02);
  CHECK(t.peak_bytes == p.peak_bytes);
}

TEST_CASE("blocks of one shape share pooled times; other stages keep their own", "[torch][profiler]") {
  const ModelConfig c = testing::gpt_config(3, 64, 4, 32, 3);
  const ChainProfile p = profile(c).profile;
  REQUIRE(p.stages.size() == 5);
  const auto& b0 = p.stages[1];
  for (int k = 2; k <= 3; ++k) {
    const auto& b = p.stages[static_cast<std::size_t>(k)];
    CHECK(b.forward_ms == b0.forward_ms);
    CHECK(b.backward_ms == b0.backward_ms);
    CHECK(b.forward_nograd_ms == b0.forward_nograd_ms);
    REQUIRE(b.variants.size() == b0.variants.size());
    for (std::size_t v = 0; v < b.variants.size(); ++v) CHECK(b.variants[v].backward_ms == b0.variants[v].backward_ms);
  }
  // The head computes something else: its time is its own (a tie would need equal medians
  // of different kernels to the nanosecond).
  CHECK(p.stages.back().backward_ms != b0.backward_ms);
  CHECK(p.stages.front().forward_ms != b0.forward_ms);
}
