// The command line's contract for bad input: one "error:" line, exit 2, nothing half-written
// and nothing already there lost.
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>

#include "catch.hpp"
#include "run.hpp"

using namespace tidemark::testing;

namespace {

const std::string kTiny = "--layers 2 --d-model 32 --heads 2 --seq 32 --batch 2";

void refused(const std::string& args, const std::string& expect_in_message) {
  INFO("tidemark " << args);
  Run r = run_tidemark(args);
  INFO(r.output);
  CHECK(r.rc == 2);
  CHECK(error_lines(r.output) == 1);
  CHECK(r.output.find(expect_in_message) != std::string::npos);
}

}  // namespace

TEST_CASE("help teaches every command", "[cli]") {
  Run r = run_tidemark("--help");
  CHECK(r.rc == 0);
  CHECK(r.output.find("tidemark plan") != std::string::npos);
  std::vector<std::string> commands = {"plan", "export"};
  if (TIDEMARK_TEST_WITH_TORCH) commands.insert(commands.end(), {"train", "profile"});
  for (const auto& cmd : commands) {
    Run c = run_tidemark(cmd + " --help");
    INFO(cmd);
    CHECK(c.rc == 0);
    CHECK(c.output.find("Example") != std::string::npos);
  }
}

TEST_CASE("train refuses bad flags and values", "[cli][torch]") {
  refused("train --no-such-flag", "no-such-flag");
  refused("train " + kTiny + " --steps abc", "abc");
  refused("train --layers 0 --steps 1", "--layers must be a positive integer");
  refused("train --batch -3 --steps 1", "--batch");
  refused("train --d-model 32 --heads 3 --steps 1", "--heads 3 does not divide --d-model 32");
  refused("train " + kTiny + " --steps 0", "--steps");
  refused("train " + kTiny + " --dropout 1.5 --steps 1", "--dropout");
  refused("train " + kTiny + " --dtype float16 --steps 1", "--dtype");
  refused("train " + kTiny + " --steps 1 --data /nonexistent/corpus.txt", "/nonexistent/corpus.txt");
  refused("train " + kTiny + " --vocab 50 --steps 1", "--vocab 50 is too small");
  refused("train " + kTiny + " --steps 1 --gc-option use_reentrant=false --gradient-checkpointing",
          "use_reentrant=false");
  refused("train " + kTiny + " --steps 1 --gc-option debug=true", "--gc-option needs --gradient-checkpointing");
  refused("train " + kTiny + " --attention flash --steps 1", "--attention 'flash' does not exist");
  refused("profile " + kTiny + " --attention flash -o x.json", "use naive, chunked or sdpa");
  refused("train " + kTiny + " --arch mistral --steps 1", "--arch 'mistral' does not exist; use gpt or llama");
  refused("profile --arch llama --d-model 32 --heads 4 --kv-heads 3 -o x.json", "--kv-heads 3 does not divide --heads 4");
  refused("train --arch llama --d-model 36 --heads 4 --steps 1", "rotary dimension --d-model / --heads = 9 is odd");
  refused("train " + kTiny + " --kv-heads 1 --steps 1", "--kv-heads 1 needs --arch llama");
  refused("train --arch llama --d-model 32 --heads 4 --kv-heads -2 --steps 1", "--kv-heads must be a positive integer");
  // sdpa trains where LibTorch has it (2.1 and later) and is refused, pointing to chunked, where not.
  Run sdpa = run_tidemark("train " + kTiny + " --attention sdpa --steps 1");
  INFO(sdpa.output);
  if (sdpa.rc != 0) {
    CHECK(sdpa.rc == 2);
    CHECK(error_lines(sdpa.output) == 1);
    CHECK(sdpa.output.find("use --attention chunked") != std::string::npos);
  }
}

TEST_CASE("train checks its outputs before training and loses nothing", "[cli][torch]") {
  const std::string dir = scratch_dir("train_outputs");
  refused("train " + kTiny + " --steps 1 --report " + dir + "/missing/r.json", "--report");
  refused("train " + kTiny + " --steps 1 --trace " + dir, "is a directory");
  // A failing run leaves an existing report as it was.
  spit(dir + "/r.json", "old report");
  refused("train " + kTiny + " --steps 1 --heads 5 --report " + dir + "/r.json", "--heads");
  CHECK(slurp(dir + "/r.json") == "old report");
}

