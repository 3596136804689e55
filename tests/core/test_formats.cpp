#include <nlohmann/json.hpp>

#include "catch.hpp"
#include "common/fixtures.hpp"
#include "common/format_error.hpp"
#include "common/text.hpp"
#include "tidemark/core/error.hpp"
#include "tidemark/core/plan.hpp"
#include "tidemark/core/profile.hpp"
#include "tidemark/core/report.hpp"
#include "tidemark/core/trace.hpp"

using namespace tidemark;
using nlohmann::json;

namespace {

using testing::contains;
using testing::format_error_of;

}  // namespace

TEST_CASE("profile round-trips through JSON", "[core]") {
  ChainProfile p = testing::make_profile(3);
  p.stages[2].variants.push_back(StageVariant{"attention-core", 123, 456, 789, 900, 1.5, 2.5});
  ChainProfile q = profile_from_json(profile_to_json(p), "p.json");
  REQUIRE(q.stages.size() == 5);
  CHECK(q.stages[1].saved_bytes == p.stages[1].saved_bytes);
  CHECK(q.stages[0].input_requires_grad == false);
  CHECK(q.static_bytes.resident() == p.static_bytes.resident());
  CHECK(q.stages[2].variants.at(0).name == "attention-core");
  CHECK(q.stages[2].variants.at(0).backward_ms == 2.5);
  CHECK(q.stages[2].variants.at(0).backward_held_peak_bytes == 900);
  CHECK(q.digest == p.config.digest());
}

TEST_CASE("a profile without held backward peaks reads them as the plain peaks", "[core]") {
  ChainProfile p = testing::make_profile(2);
  p.stages[1].backward_held_peak_bytes = p.stages[1].backward_peak_bytes + 64;
  json doc = json::parse(profile_to_json(p));
  CHECK(profile_from_json(doc.dump(), "p.json").stages[1].backward_held_peak_bytes ==
        p.stages[1].backward_peak_bytes + 64);
  for (auto& l : doc["layers"]) l.erase("backward_held_peak_bytes");
  const ChainProfile q = profile_from_json(doc.dump(), "p.json");
  for (const auto& l : q.stages) CHECK(l.backward_held_peak_bytes == l.backward_peak_bytes);
  // Below the plain peak is impossible (holding a gradient never frees memory): raised to it.
  doc["layers"][1]["backward_held_peak_bytes"] = 1;
  CHECK(profile_from_json(doc.dump(), "p.json").stages[1].backward_held_peak_bytes ==
        p.stages[1].backward_peak_bytes);
}

TEST_CASE("profile reader names the file and field of bad input", "[core]") {
  ChainProfile p = testing::make_profile(2);
  json doc = json::parse(profile_to_json(p));

  json neg = doc;
  neg["layers"][1]["saved_bytes"] = -5;
  std::string e = format_error_of([&] { profile_from_json(neg.dump(), "p.json"); });
  CHECK(contains(e, "p.json"));
  CHECK(contains(e, "layers[1].saved_bytes"));

  json nan = doc;
  nan["layers"][0]["forward_ms"] = "NaN";
  CHECK(contains(format_error_of([&] { profile_from_json(nan.dump(), "p.json"); }), "layers[0].forward_ms"));

  json ver = doc;
  ver["version"] = 2;
  CHECK(contains(format_error_of([&] { profile_from_json(ver.dump(), "p.json"); }), "version 2"));

  json schema = doc;
  schema["schema"] = "tidemark.report";
  CHECK(contains(format_error_of([&] { profile_from_json(schema.dump(), "p.json"); }), "tidemark.report"));

  json empty = doc;
  empty["layers"] = json::array();
  CHECK(contains(format_error_of([&] { profile_from_json(empty.dump(), "p.json"); }), "zero stages"));

  json stages = doc;
  stages["layers"].erase(1);
  CHECK(contains(format_error_of([&] { profile_from_json(stages.dump(), "p.json"); }), "stages"));

  CHECK(contains(format_error_of([&] { profile_from_json("{\"schema\": ", "p.json"); }), "not valid JSON"));
  CHECK(contains(format_error_of([&] { profile_from_json("[1,2]", "p.json"); }), "p.json"));
  CHECK_THROWS_AS(read_profile("/nonexistent/p.json"), UserError);
}

