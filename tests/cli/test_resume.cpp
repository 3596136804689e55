// train --save / --resume (issue: reliability): a run killed at any moment, even in the middle
// of a save, resumes from its last completed save and continues exactly as if it had never
// stopped; bad state directories are refused and left as they were.
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <vector>

#include "catch.hpp"
#include "run.hpp"

using namespace tidemark::testing;
namespace fs = std::filesystem;

namespace {

const std::string kModel = "--layers 2 --d-model 32 --heads 2 --seq 32 --batch 2 --dropout 0.2";
constexpr int kSteps = 6;

std::vector<double> losses_of(const std::string& report) {
  return nlohmann::json::parse(slurp(report))["losses"].get<std::vector<double>>();
}

// The losses of an uninterrupted run: what every resumed run must reproduce. `owner` names
// the calling test case's directory: test cases run side by side, so each makes its own.
const std::vector<double>& reference_losses(const std::string& owner, int steps) {
  static std::map<int, std::vector<double>> cache;
  auto it = cache.find(steps);
  if (it != cache.end()) return it->second;
  const std::string dir = scratch_dir(owner + "-reference-" + std::to_string(steps));
  Run r = run_tidemark("train " + kModel + " --steps " + std::to_string(steps) + " -q --report " + dir + "/r.json");
  REQUIRE(r.rc == 0);
  return cache[steps] = losses_of(dir + "/r.json");
}

// Every file in `dir` with its bytes.
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out[e.path().filename().string()] = slurp(e.path().string());
  return out;
}

// Resumes from `dir` to `steps`; checks the directory is untouched and the losses continue
// the reference exactly. Returns the step it resumed from.
int resume_and_check(const std::string& dir, int steps) {
  const auto before = snapshot(dir);
  const std::string report = dir + "/../resumed.json";
  Run r = run_tidemark("train " + kModel + " --steps " + std::to_string(steps) + " --resume " + dir + " --report " +
                       report);
  INFO(r.output);
  REQUIRE(r.rc == 0);
  std::smatch m;
  REQUIRE(std::regex_search(r.output, m, std::regex(R"(resumed from '[^']*' at step (\d+))")));
  const int start = std::stoi(m[1]);
  const auto& ref = reference_losses(fs::path(dir).parent_path().filename().string(), steps);
  const std::vector<double> expected(ref.begin() + start, ref.end());
  CHECK(losses_of(report) == expected);  // bitwise: same kernels, same order, same threads
  CHECK(snapshot(dir) == before);
  return start;
}

}  // namespace

TEST_CASE("a resumed run continues the uninterrupted one exactly", "[cli][torch][resume]") {
  const std::string dir = scratch_dir("resume-basic");
  const std::string state = dir + "/state";
  Run r = run_tidemark("train " + kModel + " --steps 3 -q --save " + state);
  INFO(r.output);
  REQUIRE(r.rc == 0);
  CHECK(resume_and_check(state, kSteps) == 3);
}

TEST_CASE("a SIGKILL at any point of a save leaves the last completed save resumable", "[cli][torch][resume]") {
  // Saves every step; each save writes the state file, then LATEST (two atomic writes), so
  // occurrence 3 of an atomic-write point is the second save's state file, 4 its LATEST.
  struct Case {
    std::string fault;
    int resumes_at;
  };
  const std::vector<Case> cases = {
      {"atomic-write:half@3", 1},          {"atomic-write:before-rename@3", 1},
      {"atomic-write:after-rename@3", 1},  {"atomic-write:half@4", 1},
      {"atomic-write:before-rename@4", 1}, {"atomic-write:after-rename@4", 2},
      {"state:before-cleanup@2", 2},       {"state:before-cleanup@3", 3},
  };
  for (const Case& c : cases) {
    INFO(c.fault);
    const std::string dir = scratch_dir("resume-fault");
    const std::string state = dir + "/state";
    Run killed = run_tidemark_with_fault(c.fault, "train " + kModel + " --steps " + std::to_string(kSteps) +
                                             " -q --save " + state + " --save-every 1");
    INFO(killed.output);
    REQUIRE(killed.rc == 128 + 9);  // SIGKILL, as the fault point does
    CHECK(resume_and_check(state, kSteps) == c.resumes_at);
    // A resumed run that saves again clears what the killed save left behind.
    Run again = run_tidemark("train " + kModel + " --steps " + std::to_string(kSteps) + " -q --resume " + state +
                             " --save " + state);
    REQUIRE(again.rc == 0);
    for (const auto& [name, bytes] : snapshot(state)) CHECK(name.find(".tmp.") == std::string::npos);
  }
}

