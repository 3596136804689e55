// Attention kinds (--attention): chunked attention against the naive formula, with and
// without dropout, alone and inside the GPT block; sdpa where LibTorch has it.
#include "catch.hpp"
#include "common/configs.hpp"
#include "grads.hpp"
#include "tidemark/profiler/allocator_hook.hpp"
#include "tidemark/runtime/gpt.hpp"
// White-box: the op and its query-block size, which the dropout reference replays.
#include "../../runtime/src/block_ops.hpp"

using namespace tidemark;
using namespace tidemark::runtime;

namespace {

// max |got - ref| / max |ref|.
double rel_err(const torch::Tensor& got, const torch::Tensor& ref) {
  return testing::max_relative_difference({ref}, {got});
}

struct Grads {
  torch::Tensor out, q, k, v;
};

// loss = sum(out * w) through `attend`, which returns [B, H, T, D].
template <class F>
Grads run(const torch::Tensor& q0, const torch::Tensor& k0, const torch::Tensor& v0, const torch::Tensor& w, F attend) {
  auto q = q0.clone().requires_grad_(true), k = k0.clone().requires_grad_(true), v = v0.clone().requires_grad_(true);
  auto out = attend(q, k, v);
  (out * w).sum().backward();
  return {out.detach(), q.grad(), k.grad(), v.grad()};
}

torch::Tensor causal_mask(std::int64_t T) { return torch::ones({T, T}, torch::kBool).triu(1); }

// Random q, k, v ([B, H, T, D]) and the weights w of the loss sum(out * w).
struct Inputs {
  torch::Tensor q, k, v, w;
};

Inputs random_inputs(std::int64_t B, std::int64_t H, std::int64_t T, std::int64_t D, std::uint64_t seed) {
  torch::manual_seed(seed);
  Inputs in;
  in.q = torch::randn({B, H, T, D}) * 0.5;
  in.k = torch::randn({B, H, T, D});
  in.v = torch::randn({B, H, T, D});
  in.w = torch::randn({B, H, T, D});
  return in;
}

// Output and every input gradient within `tol` of the reference.
void check_close(const Grads& got, const Grads& ref, double tol) {
  CHECK(rel_err(got.out, ref.out) < tol);
  CHECK(rel_err(got.q, ref.q) < tol);
  CHECK(rel_err(got.k, ref.k) < tol);
  CHECK(rel_err(got.v, ref.v) < tol);
}

// The naive formula, with dropout noise `noise` ([B, H, T, T], 0 or 1/(1-p)) when defined.
torch::Tensor naive(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& causal,
                    const torch::Tensor& noise) {
  auto scores = torch::matmul(q, k.transpose(-2, -1)).masked_fill(causal, -std::numeric_limits<float>::infinity());
  auto probs = torch::softmax(scores, -1);
  if (noise.defined()) probs = probs * noise;
  return torch::matmul(probs, v);
}

torch::Tensor chunked(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                      const torch::Tensor& causal, double p) {
  return block_ops::chunked_attention(q, k, v, causal, p, /*train=*/true).permute({0, 2, 1, 3});
}

// The noise chunked attention draws: block after block from the generator's current state.
torch::Tensor replay_noise(std::int64_t B, std::int64_t H, std::int64_t T, double p) {
  auto noise = torch::zeros({B, H, T, T});
  for (std::int64_t i0 = 0; i0 < T; i0 += block_ops::kAttentionBlock) {
    const std::int64_t i1 = std::min(T, i0 + block_ops::kAttentionBlock);
    noise.slice(2, i0, i1).slice(3, 0, i1).copy_(torch::empty({B, H, i1 - i0, i1}).bernoulli_(1.0 - p).div_(1.0 - p));
  }
  return noise;
}

torch::Tensor cpu_rng_state() { return at::detail::getDefaultCPUGenerator().get_state(); }

}  // namespace

TEST_CASE("chunked attention equals naive attention, output and gradients, without dropout", "[torch][attention]") {
  for (std::int64_t T : {50, 256, 300}) {  // one partial block, whole blocks, a partial last block
    INFO("T = " << T);
    const auto [q, k, v, w] = random_inputs(2, 3, T, 16, 3);
    const auto causal = causal_mask(T);
    Grads ref = run(q, k, v, w, [&](auto& a, auto& b, auto& c) { return naive(a, b, c, causal, {}); });
    Grads got = run(q, k, v, w, [&](auto& a, auto& b, auto& c) { return chunked(a, b, c, causal, 0.0); });
    check_close(got, ref, 1e-5);
  }
}