TEST_CASE("plan round-trips and its tree is validated", "[core]") {
  Plan p;
  p.solver = "optimal";
  p.budget_bytes = 1000;
  p.stages = 5;
  p.digest = "abc";
  p.root = PlanNode::sequence(0, 5, {PlanNode::save(0, 1),
                                     PlanNode::checkpoint(1, 4, {PlanNode::save(1, 2, "attention-core"),
                                                                 PlanNode::checkpoint(2, 4, {PlanNode::save(2, 4)})}),
                                     PlanNode::save(4, 5)});
  p.predicted = Prediction{900, 12.5, 2.0};
  Plan q = plan_from_json(plan_to_json(p), "plan.json");
  CHECK(describe(q.root) == describe(p.root));
  CHECK(q.predicted.peak_bytes == 900);

  json doc = json::parse(plan_to_json(p));
  json gap = doc;
  gap["root"]["children"][1]["begin"] = 2;
  CHECK(contains(format_error_of([&] { plan_from_json(gap.dump(), "plan.json"); }), "gap"));
  json overlap = doc;
  overlap["root"]["children"][2]["begin"] = 3;
  CHECK(contains(format_error_of([&] { plan_from_json(overlap.dump(), "plan.json"); }), "overlap"));
  json short_root = doc;
  short_root["profile"]["layers"] = 6;
  CHECK(contains(format_error_of([&] { plan_from_json(short_root.dump(), "plan.json"); }), "6 stages"));
  json bad_op = doc;
  bad_op["root"]["children"][0]["op"] = "teleport";
  CHECK(contains(format_error_of([&] { plan_from_json(bad_op.dump(), "plan.json"); }), "teleport"));
}

TEST_CASE("trace and report round-trip and chrome export has spans and counters", "[core]") {
  Trace t;
  t.mode = "plan";
  t.budget_bytes = 5000;
  t.stages = {{"embedding", "embedding", "save", 10}, {"block.0", "block", "checkpoint", 20}};
  t.spans = {{0, Phase::Forward, 0, 0, 10}, {1, Phase::Recompute, 0, 20, 30}};
  t.steps = {{0, 0, 40, 4000}};
  t.memory.push(0, {1, 2, 3, 4, 5, 6});
  t.memory.push(5, {1, 2, 3, 4, 50, 6});
  Trace u = trace_from_json(trace_to_json(t), "t.json");
  CHECK(u.memory.total.at(1) == 66);
  CHECK(u.spans.at(1).phase == Phase::Recompute);
  CHECK(*u.budget_bytes == 5000);
  json chrome = json::parse(trace_to_chrome_json(u));
  int x = 0, c = 0;
  for (const auto& e : chrome["traceEvents"]) {
    x += e["ph"] == "X";
    c += e["ph"] == "C";
  }
  CHECK(x == 3);  // two spans and one step
  CHECK(c == 2);

  json bad = json::parse(trace_to_json(t));
  bad["spans"][0]["stage"] = 7;
  CHECK(contains(format_error_of([&] { trace_from_json(bad.dump(), "t.json"); }), "spans[0].stage"));
  json ragged = json::parse(trace_to_json(t));
  ragged["memory"]["activation"].erase(0);
  CHECK(contains(format_error_of([&] { trace_from_json(ragged.dump(), "t.json"); }), "memory.activation"));

  Report r;
  r.steps = 2;
  r.losses = {5.5, 5.0};
  r.final_loss = 5.0;
  r.peak_bytes = 123;
  r.step_ms_median = 7;
  r.predicted = Prediction{120, 7.5, 1};
  Report s = report_from_json(report_to_json(r), "r.json");
  CHECK(s.losses == r.losses);
  CHECK(s.predicted->peak_bytes == 120);
  CHECK(contains(format_error_of([&] { report_from_json(trace_to_json(t), "r.json"); }), "tidemark.trace"));
}

TEST_CASE("median", "[core]") {
  CHECK(median({}) == 0);
  CHECK(median({3, 1, 2}) == 2);
  CHECK(median({4, 1, 3, 2}) == 2.5);
}

