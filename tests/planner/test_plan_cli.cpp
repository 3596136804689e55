// `tidemark plan` end to end: runs the built binary (with tests/cli's runner) on hand-made
// profiles and checks exit codes, the one error line, and the fields of the plan it writes.
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <string>

#include "catch.hpp"
#include "cli/run.hpp"
#include "common/fixtures.hpp"
#include "tidemark/core/files.hpp"
#include "tidemark/core/profile.hpp"
#include "tidemark/planner/baselines.hpp"
#include "tidemark/planner/simulator.hpp"

using nlohmann::json;
using tidemark::testing::error_lines;
using tidemark::testing::file_exists;
using tidemark::testing::Run;
using tidemark::testing::run_tidemark;

namespace {

Run run_plan(const std::string& args) { return run_tidemark("plan " + args); }

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The GPT fixture with lighter static bytes, so that activations dominate as in training,
// and a measured peak consistent with the simulator's.
tidemark::ChainProfile test_profile() {
  tidemark::ChainProfile p = tidemark::testing::make_profile(6);
  std::uint64_t params = 0;
  for (auto& layer : p.stages) {
    layer.param_bytes /= 10;
    params += layer.param_bytes;
  }
  p.static_bytes.parameters = params;
  p.static_bytes.gradients = params;
  p.static_bytes.optimizer_state = 2 * params;
  const auto chain = tidemark::planner::chain_from_profile(p);
  p.peak_bytes = tidemark::planner::simulate(chain, tidemark::planner::none_plan(chain)).peak_bytes;
  return p;
}

// A scratch directory with a valid profile in it.
struct Workdir {
  std::string dir;
  std::string profile;
  explicit Workdir(const std::string& name) : dir(tidemark::testing::scratch_dir(name)) {
    profile = path("profile.json");
    tidemark::write_profile(profile, test_profile());
  }
  std::string path(const std::string& name) const { return dir + "/" + name; }
  // Writes the profile's JSON after `edit` changes it.
  template <class Edit>
  std::string edited_profile(const std::string& name, Edit edit) const {
    json doc = json::parse(tidemark::profile_to_json(test_profile()));
    edit(doc);
    tidemark::write_file_atomic(path(name), doc.dump());
    return path(name);
  }
};

void expect_refused(const Run& r, const std::string& needle) {
  INFO(r.output);
  CHECK(r.rc == 2);
  CHECK(error_lines(r.output) == 1);
  CHECK(r.output.find(needle) != std::string::npos);
}

}  // namespace

TEST_CASE("tidemark plan writes a plan with the documented fields", "[planner][cli]") {
  Workdir w("plan-cli-fields");
  const Run r = run_plan(w.profile + " --budget 0.6 -o " + w.path("plan.json") + " --pareto " +
                         w.path("pareto.csv"));
  INFO(r.output);
  REQUIRE(r.rc == 0);
  CHECK(r.output.find("predicted peak:") != std::string::npos);
  CHECK(r.output.find("against uniform") != std::string::npos);
  CHECK(r.output.find("(gpt), 8 stages") != std::string::npos);  // the arch, from the profile's config
  const json plan = json::parse(tidemark::read_text_file(w.path("plan.json")));
  CHECK(plan["schema"] == "tidemark.plan");
  CHECK(plan["version"] == 1);
  CHECK(plan["solver"] == "optimal");
  const auto peak = test_profile().peak_bytes;
  CHECK(plan["budget_bytes"].get<std::uint64_t>() == static_cast<std::uint64_t>(0.6 * peak));
  CHECK(plan["root"]["op"] == "sequence");
  CHECK(plan["root"]["begin"] == 0);
  CHECK(plan["root"]["end"] == 8);
  CHECK(plan["predicted"]["peak_bytes"].get<std::uint64_t>() <=
        plan["budget_bytes"].get<std::uint64_t>());
  CHECK(plan["predicted"]["step_ms"].get<double>() > 0);
  CHECK(plan["profile"]["layers"] == 8);
  CHECK(plan["baseline"]["peak_bytes"] == peak);

  const std::string csv = tidemark::read_text_file(w.path("pareto.csv"));
  CHECK(csv.rfind("solver,budget_bytes,fits,", 0) == 0);
  CHECK(count(csv, "\noptimal,") >= 10);
  CHECK(count(csv, "\nrevolve,") == count(csv, "\noptimal,"));
}

