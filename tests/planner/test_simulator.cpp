#include "catch.hpp"
#include "common/fixtures.hpp"
#include "tidemark/core/error.hpp"
#include "tidemark/planner/simulator.hpp"

using namespace tidemark;
using namespace tidemark::planner;

namespace {

PlanNode no_checkpoint(int n) { return PlanNode::sequence(0, n, {PlanNode::save(0, n)}); }

// Checkpoint every block alone, Hugging Face style.
PlanNode uniform(const ChainCosts& c) {
  std::vector<PlanNode> parts;
  for (int k = 0; k < c.size(); ++k) {
    if (c.stages[k].kind == "block") {
      parts.push_back(PlanNode::checkpoint(k, k + 1, {PlanNode::save(k, k + 1)}));
    } else {
      parts.push_back(PlanNode::save(k, k + 1));
    }
  }
  return PlanNode::sequence(0, c.size(), std::move(parts));
}

}  // namespace

TEST_CASE("simulating no checkpointing keeps every activation until backward", "[planner]") {
  ChainCosts c = chain_from_profile(testing::make_profile(4));
  Prediction s = simulate(c, no_checkpoint(c.size()));
  std::uint64_t retained = 0;
  for (const auto& st : c.stages) retained += st.out + st.plain().saved;
  // The forward of the head ends with everything retained; backward of the head starts there.
  const auto& head = c.stages.back();
  std::uint64_t at_head_backward = c.resident + head.out + retained;
  CHECK(s.peak_bytes >= at_head_backward);
  double t = c.fixed_ms;
  for (const auto& st : c.stages) t += st.plain().forward_ms + st.plain().backward_ms;
  CHECK(s.step_ms == Approx(t));
  CHECK(s.recompute_ms == 0);
  // Everything but parameter gradients (and the kept loss) is freed by the end.
  std::uint64_t grads = 0;
  for (const auto& st : c.stages) grads += st.param;
  CHECK(s.end_bytes == c.resident + grads + head.out);
}

TEST_CASE("uniform checkpointing lowers the peak and pays one extra forward per block", "[planner]") {
  ChainCosts c = chain_from_profile(testing::make_profile(6));
  Prediction none = simulate(c, no_checkpoint(c.size()));
  Prediction uni = simulate(c, uniform(c));
  CHECK(uni.peak_bytes < none.peak_bytes);
  double extra = 0;
  for (const auto& st : c.stages) {
    if (st.kind == "block") extra += st.nograd_ms;
  }
  CHECK(uni.step_ms == Approx(none.step_ms + extra));
  CHECK(uni.recompute_ms == Approx([&] {
          double r = 0;
          for (const auto& st : c.stages)
            if (st.kind == "block") r += st.plain().forward_ms;
          return r;
        }()));
  CHECK(uni.end_bytes == none.end_bytes);
}

TEST_CASE("a variant's rebuild is recompute: its time over the plain form, none when it is faster", "[planner]") {
  ChainCosts c = chain_from_profile(testing::make_profile(4));
  const int k = 1;
  VariantCost slow = c.stages[k].plain(), fast = c.stages[k].plain();
  slow.name = "slow";
  slow.forward_ms -= 1.0;  // a variant can be faster forward (it keeps less) ...
  slow.backward_ms += 5.0;  // ... and pays in backward
  fast.name = "fast";
  fast.backward_ms -= 2.0;
  c.stages[k].variants.push_back(slow);
  c.stages[k].variants.push_back(fast);
  auto with = [&](const std::string& v) {
    return PlanNode::sequence(0, c.size(), {PlanNode::save(0, k), PlanNode::save(k, k + 1, v),
                                            PlanNode::save(k + 1, c.size())});
  };
  const Prediction none = simulate(c, no_checkpoint(c.size()));
  const Prediction s = simulate(c, with("slow"));
  CHECK(s.step_ms == Approx(none.step_ms + 4.0));
  CHECK(s.recompute_ms == Approx(4.0));
  CHECK(simulate(c, with("fast")).recompute_ms == 0);
}

TEST_CASE("simulator refuses plans that do not fit the chain", "[planner]") {
  ChainCosts c = chain_from_profile(testing::make_profile(2));
  CHECK_THROWS_AS(simulate(c, PlanNode::sequence(0, 3, {PlanNode::save(0, 3)})), FormatError);
  CHECK_THROWS_AS(simulate(c, PlanNode::sequence(0, 4, {PlanNode::save(0, 4, "nonesuch")})), FormatError);
}

TEST_CASE("profiles whose stages do not form a chain are refused", "[planner]") {
  ChainProfile p = testing::make_profile(2);
  p.stages[2].input_bytes += 4;
  CHECK_THROWS_AS(chain_from_profile(p), FormatError);
  ChainProfile q = testing::make_profile(2);
  q.stages[1].input_requires_grad = false;
  CHECK_THROWS_AS(chain_from_profile(q), FormatError);
  ChainProfile r = testing::make_profile(2);
  r.stages[1].variants.push_back(StageVariant{"full", 1, 1, 1, 1, 1});
  CHECK_THROWS_AS(chain_from_profile(r), FormatError);
}