TEST_CASE("a profile's and a plan's sharding round-trip, and bad ones are refused", "[core]") {
  ChainProfile p = testing::make_profile(2);
  CHECK_FALSE(profile_from_json(profile_to_json(p), "p.json").sharding.known());  // files from before ZeRO
  p.sharding = Sharding{2, 3, 4096};
  const ChainProfile q = profile_from_json(profile_to_json(p), "p.json");
  CHECK(q.sharding == p.sharding);
  CHECK(q.sharding.reduce_buffer_bytes == 4096);
  CHECK(q.sharding.describe() == "2 ranks, ZeRO-3");

  json doc = json::parse(profile_to_json(p));
  json stage = doc;
  stage["sharding"]["zero"] = 4;
  CHECK(contains(format_error_of([&] { profile_from_json(stage.dump(), "p.json"); }), "sharding.zero"));
  json none = doc;
  none["sharding"]["ranks"] = 0;
  CHECK(contains(format_error_of([&] { profile_from_json(none.dump(), "p.json"); }), "sharding.ranks"));

  Plan plan;
  plan.solver = "optimal";
  plan.stages = 4;
  plan.digest = "abc";
  plan.root = PlanNode::sequence(0, 4, {PlanNode::save(0, 4)});
  CHECK_FALSE(plan_from_json(plan_to_json(plan), "plan.json").sharding.known());
  plan.sharding = Sharding{4, 1, 0};
  const Plan back = plan_from_json(plan_to_json(plan), "plan.json");
  CHECK(back.sharding == plan.sharding);
  CHECK(back.sharding.describe() == "4 ranks, ZeRO-1");
}

TEST_CASE("offload round-trips: a profile's host link, a plan's offloaded nodes and host bytes", "[core][offload]") {
  ChainProfile p = testing::make_profile(2);
  CHECK_FALSE(profile_from_json(profile_to_json(p), "p.json").host_link.measured());  // the CPU
  p.host_link = HostLink{24.5e6, 26.25e6};
  const ChainProfile q = profile_from_json(profile_to_json(p), "p.json");
  CHECK(q.host_link.d2h_bytes_per_ms == 24.5e6);
  CHECK(q.host_link.h2d_bytes_per_ms == 26.25e6);
  json doc = json::parse(profile_to_json(p));
  doc["host_link"]["h2d_bytes_per_ms"] = 0;
  CHECK(contains(format_error_of([&] { profile_from_json(doc.dump(), "p.json"); }), "host_link.h2d_bytes_per_ms"));

  Plan plan;
  plan.solver = "optimal";
  plan.stages = 4;
  plan.digest = "abc";
  PlanNode ck = PlanNode::checkpoint(1, 3, {PlanNode::save(1, 3)});
  ck.offload = true;
  PlanNode saved = PlanNode::save(3, 4, "attention-core");
  saved.offload = true;
  plan.root = PlanNode::sequence(0, 4, {PlanNode::save(0, 1), ck, saved});
  plan.predicted.host_peak_bytes = 123456;
  plan.predicted.copy_ms = 1.5;
  const std::string text = plan_to_json(plan);
  const Plan back = plan_from_json(text, "plan.json");
  CHECK(describe(back.root) == "save[0,1) ckpt[1,3)@host{save[1,3)} save[3,4)<attention-core>@host");
  CHECK(offloads(back.root));
  CHECK(back.predicted.host_peak_bytes == 123456);
  CHECK(back.predicted.copy_ms == 1.5);
  // A plan that offloads nothing writes no offload fields: files stay as before.
  plan.root = PlanNode::sequence(0, 4, {PlanNode::save(0, 4)});
  CHECK(plan_to_json(plan).find("offload") == std::string::npos);
  CHECK(plan_to_json(plan).find("host_peak_bytes") == std::string::npos);

  // Offload where it cannot mean anything is refused by name.
  json bad = json::parse(text);
  bad["root"]["children"][1]["inner"][0]["offload"] = true;
  CHECK(contains(format_error_of([&] { plan_from_json(bad.dump(), "plan.json"); }), "offloads inside a checkpoint"));
  json seq = json::parse(text);
  seq["root"]["offload"] = true;
  CHECK(contains(format_error_of([&] { plan_from_json(seq.dump(), "plan.json"); }), "a sequence does not offload"));
  json not_bool = json::parse(text);
  not_bool["root"]["children"][2]["offload"] = "yes";
  CHECK(contains(format_error_of([&] { plan_from_json(not_bool.dump(), "plan.json"); }), "offload"));
}