TEST_CASE("train writes a complete report", "[cli][torch]") {
  const std::string dir = scratch_dir("train_report");
  Run r = run_tidemark("train " + kTiny + " --steps 3 -q --report " + dir + "/r.json");
  INFO(r.output);
  REQUIRE(r.rc == 0);
  auto j = nlohmann::json::parse(slurp(dir + "/r.json"));
  CHECK(j["schema"] == "tidemark.report");
  CHECK(j["version"] == 1);
  CHECK(j["steps"] == 3);
  CHECK(j["losses"].size() == 3);
  CHECK(j["peak_bytes"].get<std::uint64_t>() > 0);
  CHECK(j["step_ms_median"].get<double>() > 0);
  // No temporary files left next to it.
  int files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++files;
  CHECK(files == 1);
}

TEST_CASE("train --device cuda without a GPU is a clear error", "[cli][torch]") {
  Run r = run_tidemark("train " + kTiny + " --steps 1 --device cuda");
  if (r.rc == 0) {
    WARN("a CUDA GPU is present; nothing to check");
    return;
  }
  CHECK(r.rc == 2);
  CHECK(r.output.find("--device cuda") != std::string::npos);
}

TEST_CASE("profile refuses bad input before running", "[cli][torch]") {
  const std::string dir = scratch_dir("profile_bad");
  refused("profile " + kTiny + " -o " + dir + "/nodir/p.json", "-o");
  refused("profile " + kTiny + " -o " + dir + "/p.json --trace " + dir + "/nodir/t.json", "--trace");
  refused("profile --heads 7 -o " + dir + "/p.json", "--heads 7");
  refused("profile " + kTiny + " --iters 0 -o " + dir + "/p.json", "--iters");
  CHECK_FALSE(file_exists(dir + "/p.json"));
  refused("profile " + kTiny, "-o");  // required
}

TEST_CASE("profile, trace and export round trip through the CLI", "[cli][torch]") {
  const std::string dir = scratch_dir("profile_export");
  Run p = run_tidemark("profile " + kTiny + " -q --warmup 1 --iters 2 -o " + dir + "/p.json --trace " + dir +
                   "/t.json --report " + dir + "/r.json");
  INFO(p.output);
  REQUIRE(p.rc == 0);
  auto prof = nlohmann::json::parse(slurp(dir + "/p.json"));
  CHECK(prof["schema"] == "tidemark.profile");
  CHECK(prof["layers"].size() == 4);
  Run e = run_tidemark("export " + dir + "/t.json --chrome " + dir + "/c.json");
  REQUIRE(e.rc == 0);
  auto chrome = nlohmann::json::parse(slurp(dir + "/c.json"));
  bool x = false, c = false;
  for (const auto& ev : chrome["traceEvents"]) {
    x = x || ev["ph"] == "X";
    c = c || ev["ph"] == "C";
  }
  CHECK(x);
  CHECK(c);
  // export of something that is not a trace, or of another version
  refused("export " + dir + "/p.json --chrome " + dir + "/x.json", "tidemark.profile");
  auto t = nlohmann::json::parse(slurp(dir + "/t.json"));
  t["version"] = 7;
  spit(dir + "/t7.json", t.dump());
  refused("export " + dir + "/t7.json --chrome " + dir + "/x.json", "version 7");
  spit(dir + "/trunc.json", slurp(dir + "/t.json").substr(0, 100));
  refused("export " + dir + "/trunc.json --chrome " + dir + "/x.json", "not valid JSON");
  CHECK_FALSE(file_exists(dir + "/x.json"));
}