TEST_CASE("tidemark plan names the profile's arch, and with -q writes the same plan printing nothing", "[planner][cli]") {
  Workdir w("plan-cli-quiet");
  tidemark::ChainProfile p = test_profile();
  p.config.arch = "llama";
  p.digest = p.config.digest();
  const std::string llama = w.path("llama.json");
  tidemark::write_profile(llama, p);
  const Run loud = run_plan(llama + " --budget 0.6 -o " + w.path("loud.json"));
  INFO(loud.output);
  REQUIRE(loud.rc == 0);
  CHECK(loud.output.find("(llama), 8 stages") != std::string::npos);
  const Run quiet = run_plan(llama + " --budget 0.6 -q -o " + w.path("quiet.json"));
  REQUIRE(quiet.rc == 0);
  CHECK(quiet.output.empty());
  CHECK(tidemark::read_text_file(w.path("quiet.json")) == tidemark::read_text_file(w.path("loud.json")));
}

TEST_CASE("tidemark plan runs every solver by name", "[planner][cli]") {
  Workdir w("plan-cli-solvers");
  for (const char* solver : {"optimal", "uniform", "every-k", "sqrt", "revolve", "none"}) {
    const Run r =
        run_plan(w.profile + " --budget 1.0 --solver " + solver + " -o " + w.path("plan.json"));
    INFO(solver << ": " << r.output);
    REQUIRE(r.rc == 0);
    CHECK(json::parse(tidemark::read_text_file(w.path("plan.json")))["solver"] == solver);
  }
  const Run k =
      run_plan(w.profile + " --budget 1.0 --solver every-k --k 2 -o " + w.path("plan.json"));
  INFO(k.output);
  CHECK(k.rc == 0);
}

TEST_CASE("tidemark plan refuses bad input with one error line and writes nothing",
          "[planner][cli]") {
  Workdir w("plan-cli-refusals");
  const std::string out = " -o " + w.path("out.json");
  expect_refused(run_plan(w.profile + " --budget 1KiB" + out), "below the smallest peak");
  expect_refused(run_plan(w.profile + " --budget 1.5" + out), "outside (0, 1]");
  expect_refused(run_plan(w.profile + " --budget 0" + out), "outside (0, 1]");
  expect_refused(run_plan(w.profile + " --budget lots" + out), "budget 'lots'");
  expect_refused(run_plan(w.profile + " --budget 0.5 --k 2" + out), "--k applies only");
  expect_refused(run_plan(w.profile + " --budget 0.5 --solver every-k --k 0" + out),
                 "--k 0 must be at least 1");
  expect_refused(run_plan(w.profile + " --budget 0.5 --slots 0" + out), "--slots 0");
  expect_refused(run_plan(w.profile + " --budget 0.5 --solver greedy" + out), "greedy");
  expect_refused(run_plan(w.profile + " --budget 0.3 --solver none" + out),
                 "--solver optimal fits budgets from");
  expect_refused(run_plan(w.path("missing.json") + " --budget 0.5" + out), "missing.json");
  expect_refused(run_plan(w.profile + " --budget 0.5 -o " + w.path("no/such/dir.json")), "no/such");

  auto other_schema =
      w.edited_profile("trace.json", [](json& d) { d["schema"] = "tidemark.trace"; });
  expect_refused(run_plan(other_schema + " --budget 0.5" + out), "trace.json");
  auto version = w.edited_profile("v2.json", [](json& d) { d["version"] = 2; });
  expect_refused(run_plan(version + " --budget 0.5" + out), "v2.json");
  auto negative = w.edited_profile("neg.json", [](json& d) { d["layers"][1]["saved_bytes"] = -5; });
  expect_refused(run_plan(negative + " --budget 0.5" + out), "saved_bytes");
  auto negative_time =
      w.edited_profile("negative_time.json", [](json& d) { d["layers"][2]["forward_ms"] = -1.5; });
  expect_refused(run_plan(negative_time + " --budget 0.5" + out), "forward_ms");
  auto empty = w.edited_profile("empty.json", [](json& d) { d["layers"] = json::array(); });
  expect_refused(run_plan(empty + " --budget 0.5" + out), "zero stages");
  // JSON has no NaN; a profile that says NaN anyway does not parse.
  auto marked =
      w.edited_profile("nan.json", [](json& d) { d["layers"][2]["forward_ms"] = 12345.5; });
  std::string text = tidemark::read_text_file(marked);
  text.replace(text.find("12345.5"), 7, "NaN");
  tidemark::write_file_atomic(marked, text);
  expect_refused(run_plan(marked + " --budget 0.5" + out), "nan.json");
  expect_refused(
      run_plan(w.profile + " --budget 0.5" + out + " --pareto " + w.path("no/such/p.csv")),
      "--pareto");
  CHECK_FALSE(file_exists(w.path("out.json")));

  // A plan already there survives a refused run.
  tidemark::write_file_atomic(w.path("kept.json"), "old");
  expect_refused(run_plan(w.profile + " --budget 1KiB -o " + w.path("kept.json")), "below");
  CHECK(tidemark::read_text_file(w.path("kept.json")) == "old");
}