TEST_CASE("SIGKILLs at random moments never lose the last save", "[cli][torch][resume]") {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> after_s(0.5, 4.0);
  const int steps = 12;
  for (int round = 0; round < 4; ++round) {
    const double t = after_s(rng);
    INFO("killed after " << t << " s");
    const std::string dir = scratch_dir("resume-random");
    const std::string state = dir + "/state";
    Run killed = run_command("timeout -s KILL " + std::to_string(t) + " " + tidemark_path() + " train " + kModel +
                             " --steps " + std::to_string(steps) + " -q --save " + state + " --save-every 1");
    if (!file_exists(state + "/LATEST")) continue;  // killed before the first save completed
    CHECK(resume_and_check(state, steps + 4) >= 1);  // the run may also have finished
  }
}

TEST_CASE("train --resume refuses bad state directories and leaves them as they were", "[cli][torch][resume]") {
  const std::string dir = scratch_dir("resume-bad");
  const std::string state = dir + "/state";
  REQUIRE(run_tidemark("train " + kModel + " --steps 2 -q --save " + state).rc == 0);
  const std::string train = "train " + kModel + " --steps 4 --resume ";

  auto refused = [&](const std::string& args, const std::string& message) {
    INFO("tidemark " << args);
    const auto before = snapshot(state);
    Run r = run_tidemark(args);
    INFO(r.output);
    CHECK(r.rc == 2);
    CHECK(error_lines(r.output) == 1);
    CHECK(r.output.find(message) != std::string::npos);
    CHECK(snapshot(state) == before);
  };
  refused(train + dir + "/missing", "not a directory");
  refused(train + dir, "holds no saved state");
  refused("train --layers 3 --d-model 32 --heads 2 --seq 32 --batch 2 --dropout 0.2 --steps 4 --resume " + state,
          "was saved for model");
  refused(train + state + " --seed 9", "seed 1234");
  refused(train + state + " --gradient-checkpointing", "was saved for checkpointing 'none'");
  refused("train " + kModel + " --steps 2 --resume " + state, "leaves nothing to train");
  refused("train " + kModel + " --steps 2 --save-every 1", "--save-every needs --save");
  refused("train " + kModel + " --steps 2 --save " + state + " --save-every -1", "--save-every must not be negative");
  refused("train " + kModel + " --steps 2 --save " + state + "/LATEST", "exists and is not a directory");

  const std::string latest = slurp(state + "/LATEST");
  const std::string file = state + "/" + latest.substr(0, latest.find(' '));
  const std::string good = slurp(file);
  {  // truncated, as a copy cut short would be
    spit(file, good.substr(0, good.size() / 2));
    refused(train + state, "is damaged");
  }
  {  // one byte flipped
    std::string bad = good;
    bad[bad.size() / 3] ^= 0x20;
    spit(file, bad);
    refused(train + state, "is damaged");
  }
  spit(file, good);
  spit(state + "/LATEST", "state-00000002.pt not-a-size\n");
  refused(train + state, "is malformed");
  spit(state + "/LATEST", latest);
  CHECK(run_tidemark(train + state + " -q").rc == 0);
}