TEST_CASE("chunked attention with dropout equals the naive formula with the same noise", "[torch][attention]") {
  const double p = 0.2;
  for (std::int64_t T : {50, 300}) {
    INFO("T = " << T);
    const std::int64_t B = 2, H = 2;
    const auto [q, k, v, w] = random_inputs(B, H, T, 8, 5);
    const auto causal = causal_mask(T);

    torch::manual_seed(11);
    torch::Tensor after_forward, after_backward;
    Grads got = run(q, k, v, w, [&](auto& a, auto& b, auto& c) {
      auto out = chunked(a, b, c, causal, p);
      after_forward = cpu_rng_state();
      return out;
    });
    after_backward = cpu_rng_state();
    // Backward replays the forward's noise and puts the generator back where it found it.
    CHECK(torch::equal(after_forward, after_backward));

    torch::manual_seed(11);
    const auto noise = replay_noise(B, H, T, p);
    CHECK(torch::equal(cpu_rng_state(), after_forward));  // the forward drew exactly this noise
    Grads ref = run(q, k, v, w, [&](auto& a, auto& b, auto& c) { return naive(a, b, c, causal, noise); });
    Grads plain = run(q, k, v, w, [&](auto& a, auto& b, auto& c) { return naive(a, b, c, causal, {}); });
    CHECK(rel_err(got.out, plain.out) > 1e-2);  // dropout did something
    check_close(got, ref, 1e-5);
  }
}

TEST_CASE("chunked grouped-query attention keeps k and v at their heads and equals naive attention on repeated ones",
          "[torch][attention]") {
  const std::int64_t B = 2, H = 6, KV = 2, T = 200, D = 8;
  for (double p : {0.0, 0.2}) {
    INFO("p = " << p);
    torch::manual_seed(13);
    const auto q0 = torch::randn({B, H, T, D}) * 0.5, k0 = torch::randn({B, KV, T, D}), v0 = torch::randn({B, KV, T, D});
    const auto w = torch::randn({B, H, T, D});
    const auto causal = causal_mask(T);
    // Head h uses key/value head h / (H / KV), as HF's repeat_kv arranges them.
    auto repeat = [&](const torch::Tensor& t) { return t.repeat_interleave(H / KV, 1); };
    struct Out {
      torch::Tensor out, q, k, v;
    };
    auto run_with = [&](bool ours) {
      auto q = q0.clone().requires_grad_(true), k = k0.clone().requires_grad_(true), v = v0.clone().requires_grad_(true);
      torch::manual_seed(17);
      torch::Tensor out;
      if (ours) {
        out = chunked(q, k, v, causal, p);
      } else {
        const auto noise = p > 0 ? replay_noise(B, H, T, p) : torch::Tensor();
        out = naive(q, repeat(k), repeat(v), causal, noise);
      }
      (out * w).sum().backward();
      return Out{out.detach(), q.grad(), k.grad(), v.grad()};
    };
    const Out ref = run_with(false), got = run_with(true);
    CHECK(rel_err(got.out, ref.out) < 1e-5);
    CHECK(rel_err(got.q, ref.q) < 1e-5);
    CHECK(rel_err(got.k, ref.k) < 1e-5);
    CHECK(rel_err(got.v, ref.v) < 1e-5);
  }
}

TEST_CASE("the out-projection of head-major heads keeps the heads and not a merged copy and equals linear", "[torch][attention]") {
  const std::int64_t B = 2, H = 4, T = 96, D = 8, C = H * D;
  torch::manual_seed(7);
  const auto heads0 = torch::randn({B, H, T, D});  // head-major, as sdpa's CPU kernel returns it
  const auto w0 = torch::randn({C, C}) * 0.1, b0 = torch::randn({C}), up = torch::randn({B, T, C});
  for (bool bias : {true, false}) {
    INFO("bias " << bias);
    struct Out {
      torch::Tensor y, heads, w, b;
    };
    auto run_with = [&](bool ours) {
      auto heads = heads0.clone().requires_grad_(true), w = w0.clone().requires_grad_(true);
      auto b = bias ? b0.clone().requires_grad_(true) : torch::Tensor();
      auto y = ours ? block_ops::merged_heads_linear(heads, w, b)
                    : torch::linear(heads.transpose(1, 2).contiguous().view({B, T, C}), w, b);
      (y * up).sum().backward();
      return Out{y.detach(), heads.grad(), w.grad(), bias ? b.grad() : torch::Tensor()};
    };
    const Out ref = run_with(false), got = run_with(true);
    CHECK(torch::equal(got.y, ref.y));
    CHECK(torch::equal(got.heads, ref.heads));
    CHECK(torch::equal(got.w, ref.w));
    if (bias) CHECK(torch::equal(got.b, ref.b));

    // What the graph keeps beyond the heads (which the kernel keeps anyway) and the output:
    // the plain form a merged copy, ours nothing.
    auto kept = [&](bool ours) {
      auto heads = heads0.clone().requires_grad_(true), w = w0.clone().requires_grad_(true);
      profiler::AllocatorHookGuard hook;
      const auto before = profiler::ledger().live();
      auto y = ours ? block_ops::merged_heads_linear(heads, w, {})
                    : torch::linear(heads.transpose(1, 2).contiguous().view({B, T, C}), w);
      return profiler::ledger().live() - before - y.numel() * 4;
    };
    CHECK(kept(false) == B * T * C * 4);
    CHECK(kept(true) == 0);
  }
}