TEST_CASE("tidemark plan --help explains the budget forms with an example", "[planner][cli]") {
  const Run r = run_tidemark("plan --help");
  CHECK(r.rc == 0);
  CHECK(r.output.find("--budget 600MiB") != std::string::npos);
  CHECK(r.output.find("fraction in (0, 1]") != std::string::npos);
  CHECK(r.output.find("tidemark plan profile.json --budget 0.5 -o plan.json") != std::string::npos);
}

TEST_CASE("tidemark plan --compare sets other shardings of the model beside it at one budget", "[planner][cli]") {
  Workdir w("plan-cli-compare");
  // The same chain with its training state sharded: ZeRO-2 over 2 ranks keeps no gradients
  // in backward and a quarter of the optimizer state; ZeRO-0 keeps everything.
  const std::string z0 = w.edited_profile("z0.json", [](json& d) {
    d["sharding"] = json{{"ranks", 2}, {"zero", 0}, {"reduce_buffer_bytes", 0}};
  });
  const std::string z2 = w.edited_profile("z2.json", [](json& d) {
    d["sharding"] = json{{"ranks", 2}, {"zero", 2}, {"reduce_buffer_bytes", 20'000}};
    d["static_bytes"]["optimizer_state"] = d["static_bytes"]["optimizer_state"].get<std::uint64_t>() / 2;
  });
  const auto z0_chain = tidemark::planner::chain_from_profile(tidemark::read_profile(z0));
  const auto z2_chain = tidemark::planner::chain_from_profile(tidemark::read_profile(z2));
  const auto z2_min = tidemark::planner::simulate(z2_chain, tidemark::planner::uniform_plan(z2_chain)).peak_bytes;
  const auto z0_min = tidemark::planner::simulate(z0_chain, tidemark::planner::uniform_plan(z0_chain)).peak_bytes;
  REQUIRE(z2_min < z0_min);
  // A budget between the two: only the sharded state fits.
  const std::uint64_t budget = (z0_min + z2_min) / 2;
  Run r = run_plan(fmt::format("{} --budget {}B -o {} --compare {}", z2, budget, w.path("plan.json"), z0));
  INFO(r.output);
  REQUIRE(r.rc == 0);
  CHECK(r.output.find("2 ranks, ZeRO-2") != std::string::npos);
  CHECK(r.output.find("does not fit") != std::string::npos);
  CHECK(json::parse(tidemark::read_text_file(w.path("plan.json")))["profile"]["zero"] == 2);

  const std::string other = w.edited_profile("other.json", [](json& d) { d["model"] = "someone-elses"; });
  expect_refused(run_plan(fmt::format("{} --budget 0.6 -o {} --compare {}", z2, w.path("refused.json"), other)),
                 "compare profiles of one model");
  CHECK_FALSE(file_exists(w.path("refused.json")));
}