TEST_CASE("from ZeRO-1 on a stage's backward keeps no gradients, and one reduction is in flight", "[planner]") {
  ChainProfile p = testing::make_profile(4);
  const ChainCosts plain = chain_from_profile(p);
  p.sharding = Sharding{2, 2, 500'000};
  const ChainCosts z2 = chain_from_profile(p);
  CHECK(z2.resident == plain.resident + 500'000);
  for (const auto& s : z2.stages) CHECK(s.param == 0);
  // Without kept gradients the end of backward holds only the static bytes (and the loss).
  const Prediction none = simulate(z2, no_checkpoint(z2.size()));
  CHECK(none.end_bytes == z2.resident + z2.stages.back().out);
  // ZeRO-1's stage buffers are static (measured in `other`): nothing in flight is added.
  p.sharding = Sharding{2, 1, 0};
  CHECK(chain_from_profile(p).resident == plain.resident);
}

// Note [offload], by hand on a three-stage chain: what leaves the device, when it comes
// back, and which copy time is hidden.
TEST_CASE("offload moves a saved set or a checkpoint's input to the host and back", "[planner][offload]") {
  ChainCosts c;
  c.resident = 100;
  c.d2h_bytes_per_ms = 10;  // 10 bytes per ms, so copies take whole milliseconds
  c.h2d_bytes_per_ms = 20;
  for (int k = 0; k < 3; ++k) {
    StageCost s;
    s.name = "s" + std::to_string(k);
    s.kind = "block";
    s.input = k == 0 ? 0 : 40;
    s.out = 40;
    s.input_grad = k > 0;
    s.nograd_ms = 2;
    // The last stage saves most, so the end of the forward sets the peak.
    s.variants.push_back(VariantCost{"", k == 2 ? 300u : 200u, 0, 0, 0, /*forward_ms=*/5, /*backward_ms=*/4});
    c.stages.push_back(s);
  }
  const Prediction none = simulate(c, PlanNode::sequence(0, 3, {PlanNode::save(0, 3)}));
  // After the forward: resident, three outputs, three saved sets; then the loss gradient.
  CHECK(none.peak_bytes == 100 + 3 * 40 + 2 * 200 + 300 + 40);
  CHECK(none.host_peak_bytes == 0);
  CHECK(none.copy_ms == 0);

  PlanNode saved_out = PlanNode::save(0, 2);
  saved_out.offload = true;
  const Prediction off = simulate(c, PlanNode::sequence(0, 3, {saved_out, PlanNode::save(2, 3)}));
  // Stages 0 and 1 keep their 200 saved bytes on the host until their backward.
  CHECK(off.peak_bytes == none.peak_bytes - 2 * 200);
  CHECK(off.host_peak_bytes == 2 * 200);
  // d2h 200/10 = 20 ms, 5 hidden behind the forward; h2d 200/20 = 10 ms, 4 hidden: per stage
  // 15 + 6 ms exposed.
  CHECK(off.copy_ms == 2 * (15 + 6));
  CHECK(off.step_ms == none.step_ms + off.copy_ms);
  CHECK(off.end_bytes == none.end_bytes);

  // A checkpoint of stage 1 offloaded: its input (40 bytes) leaves after the no-grad forward
  // (40/10 = 4 ms, 2 of them hidden behind it) and comes back unhidden (40/20 = 2 ms).
  PlanNode ck = PlanNode::checkpoint(1, 2, {PlanNode::save(1, 2)});
  const Prediction kept = simulate(c, PlanNode::sequence(0, 3, {PlanNode::save(0, 1), ck, PlanNode::save(2, 3)}));
  ck.offload = true;
  const Prediction ck_off = simulate(c, PlanNode::sequence(0, 3, {PlanNode::save(0, 1), ck, PlanNode::save(2, 3)}));
  CHECK(ck_off.host_peak_bytes == 40);
  CHECK(ck_off.copy_ms == (4 - 2) + 2);
  CHECK(ck_off.step_ms == kept.step_ms + ck_off.copy_ms);
  CHECK(ck_off.peak_bytes == kept.peak_bytes - 40);
  CHECK(ck_off.end_bytes == kept.end_bytes);
}

TEST_CASE("offload is refused where it cannot run", "[planner][offload]") {
  ChainCosts c = chain_from_profile(testing::make_profile(2));
  REQUIRE_FALSE(c.can_offload());
  PlanNode saved = PlanNode::save(0, c.size());
  saved.offload = true;
  CHECK_THROWS_WITH(simulate(c, PlanNode::sequence(0, c.size(), {saved})),
                    Catch::Matchers::ContainsSubstring("measured no host link"));
  c.d2h_bytes_per_ms = c.h2d_bytes_per_ms = 1e6;
  // Inside a checkpoint, and on stage 0's input (the batch): refused by the plan's checks.
  PlanNode inner = PlanNode::save(1, 2);
  inner.offload = true;
  CHECK_THROWS_WITH(simulate(c, PlanNode::sequence(0, c.size(), {PlanNode::save(0, 1),
                                                                 PlanNode::checkpoint(1, 2, {inner}),
                                                                 PlanNode::save(2, c.size())})),
                    Catch::Matchers::ContainsSubstring("offloads inside a checkpoint"));
  PlanNode first = PlanNode::checkpoint(0, 1, {PlanNode::save(0, 1)});
  first.offload = true;
  CHECK_THROWS_WITH(simulate(c, PlanNode::sequence(0, c.size(), {first, PlanNode::save(1, c.size())})),
                    Catch::Matchers::ContainsSubstring("input of stage 0"));
}