#if TIDEMARK_HAVE_SDPA
TEST_CASE("sdpa with grouped-query heads keeps k and v at their KV heads and equals sdpa on repeated ones", "[torch][attention]") {
  ModelConfig config = testing::gpt_config(1, 32, 4, 16, 1, /*dropout=*/0.0);
  config.attention = "sdpa";
  if (!runs_cpu_flash(config)) return;  // LibTorch 2.1 and 2.2: no CPU flash op to call; sdpa repeats k and v
  const std::int64_t B = 2, H = 8, KV = 2, T = 80, D = 16;
  torch::manual_seed(11);
  const auto q0 = torch::randn({B, H, T, D}) * 0.25, k0 = torch::randn({B, KV, T, D}), v0 = torch::randn({B, KV, T, D});
  const auto w = torch::randn({B, H, T, D});
  auto repeated = [&](const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
    return at::scaled_dot_product_attention(q, block_ops::repeat_heads(k, H / KV), block_ops::repeat_heads(v, H / KV),
                                            {}, 0.0, /*is_causal=*/true, /*scale=*/1.0);
  };
  auto grouped = [](const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
    return block_ops::sdpa_attention(q, k, v, 0.0, /*train=*/true);
  };
  const Grads ref = run(q0, k0, v0, w, repeated), got = run(q0, k0, v0, w, grouped);
  CHECK(torch::equal(got.out, ref.out));
  CHECK(rel_err(got.q, ref.q) < 1e-6);
  CHECK(rel_err(got.k, ref.k) < 1e-6);
  CHECK(rel_err(got.v, ref.v) < 1e-6);

  // What the graph keeps past its inputs and output: the log-sum-exp per query and head, and
  // with repeated k and v, those copies too.
  auto kept = [&](bool ours) {
    auto q = q0.clone().requires_grad_(true), k = k0.clone().requires_grad_(true), v = v0.clone().requires_grad_(true);
    profiler::AllocatorHookGuard hook;
    const auto before = profiler::ledger().live();
    auto out = ours ? grouped(q, k, v) : repeated(q, k, v);
    return profiler::ledger().live() - before - out.numel() * 4;
  };
  CHECK(kept(true) == B * H * T * 4);
  CHECK(kept(false) == B * H * T * 4 + 2 * B * H * T * D * 4);
}
#endif

TEST_CASE("gpt and llama blocks with chunked or sdpa attention train like the naive ones", "[torch][attention]") {
  std::vector<std::string> kinds = {"chunked"};
  if (TIDEMARK_HAVE_SDPA) kinds.push_back("sdpa");
  for (const std::string arch : {"gpt", "llama"})
  for (const std::string& kind : kinds) {
    INFO(arch << " " << kind);
    ModelConfig c = testing::gpt_config(2, 32, 4, 200, 2, /*dropout=*/0.0);
    c.arch = arch;
    if (arch == "llama") c.kv_heads = 2;
    torch::manual_seed(1);
    GPT ref(c);
    c.attention = kind;
    torch::manual_seed(1);
    GPT model(c);
    torch::manual_seed(2);
    auto idx = torch::randint(0, c.vocab, {c.batch, c.seq}, torch::kLong);
    auto targets = torch::randint(0, c.vocab, {c.batch, c.seq}, torch::kLong);
    auto loss_ref = ref->forward(idx, targets);
    auto loss = model->forward(idx, targets);
    CHECK(std::abs(loss.item<double>() - loss_ref.item<double>()) < 1e-5 * std::abs(loss_ref.item<double>()));
    loss_ref.backward();
    loss.backward();
    CHECK(testing::max_relative_difference(testing::grads_of(*ref), testing::grads_of(*model)) < 1e-4);
  }
}

TEST_CASE("an attention kind the build lacks or that does not exist is refused", "[torch][attention]") {
  ModelConfig c = testing::gpt_config(1, 32, 4, 16, 1);
  c.attention = "flash";
  CHECK_THROWS_WITH(c.validate(), Catch::Matchers::ContainsSubstring("use naive, chunked or sdpa"));
  c.attention = "sdpa";
  if (!TIDEMARK_HAVE_SDPA) {
    CHECK_THROWS_WITH(GPT(c), Catch::Matchers::ContainsSubstring("use --attention chunked"));
  } else {
    CHECK_NOTHROW(GPT(c));
  }
}

TEST_CASE("the default attention is the fastest kind the build has for the model", "[torch][attention]") {
  ModelConfig c = testing::gpt_config(1, 32, 4, 256, 1, /*dropout=*/0.1);
  CHECK(best_attention(c) == "naive");  // chunked's blockwise loop costs time this short
  c.seq = kChunkedFrom;
  CHECK(best_attention(c) == "chunked");
  c.dropout = 0;  // the CPU's fused sdpa kernel runs without dropout only
  CHECK(best_attention(c) == (TIDEMARK_HAVE_SDPA ? "sdpa" : "chunked"));
  c.dropout = 0.1;
  c.device = "cuda";
  CHECK(best_attention(c) == (TIDEMARK_HAVE_SDPA ? "sdpa" : "chunked"));
}