TEST_CASE("train refuses plans it cannot run before training starts", "[cli][torch]") {
  const std::string dir = scratch_dir("train_bad_plans");
  Run p = run_tidemark("profile " + kTiny + " -q --warmup 1 --iters 1 -o " + dir + "/p.json");
  REQUIRE(p.rc == 0);
  Run pl = run_tidemark("plan " + dir + "/p.json --budget 0.9 -o " + dir + "/plan.json");
  INFO(pl.output);
  REQUIRE(pl.rc == 0);
  const auto plan = nlohmann::json::parse(slurp(dir + "/plan.json"));
  auto variant = [&](const std::string& name, const std::function<void(nlohmann::json&)>& edit) {
    nlohmann::json j = plan;
    edit(j);
    spit(dir + "/" + name, j.dump());
    return dir + "/" + name;
  };
  const std::string train = "train " + kTiny + " --steps 1 --report " + dir + "/r.json --plan ";
  refused(train + dir + "/p.json", "tidemark.profile");  // not a plan
  refused(train + variant("v2.json", [](auto& j) { j["version"] = 2; }), "version 2");
  refused(train + variant("other.json", [](auto& j) { j["profile"]["digest"] = "0123456789abcdef"; }),
          "another model configuration");
  refused("train --layers 3 --d-model 32 --heads 2 --seq 32 --batch 2 --steps 1 --plan " + dir + "/plan.json",
          "stages");
  // Made for the default attention (naive at this length with dropout) and the gpt arch.
  refused(train + dir + "/plan.json --attention chunked", "another model configuration");
  refused(train + dir + "/plan.json --arch llama", "another model configuration");
  // The refusal names the plan file and the model it was made for.
  refused(train + dir + "/plan.json --arch llama", "plan.json: the plan was made for another model configuration (model gpt,");
  refused(train + variant("gap.json", [](auto& j) {
            j["root"]["children"] = {{{"op", "save"}, {"begin", 0}, {"end", 1}},
                                     {{"op", "save"}, {"begin", 2}, {"end", 4}}};
          }),
          "gap");
  refused(train + variant("overlap.json", [](auto& j) {
            j["root"]["children"] = {{{"op", "save"}, {"begin", 0}, {"end", 2}},
                                     {{"op", "save"}, {"begin", 1}, {"end", 4}}};
          }),
          "overlap");
  refused(train + variant("over.json", [](auto& j) {
            j["budget_bytes"] = j["predicted"]["peak_bytes"].template get<std::uint64_t>() - 1;
          }),
          "exceeds its budget");
  refused(train + variant("variant.json", [](auto& j) {
            j["root"]["children"] = {{{"op", "save"}, {"begin", 0}, {"end", 4}, {"variant", "teleport"}}};
          }),
          "no variant");
  CHECK_FALSE(file_exists(dir + "/r.json"));
}

TEST_CASE("the llama path: profile, plan under a budget, train with the plan within it", "[cli][torch]") {
  const std::string dir = scratch_dir("llama_path");
  const std::string model =
      "--arch llama --layers 3 --d-model 32 --heads 4 --kv-heads 2 --seq 64 --batch 4 --attention chunked";
  Run p = run_tidemark("profile " + model + " -q --warmup 1 --iters 1 -o " + dir + "/p.json");
  INFO(p.output);
  REQUIRE(p.rc == 0);
  auto prof = nlohmann::json::parse(slurp(dir + "/p.json"));
  CHECK(prof["config"]["arch"] == "llama");
  CHECK(prof["config"]["kv_heads"] == 2);
  CHECK(prof["layers"][1]["variants"].size() == 11);  // attention-qkv, norm and MLP variants (chunked attention)
  Run pl = run_tidemark("plan " + dir + "/p.json --budget 0.7 -o " + dir + "/plan.json");
  INFO(pl.output);
  REQUIRE(pl.rc == 0);
  Run t = run_tidemark("train " + model + " --steps 2 --plan " + dir + "/plan.json --report " + dir +
                       "/r.json --trace " + dir + "/t.json --save " + dir + "/state");
  INFO(t.output);
  REQUIRE(t.rc == 0);
  auto r = nlohmann::json::parse(slurp(dir + "/r.json"));
  const auto measured = r["peak_bytes"].get<double>();
  const auto predicted = r["predicted"]["peak_bytes"].get<double>();
  CHECK(measured <= r["budget_bytes"].get<double>());
  CHECK(std::abs(measured - predicted) <= 0.05 * predicted);
  // A plan for llama is refused for gpt.
  refused("train --layers 3 --d-model 32 --heads 4 --seq 64 --batch 4 --steps 1 --plan " + dir + "/plan.json",
          "another model configuration");
  // The rest of the path: resume continues the uninterrupted run exactly, two data-parallel
  // ranks train, reports compare and traces export.
  Run whole = run_tidemark("train " + model + " --steps 3 -q --plan " + dir + "/plan.json --report " + dir + "/w.json");
  REQUIRE(whole.rc == 0);
  Run resumed = run_tidemark("train " + model + " --steps 3 -q --plan " + dir + "/plan.json --resume " + dir +
                             "/state --report " + dir + "/resumed.json");
  INFO(resumed.output);
  REQUIRE(resumed.rc == 0);
  const auto w = nlohmann::json::parse(slurp(dir + "/w.json"))["losses"];
  CHECK(nlohmann::json::parse(slurp(dir + "/resumed.json"))["losses"] == nlohmann::json::array({w[2]}));
  Run ddp = run_tidemark("train " + model + " --steps 1 -q --nproc 2 --report " + dir + "/ddp.json");
  INFO(ddp.output);
  CHECK(ddp.rc == 0);
  CHECK(run_tidemark("compare " + dir + "/r.json " + dir + "/w.json").rc == 0);
  CHECK(run_tidemark("export " + dir + "/t.json --chrome " + dir + "/c.json").rc == 0);
}
